package faults_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/testdb"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
)

// pgCluster is a PostgreSQL server of this test alone (scripts/pg.sh), so it can be stopped and
// started again without disturbing the other tests' database.
type pgCluster struct {
	script string
	dir    string
	DSN    string
	port   string
}

func startOwnPostgres(t *testing.T) *pgCluster {
	t.Helper()
	if testdb.PostgresURL() == "" {
		requirePostgres(t) // skips (or fails under TRUSTGATE_REQUIRE_POSTGRES) with the reason
	}
	script, err := filepath.Abs("../../../scripts/pg.sh")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "trustgate-faults-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgCluster{script: script, dir: dir}
	var stderr bytes.Buffer
	cmd := exec.Command(script, "start", dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		_ = os.RemoveAll(dir)
		t.Fatalf("scripts/pg.sh start: %v\n%s", err, stderr.String())
	}
	t.Cleanup(func() {
		_ = exec.Command(script, "stop", dir).Run()
		if b, err := os.ReadFile(filepath.Join(dir, "datadir")); err == nil {
			_ = os.RemoveAll(filepath.Dir(strings.TrimSpace(string(b))))
		}
		_ = os.RemoveAll(dir)
	})
	p.DSN = strings.TrimSpace(string(out))
	u, err := url.Parse(p.DSN)
	if err != nil {
		t.Fatal(err)
	}
	p.port = u.Port()
	// scripts/pg.sh runs with synchronous_commit=off, which is fine for throwaway test data but
	// loses the last commits on an immediate stop: a committed audit event would vanish with the
	// crash. This test stops PostgreSQL the hard way, so it restarts the cluster with commits durable.
	p.stop(t)
	p.restart(t)
	return p
}

// stop stops the server at once (pg_ctl -m immediate), as a crash or a network cut would.
func (p *pgCluster) stop(t *testing.T) {
	t.Helper()
	if out, err := exec.Command(p.script, "stop", p.dir).CombinedOutput(); err != nil {
		t.Fatalf("scripts/pg.sh stop: %v\n%s", err, out)
	}
}

// restart starts the same cluster (same data directory) on the same port.
func (p *pgCluster) restart(t *testing.T) {
	t.Helper()
	data := filepath.Join(p.dir, "data")
	if b, err := os.ReadFile(filepath.Join(p.dir, "datadir")); err == nil {
		data = strings.TrimSpace(string(b))
	}
	base := filepath.Dir(data)
	pgCtl, err := exec.LookPath("pg_ctl")
	if err != nil {
		matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
		sort.Strings(matches)
		if len(matches) == 0 {
			t.Fatal("pg_ctl not found")
		}
		pgCtl = matches[len(matches)-1]
	}
	args := []string{pgCtl, "-D", data, "-l", filepath.Join(base, "server.log"), "-w", "-t", "30",
		"-o", "-p " + p.port + " -k " + base + " -c listen_addresses=127.0.0.1 -c synchronous_commit=on -c max_connections=100",
		"start"}
	if os.Geteuid() == 0 {
		args = append([]string{"runuser", "-u", "postgres", "--"}, args...)
	}
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("restarting PostgreSQL: %v\n%s", err, out)
	}
}

// TestPostgresOutage stops PostgreSQL under a running server: readiness fails, admin requests get
// 503 problem+json, exchanges issue nothing, nothing is half-written; when PostgreSQL comes back
// (same data, same port) the server recovers without a restart.
func TestPostgresOutage(t *testing.T) {
	pg := startOwnPostgres(t)
	d := newDeployment(t, pg.DSN)
	iss := startIssuer(t)
	s := startServer(t, "outage", d)
	conn := createActive(t, s, iss.connectionInput("outage"))
	tok := iss.token(t)
	if r := exchange(s.URL, "outage", tok, nil); r.Status != http.StatusOK {
		t.Fatalf("exchange before the outage: %s", r)
	}
	d.ensureKeys(t)
	before := connectionsJSON(t, s.auditor(t))
	eventsBefore := allAuditEvents(t, s.security(t), apiclient.AuditOptions{})

	pg.stop(t)
	outageStart := time.Now()

	if r := rawDo(t, http.MethodGet, s.URL+"/readyz", "", "", nil, nil); r.Status != http.StatusServiceUnavailable || !r.IsProblem {
		t.Errorf("/readyz with PostgreSQL down: %d %s, want 503 problem+json", r.Status, r.Body)
	}
	if r := rawDo(t, http.MethodGet, s.URL+"/healthz", "", "", nil, nil); r.Status != http.StatusOK {
		t.Errorf("/healthz (process up) with PostgreSQL down: %d, want 200", r.Status)
	}

	patch, _ := json.Marshal(map[string]any{"description": "written during the outage"})
	create, _ := json.Marshal(iss.connectionInput("outage-created"))
	status, _ := json.Marshal(api.StatusChange{Status: api.StatusInactive, ApprovedFingerprint: conn.Fingerprint})
	admin := []struct {
		name, method, path, key, ctype string
		body                           []byte
	}{
		{"list", http.MethodGet, "/v1/workload-connections", d.auditor, "", nil},
		{"get", http.MethodGet, "/v1/workload-connections/outage", d.devops, "", nil},
		{"create", http.MethodPost, "/v1/workload-connections", d.devops, "application/json", create},
		{"patch", http.MethodPatch, "/v1/workload-connections/outage", d.security, "application/merge-patch+json", patch},
		{"deactivate", http.MethodPut, "/v1/workload-connections/outage/status", d.security, "application/json", status},
		{"delete", http.MethodDelete, "/v1/workload-connections/outage", d.security, "", nil},
		{"audit", http.MethodGet, "/v1/audit-events", d.security, "", nil},
	}
	var slowest time.Duration
	for _, c := range admin {
		start := time.Now()
		r := rawDo(t, c.method, s.URL+c.path, c.key, c.ctype, c.body, http.Header{"X-Request-Id": {"outage-" + c.name}})
		if el := time.Since(start); el > slowest {
			slowest = el
		}
		if r.Status != http.StatusServiceUnavailable || !r.IsProblem {
			t.Errorf("%s %s with PostgreSQL down: %d %s, want 503 problem+json", c.method, c.path, r.Status, r.Body)
		}
	}
	// Keep exchanging for a while, so that several catalog polls fail in between.
	exchanges := 0
	for exchanges < 5 || time.Since(outageStart) < 1500*time.Millisecond {
		time.Sleep(50 * time.Millisecond)
		start := time.Now()
		r := exchange(s.URL, "outage", tok, http.Header{"X-Request-Id": {"outage-exchange"}})
		exchanges++
		if el := time.Since(start); el > slowest {
			slowest = el
		}
		if r.Status == http.StatusOK || r.Token != "" || strings.Contains(string(r.Body), "access_token") {
			t.Fatalf("exchange with PostgreSQL down issued a token (its audit event cannot be durable): %s", r)
		}
		if r.Status != http.StatusServiceUnavailable || r.OAuthError != "temporarily_unavailable" {
			t.Errorf("exchange with PostgreSQL down: %s, want 503 temporarily_unavailable", r)
		}
	}
	if slowest > 5*time.Second {
		t.Errorf("the slowest answer during the outage took %s: requests must fail fast, not hang", slowest)
	}

	pg.restart(t)
	pgBack := time.Now()
	ready := waitFor(t, 30*time.Second, "/readyz back to 200 after PostgreSQL returned", func() bool {
		return rawDo(t, http.MethodGet, s.URL+"/readyz", "", "", nil, nil).Status == http.StatusOK
	})
	var firstGrant time.Duration
	waitFor(t, 30*time.Second, "a granted exchange after PostgreSQL returned", func() bool {
		ok := exchange(s.URL, "outage", tok, nil).Status == http.StatusOK
		firstGrant = time.Since(pgBack)
		return ok
	})

	// Nothing half-written: the connections are exactly as before, and no request of the outage
	// left a success or a grant in the audit log.
	if after := connectionsJSON(t, s.auditor(t)); after != before {
		t.Errorf("the connections changed across the outage:\nbefore %s\nafter  %s", before, after)
	}
	events := allAuditEvents(t, s.security(t), apiclient.AuditOptions{})
	seen := map[string]bool{}
	for _, ev := range events {
		seen[ev.ID] = true
		if strings.HasPrefix(ev.RequestID, "outage-") && ev.Outcome != api.OutcomeDenied {
			t.Errorf("a request of the outage left a %s %s audit event", ev.Action, ev.Outcome)
		}
	}
	for _, ev := range eventsBefore {
		if !seen[ev.ID] {
			t.Errorf("the %s %s audit event from before the outage is gone", ev.Action, ev.Outcome)
		}
	}
	// Before + the grants of the recovery probe: nothing else was added.
	if len(events) != len(eventsBefore)+1 {
		t.Errorf("%d audit events after the outage, want the %d from before + 1 (the first exchange after it)", len(events), len(eventsBefore))
	}
	// Admin writes work again without restarting trustgate.
	if _, err := s.devops(t).CreateConnection(ctxT(t), iss.connectionInput("outage-after")); err != nil {
		t.Fatalf("create after the recovery: %v", err)
	}
	summary(t, "postgres outage: %d admin requests and %d exchanges during a %s outage all refused (503, slowest %s, no token issued); /readyz ready %s and first exchange granted %s after PostgreSQL returned, without restarting trustgate; %d audit events before, %d after",
		len(admin), exchanges, pgBack.Sub(outageStart).Round(time.Millisecond), slowest.Round(time.Millisecond),
		ready.Round(time.Millisecond), firstGrant.Round(time.Millisecond), len(eventsBefore), len(events))
}

// connectionsJSON is every connection, as JSON, for before/after comparisons.
func connectionsJSON(t *testing.T, c *apiclient.Client) string {
	t.Helper()
	all, err := c.ListAllConnections(ctxT(t), apiclient.ListOptions{Limit: 500})
	if err != nil {
		t.Fatalf("listing connections: %v", err)
	}
	b, _ := json.Marshal(all)
	return string(b)
}
