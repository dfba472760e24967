package harness

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
)

// What single_use costs an exchange (CONTRACT.md §1 single_use, issue 13): the same tokens, each
// exchanged once, through a connection with single_use off and one with it on, on the same server
// right after its saturation runs. The rounds alternate the order (off, on, then on, off, ...) so
// that drift on a shared machine falls on both sides. Every round uses fresh connections, so one
// set of tokens serves every round: a single_use record is per connection.

// SingleUseRun is one count-bound closed loop: every token exchanged exactly once.
type SingleUseRun struct {
	SingleUse bool `json:"single_use"`
	ClosedResult
	// MachineCPUus is the whole machine's busy CPU per exchange minus the load generator's:
	// the server plus, on PostgreSQL, the database's processes (and whatever else ran meanwhile).
	MachineCPUus float64 `json:"machine_cpu_us_per_exchange"`
	// DatabaseCPUus is the CPU per exchange of PostgreSQL's processes (every backend and
	// background process pg_stat_activity lists; 0 on SQLite, whose work is in the server's).
	DatabaseCPUus float64 `json:"database_cpu_us_per_exchange,omitempty"`
}

// SingleUseResult compares the runs with single_use off and on.
type SingleUseResult struct {
	Tokens int            `json:"tokens_per_run"`
	Runs   []SingleUseRun `json:"runs"`
	// Medians of the runs of each mode.
	OffPerSec        float64 `json:"off_exchanges_per_s"`
	OnPerSec         float64 `json:"on_exchanges_per_s"`
	OffServerCPUus   float64 `json:"off_server_cpu_us_per_exchange"`
	OnServerCPUus    float64 `json:"on_server_cpu_us_per_exchange"`
	OffMachineCPUus  float64 `json:"off_machine_cpu_us_per_exchange"`
	OnMachineCPUus   float64 `json:"on_machine_cpu_us_per_exchange"`
	OffDatabaseCPUus float64 `json:"off_database_cpu_us_per_exchange,omitempty"`
	OnDatabaseCPUus  float64 `json:"on_database_cpu_us_per_exchange,omitempty"`
	ThroughputChange float64 `json:"throughput_change_pct"` // (on - off) / off × 100
	ServerCPUChange  float64 `json:"server_cpu_change_pct"`
	MachineCPUChange float64 `json:"machine_cpu_change_pct"`
	// ServerAndDatabaseChange is the change of server + database CPU per exchange: on
	// PostgreSQL the whole cost of an exchange, on SQLite the server's.
	ServerAndDatabaseChange float64 `json:"server_and_database_cpu_change_pct"`
	// Records is the number of single_use records in the database after the runs, which must
	// equal the grants of the single_use runs; Replays counts replay refusals (must be 0).
	Records int64 `json:"records"`
	Granted int64 `json:"granted_single_use"`
	Replays int64 `json:"replays"`
}

// singleUseOn runs the comparison on a running server.
func singleUseOn(ctx context.Context, c Config, srv *server, jwksURL string, tokens []string) (*SingleUseResult, error) {
	res := &SingleUseResult{Tokens: len(tokens)}
	for round := range c.SingleUseRounds {
		modes := []bool{false, true}
		if round%2 == 1 {
			modes = []bool{true, false}
		}
		for _, once := range modes {
			name := fmt.Sprintf("bench-plain-%d", round)
			if once {
				name = fmt.Sprintf("bench-once-%d", round)
			}
			if _, err := srv.connection(ctx, name, jwksURL, once); err != nil {
				return nil, err
			}
			t := &Target{Addr: srv.Addr, ServerPID: srv.proc.cmd.Process.Pid}
			for _, tok := range tokens {
				t.Requests = append(t.Requests, TokenRequest(srv.Addr, name, tok))
			}
			c.logf("[single_use] round %d, single_use %v: %d tokens, each exchanged once, %d workers", round+1, once, len(tokens), c.Workers)
			db := startDBMeter(ctx, srv.DSN)
			run := OnceLoop(ctx, t, c.Workers)
			run.databaseCPUus = db.perOp(ctx, run.Requests)
			c.logf("[single_use] %.0f exchanges/s, CPU µs per exchange: server %.1f, database %.1f, machine %.1f; %d errors %v",
				run.PerSec, run.ServerCPUus, run.databaseCPUus, run.machineCPUus, run.Errors, run.ErrorSamples)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if once {
				res.Granted += t.OK.Load()
				res.Replays += int64(run.replays)
			}
			res.Runs = append(res.Runs, run.SingleUseRun(once))
		}
	}
	median := func(once bool, f func(SingleUseRun) float64) float64 {
		var v []float64
		for _, r := range res.Runs {
			if r.SingleUse == once {
				v = append(v, f(r))
			}
		}
		slices.Sort(v)
		if len(v) == 0 {
			return 0
		}
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return round1((v[len(v)/2-1] + v[len(v)/2]) / 2)
	}
	res.OffPerSec = median(false, func(r SingleUseRun) float64 { return r.PerSec })
	res.OnPerSec = median(true, func(r SingleUseRun) float64 { return r.PerSec })
	res.OffServerCPUus = median(false, func(r SingleUseRun) float64 { return r.ServerCPUus })
	res.OnServerCPUus = median(true, func(r SingleUseRun) float64 { return r.ServerCPUus })
	res.OffMachineCPUus = median(false, func(r SingleUseRun) float64 { return r.MachineCPUus })
	res.OnMachineCPUus = median(true, func(r SingleUseRun) float64 { return r.MachineCPUus })
	res.ThroughputChange = pctChange(res.OffPerSec, res.OnPerSec)
	res.ServerCPUChange = pctChange(res.OffServerCPUus, res.OnServerCPUus)
	res.MachineCPUChange = pctChange(res.OffMachineCPUus, res.OnMachineCPUus)
	res.OffDatabaseCPUus = median(false, func(r SingleUseRun) float64 { return r.DatabaseCPUus })
	res.OnDatabaseCPUus = median(true, func(r SingleUseRun) float64 { return r.DatabaseCPUus })
	res.ServerAndDatabaseChange = pctChange(res.OffServerCPUus+res.OffDatabaseCPUus, res.OnServerCPUus+res.OnDatabaseCPUus)
	var err error
	if res.Records, err = countSingleUseRecords(ctx, srv.DSN); err != nil {
		return nil, fmt.Errorf("counting single-use records: %w", err)
	}
	return res, nil
}

func pctChange(from, to float64) float64 {
	if from == 0 {
		return 0
	}
	return round1((to - from) / from * 100)
}

// onceResult is a OnceLoop result with the replay refusals counted apart.
type onceResult struct {
	ClosedResult
	machineCPUus, databaseCPUus float64
	replays                     int
}

func (o onceResult) SingleUseRun(once bool) SingleUseRun {
	return SingleUseRun{SingleUse: once, ClosedResult: o.ClosedResult, MachineCPUus: o.machineCPUus, DatabaseCPUus: o.databaseCPUus}
}

// dbMeter measures the CPU time of a PostgreSQL server's processes (on this machine) between
// start and perOp: the processes pg_stat_activity lists at either instant, from /proc.
type dbMeter struct {
	db    *sql.DB
	start map[int]time.Duration
}

// startDBMeter starts measuring the PostgreSQL server behind dsn (nil for SQLite or when it
// cannot be read: then perOp is 0).
func startDBMeter(ctx context.Context, dsn string) *dbMeter {
	if strings.HasPrefix(dsn, "sqlite://") {
		return nil
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil
	}
	m := &dbMeter{db: db}
	if m.start = m.sample(ctx); m.start == nil {
		_ = db.Close()
		return nil
	}
	return m
}

func (m *dbMeter) sample(ctx context.Context) map[int]time.Duration {
	rows, err := m.db.QueryContext(ctx, `SELECT pid FROM pg_stat_activity`)
	if err != nil {
		return nil
	}
	defer rows.Close()
	out := map[int]time.Duration{}
	for rows.Next() {
		var pid int
		if rows.Scan(&pid) != nil {
			return nil
		}
		if cpu, err := processCPU(pid); err == nil {
			out[pid] = cpu
		}
	}
	if rows.Err() != nil {
		return nil
	}
	return out
}

// perOp is the database's CPU µs per operation since start, and ends the measurement.
func (m *dbMeter) perOp(ctx context.Context, ops int) float64 {
	if m == nil || ops == 0 {
		return 0
	}
	defer m.db.Close()
	end := m.sample(ctx)
	var total time.Duration
	for pid, cpu := range end {
		total += cpu - m.start[pid] // a process started meanwhile counts whole
	}
	return round1(float64(total.Microseconds()) / float64(ops))
}

// OnceLoop sends every request of t exactly once over workers kept-alive connections, each worker
// taking the next unsent request as soon as its previous answer arrived, and measures from the
// first send to the last answer. Throughput counts successful answers.
func OnceLoop(ctx context.Context, t *Target, workers int) onceResult {
	var next atomic.Int64
	lats := make([][]time.Duration, workers)
	var errs errorLog
	var replays atomic.Int64
	var wg sync.WaitGroup
	meter := &cpuMeter{pid: t.ServerPID}
	machine0 := machineBusy()
	meter.start()
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &client{addr: t.Addr}
			defer c.close()
			own := make([]time.Duration, 0, len(t.Requests)/workers+1)
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(len(t.Requests)) {
					break
				}
				sent := time.Now()
				status, err := c.do(t.Requests[i])
				if err == nil && status == http.StatusOK {
					t.OK.Add(1)
					own = append(own, time.Since(sent))
					continue
				}
				if err == nil && status == http.StatusBadRequest && strings.Contains(string(c.body), "replay") {
					replays.Add(1)
				}
				errs.add(status, err)
			}
			lats[w] = own
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	meter.stop()
	machine := machineBusy() - machine0
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	r := onceResult{replays: int(replays.Load())}
	r.ClosedResult = ClosedResult{
		Workers: workers, DurationSec: round3(elapsed.Seconds()), Requests: len(all), Errors: errs.n, ErrorSamples: errs.samples,
		PerSec: round1(float64(len(all)) / elapsed.Seconds()), Latency: Summarise(all),
	}
	r.ServerCPUus, r.GeneratorCPUus = meter.perOp(len(all))
	if len(all) > 0 && machine > 0 {
		r.machineCPUus = round1(float64((machine - meter.self).Microseconds()) / float64(len(all)))
	}
	return r
}

// machineBusy is the CPU time all cores spent outside idle and iowait since boot (/proc/stat), or
// 0 when unknown.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0
		}
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest times are already in user
			continue
		}
		busy += n
	}
	return time.Duration(busy) * clockTick
}

// connection creates and activates a copy of the benchmark connection named name, with
// single_use as given.
func (s *server) connection(ctx context.Context, name, jwksURL string, singleUse bool) (*api.Connection, error) {
	devops, err := apiclient.New(s.URL, s.DevOpsKey)
	if err != nil {
		return nil, err
	}
	security, err := apiclient.New(s.URL, s.SecurityKey)
	if err != nil {
		return nil, err
	}
	in := benchConnection(name, jwksURL)
	in.SingleUse = singleUse
	c, err := devops.CreateConnection(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("creating connection %s: %w", name, err)
	}
	if _, err := security.SetStatus(ctx, c.Name, api.StatusChange{Status: api.StatusActive, ApprovedFingerprint: c.Fingerprint}, c.Revision); err != nil {
		return nil, fmt.Errorf("activating connection %s: %w", name, err)
	}
	return c, nil
}

// countSingleUseRecords counts the rows of single_use_tokens, read directly.
func countSingleUseRecords(ctx context.Context, dsn string) (int64, error) {
	driver, src := "pgx", dsn
	if p, ok := strings.CutPrefix(dsn, "sqlite://"); ok {
		abs, err := filepath.Abs(p)
		if err != nil {
			return 0, err
		}
		driver, src = "sqlite", "file:"+abs+"?_pragma=busy_timeout(10000)"
	}
	db, err := sql.Open(driver, src)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int64
	err = db.QueryRowContext(ctx, `SELECT count(*) FROM single_use_tokens`).Scan(&n)
	return n, err
}
