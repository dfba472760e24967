package audit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storetest"
)

// gatedOnceSink is gatedSink for batches with single-use records too.
type gatedOnceSink struct {
	*gatedSink
	store *store.Store
}

func (g gatedOnceSink) AppendAuditOnce(ctx context.Context, recs []connection.SingleUse, build func([]bool) []api.AuditEvent) error {
	g.entered <- len(recs)
	<-g.gate
	if g.fail != nil {
		return g.fail
	}
	return g.store.AppendAuditOnce(ctx, recs, build)
}

func onceEvents(i int, key string) (api.AuditEvent, connection.SingleUse, api.AuditEvent) {
	granted := ev(i)
	refused := granted
	refused.Outcome, refused.Reason = api.OutcomeDenied, "replay"
	return granted, connection.SingleUse{ConnectionID: "c", TokenKey: key, Until: time.Now().Add(time.Hour)}, refused
}

// Within one batch and across batches, a key is granted once: the others are refused, audited as
// denied under the id the grant would have had, and the plain events batched with them are stored
// as they are.
func TestRecordOnceGrantsEachKeyOnce(t *testing.T) {
	s := storetest.New(t)
	sink := gatedOnceSink{gatedSink: newGatedSink(s), store: s}
	w := NewWriter(sink, Options{})
	defer w.Close()
	ctx := context.Background()

	// Batch 1: one plain event holds the writer while the rest queue up behind it.
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := w.Record(ctx, ev(0)); err != nil {
			t.Error(err)
		}
	})
	<-sink.entered
	results := make([]error, 4)
	ids := []string{"00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002", "", "00000000-0000-4000-8000-000000000004"}
	keys := []string{"k1", "k1", "", "k2"}
	for i := range 4 {
		if i == 2 {
			wg.Go(func() { results[i] = w.Record(ctx, ev(i)) })
		} else {
			wg.Go(func() {
				g, rec, r := onceEvents(i, keys[i])
				g.ID = ids[i]
				results[i] = w.RecordOnce(ctx, g, rec, r)
			})
		}
		waitQueued(t, w, i+1) // in this order
	}
	sink.gate <- struct{}{} // commit batch 1
	if n := <-sink.entered; n != 2 {
		t.Fatalf("batch 2 carries %d records, want 2 (k1 once, k2)", n)
	}
	sink.gate <- struct{}{}
	wg.Wait()
	if results[0] != nil || !errors.Is(results[1], ErrReplay) || results[2] != nil || results[3] != nil {
		t.Fatalf("results %v: want k1 granted, k1 again refused, the plain event and k2 stored", results)
	}

	// Batch 3: k2 again, on its own.
	wg.Go(func() {
		g, rec, r := onceEvents(9, "k2")
		results[0] = w.RecordOnce(ctx, g, rec, r)
	})
	<-sink.entered
	sink.gate <- struct{}{}
	wg.Wait()
	if !errors.Is(results[0], ErrReplay) {
		t.Fatalf("k2 in a later batch: %v, want ErrReplay", results[0])
	}

	stored, _, err := s.ListAudit(ctx, connection.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]api.AuditEvent{}
	outcomes := map[string]int{}
	for _, e := range stored {
		byID[e.ID] = e
		outcomes[e.Outcome+"/"+e.Reason]++
	}
	if len(stored) != 6 || outcomes["granted/"] != 4 || outcomes["denied/replay"] != 2 {
		t.Fatalf("stored %d events with outcomes %v; want 4 granted (one plain) and 2 denied replays", len(stored), outcomes)
	}
	if e := byID[ids[1]]; e.Outcome != api.OutcomeDenied {
		t.Errorf("the refused event under the grant's id %s is %+v", ids[1], e)
	}
	// The refusals took their grants' places in the hash chain: the log verifies, one chain of 6.
	v, err := verifyStore(t, s, nil)
	if err != nil {
		t.Fatalf("the audit log with single-use refusals does not verify: %v", err)
	}
	if cs := v.Chains(); len(cs) != 1 || cs[0].Events != 6 {
		t.Errorf("chains %+v, want one chain of the 6 events", cs)
	}
}

// A commit that fails answers every waiter with its error, replays included (nothing was decided),
// and leaves no record: the token can be exchanged once the store is back.
func TestRecordOnceFailedCommitLeavesNoRecord(t *testing.T) {
	s := storetest.New(t)
	sink := gatedOnceSink{gatedSink: newGatedSink(s), store: s}
	sink.fail = errors.New("database down")
	w := NewWriter(sink, Options{})
	defer w.Close()
	errc := make(chan error, 1)
	go func() {
		g, rec, r := onceEvents(1, "k")
		errc <- w.RecordOnce(context.Background(), g, rec, r)
	}()
	<-sink.entered
	sink.gate <- struct{}{}
	if err := <-errc; err == nil || errors.Is(err, ErrReplay) {
		t.Fatalf("RecordOnce on a failing store: %v", err)
	}
	sink.fail = nil
	go func() {
		g, rec, r := onceEvents(2, "k")
		errc <- w.RecordOnce(context.Background(), g, rec, r)
	}()
	<-sink.entered
	sink.gate <- struct{}{}
	if err := <-errc; err != nil {
		t.Fatalf("after the store came back: %v, want the key granted", err)
	}
}

// A sink that cannot store records makes RecordOnce fail closed.
func TestRecordOnceNeedsAOnceSink(t *testing.T) {
	w := NewWriter(newGatedSink(storetest.New(t)), Options{})
	defer w.Close()
	g, rec, r := onceEvents(1, "k")
	if err := w.RecordOnce(context.Background(), g, rec, r); err == nil {
		t.Fatal("RecordOnce succeeded on a sink without single-use records")
	}
}
