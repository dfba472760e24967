package sightings_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/sightings"
)

// BenchmarkImpact evaluates a tightening proposal (one more condition, a glob on ref) against
// 10,000 sightings, the per-connection cap, of GitHub-shaped claims (the fixture's 24 claims
// without iat, nbf, exp and jti): both configurations are decided for every sighting, a third of
// the workloads end up newly refused and the lists are sorted. CONTRACT.md §3 wants the report in
// under 100 ms for this many on the reference machine; the store's read and decoding of the same
// rows is BenchmarkRecentSightings in server/internal/store.
func BenchmarkImpact(b *testing.B) {
	live := githubSpec(b, func(in *api.ConnectionInput) {
		in.GitHub.Repository = "octo-org/octo-repo"
		in.Conditions = []api.Condition{{Claim: "event_name", Operator: api.OpOneOf, Values: []string{"push", "workflow_dispatch"}}}
	})
	proposed := githubSpec(b, func(in *api.ConnectionInput) {
		in.GitHub.Repository = "octo-org/octo-repo"
		in.Conditions = []api.Condition{
			{Claim: "event_name", Operator: api.OpOneOf, Values: []string{"push", "workflow_dispatch"}},
			{Claim: "ref", Operator: api.OpGlob, Value: ptr("refs/heads/release/**")},
		}
	})
	seen := make([]api.Sighting, 10_000)
	for i := range seen {
		ref := "refs/heads/release/" + fmt.Sprint(i)
		if i%3 == 0 {
			ref = "refs/heads/feature/" + fmt.Sprint(i)
		}
		identity := fmt.Sprintf("repo:octo-org/octo-repo:ref:%s", ref)
		seen[i] = api.Sighting{Identity: identity, Outcome: api.OutcomeGranted, FirstSeen: t0,
			LastSeen: t0.Add(time.Duration(i) * time.Second), Exchanges: int64(i%7 + 1), Claims: map[string]any{
				"sub": identity, "environment": "prod", "aud": "https://trustgate.example", "ref": ref,
				"sha": fmt.Sprintf("%040x", i), "repository": "octo-org/octo-repo", "repository_owner": "octo-org",
				"actor_id": "12", "repository_visibility": "private", "repository_id": "74", "repository_owner_id": "65",
				"run_id": fmt.Sprint(1_000_000 + i), "run_number": "10", "run_attempt": "2", "runner_environment": "github-hosted",
				"actor": "octocat", "workflow": "deploy", "head_ref": "", "base_ref": "", "event_name": "push",
				"ref_type": "branch", "job_workflow_ref": "octo-org/octo-automation/.github/workflows/oidc.yml@refs/heads/main",
				"iss": "https://token.actions.githubusercontent.com",
			}}
	}
	r := sightings.Impact(live, proposed, opts, seen, 720*time.Hour)
	if r.NewlyRefusedTotal != 3334 || r.StillGranted != 6666 {
		b.Fatalf("benchmark setup: %d newly refused, %d still granted; want 3334 and 6666", r.NewlyRefusedTotal, r.StillGranted)
	}
	b.ReportAllocs()
	for b.Loop() {
		sightings.Impact(live, proposed, opts, seen, 720*time.Hour)
	}
}
