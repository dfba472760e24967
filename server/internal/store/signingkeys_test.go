package store_test

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/testdb"

	"github.com/trustgate/terraform-provider-trustgate/server/internal/store"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storetest"
)

func TestCreateFirstSigningKeyKeepsTheFirst(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	k1 := newKey("k1")
	k1.CreatedAt = time.Date(2026, 1, 1, 0, 0, 0, 1500, time.UTC)
	keys, err := s.CreateFirstSigningKey(ctx, k1)
	if err != nil || len(keys) != 1 {
		t.Fatalf("CreateFirstSigningKey = %+v, %v", keys, err)
	}
	got := keys[0]
	if got.KID != "k1" || got.Algorithm != "ES256" || !bytes.Equal(got.PublicJWK, k1.PublicJWK) ||
		!bytes.Equal(got.SealedPrivate, k1.SealedPrivate) || !got.CreatedAt.Equal(k1.CreatedAt.Truncate(time.Microsecond)) {
		t.Errorf("stored key = %+v, want %+v", got, k1)
	}
	keys, err = s.CreateFirstSigningKey(ctx, newKey("k2"))
	if err != nil || len(keys) != 1 || keys[0].KID != "k1" {
		t.Errorf("second CreateFirstSigningKey = %+v, %v; want only k1", keys, err)
	}
	if all, err := s.SigningKeys(ctx); err != nil || len(all) != 1 {
		t.Errorf("SigningKeys = %+v, %v", all, err)
	}
}

// Replicas starting together: several Store instances on one database race to create the first
// key; exactly one wins and every caller gets the winner's key back.
func TestCreateFirstSigningKeyRaceAcrossStoresYieldsOneKey(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	ctx := ctxT(t)
	stores := []*store.Store{open(t, dsn), open(t, dsn)}
	const perStore = 8
	var wg sync.WaitGroup
	results := make([][]store.SigningKey, len(stores)*perStore)
	errs := make([]error, len(results))
	start := make(chan struct{})
	for i := range results {
		wg.Go(func() {
			<-start
			results[i], errs[i] = stores[i%len(stores)].CreateFirstSigningKey(ctx, newKey(fmt.Sprintf("kid-%d", i)))
		})
	}
	close(start)
	wg.Wait()
	winner := ""
	for i := range results {
		if errs[i] != nil {
			t.Errorf("caller %d: %v", i, errs[i])
			continue
		}
		if len(results[i]) != 1 {
			t.Errorf("caller %d saw %d keys, want 1", i, len(results[i]))
			continue
		}
		if winner == "" {
			winner = results[i][0].KID
		}
		if results[i][0].KID != winner {
			t.Errorf("caller %d got %s, another got %s", i, results[i][0].KID, winner)
		}
	}
	for _, s := range stores {
		if keys, err := s.SigningKeys(ctx); err != nil || len(keys) != 1 {
			t.Errorf("SigningKeys = %d keys, %v; want 1", len(keys), err)
		}
	}
}
