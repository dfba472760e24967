// Package harness measures Trustgate (`make bench`, `trustgate-bench`): token exchanges per second at
// saturation and latency at fixed offered loads against a real `trustgate serve` over loopback, on
// SQLite and on PostgreSQL; the crypto limit of the same cores (RS256 verify + ES256 sign pairs per
// second) as the yardstick for exchange throughput; and `terraform plan`/`apply` wall times for
// many connections beside the same number of terraform_data resources.
//
// Every figure of one run comes from the same machine within minutes, so its ratios (exchanges ÷
// crypto limit, provider ÷ terraform_data) are the numbers to compare between runs and machines.
package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
)

// Config is one benchmark run.
type Config struct {
	Trustgate   string // the trustgate binary
	ProviderDir string // the directory holding terraform-provider-trustgate_v* (dev_overrides)
	Terraform   string // the terraform binary; "" skips the Terraform part (with a reason)
	PostgresDSN string // a throwaway PostgreSQL; "" skips the PostgreSQL part (with a reason)
	WorkDir     string // databases, logs, Terraform directories

	Tokens         int           // distinct CI tokens minted before the run
	Workers        int           // closed-loop connections
	Warmup         time.Duration // closed-loop warm-up, not measured
	Duration       time.Duration // closed-loop measured time
	Rates          []float64     // open-loop offered loads, requests per second
	OpenWarmup     time.Duration
	OpenDuration   time.Duration
	OpenConns      int // open-loop connections (bounds requests in flight)
	CryptoDuration time.Duration
	TerraformCount []int
	ServerFlags    []string // extra `trustgate serve` flags (e.g. --pprof)

	SkipExchange  bool
	SkipTerraform bool
	// SingleUse adds, on each database, runs of SingleUseTokens tokens each exchanged once through
	// a connection with single_use off and one with it on, SingleUseRounds times (singleuse.go).
	SingleUse       bool
	SingleUseTokens int
	SingleUseRounds int
	// OverheadRounds is how many rounds compare servers with and without workload sightings and
	// the audit stream on each database (overhead.go); 0 skips the comparison.
	OverheadRounds int
	Progress       io.Writer

	// AuditScale runs the audit log at scale (PostgreSQL only) instead of the other parts:
	// AuditRows events over AuditWeeks weeks, exchanges at RetentionRate req/s during retention.
	AuditScale    bool
	AuditRows     int64
	AuditWeeks    int
	RetentionRate float64
	// RetentionPasses is how many retention passes run under load, each after its control
	// window, each dropping the oldest weeks' partitions (a million events, or a week's share).
	RetentionPasses int
}

// Defaults fills the zero fields of c.
func (c *Config) Defaults() {
	if c.Tokens == 0 {
		c.Tokens = 2000
	}
	if c.Workers == 0 {
		c.Workers = 64
	}
	if c.Warmup == 0 {
		c.Warmup = 3 * time.Second
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if len(c.Rates) == 0 {
		c.Rates = []float64{200, 1000}
	}
	if c.OpenWarmup == 0 {
		c.OpenWarmup = time.Second
	}
	if c.OpenDuration == 0 {
		c.OpenDuration = 10 * time.Second
	}
	if c.OpenConns == 0 {
		c.OpenConns = 128
	}
	if c.CryptoDuration == 0 {
		c.CryptoDuration = 5 * time.Second
	}
	if len(c.TerraformCount) == 0 {
		c.TerraformCount = []int{100, 500}
	}
	if c.SingleUseTokens == 0 {
		c.SingleUseTokens = 20000
	}
	if c.SingleUseRounds == 0 {
		c.SingleUseRounds = 2
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.AuditRows == 0 {
		c.AuditRows = 10_000_000
	}
	if c.AuditWeeks == 0 {
		c.AuditWeeks = 9
	}
	if c.RetentionRate == 0 {
		c.RetentionRate = 1000
	}
	if c.RetentionPasses == 0 {
		c.RetentionPasses = 5
	}
}

func (c *Config) logf(format string, args ...any) {
	fmt.Fprintf(c.Progress, "bench: "+format+"\n", args...)
}

// Run runs every part of the benchmark that c allows. A part that cannot run is recorded in
// Results.Skipped with the reason; an error is returned only when a part that should run fails.
func Run(ctx context.Context, c Config) (*Results, error) {
	c.Defaults()
	res := newResults(c)
	if err := os.MkdirAll(c.WorkDir, 0o755); err != nil {
		return nil, err
	}
	if c.AuditScale {
		return res, runAuditScale(ctx, c, res)
	}
	if !c.SkipExchange {
		if err := runExchange(ctx, c, res); err != nil {
			return res, err
		}
	} else {
		res.skip("exchange benchmarks: skipped by flag")
	}
	if c.SkipTerraform {
		res.skip("Terraform at scale: skipped by flag")
	} else if c.Terraform == "" {
		res.skip("Terraform at scale: no terraform on PATH (install Terraform >= 1.10)")
	} else if err := runTerraform(ctx, c, res); err != nil {
		return res, err
	}
	res.evaluateTargets()
	return res, nil
}

var issuerURLRE = regexp.MustCompile(`^(http://\S+)$`)

func runExchange(ctx context.Context, c Config, res *Results) error {
	keyFile := filepath.Join(c.WorkDir, "dev-issuer.pem")
	_ = os.Remove(keyFile)
	issProc, issURL, err := startProc(ctx, "dev-issuer", c.Trustgate,
		[]string{"dev-issuer", "serve", "--listen", "127.0.0.1:0", "--key-file", keyFile}, nil, c.WorkDir, issuerURLRE)
	if err != nil {
		return err
	}
	defer func() { _ = issProc.stop() }()
	jwksURL := issURL + "/.well-known/jwks.json"
	// Tokens are signed here with the dev issuer's key file, the same key its JWKS publishes.
	iss, err := devissuer.New(devissuer.Options{KeyFile: keyFile, Issuer: issURL})
	if err != nil {
		return err
	}
	pub, err := rsaPublicKeyFromFile(keyFile)
	if err != nil {
		return err
	}
	c.logf("minting %d distinct RS256 CI tokens", c.Tokens)
	start := time.Now()
	tokens, err := MintTokens(iss, c.Tokens, time.Hour)
	if err != nil {
		return err
	}
	c.logf("minted in %s", time.Since(start).Round(time.Millisecond))
	var onceTokens []string
	if c.SingleUse {
		c.logf("minting %d more for the single_use runs", c.SingleUseTokens)
		start = time.Now()
		if onceTokens, err = MintTokensFrom(iss, c.Tokens, c.SingleUseTokens, time.Hour); err != nil {
			return err
		}
		c.logf("minted in %s", time.Since(start).Round(time.Millisecond))
	}

	dbs := []struct{ name, dsn string }{{"sqlite", "sqlite://" + filepath.Join(c.WorkDir, "exchange.db")}}
	if c.PostgresDSN != "" {
		dbs = append(dbs, struct{ name, dsn string }{"postgres", c.PostgresDSN})
	} else {
		res.skip("exchange on PostgreSQL: no --postgres DSN (make bench starts a throwaway PostgreSQL when its server binaries are installed)")
	}
	for _, db := range dbs {
		for _, f := range []string{"", "-wal", "-shm"} {
			if p, ok := strings.CutPrefix(db.dsn, "sqlite://"); ok {
				_ = os.Remove(p + f)
			}
		}
		// The crypto limit is measured next to each saturation run, so that both see the same
		// machine (other load on shared cores changes by the minute).
		c.logf("crypto limit: (RS256 verify + ES256 sign) pairs on %d goroutines for %s", runtime.GOMAXPROCS(0), c.CryptoDuration)
		cr, err := CryptoLimit(ctx, tokens[0], pub, runtime.GOMAXPROCS(0), c.CryptoDuration)
		if err != nil {
			return err
		}
		c.logf("crypto limit: %.0f pairs/s, %.1f CPU µs per pair", cr.PairsPerSec, cr.CPUusPerPair)
		if res.Crypto == nil {
			res.Crypto = &cr
		}
		er, err := exchangeOn(ctx, c, db.name, db.dsn, jwksURL, tokens, onceTokens)
		if err != nil {
			return fmt.Errorf("exchange benchmark on %s: %w", db.name, err)
		}
		er.CryptoLimit = cr
		if cr.PairsPerSec > 0 {
			er.RatioToCrypto = round3(er.Saturation.PerSec / cr.PairsPerSec)
		}
		if er.Saturation.ServerCPUus > 0 {
			er.CPURatio = round3(cr.CPUusPerPair / er.Saturation.ServerCPUus)
		}
		if c.OverheadRounds > 0 {
			c.logf("[%s overhead] %d rounds of %d servers side by side: sightings and the audit stream off and on", db.name, c.OverheadRounds, len(overheadModes))
			if er.Overhead, err = overheadOn(ctx, c, db.name, db.dsn, jwksURL, tokens); err != nil {
				return err
			}
			for _, m := range er.Overhead.Modes {
				c.logf("[%s overhead] %-9s server CPU %.1f µs per exchange (%+.1f %%, rounds %v), server + database %+.1f %%",
					db.name, m.Mode, m.ServerCPUus, m.ServerCPUChange, m.RoundChanges, m.ServerAndDatabaseChange)
			}
		}
		res.Exchange = append(res.Exchange, *er)
	}
	return nil
}

func exchangeOn(ctx context.Context, c Config, dbName, dsn, jwksURL string, tokens, onceTokens []string) (*ExchangeResult, error) {
	er := &ExchangeResult{Database: dbName}
	switch dbName {
	case "sqlite":
		er.Durability = "WAL, synchronous=FULL (fsync on every commit)"
	case "postgres":
		d, err := postgresDurability(ctx, dsn)
		if err != nil {
			return nil, err
		}
		er.Durability = d
	}
	c.logf("[%s] starting trustgate serve (%s)", dbName, er.Durability)
	srv, err := startServer(ctx, c.Trustgate, dsn, c.WorkDir, "trustgate-"+dbName, c.ServerFlags)
	if err != nil {
		return nil, err
	}
	defer func() { _ = srv.stop() }()
	if _, err := srv.activeConnection(ctx, jwksURL); err != nil {
		return nil, err
	}
	t := &Target{Addr: srv.Addr, ServerPID: srv.proc.cmd.Process.Pid}
	for _, tok := range tokens {
		t.Requests = append(t.Requests, TokenRequest(srv.Addr, BenchConnection, tok))
	}
	if dbName == "postgres" {
		if t.DatabaseCPU, err = postgresCPU(ctx, dsn); err != nil {
			c.logf("[%s] the PostgreSQL processes' CPU is not measured: %v", dbName, err)
		}
	}
	if err := firstExchange(t); err != nil {
		return nil, fmt.Errorf("%w (server log: %s)", err, srv.proc.log)
	}

	c.logf("[%s] closed loop: %d workers, %s warm-up + %s", dbName, c.Workers, c.Warmup, c.Duration)
	er.Saturation = ClosedLoop(ctx, t, c.Workers, c.Warmup, c.Duration)
	c.logf("[%s] %.0f exchanges/s, p50 %.2f ms, p99 %.2f ms, %d errors; CPU µs per exchange: server %.1f, generator %.1f, PostgreSQL %.1f", dbName,
		er.Saturation.PerSec, er.Saturation.P50, er.Saturation.P99, er.Saturation.Errors, er.Saturation.ServerCPUus, er.Saturation.GeneratorCPUus, er.Saturation.DatabaseCPUus)
	for _, rate := range c.Rates {
		c.logf("[%s] open loop: %.0f req/s offered for %s", dbName, rate, c.OpenDuration)
		o := OpenLoop(ctx, t, rate, c.OpenWarmup, c.OpenDuration, c.OpenConns)
		c.logf("[%s] achieved %.0f/s, p50 %.2f ms, p99 %.2f ms, %d errors", dbName, o.AchievedPerSec, o.P50, o.P99, o.Errors)
		er.OpenLoop = append(er.OpenLoop, o)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	// Every 200 must already have its audit event committed: count them while the server still runs.
	er.GrantedResponses = t.OK.Load()
	if er.GrantedAuditEvents, err = countGrantedAudit(ctx, dsn); err != nil {
		return nil, fmt.Errorf("counting audit events: %w", err)
	}
	er.AuditComplete = er.GrantedAuditEvents >= er.GrantedResponses
	if er.AuditRows, er.AuditBytesPerEvent, err = auditStorage(ctx, dsn); err != nil {
		return nil, fmt.Errorf("measuring audit storage: %w", err)
	}
	c.logf("[%s] %d tokens granted, %d granted-exchange audit events in the database", dbName, er.GrantedResponses, er.GrantedAuditEvents)
	if len(onceTokens) > 0 {
		if er.SingleUse, err = singleUseOn(ctx, c, srv, jwksURL, onceTokens); err != nil {
			return nil, fmt.Errorf("single_use runs: %w (server log: %s)", err, srv.proc.log)
		}
		su := er.SingleUse
		c.logf("[%s] single_use off → on: %.0f → %.0f exchanges/s (%+.1f %%), server CPU %.1f → %.1f µs (%+.1f %%), database CPU %.1f → %.1f µs, server + database %+.1f %%, machine CPU %.1f → %.1f µs (%+.1f %%); %d records for %d grants, %d replays",
			dbName, su.OffPerSec, su.OnPerSec, su.ThroughputChange, su.OffServerCPUus, su.OnServerCPUus, su.ServerCPUChange,
			su.OffDatabaseCPUus, su.OnDatabaseCPUus, su.ServerAndDatabaseChange,
			su.OffMachineCPUus, su.OnMachineCPUus, su.MachineCPUChange, su.Records, su.Granted, su.Replays)
	}
	if err := srv.stop(); err != nil {
		return nil, err
	}
	return er, nil
}

// firstExchange checks that the setup works before any load: one exchange must be granted.
func firstExchange(t *Target) error {
	c := &client{addr: t.Addr}
	defer c.close()
	deadline := time.Now().Add(3 * time.Second)
	for {
		status, err := c.do(t.Requests[0])
		if err == nil && status == http.StatusOK {
			t.OK.Add(1)
			return nil
		}
		if time.Now().After(deadline) {
			return errors.Join(fmt.Errorf("the first exchange was not granted: HTTP %d: %s", status, c.body), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func runTerraform(ctx context.Context, c Config, res *Results) error {
	env, err := terraformEnv(c.WorkDir, c.ProviderDir)
	if err != nil {
		return err
	}
	for _, n := range c.TerraformCount {
		dsn := "sqlite://" + filepath.Join(c.WorkDir, fmt.Sprintf("terraform-%d.db", n))
		p := strings.TrimPrefix(dsn, "sqlite://")
		for _, f := range []string{"", "-wal", "-shm"} {
			_ = os.Remove(p + f)
		}
		srv, err := startServer(ctx, c.Trustgate, dsn, c.WorkDir, fmt.Sprintf("trustgate-terraform-%d", n), c.ServerFlags)
		if err != nil {
			return err
		}
		r := TerraformResult{Count: n}
		base := filepath.Join(c.WorkDir, fmt.Sprintf("tf-%d", n))
		_ = os.RemoveAll(base)
		c.logf("terraform: %d terraform_data resources", n)
		r.TerraformData, err = terraformRun(ctx, c.Terraform, filepath.Join(base, "terraform_data"), fmt.Sprintf(terraformDataTF, n), env)
		if err != nil {
			_ = srv.stop()
			return err
		}
		c.logf("terraform: %d trustgate_workload_connection resources", n)
		tgEnv := append(env[:len(env):len(env)], "TRUSTGATE_ENDPOINT="+srv.URL, "TRUSTGATE_API_KEY="+srv.DevOpsKey)
		r.Trustgate, err = terraformRun(ctx, c.Terraform, filepath.Join(base, "trustgate"), fmt.Sprintf(connectionsTF, n), tgEnv)
		if stopErr := srv.stop(); err == nil {
			err = stopErr
		}
		if err != nil {
			return err
		}
		r.PlanRatio = ratio(r.Trustgate.Plan, r.TerraformData.Plan)
		r.ApplyRatio = ratio(r.Trustgate.Apply, r.TerraformData.Apply)
		r.ReplanRatio = ratio(r.Trustgate.Replan, r.TerraformData.Replan)
		c.logf("terraform %d: plan %.2fs vs %.2fs (×%.2f), apply %.2fs vs %.2fs (×%.2f), plan after apply %.2fs vs %.2fs (×%.2f)",
			n, r.Trustgate.Plan, r.TerraformData.Plan, r.PlanRatio, r.Trustgate.Apply, r.TerraformData.Apply, r.ApplyRatio,
			r.Trustgate.Replan, r.TerraformData.Replan, r.ReplanRatio)
		res.Terraform = append(res.Terraform, r)
	}
	return nil
}
