package store_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/testdb"

	"github.com/google/uuid"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storetest"
)

func TestAppendAuditRoundTripsEveryField(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	ev := api.AuditEvent{
		ID:             "0b1e4a52-5a55-4b8b-9b43-2f5bd0a2a001",
		Time:           time.Date(2026, 1, 2, 3, 4, 5, 999999999, time.FixedZone("X", -7*3600)),
		Actor:          "ci",
		Action:         api.ActionTokenExchange,
		ConnectionID:   "c-id",
		ConnectionName: "c-name",
		Outcome:        api.OutcomeDenied,
		Reason:         "condition",
		RequestID:      "req-1",
		RemoteAddr:     "10.0.0.1:1234",
		Detail: map[string]any{
			"check":    "condition",
			"expected": "refs/heads/main",
			"actual":   []any{"a", float64(42), true, nil},
			"nested":   map[string]any{"k": "v"},
		},
	}
	if err := s.AppendAudit(ctx, []api.AuditEvent{ev}); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	got, next, err := s.ListAudit(ctx, connection.AuditFilter{})
	if err != nil || next != "" || len(got) != 1 {
		t.Fatalf("ListAudit = %d events, %q, %v", len(got), next, err)
	}
	want := ev
	want.Time = ev.Time.UTC().Truncate(time.Microsecond)
	if !reflect.DeepEqual(got[0], want) {
		t.Errorf("event mismatch:\n got  %+v\n want %+v", got[0], want)
	}
}

func TestAppendAuditFillsIDAndTime(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	before := time.Now().Add(-time.Second)
	if err := s.AppendAudit(ctx, []api.AuditEvent{{Action: api.ActionConnectionTest}, {Action: api.ActionConnectionTest}}); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.ListAudit(ctx, connection.AuditFilter{})
	if err != nil || len(got) != 2 {
		t.Fatalf("ListAudit: %d, %v", len(got), err)
	}
	if got[0].ID == "" || got[0].ID == got[1].ID {
		t.Errorf("ids not filled uniquely: %q %q", got[0].ID, got[1].ID)
	}
	for _, ev := range got {
		if ev.Time.Before(before) || ev.Time.Location() != time.UTC {
			t.Errorf("time not filled with now in UTC: %v", ev.Time)
		}
		if ev.Detail != nil {
			t.Errorf("nil detail came back as %#v", ev.Detail)
		}
	}
}

func TestListAuditNewestFirstWithFiltersAndPages(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var evs []api.AuditEvent
	for i := range 30 {
		evs = append(evs, api.AuditEvent{
			ID:             fmt.Sprintf("00000000-0000-4000-8000-%012d", i),
			Time:           base.Add(time.Duration(i) * time.Minute),
			Actor:          []string{"alice", "bob"}[i%2],
			Action:         []string{api.ActionTokenExchange, api.ActionConnectionUpdate, api.ActionConnectionTest}[i%3],
			ConnectionID:   fmt.Sprintf("00000000-0000-4000-8000-%012d", i%4),
			ConnectionName: fmt.Sprintf("name-%d", i%4),
		})
	}
	// Two appends, so order by insertion spans transactions.
	if err := s.AppendAudit(ctx, evs[:13]); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, evs[13:]); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		filter connection.AuditFilter
		match  func(i int) bool
	}{
		{"all", connection.AuditFilter{}, func(int) bool { return true }},
		{"connection by id", connection.AuditFilter{Connection: "00000000-0000-4000-8000-000000000001"}, func(i int) bool { return i%4 == 1 }},
		{"connection by name", connection.AuditFilter{Connection: "name-2"}, func(i int) bool { return i%4 == 2 }},
		{"action", connection.AuditFilter{Action: api.ActionTokenExchange}, func(i int) bool { return i%3 == 0 }},
		// A principal's own actions never include token exchanges, whose actor is a workload subject
		// that may happen to equal a principal's name.
		{"actor", connection.AuditFilter{Actor: "bob"}, func(i int) bool { return i%2 == 1 && i%3 != 0 }},
		{"since is inclusive", connection.AuditFilter{Since: base.Add(20 * time.Minute)}, func(i int) bool { return i >= 20 }},
		{"since in another zone", connection.AuditFilter{Since: base.Add(25 * time.Minute).In(time.FixedZone("Y", 5*3600))}, func(i int) bool { return i >= 25 }},
		{"combined", connection.AuditFilter{Actor: "alice", Action: api.ActionConnectionUpdate, Since: base.Add(5 * time.Minute)}, func(i int) bool {
			return i%2 == 0 && i%3 == 1 && i >= 5
		}},
	}
	for _, tt := range tests {
		var want []string
		for i := len(evs) - 1; i >= 0; i-- {
			if tt.match(i) {
				want = append(want, evs[i].ID)
			}
		}
		for _, limit := range []int{1, 4, 0} {
			t.Run(fmt.Sprintf("%s/limit=%d", tt.name, limit), func(t *testing.T) {
				f := tt.filter
				f.Limit = limit
				var got []string
				for pages := 0; ; pages++ {
					if pages > len(evs)+1 {
						t.Fatal("pagination does not end")
					}
					page, next, err := s.ListAudit(ctx, f)
					if err != nil {
						t.Fatalf("ListAudit: %v", err)
					}
					for _, ev := range page {
						got = append(got, ev.ID)
					}
					if next == "" {
						break
					}
					f.Cursor = next
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("ids = %v\nwant  %v", got, want)
				}
			})
		}
	}
}

func TestAppendAuditIsAllOrNothing(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	dupID := "00000000-0000-4000-8000-00000000dddd"
	at := time.Now() // (id, time) is unique (migration 00008: PostgreSQL's partition key is "time")
	err := s.AppendAudit(ctx, []api.AuditEvent{
		{ID: "00000000-0000-4000-8000-000000000001", Action: api.ActionTokenExchange, Time: at},
		{ID: dupID, Action: api.ActionTokenExchange, Time: at},
		{ID: dupID, Action: api.ActionTokenExchange, Time: at},
	})
	if err == nil {
		t.Fatal("AppendAudit with a repeated id succeeded")
	}
	if got, _, _ := s.ListAudit(ctx, connection.AuditFilter{}); len(got) != 0 {
		t.Errorf("%d events stored from a failed batch, want 0", len(got))
	}
}

func TestAppendAuditLargeBatch(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	evs := make([]api.AuditEvent, 1234)
	for i := range evs {
		evs[i] = api.AuditEvent{Action: api.ActionTokenExchange, Detail: map[string]any{"i": float64(i)}}
	}
	if err := s.AppendAudit(ctx, evs); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	page, _, err := s.ListAudit(ctx, connection.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != store.MaxLimit {
		t.Errorf("page of %d with limit 1000, want the maximum %d", len(page), store.MaxLimit)
	}
	if page[0].Detail["i"] != float64(len(evs)-1) {
		t.Errorf("newest event = %v, want the last appended", page[0].Detail)
	}
	if page, _, _ := s.ListAudit(ctx, connection.AuditFilter{}); len(page) != store.DefaultLimit {
		t.Errorf("default page of %d, want %d", len(page), store.DefaultLimit)
	}
	if _, _, err := s.ListAudit(ctx, connection.AuditFilter{Cursor: "x"}); !errors.Is(err, store.ErrBadCursor) {
		t.Errorf("bad cursor: %v", err)
	}
}

// A batch larger than one INSERT (500 rows) is still one transaction: a duplicate id in its second
// INSERT leaves nothing of the first behind.
func TestAppendAuditSpanningInsertsIsAllOrNothing(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	evs := make([]api.AuditEvent, 700)
	at := time.Now()
	for i := range evs {
		evs[i] = api.AuditEvent{ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), Action: api.ActionTokenExchange, Time: at}
	}
	evs[650].ID = evs[3].ID
	if err := s.AppendAudit(ctx, evs); err == nil {
		t.Fatal("AppendAudit with a repeated id in its second INSERT succeeded")
	}
	if got, _, _ := s.ListAudit(ctx, connection.AuditFilter{}); len(got) != 0 {
		t.Errorf("%d events stored from a failed batch, want 0", len(got))
	}
}

// Events keep slice order across the INSERTs of one batch and across batches, and filled ids are
// UUIDv7 in that order (time-ordered, so the unique index appends).
func TestAppendAuditKeepsOrderAcrossInsertsWithTimeOrderedIDs(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	const n = 1100
	evs := make([]api.AuditEvent, n)
	for i := range evs {
		evs[i] = api.AuditEvent{Action: api.ActionTokenExchange, Detail: map[string]any{"i": float64(i)}}
	}
	if err := s.AppendAudit(ctx, evs[:600]); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendAudit(ctx, evs[600:]); err != nil {
		t.Fatal(err)
	}
	var got []api.AuditEvent
	f := connection.AuditFilter{Limit: store.MaxLimit}
	for {
		page, next, err := s.ListAudit(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page...)
		if next == "" {
			break
		}
		f.Cursor = next
	}
	if len(got) != n {
		t.Fatalf("%d events listed, want %d", len(got), n)
	}
	for k, ev := range got {
		if want := float64(n - 1 - k); ev.Detail["i"] != want {
			t.Fatalf("event %d from the newest is i=%v, want %v", k, ev.Detail["i"], want)
		}
		id, err := uuid.Parse(ev.ID)
		if err != nil || id.Version() != 7 {
			t.Fatalf("filled id %q is not a UUIDv7 (%v)", ev.ID, err)
		}
		if k > 0 && ev.ID >= got[k-1].ID {
			t.Fatalf("ids not increasing in insertion order: %s then %s", ev.ID, got[k-1].ID)
		}
	}
}

// A principal's own actions are served by the partial index that leaves token exchanges out
// (migration 00002): the filter's WHERE clause must imply the index's, or every "own actions"
// query would scan the audit log.
func TestAuditActorFilterUsesTheAdminActorIndex(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	plan, err := s.AuditPlan(ctx, connection.AuditFilter{Actor: "alice"})
	if err != nil {
		t.Fatalf("AuditPlan: %v", err)
	}
	// On PostgreSQL the plan names the partitions' copies of the index (audit_events_wYYYYMMDD_actor_seq_idx,
	// the only actor index there is).
	if !strings.Contains(plan, "audit_events_admin_actor_idx") && !strings.Contains(plan, "_actor_seq_idx") {
		t.Errorf("the actor filter does not use audit_events_admin_actor_idx; plan:\n%s", plan)
	}
	indexes, err := s.AuditIndexes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(indexes, "audit_events_actor_idx") {
		t.Errorf("the full actor index is still there (every exchange pays for it): %v", indexes)
	}
}

// A database left by the first release (schema version 1, full actor index) upgrades in place:
// its events stay, and the actor filter still finds a principal's actions and never an exchange
// whose workload subject happens to equal the principal's name.
func TestUpgradeFromSchemaV1KeepsAuditAndActorFilter(t *testing.T) {
	t.Parallel()
	dsn := testdb.DSN(t)
	ctx := ctxT(t)
	old, err := store.Open(ctx, dsn, store.WithSchemaVersion(1))
	if err != nil {
		t.Fatalf("Open at schema version 1: %v", err)
	}
	if idx, err := old.AuditIndexes(ctx); err != nil || !slices.Contains(idx, "audit_events_actor_idx") {
		_ = old.Close()
		t.Fatalf("schema version 1 should have the full actor index: %v, %v", idx, err)
	}
	evs := []api.AuditEvent{
		{Actor: "alice", Action: api.ActionConnectionCreate, Outcome: api.OutcomeSuccess, ConnectionName: "a"},
		{Actor: "alice", Action: api.ActionTokenExchange, Outcome: api.OutcomeGranted, ConnectionName: "a"},
		{Actor: "bob", Action: api.ActionConnectionStatus, Outcome: api.OutcomeSuccess, ConnectionName: "a"},
		{Actor: "alice", Action: api.ActionConnectionUpdate, Outcome: api.OutcomeDenied, ConnectionName: "a"},
	}
	if err := old.AppendLegacyAudit(ctx, evs); err != nil {
		_ = old.Close()
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	s := open(t, dsn)
	idx, err := s.AuditIndexes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(idx, "audit_events_admin_actor_idx") || slices.Contains(idx, "audit_events_actor_idx") {
		t.Errorf("indexes after the upgrade = %v, want audit_events_admin_actor_idx instead of audit_events_actor_idx", idx)
	}
	all, _, err := s.ListAudit(ctx, connection.AuditFilter{})
	if err != nil || len(all) != len(evs) {
		t.Fatalf("ListAudit after the upgrade = %d events, %v; want %d", len(all), err, len(evs))
	}
	mine, _, err := s.ListAudit(ctx, connection.AuditFilter{Actor: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, ev := range mine {
		actions = append(actions, ev.Action)
	}
	if want := []string{api.ActionConnectionUpdate, api.ActionConnectionCreate}; !slices.Equal(actions, want) {
		t.Errorf("alice's own actions after the upgrade = %v, want %v", actions, want)
	}
}
