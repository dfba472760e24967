package provider

import (
	"context"
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/compare"
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

const connAddr = "trustgate_workload_connection.test"

var fingerprintShape = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// presetCase is one provider type: a first configuration and an in-place update of it.
type presetCase struct {
	name         string
	providerType string
	create       string
	update       string
	jwksURL      string
	// updated are checks of attributes the update changed.
	updated []statecheck.StateCheck
}

func presetCases() []presetCase {
	at := func(p tfjsonpath.Path, v knownvalue.Check) statecheck.StateCheck {
		return statecheck.ExpectKnownValue(connAddr, p, v)
	}
	return []presetCase{
		{
			name: "acc-generic", providerType: "generic",
			jwksURL: "https://issuer.example.com/.well-known/jwks.json",
			create: `
resource "trustgate_workload_connection" "test" {
  name     = "acc-generic"
  jwks_url = "https://issuer.example.com/.well-known/jwks.json"
  condition {
    claim    = "iss"
    operator = "equals"
    value    = "https://issuer.example.com"
  }
  condition {
    claim    = "aud"
    operator = "one_of"
    values   = ["trustgate-a", "trustgate-b"]
  }
}`,
			update: `
resource "trustgate_workload_connection" "test" {
  name           = "acc-generic"
  description    = "updated"
  jwks_url       = "https://issuer.example.com/.well-known/jwks.json"
  identity_claim = "/workload/name"
  token_ttl      = { amount = 90, unit = "seconds" }
  condition {
    claim    = "iss"
    operator = "equals"
    value    = "https://issuer.example.com"
  }
  condition {
    claim    = "aud"
    operator = "equals"
    value    = "trustgate-a"
  }
  condition {
    claim    = "/workload/team"
    operator = "exists"
  }
}`,
			updated: []statecheck.StateCheck{
				at(tfjsonpath.New("description"), knownvalue.StringExact("updated")),
				at(tfjsonpath.New("identity_claim"), knownvalue.StringExact("/workload/name")),
				at(tfjsonpath.New("token_ttl"), knownvalue.ObjectExact(map[string]knownvalue.Check{
					"amount": knownvalue.Int64Exact(90), "unit": knownvalue.StringExact("seconds")})),
				at(tfjsonpath.New("condition"), knownvalue.ListSizeExact(3)),
				at(tfjsonpath.New("condition").AtSliceIndex(2), knownvalue.ObjectExact(map[string]knownvalue.Check{
					"claim": knownvalue.StringExact("/workload/team"), "operator": knownvalue.StringExact("exists"),
					"value": knownvalue.Null(), "values": knownvalue.Null()})),
			},
		},
		{
			// A GitHub Enterprise Server (host) moves the issuer and the JWKS URL.
			name: "acc-github", providerType: "github",
			jwksURL: "https://github.acme.example/_services/token/.well-known/jwks",
			create: `
resource "trustgate_workload_connection" "test" {
  name = "acc-github"
  github {
    owner_id   = "65"
    owner      = "acme"
    repository = "acme/app"
    host       = "github.acme.example"
  }
}`,
			// The github inputs change in place: the owner id, repository_id added, the host's port.
			update: `
resource "trustgate_workload_connection" "test" {
  name      = "acc-github"
  token_ttl = { amount = 30, unit = "minutes" }
  github {
    owner_id      = "66"
    repository_id = "74"
    host          = "github.acme.example:8443"
    ref           = "refs/heads/main"
  }
  condition {
    claim    = "workflow"
    operator = "starts_with"
    value    = "deploy"
  }
}`,
			updated: []statecheck.StateCheck{
				at(tfjsonpath.New("github"), knownvalue.ObjectPartial(map[string]knownvalue.Check{
					"owner_id": knownvalue.StringExact("66"), "owner": knownvalue.Null(),
					"repository_id": knownvalue.StringExact("74"), "repository": knownvalue.Null(),
					"host": knownvalue.StringExact("github.acme.example:8443"), "ref": knownvalue.StringExact("refs/heads/main"),
				})),
				at(tfjsonpath.New("jwks_url"), knownvalue.StringExact("https://github.acme.example:8443/_services/token/.well-known/jwks")),
				at(tfjsonpath.New("effective_conditions"), knownvalue.ListPartial(map[int]knownvalue.Check{
					0: knownvalue.ObjectPartial(map[string]knownvalue.Check{"claim": knownvalue.StringExact("iss"),
						"value": knownvalue.StringExact("https://github.acme.example:8443/_services/token")}),
					2: knownvalue.ObjectPartial(map[string]knownvalue.Check{"claim": knownvalue.StringExact("repository_owner_id"),
						"value": knownvalue.StringExact("66")}),
					3: knownvalue.ObjectPartial(map[string]knownvalue.Check{"claim": knownvalue.StringExact("repository_id"),
						"value": knownvalue.StringExact("74")}),
				})),
				at(tfjsonpath.New("condition"), knownvalue.ListSizeExact(1)),
			},
		},
		{
			name: "acc-gitlab", providerType: "gitlab",
			jwksURL: "https://gitlab.com/oauth/discovery/keys",
			create: `
resource "trustgate_workload_connection" "test" {
  name = "acc-gitlab"
  gitlab {
    domain = "gitlab.com"
    group  = "acme"
  }
}`,
			update: `
resource "trustgate_workload_connection" "test" {
  name = "acc-gitlab"
  gitlab {
    domain       = "gitlab.com"
    group        = "acme"
    project_path = "acme/app"
  }
  condition {
    claim    = "ref_protected"
    operator = "equals"
    value    = "true"
  }
}`,
			updated: []statecheck.StateCheck{
				at(tfjsonpath.New("gitlab").AtMapKey("project_path"), knownvalue.StringExact("acme/app")),
			},
		},
		{
			name: "acc-circleci", providerType: "circleci",
			jwksURL: "https://oidc.circleci.com/org/6a2c6f0e-4b8e-4b5e-9d5c-3c1f2a7b9e01/.well-known/jwks-pub.json",
			create: `
resource "trustgate_workload_connection" "test" {
  name = "acc-circleci"
  circleci {
    organization_id = "6a2c6f0e-4b8e-4b5e-9d5c-3c1f2a7b9e01"
  }
}`,
			update: `
resource "trustgate_workload_connection" "test" {
  name        = "acc-circleci"
  description = "deploy project only"
  circleci {
    organization_id = "6a2c6f0e-4b8e-4b5e-9d5c-3c1f2a7b9e01"
    project_id      = "0f7e6d5c-4b3a-4c2d-9e1f-a0b1c2d3e4f5"
  }
}`,
			updated: []statecheck.StateCheck{
				at(tfjsonpath.New("circleci").AtMapKey("project_id"), knownvalue.StringExact("0f7e6d5c-4b3a-4c2d-9e1f-a0b1c2d3e4f5")),
			},
		},
		{
			name: "acc-google", providerType: "google_cloud",
			jwksURL: "https://www.googleapis.com/oauth2/v3/certs",
			create: `
resource "trustgate_workload_connection" "test" {
  name = "acc-google"
  google_cloud {
    client_id = "trustgate-acc"
    email     = "deployer@acme-prod.iam.gserviceaccount.com"
  }
}`,
			update: `
resource "trustgate_workload_connection" "test" {
  name = "acc-google"
  google_cloud {
    client_id  = "trustgate-acc"
    email      = "deployer@acme-prod.iam.gserviceaccount.com"
    account_id = "112233445566778899001"
  }
}`,
			updated: []statecheck.StateCheck{
				at(tfjsonpath.New("google_cloud").AtMapKey("account_id"), knownvalue.StringExact("112233445566778899001")),
			},
		},
	}
}

// checkGone is a CheckDestroy that asks the server whether the connection is really deleted.
func checkGone(s *testkit.Server, name string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		_, err := s.Client(nilT{}, s.AuditorKey).GetConnection(context.Background(), name)
		if !apiclient.IsNotFound(err) {
			return fmt.Errorf("connection %s still exists after destroy (err %v)", name, err)
		}
		return nil
	}
}

func TestAccWorkloadConnection_everyPresetCreatesUpdatesImportsAndDestroys(t *testing.T) {
	s := accServer(t)
	for _, tc := range presetCases() {
		t.Run(tc.providerType, func(t *testing.T) {
			prov := providerConfig(s, "", s.DevOpsKey)
			sameID := statecheck.CompareValue(compare.ValuesSame())
			newRevision := statecheck.CompareValue(compare.ValuesDiffer())
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: providerFactories,
				CheckDestroy:             checkGone(s, tc.name),
				Steps: []resource.TestStep{
					{
						Config: prov + tc.create,
						ConfigPlanChecks: resource.ConfigPlanChecks{
							PreApply: []plancheck.PlanCheck{
								plancheck.ExpectKnownValue(connAddr, tfjsonpath.New("provider_type"), knownvalue.StringExact(tc.providerType)),
							},
						},
						ConfigStateChecks: []statecheck.StateCheck{
							sameID.AddStateValue(connAddr, tfjsonpath.New("id")),
							newRevision.AddStateValue(connAddr, tfjsonpath.New("revision")),
							statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("name"), knownvalue.StringExact(tc.name)),
							statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("provider_type"), knownvalue.StringExact(tc.providerType)),
							statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("status"), knownvalue.StringExact("draft")),
							statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("jwks_url"), knownvalue.StringExact(tc.jwksURL)),
							statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("fingerprint"), knownvalue.StringRegexp(fingerprintShape)),
							statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("created_by"), knownvalue.StringExact("devops")),
							statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("activated_by"), knownvalue.Null()),
							statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("description"), knownvalue.StringExact("")),
							statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("identity_claim"), knownvalue.StringExact("sub")),
							statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("token_ttl"), knownvalue.ObjectExact(map[string]knownvalue.Check{
								"amount": knownvalue.Int64Exact(1), "unit": knownvalue.StringExact("hours")})),
							statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("effective_conditions").AtSliceIndex(0),
								knownvalue.ObjectPartial(map[string]knownvalue.Check{"claim": knownvalue.StringExact("iss")})),
						},
					},
					{
						Config: prov + tc.update,
						ConfigPlanChecks: resource.ConfigPlanChecks{
							PreApply: []plancheck.PlanCheck{
								plancheck.ExpectResourceAction(connAddr, plancheck.ResourceActionUpdate),
								plancheck.ExpectUnknownValue(connAddr, tfjsonpath.New("revision")),
								plancheck.ExpectKnownValue(connAddr, tfjsonpath.New("id"), knownvalue.NotNull()),
								plancheck.ExpectKnownValue(connAddr, tfjsonpath.New("created_by"), knownvalue.StringExact("devops")),
								plancheck.ExpectKnownValue(connAddr, tfjsonpath.New("provider_type"), knownvalue.StringExact(tc.providerType)),
							},
						},
						ConfigStateChecks: append([]statecheck.StateCheck{
							sameID.AddStateValue(connAddr, tfjsonpath.New("id")),
							newRevision.AddStateValue(connAddr, tfjsonpath.New("revision")),
							statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("status"), knownvalue.StringExact("draft")),
						}, tc.updated...),
					},
					{
						ResourceName:      connAddr,
						ImportState:       true,
						ImportStateVerify: true,
					},
					{
						ResourceName:      connAddr,
						ImportState:       true,
						ImportStateId:     tc.name,
						ImportStateVerify: true,
					},
				},
			})
		})
	}
}

// A jwks_url override set and then removed again must reach the server both times: removing an
// optional+computed value is easy to lose.
func TestAccWorkloadConnection_jwksURLOverrideCanBeRemoved(t *testing.T) {
	s := accServer(t)
	prov := providerConfig(s, "", s.DevOpsKey)
	cfg := func(jwks string) string {
		return prov + fmt.Sprintf(`
resource "trustgate_workload_connection" "test" {
  name = "acc-jwks"
  %s
  github {
    owner_id = "65"
  }
}`, jwks)
	}
	derived := "https://token.actions.githubusercontent.com/.well-known/jwks"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		CheckDestroy:             checkGone(s, "acc-jwks"),
		Steps: []resource.TestStep{
			{
				Config: cfg(""),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("jwks_url"), knownvalue.StringExact(derived)),
				},
			},
			{
				Config: cfg(`jwks_url = "https://keys.example.com/jwks.json"`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("jwks_url"), knownvalue.StringExact("https://keys.example.com/jwks.json")),
				},
			},
			{
				Config: cfg(""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(connAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue(connAddr, tfjsonpath.New("jwks_url")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("jwks_url"), knownvalue.StringExact(derived)),
				},
				Check: func(*terraform.State) error {
					if c := mustGet(t, s, "acc-jwks"); c.JWKSURLOverridden || c.JWKSURL != derived {
						return fmt.Errorf("server still has the override: %q (overridden %v)", c.JWKSURL, c.JWKSURLOverridden)
					}
					return nil
				},
			},
			{
				ResourceName:      connAddr,
				ImportState:       true,
				ImportStateVerify: true,
			},
		},
	})
}

// Renaming a draft or changing its description does not change who gets a token: the plan says
// so by keeping fingerprint, effective_conditions and jwks_url known.
func TestAccWorkloadConnection_nameAndDescriptionChangesKeepTheFingerprintKnown(t *testing.T) {
	s := accServer(t)
	prov := providerConfig(s, "", s.DevOpsKey)
	cfg := func(name, desc string) string {
		return prov + fmt.Sprintf(`
resource "trustgate_workload_connection" "test" {
  name        = %q
  description = %q
  gitlab {
    domain       = "gitlab.example.com"
    project_path = "platform/deployer"
  }
}`, name, desc)
	}
	sameFingerprint := statecheck.CompareValue(compare.ValuesSame())
	sameID := statecheck.CompareValue(compare.ValuesSame())
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		CheckDestroy:             checkGone(s, "acc-renamed"),
		Steps: []resource.TestStep{
			{
				Config: cfg("acc-rename", "first"),
				ConfigStateChecks: []statecheck.StateCheck{
					sameFingerprint.AddStateValue(connAddr, tfjsonpath.New("fingerprint")),
					sameID.AddStateValue(connAddr, tfjsonpath.New("id")),
				},
			},
			{
				Config: cfg("acc-renamed", "second"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(connAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(connAddr, tfjsonpath.New("fingerprint"), knownvalue.StringRegexp(fingerprintShape)),
					plancheck.ExpectKnownValue(connAddr, tfjsonpath.New("jwks_url"), knownvalue.StringExact("https://gitlab.example.com/oauth/discovery/keys")),
					plancheck.ExpectKnownValue(connAddr, tfjsonpath.New("effective_conditions"), knownvalue.NotNull()),
					plancheck.ExpectKnownValue(connAddr, tfjsonpath.New("status"), knownvalue.StringExact("draft")),
					plancheck.ExpectUnknownValue(connAddr, tfjsonpath.New("revision")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					sameFingerprint.AddStateValue(connAddr, tfjsonpath.New("fingerprint")),
					sameID.AddStateValue(connAddr, tfjsonpath.New("id")),
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("name"), knownvalue.StringExact("acc-renamed")),
				},
			},
			{
				Config: cfg("acc-renamed", "second"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
			{ResourceName: connAddr, ImportState: true, ImportStateId: "acc-renamed", ImportStateVerify: true},
		},
	})
}

// The server's 422 field errors land on the attribute that caused them.
func TestAccWorkloadConnection_serverValidationErrorsNameTheAttribute(t *testing.T) {
	s := accServer(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		Steps: []resource.TestStep{
			{
				// Tenancy: a generic connection must pin iss and aud; only the server knows that rule.
				Config: providerConfig(s, "", s.DevOpsKey) + `
resource "trustgate_workload_connection" "test" {
  name     = "acc-tenancy"
  jwks_url = "https://issuer.example.com/.well-known/jwks.json"
  condition {
    claim    = "sub"
    operator = "equals"
    value    = "x"
  }
}`,
				ExpectError: regexp.MustCompile(`Invalid workload connection`),
			},
			{
				// A field error on a nested attribute points at that attribute's line.
				Config: providerConfig(s, "", s.DevOpsKey) + `
resource "trustgate_workload_connection" "test" {
  name = "acc-tenancy"
  github {
    owner_id = "65"
  }
  condition {
    claim    = "/bad~2pointer"
    operator = "exists"
  }
}`,
				ExpectError: regexp.MustCompile(`(?s)Invalid workload connection: conditions\[0\]\.claim.*claim\s+= "/bad~2pointer"`),
			},
			{
				Config: providerConfig(s, "", s.DevOpsKey) + `
resource "trustgate_workload_connection" "test" {
  name = "acc-tenancy"
  gitlab {
    domain = "gitlab.com"
  }
}`,
				ExpectError: regexp.MustCompile(`(?s)Invalid workload connection.*gitlab.com is shared`),
			},
		},
	})
}

// nilT lets test helpers that take a testing.TB run inside check functions.
type nilT struct{ testing.TB }

func (nilT) Helper()                   {}
func (nilT) Fatal(args ...any)         { panic(fmt.Sprint(args...)) }
func (nilT) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }

// After activation an apply stores a proposal and the state describes it; a proposal discarded on
// the server shows as a difference again, and applying proposes it again; going back to the live
// configuration discards the proposal; a rename is refused at plan time; a description-only
// change is a proposal with the live fingerprint.
func TestAccWorkloadConnection_changesAfterActivationAreProposals(t *testing.T) {
	s := accServer(t)
	prov := providerConfig(s, "", s.DevOpsKey)
	cfg := func(name, description, ref string) string {
		return prov + fmt.Sprintf(`
resource "trustgate_workload_connection" "test" {
  name        = %q
  description = %q
  github {
    owner_id = "65"
    ref      = %q
  }
}`, name, description, ref)
	}
	live := cfg("acc-cc", "deploys", "refs/heads/main")
	proposed := cfg("acc-cc", "deploys releases", "refs/heads/release")
	var liveFingerprint string
	proposalFingerprint := statecheck.CompareValue(compare.ValuesSame())
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_7_0)}, // `removed`
		Steps: []resource.TestStep{
			{
				Config: live,
				Check: func(*terraform.State) error {
					liveFingerprint = mustGet(t, s, "acc-cc").Fingerprint
					return nil
				},
			},
			{
				PreConfig: func() { s.SetStatus(t, mustGet(t, s, "acc-cc"), api.StatusActive) },
				Config:    live,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
			{
				Config: proposed,
				ConfigStateChecks: []statecheck.StateCheck{
					proposalFingerprint.AddStateValue(connAddr, tfjsonpath.New("fingerprint")),
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("proposal_pending"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("live_fingerprint"), sameAs("live_fingerprint", &liveFingerprint)),
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("fingerprint"), differentFrom("fingerprint", &liveFingerprint)),
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("description"), knownvalue.StringExact("deploys releases")),
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("status"), knownvalue.StringExact("active")),
				},
			},
			{ResourceName: connAddr, ImportState: true, ImportStateId: "acc-cc", ImportStateVerify: true},
			{
				// A security admin discards the proposal: the plan shows the difference again, and
				// the apply proposes the same change again.
				PreConfig: func() {
					if err := s.Security.DiscardProposal(t.Context(), "acc-cc", 0); err != nil {
						t.Fatalf("discarding through the API: %v", err)
					}
				},
				Config: proposed,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(connAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue(connAddr, tfjsonpath.New("proposal_pending"), knownvalue.Bool(true)),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					proposalFingerprint.AddStateValue(connAddr, tfjsonpath.New("fingerprint")),
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("proposal_pending"), knownvalue.Bool(true)),
				},
			},
			{
				// Back to the live configuration: the proposal is discarded, nothing is pending.
				Config: live,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(connAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue(connAddr, tfjsonpath.New("proposal_pending")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("proposal_pending"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("fingerprint"), sameAs("fingerprint", &liveFingerprint)),
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("live_fingerprint"), sameAs("live_fingerprint", &liveFingerprint)),
				},
				Check: func(*terraform.State) error {
					if c := mustGet(t, s, "acc-cc"); c.Proposal != nil || c.Description != "deploys" {
						return fmt.Errorf("going back to the live configuration left %+v pending (description %q)", c.Proposal, c.Description)
					}
					return nil
				},
			},
			{
				Config:      cfg("acc-cc-renamed", "deploys", "refs/heads/main"),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)An activated workload connection cannot be renamed.*Nothing\s+was\s+sent`),
			},
			{
				// A description is part of the configuration too: a proposal, with the live
				// fingerprint since it does not change who gets a token.
				Config: cfg("acc-cc", "deploys from main", "refs/heads/main"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectKnownValue(connAddr, tfjsonpath.New("fingerprint"), sameAs("planned fingerprint", &liveFingerprint)),
					plancheck.ExpectKnownValue(connAddr, tfjsonpath.New("proposal_pending"), knownvalue.Bool(true)),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("proposal_pending"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("description"), knownvalue.StringExact("deploys from main")),
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("fingerprint"), sameAs("fingerprint", &liveFingerprint)),
				},
				Check: func(*terraform.State) error {
					if c := mustGet(t, s, "acc-cc"); c.Description != "deploys" || c.Proposal == nil || c.Proposal.Config.Description != "deploys from main" {
						return fmt.Errorf("a description change reached what is live: %q, proposal %+v", c.Description, c.Proposal)
					}
					return nil
				},
			},
			{
				// The platform workspace forgets the connection; the security team owns it.
				Config: prov + "removed {\n  from = trustgate_workload_connection.test\n  lifecycle {\n    destroy = false\n  }\n}\n",
			},
		},
	})
}
