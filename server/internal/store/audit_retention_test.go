package store_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/testdb"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storetest"
)

// allAuditIDs lists every stored event's id, oldest first.
func allAuditIDs(t *testing.T, s *store.Store) []string {
	t.Helper()
	var ids []string
	if err := s.WalkAudit(ctxT(t), 100, func(page []api.AuditEvent) error {
		for _, ev := range page {
			ids = append(ids, ev.ID)
		}
		return nil
	}); err != nil {
		t.Fatalf("WalkAudit: %v", err)
	}
	return ids
}

// eventsOverWeeks appends n events per day for days days from start (the clock of the test, not
// the machine's), in time order, and returns them.
func eventsOverWeeks(t *testing.T, s *store.Store, start time.Time, days, perDay int) []api.AuditEvent {
	t.Helper()
	var evs []api.AuditEvent
	for d := range days {
		for i := range perDay {
			evs = append(evs, api.AuditEvent{
				ID:     fmt.Sprintf("00000000-0000-4000-8000-%06d%06d", d, i),
				Time:   start.Add(time.Duration(d)*24*time.Hour + time.Duration(i)*time.Minute),
				Action: api.ActionTokenExchange, Outcome: api.OutcomeGranted, Actor: "ci",
			})
		}
	}
	if err := s.AppendAudit(ctxT(t), evs); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	return evs
}

// Retention removes exactly the events older than the cutoff, in steps of at most the batch
// size, and keeps every newer one; on PostgreSQL the weeks that lie wholly before the cutoff go as
// whole partitions. The clock is the test's: events are months in the past of the machine's.
func TestPruneAuditRemovesExactlyTheEventsBeforeTheCutoff(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	// Monday 2026-01-05 00:00 UTC, 5 weeks of 3 events a day; an event outside every partition
	// makes PostgreSQL create its week on demand.
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	evs := eventsOverWeeks(t, s, start, 35, 3)
	if s.Dialect() == store.DialectPostgres {
		parts, err := s.AuditPartitions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range parts {
			if p.From.Before(start.Add(35 * 24 * time.Hour)) {
				names = append(names, p.Name)
			}
		}
		want := []string{"audit_events_w20260105", "audit_events_w20260112", "audit_events_w20260119", "audit_events_w20260126", "audit_events_w20260202"}
		if !slices.Equal(names, want) {
			t.Fatalf("partitions created on demand = %v, want %v", names, want)
		}
	}

	// Cutoff in the middle of the third week (Wednesday 2026-01-21 12:00): two whole weeks and
	// 2½ days of the third go.
	cutoff := time.Date(2026, 1, 21, 12, 0, 0, 0, time.UTC)
	var removed int64
	steps := 0
	for {
		n, more, err := s.PruneAudit(ctx, cutoff, 4)
		if err != nil {
			t.Fatalf("PruneAudit: %v", err)
		}
		if n > 21 { // a dropped week holds 21 events; a delete step at most the batch
			t.Fatalf("one step removed %d events", n)
		}
		removed += n
		steps++
		if !more {
			break
		}
		if steps > 100 {
			t.Fatal("PruneAudit does not finish")
		}
	}
	var want []string
	for _, ev := range evs {
		if !ev.Time.Before(cutoff) {
			want = append(want, ev.ID)
		}
	}
	if got := allAuditIDs(t, s); !slices.Equal(got, want) {
		t.Fatalf("after retention %d events remain, want the %d at or after the cutoff (removed %d)", len(got), len(want), removed)
	}
	if s.Dialect() == store.DialectPostgres {
		parts, err := s.AuditPartitions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(parts) == 0 || parts[0].Name != "audit_events_w20260119" {
			t.Errorf("oldest partition after retention = %v, want the straddling week audit_events_w20260119 (the two before dropped)", parts)
		}
	}
	// A second pass finds nothing; new events still go in.
	if n, more, err := s.PruneAudit(ctx, cutoff, 4); err != nil || n != 0 || more {
		t.Errorf("a second pass removed %d (more %v, %v), want nothing", n, more, err)
	}
	if err := s.AppendAudit(ctx, []api.AuditEvent{{Action: api.ActionConnectionTest, Time: cutoff.Add(time.Hour)}}); err != nil {
		t.Errorf("append after retention: %v", err)
	}
}

// The server prepares the partitions of the current week and the next two ahead of the events.
func TestEnsureAuditPartitionsPreparesTheComingWeeks(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	now := time.Date(2031, 3, 13, 15, 0, 0, 0, time.UTC) // a Thursday
	if err := s.EnsureAuditPartitions(ctx, now); err != nil {
		t.Fatalf("EnsureAuditPartitions: %v", err)
	}
	if err := s.EnsureAuditPartitions(ctx, now); err != nil {
		t.Fatalf("EnsureAuditPartitions again: %v", err)
	}
	parts, err := s.AuditPartitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Dialect() != store.DialectPostgres {
		if len(parts) != 0 {
			t.Errorf("SQLite has partitions: %v", parts)
		}
		return
	}
	var names []string
	for _, p := range parts {
		if p.From.Year() == 2031 {
			names = append(names, p.Name)
		}
	}
	if want := []string{"audit_events_w20310310", "audit_events_w20310317", "audit_events_w20310324"}; !slices.Equal(names, want) {
		t.Errorf("partitions = %v, want %v", names, want)
	}
	if err := s.AppendAudit(ctx, []api.AuditEvent{{Action: api.ActionConnectionTest, Time: now.Add(10 * 24 * time.Hour)}}); err != nil {
		t.Errorf("append into a prepared week: %v", err)
	}
}

// A database at schema version 3 (before chains and partitions) upgrades with every event kept:
// same ids, same order, same content; new events continue the insertion order after them, and on
// PostgreSQL the table is now partitioned with the old events in their weeks.
func TestUpgradeFromSchemaV3KeepsEveryAuditEvent(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	ctx := ctxT(t)
	old, err := store.Open(ctx, dsn, store.WithSchemaVersion(3))
	if err != nil {
		t.Fatalf("Open at schema version 3: %v", err)
	}
	base := time.Date(2025, 12, 20, 8, 0, 0, 0, time.UTC) // spans several weeks and a year end
	var evs []api.AuditEvent
	for i := range 300 {
		evs = append(evs, api.AuditEvent{
			ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), Time: base.Add(time.Duration(i) * 3 * time.Hour),
			Actor: "alice", Action: []string{api.ActionTokenExchange, api.ActionConnectionUpdate}[i%2],
			ConnectionName: "c", Outcome: api.OutcomeSuccess, Reason: "r", RequestID: "q", RemoteAddr: "a",
			Detail: map[string]any{"i": float64(i)},
		})
	}
	if err := old.AppendLegacyAudit(ctx, evs); err != nil {
		_ = old.Close()
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	s := open(t, dsn)
	var got []api.AuditEvent
	if err := s.WalkAudit(ctx, 64, func(page []api.AuditEvent) error { got = append(got, page...); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(evs) {
		t.Fatalf("%d events after the upgrade, want %d", len(got), len(evs))
	}
	for i := range evs {
		want := evs[i]
		want.Time = want.Time.UTC()
		if fmt.Sprint(got[i]) != fmt.Sprint(want) {
			t.Fatalf("event %d after the upgrade:\n got  %+v\n want %+v", i, got[i], want)
		}
	}
	if err := s.AppendAudit(ctx, []api.AuditEvent{{ID: "new", Action: api.ActionConnectionTest, Time: time.Now()}}); err != nil {
		t.Fatalf("append after the upgrade: %v", err)
	}
	page, _, err := s.ListAudit(ctx, connection.AuditFilter{Limit: 2})
	if err != nil || len(page) != 2 || page[0].ID != "new" || page[1].ID != evs[len(evs)-1].ID {
		t.Fatalf("newest after the upgrade = %v, %v; want the new event, then the last old one", page, err)
	}
	if s.Dialect() == store.DialectPostgres {
		parts, err := s.AuditPartitions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(parts) < 5 || parts[0].Name != "audit_events_w20251215" {
			t.Errorf("partitions after the upgrade = %v, want weekly ones from the week of the oldest event (2025-12-15)", parts)
		}
	}
}

// AuditChainAfter finds a chain's events after a seq among other chains' events, searching back
// from the newest and stopping at the floor.
func TestAuditChainAfter(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	floor, err := s.AuditHighWater(ctx)
	if err != nil || floor != 0 {
		t.Fatalf("high-water mark of an empty log = %d, %v", floor, err)
	}
	for i := 1; i <= 30; i++ {
		batch := []api.AuditEvent{
			{Action: api.ActionTokenExchange, Chain: "a", Seq: int64(i), Hash: fmt.Sprintf("a%d", i)},
			{Action: api.ActionTokenExchange, Chain: "b", Seq: int64(i), Hash: fmt.Sprintf("b%d", i)},
		}
		if err := s.AppendAudit(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := s.AuditChainAfter(ctx, "a", 25, 0)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for _, ev := range evs {
		if ev.Chain != "a" {
			t.Fatalf("event of chain %q returned", ev.Chain)
		}
		seqs = append(seqs, ev.Seq)
	}
	if !slices.Equal(seqs, []int64{26, 27, 28, 29, 30}) {
		t.Errorf("chain a after 25 = %v", seqs)
	}
	if evs, err := s.AuditChainAfter(ctx, "a", 30, 0); err != nil || len(evs) != 0 {
		t.Errorf("chain a after its last event = %v, %v", evs, err)
	}
	hw, err := s.AuditHighWater(ctx)
	if err != nil || hw < 60 {
		t.Fatalf("high-water mark = %d, %v", hw, err)
	}
	if evs, err := s.AuditChainAfter(ctx, "c", 0, hw-4); err != nil || len(evs) != 0 {
		t.Errorf("a chain with no events = %v, %v", evs, err)
	}
	if stored, err := s.AuditEventStored(ctx, evs0ID(t, s), "a", 1); err != nil || !stored {
		t.Errorf("AuditEventStored of a stored event = %v, %v", stored, err)
	}
	if stored, err := s.AuditEventStored(ctx, evs0ID(t, s), "a", 2); err != nil || stored {
		t.Errorf("AuditEventStored of a stored id with another seq = %v, %v", stored, err)
	}
	if stored, err := s.AuditEventStored(ctx, "nope", "a", 1); err != nil || stored {
		t.Errorf("AuditEventStored of a missing event = %v, %v", stored, err)
	}
}

func evs0ID(t *testing.T, s *store.Store) string {
	t.Helper()
	ids := allAuditIDs(t, s)
	if len(ids) == 0 {
		t.Fatal("no events")
	}
	return ids[0]
}

// TestPruneAuditDropsADetachedPartitionAFileAtATime (PostgreSQL): a partition that was detached
// and not dropped (a crash between the two steps) is dropped by the next pass, and every step
// drops at most one of its indexes or, last, the table, so that the kernel frees one file at a
// time between the retention's pauses. Its events stay out of the audit log throughout.
func TestPruneAuditDropsADetachedPartitionAFileAtATime(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	if s.Dialect() != store.DialectPostgres {
		t.Skip("partitions exist on PostgreSQL only; set TRUSTGATE_TEST_POSTGRES_URL")
	}
	ctx := ctxT(t)
	start := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC) // a Monday
	evs := eventsOverWeeks(t, s, start, 14, 3)
	const oldest = "audit_events_w20260105"
	if err := s.ExecForTest(ctx, "ALTER TABLE audit_events DETACH PARTITION "+oldest); err != nil {
		t.Fatal(err)
	}
	relations := func() int {
		n, err := s.RelationCount(ctx, oldest)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := relations()
	if before < 3 {
		t.Fatalf("the detached partition has %d relations (table and indexes), want several", before)
	}
	cutoff := start.Add(7 * 24 * time.Hour) // the second week stays whole
	for steps := 0; relations() > 0; steps++ {
		n := relations()
		if _, more, err := s.PruneAudit(ctx, cutoff, 500); err != nil || !more {
			t.Fatalf("step %d: more %v, %v; want another step while %s has %d relations", steps, more, err, oldest, n)
		}
		if got := relations(); got != n-1 {
			t.Fatalf("step %d dropped %d relations of %s, want exactly one", steps, n-got, oldest)
		}
		if steps > before {
			t.Fatal("PruneAudit does not finish")
		}
	}
	if n, more, err := s.PruneAudit(ctx, cutoff, 500); err != nil || n != 0 || more {
		t.Errorf("after the drop a pass removed %d (more %v, %v), want nothing", n, more, err)
	}
	var want []string
	for _, ev := range evs {
		if !ev.Time.Before(cutoff) {
			want = append(want, ev.ID)
		}
	}
	if got := allAuditIDs(t, s); !slices.Equal(got, want) {
		t.Errorf("%d events remain, want the %d of the second week", len(got), len(want))
	}
}
