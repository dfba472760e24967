package main

import (
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/glebarez/go-sqlite"  // database/sql driver "sqlite", to tamper with the audit log
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/testdb"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store"
)

// auditDeployment is a database, its KEK and a DevOps key, for servers that stream their audit
// log to one file.
type auditDeployment struct {
	dsn, dir, log, devops string
	env                   []string
}

func newAuditDeployment(t *testing.T) *auditDeployment {
	t.Helper()
	kek := make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	d := &auditDeployment{dsn: testdb.DSN(t), dir: t.TempDir()}
	d.log = filepath.Join(d.dir, "audit.jsonl")
	d.env = []string{"TRUSTGATE_KEK=" + base64.StdEncoding.EncodeToString(kek), "TRUSTGATE_DATABASE=" + d.dsn}
	out, stderr, err := testkit.RunTrustgate(t, d.dir, d.env, "keys", "create", "--name", "devops", "--role", api.RoleDevOpsAdmin)
	if err != nil {
		t.Fatalf("keys create: %v %s", err, stderr)
	}
	d.devops = strings.TrimSpace(out)
	return d
}

func (d *auditDeployment) serve(t *testing.T, name string) *testkit.Proc {
	t.Helper()
	return testkit.Serve(t, testkit.ServeOptions{Name: name, Dir: d.dir, Env: append(d.env, "TRUSTGATE_AUDIT_LOG="+d.log),
		Args: []string{"--public-url", "https://trustgate.audit.test", "--log-level", "warn"}})
}

// events makes n audit events on p: connection creations.
func (d *auditDeployment) events(t *testing.T, p *testkit.Proc, prefix string, n int) {
	t.Helper()
	c := p.Client(t, d.devops)
	for i := range n {
		in := testkit.GenericInput(fmt.Sprintf("%s-%d", prefix, i), "https://ci.example", "https://ci.example/jwks", "aud")
		if _, err := c.CreateConnection(t.Context(), in); err != nil {
			t.Fatalf("create connection: %v", err)
		}
	}
}

// dbEvents lists the database's audit events in insertion order, as chain/seq.
func dbEvents(t *testing.T, dsn string) []string {
	t.Helper()
	st, err := store.Open(t.Context(), dsn, store.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var out []string
	if err := st.WalkAudit(t.Context(), 500, func(page []api.AuditEvent) error {
		for _, ev := range page {
			out = append(out, fmt.Sprintf("%s/%d %s", ev.Chain, ev.Seq, ev.ID))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// streamed lists the events of stream files, in order, as chain/seq.
func streamed(t *testing.T, files ...string) []string {
	t.Helper()
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			if line == "" {
				continue
			}
			var ev api.AuditEvent
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("%s: line %q: %v", f, line, err)
			}
			out = append(out, fmt.Sprintf("%s/%d %s", ev.Chain, ev.Seq, ev.ID))
		}
	}
	return out
}

func sameEvents(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// The stream holds every database event exactly once across a rotation (rename + SIGHUP), a
// kill -9 and a restart; the streamed files and the database verify with `trustgate audit
// verify`, the files with nothing but the public JWKS; and verify names an edited, a removed and a
// reordered event, in a file and in the database.
func TestAuditStreamAndVerifyAcrossSIGHUPKill9AndRestart(t *testing.T) {
	d := newAuditDeployment(t)
	p1 := d.serve(t, "first")
	d.events(t, p1, "a", 5)
	if err := os.Rename(d.log, d.log+".1"); err != nil {
		t.Fatal(err)
	}
	p1.Signal(t, syscall.SIGHUP)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(d.log); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the audit log was not reopened after SIGHUP:\n%s", p1.Stderr())
		}
	}
	d.events(t, p1, "b", 5)
	jwksFile := filepath.Join(d.dir, "jwks.json")
	if err := os.WriteFile(jwksFile, p1.JWKS(t), 0o600); err != nil {
		t.Fatal(err)
	}
	p1.Kill9(t)

	p2 := d.serve(t, "restarted")
	d.events(t, p2, "c", 3)
	// verify reads the database beside a running server (read-only, one snapshot).
	if out, stderr, err := testkit.RunTrustgate(t, d.dir, d.env, "audit", "verify"); err != nil || !strings.Contains(out, "audit log intact") {
		t.Fatalf("audit verify while a server runs: %v\n%s%s", err, out, stderr)
	}
	if err := p2.Terminate(t); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}

	inDB, inStream := dbEvents(t, d.dsn), streamed(t, d.log+".1", d.log)
	if len(inDB) < 14 || !sameEvents(inDB, inStream) || len(inStream) != len(inDB) {
		t.Fatalf("the database holds %d events, the stream %d; want each database event in the stream exactly once:\ndatabase %v\nstream   %v",
			len(inDB), len(inStream), inDB, inStream)
	}

	out, stderr, err := testkit.RunTrustgate(t, d.dir, d.env, "audit", "verify")
	if err != nil || !strings.Contains(out, "audit log intact") || !strings.Contains(out, "2 chains") {
		t.Fatalf("audit verify (database): %v\n%s%s", err, out, stderr)
	}
	combined := filepath.Join(d.dir, "combined.jsonl")
	writeLines(t, combined, readLines(t, d.log+".1", d.log))
	out, stderr, err = testkit.RunTrustgate(t, d.dir, nil, "audit", "verify", "--log", combined, "--jwks", jwksFile)
	if err != nil || !strings.Contains(out, "audit log intact") || !strings.Contains(out, "checkpoint at seq 4 signed by") {
		t.Fatalf("audit verify --log with the JWKS alone: %v\n%s%s", err, out, stderr)
	}

	// Tampering with a file.
	lines := readLines(t, combined)
	idOf := func(line string) string {
		var ev api.AuditEvent
		_ = json.Unmarshal([]byte(line), &ev)
		return ev.ID
	}
	edited := slices.Clone(lines)
	edited[2] = strings.Replace(edited[2], `"outcome":"success"`, `"outcome":"denied"`, 1)
	removed := slices.Delete(slices.Clone(lines), 3, 4)
	reordered := slices.Clone(lines)
	reordered[6], reordered[7] = reordered[7], reordered[6]
	for _, c := range []struct {
		name, want, id string
		lines          []string
	}{
		{"edited", "changed at seq 3", idOf(lines[2]), edited},
		{"removed", "removed at seq 5", idOf(lines[4]), removed},
		{"reordered", "reordered at seq 7", idOf(lines[6]), reordered},
	} {
		f := filepath.Join(d.dir, c.name+".jsonl")
		writeLines(t, f, c.lines)
		out, stderr, err := testkit.RunTrustgate(t, d.dir, nil, "audit", "verify", "--log", f, "--jwks", jwksFile)
		if err == nil || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, c.id) {
			t.Errorf("audit verify --log of an %s file: %v; want a failure naming %q and event %s:\n%s%s", c.name, err, c.want, c.id, out, stderr)
		}
	}

	// Tampering with the database: the restarted server's chain.
	chain2 := strings.SplitN(inStream[len(inStream)-1], "/", 2)[0]
	db, q := tamperDB(t, d.dsn)
	seqOf := func(chainSeq int) int64 {
		var seq int64
		if err := db.QueryRow(q(`SELECT seq FROM audit_events WHERE chain = ? AND chain_seq = ?`), chain2, chainSeq).Scan(&seq); err != nil {
			t.Fatal(err)
		}
		return seq
	}
	exec := func(stmt string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q(stmt), args...); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	verifyDB := func(want string) {
		t.Helper()
		out, stderr, err := testkit.RunTrustgate(t, d.dir, d.env, "audit", "verify")
		switch {
		case want == "" && err != nil:
			t.Errorf("audit verify after undoing the change: %v\n%s%s", err, out, stderr)
		case want != "" && (err == nil || !strings.Contains(stderr, want) || !strings.Contains(stderr, chain2)):
			t.Errorf("audit verify: %v; want a failure naming %q in chain %s:\n%s%s", err, want, chain2, out, stderr)
		}
	}
	exec(`UPDATE audit_events SET reason = 'edited' WHERE chain = ? AND chain_seq = 2`, chain2)
	verifyDB("changed at seq 2")
	exec(`UPDATE audit_events SET reason = '' WHERE chain = ? AND chain_seq = 2`, chain2)
	verifyDB("")
	a, b := seqOf(1), seqOf(2)
	swap := func() {
		exec(`UPDATE audit_events SET seq = -1 WHERE seq = ?`, a)
		exec(`UPDATE audit_events SET seq = ? WHERE seq = ?`, a, b)
		exec(`UPDATE audit_events SET seq = ? WHERE seq = -1`, b)
	}
	swap()
	verifyDB("reordered at seq 1")
	swap()
	verifyDB("")
	exec(`DELETE FROM audit_events WHERE chain = ? AND chain_seq = 2`, chain2)
	verifyDB("removed at seq 3")
}

// tamperDB opens the deployment's database directly, as someone with write access to it would,
// and returns a placeholder rewriter for its dialect.
func tamperDB(t *testing.T, dsn string) (*sql.DB, func(string) string) {
	t.Helper()
	driver, src, q := "pgx", dsn, func(s string) string {
		for i := 1; strings.Contains(s, "?"); i++ {
			s = strings.Replace(s, "?", fmt.Sprintf("$%d", i), 1)
		}
		return s
	}
	if p, ok := strings.CutPrefix(dsn, "sqlite://"); ok {
		driver, src, q = "sqlite", p, func(s string) string { return s }
	}
	db, err := sql.Open(driver, src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db, q
}

func readLines(t *testing.T, files ...string) []string {
	t.Helper()
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
	}
	return out
}

func writeLines(t *testing.T, path string, lines []string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// A checkpoint signed by the server verifies with its published JWKS alone, and not with another
// deployment's.
func TestAuditVerifyNeedsTheServersPublicKeys(t *testing.T) {
	d := newAuditDeployment(t)
	p := d.serve(t, "server")
	d.events(t, p, "x", 2)
	if err := p.Terminate(t); err != nil {
		t.Fatal(err)
	}
	other := newAuditDeployment(t)
	q := other.serve(t, "other")
	otherJWKS := filepath.Join(d.dir, "other-jwks.json")
	if err := os.WriteFile(otherJWKS, q.JWKS(t), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := testkit.RunTrustgate(t, d.dir, nil, "audit", "verify", "--log", d.log, "--jwks", otherJWKS)
	if err == nil || !strings.Contains(stderr, "checkpoint at seq 3") || !strings.Contains(stderr, "holds no key") {
		t.Errorf("verify with another deployment's JWKS: %v\n%s%s", err, out, stderr)
	}
	out, stderr, err = testkit.RunTrustgate(t, d.dir, nil, "audit", "verify", "--log", d.log)
	if err == nil || !strings.Contains(stderr, "--jwks") {
		t.Errorf("verify --log without --jwks: %v, want a refusal naming --jwks\n%s%s", err, out, stderr)
	}
	if _, stderr, err := testkit.RunTrustgate(t, d.dir, d.env, "serve", "--audit-retention", "500ms"); err == nil || !strings.Contains(stderr, "at least 1s") {
		t.Errorf("serve --audit-retention 500ms: %v %s; want a refusal", err, stderr)
	}
}
