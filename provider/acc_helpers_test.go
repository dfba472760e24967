package provider

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/echoprovider"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
)

// TestMain pins the Terraform CLI the acceptance tests use: the one on PATH (terraform-plugin-testing
// would otherwise try to download one), with no checkpoint call, and makes the test provider answer
// to the registry address of the examples (registry.terraform.io/trustgate/trustgate).
func TestMain(m *testing.M) {
	cleanup := func() {}
	if os.Getenv(resource.EnvTfAcc) != "" {
		if os.Getenv("TF_ACC_TERRAFORM_PATH") == "" {
			tf, err := exec.LookPath("terraform")
			if err != nil {
				fmt.Fprintln(os.Stderr, "TF_ACC is set but no terraform is on PATH: install Terraform ≥ "+minTerraform.String()+
					" (or build one: GOBIN=DIR go install github.com/hashicorp/terraform@v1.5.7, on which the "+
					"tests that need "+minTerraform.String()+" skip and say so), or set TF_ACC_TERRAFORM_PATH.")
				os.Exit(1)
			}
			_ = os.Setenv("TF_ACC_TERRAFORM_PATH", tf)
		}
		_ = os.Setenv("CHECKPOINT_DISABLE", "1")
		if cli := os.Getenv("TF_CLI_CONFIG_FILE"); cli == "" || !exists(cli) {
			// An empty CLI configuration: no warning about a missing file, no dev_overrides leaking in.
			f, err := os.CreateTemp("", "trustgate-acc-*.tfrc")
			if err == nil {
				_ = f.Close()
				cleanup = func() { _ = os.Remove(f.Name()) }
				_ = os.Setenv("TF_CLI_CONFIG_FILE", f.Name())
			}
		}
		if os.Getenv(resource.EnvTfAccProviderNamespace) == "" {
			_ = os.Setenv(resource.EnvTfAccProviderNamespace, "trustgate")
		}
	}
	code := m.Run()
	cleanup()
	os.Exit(code)
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// providerFactories serves this provider (and, for ephemeral checks, the echo provider) in-process.
// Every Terraform command gets a fresh provider instance. All aliases of one command share it, so a
// test configuration uses one API key: two keys mean two configurations (as in real workspaces).
var providerFactories = map[string]func() (tfprotov6.ProviderServer, error){
	"trustgate": newTestProviderServer,
}

var providerFactoriesWithEcho = map[string]func() (tfprotov6.ProviderServer, error){
	"trustgate": newTestProviderServer,
	"echo":      echoprovider.NewProviderServer(),
}

func newTestProviderServer() (tfprotov6.ProviderServer, error) {
	return providerserver.NewProtocol6WithError(New("test")())()
}

// accServer skips unless TF_ACC is set, then starts a real Trustgate server for the test.
func accServer(t *testing.T) *testkit.Server {
	t.Helper()
	if os.Getenv(resource.EnvTfAcc) == "" {
		t.Skipf("acceptance test: set %s=1 (make testacc) to run it against a real server and terraform", resource.EnvTfAcc)
	}
	return testkit.Start(t)
}

// providerConfig is a provider block for key; alias may be empty.
func providerConfig(s *testkit.Server, alias, key string) string {
	a := ""
	if alias != "" {
		a = fmt.Sprintf("  alias    = %q\n", alias)
	}
	return fmt.Sprintf("provider \"trustgate\" {\n%s  endpoint = %q\n  api_key  = %q\n}\n", a, s.URL, key)
}

// genericInput is a valid generic connection for tests that set up a connection through the API
// (nothing is exchanged through it).
func genericInput(name string) api.ConnectionInput {
	in := testkit.GenericInput(name, "https://issuer.example.com", "https://issuer.example.com/.well-known/jwks.json", "trustgate-acc")
	in.TokenTTL = &api.TokenTTL{Amount: 15, Unit: api.UnitMinutes}
	return in
}

// mustGet reads a connection through the API with the auditor key.
func mustGet(t *testing.T, s *testkit.Server, ref string) *api.Connection {
	t.Helper()
	c, err := s.Auditor.GetConnection(t.Context(), ref)
	if err != nil {
		t.Fatalf("reading %s through the API: %v", ref, err)
	}
	return c
}

// minTerraform is the oldest Terraform the provider supports: ephemeral resources need 1.10.
var minTerraform = tfversion.Version1_10_0

// needsMinTerraform skips the test on a Terraform older than minTerraform, naming the test and
// why it needs it, so that a run on an older Terraform (.ci/run's fallback) says what it skipped.
func needsMinTerraform(t *testing.T, why string) tfversion.TerraformVersionCheck {
	return namedSkipBelow{t: t, why: why}
}

type namedSkipBelow struct {
	t   *testing.T
	why string
}

func (c namedSkipBelow) CheckTerraformVersion(ctx context.Context, req tfversion.CheckTerraformVersionRequest, resp *tfversion.CheckTerraformVersionResponse) {
	tfversion.SkipBelow(minTerraform).CheckTerraformVersion(ctx, req, resp)
	if resp.Skip != "" {
		resp.Skip = fmt.Sprintf("%s skipped: it needs Terraform ≥ %s (%s) and this is Terraform %s",
			c.t.Name(), minTerraform, c.why, req.TerraformVersion)
	}
}

// On a Terraform older than the minimum (.ci/run's 1.5.7 fallback), a test that needs it skips
// and the reason names the test, what needs the minimum and the Terraform found; from the minimum
// on, it runs.
func TestNeedsMinTerraformNamesTheSkippedTest(t *testing.T) {
	check := needsMinTerraform(t, "the ephemeral resource trustgate_access_token")
	for _, tc := range []struct {
		req  tfversion.CheckTerraformVersionRequest
		skip bool
	}{
		{tfversion.CheckTerraformVersionRequest{TerraformVersion: tfversion.Version1_5_0}, true},
		{tfversion.CheckTerraformVersionRequest{TerraformVersion: tfversion.Version1_9_0}, true},
		{tfversion.CheckTerraformVersionRequest{TerraformVersion: minTerraform}, false},
		{tfversion.CheckTerraformVersionRequest{TerraformVersion: tfversion.Version1_11_0}, false},
	} {
		var resp tfversion.CheckTerraformVersionResponse
		check.CheckTerraformVersion(context.Background(), tc.req, &resp)
		if !tc.skip {
			if resp.Skip != "" {
				t.Errorf("Terraform %s: skipped (%s), want it to run", tc.req.TerraformVersion, resp.Skip)
			}
			continue
		}
		for _, want := range []string{t.Name(), "Terraform ≥ 1.10.0", "ephemeral resource", "Terraform " + tc.req.TerraformVersion.String()} {
			if !strings.Contains(resp.Skip, want) {
				t.Errorf("Terraform %s: skip reason %q does not say %q", tc.req.TerraformVersion, resp.Skip, want)
			}
		}
	}
}
