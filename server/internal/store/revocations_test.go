package store_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/testdb"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storetest"
)

func TestRevokeTokenOnceWithItsAuditEventAndReadItBack(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	r := store.Revocation{JTI: "jti-1", ConnectionID: "c1", ExpiresAt: now.Add(time.Hour), RevokedAt: now}
	ev := &api.AuditEvent{Actor: "workload:x", Action: api.ActionTokenRevoke, Outcome: api.OutcomeSuccess, Detail: map[string]any{"jti": "jti-1"}}
	if ok, err := s.RevokeToken(ctx, r, ev); err != nil || !ok {
		t.Fatalf("RevokeToken = %v, %v", ok, err)
	}
	v1, err := s.RevocationsVersion(ctx)
	if err != nil || v1 != 1 {
		t.Fatalf("RevocationsVersion = %d, %v; want 1", v1, err)
	}
	// Revoking it again changes nothing: no second record, no version move, no second event.
	if ok, err := s.RevokeToken(ctx, r, &api.AuditEvent{Actor: "again", Action: api.ActionTokenRevoke}); err != nil || ok {
		t.Fatalf("second RevokeToken = %v, %v; want false, nil", ok, err)
	}
	if v, _ := s.RevocationsVersion(ctx); v != v1 {
		t.Errorf("version moved to %d on a repeated revocation", v)
	}
	if evs, _, _ := s.ListAudit(ctx, connection.AuditFilter{Action: api.ActionTokenRevoke}); len(evs) != 1 || evs[0].Actor != "workload:x" {
		t.Errorf("audit = %+v, want the first revocation's event only", evs)
	}
	got, err := s.RevocationsSince(ctx, 0, now)
	if err != nil || len(got) != 1 {
		t.Fatalf("RevocationsSince = %+v, %v", got, err)
	}
	if g := got[0]; g.JTI != "jti-1" || g.ConnectionID != "c1" || !g.ExpiresAt.Equal(r.ExpiresAt) || !g.RevokedAt.Equal(now) || g.Seq != 1 {
		t.Errorf("revocation = %+v", g)
	}
	if got, _ := s.RevocationsSince(ctx, 1, now); len(got) != 0 {
		t.Errorf("RevocationsSince(1) = %+v, want none", got)
	}
	if got, _ := s.RevocationsSince(ctx, 0, r.ExpiresAt); len(got) != 0 {
		t.Errorf("RevocationsSince at the token's expiry = %+v, want none", got)
	}
}

// Revocations from several replicas at once: each gets its own seq, and a reader that follows
// them by seq misses none.
func TestConcurrentRevocationsAcrossStoresAreNumberedWithoutGaps(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	ctx := ctxT(t)
	stores := []*store.Store{open(t, dsn), open(t, dsn)}
	now := time.Now()
	const n = 40
	var wg sync.WaitGroup
	start := make(chan struct{})
	seen := map[string]bool{}
	var mu sync.Mutex
	last := int64(0)
	stop := make(chan struct{})
	reader := make(chan struct{})
	go func() { // a replica polling while the revocations land
		defer close(reader)
		for {
			// Once every writer is done, one more read that starts after that must see the rest.
			stopped := false
			select {
			case <-stop:
				stopped = true
			default:
			}
			got, err := stores[1].RevocationsSince(ctx, last, now)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			for _, r := range got {
				if r.Seq != last+1 {
					t.Errorf("read seq %d after %d: a revocation was skipped", r.Seq, last)
				}
				last = r.Seq
				seen[r.JTI] = true
			}
			mu.Unlock()
			if stopped && len(got) == 0 {
				return
			}
		}
	}()
	for i := range n {
		wg.Go(func() {
			<-start
			r := store.Revocation{JTI: fmt.Sprintf("jti-%d", i), ExpiresAt: now.Add(time.Hour)}
			if _, err := stores[i%2].RevokeToken(ctx, r, nil); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	close(stop)
	<-reader
	if len(seen) != n {
		t.Errorf("the poller saw %d of %d revocations", len(seen), n)
	}
}

func TestPurgeRevocationsDropsOnlyExpiredOnes(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for i, exp := range []time.Duration{-2 * time.Hour, -time.Minute, 0, time.Minute} {
		if _, err := s.RevokeToken(ctx, store.Revocation{JTI: fmt.Sprint(i), ExpiresAt: now.Add(exp)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.PurgeRevocations(ctx, now, 1)
	if err != nil || n != 1 {
		t.Fatalf("PurgeRevocations(limit 1) = %d, %v", n, err)
	}
	if n, err = s.PurgeRevocations(ctx, now, 100); err != nil || n != 2 {
		t.Fatalf("PurgeRevocations = %d, %v; want the other 2 expired", n, err)
	}
	left, _ := s.RevocationsSince(ctx, 0, now.Add(-24*time.Hour))
	var jtis []string
	for _, r := range left {
		jtis = append(jtis, r.JTI)
	}
	if !slices.Equal(jtis, []string{"3"}) {
		t.Errorf("left %v, want only the unexpired one", jtis)
	}
}
