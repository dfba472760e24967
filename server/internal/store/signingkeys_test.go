package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/testdb"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storetest"
)

// addKey appends k through UpdateSigningKeys.
func addKey(ctx context.Context, s *store.Store, k store.SigningKey) ([]store.SigningKey, error) {
	return s.UpdateSigningKeys(ctx, func(cur []store.SigningKey) ([]store.SigningKey, []api.AuditEvent, error) {
		return append(cur, k), nil, nil
	})
}

func TestUpdateSigningKeysStoresEveryFieldAndMovesTheVersionOnlyOnChange(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	v0, err := s.SigningKeysVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	k1 := newKey("k1")
	k1.CreatedAt = time.Date(2026, 1, 1, 0, 0, 0, 1500, time.UTC)
	k1.ActivatesAt = k1.CreatedAt.Add(time.Hour)
	k1.KEKID = "kek-123456789abc"
	ev := api.AuditEvent{Actor: "ops", Action: api.ActionKeyRotate, Outcome: api.OutcomeSuccess, Detail: map[string]any{"kid": "k1"}}
	keys, err := s.UpdateSigningKeys(ctx, func(cur []store.SigningKey) ([]store.SigningKey, []api.AuditEvent, error) {
		if len(cur) != 0 {
			t.Errorf("a fresh store has %d keys", len(cur))
		}
		return append(cur, k1), []api.AuditEvent{ev}, nil
	})
	if err != nil || len(keys) != 1 {
		t.Fatalf("UpdateSigningKeys = %+v, %v", keys, err)
	}
	got := keys[0]
	if got.KID != "k1" || got.Algorithm != "ES256" || !bytes.Equal(got.PublicJWK, k1.PublicJWK) || got.KEKID != k1.KEKID ||
		!bytes.Equal(got.SealedPrivate, k1.SealedPrivate) || !got.CreatedAt.Equal(k1.CreatedAt.Truncate(time.Microsecond)) ||
		!got.ActivatesAt.Equal(k1.ActivatesAt.Truncate(time.Microsecond)) || got.WithdrawnAt != nil {
		t.Errorf("stored key = %+v, want %+v", got, k1)
	}
	v1, _ := s.SigningKeysVersion(ctx)
	if v1 <= v0 {
		t.Errorf("version %d after adding a key, was %d", v1, v0)
	}
	if evs, _, _ := s.ListAudit(ctx, connection.AuditFilter{Action: api.ActionKeyRotate}); len(evs) != 1 || evs[0].Actor != "ops" {
		t.Errorf("audit = %+v, want the plan's event", evs)
	}

	// A plan that changes nothing leaves the version alone.
	if _, err := s.UpdateSigningKeys(ctx, func(cur []store.SigningKey) ([]store.SigningKey, []api.AuditEvent, error) { return cur, nil, nil }); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.SigningKeysVersion(ctx); v != v1 {
		t.Errorf("version moved to %d on a plan that changed nothing", v)
	}

	// Withdrawal and erasure are stored.
	w := k1.ActivatesAt.Add(time.Minute).Truncate(time.Microsecond)
	keys, err = s.UpdateSigningKeys(ctx, func(cur []store.SigningKey) ([]store.SigningKey, []api.AuditEvent, error) {
		cur[0].WithdrawnAt, cur[0].SealedPrivate = &w, nil
		return cur, nil, nil
	})
	if err != nil || keys[0].WithdrawnAt == nil || !keys[0].WithdrawnAt.Equal(w) || len(keys[0].SealedPrivate) != 0 {
		t.Fatalf("after withdrawal: %+v, %v", keys, err)
	}
	if v, _ := s.SigningKeysVersion(ctx); v <= v1 {
		t.Errorf("version %d after a withdrawal, was %d", v, v1)
	}
}

func TestUpdateSigningKeysRefusesToDropAKeyOrChangeItsPublicPart(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	if _, err := addKey(ctx, s, newKey("k1")); err != nil {
		t.Fatal(err)
	}
	plans := map[string]func([]store.SigningKey) []store.SigningKey{
		"drop":           func(cur []store.SigningKey) []store.SigningKey { return nil },
		"new public JWK": func(cur []store.SigningKey) []store.SigningKey { cur[0].PublicJWK = []byte(`{}`); return cur },
		"twice":          func(cur []store.SigningKey) []store.SigningKey { return append(cur, cur[0]) },
	}
	for name, plan := range plans {
		_, err := s.UpdateSigningKeys(ctx, func(cur []store.SigningKey) ([]store.SigningKey, []api.AuditEvent, error) {
			return plan(cur), []api.AuditEvent{{Actor: "x", Action: api.ActionKeyRotate}}, nil
		})
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A failed plan commits nothing, not even its audit event.
	planErr := errors.New("no")
	if _, err := s.UpdateSigningKeys(ctx, func(cur []store.SigningKey) ([]store.SigningKey, []api.AuditEvent, error) {
		return append(cur, newKey("k2")), nil, planErr
	}); !errors.Is(err, planErr) {
		t.Errorf("the plan's error was not returned: %v", err)
	}
	keys, _ := s.SigningKeys(ctx)
	evs, _, _ := s.ListAudit(ctx, connection.AuditFilter{})
	if len(keys) != 1 || len(evs) != 0 {
		t.Errorf("after refused plans: %d keys, %d audit events; want 1 and 0", len(keys), len(evs))
	}
}

// Replicas racing: several Store instances on one database each plan "add a key if there is only
// one"; the plans run one after another, so exactly one key is added.
func TestUpdateSigningKeysSerialisesPlansAcrossStores(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	ctx := ctxT(t)
	stores := []*store.Store{open(t, dsn), open(t, dsn)}
	if _, err := addKey(ctx, stores[0], newKey("first")); err != nil {
		t.Fatal(err)
	}
	const perStore = 8
	var wg sync.WaitGroup
	errs := make([]error, len(stores)*perStore)
	start := make(chan struct{})
	for i := range errs {
		wg.Go(func() {
			<-start
			_, errs[i] = stores[i%len(stores)].UpdateSigningKeys(ctx, func(cur []store.SigningKey) ([]store.SigningKey, []api.AuditEvent, error) {
				if len(cur) > 1 {
					return cur, nil, nil
				}
				return append(cur, newKey(fmt.Sprintf("next-%d", i))), []api.AuditEvent{{Actor: "r", Action: api.ActionKeyRotate, Outcome: api.OutcomeSuccess}}, nil
			})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	for _, s := range stores {
		keys, err := s.SigningKeys(ctx)
		if err != nil || len(keys) != 2 || !strings.HasPrefix(keys[1].KID, "next-") {
			t.Errorf("SigningKeys = %d keys, %v; want the first and one next", len(keys), err)
		}
	}
	if evs, _, _ := stores[0].ListAudit(ctx, connection.AuditFilter{}); len(evs) != 1 {
		t.Errorf("%d audit events, want 1", len(evs))
	}
}

// A database from before the key lifecycle (schema 3) upgrades in place: its key signs from its
// creation, has no KEK id recorded and is not withdrawn.
func TestUpgradeGivesAnOldKeyItsCreationAsActivation(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	ctx := ctxT(t)
	old, err := store.Open(ctx, dsn, store.WithSchemaVersion(3))
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := old.InsertLegacySigningKey(ctx, "legacy", created); err != nil {
		_ = old.Close()
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	keys, err := open(t, dsn).SigningKeys(ctx)
	if err != nil || len(keys) != 1 {
		t.Fatalf("SigningKeys after the upgrade: %+v, %v", keys, err)
	}
	if k := keys[0]; !k.ActivatesAt.Equal(created) || k.KEKID != "" || k.WithdrawnAt != nil {
		t.Errorf("upgraded key = %+v, want activation %s, no KEK id, not withdrawn", k, created)
	}
}
