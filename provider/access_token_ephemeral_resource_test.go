package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"

	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
)

// tokenOutsideEcho is a state check: the echo resource holds the access token (that is how a test
// sees ephemeral data), and no other resource, nor any trustgate_access_token, appears in state
// with it. It also proves the token works by asking the server who it is.
type tokenOutsideEcho struct {
	t *testing.T
	s *testkit.Server
}

func (c tokenOutsideEcho) CheckState(ctx context.Context, req statecheck.CheckStateRequest, resp *statecheck.CheckStateResponse) {
	if req.State == nil || req.State.Values == nil {
		resp.Error = fmt.Errorf("no state")
		return
	}
	var token string
	var others []any
	for _, r := range req.State.Values.RootModule.Resources {
		if strings.HasPrefix(r.Type, "trustgate_access_token") {
			resp.Error = fmt.Errorf("the ephemeral resource %s is in state", r.Address)
			return
		}
		if r.Type == "echo" {
			data, _ := r.AttributeValues["data"].(map[string]any)
			token, _ = data["access_token"].(string)
			continue
		}
		others = append(others, r.AttributeValues)
	}
	if token == "" {
		resp.Error = fmt.Errorf("echo.test.data has no access_token")
		return
	}
	b, _ := json.Marshal(others)
	if strings.Contains(string(b), token) {
		resp.Error = fmt.Errorf("the access token was written to the state of a trustgate resource")
		return
	}
	who, err := c.s.Client(c.t, token).Whoami(ctx)
	if err != nil {
		resp.Error = fmt.Errorf("the access token does not work: %v", err)
		return
	}
	if who.Kind != "workload" || who.Connection != "acc-token" || who.Sub != "workload:acc" {
		resp.Error = fmt.Errorf("whoami with the access token = %+v", who)
	}
}

func TestAccAccessToken_exchangesACIJWTAndKeepsTheTokenOutOfState(t *testing.T) {
	s := accServer(t)
	iss := ciissuer.Start(t, devissuer.Options{})
	jwt := iss.MustMint(t, "generic", map[string]any{"aud": "trustgate-acc", "sub": "workload:acc"})

	// The connection is set up through the API by both teams. (Aliased provider blocks with two
	// keys do not work in-process: every alias reaches the same provider server.)
	in := genericInput("acc-token")
	in.JWKSURL = iss.JWKSURL
	in.Conditions[0].Value = &iss.URL
	s.CreateActive(t, in)

	// A CI run needs no API key for the exchange: only the endpoint.
	cfg := fmt.Sprintf(`
provider "trustgate" {
  endpoint = %q
}

ephemeral "trustgate_access_token" "ci" {
  connection_name = "acc-token"
  subject_token   = %q
}

provider "echo" {
  data = ephemeral.trustgate_access_token.ci
}

resource "echo" "test" {}
`, s.URL, jwt)

	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{needsMinTerraform(t, "the ephemeral resource trustgate_access_token")},
		ProtoV6ProviderFactories: providerFactoriesWithEcho,
		Steps: []resource.TestStep{
			{
				Config: cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("echo.test", tfjsonpath.New("data").AtMapKey("token_type"), knownvalue.StringExact("Bearer")),
					statecheck.ExpectKnownValue("echo.test", tfjsonpath.New("data").AtMapKey("access_token"), knownvalue.StringRegexp(jwtShape)),
					statecheck.ExpectKnownValue("echo.test", tfjsonpath.New("data").AtMapKey("expires_at"), knownvalue.NotNull()),
					tokenOutsideEcho{t: t, s: s},
				},
			},
		},
	})
}

var jwtShape = regexp.MustCompile(`^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`)

// audienceOfEcho is a state check: the access token the echo resource holds verifies against the
// server's keys with aud exactly audience (not the public URL), and carries the mapped claims.
type audienceOfEcho struct {
	t        *testing.T
	s        *testkit.Server
	audience string
	claims   map[string]any
}

func (c audienceOfEcho) CheckState(_ context.Context, req statecheck.CheckStateRequest, resp *statecheck.CheckStateResponse) {
	var token string
	for _, r := range req.State.Values.RootModule.Resources {
		if r.Type == "echo" {
			data, _ := r.AttributeValues["data"].(map[string]any)
			token, _ = data["access_token"].(string)
		}
	}
	if token == "" {
		resp.Error = fmt.Errorf("echo.test.data has no access_token")
		return
	}
	claims := c.s.VerifyAccessFor(c.t, token, c.audience)
	if got := []string(claims.Audience); len(got) != 1 || got[0] != c.audience {
		resp.Error = fmt.Errorf("aud = %v, want exactly [%q]", got, c.audience)
		return
	}
	got, _ := json.Marshal(claims.Claims)
	want, _ := json.Marshal(c.claims)
	if string(got) != string(want) {
		resp.Error = fmt.Errorf("claims = %s, want %s (claim_mappings)", got, want)
	}
}

// The audience argument is the RFC 8693 audience parameter: the token carries that audience (one
// of the connection's token_audience), and one the connection does not list is refused.
func TestAccAccessToken_audienceSelectsOneOfTheConnectionsTokenAudiences(t *testing.T) {
	s := accServer(t)
	iss := ciissuer.Start(t, devissuer.Options{})
	jwt := iss.MustMint(t, "generic", map[string]any{"aud": "trustgate-acc", "sub": "workload:acc", "repository": "acme/app"})

	in := genericInput("acc-audience")
	in.JWKSURL = iss.JWKSURL
	in.Conditions[0].Value = &iss.URL
	in.TokenAudience = []string{"https://api.acme.example", "https://deploy.acme.example"}
	in.ClaimMappings = map[string]string{"repo": "repository"}
	s.CreateActive(t, in)

	cfg := func(audience string) string {
		return fmt.Sprintf(`
provider "trustgate" {
  endpoint = %q
}

ephemeral "trustgate_access_token" "ci" {
  connection_name = "acc-audience"
  subject_token   = %q
  audience        = %q
}

provider "echo" {
  data = ephemeral.trustgate_access_token.ci
}

resource "echo" "test" {}
`, s.URL, jwt, audience)
	}
	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{needsMinTerraform(t, "the ephemeral resource trustgate_access_token")},
		ProtoV6ProviderFactories: providerFactoriesWithEcho,
		// The refusal comes first: the test's final destroy runs the last configuration again.
		Steps: []resource.TestStep{
			{
				Config:      cfg("https://elsewhere.example"),
				ExpectError: regexp.MustCompile(`(?s)Trustgate refused the token exchange.*invalid_target.*token_audience`),
			},
			{
				Config: cfg("https://deploy.acme.example"),
				ConfigStateChecks: []statecheck.StateCheck{
					audienceOfEcho{t: t, s: s, audience: "https://deploy.acme.example", claims: map[string]any{"repo": "acme/app"}},
				},
			},
		},
	})
}
