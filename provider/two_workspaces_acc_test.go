package provider

import (
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
)

// turns lets two Terraform workspaces take turns against one server. Each workspace is a
// resource.Test of its own, with its own working directory, state and API key, as the platform and
// the security team have; the two run at the same time, and a step that belongs to turn n starts
// only once every earlier turn has finished. A workspace's turn finishes when its next turn starts,
// or when its test case ends. If one workspace fails, the other stops at its next turn rather than
// waiting for ever.
type turns struct {
	done     []chan struct{} // done[n] is closed when turn n has finished; turn 0 has
	failed   chan struct{}
	failOnce sync.Once
}

func newTurns(n int) *turns {
	tt := &turns{done: make([]chan struct{}, n+1), failed: make(chan struct{})}
	for i := range tt.done {
		tt.done[i] = make(chan struct{})
	}
	close(tt.done[0])
	return tt
}

// workspace is one side of the story: the turn it is in.
type workspace struct {
	turns   *turns
	current int
}

// at is a PreConfig that waits for turn n (when the step starts a new turn) and then runs then.
func (w *workspace) at(t *testing.T, n int, then ...func()) func() {
	return func() {
		if n != w.current {
			w.finish()
			select {
			case <-w.turns.done[n-1]:
			case <-w.turns.failed:
				t.Fatalf("turn %d: the other workspace failed, see its errors", n)
			}
			w.current = n
		}
		for _, f := range then {
			f()
		}
	}
}

func (w *workspace) finish() {
	if w.current > 0 {
		close(w.turns.done[w.current])
		w.current = 0
	}
}

// run runs one workspace's test case, built with the subtest's t (its checks run on the
// subtest's goroutine), as a parallel subtest.
func (w *workspace) run(t *testing.T, name string, testCase func(t *testing.T) resource.TestCase) {
	t.Run(name, func(t *testing.T) {
		t.Parallel()
		t.Cleanup(func() {
			if t.Failed() {
				w.turns.failOnce.Do(func() { close(w.turns.failed) })
				return
			}
			w.finish()
		})
		resource.Test(t, testCase(t))
	})
}

// sameAs is a value check against a value the story learns while it runs.
func sameAs(what string, p *string) knownvalue.Check {
	return knownvalue.StringFunc(func(v string) error {
		if v != *p {
			return fmt.Errorf("%s: got %q, want %q", what, v, *p)
		}
		return nil
	})
}

func differentFrom(what string, p *string) knownvalue.Check {
	return knownvalue.StringFunc(func(v string) error {
		if !fingerprintShape.MatchString(v) || v == *p {
			return fmt.Errorf("%s: got %q, want a fingerprint other than %q", what, v, *p)
		}
		return nil
	})
}

// TestAccTwoWorkspaces is the story of CONTRACT.md §6 with change control, told by two workspaces
// with separate states and keys: the platform team (devops key) creates a GitHub connection, the
// security team (security key) activates it by fingerprint, the platform team changes it (a
// proposal: the plan after apply is empty and what is live stays), the security team tries a stale
// fingerprint (refused), a second security admin proposes a change and tries to approve it herself
// (refused: four eyes), the platform team's next plan puts its own proposal back, and the first
// security admin approves it by fingerprint. Both plans are then empty, and CI exchanges follow
// the new rule.
func TestAccTwoWorkspaces_platformProposesSecurityApprovesByFingerprint(t *testing.T) {
	s := accServer(t)
	iss := ciissuer.Start(t, devissuer.Options{})
	security2 := s.NewKey(t, "security-2", api.RoleSecurityAdmin)
	const name = "acc-story"

	platformConfig := func(ref string, ttlMinutes int) string {
		return providerConfig(s, "", s.DevOpsKey) + fmt.Sprintf(`
resource "trustgate_workload_connection" "test" {
  name        = %q
  description = "deploys octo-org/octo-repo"
  token_ttl   = { amount = %d, unit = "minutes" }
  jwks_url    = %q

  github {
    owner_id      = "65"
    owner         = "octo-org"
    repository_id = "74"
    repository    = "octo-org/octo-repo"
    ref           = %q
  }
}
`, name, ttlMinutes, iss.JWKSURL, ref)
	}
	main, release := "refs/heads/main", "refs/heads/release"
	v0, v1, v2 := platformConfig(main, 30), platformConfig(release, 30), platformConfig(release, 20)

	securityConfig := func(key string) string {
		return "variable \"approved\" {\n  type = string\n}\n" + activationConfig(s, key, name, "  approved_fingerprint = var.approved")
	}
	// What the story learns as it goes: the fingerprints of the first configuration (f0), of the
	// platform's first and second proposals (f1, f2), of the second security admin's (f3), and the
	// fingerprint the security workspace approves.
	var f0, f1, f2, f3, approved string
	securityVars := config.Variables{"approved": lazyString{&approved}}

	// exchange asks for an access token with a GitHub token of the given ref: a CI job of the
	// repository on that branch.
	exchange := func(t *testing.T, ref string) testkit.TokenResult {
		return s.Exchange(name, iss.MustMint(t, "github", map[string]any{"aud": s.URL, "ref": ref})).Answered(t)
	}
	expectExchanges := func(t *testing.T, granted, refused string, ttlSeconds int64) resource.TestCheckFunc {
		return func(*terraform.State) error {
			if r := exchange(t, granted); r.Status != http.StatusOK || r.OK.ExpiresIn != ttlSeconds {
				return fmt.Errorf("a CI job on %s: %s, want a token for %d s", granted, r, ttlSeconds)
			}
			if r := exchange(t, refused); r.Status != http.StatusBadRequest || r.Refusal.Error != "invalid_grant" {
				return fmt.Errorf("a CI job on %s: %s, want invalid_grant", refused, r)
			}
			return nil
		}
	}
	// unchanged checks that the server still enforces f0 with the given proposal pending.
	unchanged := func(t *testing.T, proposal *string, proposedBy string, revision *int64) func() {
		return func() {
			c := mustGet(t, s, name)
			if c.Fingerprint != f0 || c.Status != api.StatusActive || c.Proposal == nil ||
				c.Proposal.Fingerprint != *proposal || c.Proposal.ProposedBy != proposedBy || c.Revision != *revision {
				t.Fatalf("a refused approval changed the connection: live %s (want %s), status %s, revision %d (want %d), proposal %+v (want %s by %s)",
					c.Fingerprint, f0, c.Status, c.Revision, *revision, c.Proposal, *proposal, proposedBy)
			}
		}
	}
	var revision int64
	remember := func(t *testing.T, p *string) func() {
		return func() {
			c := mustGet(t, s, name)
			*p, revision = c.Fingerprint, c.Revision
			if c.Proposal != nil {
				*p = c.Proposal.Fingerprint
			}
		}
	}

	story := newTurns(11)
	platform, security := &workspace{turns: story}, &workspace{turns: story}
	conn, act := connAddr, actAddr
	at := statecheck.ExpectKnownValue

	t.Run("workspaces", func(t *testing.T) {
		platform.run(t, "platform", func(t *testing.T) resource.TestCase {
			return resource.TestCase{
				ProtoV6ProviderFactories: providerFactories,
				// `removed` blocks need Terraform 1.7.
				TerraformVersionChecks: []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_7_0)},
				Steps: []resource.TestStep{
					{
						// Turn 1: the platform team creates the connection, a draft.
						PreConfig: platform.at(t, 1),
						Config:    v0,
						ConfigStateChecks: []statecheck.StateCheck{
							at(conn, tfjsonpath.New("status"), knownvalue.StringExact("draft")),
							at(conn, tfjsonpath.New("proposal_pending"), knownvalue.Bool(false)),
							at(conn, tfjsonpath.New("config_changed_by"), knownvalue.StringExact("devops")),
							statecheck.CompareValuePairs(conn, tfjsonpath.New("live_fingerprint"), conn, tfjsonpath.New("fingerprint"), compare.ValuesSame()),
							at(conn, tfjsonpath.New("effective_conditions").AtSliceIndex(2), knownvalue.ObjectPartial(map[string]knownvalue.Check{
								"claim": knownvalue.StringExact("repository_owner_id"), "value": knownvalue.StringExact("65")})),
						},
						Check: func(*terraform.State) error { remember(t, &f0)(); approved = f0; return nil },
					},
					{
						// Turn 3: after the activation the platform plan is empty; the state follows
						// the server's status.
						PreConfig: platform.at(t, 3),
						Config:    v0,
						ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
							plancheck.ExpectEmptyPlan(),
						}},
						ConfigStateChecks: []statecheck.StateCheck{
							at(conn, tfjsonpath.New("status"), knownvalue.StringExact("active")),
							at(conn, tfjsonpath.New("activated_by"), knownvalue.StringExact("security")),
							at(conn, tfjsonpath.New("live_fingerprint"), sameAs("live_fingerprint", &f0)),
						},
					},
					{
						// Still turn 3: the platform team moves deployments to the release branch. The
						// plan says a proposal will be stored and what stays live; the apply stores it;
						// the state describes it, and the next plan is empty.
						PreConfig: platform.at(t, 3),
						Config:    v1,
						ConfigPlanChecks: resource.ConfigPlanChecks{
							PreApply: []plancheck.PlanCheck{
								plancheck.ExpectResourceAction(conn, plancheck.ResourceActionUpdate),
								plancheck.ExpectKnownValue(conn, tfjsonpath.New("proposal_pending"), knownvalue.Bool(true)),
								plancheck.ExpectKnownValue(conn, tfjsonpath.New("live_fingerprint"), sameAs("planned live_fingerprint", &f0)),
								plancheck.ExpectKnownValue(conn, tfjsonpath.New("config_changed_by"), knownvalue.StringExact("devops")),
								plancheck.ExpectKnownValue(conn, tfjsonpath.New("status"), knownvalue.StringExact("active")),
								plancheck.ExpectUnknownValue(conn, tfjsonpath.New("fingerprint")),
							},
							PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
						},
						ConfigStateChecks: []statecheck.StateCheck{
							at(conn, tfjsonpath.New("proposal_pending"), knownvalue.Bool(true)),
							at(conn, tfjsonpath.New("live_fingerprint"), sameAs("live_fingerprint", &f0)),
							at(conn, tfjsonpath.New("fingerprint"), differentFrom("fingerprint of the proposal", &f0)),
							at(conn, tfjsonpath.New("github").AtMapKey("ref"), knownvalue.StringExact(release)),
							at(conn, tfjsonpath.New("effective_conditions"), knownvalue.ListPartial(map[int]knownvalue.Check{
								6: knownvalue.ObjectPartial(map[string]knownvalue.Check{"claim": knownvalue.StringExact("ref"), "value": knownvalue.StringExact(release)}),
							})),
							at(conn, tfjsonpath.New("status"), knownvalue.StringExact("active")),
						},
						Check: resource.ComposeAggregateTestCheckFunc(
							func(*terraform.State) error {
								remember(t, &f1)()
								c := mustGet(t, s, name)
								if c.Fingerprint != f0 || c.GitHub.Ref != main || c.Proposal == nil || c.Proposal.ProposedBy != "devops" {
									return fmt.Errorf("the proposal touched what is live: live %s ref %s, proposal %+v", c.Fingerprint, c.GitHub.Ref, c.Proposal)
								}
								return nil
							},
							// Nothing live changed: main still gets tokens, release does not.
							expectExchanges(t, main, release, 30*60),
						),
					},
					// Import by id and by name, with the proposal pending: the imported state describes
					// it as the applied one does.
					{PreConfig: platform.at(t, 3), ResourceName: conn, ImportState: true, ImportStateVerify: true},
					{PreConfig: platform.at(t, 3), ResourceName: conn, ImportState: true, ImportStateId: name, ImportStateVerify: true},
					{
						// Turn 5: a second change (a shorter TTL) replaces the pending proposal, so the
						// fingerprint the security team is reviewing goes stale.
						PreConfig: platform.at(t, 5),
						Config:    v2,
						ConfigStateChecks: []statecheck.StateCheck{
							at(conn, tfjsonpath.New("fingerprint"), differentFrom("fingerprint of the second proposal", &f1)),
							at(conn, tfjsonpath.New("live_fingerprint"), sameAs("live_fingerprint", &f0)),
							at(conn, tfjsonpath.New("proposal_pending"), knownvalue.Bool(true)),
						},
						Check: func(*terraform.State) error { remember(t, &f2)(); return nil },
					},
					{
						// Turn 8: the second security admin's proposal replaced the platform's; the
						// platform plan shows the difference, and the apply proposes the platform's
						// configuration again.
						PreConfig: platform.at(t, 8),
						Config:    v2,
						ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
							plancheck.ExpectResourceAction(conn, plancheck.ResourceActionUpdate),
							plancheck.ExpectKnownValue(conn, tfjsonpath.New("token_ttl").AtMapKey("amount"), knownvalue.Int64Exact(20)),
						}},
						ConfigStateChecks: []statecheck.StateCheck{
							at(conn, tfjsonpath.New("fingerprint"), sameAs("fingerprint of the platform's proposal", &f2)),
						},
						Check: func(*terraform.State) error {
							if c := mustGet(t, s, name); c.Proposal == nil || c.Proposal.ProposedBy != "devops" || c.Proposal.Fingerprint != f2 {
								return fmt.Errorf("the platform's proposal is not pending again: %+v", c.Proposal)
							}
							remember(t, &f2)()
							approved = f2
							return nil
						},
					},
					{
						// Turn 10: after the approval the state is what is live, and the plan is empty.
						PreConfig: platform.at(t, 10),
						Config:    v2,
						ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
							plancheck.ExpectEmptyPlan(),
						}},
						ConfigStateChecks: []statecheck.StateCheck{
							at(conn, tfjsonpath.New("fingerprint"), sameAs("fingerprint", &f2)),
							at(conn, tfjsonpath.New("live_fingerprint"), sameAs("live_fingerprint", &f2)),
							at(conn, tfjsonpath.New("proposal_pending"), knownvalue.Bool(false)),
							at(conn, tfjsonpath.New("config_changed_by"), knownvalue.StringExact("devops")),
							at(conn, tfjsonpath.New("status"), knownvalue.StringExact("active")),
						},
					},
					{
						// Still turn 10: the platform team cannot delete what the security team owns.
						PreConfig:   platform.at(t, 10),
						Config:      providerConfig(s, "", s.DevOpsKey),
						ExpectError: regexp.MustCompile(`(?s)A security admin owns this workload connection now.*Nothing\s+was\s+changed`),
					},
					{
						// It hands the connection over instead: its workspace forgets it.
						PreConfig: platform.at(t, 10),
						Config:    providerConfig(s, "", s.DevOpsKey) + "removed {\n  from = trustgate_workload_connection.test\n  lifecycle {\n    destroy = false\n  }\n}\n",
					},
				},
			}
		})

		security.run(t, "security", func(t *testing.T) resource.TestCase {
			return resource.TestCase{
				ProtoV6ProviderFactories: providerFactories,
				CheckDestroy:             expectStatus(t, s, name, api.StatusInactive),
				Steps: []resource.TestStep{
					{
						// Turn 2: the security team activates the draft it reviewed, by fingerprint.
						PreConfig:       security.at(t, 2),
						Config:          securityConfig(s.SecurityKey),
						ConfigVariables: securityVars,
						ConfigStateChecks: []statecheck.StateCheck{
							at(act, tfjsonpath.New("status"), knownvalue.StringExact("active")),
							at(act, tfjsonpath.New("fingerprint"), sameAs("fingerprint", &f0)),
							at(act, tfjsonpath.New("proposal_fingerprint"), knownvalue.StringExact("")),
						},
						Check: expectExchanges(t, main, release, 30*60),
					},
					{
						PreConfig: security.at(t, 2), ResourceName: act, ImportState: true, ImportStateId: name, ImportStateVerify: true,
						ImportStateVerifyIdentifierAttribute: "connection_name", ImportStateVerifyIgnore: []string{"approved_fingerprint"},
						// The prior step's configuration (an import step's own would not get the test
						// provider's source address), with its variable.
						ConfigVariables: securityVars,
					},
					{
						// Turn 4: the platform's proposal shows in proposal_fingerprint; nothing is
						// planned, since approved_fingerprint still names what is live.
						PreConfig:       security.at(t, 4),
						Config:          securityConfig(s.SecurityKey),
						ConfigVariables: securityVars,
						ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
							plancheck.ExpectEmptyPlan(),
						}},
						ConfigStateChecks: []statecheck.StateCheck{
							at(act, tfjsonpath.New("proposal_fingerprint"), sameAs("proposal_fingerprint", &f1)),
							at(act, tfjsonpath.New("fingerprint"), sameAs("fingerprint", &f0)),
						},
					},
					{
						// Turn 6: the security team approves the proposal it reviewed, but the
						// platform team has changed it since: refused, and nothing changes.
						PreConfig:       security.at(t, 6, func() { approved = f1 }),
						Config:          securityConfig(s.SecurityKey),
						ConfigVariables: securityVars,
						ExpectError:     regexp.MustCompile(`(?s)The pending proposal is not the one that was approved.*changed\s+after\s+it\s+was\s+reviewed`),
					},
					{
						PreConfig:       security.at(t, 6, unchanged(t, &f2, "devops", &revision), func() { approved = f0 }),
						Config:          securityConfig(s.SecurityKey),
						ConfigVariables: securityVars,
						ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
							plancheck.ExpectEmptyPlan(),
						}},
						ConfigStateChecks: []statecheck.StateCheck{
							at(act, tfjsonpath.New("proposal_fingerprint"), sameAs("proposal_fingerprint", &f2)),
						},
					},
					{
						// Turn 7: a second security admin proposes a change of her own (through the
						// API) and tries to approve it with her key: four eyes refuses.
						PreConfig: security.at(t, 7, func() {
							c, err := s.Client(t, security2).PatchConnection(t.Context(), name,
								map[string]any{"token_ttl": map[string]any{"amount": 10, "unit": "minutes"}}, 0)
							if err != nil || c.Proposal == nil {
								t.Fatalf("the second security admin's proposal: %v %+v", err, c)
							}
							remember(t, &f3)()
							approved = f3
						}),
						Config:          securityConfig(security2),
						ConfigVariables: securityVars,
						ExpectError:     regexp.MustCompile(`(?s)Trustgate refused to approve the proposal: four eyes.*security-2 wrote the\s+change`),
					},
					{
						PreConfig:       security.at(t, 7, unchanged(t, &f3, "security-2", &revision), func() { approved = f0 }),
						Config:          securityConfig(s.SecurityKey),
						ConfigVariables: securityVars,
						ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
							plancheck.ExpectEmptyPlan(),
						}},
					},
					{
						// Turn 9: the first security admin approves the platform's proposal by its
						// fingerprint. The plan shows it becoming the connection's fingerprint; CI
						// jobs on the release branch get 20-minute tokens, main is refused.
						PreConfig:       security.at(t, 9),
						Config:          securityConfig(s.SecurityKey),
						ConfigVariables: securityVars,
						ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
							plancheck.ExpectResourceAction(act, plancheck.ResourceActionUpdate),
							plancheck.ExpectKnownValue(act, tfjsonpath.New("fingerprint"), sameAs("planned fingerprint", &f2)),
							plancheck.ExpectKnownValue(act, tfjsonpath.New("proposal_fingerprint"), knownvalue.StringExact("")),
						}},
						ConfigStateChecks: []statecheck.StateCheck{
							at(act, tfjsonpath.New("fingerprint"), sameAs("fingerprint", &f2)),
							at(act, tfjsonpath.New("proposal_fingerprint"), knownvalue.StringExact("")),
							at(act, tfjsonpath.New("status"), knownvalue.StringExact("active")),
						},
						Check: resource.ComposeAggregateTestCheckFunc(
							func(*terraform.State) error {
								c := mustGet(t, s, name)
								if c.Fingerprint != f2 || c.Proposal != nil || c.ConfigChangedBy != "devops" || c.GitHub.Ref != release || c.Status != api.StatusActive {
									return fmt.Errorf("after the approval: live %s (want %s), proposal %+v, config_changed_by %s, ref %s, status %s",
										c.Fingerprint, f2, c.Proposal, c.ConfigChangedBy, c.GitHub.Ref, c.Status)
								}
								return nil
							},
							expectExchanges(t, release, main, 20*60),
						),
					},
					{
						// Turn 11: after the platform's last plan, the security plan is empty too.
						PreConfig:       security.at(t, 11),
						Config:          securityConfig(s.SecurityKey),
						ConfigVariables: securityVars,
						ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
							plancheck.ExpectEmptyPlan(),
						}},
					},
				},
			}
		})
	})
}
