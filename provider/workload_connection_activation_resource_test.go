package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
)

const actAddr = "trustgate_workload_connection_activation.test"

// lazyString is a test variable whose value is read when Terraform runs, after PreConfig.
type lazyString struct{ p *string }

func (l lazyString) MarshalJSON() ([]byte, error) { return json.Marshal(*l.p) }

func activationConfig(s *testkit.Server, key, name, extra string) string {
	return providerConfig(s, "", key) + fmt.Sprintf(`
resource "trustgate_workload_connection_activation" "test" {
  connection_name = %q
%s
}
`, name, extra)
}

// expectStatus is a check that asks the server for the connection's status.
func expectStatus(t *testing.T, s *testkit.Server, name, want string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		if got := mustGet(t, s, name).Status; got != want {
			return fmt.Errorf("server says %s is %s, want %s", name, got, want)
		}
		return nil
	}
}

func TestAccActivation_activatesImportsFollowsDriftAndDeactivatesOnDestroy(t *testing.T) {
	s := accServer(t)
	conn := s.CreateDraft(t, genericInput("acc-act"))
	approved := fmt.Sprintf("approved_fingerprint = %q", conn.Fingerprint)
	cfg := activationConfig(s, s.SecurityKey, "acc-act", approved)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		CheckDestroy:             expectStatus(t, s, "acc-act", api.StatusInactive),
		Steps: []resource.TestStep{
			{
				Config: cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(actAddr, tfjsonpath.New("active"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(actAddr, tfjsonpath.New("status"), knownvalue.StringExact("active")),
					statecheck.ExpectKnownValue(actAddr, tfjsonpath.New("connection_id"), knownvalue.StringExact(conn.ID)),
					statecheck.ExpectKnownValue(actAddr, tfjsonpath.New("fingerprint"), knownvalue.StringExact(conn.Fingerprint)),
					statecheck.ExpectKnownValue(actAddr, tfjsonpath.New("activated_by"), knownvalue.StringExact("security")),
					statecheck.ExpectKnownValue(actAddr, tfjsonpath.New("activated_at"), knownvalue.NotNull()),
					statecheck.ExpectKnownValue(actAddr, tfjsonpath.New("on_destroy"), knownvalue.StringExact("deactivate")),
				},
				Check: expectStatus(t, s, "acc-act", api.StatusActive),
			},
			{
				ResourceName:                         actAddr,
				ImportState:                          true,
				ImportStateId:                        "acc-act",
				ImportStateVerify:                    true,
				ImportStateVerifyIdentifierAttribute: "connection_name",
				ImportStateVerifyIgnore:              []string{"approved_fingerprint"},
			},
			{
				// Drift: someone deactivates the connection through the API. The plan shows it and
				// the apply activates it again.
				PreConfig: func() {
					if _, err := s.Client(t, s.SecurityKey).SetStatus(context.Background(), "acc-act",
						api.StatusChange{Status: api.StatusInactive}, 0); err != nil {
						t.Fatalf("deactivating through the API: %v", err)
					}
				},
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(actAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(actAddr, tfjsonpath.New("active"), knownvalue.Bool(true)),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(actAddr, tfjsonpath.New("status"), knownvalue.StringExact("active")),
				},
				Check: expectStatus(t, s, "acc-act", api.StatusActive),
			},
			{
				Config: activationConfig(s, s.SecurityKey, "acc-act", approved+"\n  active = false"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(actAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue(actAddr, tfjsonpath.New("status")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(actAddr, tfjsonpath.New("status"), knownvalue.StringExact("inactive")),
				},
				Check: expectStatus(t, s, "acc-act", api.StatusInactive),
			},
			{
				Config: cfg,
				Check:  expectStatus(t, s, "acc-act", api.StatusActive),
			},
		},
	})
}

func TestAccActivation_onDestroyDeleteDeletesTheConnection(t *testing.T) {
	s := accServer(t)
	s.CreateDraft(t, genericInput("acc-act-delete"))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		CheckDestroy:             checkGone(s, "acc-act-delete"),
		Steps: []resource.TestStep{
			{
				Config: activationConfig(s, s.SecurityKey, "acc-act-delete", `  on_destroy = "delete"`),
				Check:  expectStatus(t, s, "acc-act-delete", api.StatusActive),
			},
		},
	})
}

// Four eyes: the security admin who last changed the configuration may not activate it; another may.
func TestAccActivation_fourEyesRefusesTheLastConfigChanger(t *testing.T) {
	s := accServer(t)
	s.CreateDraft(t, genericInput("acc-four-eyes"))
	if _, err := s.Client(t, s.SecurityKey).PatchConnection(context.Background(), "acc-four-eyes",
		map[string]any{"description": "tightened by security"}, 0); err != nil {
		t.Fatalf("security admin's change through the API: %v", err)
	}
	before := mustGet(t, s, "acc-four-eyes")
	otherKey := s.NewKey(t, "security-2", api.RoleSecurityAdmin)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		CheckDestroy:             expectStatus(t, s, "acc-four-eyes", api.StatusInactive),
		Steps: []resource.TestStep{
			{
				Config:      activationConfig(s, s.SecurityKey, "acc-four-eyes", ""),
				ExpectError: regexp.MustCompile(`(?s)Trustgate refused to activate.*four eyes.*another security admin`),
			},
			{
				PreConfig: func() {
					after := mustGet(t, s, "acc-four-eyes")
					if after.Status != api.StatusDraft || after.Revision != before.Revision {
						t.Fatalf("the refused activation changed the connection: status %s revision %d→%d", after.Status, before.Revision, after.Revision)
					}
				},
				Config: activationConfig(s, otherKey, "acc-four-eyes", ""),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(actAddr, tfjsonpath.New("activated_by"), knownvalue.StringExact("security-2")),
				},
			},
		},
	})
}

func TestAccActivation_mismatchedFingerprintIsRefusedAndChangesNothing(t *testing.T) {
	s := accServer(t)
	conn := s.CreateDraft(t, genericInput("acc-fp"))
	wrong := "sha256:" + strings.Repeat("0", 64)
	var newFingerprint string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		CheckDestroy:             expectStatus(t, s, "acc-fp", api.StatusInactive),
		Steps: []resource.TestStep{
			{
				Config:      activationConfig(s, s.SecurityKey, "acc-fp", fmt.Sprintf("approved_fingerprint = %q", wrong)),
				ExpectError: regexp.MustCompile(`(?s)The connection is not the one that was approved.*` + regexp.QuoteMeta(conn.Fingerprint)),
			},
			{
				PreConfig: func() {
					after := mustGet(t, s, "acc-fp")
					if after.Status != api.StatusDraft || after.Revision != conn.Revision || after.ActivatedBy != "" {
						t.Fatalf("the refused activation changed the connection: %+v", after)
					}
				},
				Config: activationConfig(s, s.SecurityKey, "acc-fp", fmt.Sprintf("approved_fingerprint = %q", conn.Fingerprint)),
				Check:  expectStatus(t, s, "acc-fp", api.StatusActive),
			},
			{
				// A security admin changes the active connection; re-approving its new fingerprint
				// is an in-place update that leaves it active.
				PreConfig: func() {
					changed, err := s.Client(t, s.SecurityKey).PatchConnection(context.Background(), "acc-fp",
						map[string]any{"token_ttl": map[string]any{"amount": 5, "unit": "minutes"}}, 0)
					if err != nil {
						t.Fatal(err)
					}
					if changed.Fingerprint == conn.Fingerprint {
						t.Fatal("a TTL change did not change the fingerprint")
					}
					newFingerprint = changed.Fingerprint
				},
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(actAddr, plancheck.ResourceActionUpdate),
				}},
				Config:          "variable \"approved\" {\n  type = string\n}\n" + activationConfig(s, s.SecurityKey, "acc-fp", `approved_fingerprint = var.approved`),
				ConfigVariables: config.Variables{"approved": lazyString{&newFingerprint}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(actAddr, tfjsonpath.New("status"), knownvalue.StringExact("active")),
					statecheck.ExpectKnownValue(actAddr, tfjsonpath.New("fingerprint"), knownvalue.StringFunc(func(v string) error {
						if v != newFingerprint {
							return fmt.Errorf("fingerprint %s, want the re-approved %s", v, newFingerprint)
						}
						return nil
					})),
				},
			},
		},
	})
}

func TestAccActivation_missingConnectionSaysToApplyThePlatformWorkspaceFirst(t *testing.T) {
	s := accServer(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		Steps: []resource.TestStep{{
			Config:      activationConfig(s, s.SecurityKey, "acc-nowhere", ""),
			ExpectError: regexp.MustCompile(`(?s)Workload connection not found.*apply the\s+platform workspace first`),
		}},
	})
}

// TestAccTwoWorkspaces is the split-duty flow of CONTRACT.md §6 with two separate Terraform
// configurations and states: the platform team's (devops key) creates the connection, the security
// team's (security key) activates it. Afterwards the platform plan is empty, and a change to it is
// refused with the ownership error while the server keeps its state.
func TestAccTwoWorkspaces_platformDraftsSecurityActivatesPlatformPlanStaysEmpty(t *testing.T) {
	s := accServer(t)
	platform := providerConfig(s, "", s.DevOpsKey) + `
resource "trustgate_workload_connection" "test" {
  name        = "acc-split"
  description = "deploys from acme/app main"
  token_ttl   = { amount = 30, unit = "minutes" }
  github {
    owner      = "acme"
    repository = "acme/app"
  }
  condition {
    claim    = "ref"
    operator = "equals"
    value    = "refs/heads/main"
  }
}
`
	changed := strings.Replace(platform, `amount = 30`, `amount = 45`, 1)
	var activated *api.Connection

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		// `removed` blocks (below) need Terraform 1.7.
		TerraformVersionChecks: []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_7_0)},
		Steps: []resource.TestStep{
			{
				Config: platform,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("status"), knownvalue.StringExact("draft")),
				},
			},
			{
				// The security workspace, a separate configuration and state with its own key. It
				// reviews the connection through the data source and approves its fingerprint. Its
				// last step forgets the activation without destroying it (a `removed` block), so the
				// connection stays active for the rest of this test.
				PreConfig: func() {
					draft := mustGet(t, s, "acc-split")
					security := providerConfig(s, "", s.SecurityKey) + fmt.Sprintf(`
data "trustgate_workload_connection" "review" {
  name = "acc-split"
}

resource "trustgate_workload_connection_activation" "test" {
  connection_name      = data.trustgate_workload_connection.review.name
  approved_fingerprint = %q
}
`, draft.Fingerprint)
					t.Run("security workspace", func(t *testing.T) {
						resource.Test(t, resource.TestCase{
							ProtoV6ProviderFactories: providerFactories,
							Steps: []resource.TestStep{
								{
									Config: security,
									ConfigStateChecks: []statecheck.StateCheck{
										statecheck.ExpectKnownValue(actAddr, tfjsonpath.New("status"), knownvalue.StringExact("active")),
										statecheck.ExpectKnownValue("data.trustgate_workload_connection.review",
											tfjsonpath.New("created_by"), knownvalue.StringExact("devops")),
									},
								},
								{
									Config: providerConfig(s, "", s.SecurityKey) + `
removed {
  from = trustgate_workload_connection_activation.test
  lifecycle {
    destroy = false
  }
}
`,
								},
							},
						})
					})
					if t.Failed() {
						t.FailNow()
					}
					activated = mustGet(t, s, "acc-split")
					if activated.Status != api.StatusActive || activated.Revision == draft.Revision {
						t.Fatalf("after the security workspace: status %s, revision %d (draft had %d)", activated.Status, activated.Revision, draft.Revision)
					}
				},
				// The platform team's unchanged configuration: refreshed, nothing to do.
				Config: platform,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("status"), knownvalue.StringExact("active")),
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("activated_by"), knownvalue.StringExact("security")),
				},
			},
			{
				Config:      changed,
				ExpectError: regexp.MustCompile(`(?s)A security admin owns this workload connection now.*Nothing was changed`),
			},
			{
				PreConfig: func() {
					after := mustGet(t, s, "acc-split")
					if after.Revision != activated.Revision || after.TokenTTL.Amount != 30 || after.Status != api.StatusActive {
						t.Fatalf("the refused change reached the server: revision %d→%d, ttl %d, status %s",
							activated.Revision, after.Revision, after.TokenTTL.Amount, after.Status)
					}
				},
				Config:   platform,
				PlanOnly: true, // still empty
			},
			{
				// Hand the connection over: the platform workspace forgets it, the security team
				// retires it.
				Config: providerConfig(s, "", s.DevOpsKey) + `
removed {
  from = trustgate_workload_connection.test
  lifecycle {
    destroy = false
  }
}
`,
				Check: func(*terraform.State) error {
					sec := s.Client(t, s.SecurityKey)
					ctx := context.Background()
					if _, err := sec.SetStatus(ctx, "acc-split", api.StatusChange{Status: api.StatusInactive}, 0); err != nil {
						return err
					}
					if err := sec.DeleteConnection(ctx, "acc-split", 0); err != nil {
						return err
					}
					if _, err := sec.GetConnection(ctx, "acc-split"); !apiclient.IsNotFound(err) {
						return fmt.Errorf("connection still there: %v", err)
					}
					return nil
				},
			},
		},
	})
}
