package store_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storetest"
)

func TestCreateConnectionRoundTripsByIDAndName(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	for _, status := range []string{api.StatusDraft, api.StatusActive} {
		c := newConnection("rt-"+status, api.ProviderGitHub, status)
		ev := auditFor(c, api.ActionConnectionCreate)
		if err := s.CreateConnection(ctx, c, ev); err != nil {
			t.Fatalf("CreateConnection: %v", err)
		}
		if c.ID == "" || c.Revision != 1 {
			t.Errorf("after create: ID %q, Revision %d; want a UUID and 1", c.ID, c.Revision)
		}
		if c.CreatedAt.Nanosecond()%1000 != 0 || c.CreatedAt.Location() != time.UTC {
			t.Errorf("CreatedAt not normalised to UTC microseconds: %v", c.CreatedAt)
		}
		for _, ref := range []string{c.ID, c.Spec.Name} {
			got, err := s.GetConnection(ctx, ref)
			if err != nil {
				t.Fatalf("GetConnection(%q): %v", ref, err)
			}
			assertConnectionEqual(t, got, c)
		}
		if ev.ID == "" || ev.Time.IsZero() {
			t.Errorf("audit event not filled in: %+v", ev)
		}
	}
}

func TestGetConnectionUnknownIsNotFound(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	for _, ref := range []string{"nope", "6f1c1d2e-0000-4000-8000-000000000000", ""} {
		if _, err := s.GetConnection(ctxT(t), ref); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetConnection(%q) error = %v, want ErrNotFound", ref, err)
		}
	}
}

func TestGetConnectionPrefersIDOverUUIDShapedName(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	a := newConnection("first", api.ProviderGitHub, api.StatusDraft)
	if err := s.CreateConnection(ctx, a, nil); err != nil {
		t.Fatal(err)
	}
	// A name that spells a's id is legal under the name pattern.
	b := newConnection(a.ID, api.ProviderGitHub, api.StatusDraft)
	if err := s.CreateConnection(ctx, b, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetConnection(ctx, a.ID)
	if err != nil || got.ID != a.ID {
		t.Errorf("GetConnection(a.ID) = %v, %v; want connection a", got, err)
	}
}

func TestCreateConnectionDuplicateNameChangesNothing(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	first := newConnection("dup", api.ProviderGitHub, api.StatusDraft)
	if err := s.CreateConnection(ctx, first, auditFor(first, api.ActionConnectionCreate)); err != nil {
		t.Fatal(err)
	}
	second := newConnection("dup", api.ProviderGitLab, api.StatusDraft)
	err := s.CreateConnection(ctx, second, auditFor(second, api.ActionConnectionCreate))
	if !errors.Is(err, store.ErrDuplicateName) {
		t.Fatalf("second CreateConnection error = %v, want ErrDuplicateName", err)
	}
	assertUnchanged(t, s, first, 1, 1)
}

func TestConnectionAndAuditEventAreAtomic(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	// (id, time) is unique: PostgreSQL's partitioned audit table can only enforce unique
	// constraints that include its partition key (migration 00008).
	taken := api.AuditEvent{ID: "b3a2c1d0-0000-4000-8000-000000000001", Action: api.ActionConnectionTest, Time: time.Now()}
	if err := s.AppendAudit(ctx, []api.AuditEvent{taken}); err != nil {
		t.Fatal(err)
	}
	c := newConnection("atomic", api.ProviderGitHub, api.StatusDraft)
	ev := auditFor(c, api.ActionConnectionCreate)
	ev.ID, ev.Time = taken.ID, taken.Time // the audit insert fails on its unique (id, time)
	if err := s.CreateConnection(ctx, c, ev); err == nil || errors.Is(err, store.ErrDuplicateName) {
		t.Fatalf("CreateConnection error = %v, want a non-duplicate-name failure", err)
	}
	if _, err := s.GetConnection(ctx, "atomic"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("connection exists after its audit insert failed: %v", err)
	}
	if v, _ := s.ChangeCounter(ctx); v != 0 {
		t.Errorf("ChangeCounter = %d after a failed create, want 0", v)
	}
}

func TestUpdateConnection(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	c := newConnection("upd", api.ProviderGitHub, api.StatusDraft)
	if err := s.CreateConnection(ctx, c, auditFor(c, api.ActionConnectionCreate)); err != nil {
		t.Fatal(err)
	}
	other := newConnection("other", api.ProviderGitHub, api.StatusDraft)
	if err := s.CreateConnection(ctx, other, nil); err != nil {
		t.Fatal(err)
	}
	// counter 2, 1 audit event, c at revision 1.

	t.Run("revision mismatch changes nothing", func(t *testing.T) {
		stale := *c
		stale.Spec.Description = "stale write"
		stale.Revision = 6
		err := s.UpdateConnection(ctx, &stale, 5, auditFor(&stale, api.ActionConnectionUpdate))
		if !errors.Is(err, store.ErrRevisionMismatch) {
			t.Fatalf("error = %v, want ErrRevisionMismatch", err)
		}
		assertUnchanged(t, s, c, 2, 1)
	})

	t.Run("rename onto a taken name is a duplicate and changes nothing", func(t *testing.T) {
		clash := *c
		clash.Spec.Name = "other"
		clash.Revision = 2
		err := s.UpdateConnection(ctx, &clash, 1, auditFor(&clash, api.ActionConnectionUpdate))
		if !errors.Is(err, store.ErrDuplicateName) {
			t.Fatalf("error = %v, want ErrDuplicateName", err)
		}
		assertUnchanged(t, s, c, 2, 1)
	})

	t.Run("unknown id is not found", func(t *testing.T) {
		ghost := *newConnection("ghost", api.ProviderGitHub, api.StatusDraft)
		ghost.ID = "00000000-0000-4000-8000-000000000000"
		if err := s.UpdateConnection(ctx, &ghost, 1, nil); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("error = %v, want ErrNotFound", err)
		}
	})

	t.Run("matching revision writes everything and bumps the revision", func(t *testing.T) {
		next := *c
		next.Spec.Name = "upd-renamed"
		next.Spec.Description = "new"
		next.Status = api.StatusActive
		next.EverActivated = true
		next.ActivatedBy = "sec"
		at := time.Now()
		next.ActivatedAt = &at
		next.UpdatedBy = "sec"
		next.UpdatedAt = time.Now().Add(time.Minute)
		next.CreatedBy = "someone-else" // never written by an update
		next.Revision = 2
		if err := s.UpdateConnection(ctx, &next, 1, auditFor(&next, api.ActionConnectionStatus)); err != nil {
			t.Fatalf("UpdateConnection: %v", err)
		}
		got, err := s.GetConnection(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := next
		want.CreatedBy = c.CreatedBy
		assertConnectionEqual(t, got, &want)
		if _, err := s.GetConnection(ctx, "upd"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("old name still resolves: %v", err)
		}
		if v, _ := s.ChangeCounter(ctx); v != 3 {
			t.Errorf("ChangeCounter = %d, want 3", v)
		}
		evs, _, _ := s.ListAudit(ctx, connection.AuditFilter{})
		if len(evs) != 2 || evs[0].Action != api.ActionConnectionStatus {
			t.Errorf("audit = %+v, want the status event newest", evs)
		}
		// The same stale revision fails now.
		if err := s.UpdateConnection(ctx, &next, 1, nil); !errors.Is(err, store.ErrRevisionMismatch) {
			t.Errorf("replayed update error = %v, want ErrRevisionMismatch", err)
		}
	})
}

func TestDeleteConnection(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	c := newConnection("del", api.ProviderGitLab, api.StatusDraft)
	if err := s.CreateConnection(ctx, c, auditFor(c, api.ActionConnectionCreate)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteConnection(ctx, c.ID, 7, auditFor(c, api.ActionConnectionDelete)); !errors.Is(err, store.ErrRevisionMismatch) {
		t.Fatalf("delete with stale revision: %v, want ErrRevisionMismatch", err)
	}
	assertUnchanged(t, s, c, 1, 1)
	if err := s.DeleteConnection(ctx, c.ID, 1, auditFor(c, api.ActionConnectionDelete)); err != nil {
		t.Fatalf("DeleteConnection: %v", err)
	}
	if _, err := s.GetConnection(ctx, c.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetConnection after delete: %v, want ErrNotFound", err)
	}
	if v, _ := s.ChangeCounter(ctx); v != 2 {
		t.Errorf("ChangeCounter = %d, want 2", v)
	}
	if err := s.DeleteConnection(ctx, c.ID, 1, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete: %v, want ErrNotFound", err)
	}
	evs, _, _ := s.ListAudit(ctx, connection.AuditFilter{Connection: c.ID})
	if len(evs) != 2 || evs[0].Action != api.ActionConnectionDelete {
		t.Errorf("audit for deleted connection = %+v", evs)
	}
}

// assertUnchanged checks that c is stored exactly as given, and the change counter and the number
// of audit events are as before a refused write.
func assertUnchanged(t *testing.T, s *store.Store, c *connection.Connection, counter int64, events int) {
	t.Helper()
	ctx := ctxT(t)
	got, err := s.GetConnection(ctx, c.ID)
	if err != nil {
		t.Fatalf("GetConnection: %v", err)
	}
	assertConnectionEqual(t, got, c)
	if v, err := s.ChangeCounter(ctx); err != nil || v != counter {
		t.Errorf("ChangeCounter = %d, %v; want %d", v, err, counter)
	}
	if evs, _, err := s.ListAudit(ctx, connection.AuditFilter{}); err != nil || len(evs) != events {
		t.Errorf("audit events = %d, %v; want %d", len(evs), err, events)
	}
}

func TestListConnectionsPagesCoverEveryMatchOnce(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	types := []string{api.ProviderGitHub, api.ProviderGitLab, api.ProviderGeneric}
	statuses := []string{api.StatusDraft, api.StatusActive, api.StatusInactive}
	var all []connection.Connection
	for i := range 23 {
		prefix := []string{"app", "apx", "build"}[i%3]
		c := newConnection(fmt.Sprintf("%s-%02d", prefix, i), types[i%len(types)], statuses[(i/3)%len(statuses)])
		if err := s.CreateConnection(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
		all = append(all, *c)
	}
	slices.SortFunc(all, func(a, b connection.Connection) int { return strings.Compare(a.Spec.Name, b.Spec.Name) })

	tests := []struct {
		name   string
		filter connection.Filter
		match  func(c connection.Connection) bool
	}{
		{"everything", connection.Filter{}, func(connection.Connection) bool { return true }},
		{"status", connection.Filter{Status: api.StatusActive}, func(c connection.Connection) bool { return c.Status == api.StatusActive }},
		{"provider type", connection.Filter{ProviderType: api.ProviderGitLab}, func(c connection.Connection) bool { return c.Spec.ProviderType == api.ProviderGitLab }},
		{"name prefix", connection.Filter{NamePrefix: "ap"}, func(c connection.Connection) bool { return strings.HasPrefix(c.Spec.Name, "ap") }},
		{"all filters", connection.Filter{NamePrefix: "app", Status: api.StatusDraft, ProviderType: api.ProviderGitHub}, func(c connection.Connection) bool {
			return strings.HasPrefix(c.Spec.Name, "app") && c.Status == api.StatusDraft && c.Spec.ProviderType == api.ProviderGitHub
		}},
		{"no match", connection.Filter{Status: "nope"}, func(connection.Connection) bool { return false }},
	}
	for _, tt := range tests {
		var want []string
		for _, c := range all {
			if tt.match(c) {
				want = append(want, c.Spec.Name)
			}
		}
		for _, limit := range []int{1, 2, 5, 0} {
			t.Run(fmt.Sprintf("%s/limit=%d", tt.name, limit), func(t *testing.T) {
				f := tt.filter
				f.Limit = limit
				var got []string
				for pages := 0; ; pages++ {
					if pages > len(all)+1 {
						t.Fatalf("pagination does not end")
					}
					page, next, err := s.ListConnections(ctx, f)
					if err != nil {
						t.Fatalf("ListConnections: %v", err)
					}
					if limit > 0 && len(page) > limit {
						t.Fatalf("page of %d rows, limit %d", len(page), limit)
					}
					for _, c := range page {
						got = append(got, c.Spec.Name)
					}
					if next == "" {
						break
					}
					f.Cursor = next
				}
				if !slices.Equal(got, want) {
					t.Errorf("names = %v\nwant    %v", got, want)
				}
			})
		}
	}

	revs, err := s.ConnectionRevisions(ctx)
	if err != nil || len(revs) != len(all) {
		t.Fatalf("ConnectionRevisions = %d, %v; want %d", len(revs), err, len(all))
	}
	// Asked for more ids than one query binds, most of them unknown: the known ones come back
	// whole, the unknown ones are left out.
	ids := make([]string, 0, 1200)
	for i := range 1200 - len(all) {
		ids = append(ids, fmt.Sprintf("00000000-0000-4000-8000-%012d", i))
	}
	for i := range all {
		if revs[all[i].ID] != all[i].Revision {
			t.Errorf("revision of %s = %d, want %d", all[i].Spec.Name, revs[all[i].ID], all[i].Revision)
		}
		ids = slices.Insert(ids, i*50, all[i].ID)
	}
	byID, err := s.ConnectionsByID(ctx, ids)
	if err != nil || len(byID) != len(all) {
		t.Fatalf("ConnectionsByID = %d, %v; want %d", len(byID), err, len(all))
	}
	slices.SortFunc(byID, func(a, b connection.Connection) int { return strings.Compare(a.Spec.Name, b.Spec.Name) })
	for i := range all {
		assertConnectionEqual(t, &byID[i], &all[i])
	}
}

func TestListConnectionsNamePrefixIsLiteral(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	for _, name := range []string{"ab", "axb", "a1", "abc-d"} {
		if err := s.CreateConnection(ctx, newConnection(name, api.ProviderGitHub, api.StatusDraft), nil); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"a", []string{"a1", "ab", "abc-d", "axb"}},
		{"ab", []string{"ab", "abc-d"}},
		{"a_", nil}, // _ is not "any character"
		{"a%", nil}, // % is not "anything"
		{"%", nil},  //
		{"_b", nil}, //
		{`a\`, nil}, // the escape character itself
		{"AB", nil}, // case-sensitive on both databases
		{"abc-", []string{"abc-d"}},
		{"é", nil},
	}
	for _, tt := range tests {
		page, _, err := s.ListConnections(ctx, connection.Filter{NamePrefix: tt.prefix})
		if err != nil {
			t.Fatalf("ListConnections(%q): %v", tt.prefix, err)
		}
		var got []string
		for _, c := range page {
			got = append(got, c.Spec.Name)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("prefix %q: got %v, want %v", tt.prefix, got, tt.want)
		}
	}
}

func TestListConnectionsRejectsForeignCursors(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	for i := range 3 {
		if err := s.CreateConnection(ctx, newConnection(fmt.Sprintf("c%d", i), api.ProviderGitHub, api.StatusDraft), nil); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendAudit(ctx, []api.AuditEvent{{Action: api.ActionConnectionTest}}); err != nil {
			t.Fatal(err)
		}
	}
	_, auditCursor, err := s.ListAudit(ctx, connection.AuditFilter{Limit: 1})
	if err != nil || auditCursor == "" {
		t.Fatalf("ListAudit: %q, %v", auditCursor, err)
	}
	_, connCursor, err := s.ListConnections(ctx, connection.Filter{Limit: 1})
	if err != nil || connCursor == "" {
		t.Fatalf("ListConnections: %q, %v", connCursor, err)
	}
	for _, bad := range []string{"!!!", "bm90IGpzb24", "e30", auditCursor} {
		if _, _, err := s.ListConnections(ctx, connection.Filter{Cursor: bad}); !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("ListConnections(cursor %q) error = %v, want ErrBadCursor", bad, err)
		}
	}
	for _, bad := range []string{"!!!", "e30", connCursor} {
		if _, _, err := s.ListAudit(ctx, connection.AuditFilter{Cursor: bad}); !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("ListAudit(cursor %q) error = %v, want ErrBadCursor", bad, err)
		}
	}
}

func TestChangeCounterMovesOnlyOnConnectionChanges(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	c := newConnection("cc", api.ProviderGitHub, api.StatusDraft)
	steps := []struct {
		name string
		do   func() error
		want int64
	}{
		{"create", func() error { return s.CreateConnection(ctx, c, nil) }, 1},
		{"audit only", func() error { return s.AppendAudit(ctx, []api.AuditEvent{{Action: api.ActionTokenExchange}}) }, 1},
		{"principal", func() error { return s.CreatePrincipal(ctx, newPrincipal(t, "p", api.RoleAuditor)) }, 1},
		{"update", func() error { n := *c; return s.UpdateConnection(ctx, &n, 1, nil) }, 2},
		{"failed update", func() error { n := *c; _ = s.UpdateConnection(ctx, &n, 1, nil); return nil }, 2},
		{"delete", func() error { return s.DeleteConnection(ctx, c.ID, 2, nil) }, 3},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if v, err := s.ChangeCounter(ctx); err != nil || v != st.want {
			t.Errorf("after %s: ChangeCounter = %d, %v; want %d", st.name, v, err, st.want)
		}
	}
}

// TestProposalAndDeactivationRoundTrip: a pending proposal and the latest deactivation time are
// stored with the connection, read back equal (also through ConnectionsByID, which replicas' caches
// use), and cleared when the proposal is approved or discarded.
func TestProposalAndDeactivationRoundTrip(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	c := newConnection("cc", api.ProviderGitHub, api.StatusInactive)
	if err := s.CreateConnection(ctx, c, nil); err != nil {
		t.Fatal(err)
	}
	proposed := c.Spec
	proposed.Description = "proposed words"
	proposed.Conditions = append([]api.Condition{{Claim: "environment", Operator: api.OpEquals, Value: strp("prod")}}, c.Spec.Conditions...)
	off := time.Date(2026, 12, 3, 9, 8, 7, 654321000, time.FixedZone("x", 3600))
	next := *c
	next.Proposal = &connection.Proposal{Spec: proposed, ProposedBy: "dev-dan", ProposedAt: off.Add(time.Minute)}
	next.DeactivatedAt = &off
	if err := s.UpdateConnection(ctx, &next, c.Revision, auditFor(&next, api.ActionConnectionPropose)); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetConnection(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	assertConnectionEqual(t, got, &next)
	if got.Proposal == nil || got.Proposal.ProposedBy != "dev-dan" || !connection.SameConfig(got.Proposal.Spec, proposed) ||
		!got.Proposal.ProposedAt.Equal(off.Add(time.Minute)) || got.DeactivatedAt == nil || !got.DeactivatedAt.Equal(off) {
		t.Fatalf("read back proposal %+v deactivated_at %v", got.Proposal, got.DeactivatedAt)
	}
	if connection.SameConfig(got.Spec, proposed) {
		t.Fatal("the proposal leaked into the live configuration")
	}
	byID, err := s.ConnectionsByID(ctx, []string{c.ID})
	if err != nil || len(byID) != 1 || byID[0].Proposal == nil || byID[0].DeactivatedAt == nil {
		t.Fatalf("ConnectionsByID = %+v, %v", byID, err)
	}

	cleared := *got
	cleared.Proposal = nil
	if err := s.UpdateConnection(ctx, &cleared, got.Revision, nil); err != nil {
		t.Fatal(err)
	}
	if got, err = s.GetConnection(ctx, c.ID); err != nil || got.Proposal != nil || got.DeactivatedAt == nil {
		t.Fatalf("after clearing: proposal %+v deactivated_at %v (%v)", got.Proposal, got.DeactivatedAt, err)
	}
}
