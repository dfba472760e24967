package harness

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
)

// The audit log at scale (BENCHMARKS.md, capacity model; issue 17), on PostgreSQL:
//   - loads AuditRows synthetic audit events spread evenly over AuditWeeks weeks ending now (INSERT …
//     SELECT from generate_series, several weeks at once), shaped like real ones (exchange detail, 500
//     connections, 5 % refused, 5 % admin changes, chains of 100,000);
//   - times GET /v1/audit-events through a running server with each filter, and EXPLAINs the
//     store's query for each (the plan must use an index);
//   - measures exchange latency at RetentionRate req/s open loop with no retention running, then
//     in RetentionPasses passes while a second replica's retention drops the oldest weeks'
//     partitions (at least a million events, or AuditRows/AuditWeeks), each pass after a control
//     window.

// AuditScaleResult is the audit-at-scale run.
type AuditScaleResult struct {
	Rows        int64              `json:"rows"`
	Weeks       int                `json:"weeks"`
	LoadSec     float64            `json:"load_s"`
	TableBytes  int64              `json:"table_bytes"` // heap + indexes + TOAST of every partition
	BytesPerRow float64            `json:"bytes_per_row"`
	Queries     []AuditQueryResult `json:"queries"`
	// Partitions is how many the load left (a week each, and the coming weeks the server made);
	// QueriesAtRetention are the same queries with empty weeks added back to 400 days, as many
	// partitions (PartitionsAtRetention) as the default retention keeps.
	Partitions            int                `json:"partitions"`
	PartitionsAtRetention int                `json:"partitions_at_default_retention"`
	QueriesAtRetention    []AuditQueryResult `json:"queries_at_default_retention"`
	Baseline              OpenResult         `json:"baseline"`
	// BaselineEnd is the same load again after the passes: how much p99 moves without retention.
	BaselineEnd  OpenResult     `json:"baseline_after"`
	Retention    []RetentionRun `json:"retention"`
	RetentionCut string         `json:"retention_note"`
	// DropP99RiseMs is the median p99 rise of the passes, each against its own control window.
	DropP99RiseMs float64 `json:"drop_p99_rise_ms_median"`
	// DropPooled is the p99 of every request of the drop passes' windows against that of their
	// controls' (DropPooledControl): one window's p99 rests on its 300 slowest requests, which a
	// single stall of the shared disk or cores moves by several ms; pooling the passes does not
	// hide a pass's cost but averages that noise.
	DropPooled        Latency `json:"drop_windows_pooled"`
	DropPooledControl Latency `json:"drop_controls_pooled"`
	DropPooledRiseMs  float64 `json:"drop_pooled_p99_rise_ms"`
}

// AuditQueryResult is one filter of GET /v1/audit-events.
type AuditQueryResult struct {
	Name       string  `json:"name"`
	Query      string  `json:"query"`
	Requests   int     `json:"requests"`
	P50        float64 `json:"p50_ms"`
	Max        float64 `json:"max_ms"`
	Items      int     `json:"items"`
	Plan       string  `json:"plan"`
	UsesIndex  bool    `json:"uses_index"`
	ExecMillis float64 `json:"explain_execution_ms"`
}

// RetentionRun is exchange latency while a retention pass runs on another replica.
type RetentionRun struct {
	Name    string     `json:"name"`
	Removed int64      `json:"rows_removed"`
	PassSec float64    `json:"pass_s"`
	Load    OpenResult `json:"load"`
	// Control is the same load just before, while a replica starts with a retention that
	// removes nothing; P99RiseMs is Load's p99 minus Control's.
	Control    OpenResult `json:"control"`
	P99RiseMs  float64    `json:"p99_rise_ms"`
	PassInLoad bool       `json:"pass_within_load"`
}

func runAuditScale(ctx context.Context, c Config, res *Results) error {
	if c.PostgresDSN == "" {
		res.skip("audit at scale: needs PostgreSQL (--postgres, or the PostgreSQL server binaries for bench/run.sh)")
		return nil
	}
	keyFile := filepath.Join(c.WorkDir, "dev-issuer.pem")
	_ = os.Remove(keyFile)
	issProc, issURL, err := startProc(ctx, "dev-issuer", c.Trustgate,
		[]string{"dev-issuer", "serve", "--listen", "127.0.0.1:0", "--key-file", keyFile}, nil, c.WorkDir, issuerURLRE)
	if err != nil {
		return err
	}
	defer func() { _ = issProc.stop() }()
	iss, err := devissuer.New(devissuer.Options{KeyFile: keyFile, Issuer: issURL})
	if err != nil {
		return err
	}
	tokens, err := MintTokens(iss, c.Tokens, time.Hour)
	if err != nil {
		return err
	}
	db, err := sql.Open("pgx", c.PostgresDSN)
	if err != nil {
		return err
	}
	defer db.Close()

	r := &AuditScaleResult{Rows: c.AuditRows, Weeks: c.AuditWeeks}
	res.AuditScale = r
	srv, err := startServer(ctx, c.Trustgate, c.PostgresDSN, c.WorkDir, "trustgate-audit", c.ServerFlags)
	if err != nil {
		return err
	}
	defer func() { _ = srv.stop() }()
	conn, err := srv.activeConnection(ctx, issURL+"/.well-known/jwks.json")
	if err != nil {
		return err
	}

	now := time.Now().UTC()
	start := now.Add(-time.Duration(c.AuditWeeks) * 7 * 24 * time.Hour)
	c.logf("[audit] loading %d audit events over %d weeks", c.AuditRows, c.AuditWeeks)
	t0 := time.Now()
	if err := loadAuditRows(ctx, db, start, now.Add(-time.Hour), c.AuditRows, c.logf); err != nil {
		return err
	}
	r.LoadSec = round1(time.Since(t0).Seconds())
	if err := db.QueryRowContext(ctx, `SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('audit_events')`).Scan(&r.TableBytes); err != nil {
		return err
	}
	var count int64
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM audit_events`).Scan(&count); err != nil {
		return err
	}
	r.BytesPerRow = round1(float64(r.TableBytes) / float64(count))
	c.logf("[audit] loaded in %.0f s; %d rows, %.0f bytes per row with indexes", r.LoadSec, count, r.BytesPerRow)

	// GET /v1/audit-events with each filter, as the security admin (and the DevOps admin, whose
	// list is their own actions).
	var anyID string
	if err := db.QueryRowContext(ctx, `SELECT connection_id FROM audit_events WHERE connection_name = 'service-7' LIMIT 1`).Scan(&anyID); err != nil {
		return err
	}
	firstPage, err := getAudit(ctx, srv.URL, srv.SecurityKey, "connection=service-7")
	if err != nil {
		return err
	}
	filters := []struct{ name, key, query, where string }{
		{"none", srv.SecurityKey, "", ""},
		{"connection (id)", srv.SecurityKey, "connection=" + anyID, "connection_id = '" + anyID + "'"},
		{"connection (name)", srv.SecurityKey, "connection=service-7", "connection_name = 'service-7'"},
		{"action (token.exchange, 90 %)", srv.SecurityKey, "action=token.exchange", "action = 'token.exchange'"},
		{"action (connection.update, 5 %)", srv.SecurityKey, "action=connection.update", "action = 'connection.update'"},
		{"action (connection.delete, none)", srv.SecurityKey, "action=connection.delete", "action = 'connection.delete'"},
		{"since (last hour)", srv.SecurityKey, "since=" + url.QueryEscape(now.Add(-2*time.Hour).Format(time.RFC3339)), `"time" >= '` + now.Add(-2*time.Hour).Format(time.RFC3339) + `'`},
		{"since (4 weeks)", srv.SecurityKey, "since=" + url.QueryEscape(now.Add(-28*24*time.Hour).Format(time.RFC3339)), `"time" >= '` + now.Add(-28*24*time.Hour).Format(time.RFC3339) + `'`},
		{"connection + action + since", srv.SecurityKey, "connection=service-7&action=token.exchange&since=" + url.QueryEscape(start.Format(time.RFC3339)),
			`connection_name = 'service-7' AND action = 'token.exchange' AND "time" >= '` + start.Format(time.RFC3339) + `'`},
		{"own actions (DevOps admin)", srv.DevOpsKey, "", "actor = 'bench-devops' AND action <> 'token.exchange'"},
		{"own actions of a busy admin", "", "", "actor = 'admin-3' AND action <> 'token.exchange'"},
		{"connection, second page", srv.SecurityKey, "connection=service-7&cursor=" + url.QueryEscape(firstPage), "connection_name = 'service-7' AND seq < (SELECT max(seq) - 1000 FROM audit_events)"},
	}
	timeQueries := func(label string) ([]AuditQueryResult, error) {
		var out []AuditQueryResult
		for _, f := range filters {
			q, err := timeAuditQuery(ctx, srv, db, f.name, f.key, f.query, f.where)
			if err != nil {
				return nil, err
			}
			c.logf("[audit] %s%-36s p50 %6.2f ms, max %6.2f ms, %3d items; EXPLAIN %.2f ms, index %v", label, f.name, q.P50, q.Max, q.Items, q.ExecMillis, q.UsesIndex)
			out = append(out, q)
		}
		return out, nil
	}
	if r.Queries, err = timeQueries(""); err != nil {
		return err
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_events'::regclass`).Scan(&r.Partitions); err != nil {
		return err
	}
	// The same with as many partitions as the default retention keeps (a week each for 400
	// days): a query without a time filter merges one index scan per partition. The weeks before
	// the load's get empty partitions, dropped again before the retention passes.
	var filler []string
	for w := weekMonday(start).Add(-partitionWidth); w.After(now.AddDate(0, 0, -defaultRetentionDays-7)); w = w.Add(-partitionWidth) {
		name, err := createPartition(ctx, db, w)
		if err != nil {
			return err
		}
		filler = append(filler, name)
	}
	if _, err := db.ExecContext(ctx, "ANALYZE audit_events"); err != nil {
		return err
	}
	r.PartitionsAtRetention = r.Partitions + len(filler)
	c.logf("[audit] the same queries with %d partitions (empty weeks back to %d days)", r.PartitionsAtRetention, defaultRetentionDays)
	if r.QueriesAtRetention, err = timeQueries(fmt.Sprintf("%d partitions: ", r.PartitionsAtRetention)); err != nil {
		return err
	}
	for _, name := range filler {
		if _, err := db.ExecContext(ctx, "DROP TABLE "+name); err != nil {
			return err
		}
	}

	// Exchange p99 at the open-loop rate: baseline, then while another replica's retention drops
	// the oldest week, a million events at a time.
	t := &Target{Addr: srv.Addr, ServerPID: srv.proc.cmd.Process.Pid}
	for _, tok := range tokens {
		t.Requests = append(t.Requests, TokenRequest(srv.Addr, conn.Name, tok))
	}
	if err := firstExchange(t); err != nil {
		return err
	}
	dur := 30 * time.Second
	if err := checkpoint(ctx, db); err != nil {
		return err
	}
	c.logf("[audit] baseline: %.0f req/s for %s", c.RetentionRate, dur)
	r.Baseline = OpenLoop(ctx, t, c.RetentionRate, time.Second, dur, c.OpenConns)
	c.logf("[audit] baseline p50 %.2f ms, p99 %.2f ms, max %.2f ms", r.Baseline.P50, r.Baseline.P99, r.Baseline.Max)

	// Each pass is paired with a control window just before it: the same load while a replica
	// starts the same way with a retention that removes nothing, so that what the pass's window
	// pays for a process starting beside the server (on these 2 cores) is not counted as the
	// retention's. Each pass drops the oldest week's partition (a million events, a week's share
	// of smaller runs; the first may take two, the load's first week being a part one), as
	// retention does when a week has passed.
	weekLen := 7 * 24 * time.Hour
	r.RetentionCut = "each pass: a second replica starts with --audit-retention set so that its retention pass at start removes what is named, while exchanges go to the first replica at a fixed rate; its control: the same, with a retention that removes nothing"
	window := func(name string, keep time.Duration, cutoff time.Time) (OpenResult, float64, error) {
		if err := checkpoint(ctx, db); err != nil {
			return OpenResult{}, 0, err
		}
		loadDone := make(chan OpenResult, 1)
		go func() { loadDone <- OpenLoop(ctx, t, c.RetentionRate, time.Second, dur, c.OpenConns) }()
		time.Sleep(3 * time.Second)
		passStart := time.Now()
		replica, err := startReplica(ctx, srv, c.Trustgate, c.WorkDir, "trustgate-retention", append([]string{"--audit-retention", keep.String()}, c.ServerFlags...))
		if err != nil {
			<-loadDone
			return OpenResult{}, 0, err
		}
		defer func() { _ = replica.stop() }()
		// Poll with a query that reads the "time" index's first entry, not the rows: a long
		// reader would itself hold the concurrent detach up.
		left := !cutoff.IsZero()
		for left {
			if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM audit_events WHERE "time" < $1)`, cutoff).Scan(&left); err != nil {
				return OpenResult{}, 0, err
			}
			if !left || ctx.Err() != nil || time.Since(passStart) > 10*time.Minute {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		passSec := time.Since(passStart).Seconds()
		load := <-loadDone
		if left {
			return load, passSec, fmt.Errorf("retention pass %q left events before the cutoff (log: %s)", name, replica.proc.log)
		}
		return load, passSec, nil
	}
	for pass := range c.RetentionPasses {
		oldest, err := oldestPartition(ctx, db)
		if err != nil {
			return err
		}
		p := RetentionRun{Name: fmt.Sprintf("drop the oldest week's partition (pass %d)", pass+1)}
		cutoff := oldest.Add(partitionWidth)
		for {
			if err := db.QueryRowContext(ctx, `SELECT count(*) FROM audit_events WHERE "time" < $1`, cutoff).Scan(&p.Removed); err != nil {
				return err
			}
			// A pass removes at least a million events (a week's share of smaller runs): as many
			// whole weeks, oldest first, as that takes (the first may be a part week).
			if p.Removed >= min(1_000_000, c.AuditRows/int64(c.AuditWeeks)) || cutoff.Add(2*partitionWidth).After(now) {
				break
			}
			cutoff = cutoff.Add(partitionWidth)
		}
		c.logf("[audit] control for %s: exchanges at %.0f req/s while a replica starts with a retention that removes nothing", p.Name, c.RetentionRate)
		if p.Control, _, err = window("control", 1000*weekLen, time.Time{}); err != nil {
			return err
		}
		keep := time.Since(cutoff).Round(time.Second)
		c.logf("[audit] %s (%d rows): exchanges at %.0f req/s while a replica runs --audit-retention %s", p.Name, p.Removed, c.RetentionRate, keep)
		var passSec float64
		if p.Load, passSec, err = window(p.Name, keep, cutoff); err != nil {
			return err
		}
		p.PassSec, p.PassInLoad = round1(passSec), passSec < dur.Seconds()-3
		p.P99RiseMs = round3(p.Load.P99 - p.Control.P99)
		c.logf("[audit] %s: %d rows in %.1f s; exchange p99 %.2f ms against %.2f ms in its control (%+.2f ms), max %.2f ms",
			p.Name, p.Removed, passSec, p.Load.P99, p.Control.P99, p.P99RiseMs, p.Load.Max)
		c.logf("[audit] p99 of each second, pass (the replica starts 2 s in): %v; control: %v", p.Load.P99BySecond, p.Control.P99BySecond)
		r.Retention = append(r.Retention, p)
	}
	var rises []float64
	var pooled, pooledControl []time.Duration
	for _, p := range r.Retention {
		rises = append(rises, p.P99RiseMs)
		pooled = append(pooled, p.Load.measured...)
		pooledControl = append(pooledControl, p.Control.measured...)
	}
	r.DropPooled, r.DropPooledControl = Summarise(pooled), Summarise(pooledControl)
	r.DropPooledRiseMs = round3(r.DropPooled.P99 - r.DropPooledControl.P99)
	c.logf("[audit] drop passes pooled (%d requests): p99 %.2f ms against %.2f ms in their controls (%+.2f ms)",
		len(pooled), r.DropPooled.P99, r.DropPooledControl.P99, r.DropPooledRiseMs)
	if len(rises) > 0 {
		slices.Sort(rises)
		r.DropP99RiseMs = rises[len(rises)/2]
		if len(rises)%2 == 0 {
			r.DropP99RiseMs = round3((rises[len(rises)/2-1] + rises[len(rises)/2]) / 2)
		}
	}
	if err := checkpoint(ctx, db); err != nil {
		return err
	}
	c.logf("[audit] baseline again: %.0f req/s for %s", c.RetentionRate, dur)
	r.BaselineEnd = OpenLoop(ctx, t, c.RetentionRate, time.Second, dur, c.OpenConns)
	c.logf("[audit] baseline again p50 %.2f ms, p99 %.2f ms, max %.2f ms", r.BaselineEnd.P50, r.BaselineEnd.P99, r.BaselineEnd.Max)
	return nil
}

// defaultRetentionDays is the server's default audit retention (audit.DefaultRetention) in days.
const defaultRetentionDays = 400

// partitionWidth is the width of the server's audit partitions (audit_events_wYYYYMMDD, from a
// Monday 00:00 UTC; server/internal/store/audit_retention.go).
const partitionWidth = 7 * 24 * time.Hour

func weekMonday(t time.Time) time.Time {
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
}

// createPartition creates the week of monday's partition (the server makes them the same way
// on demand when an insert misses one; the load bypasses the server), unless one covers it.
func createPartition(ctx context.Context, db *sql.DB, monday time.Time) (string, error) {
	name := "audit_events_w" + monday.Format("20060102")
	_, err := db.ExecContext(ctx, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF audit_events FOR VALUES FROM ('%s') TO ('%s')`,
		name, monday.Format(time.RFC3339), monday.Add(partitionWidth).Format(time.RFC3339)))
	if err != nil && !strings.Contains(err.Error(), "would overlap") {
		return "", fmt.Errorf("creating %s: %w", name, err)
	}
	return name, nil
}

// timeAuditQuery times GET /v1/audit-events?query as key 25 times (none without a key) and
// EXPLAINs the store's query for where.
func timeAuditQuery(ctx context.Context, srv *server, db *sql.DB, name, key, query, where string) (AuditQueryResult, error) {
	q := AuditQueryResult{Name: name, Query: "/v1/audit-events?" + query}
	if key != "" {
		var lats []time.Duration
		for range 25 {
			t := time.Now()
			items, err := getAuditCount(ctx, srv.URL, key, query)
			if err != nil {
				return q, fmt.Errorf("GET %s: %w", q.Query, err)
			}
			lats = append(lats, time.Since(t))
			q.Items = items
		}
		l := Summarise(lats)
		q.Requests, q.P50, q.Max = len(lats), l.P50, l.Max
	} else {
		q.Query = "(SQL only)"
	}
	if where != "" {
		where = "WHERE " + where
	}
	plan, execMs, err := explain(ctx, db, "SELECT * FROM audit_events "+where+" ORDER BY seq DESC LIMIT 101")
	if err != nil {
		return q, err
	}
	q.Plan, q.ExecMillis = plan, execMs
	q.UsesIndex = usesIndexes(plan)
	return q, nil
}

// loadAuditRows inserts n events spread evenly over [from, to) in chunks, two at a time.
func loadAuditRows(ctx context.Context, db *sql.DB, from, to time.Time, n int64, logf func(string, ...any)) error {
	// The weeks must have their partitions.
	for w := weekMonday(from); w.Before(to); w = w.Add(partitionWidth) {
		if _, err := createPartition(ctx, db, w); err != nil {
			return err
		}
	}
	stepUs := float64(to.Sub(from).Microseconds()) / float64(n)
	const chunk = 250_000
	type job struct{ lo, hi int64 }
	jobs := make(chan job)
	errc := make(chan error, 2)
	for range 2 {
		go func() {
			for j := range jobs {
				if _, err := db.ExecContext(ctx, auditLoadSQL, j.lo, j.hi, from, stepUs); err != nil {
					errc <- err
					for range jobs {
					}
					return
				}
			}
			errc <- nil
		}()
	}
	go func() {
		defer close(jobs)
		for lo := int64(0); lo < n; lo += chunk {
			hi := min(lo+chunk, n) - 1
			select {
			case jobs <- job{lo, hi}:
			case <-ctx.Done():
				return
			}
			if (lo/chunk)%8 == 0 {
				logf("[audit] loading rows %d…", lo)
			}
		}
	}()
	err := errors.Join(<-errc, <-errc)
	if err != nil {
		return fmt.Errorf("loading audit rows: %w", err)
	}
	// VACUUM (not ANALYZE alone): fresh partitions with millions of inserted rows are what
	// PostgreSQL's autovacuum would otherwise pick up during the first load window, and it showed
	// as ~1 s of exchange latency there; then a CHECKPOINT, so the load's dirty pages are not
	// written during the measurements either. A deployment's partitions fill over a week.
	if _, err = db.ExecContext(ctx, "VACUUM (ANALYZE) audit_events"); err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, "CHECKPOINT")
	return err
}

// checkpoint starts every measured window at the same point of PostgreSQL's checkpoint cycle:
// without it a timed checkpoint (every 5 min) lands in some windows and not others, and the
// full-page images written after it raise that window's WAL flushes, and its p99, by several ms.
// A window of 30 s then ends well before the next timed one.
func checkpoint(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpoint before a measured window: %w", err)
	}
	return nil
}

// auditLoadSQL inserts rows $1..$2: time $3 + i·$4 µs; every 20th a refused exchange, every 20th
// (offset 1) an admin's connection.update, the rest granted exchanges; 500 connections; chains of
// 100,000 events. Field sizes follow what the server writes (UUIDs, sha256 hashes, an exchange's
// detail of jti, sub, expires_at and source_iss).
const auditLoadSQL = `
INSERT INTO audit_events (id, "time", actor, action, connection_id, connection_name, outcome, reason, request_id, remote_addr, detail, chain, chain_seq, prev_hash, hash)
SELECT
  '0193a5b0-0000-7000-8000-' || lpad(to_hex(i), 12, '0'),
  t,
  CASE WHEN i % 20 = 1 THEN 'admin-' || (i % 17) ELSE 'repo:acme/service-' || k || ':ref:refs/heads/main' END,
  CASE WHEN i % 20 = 1 THEN 'connection.update' ELSE 'token.exchange' END,
  '0193a5a0-0000-7000-8000-' || lpad(to_hex(k), 12, '0'),
  'service-' || k,
  CASE i % 20 WHEN 0 THEN 'denied' WHEN 1 THEN 'success' ELSE 'granted' END,
  CASE WHEN i % 20 = 0 THEN 'condition ref: expected refs/heads/main' ELSE '' END,
  '0193a5c0-0000-7000-8000-' || lpad(to_hex(i), 12, '0'),
  '10.' || (i % 250) || '.' || (i / 250 % 250) || '.7',
  CASE i % 20
    WHEN 0 THEN '{"actual":"refs/heads/feature-' || (i % 97) || '","check":"ref","detail":"","expected":"refs/heads/main","kind":"condition"}'
    WHEN 1 THEN '{"revision":' || (i % 40) || '}'
    ELSE '{"expires_at":"' || to_char(t + interval '15 minutes', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || '","jti":"' || substr(md5(i::text), 1, 22) ||
         '","source_iss":"https://token.actions.githubusercontent.com","sub":"repo:acme/service-' || k || ':ref:refs/heads/main"}'
  END,
  '0193a5d0-0000-7000-8000-' || lpad(to_hex(i / 100000), 12, '0'),
  i % 100000 + 1,
  'sha256:' || lpad(to_hex(i), 64, 'a'),
  'sha256:' || lpad(to_hex(i), 64, 'b')
FROM (SELECT i, (i * 7919) % 500 AS k, $3::timestamptz + (i * $4::float8) * interval '1 microsecond' AS t
        FROM generate_series($1::bigint, $2::bigint) AS i) AS g`

// getAudit returns the next cursor of a page.
func getAudit(ctx context.Context, base, key, query string) (string, error) {
	var out struct {
		NextCursor string `json:"next_cursor"`
	}
	if err := getJSON(ctx, base+"/v1/audit-events?"+query, key, &out); err != nil {
		return "", err
	}
	return out.NextCursor, nil
}

func getAuditCount(ctx context.Context, base, key, query string) (int, error) {
	var out struct {
		Items []struct{} `json:"items"`
	}
	err := getJSON(ctx, base+"/v1/audit-events?"+query, key, &out)
	return len(out.Items), err
}

// usesIndexes reports whether a plan (EXPLAIN ANALYZE with BUFFERS) reads through indexes: it has
// index scans and no sequential scan that touched a page (the partitions of the coming weeks are
// empty, and a plan may scan those sequentially at no cost).
func usesIndexes(plan string) bool {
	lines := strings.Split(plan, "\n")
	for i, l := range lines {
		if !strings.Contains(l, "Seq Scan") {
			continue
		}
		indent := len(l) - len(strings.TrimLeft(l, " "))
		for _, next := range lines[i+1 : min(i+4, len(lines))] {
			if strings.Contains(next, "->") || len(next)-len(strings.TrimLeft(next, " ")) <= indent {
				break // the next node, or a line that is not this node's
			}
			if strings.Contains(next, "Buffers:") {
				return false
			}
		}
	}
	return strings.Contains(plan, "Index")
}

var planTime = regexp.MustCompile(`Execution Time: ([0-9.]+) ms`)

// explain runs EXPLAIN ANALYZE on q and returns the plan (without the timing lines' noise) and the
// execution time.
func explain(ctx context.Context, db *sql.DB, q string) (string, float64, error) {
	rows, err := db.QueryContext(ctx, "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "+q)
	if err != nil {
		return "", 0, err
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			return "", 0, err
		}
		lines = append(lines, l)
	}
	plan := strings.Join(lines, "\n")
	var ms float64
	if m := planTime.FindStringSubmatch(plan); m != nil {
		_, _ = fmt.Sscan(m[1], &ms)
	}
	return plan, ms, rows.Err()
}

func oldestPartition(ctx context.Context, db *sql.DB) (time.Time, error) {
	rows, err := db.QueryContext(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'audit_events'::regclass`)
	if err != nil {
		return time.Time{}, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return time.Time{}, err
		}
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return time.Time{}, errors.New("audit_events has no partitions")
	}
	return time.Parse("20060102", strings.TrimPrefix(names[0], "audit_events_w"))
}

func getJSON(ctx context.Context, u, key string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	return json.Unmarshal(b, v)
}
