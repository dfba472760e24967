package store_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/sightings"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storetest"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func seen(conn, identity, outcome string, first, last time.Time, n int64, claims map[string]any) sightings.Seen {
	var stored []byte
	if claims != nil {
		stored = sightings.AppendStoredClaims(nil, claims)
	}
	return sightings.Seen{ConnectionID: conn, Identity: identity, Outcome: outcome, FirstSeen: first, LastSeen: last,
		Exchanges: n, Claims: stored}
}

// TestUpsertSightingsAddsReplicasFlushesTogether: two flushes of the same workload (two replicas,
// or one replica twice) add their exchanges, keep the earliest first sighting and the latest last
// one with that token's claims, whatever order they arrive in.
func TestUpsertSightingsAddsReplicasFlushesTogether(t *testing.T) {
	st := storetest.New(t)
	c := newConnection("seen", api.ProviderGeneric, api.StatusActive)
	if err := st.CreateConnection(t.Context(), c, nil); err != nil {
		t.Fatal(err)
	}
	// The later flush carries older times: a replica that flushed late.
	later := seen(c.ID, "repo:a", api.OutcomeGranted, t0.Add(time.Minute), t0.Add(5*time.Minute), 3,
		map[string]any{"ref": "refs/heads/new", "run": json.Number("12345678901234567890"), "odd": "nul\x00 and \"quotes\" ü"})
	earlier := seen(c.ID, "repo:a", api.OutcomeGranted, t0, t0.Add(2*time.Minute), 4, map[string]any{"ref": "refs/heads/old"})
	denied := seen(c.ID, "repo:a", api.OutcomeDenied, t0, t0.Add(time.Minute), 1, map[string]any{"ref": "refs/heads/dev"})
	if err := st.UpsertSightings(t.Context(), []sightings.Seen{later}); err != nil {
		t.Fatal(err)
	}
	if err := st.UpsertSightings(t.Context(), []sightings.Seen{denied, earlier}); err != nil {
		t.Fatal(err)
	}
	got, next, err := st.ListSightings(t.Context(), sightings.Filter{ConnectionID: c.ID})
	if err != nil {
		t.Fatal(err)
	}
	if next != "" || len(got) != 2 {
		t.Fatalf("got %d sightings (next %q), want the granted and the denied one: %+v", len(got), next, got)
	}
	g := got[0]
	if g.Outcome != api.OutcomeGranted || g.Exchanges != 7 || !g.FirstSeen.Equal(t0) || !g.LastSeen.Equal(t0.Add(5*time.Minute)) {
		t.Errorf("granted sighting %+v: want 7 exchanges, first seen %s, last seen %s", g, t0, t0.Add(5*time.Minute))
	}
	if g.Claims["ref"] != "refs/heads/new" {
		t.Errorf("claims %v: want those of the latest token (ref refs/heads/new)", g.Claims)
	}
	if g.Claims["run"] != json.Number("12345678901234567890") {
		t.Errorf("a large number claim came back as %#v, want the exact json.Number", g.Claims["run"])
	}
	if g.Claims["odd"] != "nul\x00 and \"quotes\" ü" {
		t.Errorf("a claim with NUL, quotes and non-ASCII text came back as %q", g.Claims["odd"])
	}
	if d := got[1]; d.Outcome != api.OutcomeDenied || d.Exchanges != 1 || d.Identity != "repo:a" {
		t.Errorf("denied sighting %+v", d)
	}
}

// TestListSightingsPagesNewestFirst: every sighting once, newest first, across pages; a cursor
// from elsewhere is refused; Since hides what is older.
func TestListSightingsPagesNewestFirst(t *testing.T) {
	st := storetest.New(t)
	var batch []sightings.Seen
	for i := range 25 {
		// Pairs share a last_seen, so the order's tie-break (id) is exercised across pages.
		batch = append(batch, seen("conn-1", fmt.Sprintf("w%02d", i), api.OutcomeGranted, t0, t0.Add(time.Duration(i/2)*time.Second), 1, nil))
	}
	batch = append(batch, seen("conn-2", "other", api.OutcomeGranted, t0, t0.Add(time.Hour), 1, nil))
	if err := st.UpsertSightings(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	var all []api.Sighting
	f := sightings.Filter{ConnectionID: "conn-1", Limit: 4}
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		items, next, err := st.ListSightings(t.Context(), f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, items...)
		if next == "" {
			break
		}
		f.Cursor = next
	}
	if len(all) != 25 {
		t.Fatalf("paged through %d sightings, want 25", len(all))
	}
	names := map[string]bool{}
	for i, s := range all {
		if names[s.Identity] {
			t.Errorf("%s listed twice", s.Identity)
		}
		names[s.Identity] = true
		if i > 0 && s.LastSeen.After(all[i-1].LastSeen) {
			t.Errorf("not newest first at %d: %s after %s", i, s.LastSeen, all[i-1].LastSeen)
		}
		if s.Claims == nil {
			t.Errorf("%s has nil claims; want an empty object", s.Identity)
		}
	}
	if _, _, err := st.ListSightings(t.Context(), sightings.Filter{ConnectionID: "conn-1", Cursor: "eyJrIjoiYSIsInMiOjF9"}); !errors.Is(err, store.ErrBadCursor) {
		t.Errorf("an audit cursor on the sightings list: %v, want ErrBadCursor", err)
	}
	recent, err := st.RecentSightings(t.Context(), "conn-1", t0.Add(10*time.Second), 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(recent) != 5 { // last seen at 10, 10, 11, 11, 12 s
		t.Errorf("RecentSightings since 10 s gave %d, want 5", len(recent))
	}
}

// TestPruneSightingsEnforcesRetentionAndCap: sightings last seen before the retention go, those of
// a deleted connection go, and beyond the cap per connection the least recently seen go.
func TestPruneSightingsEnforcesRetentionAndCap(t *testing.T) {
	st := storetest.New(t)
	a := newConnection("kept", api.ProviderGeneric, api.StatusActive)
	b := newConnection("capped", api.ProviderGeneric, api.StatusActive)
	if err := st.CreateConnection(t.Context(), a, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateConnection(t.Context(), b, nil); err != nil {
		t.Fatal(err)
	}
	var batch []sightings.Seen
	batch = append(batch,
		seen(a.ID, "old", api.OutcomeGranted, t0, t0, 1, nil),
		seen(a.ID, "fresh", api.OutcomeGranted, t0, t0.Add(48*time.Hour), 1, nil),
		seen("gone-connection", "orphan", api.OutcomeGranted, t0, t0.Add(48*time.Hour), 1, nil))
	// 1,205 sightings on b (more than one DELETE batch over a cap of 3), all within the retention.
	for i := range 1205 {
		batch = append(batch, seen(b.ID, fmt.Sprintf("w%04d", i), api.OutcomeDenied, t0, t0.Add(24*time.Hour+time.Duration(i)*time.Second), 1, nil))
	}
	if err := st.UpsertSightings(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	n, err := st.PruneSightings(t.Context(), t0.Add(time.Hour), 3)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1+1+1202 {
		t.Errorf("pruned %d sightings, want 1204 (1 old, 1 orphan, 1202 over the cap)", n)
	}
	left, _, err := st.ListSightings(t.Context(), sightings.Filter{ConnectionID: a.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].Identity != "fresh" {
		t.Errorf("connection a keeps %+v, want only the fresh sighting", left)
	}
	capped, _, err := st.ListSightings(t.Context(), sightings.Filter{ConnectionID: b.ID})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range capped {
		ids = append(ids, s.Identity)
	}
	if fmt.Sprint(ids) != "[w1204 w1203 w1202]" {
		t.Errorf("connection b keeps %v, want the 3 most recently seen", ids)
	}
	orphans, _ := st.RecentSightings(t.Context(), "gone-connection", time.Time{}, 10, nil)
	if len(orphans) != 0 {
		t.Errorf("sightings of a connection that does not exist survive pruning: %+v", orphans)
	}
}

// BenchmarkRecentSightings reads and decodes 10,000 sightings of GitHub-shaped claims, the
// per-connection cap: the impact report's input (its evaluation is BenchmarkImpact in
// server/internal/sightings).
func BenchmarkRecentSightings(b *testing.B) {
	st := storetest.New(b)
	batch := make([]sightings.Seen, 0, 10_000)
	for i := range 10_000 {
		ref := fmt.Sprintf("refs/heads/release/%d", i)
		identity := "repo:octo-org/octo-repo:ref:" + ref
		batch = append(batch, seen("conn", identity, api.OutcomeGranted, t0, t0.Add(time.Duration(i)*time.Second), 1, map[string]any{
			"sub": identity, "environment": "prod", "aud": "https://trustgate.example", "ref": ref,
			"sha": fmt.Sprintf("%040x", i), "repository": "octo-org/octo-repo", "repository_owner": "octo-org",
			"actor_id": "12", "repository_visibility": "private", "repository_id": "74", "repository_owner_id": "65",
			"run_id": fmt.Sprint(1_000_000 + i), "run_number": "10", "run_attempt": "2", "runner_environment": "github-hosted",
			"actor": "octocat", "workflow": "deploy", "head_ref": "", "base_ref": "", "event_name": "push",
			"ref_type": "branch", "job_workflow_ref": "octo-org/octo-automation/.github/workflows/oidc.yml@refs/heads/main",
			"iss": "https://token.actions.githubusercontent.com",
		}))
	}
	for start := 0; start < len(batch); start += 4096 {
		if err := st.UpsertSightings(b.Context(), batch[start:min(start+4096, len(batch))]); err != nil {
			b.Fatal(err)
		}
	}
	// all: every claim decoded; impact: what an impact report of a github connection with a ref
	// condition reads (sightings.ClaimsRead), the rest skipped.
	for _, tc := range []struct {
		name string
		keep map[string]bool
	}{
		{"all", nil},
		{"impact", map[string]bool{"iss": true, "aud": true, "repository_owner_id": true, "repository": true,
			"event_name": true, "ref": true, "sub": true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				got, err := st.RecentSightings(b.Context(), "conn", t0, 10_000, tc.keep)
				if err != nil || len(got) != 10_000 {
					b.Fatalf("read %d sightings: %v", len(got), err)
				}
			}
		})
	}
}

// BenchmarkUpsertSightings is one flush of 1,000 workloads already stored (the steady state of a
// busy connection: every row is an update), with GitHub-shaped claims.
func BenchmarkUpsertSightings(b *testing.B) {
	st := storetest.New(b)
	batch := make([]sightings.Seen, 0, 1000)
	for i := range 1000 {
		identity := fmt.Sprintf("repo:octo-org/repo-%d:ref:refs/heads/main", i)
		batch = append(batch, seen("conn", identity, api.OutcomeGranted, t0, t0, 3, map[string]any{
			"sub": identity, "environment": "prod", "aud": "https://trustgate.example", "ref": "refs/heads/main",
			"sha": fmt.Sprintf("%040x", i), "repository": "octo-org/octo-repo", "repository_owner": "octo-org",
			"actor_id": "12", "repository_visibility": "private", "repository_id": "74", "repository_owner_id": "65",
			"run_id": fmt.Sprint(1_000_000 + i), "run_number": "10", "run_attempt": "2", "runner_environment": "github-hosted",
			"actor": "octocat", "workflow": "deploy", "head_ref": "", "base_ref": "", "event_name": "push",
			"ref_type": "branch", "job_workflow_ref": "octo-org/octo-automation/.github/workflows/oidc.yml@refs/heads/main",
			"iss": "https://token.actions.githubusercontent.com",
		}))
	}
	if err := st.UpsertSightings(b.Context(), batch); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := st.UpsertSightings(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
	}
}
