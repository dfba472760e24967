package provider

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"testing"

	"github.com/go-jose/go-jose/v4"
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

// Acceptance tests of the arguments of issue 13 (CONTRACT.md §1, §6): issuer_url, jwks,
// claim_mappings, token_audience, single_use, and the operators not_equals and glob. Each is
// created, changed in place, imported (ImportStateVerify) and planned again empty, against a real
// server; what the server holds is read back through the API.

// publicJWKS is a JWKS document of one fresh P-256 public key, as an issuer publishes it.
func publicJWKS(t *testing.T, kid string) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]any{"keys": []any{jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"}}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// serverHolds checks the connection's issue 13 fields as the API returns them.
func serverHolds(t *testing.T, s *testkit.Server, name string, want api.ConnectionInput) resource.TestCheckFunc {
	return func(*terraform.State) error {
		c := mustGet(t, s, name)
		if c.IssuerURL != want.IssuerURL || c.JWKS != want.JWKS || c.SingleUse != want.SingleUse ||
			!reflect.DeepEqual(c.ClaimMappings, want.ClaimMappings) || !reflect.DeepEqual(c.TokenAudience, want.TokenAudience) {
			return fmt.Errorf("the server holds issuer_url %q, jwks %.40q, single_use %v, claim_mappings %v, token_audience %v;\n"+
				"want issuer_url %q, jwks %.40q, single_use %v, claim_mappings %v, token_audience %v",
				c.IssuerURL, c.JWKS, c.SingleUse, c.ClaimMappings, c.TokenAudience,
				want.IssuerURL, want.JWKS, want.SingleUse, want.ClaimMappings, want.TokenAudience)
		}
		return nil
	}
}

func TestAccWorkloadConnection_keySourcesTokenShapeAndNewOperators(t *testing.T) {
	s := accServer(t)
	prov := providerConfig(s, "", s.DevOpsKey)
	keys := publicJWKS(t, "ci-1")

	discovery := prov + `
resource "trustgate_workload_connection" "test" {
  name           = "acc-fields"
  issuer_url     = "https://issuer.example.com"
  claim_mappings = { repo = "repository", team = "/workload/team" }
  token_audience = ["https://api.acme.example", "https://deploy.acme.example"]
  single_use     = true
  condition {
    claim    = "aud"
    operator = "equals"
    value    = "trustgate-acc"
  }
  condition {
    claim    = "ref"
    operator = "glob"
    value    = "refs/heads/release/*"
  }
  condition {
    claim    = "environment"
    operator = "not_equals"
    value    = "sandbox"
  }
}`
	// Inline keys instead of discovery; a mapping dropped, one changed and one added; other
	// audiences; single_use back to its default; another glob pattern; not_equals gone.
	inline := prov + fmt.Sprintf(`
resource "trustgate_workload_connection" "test" {
  name           = "acc-fields"
  jwks           = %q
  claim_mappings = { repo = "/repository", env = "environment" }
  token_audience = ["https://deploy.acme.example"]
  condition {
    claim    = "iss"
    operator = "equals"
    value    = "https://issuer.example.com"
  }
  condition {
    claim    = "aud"
    operator = "equals"
    value    = "trustgate-acc"
  }
  condition {
    claim    = "ref"
    operator = "glob"
    value    = "refs/tags/v*.*.*"
  }
}`, keys)
	// A JWKS URL, and no token shape at all.
	plain := prov + `
resource "trustgate_workload_connection" "test" {
  name     = "acc-fields"
  jwks_url = "https://issuer.example.com/.well-known/jwks.json"
  condition {
    claim    = "iss"
    operator = "equals"
    value    = "https://issuer.example.com"
  }
  condition {
    claim    = "aud"
    operator = "equals"
    value    = "trustgate-acc"
  }
}`
	at := func(p tfjsonpath.Path, v knownvalue.Check) statecheck.StateCheck {
		return statecheck.ExpectKnownValue(connAddr, p, v)
	}
	sameID := statecheck.CompareValue(compare.ValuesSame())
	newFingerprint := statecheck.CompareValue(compare.ValuesDiffer())
	importSteps := []resource.TestStep{
		{ResourceName: connAddr, ImportState: true, ImportStateVerify: true},
		{ResourceName: connAddr, ImportState: true, ImportStateId: "acc-fields", ImportStateVerify: true},
	}
	steps := []resource.TestStep{
		{
			Config: discovery,
			ConfigStateChecks: []statecheck.StateCheck{
				sameID.AddStateValue(connAddr, tfjsonpath.New("id")),
				newFingerprint.AddStateValue(connAddr, tfjsonpath.New("fingerprint")),
				at(tfjsonpath.New("issuer_url"), knownvalue.StringExact("https://issuer.example.com")),
				at(tfjsonpath.New("jwks"), knownvalue.Null()),
				at(tfjsonpath.New("jwks_url"), knownvalue.Null()),
				at(tfjsonpath.New("claim_mappings"), knownvalue.MapExact(map[string]knownvalue.Check{
					"repo": knownvalue.StringExact("repository"), "team": knownvalue.StringExact("/workload/team")})),
				at(tfjsonpath.New("token_audience"), knownvalue.ListExact([]knownvalue.Check{
					knownvalue.StringExact("https://api.acme.example"), knownvalue.StringExact("https://deploy.acme.example")})),
				at(tfjsonpath.New("single_use"), knownvalue.Bool(true)),
				// Discovery pins the issuer: its condition comes first.
				at(tfjsonpath.New("effective_conditions"), knownvalue.ListExact([]knownvalue.Check{
					knownvalue.ObjectExact(map[string]knownvalue.Check{"claim": knownvalue.StringExact("iss"),
						"operator": knownvalue.StringExact("equals"), "value": knownvalue.StringExact("https://issuer.example.com"), "values": knownvalue.Null()}),
					knownvalue.ObjectPartial(map[string]knownvalue.Check{"claim": knownvalue.StringExact("aud")}),
					knownvalue.ObjectExact(map[string]knownvalue.Check{"claim": knownvalue.StringExact("ref"),
						"operator": knownvalue.StringExact("glob"), "value": knownvalue.StringExact("refs/heads/release/*"), "values": knownvalue.Null()}),
					knownvalue.ObjectExact(map[string]knownvalue.Check{"claim": knownvalue.StringExact("environment"),
						"operator": knownvalue.StringExact("not_equals"), "value": knownvalue.StringExact("sandbox"), "values": knownvalue.Null()}),
				})),
			},
			Check: serverHolds(t, s, "acc-fields", api.ConnectionInput{
				IssuerURL: "https://issuer.example.com", SingleUse: true,
				ClaimMappings: map[string]string{"repo": "repository", "team": "/workload/team"},
				TokenAudience: []string{"https://api.acme.example", "https://deploy.acme.example"},
			}),
		},
		{Config: discovery, ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}},
	}
	steps = append(steps, importSteps...)
	steps = append(steps, resource.TestStep{
		Config: inline,
		ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
			plancheck.ExpectResourceAction(connAddr, plancheck.ResourceActionUpdate),
			plancheck.ExpectUnknownValue(connAddr, tfjsonpath.New("fingerprint")),
			plancheck.ExpectUnknownValue(connAddr, tfjsonpath.New("effective_conditions")),
		}},
		ConfigStateChecks: []statecheck.StateCheck{
			sameID.AddStateValue(connAddr, tfjsonpath.New("id")),
			newFingerprint.AddStateValue(connAddr, tfjsonpath.New("fingerprint")),
			at(tfjsonpath.New("issuer_url"), knownvalue.Null()),
			at(tfjsonpath.New("jwks"), knownvalue.StringExact(keys)),
			at(tfjsonpath.New("jwks_url"), knownvalue.Null()),
			at(tfjsonpath.New("claim_mappings"), knownvalue.MapExact(map[string]knownvalue.Check{
				"repo": knownvalue.StringExact("/repository"), "env": knownvalue.StringExact("environment")})),
			at(tfjsonpath.New("token_audience"), knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("https://deploy.acme.example")})),
			at(tfjsonpath.New("single_use"), knownvalue.Bool(false)),
			at(tfjsonpath.New("effective_conditions"), knownvalue.ListSizeExact(3)),
			at(tfjsonpath.New("status"), knownvalue.StringExact("draft")),
		},
		// The dropped mapping is gone on the server, not merged back in.
		Check: serverHolds(t, s, "acc-fields", api.ConnectionInput{
			JWKS:          keys,
			ClaimMappings: map[string]string{"repo": "/repository", "env": "environment"},
			TokenAudience: []string{"https://deploy.acme.example"},
		}),
	}, resource.TestStep{Config: inline, ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}})
	steps = append(steps, importSteps...)
	steps = append(steps, resource.TestStep{
		Config: plain,
		ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
			plancheck.ExpectResourceAction(connAddr, plancheck.ResourceActionUpdate),
		}},
		ConfigStateChecks: []statecheck.StateCheck{
			sameID.AddStateValue(connAddr, tfjsonpath.New("id")),
			newFingerprint.AddStateValue(connAddr, tfjsonpath.New("fingerprint")),
			at(tfjsonpath.New("jwks"), knownvalue.Null()),
			at(tfjsonpath.New("jwks_url"), knownvalue.StringExact("https://issuer.example.com/.well-known/jwks.json")),
			at(tfjsonpath.New("claim_mappings"), knownvalue.Null()),
			at(tfjsonpath.New("token_audience"), knownvalue.Null()),
			at(tfjsonpath.New("single_use"), knownvalue.Bool(false)),
		},
		Check: serverHolds(t, s, "acc-fields", api.ConnectionInput{}),
	}, resource.TestStep{Config: plain, ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}})
	steps = append(steps, importSteps...)

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		CheckDestroy:             checkGone(s, "acc-fields"),
		Steps:                    steps,
	})
}

// A GitHub Enterprise Server the Trustgate server cannot reach: the preset with its keys inline.
// Rotating the keys changes the fingerprint in place; removing them derives the JWKS URL again.
func TestAccWorkloadConnection_presetWithInlineKeys(t *testing.T) {
	s := accServer(t)
	prov := providerConfig(s, "", s.DevOpsKey)
	cfg := func(jwks string) string {
		line := ""
		if jwks != "" {
			line = fmt.Sprintf("jwks = %q", jwks)
		}
		return prov + fmt.Sprintf(`
resource "trustgate_workload_connection" "test" {
  name = "acc-ghes"
  %s
  github {
    owner_id = "65"
    host     = "github.acme.example"
  }
}`, line)
	}
	first, rotated := publicJWKS(t, "ghes-1"), publicJWKS(t, "ghes-2")
	newFingerprint := statecheck.CompareValue(compare.ValuesDiffer())
	sameID := statecheck.CompareValue(compare.ValuesSame())
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		CheckDestroy:             checkGone(s, "acc-ghes"),
		Steps: []resource.TestStep{
			{
				Config: cfg(first),
				ConfigStateChecks: []statecheck.StateCheck{
					sameID.AddStateValue(connAddr, tfjsonpath.New("id")),
					newFingerprint.AddStateValue(connAddr, tfjsonpath.New("fingerprint")),
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("jwks"), knownvalue.StringExact(first)),
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("jwks_url"), knownvalue.Null()),
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("effective_conditions").AtSliceIndex(0), knownvalue.ObjectPartial(map[string]knownvalue.Check{
						"claim": knownvalue.StringExact("iss"), "value": knownvalue.StringExact("https://github.acme.example/_services/token")})),
				},
			},
			{ResourceName: connAddr, ImportState: true, ImportStateVerify: true},
			{
				Config: cfg(rotated),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(connAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					sameID.AddStateValue(connAddr, tfjsonpath.New("id")),
					newFingerprint.AddStateValue(connAddr, tfjsonpath.New("fingerprint")),
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("jwks"), knownvalue.StringExact(rotated)),
				},
			},
			{
				Config: cfg(""),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(connAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue(connAddr, tfjsonpath.New("jwks_url")),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					sameID.AddStateValue(connAddr, tfjsonpath.New("id")),
					newFingerprint.AddStateValue(connAddr, tfjsonpath.New("fingerprint")),
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("jwks"), knownvalue.Null()),
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("jwks_url"),
						knownvalue.StringExact("https://github.acme.example/_services/token/.well-known/jwks")),
				},
			},
			{Config: cfg(""), ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}},
			{ResourceName: connAddr, ImportState: true, ImportStateId: "acc-ghes", ImportStateVerify: true},
		},
	})
}

// The plan-time checks of the issue 13 arguments: each configuration fails before anything is
// sent, with an error that names the rule (the server applies the same rules: package api and
// api/inlinejwks).
func TestAccWorkloadConnection_planTimeValidationOfTheNewArguments(t *testing.T) {
	s := accServer(t)
	prov := providerConfig(s, "", s.DevOpsKey)
	github := "\n  github {\n    owner_id = \"65\"\n  }\n"
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privateJWKS, err := json.Marshal(map[string]any{"keys": []any{jose.JSONWebKey{Key: k, KeyID: "leak"}}})
	if err != nil {
		t.Fatal(err)
	}
	cond := func(op, value string) string {
		return fmt.Sprintf("\n  condition {\n    claim    = \"ref\"\n    operator = %q\n    value    = %q\n  }\n", op, value)
	}
	tests := []struct {
		name   string
		body   string
		expect string
	}{
		{"glob of only a double star", `name = "v"` + github + cond("glob", "**"), `(?s)Invalid condition.*"\*\*"\s+is\s+only\s+wildcards.*use\s+exists`},
		{"glob of only a star", `name = "v"` + github + cond("glob", "*"), `(?s)"\*"\s+is\s+only\s+wildcards`},
		{"empty glob", `name = "v"` + github + cond("glob", ""), `(?s)glob.*must\s+not\s+be\s+empty`},
		{"not_equals without value", `name = "v"` + github + "\n  condition {\n    claim    = \"ref\"\n    operator = \"not_equals\"\n  }\n", `operator "not_equals" needs value`},
		{"issuer_url with a preset", `name = "v"
  issuer_url = "https://issuer.example.com"` + github, `(?s)issuer_url is for generic connections only.*github\s+preset`},
		{"issuer_url and jwks_url", `name = "v"
  issuer_url = "https://issuer.example.com"
  jwks_url   = "https://issuer.example.com/jwks"`, `(?s)Invalid Attribute Combination.*jwks_url`},
		{"issuer_url with a query", `name = "v"
  issuer_url = "https://issuer.example.com/?tenant=a"`, `(?s)Invalid issuer_url.*query`},
		{"issuer_url without scheme", `name = "v"
  issuer_url = "issuer.example.com"`, `(?s)Invalid issuer_url.*https\s+URL`},
		{"jwks with a private key", `name = "v"
  jwks = ` + fmt.Sprintf("%q", privateJWKS) + github, `(?s)Invalid inline JWKS.*private\s+member\s+"d".*rotate\s+it`},
		{"jwks that is not a JWKS", `name = "v"
  jwks = "[]"` + github, `(?s)Invalid inline JWKS.*not\s+a\s+JWKS\s+document`},
		{"jwks with jwks_url", `name = "v"
  jwks     = ` + fmt.Sprintf("%q", publicJWKS(t, "x")) + `
  jwks_url = "https://issuer.example.com/jwks"` + github, `(?s)Invalid Attribute Combination`},
		{"claim_mappings with a capital name", `name = "v"
  claim_mappings = { Repo = "repository" }` + github, `(?s)claim_mappings.*access-token\s+claim\s+name`},
		{"claim_mappings with a bad pointer", `name = "v"
  claim_mappings = { repo = "/a~2b" }` + github, `(?s)Invalid claim reference.*RFC\s+6901`},
		{"claim_mappings empty", `name = "v"
  claim_mappings = {}` + github, `(?s)claim_mappings.*at\s+least\s+1`},
		{"token_audience twice the same", `name = "v"
  token_audience = ["https://a.example", "https://a.example"]` + github, `(?s)Duplicate List Value.*token_audience`},
		{"token_audience empty", `name = "v"
  token_audience = []` + github, `(?s)token_audience.*at\s+least\s+1`},
		{"token_audience with a space", `name = "v"
  token_audience = [" https://a.example"]` + github, `(?s)token_audience.*white\s+space`},
		{"generic without any key source", `name = "v"`, `(?s)Missing jwks_url.*issuer_url.*jwks`},
	}
	var steps []resource.TestStep
	for _, tt := range tests {
		steps = append(steps, resource.TestStep{
			Config:      prov + "resource \"trustgate_workload_connection\" \"test\" {\n  " + tt.body + "\n}\n",
			PlanOnly:    true,
			ExpectError: regexp.MustCompile(tt.expect),
		})
	}
	for i, tt := range tests {
		t.Logf("step %d: %s", i+1, tt.name)
	}
	resource.Test(t, resource.TestCase{ProtoV6ProviderFactories: providerFactories, Steps: steps})
	// Nothing reached the server.
	if all, err := s.Auditor.ListAllConnections(t.Context(), apiclient.ListOptions{}); err != nil || len(all) != 0 {
		t.Errorf("plan-time refusals reached the server: %d connections (%v)", len(all), err)
	}
}

// After activation, a change of the token shape is a proposal the resource describes (the plan
// after apply is empty); once a security admin approves it, it is what the server enforces,
// without the mapping the configuration dropped, and the plan stays empty.
func TestAccWorkloadConnection_tokenShapeChangesAfterActivationAreProposals(t *testing.T) {
	s := accServer(t)
	prov := providerConfig(s, "", s.DevOpsKey)
	cfg := func(mappings, extra string) string {
		return prov + fmt.Sprintf(`
resource "trustgate_workload_connection" "test" {
  name           = "acc-shape-cc"
  issuer_url     = "https://issuer.example.com"
  claim_mappings = %s
  %s
  condition {
    claim    = "aud"
    operator = "equals"
    value    = "trustgate-acc"
  }
}`, mappings, extra)
	}
	live := cfg(`{ repo = "repository", team = "/workload/team" }`, "")
	proposed := cfg(`{ repo = "repository" }`, "single_use = true\n  token_audience = [\"https://api.acme.example\"]")
	var liveFingerprint string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_7_0)}, // `removed`
		Steps: []resource.TestStep{
			{
				Config: live,
				Check: func(*terraform.State) error {
					liveFingerprint = mustGet(t, s, "acc-shape-cc").Fingerprint
					return nil
				},
			},
			{
				PreConfig: func() { s.SetStatus(t, mustGet(t, s, "acc-shape-cc"), api.StatusActive) },
				Config:    proposed,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("proposal_pending"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("live_fingerprint"), sameAs("live_fingerprint", &liveFingerprint)),
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("fingerprint"), differentFrom("fingerprint", &liveFingerprint)),
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("claim_mappings"), knownvalue.MapExact(map[string]knownvalue.Check{
						"repo": knownvalue.StringExact("repository")})),
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("single_use"), knownvalue.Bool(true)),
				},
				// What is live did not change.
				Check: serverHolds(t, s, "acc-shape-cc", api.ConnectionInput{IssuerURL: "https://issuer.example.com",
					ClaimMappings: map[string]string{"repo": "repository", "team": "/workload/team"}}),
			},
			{Config: proposed, ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}}},
			{ResourceName: connAddr, ImportState: true, ImportStateId: "acc-shape-cc", ImportStateVerify: true},
			{
				PreConfig: func() {
					c := mustGet(t, s, "acc-shape-cc")
					if _, err := s.Security.ApproveProposal(t.Context(), "acc-shape-cc", c.Proposal.Fingerprint, 0); err != nil {
						t.Fatalf("approving through the API: %v", err)
					}
				},
				Config:           proposed,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(connAddr, tfjsonpath.New("proposal_pending"), knownvalue.Bool(false)),
				},
				Check: serverHolds(t, s, "acc-shape-cc", api.ConnectionInput{IssuerURL: "https://issuer.example.com", SingleUse: true,
					ClaimMappings: map[string]string{"repo": "repository"}, TokenAudience: []string{"https://api.acme.example"}}),
			},
			{
				// The platform workspace lets go; the security team owns the connection.
				Config: prov + "removed {\n  from = trustgate_workload_connection.test\n  lifecycle {\n    destroy = false\n  }\n}\n",
			},
		},
	})
}
