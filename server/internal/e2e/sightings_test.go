package e2e_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
	"github.com/trustgate/terraform-provider-trustgate/server/app"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/admin"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/sightings"
)

// refs is a generic connection of e's issuer that grants the main and dev branches.
func (e *env) refs(name string) api.ConnectionInput {
	in := e.generic(name)
	in.Conditions = append(in.Conditions, api.Condition{Claim: "ref", Operator: api.OpOneOf,
		Values: []string{"refs/heads/main", "refs/heads/dev"}})
	return in
}

// flush writes the server's aggregated sightings now (the background flush runs every few seconds).
func flush(t *testing.T, s *testkit.Server) {
	t.Helper()
	if err := s.App.Sightings.Flush(t.Context()); err != nil {
		t.Fatalf("flushing sightings: %v", err)
	}
}

// sightingsOf pages through every sighting of a connection as c reads them, keyed by
// "identity/outcome".
func sightingsOf(t *testing.T, c *apiclient.Client, conn string) map[string]api.Sighting {
	t.Helper()
	out := map[string]api.Sighting{}
	o := apiclient.SightingOptions{Limit: 2}
	for {
		page, err := c.ListSightings(t.Context(), conn, o)
		if err != nil {
			t.Fatalf("listing sightings of %s: %v", conn, err)
		}
		for _, s := range page.Items {
			out[s.Identity+"/"+s.Outcome] = s
		}
		if page.NextCursor == "" {
			return out
		}
		o.Cursor = page.NextCursor
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestSightingsRecordGrantedAndRefusedWorkloadsButNeverUnverifiedTokens exchanges real tokens over
// HTTP: granted ones and ones a condition refuses are sightings; a forged, an expired, an unsigned
// token and one without a usable identity claim are not, whatever claims they carry.
func TestSightingsRecordGrantedAndRefusedWorkloadsButNeverUnverifiedTokens(t *testing.T) {
	clock := ciissuer.NewClock(time.Now().UTC().Truncate(time.Second))
	e := &env{Server: testkit.Start(t, testkit.WithClock(clock.Now)), iss: ciissuer.Start(t, devissuer.Options{Now: clock.Now})}
	conn := e.CreateActive(t, e.refs("sighted"))
	main := func() string {
		return e.token(t, map[string]any{"sub": "repo:app:main", "ref": "refs/heads/main", "run_id": json.Number("7")})
	}

	firstSeen := clock.Now()
	testkit.MustGrant(t, e.Exchange(conn.Name, main()), time.Hour)
	clock.Advance(time.Minute)
	testkit.MustGrant(t, e.Exchange(conn.Name, main()), time.Hour)
	testkit.MustRefuse(t, e.Exchange(conn.Name, e.token(t, map[string]any{"sub": "repo:app:feature", "ref": "refs/heads/feature"})),
		api.ErrInvalidGrant, "condition")

	// Forged: the attacker signs under the victim's key id, with the victim's claims.
	attacker := ciissuer.Start(t, devissuer.Options{Now: clock.Now})
	forged := attacker.MustMintWith(t, devissuer.MintOptions{Shape: "generic", Header: map[string]any{"kid": e.iss.KID()},
		Claims: withAudience(e.URL, map[string]any{"iss": e.iss.URL, "sub": "forger", "ref": "refs/heads/main"})})
	testkit.MustRefuse(t, e.Exchange(conn.Name, forged), api.ErrInvalidGrant, "signature")
	// Expired: signed by the right key, an hour past its exp.
	expired := e.iss.MustMintWith(t, devissuer.MintOptions{Shape: "generic", TTL: time.Minute,
		Claims: withAudience(e.URL, map[string]any{"sub": "expired", "ref": "refs/heads/main"})})
	clock.Advance(time.Hour)
	testkit.MustRefuse(t, e.Exchange(conn.Name, expired), api.ErrInvalidGrant, "expired")
	clock.Advance(-time.Hour)
	// Unsigned: alg none, the claims of a good token.
	parts := strings.Split(e.token(t, map[string]any{"sub": "unsigned", "ref": "refs/heads/main"}), ".")
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"` + e.iss.KID() + `"}`))
	testkit.MustRefuse(t, e.Exchange(conn.Name, none+"."+parts[1]+"."), api.ErrInvalidGrant, "algorithm")
	// No usable identity: refused on the identity check, and names no workload.
	testkit.MustRefuse(t, e.Exchange(conn.Name, e.token(t, map[string]any{"sub": "", "ref": "refs/heads/main"})), api.ErrInvalidGrant, "condition")

	flush(t, e.Server)
	got := sightingsOf(t, e.Auditor, conn.Name)
	if want := []string{"repo:app:feature/denied", "repo:app:main/granted"}; !slices.Equal(keys(got), want) {
		t.Fatalf("sightings %v, want %v", keys(got), want)
	}
	g := got["repo:app:main/granted"]
	if g.Exchanges != 2 || !g.FirstSeen.Equal(firstSeen) || !g.LastSeen.Equal(firstSeen.Add(time.Minute)) {
		t.Errorf("granted sighting: %d exchanges, first %s, last %s; want 2, %s, %s", g.Exchanges, g.FirstSeen, g.LastSeen, firstSeen, firstSeen.Add(time.Minute))
	}
	if g.Claims["ref"] != "refs/heads/main" || g.Claims["iss"] != e.iss.URL || fmt.Sprint(g.Claims["run_id"]) != "7" {
		t.Errorf("granted sighting's claims %v: want the token's claims", g.Claims)
	}
	for _, k := range []string{"iat", "nbf", "exp", "jti"} {
		if _, ok := g.Claims[k]; ok {
			t.Errorf("the sighting keeps %s", k)
		}
	}
	if d := got["repo:app:feature/denied"]; d.Exchanges != 1 || d.Claims["ref"] != "refs/heads/feature" {
		t.Errorf("denied sighting %+v", d)
	}
}

// TestSightingsOfTwoReplicasAddUp: each replica aggregates and flushes its own exchanges into the
// shared database; the counts add up.
func TestSightingsOfTwoReplicasAddUp(t *testing.T) {
	a := newEnv(t)
	b := &env{iss: a.iss, Server: testkit.StartOn(t, a.DSN, testkit.WithConfig(func(c *app.Config) {
		c.KEK = a.App.Config.KEK
		c.PublicURL = a.URL
	}))}
	conn := a.CreateActive(t, a.refs("replicated"))
	if err := b.App.Catalog.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	tok := func(sub, ref string) string { return a.token(t, map[string]any{"sub": sub, "ref": ref}) }
	for range 3 {
		testkit.MustGrant(t, a.Exchange(conn.Name, tok("shared", "refs/heads/main")), time.Hour)
	}
	for range 2 {
		testkit.MustGrant(t, b.Exchange(conn.Name, tok("shared", "refs/heads/dev")), time.Hour)
	}
	testkit.MustRefuse(t, b.Exchange(conn.Name, tok("only-b", "refs/tags/v1")), api.ErrInvalidGrant, "condition")
	flush(t, a.Server)
	flush(t, b.Server)
	// Twice more through a after both flushed: the stored row grows.
	testkit.MustGrant(t, a.Exchange(conn.Name, tok("shared", "refs/heads/main")), time.Hour)
	flush(t, a.Server)

	got := sightingsOf(t, b.Security, conn.Name)
	if want := []string{"only-b/denied", "shared/granted"}; !slices.Equal(keys(got), want) {
		t.Fatalf("sightings %v, want %v", keys(got), want)
	}
	if n := got["shared/granted"].Exchanges; n != 6 {
		t.Errorf("shared workload: %d exchanges, want 3 + 2 + 1 = 6 from both replicas", n)
	}
	if ref := got["shared/granted"].Claims["ref"]; ref != "refs/heads/main" {
		t.Errorf("shared workload's claims say ref %v, want the latest token's (refs/heads/main)", ref)
	}
}

// TestSightingsOffRecordsNothingAndSaysSoInImpactReports: a replica started with
// --sightings=false (app.Config.SightingsOff) records none of its exchanges, still lists what
// another replica recorded, and every impact report it answers carries the caveat that its own
// exchanges are missing.
func TestSightingsOffRecordsNothingAndSaysSoInImpactReports(t *testing.T) {
	on := newEnv(t)
	off := &env{iss: on.iss, Server: testkit.StartOn(t, on.DSN, testkit.WithConfig(func(c *app.Config) {
		c.KEK = on.App.Config.KEK
		c.PublicURL = on.URL
		c.SightingsOff = true
	}))}
	conn := on.CreateActive(t, on.refs("half-recorded"))
	if err := off.App.Catalog.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	tok := func(sub string) string { return on.token(t, map[string]any{"sub": sub, "ref": "refs/heads/main"}) }
	testkit.MustGrant(t, on.Exchange(conn.Name, tok("seen")), time.Hour)
	for range 3 {
		testkit.MustGrant(t, off.Exchange(conn.Name, tok("unseen")), time.Hour)
	}
	testkit.MustRefuse(t, off.Exchange(conn.Name, on.token(t, map[string]any{"sub": "unseen-refused", "ref": "refs/tags/v1"})),
		api.ErrInvalidGrant, "condition")
	flush(t, on.Server)
	flush(t, off.Server)

	got := sightingsOf(t, off.Auditor, conn.Name)
	if want := []string{"seen/granted"}; !slices.Equal(keys(got), want) {
		t.Fatalf("sightings %v, want %v: the replica with --sightings=false recorded its exchanges", keys(got), want)
	}
	patch := map[string]any{"description": "no change to the rules"}
	if r, err := off.Security.Impact(t.Context(), conn.Name, patch, apiclient.ImpactOptions{}); err != nil {
		t.Fatal(err)
	} else if !slices.Contains(r.Caveats, admin.CaveatSightingsOff) {
		t.Errorf("impact report of the replica that records nothing: caveats %q, want %q", r.Caveats, admin.CaveatSightingsOff)
	}
	if r, err := on.Security.Impact(t.Context(), conn.Name, patch, apiclient.ImpactOptions{}); err != nil {
		t.Fatal(err)
	} else if slices.Contains(r.Caveats, admin.CaveatSightingsOff) {
		t.Errorf("impact report of the recording replica says it records nothing: %q", r.Caveats)
	}
}

// TestSightingsRetentionAndCapRemoveOldAndExcessSightings: with the clock moved past the
// retention, the background pass (run here) removes what is too old; above 10,000 sightings on a
// connection the least recently seen go.
func TestSightingsRetentionAndCapRemoveOldAndExcessSightings(t *testing.T) {
	clock := ciissuer.NewClock(time.Now().UTC().Truncate(time.Second))
	e := &env{Server: testkit.Start(t, testkit.WithClock(clock.Now), testkit.WithConfig(func(c *app.Config) {
		c.SightingsRetention = 48 * time.Hour
	})), iss: ciissuer.Start(t, devissuer.Options{Now: clock.Now})}
	conn := e.CreateActive(t, e.refs("kept"))
	exchange := func(sub string) {
		testkit.MustGrant(t, e.Exchange(conn.Name, e.token(t, map[string]any{"sub": sub, "ref": "refs/heads/main"})), time.Hour)
	}
	stored := func() []api.Sighting {
		t.Helper()
		all, err := e.App.Store.RecentSightings(t.Context(), conn.ID, time.Time{}, 20_000, nil)
		if err != nil {
			t.Fatal(err)
		}
		return all
	}
	prune := func() {
		t.Helper()
		if _, err := e.App.Sightings.Prune(t.Context()); err != nil {
			t.Fatal(err)
		}
	}

	exchange("old")
	clock.Advance(24 * time.Hour)
	exchange("recent")
	flush(t, e.Server)
	clock.Advance(25 * time.Hour) // old: 49 h ago, recent: 25 h ago
	prune()
	if got := stored(); len(got) != 1 || got[0].Identity != "recent" {
		t.Fatalf("after the retention pass the database keeps %+v, want only recent", got)
	}

	// 10,000 more, seen before "recent" (a workload seen long ago, one per second).
	batch := make([]sightings.Seen, 0, sightings.DefaultMaxPerConnection)
	base := clock.Now().Add(-47 * time.Hour)
	for i := range sightings.DefaultMaxPerConnection {
		at := base.Add(time.Duration(i) * time.Second)
		batch = append(batch, sightings.Seen{ConnectionID: conn.ID, Identity: fmt.Sprintf("bulk-%05d", i), Outcome: api.OutcomeGranted,
			FirstSeen: at, LastSeen: at, Exchanges: 1})
	}
	if err := e.App.Store.UpsertSightings(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	exchange("newest")
	flush(t, e.Server)
	prune()
	got := stored()
	if len(got) != sightings.DefaultMaxPerConnection {
		t.Fatalf("the connection keeps %d sightings, want the cap of %d", len(got), sightings.DefaultMaxPerConnection)
	}
	names := map[string]bool{}
	for _, s := range got {
		names[s.Identity] = true
	}
	if !names["newest"] || !names["recent"] || names["bulk-00000"] || names["bulk-00001"] || !names["bulk-00002"] {
		t.Errorf("the cap kept the wrong sightings: newest %v, recent %v, bulk-00000 %v, bulk-00001 %v, bulk-00002 %v; want the two least recently seen (bulk-00000, bulk-00001) gone",
			names["newest"], names["recent"], names["bulk-00000"], names["bulk-00001"], names["bulk-00002"])
	}
}

// impactEnv is an active connection granting main and dev, on which main and dev (granted) and a
// feature branch (refused) have been seen; the dev workload carries an environment claim.
type impactEnv struct {
	*env
	conn *api.Connection
}

func newImpactEnv(t *testing.T) *impactEnv {
	t.Helper()
	e := newEnv(t)
	conn := e.CreateActive(t, e.refs("reviewed"))
	for _, w := range []map[string]any{
		{"sub": "repo:app:main", "ref": "refs/heads/main"},
		{"sub": "repo:app:dev", "ref": "refs/heads/dev", "environment": "staging"},
	} {
		testkit.MustGrant(t, e.Exchange(conn.Name, e.token(t, w)), time.Hour)
	}
	testkit.MustRefuse(t, e.Exchange(conn.Name, e.token(t, map[string]any{"sub": "repo:app:feature", "ref": "refs/heads/feature/x"})),
		api.ErrInvalidGrant, "condition")
	flush(t, e.Server)
	return &impactEnv{env: e, conn: conn}
}

// patchRefs is a merge patch setting the connection's conditions to e's iss and aud and the ref
// condition.
func (e *impactEnv) patchRefs(ref api.Condition) map[string]any {
	in := e.generic("x")
	return map[string]any{"conditions": append(in.Conditions, ref)}
}

func (e *impactEnv) impact(t *testing.T, c *apiclient.Client, patch any) *api.ImpactReport {
	t.Helper()
	r, err := c.Impact(t.Context(), e.conn.Name, patch, apiclient.ImpactOptions{})
	if err != nil {
		t.Fatalf("impact: %v", err)
	}
	if sum := r.StillGranted + r.StillRefused + r.NewlyRefusedTotal + r.NewlyAdmittedTotal; sum != r.Sightings {
		t.Errorf("the counts of the report add up to %d, not its %d sightings: %+v", sum, r.Sightings, r)
	}
	return r
}

func workloads(ws []api.ImpactWorkload) string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Identity+" ("+w.FailingCheck+")")
	}
	return "[" + strings.Join(out, ", ") + "]"
}

func TestImpactOverHTTP(t *testing.T) {
	e := newImpactEnv(t)
	before, err := e.Security.GetConnection(t.Context(), e.conn.Name)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("tightening names the workloads it would refuse", func(t *testing.T) {
		r := e.impact(t, e.Auditor, e.patchRefs(api.Condition{Claim: "ref", Operator: api.OpEquals, Value: ptr("refs/heads/main")}))
		if got := workloads(r.NewlyRefused); got != "[repo:app:dev (condition: ref equals)]" {
			t.Errorf("newly refused %s", got)
		}
		if r.Sightings != 3 || r.StillGranted != 1 || r.StillRefused != 1 || len(r.NewlyAdmitted) != 0 || r.Window != "720h" {
			t.Errorf("report %+v", r)
		}
		if w := r.NewlyRefused[0]; w.Exchanges != 1 || w.LastSeen.IsZero() || w.FirstSeen.IsZero() {
			t.Errorf("workload %+v lacks its times or count", w)
		}
	})
	t.Run("loosening names whom it would admit, with the check they fail today", func(t *testing.T) {
		r := e.impact(t, e.DevOps, e.patchRefs(api.Condition{Claim: "ref", Operator: api.OpGlob, Value: ptr("refs/heads/**")}))
		if got := workloads(r.NewlyAdmitted); got != "[repo:app:feature (condition: ref one_of)]" {
			t.Errorf("newly admitted %s", got)
		}
		if r.StillGranted != 2 || len(r.NewlyRefused) != 0 {
			t.Errorf("report %+v", r)
		}
	})
	t.Run("a changed preset is judged on the preset's conditions", func(t *testing.T) {
		r := e.impact(t, e.Security, map[string]any{"conditions": nil,
			"github": map[string]any{"owner_id": "65", "owner": "octo-org"}})
		if r.NewlyRefusedTotal != 2 || !strings.Contains(workloads(r.NewlyRefused), "(condition: iss equals)") {
			t.Errorf("switching to the github preset: newly refused %s (%d); want both granted workloads failing the iss condition",
				workloads(r.NewlyRefused), r.NewlyRefusedTotal)
		}
	})
	t.Run("a changed identity claim refuses the workloads without it", func(t *testing.T) {
		r := e.impact(t, e.Security, map[string]any{"identity_claim": "environment"})
		if got := workloads(r.NewlyRefused); got != "[repo:app:main (identity)]" {
			t.Errorf("newly refused %s, want main (it has no environment claim)", got)
		}
		if !slices.ContainsFunc(r.Caveats, func(c string) bool { return strings.Contains(c, "identity_claim changes from sub to environment") }) {
			t.Errorf("caveats %q do not mention the identity claim", r.Caveats)
		}
	})
	t.Run("a changed key source is a caveat, not a guess", func(t *testing.T) {
		r := e.impact(t, e.Security, map[string]any{"jwks_url": "https://keys.example.net/jwks"})
		if r.NewlyRefusedTotal != 0 || r.StillGranted != 2 {
			t.Errorf("a new key source changed verdicts on claims alone: %+v", r)
		}
		if len(r.Caveats) != 1 || !strings.Contains(r.Caveats[0], "key source changes") || !strings.Contains(r.Caveats[0], "https://keys.example.net/jwks") {
			t.Errorf("caveats %q, want one saying the key source changes", r.Caveats)
		}
	})
	t.Run("the window is checked against the retention", func(t *testing.T) {
		for _, q := range []string{"window=721h", "window=-1h", "window=soon", "window=0s"} {
			res := e.Do(t, testkit.Request{Method: http.MethodPost, Path: "/v1/workload-connections/reviewed/impact?" + q, Key: e.AuditorKey, Body: "{}"})
			if p := res.Problem(t, http.StatusUnprocessableEntity); len(p.Errors) != 1 || p.Errors[0].Field != "window" {
				t.Errorf("?%s: errors %+v, want one on window", q, p.Errors)
			}
		}
		r, err := e.Auditor.Impact(t.Context(), e.conn.Name, map[string]any{"description": "same rules"}, apiclient.ImpactOptions{Window: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if r.Window != "1m" || r.Sightings != 3 || r.StillGranted != 2 || r.StillRefused != 1 {
			t.Errorf("a 1m window: %+v, want the three workloads just seen, none changed", r)
		}
	})
	t.Run("an invalid change is refused like a create", func(t *testing.T) {
		res := e.Do(t, testkit.Request{Method: http.MethodPost, Path: "/v1/workload-connections/reviewed/impact", Key: e.DevOpsKey,
			Body: `{"token_ttl":{"amount":1,"unit":"seconds"},"conditions":[]}`})
		p := res.Problem(t, http.StatusUnprocessableEntity)
		if len(p.Errors) == 0 {
			t.Errorf("no field errors: %+v", p)
		}
		e.Do(t, testkit.Request{Method: http.MethodPost, Path: "/v1/workload-connections/nosuch/impact", Key: e.DevOpsKey, Body: "{}"}).
			Problem(t, http.StatusNotFound)
		e.Do(t, testkit.Request{Method: http.MethodPost, Path: "/v1/workload-connections/reviewed/impact", Body: "{}"}).
			Problem(t, http.StatusUnauthorized)
	})
	t.Run("the pending proposal, or 404 without one", func(t *testing.T) {
		if _, err := e.DevOps.Impact(t.Context(), e.conn.Name, nil, apiclient.ImpactOptions{}); apiclient.StatusCode(err) != http.StatusNotFound {
			t.Fatalf("impact of the pending proposal when there is none: %v, want 404", err)
		}
		p, err := e.DevOps.PatchConnection(t.Context(), e.conn.Name, e.patchRefs(api.Condition{Claim: "ref", Operator: api.OpEquals, Value: ptr("refs/heads/dev")}), 0)
		if err != nil || p.Proposal == nil {
			t.Fatalf("proposing a change: %v", err)
		}
		r := e.impact(t, e.Auditor, nil)
		if got := workloads(r.NewlyRefused); got != "[repo:app:main (condition: ref equals)]" {
			t.Errorf("impact of the proposal: newly refused %s, want main", got)
		}
		before.Revision = p.Revision // the proposal moved it; the impact reports must not
	})

	after, err := e.Security.GetConnection(t.Context(), e.conn.Name)
	if err != nil {
		t.Fatal(err)
	}
	if after.Revision != before.Revision || after.Fingerprint != before.Fingerprint {
		t.Errorf("impact changed the connection: revision %d → %d, fingerprint %s → %s", before.Revision, after.Revision, before.Fingerprint, after.Fingerprint)
	}
	for _, ev := range testkit.AuditEvents(t, e.Security, apiclient.AuditOptions{Connection: e.conn.Name}) {
		if strings.Contains(ev.Action, "impact") {
			t.Errorf("impact was audited as %s; it is a read", ev.Action)
		}
	}
}

// TestSightingsListIsReadableByEveryRoleAndPaged: newest first, every page in turn, for each role.
func TestSightingsListIsReadableByEveryRoleAndPaged(t *testing.T) {
	e := newImpactEnv(t)
	for _, c := range []*apiclient.Client{e.DevOps, e.Security, e.Auditor} {
		if got := sightingsOf(t, c, e.conn.ID); len(got) != 3 {
			t.Errorf("%d sightings listed, want 3", len(got))
		}
	}
	page, err := e.Auditor.ListSightings(t.Context(), e.conn.Name, apiclient.SightingOptions{Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(page.Items); i++ {
		if page.Items[i].LastSeen.After(page.Items[i-1].LastSeen) {
			t.Errorf("not newest first: %s after %s", page.Items[i].LastSeen, page.Items[i-1].LastSeen)
		}
	}
	e.Do(t, testkit.Request{Method: http.MethodGet, Path: "/v1/workload-connections/reviewed/sightings?cursor=bogus", Key: e.AuditorKey}).
		Problem(t, http.StatusUnprocessableEntity)
	e.Do(t, testkit.Request{Method: http.MethodGet, Path: "/v1/workload-connections/nosuch/sightings", Key: e.AuditorKey}).
		Problem(t, http.StatusNotFound)
}
