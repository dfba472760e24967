package harness

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// What workload sightings and the audit stream cost an exchange (issues 14 and 17: each must cost
// under 5 % of the server's CPU), measured on whole servers of the binary under test: one server
// per mode, side by side, each on a database of its own, differing only in their flags. The
// rounds take the modes in a rotated order, so that drift on a shared machine falls on every mode,
// and before each window the previous server (and PostgreSQL) must have gone idle: a SQLite
// server checkpoints its WAL after a load, which would otherwise land in the next mode's window.
// A second server with neither ("control") measures how far two identical servers differ here:
// a change smaller than the control's is not resolved by the run.
//
// A server that records sightings writes them in one upsert every 10 s (sightings.DefaultFlushEvery),
// whose cost depends on the workloads seen, not on the exchanges. So that each measured window holds
// exactly one flush, as the steady state does, its window runs from one flush to the next (the
// flushes are seen as the newest last_seen in the database moving); the other modes' windows last
// OverheadWindow, the same 10 s. The hash chain cannot be turned off; BENCHMARKS.md measures it on
// its own.

// overheadModes are the servers compared: the flags each adds to `trustgate serve`. auditLog is
// replaced by a file in the work directory.
var overheadModes = []struct {
	name      string
	sightings bool
	stream    bool
}{
	{"neither", false, false},
	{"sightings", true, false},
	{"stream", false, true},
	{"control", false, false},
}

// OverheadWindow is the measured time of a mode without sightings (that of a mode with them is one
// flush interval, the same 10 s).
const OverheadWindow = 10 * time.Second

// OverheadRun is one measured window of one mode.
type OverheadRun struct {
	Mode          string  `json:"mode"`
	Round         int     `json:"round"`
	Seconds       float64 `json:"seconds"`
	Exchanges     int64   `json:"exchanges"`
	Errors        int     `json:"errors"`
	PerSec        float64 `json:"exchanges_per_s"`
	ServerCPUus   float64 `json:"server_cpu_us_per_exchange"`
	DatabaseCPUus float64 `json:"database_cpu_us_per_exchange,omitempty"`
}

// OverheadMode is the medians of one mode's runs, and their change from the mode "neither".
type OverheadMode struct {
	Mode          string   `json:"mode"`
	Flags         []string `json:"flags"`
	PerSec        float64  `json:"exchanges_per_s"`
	ServerCPUus   float64  `json:"server_cpu_us_per_exchange"`
	DatabaseCPUus float64  `json:"database_cpu_us_per_exchange,omitempty"`
	// ServerCPUChange is the change of the median server CPU per exchange from "neither", in %;
	// ServerAndDatabaseChange the same for server + PostgreSQL (on SQLite: the server's).
	ServerCPUChange         float64 `json:"server_cpu_change_pct"`
	ServerAndDatabaseChange float64 `json:"server_and_database_cpu_change_pct"`
	// RoundChanges is ServerCPUChange within each round (this mode's run against that round's
	// "neither"): the spread that shows how far the median can be trusted.
	RoundChanges []float64 `json:"round_changes_pct"`
}

// OverheadResult compares the modes on one database.
type OverheadResult struct {
	Rounds int            `json:"rounds"`
	Runs   []OverheadRun  `json:"runs"`
	Modes  []OverheadMode `json:"modes"`
}

type overheadServer struct {
	srv     *server
	target  *Target
	flags   []string
	flushed func(context.Context) (time.Time, error) // newest last_seen; nil without sightings
}

// overheadOn runs c.OverheadRounds rounds on the database dbName: dsn itself for SQLite (a file per
// mode is made beside it), a database per mode in the same cluster for PostgreSQL.
func overheadOn(ctx context.Context, c Config, dbName, dsn, jwksURL string, tokens []string) (*OverheadResult, error) {
	var servers []*overheadServer
	defer func() {
		for _, s := range servers {
			_ = s.srv.stop()
		}
	}()
	for _, m := range overheadModes {
		modeDSN, err := overheadDatabase(ctx, dbName, dsn, m.name)
		if err != nil {
			return nil, err
		}
		var flags []string
		if !m.sightings {
			flags = append(flags, "--sightings=false")
		}
		if m.stream {
			log := filepath.Join(c.WorkDir, "overhead-"+dbName+"-"+m.name+".jsonl")
			_ = os.Remove(log)
			flags = append(flags, "--audit-log="+log)
		}
		srv, err := startServer(ctx, c.Trustgate, modeDSN, c.WorkDir, "trustgate-overhead-"+dbName+"-"+m.name, append(flags, c.ServerFlags...))
		if err != nil {
			return nil, err
		}
		s := &overheadServer{srv: srv, flags: flags, target: &Target{Addr: srv.Addr, ServerPID: srv.proc.cmd.Process.Pid}}
		servers = append(servers, s)
		if _, err := srv.activeConnection(ctx, jwksURL); err != nil {
			return nil, err
		}
		for _, tok := range tokens {
			s.target.Requests = append(s.target.Requests, TokenRequest(srv.Addr, BenchConnection, tok))
		}
		if dbName == "postgres" {
			if s.target.DatabaseCPU, err = postgresCPU(ctx, modeDSN); err != nil {
				c.logf("[%s overhead] the PostgreSQL processes' CPU is not measured: %v", dbName, err)
			}
		}
		if m.sightings {
			if s.flushed, err = newestSighting(modeDSN); err != nil {
				return nil, err
			}
		}
		if err := firstExchange(s.target); err != nil {
			return nil, fmt.Errorf("%w (server log: %s)", err, srv.proc.log)
		}
	}

	res := &OverheadResult{Rounds: c.OverheadRounds}
	for round := range c.OverheadRounds {
		for i := range servers {
			k := (i + round) % len(servers)
			m, s := overheadModes[k], servers[k]
			if err := settle(ctx, servers); err != nil {
				return nil, err
			}
			run, err := overheadWindow(ctx, c, s)
			if err != nil {
				return nil, fmt.Errorf("%s overhead, mode %s: %w (server log: %s)", dbName, m.name, err, s.srv.proc.log)
			}
			run.Mode, run.Round = m.name, round+1
			c.logf("[%s overhead] round %d, %-9s %5.1f s, %6.0f exchanges/s, CPU µs per exchange: server %.1f, PostgreSQL %.1f; %d errors",
				dbName, round+1, m.name, run.Seconds, run.PerSec, run.ServerCPUus, run.DatabaseCPUus, run.Errors)
			res.Runs = append(res.Runs, run)
		}
	}
	for k, m := range overheadModes {
		res.Modes = append(res.Modes, summariseMode(res.Runs, m.name, servers[k].flags))
	}
	base := res.Modes[0]
	for i := range res.Modes {
		m := &res.Modes[i]
		m.ServerCPUChange = pctChange(base.ServerCPUus, m.ServerCPUus)
		m.ServerAndDatabaseChange = pctChange(base.ServerCPUus+base.DatabaseCPUus, m.ServerCPUus+m.DatabaseCPUus)
		for round := 1; round <= res.Rounds; round++ {
			var b, this float64
			for _, r := range res.Runs {
				if r.Round == round && r.Mode == base.Mode {
					b = r.ServerCPUus
				}
				if r.Round == round && r.Mode == m.Mode {
					this = r.ServerCPUus
				}
			}
			m.RoundChanges = append(m.RoundChanges, pctChange(b, this))
		}
	}
	return res, nil
}

func summariseMode(runs []OverheadRun, mode string, flags []string) OverheadMode {
	median := func(f func(OverheadRun) float64) float64 {
		var v []float64
		for _, r := range runs {
			if r.Mode == mode {
				v = append(v, f(r))
			}
		}
		if len(v) == 0 {
			return 0
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return round1((v[len(v)/2-1] + v[len(v)/2]) / 2)
	}
	if flags == nil {
		flags = []string{}
	}
	return OverheadMode{Mode: mode, Flags: flags,
		PerSec:        median(func(r OverheadRun) float64 { return r.PerSec }),
		ServerCPUus:   median(func(r OverheadRun) float64 { return r.ServerCPUus }),
		DatabaseCPUus: median(func(r OverheadRun) float64 { return r.DatabaseCPUus }),
	}
}

// overheadWindow loads s with c.Workers closed-loop connections: c.Warmup unmeasured, then one
// measured window (module comment), and returns the server's (and PostgreSQL's) CPU per exchange
// answered in it.
func overheadWindow(ctx context.Context, c Config, s *overheadServer) (OverheadRun, error) {
	ctx, stopLoad := context.WithCancel(ctx)
	var (
		wg   sync.WaitGroup
		errs errorLog
	)
	for range c.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &client{addr: s.target.Addr}
			defer cl.close()
			for ctx.Err() == nil {
				status, err := cl.do(s.target.request())
				if status == http.StatusOK {
					s.target.OK.Add(1)
				} else if ctx.Err() == nil {
					errs.add(status, err)
				}
			}
		}()
	}
	defer func() { stopLoad(); wg.Wait() }()

	time.Sleep(c.Warmup)
	var last time.Time
	if s.flushed != nil {
		// Start right after a flush.
		var err error
		if last, err = nextFlush(ctx, s.flushed, time.Time{}); err != nil {
			return OverheadRun{}, err
		}
		if last, err = nextFlush(ctx, s.flushed, last); err != nil {
			return OverheadRun{}, err
		}
	}
	meter := &cpuMeter{pid: s.target.ServerPID}
	var db0, db1 time.Duration
	var dbErr error
	meter.start()
	if s.target.DatabaseCPU != nil {
		db0, dbErr = s.target.DatabaseCPU()
	}
	ok0, start := s.target.OK.Load(), time.Now()
	errs0 := errs.count()
	if s.flushed != nil {
		if _, err := nextFlush(ctx, s.flushed, last); err != nil {
			return OverheadRun{}, err
		}
	} else {
		time.Sleep(OverheadWindow)
	}
	meter.stop()
	if s.target.DatabaseCPU != nil && dbErr == nil {
		db1, dbErr = s.target.DatabaseCPU()
	}
	elapsed, n := time.Since(start), s.target.OK.Load()-ok0
	run := OverheadRun{Seconds: round3(elapsed.Seconds()), Exchanges: n, Errors: errs.count() - errs0,
		PerSec: round1(float64(n) / elapsed.Seconds())}
	run.ServerCPUus, _ = meter.perOp(int(n))
	if s.target.DatabaseCPU != nil && dbErr == nil && n > 0 {
		run.DatabaseCPUus = round1(float64((db1 - db0).Microseconds()) / float64(n))
	}
	if n == 0 {
		return run, fmt.Errorf("no exchange was granted in the window (%d errors: %v)", run.Errors, errs.samples)
	}
	return run, nil
}

// nextFlush polls newest until it is after prev (a flush landed) and returns it.
func nextFlush(ctx context.Context, newest func(context.Context) (time.Time, error), prev time.Time) (time.Time, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		t, err := newest(ctx)
		if err != nil {
			return t, err
		}
		if t.After(prev) {
			return t, nil
		}
		if time.Now().After(deadline) {
			return t, fmt.Errorf("no sightings flush in 30 s (newest last_seen %s)", t)
		}
		select {
		case <-ctx.Done():
			return t, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// newestSighting reads the newest last_seen of the server's sightings (an index's last entry).
func newestSighting(dsn string) (func(context.Context) (time.Time, error), error) {
	driver, src := "pgx", dsn
	if p, ok := strings.CutPrefix(dsn, "sqlite://"); ok {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		driver, src = "sqlite", "file:"+abs+"?_pragma=busy_timeout(10000)&mode=ro"
	}
	db, err := sql.Open(driver, src)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return func(ctx context.Context) (time.Time, error) {
		var s sql.NullString
		if err := db.QueryRowContext(ctx, `SELECT CAST(max(last_seen) AS TEXT) FROM workload_sightings`).Scan(&s); err != nil {
			return time.Time{}, fmt.Errorf("reading the newest sighting: %w", err)
		}
		if !s.Valid {
			return time.Time{}, nil
		}
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07", "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999Z07:00"} {
			if t, err := time.Parse(layout, s.String); err == nil {
				return t, nil
			}
		}
		return time.Time{}, fmt.Errorf("reading the newest sighting: unexpected time %q", s.String)
	}, nil
}

// overheadDatabase returns the DSN of a fresh database for a mode: a new SQLite file beside dsn's,
// or a new database in dsn's PostgreSQL cluster.
func overheadDatabase(ctx context.Context, dbName, dsn, mode string) (string, error) {
	if p, ok := strings.CutPrefix(dsn, "sqlite://"); ok {
		p = strings.TrimSuffix(p, ".db") + "-overhead-" + mode + ".db"
		for _, f := range []string{"", "-wal", "-shm"} {
			_ = os.Remove(p + f)
		}
		return "sqlite://" + p, nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", err
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return "", err
	}
	defer db.Close()
	name := "trustgate_overhead_" + mode
	if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
		return "", fmt.Errorf("%s: %w", dbName, err)
	}
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("%s: %w", dbName, err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// settle waits (at most 20 s) until the servers and PostgreSQL together used at most one clock
// tick (10 ms) of CPU over 250 ms: what the previous window left behind (a WAL checkpoint, a
// flush) is done.
func settle(ctx context.Context, servers []*overheadServer) error {
	busy := func() (time.Duration, error) {
		var total time.Duration
		for _, s := range servers {
			cpu, err := processCPU(s.target.ServerPID)
			if err != nil {
				return 0, err
			}
			total += cpu
		}
		if f := servers[0].target.DatabaseCPU; f != nil {
			cpu, err := f()
			if err != nil {
				return 0, err
			}
			total += cpu
		}
		return total, nil
	}
	const step = 250 * time.Millisecond
	deadline := time.Now().Add(20 * time.Second)
	prev, err := busy()
	if err != nil {
		return err
	}
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(step):
		}
		cur, err := busy()
		if err != nil {
			return err
		}
		if cur-prev <= clockTick {
			return nil
		}
		prev = cur
	}
	return nil
}
