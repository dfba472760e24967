package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/testdb"

	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storetest"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// open opens a store on dsn and closes it at the end of the test.
func open(t *testing.T, dsn string) *store.Store {
	t.Helper()
	s, err := store.Open(ctxT(t), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestOpenMigratesEmptyDatabase(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	want := store.DialectSQLite
	if testdb.PostgresURL() != "" {
		want = store.DialectPostgres
	}
	if s.Dialect() != want {
		t.Errorf("Dialect() = %q, want %q", s.Dialect(), want)
	}
	n, err := s.ChangeCounter(ctx)
	if err != nil || n != 0 {
		t.Errorf("ChangeCounter = %d, %v; want 0, nil", n, err)
	}
	for name, count := range map[string]func() (int, error){
		"connections":  func() (int, error) { c, err := s.ConnectionRevisions(ctx); return len(c), err },
		"principals":   func() (int, error) { p, err := s.ListPrincipals(ctx); return len(p), err },
		"signing keys": func() (int, error) { k, err := s.SigningKeys(ctx); return len(k), err },
		"audit events": func() (int, error) {
			e, _, err := s.ListAudit(ctx, connection.AuditFilter{})
			return len(e), err
		},
	} {
		if n, err := count(); err != nil || n != 0 {
			t.Errorf("%s: %d rows, %v; want 0 rows", name, n, err)
		}
	}
}

func TestOpenConcurrentlyOnOneDatabaseMigratesOnce(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	stores := make([]*store.Store, n)
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = store.Open(ctxT(t), dsn) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Open #%d: %v", i, errs[i])
			continue
		}
		t.Cleanup(func() { _ = stores[i].Close() })
	}
	if t.Failed() {
		return
	}
	// The single change_counter row proves the seed INSERT ran once.
	if v, err := stores[0].ChangeCounter(ctxT(t)); err != nil || v != 0 {
		t.Errorf("ChangeCounter = %d, %v; want 0, nil", v, err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	ctx := ctxT(t)

	s1, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	c := newConnection("kept", "github", "draft")
	if err := s1.CreateConnection(ctx, c, auditFor(c, "connection.create")); err != nil {
		t.Fatalf("CreateConnection: %v", err)
	}
	if err := s1.CreatePrincipal(ctx, newPrincipal(t, "alice", "devops_admin")); err != nil {
		t.Fatalf("CreatePrincipal: %v", err)
	}
	if _, err := addKey(ctx, s1, newKey("k1")); err != nil {
		t.Fatalf("adding a signing key: %v", err)
	}
	if err := s1.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s2 := open(t, dsn)
	got, err := s2.GetConnection(ctx, "kept")
	if err != nil {
		t.Fatalf("GetConnection after reopen: %v", err)
	}
	assertConnectionEqual(t, got, c)
	if ps, err := s2.ListPrincipals(ctx); err != nil || len(ps) != 1 || ps[0].Name != "alice" {
		t.Errorf("principals after reopen = %+v, %v", ps, err)
	}
	if ks, err := s2.SigningKeys(ctx); err != nil || len(ks) != 1 || ks[0].KID != "k1" {
		t.Errorf("signing keys after reopen = %+v, %v", ks, err)
	}
	if evs, _, err := s2.ListAudit(ctx, connection.AuditFilter{}); err != nil || len(evs) != 1 {
		t.Errorf("audit after reopen = %d events, %v; want 1", len(evs), err)
	}
	if v, err := s2.ChangeCounter(ctx); err != nil || v != 1 {
		t.Errorf("ChangeCounter after reopen = %d, %v; want 1", v, err)
	}
}

func TestOpenRejectsUnknownScheme(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{"", "mysql://x", "trustgate.db", "sqlite://"} {
		if s, err := store.Open(ctxT(t), dsn); err == nil {
			_ = s.Close()
			t.Errorf("Open(%q) succeeded, want an error", dsn)
		}
	}
}

func TestOpenSQLitePaths(t *testing.T) {
	if testdb.PostgresURL() != "" {
		t.Log("SQLite-only test, runs on SQLite even when PostgreSQL is configured")
	}
	dir := t.TempDir()
	t.Chdir(dir)
	tests := []struct {
		dsn  string
		file string
	}{
		{"sqlite://relative.db", filepath.Join(dir, "relative.db")},
		{"sqlite://./sub/../dot.db", filepath.Join(dir, "dot.db")},
		{"sqlite://" + filepath.Join(dir, "absolute.db"), filepath.Join(dir, "absolute.db")},
		{"sqlite://" + filepath.Join(dir, "odd #?% name.db"), filepath.Join(dir, "odd #?% name.db")},
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.dsn, func(t *testing.T) {
			s := open(t, tt.dsn)
			if s.Dialect() != store.DialectSQLite {
				t.Errorf("Dialect() = %q", s.Dialect())
			}
			if _, err := os.Stat(tt.file); err != nil {
				t.Errorf("database file: %v", err)
			}
		})
	}
	if !strings.HasPrefix(filepath.Join(dir, "absolute.db"), "/") {
		t.Fatalf("t.TempDir() is not absolute")
	}
}

// Replicas share one database: a change made through one Store moves the change counter that
// another Store polls, and the other Store reads the new state at once.
func TestSecondStoreSeesChangesAndCounter(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	ctx := ctxT(t)
	a, b := open(t, dsn), open(t, dsn)
	before, err := b.ChangeCounter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := newConnection("shared", "github", "draft")
	if err := a.CreateConnection(ctx, c, nil); err != nil {
		t.Fatal(err)
	}
	if after, err := b.ChangeCounter(ctx); err != nil || after != before+1 {
		t.Errorf("replica ChangeCounter = %d, %v; want %d", after, err, before+1)
	}
	got, err := b.GetConnection(ctx, c.ID)
	if err != nil {
		t.Fatalf("replica GetConnection: %v", err)
	}
	assertConnectionEqual(t, got, c)
	next := *c
	next.Status = "inactive"
	if err := b.UpdateConnection(ctx, &next, 1, nil); err != nil {
		t.Fatalf("replica UpdateConnection: %v", err)
	}
	if got, err := a.GetConnection(ctx, c.ID); err != nil || got.Status != "inactive" || got.Revision != 2 {
		t.Errorf("after replica update: %+v, %v", got, err)
	}
}
