package e2e_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
)

// TestTestEndpointReportsEveryCheckAndIssuesNothing exercises POST /v1/workload-connections/{ref}/test
// on a draft: the full per-check report, would_issue, no token and no exchange event.
func TestTestEndpointReportsEveryCheckAndIssuesNothing(t *testing.T) {
	e := newEnv(t)
	in := testkit.GitHubInput("gh-draft", e.iss.JWKSURL)
	in.Conditions = []api.Condition{
		{Claim: "run_attempt", Operator: api.OpOneOf, Values: []string{"1", "2"}},
		{Claim: "job_workflow_ref", Operator: api.OpStartsWith, Value: ptr("octo-org/octo-automation/")},
	}
	conn := e.CreateDraft(t, in)
	if len(conn.EffectiveConditions) != 8 {
		t.Fatalf("effective conditions = %d, want 6 preset + 2 user: %+v", len(conn.EffectiveConditions), conn.EffectiveConditions)
	}
	claims := func(extra map[string]any) map[string]any { return withAudience(e.URL, extra) }
	fixed := []string{"size", "format", "algorithm", "key", "signature", "exp", "nbf", "iat", "lifetime"}

	// wantReport checks names and order, and that every condition reports expected and actual.
	wantReport := func(t *testing.T, res *api.TestResult, actual map[string]any, failing string) {
		t.Helper()
		want := append([]string{}, fixed...)
		for _, c := range conn.EffectiveConditions {
			want = append(want, "condition: "+c.Claim+" "+c.Operator)
		}
		want = append(want, "identity")
		if len(res.Checks) != len(want) {
			t.Fatalf("%d checks, want %d: %+v", len(res.Checks), len(want), res.Checks)
		}
		for i, c := range res.Checks {
			if c.Name != want[i] {
				t.Errorf("check %d is %q, want %q", i, c.Name, want[i])
			}
			if c.Passed == (c.Name == failing) {
				t.Errorf("check %q passed = %v", c.Name, c.Passed)
			}
		}
		for i, cond := range conn.EffectiveConditions {
			c := res.Checks[len(fixed)+i]
			var exp any
			if cond.Value != nil {
				exp = *cond.Value
			} else {
				exp = toAny(cond.Values)
			}
			if fmt.Sprint(c.Expected) != fmt.Sprint(exp) {
				t.Errorf("%s: expected = %v, want %v", c.Name, c.Expected, exp)
			}
			if fmt.Sprint(c.Actual) != fmt.Sprint(actual[cond.Claim]) {
				t.Errorf("%s: actual = %v, want %v", c.Name, c.Actual, actual[cond.Claim])
			}
		}
		for _, c := range res.Checks[:len(fixed)] {
			if c.Expected == nil && c.Name != "format" {
				t.Errorf("%s: no expected value in the report", c.Name)
			}
		}
	}

	t.Run("a token that would be accepted", func(t *testing.T) {
		tok := e.iss.MustMint(t, "github", claims(nil))
		full, err := e.iss.Claims("github", claims(nil), 0)
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.DevOps.TestToken(t.Context(), conn.Name, tok)
		if err != nil {
			t.Fatal(err)
		}
		if !res.WouldIssue {
			t.Errorf("would_issue false: %+v", res.Checks)
		}
		if res.Claims["repository"] != "octo-org/octo-repo" {
			t.Errorf("claims not reported: %v", res.Claims)
		}
		wantReport(t, res, full, "")
	})

	t.Run("a token that differs in one scope claim", func(t *testing.T) {
		extra := map[string]any{"ref": "refs/heads/feature"}
		tok := e.iss.MustMint(t, "github", claims(extra))
		full, _ := e.iss.Claims("github", claims(extra), 0)
		res, err := e.Security.TestToken(t.Context(), conn.ID, tok)
		if err != nil {
			t.Fatal(err)
		}
		if res.WouldIssue {
			t.Errorf("would_issue true for a token of another ref")
		}
		wantReport(t, res, full, "condition: ref equals")
	})

	t.Run("a token signed by another key stops at the signature", func(t *testing.T) {
		other := ciissuer.Start(t, devissuer.Options{KID: e.iss.KID()}) // a fresh key under the kid of e's issuer
		res, err := e.DevOps.TestToken(t.Context(), conn.Name, other.MustMint(t, "github", claims(nil)))
		if err != nil {
			t.Fatal(err)
		}
		last := res.Checks[len(res.Checks)-1]
		if res.WouldIssue || last.Name != "signature" || last.Passed {
			t.Errorf("would_issue %v, last check %+v; want false and a failed signature check", res.WouldIssue, last)
		}
	})

	t.Run("auditors may not test", func(t *testing.T) {
		_, err := e.Auditor.TestToken(t.Context(), conn.Name, e.iss.MustMint(t, "github", claims(nil)))
		if apiclient.StatusCode(err) != http.StatusForbidden {
			t.Errorf("auditor test: %v, want 403", err)
		}
	})

	t.Run("nothing was issued", func(t *testing.T) {
		if n := len(e.ExchangeEvents(t, conn.ID)); n != 0 {
			t.Errorf("%d token.exchange events after tests only, want 0", n)
		}
		page, err := e.Security.ListAuditEvents(t.Context(), apiclient.AuditOptions{Connection: conn.ID, Action: api.ActionConnectionTest})
		if err != nil {
			t.Fatal(err)
		}
		outcomes := map[string]int{}
		for _, ev := range page.Items {
			outcomes[ev.Outcome]++
		}
		if outcomes[api.OutcomeSuccess] != 3 || outcomes[api.OutcomeDenied] != 1 || len(page.Items) != 4 {
			t.Errorf("connection.test events by outcome %v, want 3 success and 1 denied (the auditor's refused test)", outcomes)
		}
		got, err := e.DevOps.GetConnection(t.Context(), conn.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != api.StatusDraft || got.Revision != conn.Revision {
			t.Errorf("testing changed the connection: status %q revision %d", got.Status, got.Revision)
		}
		testkit.MustRefuse(t, e.Exchange(conn.Name, e.iss.MustMint(t, "github", claims(nil))), api.ErrInvalidTarget, "")
	})
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
