package sightings_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/jwtverify"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/sightings"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storetest"
)

// granted and denied are verification results as the verifier gives them for a token whose
// signature and times passed: granted, or refused by a condition.
func granted(identity string, claims map[string]any) *jwtverify.Result {
	return &jwtverify.Result{Verified: true, OK: true, Subject: identity, Claims: claims}
}

func denied(identity string, claims map[string]any) *jwtverify.Result {
	return &jwtverify.Result{Verified: true, Subject: identity, Claims: claims,
		FailedKind: jwtverify.KindCondition, FailedCheck: "condition: ref equals"}
}

func TestCountsOnlyTokensWhoseSignatureAndTimesPassed(t *testing.T) {
	for _, c := range []struct {
		name string
		res  *jwtverify.Result
		want bool
	}{
		{"granted", granted("w", nil), true},
		{"refused by a condition", denied("w", nil), true},
		{"signature did not verify (forged)", &jwtverify.Result{Subject: "w", FailedKind: jwtverify.KindSignature}, false},
		{"unsigned (alg none)", &jwtverify.Result{FailedKind: jwtverify.KindAlgorithm}, false},
		{"expired", &jwtverify.Result{Verified: true, Subject: "w", FailedKind: jwtverify.KindExpired}, false},
		{"not yet valid", &jwtverify.Result{Verified: true, Subject: "w", FailedKind: jwtverify.KindNotYetValid}, false},
		{"lives too long", &jwtverify.Result{Verified: true, Subject: "w", FailedKind: jwtverify.KindLifetime}, false},
		{"identity claim unusable", &jwtverify.Result{Verified: true, FailedKind: jwtverify.KindCondition, FailedCheck: connection.CheckIdentity}, false},
		{"no result", nil, false},
	} {
		if got := sightings.Counts(c.res); got != c.want {
			t.Errorf("%s: Counts = %v, want %v", c.name, got, c.want)
		}
	}
}

// newRecorder is a recorder on a fresh store with a settable clock.
func newRecorder(t *testing.T, o sightings.Options) (*sightings.Recorder, *store.Store, *ciissuer.Clock) {
	t.Helper()
	st := storetest.New(t)
	clock := ciissuer.NewClock(t0)
	o.Now = clock.Now
	return sightings.NewRecorder(st, o), st, clock
}

func list(t *testing.T, st *store.Store, conn string) []api.Sighting {
	t.Helper()
	items, _, err := st.ListSightings(t.Context(), sightings.Filter{ConnectionID: conn, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	return items
}

func TestRecorderAggregatesPerWorkloadAndOutcomeAndKeepsTheLatestClaims(t *testing.T) {
	r, st, clock := newRecorder(t, sightings.Options{})
	claims := func(ref string) map[string]any {
		return map[string]any{"sub": "repo:a", "ref": ref, "iat": json.Number("1"), "nbf": json.Number("1"),
			"exp": json.Number("2"), "jti": "one-time", "run_id": json.Number("42")}
	}
	r.Saw("conn-1", granted("repo:a", claims("refs/heads/first")))
	clock.Advance(time.Minute)
	r.Saw("conn-1", granted("repo:a", claims("refs/heads/latest")))
	r.Saw("conn-1", denied("repo:a", claims("refs/heads/dev")))
	r.Saw("conn-2", granted("repo:a", claims("refs/heads/main")))
	r.Saw("conn-1", &jwtverify.Result{Subject: "forger", FailedKind: jwtverify.KindSignature})
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := list(t, st, "conn-1")
	if len(got) != 2 {
		t.Fatalf("conn-1 has %d sightings, want granted and denied of repo:a: %+v", len(got), got)
	}
	var g api.Sighting
	for _, s := range got {
		if s.Outcome == api.OutcomeGranted {
			g = s
		}
		if s.Identity == "forger" {
			t.Errorf("a forged token was recorded")
		}
	}
	if g.Exchanges != 2 || !g.FirstSeen.Equal(t0) || !g.LastSeen.Equal(t0.Add(time.Minute)) {
		t.Errorf("granted sighting %+v: want 2 exchanges from %s to %s", g, t0, t0.Add(time.Minute))
	}
	if g.Claims["ref"] != "refs/heads/latest" || g.Claims["run_id"] != json.Number("42") {
		t.Errorf("claims %v: want the latest token's", g.Claims)
	}
	for _, k := range []string{"iat", "nbf", "exp", "jti"} {
		if _, ok := g.Claims[k]; ok {
			t.Errorf("stored claims keep %s: %v", k, g.Claims)
		}
	}
	if other := list(t, st, "conn-2"); len(other) != 1 || other[0].Exchanges != 1 {
		t.Errorf("conn-2 sightings %+v: want its one exchange, apart from conn-1's", other)
	}
	// A second flush adds to what is stored.
	r.Saw("conn-2", granted("repo:a", claims("refs/heads/main")))
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if other := list(t, st, "conn-2"); len(other) != 1 || other[0].Exchanges != 2 {
		t.Errorf("after a second flush conn-2 has %+v, want one sighting with 2 exchanges", other)
	}
}

func TestRecorderDropsNewWorkloadsWhenFullAndCountsThem(t *testing.T) {
	r, st, _ := newRecorder(t, sightings.Options{MaxPending: 2})
	r.Saw("c", granted("a", nil))
	r.Saw("c", granted("b", nil))
	r.Saw("c", granted("c", nil)) // full: dropped
	r.Saw("c", granted("a", nil)) // already aggregated: counted
	if r.Dropped() != 1 {
		t.Errorf("Dropped = %d, want 1", r.Dropped())
	}
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := list(t, st, "c")
	if len(got) != 2 {
		t.Fatalf("stored %+v, want a and b", got)
	}
	// After a flush there is room again.
	r.Saw("c", granted("c", nil))
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := list(t, st, "c"); len(got) != 3 {
		t.Errorf("after the flush the aggregate took c again: stored %d sightings, want 3", len(got))
	}
}

// failingSink fails its first n upserts (the database is down), then stores.
type failingSink struct {
	*store.Store
	mu    sync.Mutex
	fails int
}

func (f *failingSink) UpsertSightings(ctx context.Context, batch []sightings.Seen) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails > 0 {
		f.fails--
		return errors.New("database unavailable")
	}
	return f.Store.UpsertSightings(ctx, batch)
}

func TestRecorderKeepsAFailedFlushForTheNext(t *testing.T) {
	st := storetest.New(t)
	clock := ciissuer.NewClock(t0)
	r := sightings.NewRecorder(&failingSink{Store: st, fails: 1}, sightings.Options{Now: clock.Now})
	r.Saw("c", granted("a", map[string]any{"ref": "old"}))
	if err := r.Flush(t.Context()); err == nil {
		t.Fatal("the flush to a failing database reported success")
	}
	clock.Advance(time.Second)
	r.Saw("c", granted("a", map[string]any{"ref": "new"}))
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := list(t, st, "c")
	if len(got) != 1 || got[0].Exchanges != 2 || !got[0].FirstSeen.Equal(t0) || got[0].Claims["ref"] != "new" {
		t.Errorf("after a failed and a good flush: %+v; want one sighting of 2 exchanges first seen at %s with the newer claims", got, t0)
	}
	if r.Dropped() != 0 {
		t.Errorf("Dropped = %d, want 0", r.Dropped())
	}
}

func TestRunFlushesAtShutdown(t *testing.T) {
	r, st, _ := newRecorder(t, sightings.Options{FlushEvery: time.Hour, PruneEvery: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	r.Saw("c", granted("seen-before-shutdown", nil))
	cancel()
	<-done
	if got := list(t, st, "c"); len(got) != 1 || got[0].Identity != "seen-before-shutdown" {
		t.Errorf("after Run ended: %+v; want the exchange seen before shutdown flushed", got)
	}
}

// connectionIn stores a connection (sightings of connections that do not exist are pruned).
func connectionIn(t *testing.T, st *store.Store) string {
	t.Helper()
	spec := githubSpec(t, nil)
	c := &connection.Connection{Spec: spec, Status: api.StatusActive, Revision: 1, CreatedAt: t0, UpdatedAt: t0}
	if err := st.CreateConnection(t.Context(), c, nil); err != nil {
		t.Fatal(err)
	}
	return c.ID
}

func TestPruneUsesTheRecordersClockAndRetention(t *testing.T) {
	r, st, clock := newRecorder(t, sightings.Options{Retention: time.Hour})
	c := connectionIn(t, st)
	r.Saw(c, granted("early", nil))
	r.Saw("deleted-connection", granted("orphan", nil))
	clock.Advance(50 * time.Minute)
	r.Saw(c, granted("late", nil))
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n, err := r.Prune(t.Context()); err != nil || n != 1 {
		t.Fatalf("Prune within the retention removed %d (%v), want 1 (the deleted connection's)", n, err)
	}
	if got := list(t, st, c); len(got) != 2 {
		t.Fatalf("within the retention %d sightings are kept, want 2", len(got))
	}
	clock.Advance(11 * time.Minute) // early: 61 min ago; late: 11 min ago
	if n, err := r.Prune(t.Context()); err != nil || n != 1 {
		t.Fatalf("Prune removed %d (%v), want 1", n, err)
	}
	if got := list(t, st, c); len(got) != 1 || got[0].Identity != "late" {
		t.Errorf("kept %+v, want only late", got)
	}
}

func TestStorableIdentity(t *testing.T) {
	long := strings.Repeat("é", 400) // 800 bytes
	for _, c := range []struct{ in, want string }{
		{"repo:acme/app:ref:refs/heads/main", "repo:acme/app:ref:refs/heads/main"},
		{"nul\x00byte", "nul\uFFFDbyte"},
		{"bad\xffutf8", "bad\uFFFDutf8"},
		{long, strings.Repeat("é", 256)},
	} {
		got := sightings.StorableIdentity(c.in)
		if got != c.want {
			t.Errorf("StorableIdentity(%q) = %q, want %q", c.in, got, c.want)
		}
		if !utf8.ValidString(got) || len(got) > sightings.MaxIdentityBytes {
			t.Errorf("StorableIdentity(%q) = %q is not storable", c.in, got)
		}
	}
}
