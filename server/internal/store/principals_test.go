package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/principal"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storetest"
)

func TestPrincipals(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)

	if n, err := s.CountPrincipals(ctx); err != nil || n != 0 {
		t.Fatalf("CountPrincipals on empty = %d, %v", n, err)
	}
	key, hash, err := principal.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.Local)
	alice := principal.Principal{Name: "alice", Role: api.RoleDevOpsAdmin, KeyHash: hash, CreatedAt: created}
	if err := s.CreatePrincipal(ctx, alice); err != nil {
		t.Fatalf("CreatePrincipal: %v", err)
	}
	if err := s.CreatePrincipal(ctx, newPrincipal(t, "bob", api.RoleSecurityAdmin)); err != nil {
		t.Fatalf("CreatePrincipal: %v", err)
	}

	got, err := s.PrincipalByKeyHash(ctx, principal.HashKey(key))
	if err != nil {
		t.Fatalf("PrincipalByKeyHash: %v", err)
	}
	if got.Name != "alice" || got.Role != api.RoleDevOpsAdmin || got.RevokedAt != nil ||
		!got.CreatedAt.Equal(created.Truncate(time.Microsecond)) || got.CreatedAt.Location() != time.UTC {
		t.Errorf("PrincipalByKeyHash = %+v", got)
	}
	if _, err := s.PrincipalByKeyHash(ctx, principal.HashKey("tg_wrong")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown key: %v, want ErrNotFound", err)
	}

	dup := newPrincipal(t, "alice", api.RoleAuditor)
	if err := s.CreatePrincipal(ctx, dup); !errors.Is(err, store.ErrDuplicateName) {
		t.Errorf("duplicate name: %v, want ErrDuplicateName", err)
	}

	if err := s.RevokePrincipal(ctx, "alice"); err != nil {
		t.Fatalf("RevokePrincipal: %v", err)
	}
	if _, err := s.PrincipalByKeyHash(ctx, hash); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoked key still authenticates: %v", err)
	}
	if err := s.RevokePrincipal(ctx, "alice"); err != nil {
		t.Errorf("revoking again: %v, want nil", err)
	}
	if err := s.RevokePrincipal(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoke unknown: %v, want ErrNotFound", err)
	}
	if err := s.CreatePrincipal(ctx, newPrincipal(t, "alice", api.RoleAuditor)); !errors.Is(err, store.ErrDuplicateName) {
		t.Errorf("reusing a revoked name: %v, want ErrDuplicateName", err)
	}

	list, err := s.ListPrincipals(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("ListPrincipals = %+v, %v", list, err)
	}
	if list[0].Name != "alice" || list[0].RevokedAt == nil || list[1].Name != "bob" || list[1].RevokedAt != nil {
		t.Errorf("ListPrincipals = %+v", list)
	}
	if n, err := s.CountPrincipals(ctx); err != nil || n != 2 {
		t.Errorf("CountPrincipals = %d, %v; want 2 (revoked included)", n, err)
	}
}
