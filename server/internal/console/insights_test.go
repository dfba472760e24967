package console_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
)

// A security reviewer opening a connection with a pending proposal sees whom the proposal would
// lock out (from real exchanges, through the impact use case) and the workloads seen.
func TestConnectionPageShowsTheProposalsImpactAndTheWorkloadsSeen(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	iss := ciissuer.Start(t, devissuer.Options{})
	in := testkit.GenericInput("deploy", iss.URL, iss.JWKSURL, s.URL)
	in.Conditions = append(in.Conditions, api.Condition{Claim: "ref", Operator: api.OpOneOf,
		Values: []string{"refs/heads/main", "refs/heads/dev"}})
	conn := s.CreateActive(t, in)
	for _, branch := range []string{"main", "dev"} {
		tok := iss.MustMint(t, "generic", map[string]any{"aud": s.URL, "sub": "repo:app:" + branch, "ref": "refs/heads/" + branch})
		testkit.MustGrant(t, s.Exchange(conn.Name, tok), time.Hour)
	}
	if err := s.App.Sightings.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}

	sec := newClient(t, s)
	sec.signIn(s.SecurityKey)
	before := sec.get("/ui/connections/deploy")
	if before.Status != http.StatusOK {
		t.Fatalf("the connection page answered %d", before.Status)
	}
	seen := section(t, before, "sightings")
	for _, id := range []string{"repo:app:main", "repo:app:dev"} {
		if !strings.Contains(seen, id) {
			t.Errorf("the workloads seen do not name %s:\n%s", id, seen)
		}
	}

	// The platform team tightens the connection to main: a proposal the reviewer must judge.
	tight := append(in.Conditions[:len(in.Conditions)-1:len(in.Conditions)-1],
		api.Condition{Claim: "ref", Operator: api.OpEquals, Value: ptr("refs/heads/main")})
	if _, err := s.DevOps.PatchConnection(t.Context(), conn.Name, map[string]any{"conditions": tight}, 0); err != nil {
		t.Fatal(err)
	}
	impact := section(t, sec.get("/ui/connections/deploy"), "impact")
	if !strings.Contains(impact, "1 would be newly refused") || !strings.Contains(impact, "repo:app:dev") {
		t.Errorf("the impact section does not name the workload the proposal refuses:\n%s", impact)
	}
	if strings.Contains(impact, "repo:app:main") {
		t.Errorf("the impact section names a workload that stays granted:\n%s", impact)
	}
}

// section is the text of the page's <section id=id>, tags and all.
func section(t *testing.T, p page, id string) string {
	t.Helper()
	start := strings.Index(p.Body, `id="`+id+`"`)
	if start < 0 {
		t.Fatalf("the page has no section %q:\n%s", id, testkit.Truncate(p.Body, 3000))
	}
	end := strings.Index(p.Body[start:], "</section>")
	if end < 0 {
		end = len(p.Body) - start
	}
	return p.Body[start : start+end]
}
