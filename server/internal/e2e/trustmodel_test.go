package e2e_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
	"github.com/trustgate/terraform-provider-trustgate/server/app"
)

// The tests in this file reproduce, over HTTP against the real router and store, the findings of
// the trust-model review (issue 12), each an attack that must now fail.

// Finding 1: a security admin loosens a draft, a colleague edits only its description, and she
// activates her own rules.
func TestAttackActivatingOnesOwnRulesAfterADescriptionEdit(t *testing.T) {
	e := newEnv(t)
	in := e.generic("loosened")
	base := in.Conditions
	in.Conditions = append(in.Conditions, api.Condition{Claim: "ref", Operator: api.OpEquals, Value: ptr("refs/heads/main")})
	c := e.CreateDraft(t, in)
	loose, err := e.Security.PatchConnection(t.Context(), c.Name, map[string]any{"conditions": base}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.DevOps.PatchConnection(t.Context(), c.Name, map[string]any{"description": "looks fine"}, 0); err != nil {
		t.Fatal(err)
	}
	after, _ := e.Auditor.GetConnection(t.Context(), c.Name)
	if after.ConfigChangedBy != "security" || after.Fingerprint != loose.Fingerprint {
		t.Fatalf("config_changed_by %q after a description edit, want security (the rules' author)", after.ConfigChangedBy)
	}
	_, err = e.Security.SetStatus(t.Context(), c.Name, api.StatusChange{Status: api.StatusActive, ApprovedFingerprint: after.Fingerprint}, 0)
	if apiclient.StatusCode(err) != http.StatusForbidden || apiclient.ProblemType(err) != api.ProblemFourEyes {
		t.Fatalf("activating her own rules: %v, want 403 four-eyes", err)
	}
}

// Finding 2: one security admin alone rewrites an active connection and the new rules apply at
// once. Now the change waits as a proposal, exchanges follow the live rules until another
// security admin approves it, and then they follow the new rules.
func TestAttackOneSecurityAdminRewritesAnActiveConnectionAlone(t *testing.T) {
	e := newEnv(t)
	in := e.generic("rewritten")
	in.Conditions = append(in.Conditions, api.Condition{Claim: "ref", Operator: api.OpEquals, Value: ptr("refs/heads/main")})
	c := e.CreateActive(t, in)
	feature := e.token(t, map[string]any{"ref": "refs/heads/feature"})
	testkit.MustRefuse(t, e.Exchange(c.Name, feature), api.ErrInvalidGrant, "condition")

	loosened := []api.Condition{in.Conditions[0], in.Conditions[1], {Claim: "ref", Operator: api.OpStartsWith, Value: ptr("refs/heads/")}}
	p, err := e.Security.PatchConnection(t.Context(), c.Name, map[string]any{"conditions": loosened}, 0)
	if err != nil || p.Proposal == nil || p.Fingerprint != c.Fingerprint {
		t.Fatalf("security admin's change: %+v, %v; want a proposal, live fingerprint unchanged", p, err)
	}
	testkit.MustRefuse(t, e.Exchange(c.Name, e.token(t, map[string]any{"ref": "refs/heads/feature"})), api.ErrInvalidGrant, "condition")

	// The proposal can be tested before anyone approves it.
	if res, err := e.DevOps.TestProposal(t.Context(), c.Name, feature); err != nil || !res.WouldIssue {
		t.Fatalf("testing the proposal: %+v, %v; want would_issue", res, err)
	}
	// Its author cannot approve it.
	if _, err := e.Security.ApproveProposal(t.Context(), c.Name, p.Proposal.Fingerprint, 0); apiclient.ProblemType(err) != api.ProblemFourEyes {
		t.Fatalf("self-approval: %v, want four-eyes", err)
	}
	second := e.Client(t, e.NewKey(t, "security-2", api.RoleSecurityAdmin))
	approved, err := second.ApproveProposal(t.Context(), c.Name, p.Proposal.Fingerprint, p.Revision)
	if err != nil || approved.Fingerprint != p.Proposal.Fingerprint || approved.Proposal != nil || approved.Status != api.StatusActive {
		t.Fatalf("approval: %+v, %v", approved, err)
	}
	testkit.MustGrant(t, e.Exchange(c.Name, e.token(t, map[string]any{"ref": "refs/heads/feature"})), time.Hour)
}

// Finding 3: a token issued before a deactivation is valid again after the reactivation, on this
// server and on a replica.
func TestAttackTokensComeBackToLifeAfterReactivation(t *testing.T) {
	clock := ciissuer.NewClock(time.Now().Truncate(time.Second))
	noPolling := func(c *app.Config) { c.CatalogPoll = time.Hour }
	a := &env{Server: testkit.Start(t, testkit.WithClock(clock.Now), testkit.WithConfig(noPolling)),
		iss: ciissuer.Start(t, devissuer.Options{Now: clock.Now})}
	b := &env{iss: a.iss, Server: testkit.StartOn(t, a.DSN, testkit.WithClock(clock.Now), testkit.WithConfig(func(c *app.Config) {
		noPolling(c)
		c.KEK, c.PublicURL = a.App.Config.KEK, a.URL
	}))}
	c := a.CreateActive(t, a.generic("retired"))
	old := testkit.MustGrant(t, a.Exchange(c.Name, a.token(t, nil)), time.Hour)

	clock.Advance(2 * time.Second)
	a.SetStatus(t, c, api.StatusInactive)
	clock.Advance(2 * time.Second)
	a.SetStatus(t, c, api.StatusActive)
	clock.Advance(2 * time.Second)
	if err := b.App.Catalog.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	fresh := testkit.MustGrant(t, a.Exchange(c.Name, a.token(t, nil)), time.Hour)

	for name, s := range map[string]*env{"issuing server": a, "replica": b} {
		if in, err := s.Auditor.Introspect(t.Context(), old); err != nil || in.Active {
			t.Errorf("%s introspects a token issued before the deactivation as %+v, %v; want active false", name, in, err)
		}
		if _, err := s.Client(t, old).Whoami(t.Context()); apiclient.StatusCode(err) != http.StatusUnauthorized {
			t.Errorf("%s whoami with a retired token: %v, want 401", name, err)
		}
		if in, err := s.Auditor.Introspect(t.Context(), fresh); err != nil || !in.Active {
			t.Errorf("%s introspects a token issued after the reactivation as %+v, %v; want active", name, in, err)
		}
	}
}

// Finding 4: a generic connection on GitHub's keys with only iss and aud pinned would accept a
// token from any repository on GitHub (the job picks its own aud).
func TestAttackGenericConnectionOnASharedIssuer(t *testing.T) {
	e := newEnv(t)
	in := api.ConnectionInput{Name: "any-repo", JWKSURL: "https://token.actions.githubusercontent.com/.well-known/jwks",
		Conditions: []api.Condition{
			{Claim: "iss", Operator: api.OpEquals, Value: ptr("https://token.actions.githubusercontent.com")},
			{Claim: "aud", Operator: api.OpEquals, Value: ptr("https://trustgate.example")},
		}}
	_, err := e.DevOps.CreateConnection(t.Context(), in)
	if apiclient.StatusCode(err) != http.StatusUnprocessableEntity {
		t.Fatalf("generic connection on GitHub's issuer without an owner id: %v, want 422", err)
	}
	in.Conditions = append(in.Conditions, api.Condition{Claim: "repository_owner_id", Operator: api.OpEquals, Value: ptr("65")})
	if _, err := e.DevOps.CreateConnection(t.Context(), in); err != nil {
		t.Fatalf("with repository_owner_id pinned: %v", err)
	}
}

// Finding 5: the GitHub preset pinned the owner by name; a deleted organisation's name can be
// registered again by someone else, whose tokens carry the same name but another id.
func TestAttackReRegisteredGitHubOwnerName(t *testing.T) {
	e := newEnv(t)
	in := testkit.GitHubInput("gh-ids", e.iss.JWKSURL)
	in.GitHub.Ref = ""
	in.GitHub.Audience = e.URL
	c := e.CreateActive(t, in)
	mint := func(overrides map[string]any) string {
		return e.iss.MustMint(t, "github", withAudience(e.URL, overrides))
	}
	testkit.MustGrant(t, e.Exchange(c.Name, mint(nil)), time.Hour)
	testkit.MustRefuse(t, e.Exchange(c.Name, mint(map[string]any{"repository_owner_id": "9999"})), api.ErrInvalidGrant, "condition")

	if _, err := e.DevOps.CreateConnection(t.Context(), api.ConnectionInput{Name: "by-name",
		GitHub: &api.GitHubSettings{Owner: "octo-org"}}); apiclient.StatusCode(err) != http.StatusUnprocessableEntity {
		t.Fatalf("github preset without owner_id: %v, want 422", err)
	}
}
