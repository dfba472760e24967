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

	"github.com/trustgate/terraform-provider-trustgate/api"
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
					statecheck.ExpectKnownValue(actAddr, tfjsonpath.New("proposal_fingerprint"), knownvalue.StringExact("")),
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

// Four eyes: the security admin who last changed the configuration's rules may not activate it;
// another may.
func TestAccActivation_fourEyesRefusesTheLastConfigChanger(t *testing.T) {
	s := accServer(t)
	s.CreateDraft(t, genericInput("acc-four-eyes"))
	if _, err := s.Client(t, s.SecurityKey).PatchConnection(context.Background(), "acc-four-eyes",
		map[string]any{"token_ttl": map[string]any{"amount": 5, "unit": "minutes"}}, 0); err != nil {
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
				// The platform team proposes a change to the active connection (through the API
				// here). The security workspace's plan stays empty and shows the proposal.
				PreConfig: func() {
					changed, err := s.DevOps.PatchConnection(context.Background(), "acc-fp",
						map[string]any{"token_ttl": map[string]any{"amount": 5, "unit": "minutes"}}, 0)
					if err != nil {
						t.Fatal(err)
					}
					if changed.Proposal == nil || changed.Fingerprint != conn.Fingerprint || changed.Proposal.Fingerprint == conn.Fingerprint {
						t.Fatalf("a TTL change of an active connection is not a proposal with a new fingerprint: %+v", changed)
					}
					newFingerprint = changed.Proposal.Fingerprint
				},
				Config: activationConfig(s, s.SecurityKey, "acc-fp", fmt.Sprintf("approved_fingerprint = %q", conn.Fingerprint)),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(actAddr, tfjsonpath.New("proposal_fingerprint"), sameAs("proposal_fingerprint", &newFingerprint)),
					statecheck.ExpectKnownValue(actAddr, tfjsonpath.New("fingerprint"), knownvalue.StringExact(conn.Fingerprint)),
				},
			},
			{
				// Deactivating and activating again with the live fingerprint leaves the proposal
				// alone.
				Config: activationConfig(s, s.SecurityKey, "acc-fp", fmt.Sprintf("approved_fingerprint = %q\n  active = false", conn.Fingerprint)),
				Check: func(*terraform.State) error {
					if c := mustGet(t, s, "acc-fp"); c.Status != api.StatusInactive || c.Fingerprint != conn.Fingerprint || c.Proposal == nil {
						return fmt.Errorf("deactivation: status %s, live %s, proposal %+v", c.Status, c.Fingerprint, c.Proposal)
					}
					return nil
				},
			},
			{
				Config: activationConfig(s, s.SecurityKey, "acc-fp", fmt.Sprintf("approved_fingerprint = %q", conn.Fingerprint)),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(actAddr, tfjsonpath.New("status"), knownvalue.StringExact("active")),
					statecheck.ExpectKnownValue(actAddr, tfjsonpath.New("proposal_fingerprint"), sameAs("proposal_fingerprint", &newFingerprint)),
				},
				Check: func(*terraform.State) error {
					if c := mustGet(t, s, "acc-fp"); c.Fingerprint != conn.Fingerprint || c.Proposal == nil || c.Proposal.Fingerprint != newFingerprint {
						return fmt.Errorf("activation with the live fingerprint touched the proposal: live %s, proposal %+v", c.Fingerprint, c.Proposal)
					}
					return nil
				},
			},
			{
				// Approving the proposal by its fingerprint is an in-place update: the proposal
				// becomes live, the connection stays active.
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(actAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(actAddr, tfjsonpath.New("fingerprint"), sameAs("planned fingerprint", &newFingerprint)),
					plancheck.ExpectKnownValue(actAddr, tfjsonpath.New("proposal_fingerprint"), knownvalue.StringExact("")),
				}},
				Config:          "variable \"approved\" {\n  type = string\n}\n" + activationConfig(s, s.SecurityKey, "acc-fp", `approved_fingerprint = var.approved`),
				ConfigVariables: config.Variables{"approved": lazyString{&newFingerprint}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(actAddr, tfjsonpath.New("status"), knownvalue.StringExact("active")),
					statecheck.ExpectKnownValue(actAddr, tfjsonpath.New("fingerprint"), sameAs("fingerprint", &newFingerprint)),
					statecheck.ExpectKnownValue(actAddr, tfjsonpath.New("proposal_fingerprint"), knownvalue.StringExact("")),
				},
				Check: func(*terraform.State) error {
					c := mustGet(t, s, "acc-fp")
					if c.Fingerprint != newFingerprint || c.Proposal != nil || c.TokenTTL.Amount != 5 || c.Status != api.StatusActive {
						return fmt.Errorf("after the approval: live %s (want %s), proposal %+v, ttl %d, status %s", c.Fingerprint, newFingerprint, c.Proposal, c.TokenTTL.Amount, c.Status)
					}
					return nil
				},
			},
			{
				ResourceName: actAddr, ImportState: true, ImportStateId: "acc-fp", ImportStateVerify: true,
				ImportStateVerifyIdentifierAttribute: "connection_name", ImportStateVerifyIgnore: []string{"approved_fingerprint"},
				// The prior step's configuration, with its variable.
				ConfigVariables: config.Variables{"approved": lazyString{&newFingerprint}},
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
