package e2e_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/sightings"
)

// BenchmarkImpactReport is the whole impact report as a reviewer gets it: POST …/impact over
// HTTP for a connection with 10,000 sightings (the per-connection cap) of GitHub-shaped claims,
// proposing one more condition (a glob on ref) that refuses a third of them. It reads the
// sightings from the database, decides each under both configurations and encodes the report.
// CONTRACT.md §3 wants it under 100 ms on the reference machine; the parts are
// BenchmarkRecentSightings (server/internal/store) and BenchmarkImpact (server/internal/sightings).
// SQLite by default, PostgreSQL with TRUSTGATE_TEST_POSTGRES_URL set.
func BenchmarkImpactReport(b *testing.B) {
	s := testkit.Start(b)
	iss := ciissuer.Start(b, devissuer.Options{})
	in := testkit.GenericInput("busy", iss.URL, iss.JWKSURL, s.URL)
	in.Conditions = append(in.Conditions, api.Condition{Claim: "event_name", Operator: api.OpOneOf, Values: []string{"push", "workflow_dispatch"}})
	conn := s.CreateActive(b, in)
	patch := map[string]any{"conditions": append(in.Conditions,
		api.Condition{Claim: "ref", Operator: api.OpGlob, Value: ptr("refs/heads/release/**")})}

	now := time.Now().UTC()
	batch := make([]sightings.Seen, 0, sightings.DefaultMaxPerConnection)
	for i := range sightings.DefaultMaxPerConnection {
		ref := fmt.Sprintf("refs/heads/release/%d", i)
		if i%3 == 0 {
			ref = fmt.Sprintf("refs/heads/feature/%d", i)
		}
		identity := "repo:octo-org/octo-repo:ref:" + ref
		batch = append(batch, sightings.Seen{ConnectionID: conn.ID, Identity: identity, Outcome: api.OutcomeGranted,
			FirstSeen: now.Add(-time.Hour), LastSeen: now.Add(-time.Duration(i) * time.Second), Exchanges: int64(i%7 + 1),
			Claims: sightings.AppendStoredClaims(nil, map[string]any{
				"sub": identity, "environment": "prod", "aud": s.URL, "ref": ref,
				"sha": fmt.Sprintf("%040x", i), "repository": "octo-org/octo-repo", "repository_owner": "octo-org",
				"actor_id": "12", "repository_visibility": "private", "repository_id": "74", "repository_owner_id": "65",
				"run_id": fmt.Sprint(1_000_000 + i), "run_number": "10", "run_attempt": "2", "runner_environment": "github-hosted",
				"actor": "octocat", "workflow": "deploy", "head_ref": "", "base_ref": "", "event_name": "push",
				"ref_type": "branch", "job_workflow_ref": "octo-org/octo-automation/.github/workflows/oidc.yml@refs/heads/main",
				"iss": iss.URL,
			})})
	}
	for start := 0; start < len(batch); start += 2000 {
		if err := s.App.Store.UpsertSightings(b.Context(), batch[start:min(start+2000, len(batch))]); err != nil {
			b.Fatal(err)
		}
	}
	report := func() *api.ImpactReport {
		r, err := s.Security.Impact(b.Context(), conn.Name, patch, apiclient.ImpactOptions{})
		if err != nil {
			b.Fatalf("impact: %v", err)
		}
		return r
	}
	if r := report(); r.Sightings != 10_000 || r.NewlyRefusedTotal != 3334 || r.StillGranted != 6666 {
		b.Fatalf("benchmark setup: %d sightings, %d newly refused, %d still granted; want 10000, 3334 and 6666",
			r.Sightings, r.NewlyRefusedTotal, r.StillGranted)
	}
	b.ReportAllocs()
	for b.Loop() {
		report()
	}
}
