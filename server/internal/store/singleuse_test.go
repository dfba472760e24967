package store_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/testdb"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storetest"
)

// onceBatch is what the audit writer's hook does: one event per record, its outcome saying
// whether the record was new.
func onceBatch(recs []connection.SingleUse) (func([]bool) []api.AuditEvent, *[]bool) {
	var got []bool
	return func(fresh []bool) []api.AuditEvent {
		got = append([]bool(nil), fresh...)
		evs := make([]api.AuditEvent, len(recs))
		for i, r := range recs {
			outcome := api.OutcomeGranted
			if !fresh[i] {
				outcome = api.OutcomeDenied
			}
			evs[i] = api.AuditEvent{Action: api.ActionTokenExchange, ConnectionID: r.ConnectionID, Outcome: outcome, Detail: map[string]any{"key": r.TokenKey}}
		}
		return evs
	}, &got
}

// A record is new once per (connection, key): again in a later batch it is not, in another
// connection it is; the events of both batches are stored with the outcomes the hook chose.
func TestAppendAuditOnceRecordsEachKeyOncePerConnection(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	until := time.Now().Add(time.Hour)
	first := []connection.SingleUse{{ConnectionID: "c1", TokenKey: "k1", Until: until}, {ConnectionID: "c1", TokenKey: "k2", Until: until}}
	build, fresh := onceBatch(first)
	if err := s.AppendAuditOnce(ctx, first, build); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(*fresh) != "[true true]" {
		t.Fatalf("first batch fresh = %v, want both new", *fresh)
	}
	second := []connection.SingleUse{{ConnectionID: "c1", TokenKey: "k2", Until: until}, {ConnectionID: "c2", TokenKey: "k1", Until: until}, {ConnectionID: "c1", TokenKey: "k3", Until: until}}
	build, fresh = onceBatch(second)
	if err := s.AppendAuditOnce(ctx, second, build); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(*fresh) != "[false true true]" {
		t.Fatalf("second batch fresh = %v, want k2 in c1 seen, k1 in c2 and k3 new", *fresh)
	}
	evs, _, err := s.ListAudit(ctx, connection.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	for i := len(evs) - 1; i >= 0; i-- {
		outcomes = append(outcomes, evs[i].Outcome)
	}
	if fmt.Sprint(outcomes) != "[granted granted denied granted granted]" {
		t.Fatalf("stored outcomes %v", outcomes)
	}
	if n, _ := s.CountSingleUse(ctx); n != 4 {
		t.Fatalf("%d records, want 4", n)
	}
}

// When the events of a batch cannot be stored, its records are not either: the token was not
// exchanged, so presenting it again must work.
func TestAppendAuditOnceIsAllOrNothing(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	recs := []connection.SingleUse{{ConnectionID: "c1", TokenKey: "k1", Until: time.Now().Add(time.Hour)}}
	dup := "00000000-0000-4000-8000-00000000dddd"
	// One id at one time: on PostgreSQL's partitioned audit table ids are unique per (id, time).
	at := time.Now().UTC().Truncate(time.Microsecond)
	err := s.AppendAuditOnce(ctx, recs, func([]bool) []api.AuditEvent {
		return []api.AuditEvent{{ID: dup, Time: at, Action: api.ActionTokenExchange}, {ID: dup, Time: at, Action: api.ActionTokenExchange}}
	})
	if err == nil {
		t.Fatal("a batch with a repeated event id succeeded")
	}
	if n, _ := s.CountSingleUse(ctx); n != 0 {
		t.Fatalf("%d records left by a failed batch", n)
	}
	build, fresh := onceBatch(recs)
	if err := s.AppendAuditOnce(ctx, recs, build); err != nil || !(*fresh)[0] {
		t.Fatalf("after the failed batch: err %v, fresh %v; want the key new", err, *fresh)
	}
}

// Batches larger than one INSERT of records work, and report every key.
func TestAppendAuditOnceManyRecords(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	recs := make([]connection.SingleUse, 1200)
	for i := range recs {
		recs[i] = connection.SingleUse{ConnectionID: "c", TokenKey: fmt.Sprintf("k%04d", i), Until: time.Now().Add(time.Hour)}
	}
	build, fresh := onceBatch(recs[:700])
	if err := s.AppendAuditOnce(ctx, recs[:700], build); err != nil {
		t.Fatal(err)
	}
	for i, f := range *fresh {
		if !f {
			t.Fatalf("first batch: record %d fresh = false", i)
		}
	}
	build, fresh = onceBatch(recs)
	if err := s.AppendAuditOnce(ctx, recs, build); err != nil {
		t.Fatal(err)
	}
	for i, f := range *fresh {
		if f != (i >= 700) {
			t.Fatalf("record %d fresh = %v", i, f)
		}
	}
}

// Two stores on one database (two replicas) insert the same keys at the same time: each key is
// new for exactly one of them.
func TestAppendAuditOnceAcrossStoresOnOneDatabase(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	stores := make([]*store.Store, 2)
	for i := range stores {
		s, err := store.Open(ctxT(t), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		stores[i] = s
	}
	const keys, rounds = 20, 5
	wins := make([][]bool, len(stores)*rounds)
	var wg sync.WaitGroup
	for r := range rounds {
		for i, s := range stores {
			wg.Go(func() {
				recs := make([]connection.SingleUse, keys)
				for k := range recs {
					recs[k] = connection.SingleUse{ConnectionID: "c", TokenKey: fmt.Sprintf("r%d-k%d", r, k), Until: time.Now().Add(time.Hour)}
				}
				build, fresh := onceBatch(recs)
				if err := s.AppendAuditOnce(ctxT(t), recs, build); err != nil {
					t.Error(err)
					return
				}
				wins[r*len(stores)+i] = *fresh
			})
		}
	}
	wg.Wait()
	for r := range rounds {
		for k := range keys {
			a, b := wins[r*2], wins[r*2+1]
			if a == nil || b == nil || a[k] == b[k] {
				t.Fatalf("round %d key %d: new for store 0 %v, store 1 %v; want exactly one", r, k, a, b)
			}
		}
	}
}

// Expired records go in bounded batches; unexpired ones stay, whatever the connection.
func TestDeleteExpiredSingleUseInBatches(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	var recs []connection.SingleUse
	for i := range 30 {
		until := now.Add(-time.Second) // expired
		if i%3 == 0 {
			until = now.Add(time.Minute)
		}
		// The same key in two connections, one expired and one not, for every third key.
		recs = append(recs, connection.SingleUse{ConnectionID: "a", TokenKey: fmt.Sprintf("k%d", i), Until: until})
	}
	recs = append(recs, connection.SingleUse{ConnectionID: "b", TokenKey: "k1", Until: now.Add(time.Minute)})
	build, _ := onceBatch(recs)
	if err := s.AppendAuditOnce(ctx, recs, build); err != nil {
		t.Fatal(err)
	}
	var removed []int64
	for {
		n, err := s.DeleteExpiredSingleUse(ctx, now, 7)
		if err != nil {
			t.Fatal(err)
		}
		removed = append(removed, n)
		if n < 7 {
			break
		}
	}
	if fmt.Sprint(removed) != "[7 7 6 0]" && fmt.Sprint(removed) != "[7 7 6]" {
		t.Fatalf("removed per batch %v, want batches of at most 7 summing to 20", removed)
	}
	if n, _ := s.CountSingleUse(ctx); n != 11 {
		t.Fatalf("%d records left, want the 10 unexpired ones and b's k1", n)
	}
	// The unexpired records still refuse their keys.
	again := []connection.SingleUse{{ConnectionID: "b", TokenKey: "k1", Until: now}, {ConnectionID: "a", TokenKey: "k1", Until: now}, {ConnectionID: "a", TokenKey: "k0", Until: now}}
	build, fresh := onceBatch(again)
	if err := s.AppendAuditOnce(ctx, again, build); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(*fresh) != "[false true false]" {
		t.Fatalf("after cleanup fresh = %v, want only a's expired k1 new again", *fresh)
	}
}
