package harness

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Results is everything one run measured (bench/results.json).
type Results struct {
	Date       string   `json:"date"`
	Commit     string   `json:"commit"`
	GoVersion  string   `json:"go_version"`
	OSArch     string   `json:"os_arch"`
	CPUModel   string   `json:"cpu_model"`
	NumCPU     int      `json:"num_cpu"`
	GOMAXPROCS int      `json:"gomaxprocs"`
	LoadAvg    string   `json:"load_avg_at_start"`
	Settings   Settings `json:"settings"`

	Crypto    *CryptoResult     `json:"crypto_limit,omitempty"`
	Exchange  []ExchangeResult  `json:"exchange,omitempty"`
	Terraform []TerraformResult `json:"terraform,omitempty"`
	// AuditScale is the audit log at scale (trustgate-bench --audit-scale, make bench-audit).
	AuditScale *AuditScaleResult `json:"audit_scale,omitempty"`
	Targets    []TargetCheck     `json:"targets"`
	Skipped    []string          `json:"skipped,omitempty"`
}

// Settings are the knobs of the run.
type Settings struct {
	Tokens         int       `json:"tokens"`
	Workers        int       `json:"closed_loop_workers"`
	WarmupSec      float64   `json:"closed_loop_warmup_s"`
	DurationSec    float64   `json:"closed_loop_duration_s"`
	Rates          []float64 `json:"open_loop_rates"`
	OpenDuration   float64   `json:"open_loop_duration_s"`
	OpenConns      int       `json:"open_loop_connections"`
	CryptoDuration float64   `json:"crypto_duration_s"`
	TerraformCount []int     `json:"terraform_counts"`
	ServerFlags    []string  `json:"server_flags,omitempty"`
	// SingleUseTokens and SingleUseRounds are set when --single-use ran.
	SingleUseTokens int `json:"single_use_tokens_per_run,omitempty"`
	SingleUseRounds int `json:"single_use_rounds,omitempty"`
	// OverheadRounds is the rounds of the sightings and stream comparison (0: not run).
	OverheadRounds int `json:"overhead_rounds,omitempty"`
}

// ExchangeResult is the exchange benchmark on one database.
type ExchangeResult struct {
	Database   string       `json:"database"`
	Durability string       `json:"durability"`
	Saturation ClosedResult `json:"saturation"`
	// RatioToCrypto is saturation exchanges/s ÷ crypto-limit pairs/s.
	RatioToCrypto float64 `json:"ratio_to_crypto_limit"`
	// CryptoLimit is the crypto limit measured just before this database's saturation run.
	CryptoLimit CryptoResult `json:"crypto_limit"`
	// CPURatio is crypto CPU per pair ÷ server CPU per exchange: the share of the server's work
	// that is the unavoidable crypto, and what RatioToCrypto would be if the server had the cores
	// to itself (no load generator or neighbours on them).
	CPURatio float64      `json:"cpu_ratio"`
	OpenLoop []OpenResult `json:"open_loop"`
	// GrantedResponses counts every 200 of the run; GrantedAuditEvents the granted-exchange audit
	// rows in the database, counted before the server stopped.
	GrantedResponses   int64 `json:"granted_responses"`
	GrantedAuditEvents int64 `json:"granted_audit_events"`
	AuditComplete      bool  `json:"audit_complete"`
	// SingleUse compares single_use off and on (--single-use), after the runs above.
	SingleUse *SingleUseResult `json:"single_use,omitempty"`
	// Overhead compares servers with and without workload sightings and the audit stream
	// (overhead.go), after the runs above.
	Overhead *OverheadResult `json:"overhead,omitempty"`
	// AuditRows is the audit events in the database after the run, AuditBytesPerEvent the size
	// of the audit table with its indexes (PostgreSQL) or of the whole database file (SQLite, which
	// holds little else) divided by them.
	AuditRows          int64   `json:"audit_rows"`
	AuditBytesPerEvent float64 `json:"audit_bytes_per_event"`
}

// TargetCheck is one goal of issue 6 and whether this run met it.
type TargetCheck struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Target string  `json:"target"`
	Met    bool    `json:"met"`
	Note   string  `json:"note,omitempty"`
}

func newResults(c Config) *Results {
	r := &Results{
		Date:       time.Now().UTC().Format(time.RFC3339),
		Commit:     commit(),
		GoVersion:  runtime.Version(),
		OSArch:     runtime.GOOS + "/" + runtime.GOARCH,
		CPUModel:   cpuModel(),
		NumCPU:     runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		LoadAvg:    loadAvg(),
		Settings: Settings{
			Tokens: c.Tokens, Workers: c.Workers, WarmupSec: c.Warmup.Seconds(), DurationSec: c.Duration.Seconds(),
			Rates: c.Rates, OpenDuration: c.OpenDuration.Seconds(), OpenConns: c.OpenConns,
			CryptoDuration: c.CryptoDuration.Seconds(), TerraformCount: c.TerraformCount, ServerFlags: c.ServerFlags,
		},
	}
	r.Settings.OverheadRounds = c.OverheadRounds
	if c.SingleUse {
		r.Settings.SingleUseTokens, r.Settings.SingleUseRounds = c.SingleUseTokens, c.SingleUseRounds
	}
	return r
}

func (r *Results) skip(why string) { r.Skipped = append(r.Skipped, why) }

func (r *Results) exchange(db string) *ExchangeResult {
	for i := range r.Exchange {
		if r.Exchange[i].Database == db {
			return &r.Exchange[i]
		}
	}
	return nil
}

// evaluateTargets checks the targets of issue 6 against what was measured.
func (r *Results) evaluateTargets() {
	r.Targets = nil
	if e := r.exchange("sqlite"); e != nil && r.Crypto != nil {
		r.Targets = append(r.Targets, TargetCheck{
			Name: "SQLite exchanges/s ÷ crypto limit, every grant audited", Value: e.RatioToCrypto, Target: "≥ 0.5",
			Met: e.RatioToCrypto >= 0.5 && e.AuditComplete && e.Saturation.Errors == 0,
			Note: fmt.Sprintf("%.0f exchanges/s ÷ %.0f pairs/s; audit complete: %v; CPU ratio %.3f (%.1f µs crypto ÷ %.1f µs server per exchange)",
				e.Saturation.PerSec, e.CryptoLimit.PairsPerSec, e.AuditComplete, e.CPURatio, e.CryptoLimit.CPUusPerPair, e.Saturation.ServerCPUus),
		})
		for _, o := range e.OpenLoop {
			if o.OfferedPerSec == 1000 {
				r.Targets = append(r.Targets, TargetCheck{
					Name: "SQLite p99 at 1000 req/s offered (ms)", Value: o.P99, Target: "< 5",
					Met:  o.P99 < 5 && o.Errors == 0,
					Note: fmt.Sprintf("achieved %.0f/s, %d errors", o.AchievedPerSec, o.Errors),
				})
			}
		}
	}
	for _, e := range r.Exchange {
		if e.Overhead == nil {
			continue
		}
		for _, m := range e.Overhead.Modes {
			if m.Mode != "sightings" && m.Mode != "stream" {
				continue
			}
			what := map[string]string{"sightings": "recording workload sightings (issue 14)", "stream": "streaming the audit log (issue 17)"}[m.Mode]
			r.Targets = append(r.Targets, TargetCheck{
				Name: fmt.Sprintf("%s: server CPU per exchange, %s (%%)", e.Database, what), Value: m.ServerCPUChange, Target: "< 5",
				Met: m.ServerCPUChange < 5,
				Note: fmt.Sprintf("median of %d rounds against --sightings=false without --audit-log; each round %v %%; server + database %+.1f %%",
					e.Overhead.Rounds, m.RoundChanges, m.ServerAndDatabaseChange),
			})
		}
	}
	for _, t := range r.Terraform {
		if t.Count == 500 {
			r.Targets = append(r.Targets, TargetCheck{
				Name: "terraform plan, 500 connections ÷ 500 terraform_data", Value: t.PlanRatio, Target: "≤ 1.5",
				Met:  t.PlanRatio <= 1.5,
				Note: fmt.Sprintf("%.2f s vs %.2f s", t.Trustgate.Plan, t.TerraformData.Plan),
			}, TargetCheck{
				Name: "terraform plan after apply (refresh), 500 ÷ 500 terraform_data", Value: t.ReplanRatio, Target: "≤ 1.5",
				Met:  t.ReplanRatio <= 1.5 && t.Trustgate.ReplanEmpty,
				Note: fmt.Sprintf("%.2f s vs %.2f s; plan empty: %v", t.Trustgate.Replan, t.TerraformData.Replan, t.Trustgate.ReplanEmpty),
			})
		}
	}
}

// WriteTable prints the results for people.
func (r *Results) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "\nTrustgate benchmark  %s  commit %s  %s  %s\n", r.Date, r.Commit, r.GoVersion, r.OSArch)
	fmt.Fprintf(w, "CPU: %s, %d cores, GOMAXPROCS %d, load average at start %s\n", r.CPUModel, r.NumCPU, r.GOMAXPROCS, r.LoadAvg)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	if len(r.Exchange) > 0 {
		c := r.Exchange[0].CryptoLimit
		fmt.Fprintf(w, "\nCrypto limit (%d goroutines, %.0f s, measured before each saturation run)\n", c.Goroutines, c.DurationSec)
		fmt.Fprintln(tw, "before\tRS256 verify + ES256 sign pairs/s\tCPU µs/pair\tRS256 verify/s\tES256 sign/s\t")
		for _, e := range r.Exchange {
			c := e.CryptoLimit
			fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%.0f\t%.0f\t\n", e.Database, c.PairsPerSec, c.CPUusPerPair, c.VerifyPerSec, c.SignPerSec)
		}
		tw.Flush()
	}
	if len(r.Exchange) > 0 {
		fmt.Fprintf(w, "\nToken exchange at saturation (closed loop, %d connections, %.0f s)\n", r.Settings.Workers, r.Settings.DurationSec)
		fmt.Fprintln(tw, "database\texchanges/s\t÷ crypto limit\tp50 ms\tp95 ms\tp99 ms\tmax ms\terrors\tgranted\taudited\t")
		for _, e := range r.Exchange {
			s := e.Saturation
			fmt.Fprintf(tw, "%s\t%.0f\t%.3f\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%d\t%d\t\n", e.Database, s.PerSec, e.RatioToCrypto,
				s.P50, s.P95, s.P99, s.Max, s.Errors, e.GrantedResponses, e.GrantedAuditEvents)
		}
		tw.Flush()
		fmt.Fprintln(w, "CPU per exchange (the cores are shared with the load generator and anything else running)")
		fmt.Fprintln(tw, "database\tserver µs\tPostgreSQL µs\tgenerator µs\tcrypto µs/pair\tcrypto ÷ server\t")
		for _, e := range r.Exchange {
			fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.3f\t\n", e.Database, e.Saturation.ServerCPUus, e.Saturation.DatabaseCPUus, e.Saturation.GeneratorCPUus, e.CryptoLimit.CPUusPerPair, e.CPURatio)
		}
		tw.Flush()
		fmt.Fprintf(w, "\nToken exchange at fixed offered load (open loop, latency from intended start, %.0f s each)\n", r.Settings.OpenDuration)
		fmt.Fprintln(tw, "database\toffered/s\tachieved/s\tp50 ms\tp99 ms\tmax ms\terrors\t")
		for _, e := range r.Exchange {
			for _, o := range e.OpenLoop {
				fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.2f\t%.2f\t%.2f\t%d\t\n", e.Database, o.OfferedPerSec, o.AchievedPerSec, o.P50, o.P99, o.Max, o.Errors)
			}
		}
		tw.Flush()
		for _, e := range r.Exchange {
			fmt.Fprintf(w, "durability %s: %s\n", e.Database, e.Durability)
		}
		r.writeSingleUse(w, tw)
		r.writeOverhead(w, tw)
	}
	if len(r.Terraform) > 0 {
		fmt.Fprintln(w, "\nTerraform at scale (wall seconds; ratio = trustgate_workload_connection ÷ terraform_data)")
		fmt.Fprintln(tw, "resources\tstep\tconnections s\tterraform_data s\tratio\t")
		for _, t := range r.Terraform {
			fmt.Fprintf(tw, "%d\tplan\t%.2f\t%.2f\t%.2f\t\n", t.Count, t.Trustgate.Plan, t.TerraformData.Plan, t.PlanRatio)
			fmt.Fprintf(tw, "%d\tapply\t%.2f\t%.2f\t%.2f\t\n", t.Count, t.Trustgate.Apply, t.TerraformData.Apply, t.ApplyRatio)
			empty := ""
			if !t.Trustgate.ReplanEmpty {
				empty = " (NOT EMPTY)"
			}
			fmt.Fprintf(tw, "%d\tplan after apply%s\t%.2f\t%.2f\t%.2f\t\n", t.Count, empty, t.Trustgate.Replan, t.TerraformData.Replan, t.ReplanRatio)
		}
		tw.Flush()
	}
	if len(r.Targets) > 0 {
		fmt.Fprintln(w, "\nTargets (issue 6)")
		for _, t := range r.Targets {
			mark := "MET "
			if !t.Met {
				mark = "MISS"
			}
			fmt.Fprintf(w, "  [%s] %s: %.3g (target %s) — %s\n", mark, t.Name, t.Value, t.Target, t.Note)
		}
	}
	if a := r.AuditScale; a != nil {
		fmt.Fprintf(w, "\nAudit log at scale (PostgreSQL): %d events over %d weeks, loaded in %.0f s, %.0f bytes per event with indexes\n",
			a.Rows, a.Weeks, a.LoadSec, a.BytesPerRow)
		fmt.Fprintln(tw, "GET /v1/audit-events\tp50 ms\tmax ms\titems\tEXPLAIN ANALYZE ms\tindex\t")
		for _, q := range a.Queries {
			fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%d\t%.2f\t%v\t\n", q.Name, q.P50, q.Max, q.Items, q.ExecMillis, q.UsesIndex)
		}
		tw.Flush()
		if len(a.QueriesAtRetention) > 0 {
			fmt.Fprintf(w, "the same with %d partitions (the default retention's 400 days; %d hold the events)\n", a.PartitionsAtRetention, a.Partitions)
			fmt.Fprintln(tw, "GET /v1/audit-events\tp50 ms\tmax ms\titems\tEXPLAIN ANALYZE ms\tindex\t")
			for _, q := range a.QueriesAtRetention {
				fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%d\t%.2f\t%v\t\n", q.Name, q.P50, q.Max, q.Items, q.ExecMillis, q.UsesIndex)
			}
			tw.Flush()
		}
		fmt.Fprintln(tw, "exchanges at a fixed rate\trows removed\tpass s\tp50 ms\tp99 ms\tcontrol p99 ms\tp99 rise ms\tmax ms\t")
		fmt.Fprintf(tw, "baseline (no retention)\t\t\t%.2f\t%.2f\t\t\t%.2f\t\n", a.Baseline.P50, a.Baseline.P99, a.Baseline.Max)
		for _, p := range a.Retention {
			fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.2f\t%.2f\t%.2f\t%+.2f\t%.2f\t\n", p.Name, p.Removed, p.PassSec, p.Load.P50, p.Load.P99, p.Control.P99, p.P99RiseMs, p.Load.Max)
		}
		fmt.Fprintf(tw, "baseline again (no retention)\t\t\t%.2f\t%.2f\t\t%+.2f\t%.2f\t\n", a.BaselineEnd.P50, a.BaselineEnd.P99, a.BaselineEnd.P99-a.Baseline.P99, a.BaselineEnd.Max)
		tw.Flush()
		fmt.Fprintf(w, "median p99 rise of the passes against their controls: %+.2f ms (target < 2 ms, issue 17)\n", a.DropP99RiseMs)
		fmt.Fprintf(w, "passes pooled: p99 %.2f ms against %.2f ms in their controls pooled: %+.2f ms\n", a.DropPooled.P99, a.DropPooledControl.P99, a.DropPooledRiseMs)
	}
	for _, e := range r.Exchange {
		if e.AuditRows > 0 {
			fmt.Fprintf(w, "audit storage on %s: %d events, %.0f bytes per event (database size ÷ audit events)\n", e.Database, e.AuditRows, e.AuditBytesPerEvent)
		}
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(w, "skipped: %s\n", s)
	}
}

// commit is the VCS revision the binary was built from ("+dirty" when the tree had changes), or
// what git says in the working directory.
func commit() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if modified == "true" {
				rev += "+dirty"
			}
			return rev
		}
	}
	out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	rev := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		rev += "+dirty"
	}
	return rev
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// writeSingleUse prints the single_use comparison (--single-use).
func (r *Results) writeSingleUse(w io.Writer, tw *tabwriter.Writer) {
	if !slices.ContainsFunc(r.Exchange, func(e ExchangeResult) bool { return e.SingleUse != nil }) {
		return
	}
	fmt.Fprintf(w, "\nsingle_use off vs on (%d tokens per run, each exchanged once; medians of %d runs per mode)\n",
		r.Settings.SingleUseTokens, r.Settings.SingleUseRounds)
	fmt.Fprintln(tw, "database\toff/s\ton/s\tchange\tserver µs off\ton\tchange\tdatabase µs off\ton\tserver+database\tmachine µs off\ton\tchange\trecords\treplays\t")
	for _, e := range r.Exchange {
		if s := e.SingleUse; s != nil {
			fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%+.1f%%\t%.1f\t%.1f\t%+.1f%%\t%.1f\t%.1f\t%+.1f%%\t%.1f\t%.1f\t%+.1f%%\t%d\t%d\t\n", e.Database,
				s.OffPerSec, s.OnPerSec, s.ThroughputChange, s.OffServerCPUus, s.OnServerCPUus, s.ServerCPUChange,
				s.OffDatabaseCPUus, s.OnDatabaseCPUus, s.ServerAndDatabaseChange,
				s.OffMachineCPUus, s.OnMachineCPUus, s.MachineCPUChange, s.Records, s.Replays)
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "database µs: PostgreSQL's processes (on SQLite the database works inside the server); machine µs: all cores' busy")
	fmt.Fprintln(w, "time minus the load generator's, which anything else running on the machine inflates")
}

// writeOverhead prints what sightings and the audit stream cost (overhead.go).
func (r *Results) writeOverhead(w io.Writer, tw *tabwriter.Writer) {
	if !slices.ContainsFunc(r.Exchange, func(e ExchangeResult) bool { return e.Overhead != nil }) {
		return
	}
	fmt.Fprintf(w, "\nWorkload sightings and the audit stream, off and on (servers side by side; medians of %d rounds; windows of one sightings flush, %s)\n",
		r.Settings.OverheadRounds, OverheadWindow)
	fmt.Fprintln(tw, "database\tmode\texchanges/s\tserver µs\tchange\teach round\tPostgreSQL µs\tserver+database\t")
	for _, e := range r.Exchange {
		if o := e.Overhead; o != nil {
			for _, m := range o.Modes {
				rounds := make([]string, len(m.RoundChanges))
				for i, c := range m.RoundChanges {
					rounds[i] = fmt.Sprintf("%+.1f%%", c)
				}
				fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.1f\t%+.1f%%\t%s\t%.1f\t%+.1f%%\t\n", e.Database, m.Mode, m.PerSec, m.ServerCPUus,
					m.ServerCPUChange, strings.Join(rounds, " "), m.DatabaseCPUus, m.ServerAndDatabaseChange)
			}
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "change: from the mode \"neither\" (--sightings=false, no --audit-log); the targets are < 5 % each (issues 14 and 17)")
}
