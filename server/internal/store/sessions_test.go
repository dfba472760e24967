package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/console/session"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storetest"
)

func TestConsoleSessions(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	for _, p := range []struct{ name, role string }{{"alice", api.RoleSecurityAdmin}, {"bob", api.RoleAuditor}} {
		if err := s.CreatePrincipal(ctx, newPrincipal(t, p.name, p.role)); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Date(2026, 12, 3, 9, 0, 0, 123456789, time.UTC)
	alice := session.Session{Principal: "alice", CreatedAt: start, ExpiresAt: start.Add(12 * time.Hour)}
	bob := session.Session{Principal: "bob", CreatedAt: start, ExpiresAt: start.Add(time.Hour)}
	for hash, sess := range map[string]session.Session{"hash-a": alice, "hash-b": bob} {
		if err := s.CreateSession(ctx, hash, sess); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
	}

	got, err := s.SessionByTokenHash(ctx, "hash-a", start.Add(time.Minute))
	if err != nil {
		t.Fatalf("SessionByTokenHash: %v", err)
	}
	want := session.Session{Principal: "alice", Role: api.RoleSecurityAdmin, CreatedAt: start.Truncate(time.Microsecond),
		ExpiresAt: start.Add(12 * time.Hour).Truncate(time.Microsecond)}
	if *got != want {
		t.Errorf("SessionByTokenHash = %+v, want %+v (the role comes from the principal)", *got, want)
	}
	notFound := func(hash string, now time.Time, why string) {
		t.Helper()
		if _, err := s.SessionByTokenHash(ctx, hash, now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", why, err)
		}
	}
	notFound("hash-x", start, "an unknown token")
	notFound("hash-b", start.Add(time.Hour), "a session at its expiry")

	// Revoking the principal's key ends its sessions.
	if err := s.RevokePrincipal(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	notFound("hash-a", start.Add(time.Minute), "a revoked principal's session")

	// Expired rows are deleted; live ones stay.
	if err := s.DeleteExpiredSessions(ctx, start.Add(2*time.Hour)); err != nil {
		t.Fatalf("DeleteExpiredSessions: %v", err)
	}
	notFound("hash-b", start, "a session deleted as expired, looked up at an earlier time")
	if err := s.DeleteSession(ctx, "hash-a"); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if err := s.DeleteSession(ctx, "hash-a"); err != nil {
		t.Errorf("deleting a deleted session: %v, want nil", err)
	}
}
