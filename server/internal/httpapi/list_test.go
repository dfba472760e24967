package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
)

func names(cs []api.Connection) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func TestListFilters(t *testing.T) {
	e := start(t)
	e.inStatus(t, "gh-draft", api.StatusDraft)
	e.inStatus(t, "gh-active", api.StatusActive)
	e.inStatus(t, "gh-inactive", api.StatusInactive)
	e.create(t, genericInput("gen-draft"))
	e.create(t, api.ConnectionInput{Name: "gl-draft", GitLab: &api.GitLabSettings{Domain: "gitlab.com", Group: "acme"}})
	e.create(t, api.ConnectionInput{Name: "abc-1", CircleCI: &api.CircleCISettings{OrganizationID: "org-1"}})
	e.create(t, api.ConnectionInput{Name: "abc", GoogleCloud: &api.GoogleCloudSettings{ClientID: "c", Email: "a@b.c"}})
	e.create(t, genericInput("a-c"))

	for _, tc := range []struct {
		name string
		o    apiclient.ListOptions
		want []string
	}{
		{"no filter", apiclient.ListOptions{}, []string{"a-c", "abc", "abc-1", "gen-draft", "gh-active", "gh-draft", "gh-inactive", "gl-draft"}},
		{"status draft", apiclient.ListOptions{Status: api.StatusDraft}, []string{"a-c", "abc", "abc-1", "gen-draft", "gh-draft", "gl-draft"}},
		{"status active", apiclient.ListOptions{Status: api.StatusActive}, []string{"gh-active"}},
		{"status inactive", apiclient.ListOptions{Status: api.StatusInactive}, []string{"gh-inactive"}},
		{"provider github", apiclient.ListOptions{ProviderType: api.ProviderGitHub}, []string{"gh-active", "gh-draft", "gh-inactive"}},
		{"provider generic", apiclient.ListOptions{ProviderType: api.ProviderGeneric}, []string{"a-c", "gen-draft"}},
		{"provider gitlab", apiclient.ListOptions{ProviderType: api.ProviderGitLab}, []string{"gl-draft"}},
		{"provider circleci", apiclient.ListOptions{ProviderType: api.ProviderCircleCI}, []string{"abc-1"}},
		{"provider google_cloud", apiclient.ListOptions{ProviderType: api.ProviderGoogleCloud}, []string{"abc"}},
		{"status and provider", apiclient.ListOptions{Status: api.StatusDraft, ProviderType: api.ProviderGitHub}, []string{"gh-draft"}},
		{"name prefix", apiclient.ListOptions{NamePrefix: "gh-"}, []string{"gh-active", "gh-draft", "gh-inactive"}},
		{"name prefix is a whole name", apiclient.ListOptions{NamePrefix: "abc"}, []string{"abc", "abc-1"}},
		{"name prefix and status", apiclient.ListOptions{NamePrefix: "gh-", Status: api.StatusActive}, []string{"gh-active"}},
		{"name prefix matches nothing", apiclient.ListOptions{NamePrefix: "zzz"}, []string{}},
		{"name prefix % is literal", apiclient.ListOptions{NamePrefix: "%"}, []string{}},
		{"name prefix a% is literal", apiclient.ListOptions{NamePrefix: "a%"}, []string{}},
		{"name prefix _ is literal", apiclient.ListOptions{NamePrefix: "a_c"}, []string{}},
		{"name prefix _ alone is literal", apiclient.ListOptions{NamePrefix: "_"}, []string{}},
		{"name prefix backslash is literal", apiclient.ListOptions{NamePrefix: `a\`}, []string{}},
		{"name prefix is case-sensitive", apiclient.ListOptions{NamePrefix: "GH-"}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, cl := range []*apiclient.Client{e.DevOps, e.Security, e.Auditor} {
				got, err := cl.ListAllConnections(ctx, tc.o)
				if err != nil {
					t.Fatal(err)
				}
				if g := names(got); !slices.Equal(g, tc.want) {
					t.Errorf("got %v, want %v", g, tc.want)
				}
			}
		})
	}

	// Unknown filter values are 422 naming the parameter; an empty list is [] not null.
	for _, tc := range []struct{ q, field string }{
		{"status=enabled", "status"},
		{"provider_type=jenkins", "provider_type"},
		{"cursor=not-a-cursor", "cursor"},
	} {
		r := e.Do(t, testkit.Request{Method: http.MethodGet, Path: "/v1/workload-connections?" + tc.q, Key: e.AuditorKey})
		wantFields(t, r.Problem(t, http.StatusUnprocessableEntity), tc.field)
	}
	r := e.Do(t, testkit.Request{Method: http.MethodGet, Path: "/v1/workload-connections?name_prefix=zzz", Key: e.AuditorKey})
	if string(r.WantStatus(t, 200).Body) != `{"items":[],"next_cursor":""}` {
		t.Errorf("empty list: %s", r.Body)
	}
}

func TestListCursorPaginationReturnsEveryItemExactlyOnce(t *testing.T) {
	e := start(t)
	var want []string
	for i := range 23 {
		name := fmt.Sprintf("page-%02d", i)
		want = append(want, name)
		e.create(t, githubInput(name))
	}
	e.create(t, githubInput("other")) // outside the prefix
	sort.Strings(want)

	for _, limit := range []int{1, 5, 10, 22, 23} {
		t.Run(fmt.Sprintf("limit_%d", limit), func(t *testing.T) {
			seen := map[string]int{}
			var order []string
			o := apiclient.ListOptions{NamePrefix: "page-", Limit: limit}
			pages := 0
			for {
				page, err := e.Auditor.ListConnections(ctx, o)
				if err != nil {
					t.Fatal(err)
				}
				pages++
				if len(page.Items) > limit {
					t.Fatalf("page of %d items with limit %d", len(page.Items), limit)
				}
				for _, c := range page.Items {
					seen[c.Name]++
					order = append(order, c.Name)
				}
				if page.NextCursor == "" {
					break
				}
				if pages > 100 {
					t.Fatal("cursor never ends")
				}
				o.Cursor = page.NextCursor
			}
			for name, n := range seen {
				if n != 1 {
					t.Errorf("%s returned %d times", name, n)
				}
			}
			if !slices.Equal(order, want) {
				t.Errorf("pages gave %v, want %v", order, want)
			}
			if wantPages := (23 + limit - 1) / limit; pages != wantPages && pages != wantPages+1 {
				t.Errorf("%d pages for limit %d", pages, limit)
			}
		})
	}

	// Changes between pages: a connection deleted before the cursor passes it does not appear, and
	// no other item is skipped or repeated.
	page, err := e.Auditor.ListConnections(ctx, apiclient.ListOptions{NamePrefix: "page-", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.DevOps.DeleteConnection(ctx, "page-15", 0); err != nil {
		t.Fatal(err)
	}
	rest, err := e.Auditor.ListAllConnections(ctx, apiclient.ListOptions{NamePrefix: "page-", Limit: 10, Cursor: page.NextCursor})
	if err != nil {
		t.Fatal(err)
	}
	got := append(names(page.Items), names(rest)...)
	wantAfter := slices.DeleteFunc(slices.Clone(want), func(s string) bool { return s == "page-15" })
	if !slices.Equal(got, wantAfter) {
		t.Errorf("after a delete between pages: %v", got)
	}
}

func TestListLimitBounds(t *testing.T) {
	e := start(t)
	for i := range 3 {
		e.create(t, githubInput(fmt.Sprintf("lim-%d", i)))
	}
	for _, tc := range []struct {
		limit     string
		status    int
		wantItems int
	}{
		{"1", 200, 1}, {"2", 200, 2}, {"500", 200, 3}, {"", 200, 3},
		{"0", 422, 0}, {"-1", 422, 0}, {"501", 422, 0}, {"abc", 422, 0}, {"1.5", 422, 0}, {"99999999999999999999", 422, 0},
	} {
		for _, path := range []string{"/v1/workload-connections", "/v1/audit-events"} {
			t.Run(path+"?limit="+tc.limit, func(t *testing.T) {
				q := ""
				if tc.limit != "" {
					q = "?limit=" + url.QueryEscape(tc.limit)
				}
				r := e.Do(t, testkit.Request{Method: http.MethodGet, Path: path + q, Key: e.AuditorKey})
				if tc.status != 200 {
					wantFields(t, r.Problem(t, tc.status), "limit")
					return
				}
				var page struct {
					Items      []any  `json:"items"`
					NextCursor string `json:"next_cursor"`
				}
				r.WantStatus(t, 200).Decode(t, &page)
				if len(page.Items) != tc.wantItems {
					t.Errorf("%d items, want %d", len(page.Items), tc.wantItems)
				}
				if (page.NextCursor != "") != (tc.wantItems < 3) {
					t.Errorf("next_cursor %q with %d of 3 items", page.NextCursor, len(page.Items))
				}
			})
		}
	}
}

func TestAuditEventFiltersAndCursor(t *testing.T) {
	e := start(t)
	a := e.inStatus(t, "audit-a", api.StatusInactive) // create, status, status
	b := e.create(t, githubInput("audit-b"))
	if _, err := e.DevOps.PatchConnection(ctx, b.ID, map[string]any{"description": "b2"}, 0); err != nil {
		t.Fatal(err)
	}
	// mid lies between the last event so far and the next: just after the stored time (whole
	// microseconds) of the last one, with nanoseconds, so that no sleep is needed to separate them.
	mid := e.auditOf(t, b.ID)[0].Time.Add(1500 * time.Nanosecond)
	for i := range 4 {
		if _, err := e.DevOps.PatchConnection(ctx, b.ID, map[string]any{"description": fmt.Sprintf("b%d", i+3)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.DevOps.TestToken(ctx, a.ID, "x.y.z"); err != nil {
		t.Fatal(err)
	}
	if err := e.DevOps.DeleteConnection(ctx, b.ID, 0); err != nil {
		t.Fatal(err)
	}

	count := func(evs []api.AuditEvent, f func(api.AuditEvent) bool) int {
		n := 0
		for _, ev := range evs {
			if f(ev) {
				n++
			}
		}
		return n
	}
	all := testkit.AuditEvents(t, e.Auditor, apiclient.AuditOptions{})
	if len(all) != 3+1+1+4+1+1 {
		t.Fatalf("%d events in all, want 11", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].Time.After(all[i-1].Time) {
			t.Errorf("events not newest first at %d: %v after %v", i, all[i].Time, all[i-1].Time)
		}
	}
	if all[0].Action != api.ActionConnectionDelete || all[len(all)-1].Action != api.ActionConnectionCreate {
		t.Errorf("newest %s, oldest %s", all[0].Action, all[len(all)-1].Action)
	}

	for _, tc := range []struct {
		name string
		o    apiclient.AuditOptions
		want int
		each func(api.AuditEvent) bool
	}{
		{"connection by id", apiclient.AuditOptions{Connection: a.ID}, 4, func(ev api.AuditEvent) bool { return ev.ConnectionID == a.ID }},
		{"connection by name", apiclient.AuditOptions{Connection: "audit-a"}, 4, func(ev api.AuditEvent) bool { return ev.ConnectionName == "audit-a" }},
		{"deleted connection by id", apiclient.AuditOptions{Connection: b.ID}, 7, func(ev api.AuditEvent) bool { return ev.ConnectionID == b.ID }},
		{"deleted connection by name", apiclient.AuditOptions{Connection: "audit-b"}, 7, func(ev api.AuditEvent) bool { return ev.ConnectionName == "audit-b" }},
		{"action update", apiclient.AuditOptions{Action: api.ActionConnectionUpdate}, 5, func(ev api.AuditEvent) bool { return ev.Action == api.ActionConnectionUpdate }},
		{"action status", apiclient.AuditOptions{Action: api.ActionConnectionStatus}, 2, func(ev api.AuditEvent) bool { return ev.Action == api.ActionConnectionStatus }},
		{"action test", apiclient.AuditOptions{Action: api.ActionConnectionTest}, 1, func(ev api.AuditEvent) bool {
			return ev.Action == api.ActionConnectionTest && ev.Actor == "devops" && ev.ConnectionID == a.ID
		}},
		{"action and connection", apiclient.AuditOptions{Action: api.ActionConnectionCreate, Connection: "audit-b"}, 1, func(ev api.AuditEvent) bool {
			return ev.Action == api.ActionConnectionCreate && ev.ConnectionID == b.ID
		}},
		{"since", apiclient.AuditOptions{Since: mid}, 6, func(ev api.AuditEvent) bool { return !ev.Time.Before(mid) }},
		{"since and connection", apiclient.AuditOptions{Since: mid, Connection: b.ID}, 5, func(ev api.AuditEvent) bool { return ev.ConnectionID == b.ID }},
		{"since in the future", apiclient.AuditOptions{Since: time.Now().Add(time.Hour)}, 0, nil},
		{"unknown connection", apiclient.AuditOptions{Connection: "never-existed"}, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := testkit.AuditEvents(t, e.Security, tc.o)
			if len(got) != tc.want {
				t.Errorf("%d events, want %d", len(got), tc.want)
			}
			if tc.each != nil {
				if n := count(got, tc.each); n != len(got) {
					t.Errorf("%d of %d events do not match the filter", len(got)-n, len(got))
				}
			}
		})
	}

	t.Run("cursor over pages of 3 returns every event exactly once", func(t *testing.T) {
		var paged []api.AuditEvent
		o := apiclient.AuditOptions{Limit: 3}
		pages := 0
		for {
			page, err := e.Auditor.ListAuditEvents(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Items) > 3 {
				t.Fatalf("page of %d", len(page.Items))
			}
			pages++
			paged = append(paged, page.Items...)
			if page.NextCursor == "" || pages > 20 {
				break
			}
			o.Cursor = page.NextCursor
		}
		if pages != 4 {
			t.Errorf("%d pages for 11 events by 3", pages)
		}
		if len(paged) != len(all) {
			t.Fatalf("%d events over pages, want %d", len(paged), len(all))
		}
		for i := range paged {
			if paged[i].ID != all[i].ID {
				t.Errorf("event %d: paged %s, unpaged %s", i, paged[i].ID, all[i].ID)
			}
		}
		// A new event while paging does not shift the pages already served.
		first, err := e.Auditor.ListAuditEvents(ctx, apiclient.AuditOptions{Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		e.create(t, githubInput("audit-c"))
		rest := testkit.AuditEvents(t, e.Auditor, apiclient.AuditOptions{Limit: 3, Cursor: first.NextCursor})
		if len(first.Items)+len(rest) != len(all) {
			t.Errorf("new event during paging: %d + %d events, want %d", len(first.Items), len(rest), len(all))
		}
	})

	// since in another time zone and with nanoseconds means the same instant (7 events now: the
	// six above and the create of audit-c).
	for _, since := range []string{mid.In(time.FixedZone("", 5*3600+1800)).Format(time.RFC3339Nano), mid.UTC().Format(time.RFC3339Nano)} {
		var page api.AuditEventList
		e.Do(t, testkit.Request{Method: http.MethodGet, Path: "/v1/audit-events?since=" + url.QueryEscape(since), Key: e.AuditorKey}).
			WantStatus(t, 200).Decode(t, &page)
		if len(page.Items) != 7 {
			t.Errorf("since=%s: %d events, want 7", since, len(page.Items))
		}
	}

	for _, tc := range []struct{ q, field string }{
		{"since=yesterday", "since"},
		{"since=2026-01-02", "since"},
		{"cursor=garbage", "cursor"},
	} {
		r := e.Do(t, testkit.Request{Method: http.MethodGet, Path: "/v1/audit-events?" + tc.q, Key: e.AuditorKey})
		wantFields(t, r.Problem(t, http.StatusUnprocessableEntity), tc.field)
	}
	// A connection list cursor is not an audit cursor.
	page, err := e.Auditor.ListConnections(ctx, apiclient.ListOptions{Limit: 1})
	if err != nil || page.NextCursor == "" {
		t.Fatalf("need a connection cursor: %v", err)
	}
	r := e.Do(t, testkit.Request{Method: http.MethodGet, Path: "/v1/audit-events?cursor=" + page.NextCursor, Key: e.AuditorKey})
	wantFields(t, r.Problem(t, http.StatusUnprocessableEntity), "cursor")
}
