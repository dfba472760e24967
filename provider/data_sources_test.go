package provider

import (
	"context"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

func TestAccDataSources_readOneByNameOrIDAndListWithFilters(t *testing.T) {
	s := accServer(t)
	gh := s.CreateDraft(t, api.ConnectionInput{
		Name: "ds-github", Description: "from acme/app",
		GitHub:   &api.GitHubSettings{OwnerID: "65", Owner: "acme", RepositoryID: "74", Repository: "acme/app"},
		TokenTTL: &api.TokenTTL{Amount: 20, Unit: api.UnitMinutes},
	})
	s.CreateDraft(t, genericInput("ds-generic"))
	// Discovery and the token shape (issue 13).
	disc := genericInput("ds-discovery")
	disc.JWKSURL, disc.IssuerURL = "", "https://issuer.example.com"
	disc.Conditions = disc.Conditions[1:] // issuer_url pins iss
	disc.ClaimMappings = map[string]string{"repo": "repository", "team": "/workload/team"}
	disc.TokenAudience = []string{"https://api.acme.example", "https://deploy.acme.example"}
	disc.SingleUse = true
	discovered := s.CreateDraft(t, disc)
	s.CreateDraft(t, genericInput("other-generic"))
	if _, err := s.Client(t, s.SecurityKey).SetStatus(context.Background(), "ds-generic", api.StatusChange{Status: api.StatusActive}, 0); err != nil {
		t.Fatal(err)
	}
	// The platform team proposes a shorter TTL for the active connection: the data sources show the
	// proposal beside the live configuration, for the security team to review.
	proposed, err := s.DevOps.PatchConnection(context.Background(), "ds-generic",
		map[string]any{"token_ttl": map[string]any{"amount": 5, "unit": "minutes"},
			"claim_mappings": map[string]any{"repo": "repository"}, "token_audience": []string{"https://api.acme.example"},
			"single_use": true}, 0)
	if err != nil || proposed.Proposal == nil {
		t.Fatalf("proposing a change through the API: %v (%+v)", err, proposed)
	}

	byName := "data.trustgate_workload_connection.by_name"
	byID := "data.trustgate_workload_connection.by_id"
	discovery := "data.trustgate_workload_connection.discovery"
	prefixed := "data.trustgate_workload_connections.prefixed"
	active := "data.trustgate_workload_connections.active"
	github := "data.trustgate_workload_connections.github"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		Steps: []resource.TestStep{{
			// An auditor key reads everything.
			Config: providerConfig(s, "", s.AuditorKey) + `
data "trustgate_workload_connection" "by_name" {
  name = "ds-github"
}

data "trustgate_workload_connection" "discovery" {
  name = "ds-discovery"
}

data "trustgate_workload_connection" "by_id" {
  id = "` + gh.ID + `"
}

data "trustgate_workload_connections" "prefixed" {
  name_prefix = "ds-"
}

data "trustgate_workload_connections" "active" {
  status = "active"
}

data "trustgate_workload_connections" "github" {
  provider_type = "github"
}
`,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(byName, tfjsonpath.New("id"), knownvalue.StringExact(gh.ID)),
				statecheck.ExpectKnownValue(byName, tfjsonpath.New("description"), knownvalue.StringExact("from acme/app")),
				statecheck.ExpectKnownValue(byName, tfjsonpath.New("provider_type"), knownvalue.StringExact("github")),
				statecheck.ExpectKnownValue(byName, tfjsonpath.New("github"), knownvalue.ObjectExact(map[string]knownvalue.Check{
					"owner_id": knownvalue.StringExact("65"), "owner": knownvalue.StringExact("acme"),
					"repository_id": knownvalue.StringExact("74"), "repository": knownvalue.StringExact("acme/app"),
					"ref": knownvalue.Null(), "environment": knownvalue.Null(), "enterprise_slug": knownvalue.Null(),
					"host": knownvalue.Null(), "audience": knownvalue.Null()})),
				statecheck.ExpectKnownValue(byName, tfjsonpath.New("config_changed_by"), knownvalue.StringExact("devops")),
				statecheck.ExpectKnownValue(byName, tfjsonpath.New("proposal"), knownvalue.Null()),
				statecheck.ExpectKnownValue(byName, tfjsonpath.New("gitlab"), knownvalue.Null()),
				statecheck.ExpectKnownValue(byName, tfjsonpath.New("token_ttl"), knownvalue.ObjectExact(map[string]knownvalue.Check{
					"amount": knownvalue.Int64Exact(20), "unit": knownvalue.StringExact("minutes")})),
				statecheck.ExpectKnownValue(byName, tfjsonpath.New("fingerprint"), knownvalue.StringExact(gh.Fingerprint)),
				statecheck.ExpectKnownValue(byName, tfjsonpath.New("jwks_url_overridden"), knownvalue.Bool(false)),
				statecheck.ExpectKnownValue(byName, tfjsonpath.New("conditions"), knownvalue.ListSizeExact(0)),
				statecheck.ExpectKnownValue(byName, tfjsonpath.New("effective_conditions"), knownvalue.ListSizeExact(len(gh.EffectiveConditions))),
				statecheck.ExpectKnownValue(byName, tfjsonpath.New("created_at"), knownvalue.NotNull()),
				statecheck.ExpectKnownValue(byName, tfjsonpath.New("activated_at"), knownvalue.Null()),
				statecheck.ExpectKnownValue(byName, tfjsonpath.New("issuer_url"), knownvalue.Null()),
				statecheck.ExpectKnownValue(byName, tfjsonpath.New("jwks"), knownvalue.Null()),
				statecheck.ExpectKnownValue(byName, tfjsonpath.New("claim_mappings"), knownvalue.Null()),
				statecheck.ExpectKnownValue(byName, tfjsonpath.New("token_audience"), knownvalue.Null()),
				statecheck.ExpectKnownValue(byName, tfjsonpath.New("single_use"), knownvalue.Bool(false)),
				statecheck.ExpectKnownValue(byID, tfjsonpath.New("name"), knownvalue.StringExact("ds-github")),
				statecheck.ExpectKnownValue(discovery, tfjsonpath.New("issuer_url"), knownvalue.StringExact("https://issuer.example.com")),
				statecheck.ExpectKnownValue(discovery, tfjsonpath.New("jwks_url"), knownvalue.Null()),
				statecheck.ExpectKnownValue(discovery, tfjsonpath.New("jwks"), knownvalue.Null()),
				statecheck.ExpectKnownValue(discovery, tfjsonpath.New("claim_mappings"), knownvalue.MapExact(map[string]knownvalue.Check{
					"repo": knownvalue.StringExact("repository"), "team": knownvalue.StringExact("/workload/team")})),
				statecheck.ExpectKnownValue(discovery, tfjsonpath.New("token_audience"), knownvalue.ListExact([]knownvalue.Check{
					knownvalue.StringExact("https://api.acme.example"), knownvalue.StringExact("https://deploy.acme.example")})),
				statecheck.ExpectKnownValue(discovery, tfjsonpath.New("single_use"), knownvalue.Bool(true)),
				statecheck.ExpectKnownValue(discovery, tfjsonpath.New("fingerprint"), knownvalue.StringExact(discovered.Fingerprint)),
				statecheck.ExpectKnownValue(discovery, tfjsonpath.New("effective_conditions").AtSliceIndex(0), knownvalue.ObjectPartial(map[string]knownvalue.Check{
					"claim": knownvalue.StringExact("iss"), "value": knownvalue.StringExact("https://issuer.example.com")})),
				statecheck.ExpectKnownValue(prefixed, tfjsonpath.New("connections"), knownvalue.ListSizeExact(3)),
				statecheck.ExpectKnownValue(active, tfjsonpath.New("connections"), knownvalue.ListExact([]knownvalue.Check{
					knownvalue.ObjectPartial(map[string]knownvalue.Check{
						"name": knownvalue.StringExact("ds-generic"), "status": knownvalue.StringExact("active"),
						"activated_by": knownvalue.StringExact("security"), "conditions": knownvalue.ListSizeExact(2),
						// Live: 15 minutes; the proposal: 5.
						"token_ttl":   knownvalue.ObjectExact(map[string]knownvalue.Check{"amount": knownvalue.Int64Exact(15), "unit": knownvalue.StringExact("minutes")}),
						"fingerprint": knownvalue.StringExact(proposed.Fingerprint),
						// Live: none of the token shape; the proposal: some.
						"claim_mappings": knownvalue.Null(), "token_audience": knownvalue.Null(), "single_use": knownvalue.Bool(false),
						"proposal": knownvalue.ObjectPartial(map[string]knownvalue.Check{
							"fingerprint":          knownvalue.StringExact(proposed.Proposal.Fingerprint),
							"proposed_by":          knownvalue.StringExact("devops"),
							"proposed_at":          knownvalue.NotNull(),
							"jwks_url":             knownvalue.StringExact("https://issuer.example.com/.well-known/jwks.json"),
							"effective_conditions": knownvalue.ListSizeExact(2),
							"config": knownvalue.ObjectPartial(map[string]knownvalue.Check{
								"name":           knownvalue.StringExact("ds-generic"),
								"provider_type":  knownvalue.StringExact("generic"),
								"jwks_url":       knownvalue.StringExact("https://issuer.example.com/.well-known/jwks.json"),
								"github":         knownvalue.Null(),
								"token_ttl":      knownvalue.ObjectExact(map[string]knownvalue.Check{"amount": knownvalue.Int64Exact(5), "unit": knownvalue.StringExact("minutes")}),
								"conditions":     knownvalue.ListSizeExact(2),
								"claim_mappings": knownvalue.MapExact(map[string]knownvalue.Check{"repo": knownvalue.StringExact("repository")}),
								"token_audience": knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("https://api.acme.example")}),
								"single_use":     knownvalue.Bool(true),
								"issuer_url":     knownvalue.Null(),
								"jwks":           knownvalue.Null(),
							}),
						}),
					}),
				})),
				statecheck.ExpectKnownValue(github, tfjsonpath.New("connections"), knownvalue.ListExact([]knownvalue.Check{
					knownvalue.ObjectPartial(map[string]knownvalue.Check{"name": knownvalue.StringExact("ds-github")}),
				})),
			},
		}},
	})
}
