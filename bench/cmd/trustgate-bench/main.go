// Command trustgate-bench measures a built trustgate binary and Terraform provider (see
// BENCHMARKS.md; `make bench` runs it through bench/run.sh). It prints a table and writes the
// results as JSON.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/trustgate/terraform-provider-trustgate/bench/internal/harness"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "trustgate-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	var c harness.Config
	var rates, counts string
	var serverFlags listFlag
	out := flag.String("out", "bench/results.json", "where to write the JSON results (\"\" = nowhere)")
	flag.StringVar(&c.Trustgate, "trustgate", "bin/trustgate", "the trustgate binary to measure")
	flag.StringVar(&c.ProviderDir, "provider-dir", "bin", "directory holding terraform-provider-trustgate_v* (used through dev_overrides)")
	flag.StringVar(&c.Terraform, "terraform", "", "terraform binary (default: terraform on PATH; none skips the Terraform part)")
	flag.StringVar(&c.PostgresDSN, "postgres", "", "DSN of a throwaway PostgreSQL for the PostgreSQL run (empty skips it: bench/run.sh --postgres= runs SQLite only)")
	flag.StringVar(&c.WorkDir, "workdir", "", "directory for databases, logs and Terraform runs (default: a new temporary directory, removed afterwards)")
	flag.IntVar(&c.Tokens, "tokens", 2000, "distinct CI tokens minted before the run")
	flag.IntVar(&c.Workers, "workers", 64, "closed-loop connections")
	flag.DurationVar(&c.Warmup, "warmup", 3e9, "closed-loop warm-up (not measured)")
	flag.DurationVar(&c.Duration, "duration", 10e9, "closed-loop measured time")
	flag.StringVar(&rates, "rates", "200,1000", "open-loop offered loads, requests per second, comma-separated")
	flag.DurationVar(&c.OpenDuration, "open-duration", 10e9, "measured time of each open-loop run")
	flag.IntVar(&c.OpenConns, "open-conns", 128, "open-loop connections (bounds requests in flight)")
	flag.DurationVar(&c.CryptoDuration, "crypto-duration", 5e9, "time spent measuring the crypto limit")
	flag.StringVar(&counts, "terraform-counts", "100,500", "resource counts of the Terraform runs, comma-separated")
	flag.Var(&serverFlags, "server-flag", "extra flag for trustgate serve (repeatable), e.g. --server-flag=--pprof=127.0.0.1:6060")
	flag.BoolVar(&c.SkipExchange, "skip-exchange", false, "skip the exchange benchmarks and the crypto limit")
	flag.BoolVar(&c.SkipTerraform, "skip-terraform", false, "skip the Terraform runs")
	flag.BoolVar(&c.SingleUse, "single-use", false, "also compare exchanges through a single_use connection with a plain one (each token exchanged once)")
	flag.IntVar(&c.SingleUseTokens, "single-use-tokens", 20000, "tokens per single_use comparison run")
	flag.IntVar(&c.SingleUseRounds, "single-use-rounds", 2, "runs per mode (off, on) of the single_use comparison, alternating the order")
	flag.IntVar(&c.OverheadRounds, "overhead-rounds", 3, "rounds comparing servers with workload sightings and the audit stream off and on, on each database (0 skips)")
	flag.BoolVar(&c.AuditScale, "audit-scale", false, "run only the audit log at scale on PostgreSQL (make bench-audit): load --audit-rows events, time GET /v1/audit-events with each filter, exchange p99 during retention")
	flag.Int64Var(&c.AuditRows, "audit-rows", 10_000_000, "audit events loaded by --audit-scale")
	flag.IntVar(&c.AuditWeeks, "audit-weeks", 9, "weeks the --audit-scale events span (one partition each; 9 puts more than a million of 10 million events in each)")
	flag.IntVar(&c.RetentionPasses, "retention-passes", 5, "retention passes of --audit-scale, each after a control window, each dropping the oldest weeks' partitions: a million events, or a week's share of --audit-rows (at least 1)")
	flag.Float64Var(&c.RetentionRate, "retention-rate", 1000, "open-loop exchanges per second during the --audit-scale retention passes")
	flag.Parse()
	c.ServerFlags = serverFlags
	c.Progress = os.Stderr

	var err error
	if c.Rates, err = parseList(rates, func(s string) (float64, error) { return strconv.ParseFloat(s, 64) }); err != nil {
		return fmt.Errorf("--rates: %w", err)
	}
	if c.TerraformCount, err = parseList(counts, strconv.Atoi); err != nil {
		return fmt.Errorf("--terraform-counts: %w", err)
	}
	if c.AuditScale && c.RetentionPasses < 1 {
		return fmt.Errorf("--retention-passes %d: use at least 1", c.RetentionPasses)
	}
	if _, err := os.Stat(c.Trustgate); err != nil {
		return fmt.Errorf("--trustgate %s: %w (run make build first)", c.Trustgate, err)
	}
	if c.Terraform == "" {
		c.Terraform, _ = exec.LookPath("terraform")
	}
	if !c.SkipTerraform && c.Terraform != "" {
		if m, _ := filepath.Glob(filepath.Join(c.ProviderDir, "terraform-provider-trustgate_v*")); len(m) == 0 {
			return fmt.Errorf("--provider-dir %s holds no terraform-provider-trustgate_v* (run make build first)", c.ProviderDir)
		}
	}
	if c.WorkDir == "" {
		if c.WorkDir, err = os.MkdirTemp("", "trustgate-bench-"); err != nil {
			return err
		}
		defer os.RemoveAll(c.WorkDir)
	}

	res, runErr := harness.Run(ctx, c)
	if res != nil {
		res.WriteTable(os.Stdout)
	}
	if runErr != nil {
		return runErr
	}
	if *out != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "trustgate-bench: wrote %s\n", *out)
	}
	return nil
}

func parseList[T any](s string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := parse(f)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
