package sightings_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/sightings"
)

var (
	opts = connection.Options{DefaultAudience: "https://trustgate.example"}
	t0   = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
)

func ptr[T any](v T) *T { return &v }

// githubSpec is a normalised github connection for octo-org (owner id 65) with the extra conditions.
func githubSpec(t testing.TB, mutate func(*api.ConnectionInput)) api.ConnectionInput {
	t.Helper()
	in := api.ConnectionInput{Name: "deploy", GitHub: &api.GitHubSettings{OwnerID: "65", Owner: "octo-org"}}
	if mutate != nil {
		mutate(&in)
	}
	spec, err := connection.Normalize(in, opts)
	if err != nil {
		t.Fatalf("normalize: %v", err)
	}
	return spec
}

// githubSighting is a workload of octo-org seen with these claims (GitHub-shaped, as stored:
// without iat, nbf, exp and jti).
func githubSighting(identity, repo, ref string, lastSeen time.Time) api.Sighting {
	return api.Sighting{Identity: identity, Outcome: api.OutcomeGranted, FirstSeen: t0, LastSeen: lastSeen, Exchanges: 3,
		Claims: map[string]any{
			"iss": connection.GitHubIssuer, "aud": "https://trustgate.example", "sub": identity,
			"repository_owner": "octo-org", "repository_owner_id": "65", "repository": repo, "ref": ref,
		}}
}

func identities(ws []api.ImpactWorkload) []string {
	out := []string{}
	for _, w := range ws {
		out = append(out, w.Identity+" ("+w.FailingCheck+")")
	}
	return out
}

func checkTotals(t *testing.T, r api.ImpactReport) {
	t.Helper()
	if sum := r.StillGranted + r.StillRefused + r.NewlyRefusedTotal + r.NewlyAdmittedTotal; sum != r.Sightings {
		t.Errorf("still granted %d + still refused %d + newly refused %d + newly admitted %d = %d, want the %d sightings",
			r.StillGranted, r.StillRefused, r.NewlyRefusedTotal, r.NewlyAdmittedTotal, sum, r.Sightings)
	}
}

func TestImpactTighteningNamesTheWorkloadsItWouldRefuse(t *testing.T) {
	live := githubSpec(t, nil)
	proposed := githubSpec(t, func(in *api.ConnectionInput) {
		in.Conditions = []api.Condition{{Claim: "ref", Operator: api.OpEquals, Value: ptr("refs/heads/main")}}
	})
	seen := []api.Sighting{
		githubSighting("repo:octo-org/app:ref:refs/heads/main", "octo-org/app", "refs/heads/main", t0.Add(3*time.Hour)),
		githubSighting("repo:octo-org/app:ref:refs/heads/dev", "octo-org/app", "refs/heads/dev", t0.Add(2*time.Hour)),
		githubSighting("repo:octo-org/lib:ref:refs/tags/v1", "octo-org/lib", "refs/tags/v1", t0.Add(4*time.Hour)),
	}
	// A workload of another owner: refused today and tomorrow.
	other := githubSighting("repo:evil/app:ref:refs/heads/main", "evil/app", "refs/heads/main", t0)
	other.Claims["repository_owner_id"] = "666"
	seen = append(seen, other)

	r := sightings.Impact(live, proposed, opts, seen, 720*time.Hour)
	checkTotals(t, r)
	want := "[repo:octo-org/lib:ref:refs/tags/v1 (condition: ref equals) repo:octo-org/app:ref:refs/heads/dev (condition: ref equals)]"
	if got := fmt.Sprint(identities(r.NewlyRefused)); got != want {
		t.Errorf("newly refused %s, want (newest first) %s", got, want)
	}
	if len(r.NewlyAdmitted) != 0 || r.StillGranted != 1 || r.StillRefused != 1 || r.Sightings != 4 {
		t.Errorf("report %+v: want 0 newly admitted, 1 still granted, 1 still refused of 4", r)
	}
	if w := r.NewlyRefused[0]; w.Exchanges != 3 || !w.FirstSeen.Equal(t0) || !w.LastSeen.Equal(t0.Add(4*time.Hour)) {
		t.Errorf("workload %+v does not carry its sighting's times and count", w)
	}
	if r.Window != "720h" || len(r.Caveats) != 0 {
		t.Errorf("window %q, caveats %q: want 720h and none (only a condition changed)", r.Window, r.Caveats)
	}
}

func TestImpactLooseningNamesWhomItWouldAdmitWithTheLiveFailingCheck(t *testing.T) {
	live := githubSpec(t, func(in *api.ConnectionInput) {
		in.Conditions = []api.Condition{{Claim: "ref", Operator: api.OpEquals, Value: ptr("refs/heads/main")}}
	})
	proposed := githubSpec(t, func(in *api.ConnectionInput) {
		in.Conditions = []api.Condition{{Claim: "ref", Operator: api.OpGlob, Value: ptr("refs/heads/**")}}
	})
	dev := githubSighting("repo:octo-org/app:ref:refs/heads/dev", "octo-org/app", "refs/heads/dev", t0)
	dev.Outcome = api.OutcomeDenied
	seen := []api.Sighting{dev, githubSighting("repo:octo-org/app:ref:refs/heads/main", "octo-org/app", "refs/heads/main", t0)}
	r := sightings.Impact(live, proposed, opts, seen, 24*time.Hour)
	checkTotals(t, r)
	if got := fmt.Sprint(identities(r.NewlyAdmitted)); got != "[repo:octo-org/app:ref:refs/heads/dev (condition: ref equals)]" {
		t.Errorf("newly admitted %s, want the dev branch failing the live ref condition", got)
	}
	if len(r.NewlyRefused) != 0 || r.StillGranted != 1 {
		t.Errorf("report %+v", r)
	}
}

func TestImpactOfAChangedPresetJudgesTheNewPresetsConditionsAndSaysTheKeysChange(t *testing.T) {
	live := githubSpec(t, nil)
	// From the github preset to gitlab.com: every GitHub workload fails the new issuer condition.
	proposed, err := connection.Normalize(api.ConnectionInput{Name: "deploy",
		GitLab: &api.GitLabSettings{Domain: "gitlab.com", Group: "octo-org"}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	seen := []api.Sighting{githubSighting("repo:octo-org/app:ref:refs/heads/main", "octo-org/app", "refs/heads/main", t0)}
	r := sightings.Impact(live, proposed, opts, seen, 720*time.Hour)
	checkTotals(t, r)
	if got := fmt.Sprint(identities(r.NewlyRefused)); got != "[repo:octo-org/app:ref:refs/heads/main (condition: iss equals)]" {
		t.Errorf("newly refused %s, want the GitHub workload failing the iss condition", got)
	}
	if !hasCaveat(r, "key source changes", "https://gitlab.com/oauth/discovery/keys") {
		t.Errorf("caveats %q do not say the key source changes to GitLab's", r.Caveats)
	}
}

func TestImpactOfAChangedIdentityClaim(t *testing.T) {
	live := githubSpec(t, nil)
	proposed := githubSpec(t, func(in *api.ConnectionInput) { in.IdentityClaim = "environment" })
	withEnv := githubSighting("repo:octo-org/app:environment:prod", "octo-org/app", "refs/heads/main", t0.Add(time.Hour))
	withEnv.Claims["environment"] = "prod"
	seen := []api.Sighting{withEnv, githubSighting("repo:octo-org/app:ref:refs/heads/main", "octo-org/app", "refs/heads/main", t0)}
	r := sightings.Impact(live, proposed, opts, seen, 720*time.Hour)
	checkTotals(t, r)
	if got := fmt.Sprint(identities(r.NewlyRefused)); got != "[repo:octo-org/app:ref:refs/heads/main (identity)]" {
		t.Errorf("newly refused %s, want the workload without an environment claim, failing the identity check", got)
	}
	if r.StillGranted != 1 {
		t.Errorf("still granted %d, want 1 (the workload with an environment)", r.StillGranted)
	}
	if !hasCaveat(r, "identity_claim changes from sub to environment", "never recorded") {
		t.Errorf("caveats %q do not explain the identity claim change", r.Caveats)
	}
}

func TestImpactCaveatsForWhatClaimsCannotTell(t *testing.T) {
	live := githubSpec(t, nil)
	proposed := githubSpec(t, func(in *api.ConnectionInput) {
		in.JWKSURL = "https://keys.example/jwks"
		in.TokenTTL = &api.TokenTTL{Amount: 10, Unit: api.UnitMinutes}
		in.TokenAudience = []string{"https://api.example"}
		in.ClaimMappings = map[string]string{"repo": "repository"}
		in.SingleUse = true
		in.Conditions = []api.Condition{{Claim: "jti", Operator: api.OpExists}}
	})
	seen := []api.Sighting{githubSighting("repo:octo-org/app:ref:refs/heads/main", "octo-org/app", "refs/heads/main", t0)}
	r := sightings.Impact(live, proposed, opts, seen, 720*time.Hour)
	checkTotals(t, r)
	if r.StillGranted != 1 || r.NewlyRefusedTotal != 0 {
		t.Errorf("report %+v: a new key source or a rule on jti must not be guessed into a refusal", r)
	}
	for _, want := range [][]string{
		{"key source changes", "https://keys.example/jwks"},
		{"token_ttl changes from 1h to 10m"},
		{"token_audience changes", "https://api.example"},
		{"claim_mappings change"},
		{"single_use becomes true"},
		{"rules on jti are not judged"},
	} {
		if !hasCaveat(r, want...) {
			t.Errorf("no caveat says %q; caveats: %q", want, r.Caveats)
		}
	}
}

func TestImpactWithNoSightingsSaysSo(t *testing.T) {
	live := githubSpec(t, nil)
	r := sightings.Impact(live, live, opts, nil, 168*time.Hour)
	if r.Sightings != 0 || r.NewlyRefused == nil || r.NewlyAdmitted == nil {
		t.Errorf("report %+v: want zero sightings and empty (not null) lists", r)
	}
	if !hasCaveat(r, "no workload was seen", "168h") {
		t.Errorf("caveats %q do not say that nothing was seen", r.Caveats)
	}
}

func TestImpactListsAtMost100NewestFirstAndCountsThemAll(t *testing.T) {
	live := githubSpec(t, nil)
	proposed := githubSpec(t, func(in *api.ConnectionInput) {
		in.Conditions = []api.Condition{{Claim: "ref", Operator: api.OpEquals, Value: ptr("refs/heads/main")}}
	})
	var seen []api.Sighting
	for i := range 150 {
		seen = append(seen, githubSighting(fmt.Sprintf("w%03d", i), "octo-org/app", "refs/heads/dev", t0.Add(time.Duration(i)*time.Minute)))
	}
	r := sightings.Impact(live, proposed, opts, seen, 720*time.Hour)
	checkTotals(t, r)
	if len(r.NewlyRefused) != sightings.MaxListed || r.NewlyRefusedTotal != 150 {
		t.Fatalf("%d listed of %d newly refused; want 100 of 150", len(r.NewlyRefused), r.NewlyRefusedTotal)
	}
	if r.NewlyRefused[0].Identity != "w149" || r.NewlyRefused[99].Identity != "w050" {
		t.Errorf("listed %s … %s, want the newest first: w149 … w050", r.NewlyRefused[0].Identity, r.NewlyRefused[99].Identity)
	}
}

func hasCaveat(r api.ImpactReport, parts ...string) bool {
	for _, c := range r.Caveats {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(c, p)
		}
		if all {
			return true
		}
	}
	return false
}

// The store decodes only ClaimsRead's claims for a report (the rest of a stored claim set is
// skipped): deciding on those alone gives the report that all of the claims give, for changes to
// conditions, JSON-pointer conditions, the identity claim and the preset.
func TestClaimsReadKeepsEveryClaimTheReportReads(t *testing.T) {
	gitlab, err := connection.Normalize(api.ConnectionInput{Name: "deploy",
		GitLab: &api.GitLabSettings{Domain: "gitlab.com", Group: "octo-org"}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	changes := map[string][2]api.ConnectionInput{
		"tightened": {githubSpec(t, nil), githubSpec(t, func(in *api.ConnectionInput) {
			in.Conditions = []api.Condition{{Claim: "ref", Operator: api.OpEquals, Value: ptr("refs/heads/main")}}
		})},
		"json pointer with escapes": {githubSpec(t, nil), githubSpec(t, func(in *api.ConnectionInput) {
			in.Conditions = []api.Condition{{Claim: "/a~1b/c", Operator: api.OpEquals, Value: ptr("x")}}
		})},
		"identity claim": {githubSpec(t, nil), githubSpec(t, func(in *api.ConnectionInput) { in.IdentityClaim = "environment" })},
		"preset":         {githubSpec(t, nil), gitlab},
	}
	seen := []api.Sighting{
		githubSighting("repo:octo-org/app:ref:refs/heads/main", "octo-org/app", "refs/heads/main", t0),
		githubSighting("repo:octo-org/app:ref:refs/heads/dev", "octo-org/app", "refs/heads/dev", t0.Add(time.Hour)),
	}
	seen[0].Claims["a/b"] = map[string]any{"c": "x"}
	seen[1].Claims["environment"] = "prod"
	for name, c := range changes {
		keep := sightings.ClaimsRead(opts, c[0], c[1])
		projected := make([]api.Sighting, len(seen))
		for i, s := range seen {
			raw := sightings.AppendStoredClaims(nil, s.Claims)
			s.Claims, err = sightings.DecodeClaimsKeeping(string(raw), keep)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Claims) >= len(seen[i].Claims) {
				t.Errorf("%s: the projection kept %d of %d claims", name, len(s.Claims), len(seen[i].Claims))
			}
			projected[i] = s
		}
		full := sightings.Impact(c[0], c[1], opts, seen, time.Hour)
		got := sightings.Impact(c[0], c[1], opts, projected, time.Hour)
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", full) {
			t.Errorf("%s: the report on the projected claims\n%+v\ndiffers from the one on all of them\n%+v", name, got, full)
		}
	}
}
