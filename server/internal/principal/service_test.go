package principal_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/principal"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storeerr"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storetest"
)

func TestKeysAuthenticateUntilRevoked(t *testing.T) {
	ps := &principal.Service{Store: storetest.New(t)}
	ctx := context.Background()
	key, err := ps.Create(ctx, "alice", api.RoleSecurityAdmin)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ps.Authenticate(ctx, key)
	if err != nil || p.Name != "alice" || p.Role != api.RoleSecurityAdmin {
		t.Fatalf("Authenticate = %+v, %v; want alice, security_admin", p, err)
	}
	other, _, _ := principal.NewKey()
	if _, err := ps.Authenticate(ctx, other); !errors.Is(err, principal.ErrUnknownKey) || errors.Is(err, storeerr.ErrNotFound) {
		t.Fatalf("an unknown key: %v, want ErrUnknownKey and not the store's error", err)
	}
	if err := ps.Revoke(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := ps.Revoke(ctx, "alice"); err != nil {
		t.Fatalf("revoking again: %v, want success", err)
	}
	if _, err := ps.Authenticate(ctx, key); !errors.Is(err, principal.ErrUnknownKey) {
		t.Fatalf("a revoked key: %v, want ErrUnknownKey", err)
	}
	list, err := ps.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "alice" || !list[0].Revoked() || list[0].KeyHash == key {
		t.Fatalf("List = %+v, %v; want alice, revoked, holding a hash and never the key", list, err)
	}
}

func TestKeysRefusals(t *testing.T) {
	ps := &principal.Service{Store: storetest.New(t)}
	ctx := context.Background()
	if _, err := ps.Create(ctx, "bob", "root"); err == nil || !strings.Contains(err.Error(), api.RoleDevOpsAdmin) {
		t.Errorf("an unknown role: %v, want an error naming the roles", err)
	}
	if _, err := ps.Create(ctx, "Bob Smith", api.RoleAuditor); err == nil || !strings.Contains(err.Error(), api.NamePattern) {
		t.Errorf("an invalid name: %v, want an error naming the pattern", err)
	}
	if _, err := ps.Create(ctx, "bob", api.RoleAuditor); err != nil {
		t.Fatal(err)
	}
	if err := ps.Revoke(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	// Names are never reused, revoked ones included.
	_, err := ps.Create(ctx, "bob", api.RoleAuditor)
	if !errors.Is(err, principal.ErrNameTaken) || errors.Is(err, storeerr.ErrDuplicateName) || !strings.Contains(err.Error(), `"bob" already exists`) {
		t.Errorf("a taken name: %v, want ErrNameTaken saying so, not the store's error", err)
	}
	if err := ps.Revoke(ctx, "carol"); !errors.Is(err, principal.ErrNoSuchPrincipal) || errors.Is(err, storeerr.ErrNotFound) {
		t.Errorf("revoking an unknown name: %v, want ErrNoSuchPrincipal", err)
	}
}

func TestBootstrapCreatesKeysOnlyOnADatabaseThatNeverHadOne(t *testing.T) {
	ps := &principal.Service{Store: storetest.New(t)}
	ctx := context.Background()
	first := []principal.Principal{{Name: "devops", Role: api.RoleDevOpsAdmin}, {Name: "security", Role: api.RoleSecurityAdmin}}
	keys, err := ps.Bootstrap(ctx, first)
	if err != nil || len(keys) != 2 {
		t.Fatalf("Bootstrap on an empty database = %d keys, %v; want 2", len(keys), err)
	}
	for i, key := range keys {
		if p, err := ps.Authenticate(ctx, key); err != nil || p.Name != first[i].Name || p.Role != first[i].Role {
			t.Errorf("bootstrap key %d authenticates as %+v, %v; want %s", i, p, err, first[i].Name)
		}
	}
	for _, p := range first {
		if err := ps.Revoke(ctx, p.Name); err != nil {
			t.Fatal(err)
		}
	}
	// Every key revoked is not a first run: nothing is created.
	if keys, err := ps.Bootstrap(ctx, []principal.Principal{{Name: "again", Role: api.RoleDevOpsAdmin}}); err != nil || keys != nil {
		t.Fatalf("Bootstrap on a database that had keys = %v, %v; want nothing", keys, err)
	}
}
