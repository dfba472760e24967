package provider

import (
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// Field rules the provider checks before anything reaches the server: each configuration fails at
// plan time with an error that names the rule.
func TestAccWorkloadConnection_planTimeValidation(t *testing.T) {
	s := accServer(t)
	prov := providerConfig(s, "", s.DevOpsKey)
	github := "\n  github {\n    owner_id = \"65\"\n  }\n"
	tests := []struct {
		name   string
		body   string
		expect string
	}{
		{"name with capitals", `name = "Deploy"` + github, `(?s)Invalid Attribute Value Match.*lowercase letters`},
		{"name ending in a hyphen", `name = "deploy-"` + github, `lowercase letters, digits and hyphens`},
		{"name too long", `name = "` + longName + `"` + github, `lowercase letters, digits and hyphens`},
		{"unknown operator", `name = "v"` + github + `
  condition {
    claim    = "ref"
    operator = "matches"
    value    = "x"
  }`, `(?s)operator.*value must be one of`},
		{"equals without value", `name = "v"` + github + `
  condition {
    claim    = "ref"
    operator = "equals"
  }`, `operator "equals" needs value`},
		{"equals with values", `name = "v"` + github + `
  condition {
    claim    = "ref"
    operator = "equals"
    value    = "a"
    values   = ["a"]
  }`, `values is only for operator "one_of"`},
		{"one_of with value", `name = "v"` + github + `
  condition {
    claim    = "ref"
    operator = "one_of"
    value    = "a"
  }`, `operator "one_of" takes values`},
		{"one_of with an empty list", `name = "v"` + github + `
  condition {
    claim    = "ref"
    operator = "one_of"
    values   = []
  }`, `(?s)values.*list must contain at least 1`},
		{"exists with value", `name = "v"` + github + `
  condition {
    claim    = "ref"
    operator = "exists"
    value    = "a"
  }`, `operator "exists" takes no value`},
		{"starts_with empty", `name = "v"` + github + `
  condition {
    claim    = "ref"
    operator = "starts_with"
    value    = ""
  }`, `starts_with needs a non-empty value`},
		{"ttl below a minute", `name = "v"
  token_ttl = { amount = 59, unit = "seconds" }` + github, `(?s)Token TTL out of range.*59 seconds`},
		{"ttl above a day", `name = "v"
  token_ttl = { amount = 25, unit = "hours" }` + github, `(?s)Token TTL out of range.*25 hours`},
		{"ttl unknown unit", `name = "v"
  token_ttl = { amount = 1, unit = "days" }` + github, `(?s)unit.*value must be one of`},
		{"ttl zero amount", `name = "v"
  token_ttl = { amount = 0, unit = "hours" }` + github, `(?s)amount.*must be at least 1`},
		{"two preset blocks", `name = "v"` + github + `
  gitlab {
    domain = "gitlab.com"
    group  = "acme"
  }`, `(?s)Invalid Attribute Combination.*cannot be configured together`},
		{"github without owner_id", `name = "v"
  github {
    owner      = "acme"
    repository = "acme/app"
  }`, `(?s)Invalid Attribute Combination.*github.owner_id`},
		{"github owner_id that is a name", `name = "v"
  github {
    owner_id = "acme"
  }`, `(?s)owner_id.*must\s+be\s+the\s+owner's\s+numeric\s+id`},
		{"github repository_id with a sign", `name = "v"
  github {
    owner_id      = "65"
    repository_id = "-74"
  }`, `(?s)repository_id.*the\s+repository's\s+numeric\s+id`},
		{"github empty repository_id", `name = "v"
  github {
    owner_id      = "65"
    repository_id = ""
  }`, `(?s)repository_id.*string\s+length\s+must\s+be\s+at\s+least\s+1`},
		{"github host with a scheme", `name = "v"
  github {
    owner_id = "65"
    host     = "https://github.acme.example"
  }`, `(?s)Invalid host.*github.host\s+must\s+be\s+a\s+host\s+name.*without\s+scheme`},
		{"github host in capitals", `name = "v"
  github {
    owner_id = "65"
    host     = "GitHub.Acme.Example"
  }`, `(?s)Invalid host.*must\s+be\s+lowercase`},
		{"gitlab domain with a path", `name = "v"
  gitlab {
    domain = "gitlab.example.com/acme"
    group  = "acme"
  }`, `(?s)Invalid host.*gitlab.domain`},
		{"gitlab project_id that is a path", `name = "v"
  gitlab {
    domain     = "gitlab.com"
    project_id = "acme/app"
  }`, `(?s)project_id.*the\s+project's\s+numeric\s+id`},
		{"generic without jwks_url", `name = "v"`, `Missing jwks_url for a generic connection`},
		{"empty optional preset input", `name = "v"
  github {
    owner_id = "65"
    ref      = ""
  }`, `(?s)ref.*string length must be at least 1`},
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
}

const longName = "a123456789012345678901234567890123456789012345678901234567890123" // 64 characters

func TestAccProvider_configurationErrorsSayWhatToSet(t *testing.T) {
	s := accServer(t)
	t.Setenv(EnvEndpoint, "")
	t.Setenv(EnvAPIKey, "")
	resourceCfg := `
resource "trustgate_workload_connection" "test" {
  name = "acc-provider"
  github {
    owner_id = "65"
  }
}`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		Steps: []resource.TestStep{
			{
				Config:      "provider \"trustgate\" {}\n" + resourceCfg,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Missing Trustgate endpoint.*TRUSTGATE_ENDPOINT`),
			},
			{
				Config:      "provider \"trustgate\" {\n  endpoint = \"" + s.URL + "\"\n}\n" + resourceCfg,
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Missing Trustgate API key.*TRUSTGATE_API_KEY`),
			},
			{
				Config:      providerConfig(s, "", "tg_not_a_real_key") + resourceCfg,
				ExpectError: regexp.MustCompile(`(?s)Trustgate rejected the API key.*401`),
			},
		},
	})
}

// The environment variables stand in for the provider block.
func TestAccProvider_readsEndpointAndKeyFromTheEnvironment(t *testing.T) {
	s := accServer(t)
	t.Setenv(EnvEndpoint, s.URL)
	t.Setenv(EnvAPIKey, s.DevOpsKey)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		CheckDestroy:             checkGone(s, "acc-env"),
		Steps: []resource.TestStep{{
			Config: `
resource "trustgate_workload_connection" "test" {
  name = "acc-env"
  github {
    owner_id = "65"
  }
}`,
		}},
	})
}
