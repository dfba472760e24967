package provider

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
)

// The documentation examples (examples/provider, resources, data-sources, ephemeral-resources) are
// the provider's front page: they must be in `terraform fmt` style and must work. The acceptance
// test below applies each of them against a real server.

var exampleDirs = []string{"provider", "resources", "data-sources", "ephemeral-resources"}

func readExample(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "examples", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestExamplesAreTerraformFmtClean(t *testing.T) {
	tf, err := exec.LookPath("terraform")
	if err != nil {
		t.Skipf("no terraform on PATH: install Terraform ≥ %s to check the examples' formatting", minTerraform)
	}
	var files int
	for _, d := range exampleDirs {
		_ = filepath.WalkDir(filepath.Join("..", "examples", d), func(p string, e os.DirEntry, err error) error {
			if err == nil && !e.IsDir() && strings.HasSuffix(p, ".tf") {
				files++
			}
			return err
		})
	}
	if files < 8 {
		t.Fatalf("found only %d example .tf files: the examples tree moved?", files)
	}
	args := []string{"fmt", "-check", "-recursive", "-diff"}
	for _, d := range exampleDirs {
		args = append(args, filepath.Join("..", "examples", d))
	}
	cmd := exec.Command(tf, args...)
	cmd.Env = append(os.Environ(), "CHECKPOINT_DISABLE=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Errorf("terraform fmt -check failed (%v): run `terraform fmt -recursive examples/`\n%s", err, out.String())
	}
}

func TestAccExamples_platformWorkspaceExamplesApply(t *testing.T) {
	s := accServer(t)
	providerExample := readExample(t, "provider/provider.tf")
	// The provider example with the test server's endpoint in place of the illustrative one.
	provider := strings.Replace(providerExample, "https://trustgate.example.com", s.URL, 1)
	if provider == providerExample {
		t.Fatal("examples/provider/provider.tf no longer names https://trustgate.example.com")
	}
	// resource.tf and the examples of single arguments beside it (resource-*.tf), as the docs show them.
	connections := readExample(t, "resources/trustgate_workload_connection/resource.tf")
	more, err := filepath.Glob(filepath.Join("..", "examples", "resources", "trustgate_workload_connection", "resource-*.tf"))
	if err != nil || len(more) < 3 {
		t.Fatalf("the examples of single arguments are missing: %v %v", more, err)
	}
	for _, f := range more {
		connections += "\n" + readExample(t, strings.TrimPrefix(filepath.ToSlash(f), "../examples/"))
	}
	importBlock := readExample(t, "resources/trustgate_workload_connection/import-by-string-id.tf")
	vars := config.Variables{"trustgate_api_key": config.StringVariable(s.DevOpsKey)}
	deploy := "trustgate_workload_connection.deploy"
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: providerFactories,
		CheckDestroy:             checkGone(s, "github-deploy"),
		Steps: []resource.TestStep{
			{
				Config:          provider + connections,
				ConfigVariables: vars,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(deploy, tfjsonpath.New("status"), knownvalue.StringExact("draft")),
					statecheck.ExpectKnownValue("trustgate_workload_connection.buildkite", tfjsonpath.New("provider_type"), knownvalue.StringExact("generic")),
					statecheck.ExpectKnownValue("trustgate_workload_connection.google", tfjsonpath.New("provider_type"), knownvalue.StringExact("google_cloud")),
					statecheck.ExpectKnownValue(deploy, tfjsonpath.New("claim_mappings").AtMapKey("workflow"), knownvalue.StringExact("workflow_ref")),
					statecheck.ExpectKnownValue(deploy, tfjsonpath.New("token_audience"), knownvalue.ListSizeExact(2)),
					statecheck.ExpectKnownValue("trustgate_workload_connection.keycloak", tfjsonpath.New("effective_conditions").AtSliceIndex(0),
						knownvalue.ObjectPartial(map[string]knownvalue.Check{"claim": knownvalue.StringExact("iss"), "value": knownvalue.StringExact("https://sso.acme.example/realms/ci")})),
					statecheck.ExpectKnownValue("trustgate_workload_connection.ghes", tfjsonpath.New("jwks_url"), knownvalue.Null()),
					statecheck.ExpectKnownValue("trustgate_workload_connection.releases", tfjsonpath.New("single_use"), knownvalue.Bool(true)),
				},
			},
			{
				// import.sh's two forms.
				ResourceName: deploy, ImportState: true, ImportStateId: "github-deploy", ImportStateVerify: true,
				ConfigVariables: vars, Config: provider + connections,
			},
			{
				// import-by-string-id.tf: an import block by name into a fresh state.
				ResourceName: deploy, ImportState: true, ImportStateKind: resource.ImportBlockWithID,
				ImportStateId:   "github-deploy",
				ConfigVariables: vars, Config: provider + connections,
			},
			{
				// The import block as written in the example, kept in the configuration of the
				// workspace that already manages the connection: nothing to do.
				Config:          provider + connections + importBlock,
				ConfigVariables: vars,
				PlanOnly:        true,
			},
		},
	})
}

func TestAccExamples_securityWorkspaceAndCIExamplesApply(t *testing.T) {
	s := accServer(t)
	// The platform team's github-deploy, here a generic connection trusting a local dev issuer so
	// that the CI example can really exchange a token with it.
	iss := ciissuer.Start(t, devissuer.Options{})
	in := genericInput("github-deploy")
	in.JWKSURL = iss.JWKSURL
	in.Conditions[0].Value = &iss.URL
	in.TokenAudience = []string{"https://deploy.acme.example", "https://registry.acme.example"} // as in resource.tf
	conn := s.CreateDraft(t, in)
	jwt := iss.MustMint(t, "generic", map[string]any{"aud": "trustgate-acc"})

	provider := strings.Replace(readExample(t, "provider/provider.tf"), "https://trustgate.example.com", s.URL, 1)
	security := provider + readExample(t, "resources/trustgate_workload_connection_activation/resource.tf")
	// The data sources are read before the activation is applied, so they are added once it is
	// (in one step their outputs would change on the next plan, as they would in real life).
	review := readExample(t, "data-sources/trustgate_workload_connection/data-source.tf") +
		readExample(t, "data-sources/trustgate_workload_connections/data-source.tf")
	vars := config.Variables{
		"trustgate_api_key":    config.StringVariable(s.SecurityKey),
		"approved_fingerprint": config.StringVariable(conn.Fingerprint),
	}
	// provider.tf's terraform block stops the test framework from declaring providers itself,
	// so the echo provider is added to it, under the namespace the test providers are served at.
	withEcho := strings.Replace(security, "    trustgate = {", fmt.Sprintf("    echo = {\n      source = %q\n    }\n    trustgate = {",
		os.Getenv(resource.EnvTfAccProviderNamespace)+"/echo"), 1)
	ci := readExample(t, "ephemeral-resources/trustgate_access_token/ephemeral-resource.tf") + `
provider "echo" {
  data = ephemeral.trustgate_access_token.deploy
}

resource "echo" "test" {}
`
	ciVars := config.Variables{
		"trustgate_api_key":    config.StringVariable(s.SecurityKey),
		"approved_fingerprint": config.StringVariable(conn.Fingerprint),
		"ci_id_token":          config.StringVariable(jwt),
	}
	act := "trustgate_workload_connection_activation.deploy"
	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{needsMinTerraform(t, "the CI example uses the ephemeral resource trustgate_access_token")},
		ProtoV6ProviderFactories: providerFactoriesWithEcho,
		CheckDestroy:             expectStatus(t, s, "github-deploy", api.StatusInactive),
		Steps: []resource.TestStep{
			{
				Config:          security,
				ConfigVariables: vars,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(act, tfjsonpath.New("status"), knownvalue.StringExact("active")),
				},
			},
			{
				Config:          security + review,
				ConfigVariables: vars,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("data.trustgate_workload_connection.review", tfjsonpath.New("status"), knownvalue.StringExact("active")),
					statecheck.ExpectKnownValue("data.trustgate_workload_connections.drafts", tfjsonpath.New("connections"), knownvalue.ListSizeExact(0)),
					statecheck.ExpectKnownValue("data.trustgate_workload_connections.github", tfjsonpath.New("connections"), knownvalue.ListSizeExact(0)),
				},
			},
			{
				ResourceName: act, ImportState: true, ImportStateId: "github-deploy", ImportStateVerify: true,
				ImportStateVerifyIdentifierAttribute: "connection_name",
				ImportStateVerifyIgnore:              []string{"approved_fingerprint"},
				Config:                               security, ConfigVariables: vars,
			},
			{
				Config:          withEcho + review + ci,
				ConfigVariables: ciVars,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("echo.test", tfjsonpath.New("data").AtMapKey("access_token"), knownvalue.StringRegexp(jwtShape)),
					statecheck.ExpectKnownValue("echo.test", tfjsonpath.New("data").AtMapKey("connection_name"), knownvalue.StringExact("github-deploy")),
					// The example's audience, alone in aud.
					audienceOfEcho{t: t, s: s, audience: "https://deploy.acme.example"},
				},
			},
		},
	})
}
