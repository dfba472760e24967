package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storetest"
)

// gatedSink passes batches to a real store, but holds each commit until the test opens the gate,
// so that the test decides deterministically what queues up behind a commit in flight.
type gatedSink struct {
	next    Sink
	entered chan int      // size of each batch as its commit starts
	gate    chan struct{} // one receive per commit
	fail    error         // when set, commits fail with it instead of storing
}

func newGatedSink(next Sink) *gatedSink {
	return &gatedSink{next: next, entered: make(chan int, 100), gate: make(chan struct{})}
}

func (g *gatedSink) AppendAudit(ctx context.Context, evs []api.AuditEvent) error {
	g.entered <- len(evs)
	<-g.gate
	if g.fail != nil {
		return g.fail
	}
	return g.next.AppendAudit(ctx, evs)
}

// AuditEventStored asks the real store: a failed commit (fail) left nothing behind.
func (g *gatedSink) AuditEventStored(ctx context.Context, id, chain string, seq int64) (bool, error) {
	return g.next.AuditEventStored(ctx, id, chain, seq)
}

// waitQueued waits until n events wait in the writer's queue.
func waitQueued(t *testing.T, w *Writer, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(w.queue) < n {
		if time.Now().After(deadline) {
			t.Fatalf("queue holds %d events, want %d", len(w.queue), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func ev(i int) api.AuditEvent {
	return api.AuditEvent{Action: api.ActionTokenExchange, Outcome: api.OutcomeGranted, Actor: fmt.Sprintf("actor-%d", i)}
}

func TestRecordCommitsQueuedEventsAsOneBatch(t *testing.T) {
	s := storetest.New(t)
	sink := newGatedSink(s)
	w := NewWriter(sink, Options{MaxBatch: 256})
	defer w.Close()
	ctx := context.Background()

	var wg sync.WaitGroup
	errs := make(chan error, 101)
	wg.Go(func() { errs <- w.Record(ctx, ev(0)) })
	if size := <-sink.entered; size != 1 {
		t.Fatalf("first batch has %d events, want 1", size)
	}
	// While the first commit is in flight, 100 more callers queue up.
	for i := 1; i <= 100; i++ {
		wg.Go(func() { errs <- w.Record(ctx, ev(i)) })
	}
	waitQueued(t, w, 100)
	sink.gate <- struct{}{} // commit batch 1
	if size := <-sink.entered; size != 100 {
		t.Errorf("second batch has %d events, want all 100 queued", size)
	}
	sink.gate <- struct{}{}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Record: %v", err)
		}
	}
	stored, _, err := s.ListAudit(ctx, connection.AuditFilter{Limit: 500})
	if err != nil || len(stored) != 101 {
		t.Fatalf("stored %d events, %v; want 101", len(stored), err)
	}
}

func TestRecordRespectsMaxBatch(t *testing.T) {
	s := storetest.New(t)
	sink := newGatedSink(s)
	w := NewWriter(sink, Options{MaxBatch: 10})
	defer w.Close()
	var wg sync.WaitGroup
	wg.Go(func() { _ = w.Record(context.Background(), ev(0)) })
	<-sink.entered
	for i := range 25 {
		wg.Go(func() { _ = w.Record(context.Background(), ev(i)) })
	}
	waitQueued(t, w, 25)
	var sizes []int
	for range 4 { // 1, then 10, 10, 5
		sink.gate <- struct{}{}
		if len(sizes) < 3 {
			sizes = append(sizes, <-sink.entered)
		}
	}
	wg.Wait()
	if fmt.Sprint(sizes) != "[10 10 5]" {
		t.Errorf("batch sizes after the first = %v, want [10 10 5]", sizes)
	}
}

// A busy writer (at least CommitSiblings events already waiting as a batch forms) waits up to
// CommitDelay for more before committing, so that one fsync covers more events.
func TestBusyWriterWaitsCommitDelayForMoreEvents(t *testing.T) {
	s := storetest.New(t)
	sink := newGatedSink(s)
	w := NewWriter(sink, Options{MaxBatch: 256, CommitDelay: 500 * time.Millisecond, CommitSiblings: 4})
	defer w.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { _ = w.Record(context.Background(), ev(0)) })
	<-sink.entered
	for i := 1; i <= 5; i++ {
		wg.Go(func() { _ = w.Record(context.Background(), ev(i)) })
	}
	waitQueued(t, w, 5)
	sink.gate <- struct{}{} // commit batch 1; the writer takes the 5 waiting events
	waitQueued(t, w, 0)
	time.Sleep(50 * time.Millisecond) // well after the 5 were taken, well within the delay
	for i := 6; i <= 8; i++ {
		wg.Go(func() { _ = w.Record(context.Background(), ev(i)) })
	}
	select {
	case size := <-sink.entered:
		if size != 8 {
			t.Errorf("second batch has %d events, want 8 (the 5 waiting and the 3 that came during the commit delay)", size)
		}
	case <-time.After(10 * time.Second):
		t.Error("the second batch was never committed")
	}
	close(sink.gate) // let every later commit through
}

// A writer with fewer than CommitSiblings events waiting commits at once: a lightly loaded
// server's exchanges never wait for the commit delay.
func TestQuietWriterCommitsWithoutDelay(t *testing.T) {
	s := storetest.New(t)
	sink := newGatedSink(s)
	w := NewWriter(sink, Options{MaxBatch: 256, CommitDelay: time.Minute, CommitSiblings: 4})
	defer w.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { _ = w.Record(context.Background(), ev(0)) })
	<-sink.entered
	for i := 1; i <= 3; i++ {
		wg.Go(func() { _ = w.Record(context.Background(), ev(i)) })
	}
	waitQueued(t, w, 3)
	sink.gate <- struct{}{}
	select {
	case size := <-sink.entered:
		if size != 3 {
			t.Errorf("second batch has %d events, want the 3 waiting", size)
		}
	case <-time.After(10 * time.Second):
		t.Error("3 waiting events (fewer than CommitSiblings) were held back by the commit delay")
	}
	close(sink.gate) // let every later commit through
}

func TestRecordReturnsCommitErrorToEveryWaiter(t *testing.T) {
	s := storetest.New(t)
	sink := newGatedSink(s)
	boom := errors.New("disk full")
	sink.fail = boom
	w := NewWriter(sink, Options{})
	defer w.Close()

	const n = 50
	var wg sync.WaitGroup
	errs := make([]error, n)
	wg.Go(func() { errs[0] = w.Record(context.Background(), ev(0)) })
	<-sink.entered
	for i := 1; i < n; i++ {
		wg.Go(func() { errs[i] = w.Record(context.Background(), ev(i)) })
	}
	waitQueued(t, w, n-1)
	sink.gate <- struct{}{}
	<-sink.entered
	sink.gate <- struct{}{}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, boom) {
			t.Errorf("waiter %d got %v, want the commit error", i, err)
		}
	}
	if stored, _, _ := s.ListAudit(context.Background(), connection.AuditFilter{}); len(stored) != 0 {
		t.Errorf("%d events stored from failed commits", len(stored))
	}
}

func TestRecordFailsWhenTheStoreRefusesTheBatch(t *testing.T) {
	s := storetest.New(t)
	w := NewWriter(s, Options{})
	defer w.Close()
	e := ev(1)
	e.ID, e.Time = "00000000-0000-4000-8000-000000000001", time.Now() // (id, time) is unique
	if err := w.Record(context.Background(), e); err != nil {
		t.Fatalf("first Record: %v", err)
	}
	if err := w.Record(context.Background(), e); err == nil {
		t.Fatal("Record of a repeated id succeeded; a refused commit must reach the caller")
	}
	// The refused event is not mistaken for stored (the first one has its id): the chain goes on
	// without it and stays intact.
	if err := w.Record(context.Background(), ev(2)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if _, err := verifyStore(t, s, nil); err != nil {
		t.Errorf("verify after a refused batch: %v", err)
	}
}

func TestCloseFlushesQueuedEvents(t *testing.T) {
	s := storetest.New(t)
	sink := newGatedSink(s)
	w := NewWriter(sink, Options{})
	const n = 30
	var wg sync.WaitGroup
	var failed atomic.Int32
	record := func(i int) {
		if err := w.Record(context.Background(), ev(i)); err != nil {
			failed.Add(1)
		}
	}
	wg.Go(func() { record(0) })
	<-sink.entered
	for i := 1; i < n; i++ {
		wg.Go(func() { record(i) })
	}
	waitQueued(t, w, n-1)
	closed := make(chan struct{})
	go func() { w.Close(); close(closed) }()
	sink.gate <- struct{}{}
	<-sink.entered
	sink.gate <- struct{}{}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d Record calls failed", failed.Load())
	}
	if stored, _, _ := s.ListAudit(context.Background(), connection.AuditFilter{}); len(stored) != n {
		t.Errorf("stored %d events after Close, want %d", len(stored), n)
	}
	if err := w.Record(context.Background(), ev(99)); !errors.Is(err, ErrClosed) {
		t.Errorf("Record after Close = %v, want ErrClosed", err)
	}
	w.Close() // a second Close is harmless
}

// Filled ids are UUIDv7, increasing from one Record to the next, so the unique index on ids grows
// at one end.
func TestRecordFillsTimeOrderedIDAndTime(t *testing.T) {
	s := storetest.New(t)
	w := NewWriter(s, Options{})
	defer w.Close()
	before := time.Now().Add(-time.Second)
	for range 3 {
		if err := w.Record(context.Background(), api.AuditEvent{Action: api.ActionConnectionTest}); err != nil {
			t.Fatal(err)
		}
	}
	got, _, err := s.ListAudit(context.Background(), connection.AuditFilter{})
	if err != nil || len(got) != 3 {
		t.Fatalf("ListAudit: %d, %v", len(got), err)
	}
	for k, ev := range got {
		if ev.Time.Before(before) || ev.Time.Location() != time.UTC {
			t.Errorf("event = %+v, want the current UTC time", ev)
		}
		if id, err := uuid.Parse(ev.ID); err != nil || id.Version() != 7 {
			t.Errorf("id %q is not a UUIDv7 (%v)", ev.ID, err)
		}
		if k > 0 && ev.ID >= got[k-1].ID { // newest first
			t.Errorf("ids not increasing in recording order: %s recorded before %s", ev.ID, got[k-1].ID)
		}
	}
}

func TestRecordWithDoneContext(t *testing.T) {
	s := storetest.New(t)
	sink := newGatedSink(s)
	w := NewWriter(sink, Options{})
	defer func() {
		go func() {
			for range sink.entered {
			}
		}()
		close(sink.gate)
		w.Close()
	}()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Record(ctx, ev(0)) }()
	<-sink.entered // its commit is in flight and held
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Record = %v, want context.Canceled", err)
	}
}

// Many concurrent writers on the real store, no gate: every event lands, and batching happens.
func TestRecordConcurrentWritersAllStored(t *testing.T) {
	s := storetest.New(t)
	var batches, maxBatch atomic.Int64
	w := NewWriter(s, Options{OnBatch: func(size int, err error) {
		batches.Add(1)
		for {
			m := maxBatch.Load()
			if int64(size) <= m || maxBatch.CompareAndSwap(m, int64(size)) {
				break
			}
		}
	}})
	const writers, each = 50, 20
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				if err := w.Record(context.Background(), ev(g*each+i)); err != nil {
					t.Errorf("Record: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	w.Close()
	var total int
	f := connection.AuditFilter{Limit: store.MaxLimit}
	for {
		page, next, err := s.ListAudit(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		total += len(page)
		if next == "" {
			break
		}
		f.Cursor = next
	}
	if total != writers*each {
		t.Errorf("stored %d events, want %d", total, writers*each)
	}
	t.Logf("%d events in %d commits, largest batch %d", writers*each, batches.Load(), maxBatch.Load())
	if maxBatch.Load() < 2 {
		t.Errorf("largest batch %d: 50 concurrent writers never shared a commit", maxBatch.Load())
	}
}

func BenchmarkRecordParallel(b *testing.B) {
	s := storetest.New(b)
	var batches atomic.Int64
	w := NewWriter(s, Options{OnBatch: func(int, error) { batches.Add(1) }})
	defer w.Close()
	b.SetParallelism(32) // many requests in flight per core, as in a busy server
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := w.Record(context.Background(), ev(0)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if n := batches.Load(); n > 0 {
		b.ReportMetric(float64(b.N)/float64(n), "events/commit")
	}
}

// A caller-chosen string that PostgreSQL cannot store (NUL, invalid UTF-8) or that is huge must not
// fail the batch: it is stored cleaned and cut, and the events batched with it are stored as well.
func TestRecordStoresUnstorableTextCleanedWithoutFailingTheBatch(t *testing.T) {
	st := storetest.New(t)
	w := NewWriter(st, Options{})
	defer w.Close()
	ctx := context.Background()
	hostile := api.AuditEvent{Action: api.ActionTokenExchange, Outcome: api.OutcomeDenied,
		ConnectionName: "a\x00b\xff" + strings.Repeat("x", 2000), Actor: "\xfe\xfe", Reason: "unknown connection"}
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := api.AuditEvent{Action: api.ActionTokenExchange, Outcome: api.OutcomeGranted, ConnectionName: "fine"}
			if i == 0 {
				ev = hostile
			}
			errs[i] = w.Record(ctx, ev)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	got, _, err := st.ListAudit(ctx, connection.AuditFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 20 {
		t.Fatalf("%d events stored, want 20", len(got))
	}
	for _, ev := range got {
		if ev.Outcome != api.OutcomeDenied {
			continue
		}
		if !strings.HasPrefix(ev.ConnectionName, "a\uFFFDb\uFFFD") || len(ev.ConnectionName) > maxFieldText || ev.Actor != "\uFFFD" { // a run of invalid bytes becomes one U+FFFD
			t.Errorf("hostile event stored as name %q (%d bytes), actor %q", ev.ConnectionName[:12], len(ev.ConnectionName), ev.Actor)
		}
	}
}
