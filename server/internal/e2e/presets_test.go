package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
)

// presetCase is one provider type: the connection to create, the token shape and claims that
// satisfy it, and one mutation per claim the connection scopes on.
type presetCase struct {
	name      string
	shape     string
	input     func(e *env) api.ConnectionInput
	claims    func(e *env) map[string]any // overrides of the shape's template
	sub       string                      // the identity claim's value
	sourceIss string
	// scope maps a description to a one-claim override that must be refused; secret is the
	// expected value the error_description must not reveal.
	scope []scopeMutation
}

type scopeMutation struct {
	claim  string
	value  any
	secret string
}

const (
	circleOrg     = "01234567-89ab-cdef-0123-456789abcdef"
	circleProject = "abcdef01-2345-6789-abcd-ef0123456789"
	circleContext = "11111111-2222-3333-4444-555555555555"
	googleEmail   = "deployer@my-project.iam.gserviceaccount.com"
	googleAccount = "112233445566778899000"
	googleClient  = "trustgate-e2e-client"
)

func presetCases() []presetCase {
	return []presetCase{
		{
			name:  "github",
			shape: "github",
			input: func(e *env) api.ConnectionInput {
				in := testkit.GitHubInput("gh-deploy", e.iss.JWKSURL)
				in.GitHub.Environment = "prod"
				in.TokenTTL = &api.TokenTTL{Amount: 10, Unit: api.UnitMinutes}
				return in
			},
			// The GitHub shape carries iss https://token.actions.githubusercontent.com already;
			// the audience defaults to the server's.
			claims:    func(e *env) map[string]any { return map[string]any{"aud": e.URL} },
			sub:       "repo:octo-org/octo-repo:environment:prod",
			sourceIss: "https://token.actions.githubusercontent.com",
			scope: []scopeMutation{
				{"iss", "https://token.actions.githubusercontent.com/other-enterprise", "https://token.actions.githubusercontent.com"},
				{"aud", "https://github.com/octo-org", ""},
				{"repository_owner", "evil-org", "octo-org"},
				{"repository_owner_id", "66", "65"},
				{"repository", "octo-org/other-repo", "octo-org/octo-repo"},
				{"ref", "refs/heads/feature", "refs/heads/main"},
				{"environment", "staging", "prod"},
			},
		},
		{
			name:  "gitlab",
			shape: "gitlab",
			input: func(e *env) api.ConnectionInput {
				return api.ConnectionInput{Name: "gl-deploy", ProviderType: api.ProviderGitLab, JWKSURL: e.iss.JWKSURL,
					GitLab: &api.GitLabSettings{Domain: "gitlab.example.com", Group: "my-group",
						ProjectPath: "my-group/my-project", ProjectID: "20"},
					// runner_id is a JSON number in GitLab tokens, ref_protected the string "true".
					Conditions: []api.Condition{
						{Claim: "runner_id", Operator: api.OpEquals, Value: ptr("1")},
						{Claim: "ref_protected", Operator: api.OpEquals, Value: ptr("true")},
					},
					TokenTTL: &api.TokenTTL{Amount: 1, Unit: api.UnitHours}}
			},
			claims:    func(e *env) map[string]any { return map[string]any{"aud": e.URL} },
			sub:       "project_path:my-group/my-project:ref_type:branch:ref:main",
			sourceIss: "https://gitlab.example.com",
			scope: []scopeMutation{
				{"iss", "https://gitlab.com", "https://gitlab.example.com"},
				{"aud", "https://other.example.com", ""},
				{"project_path", "other-group/my-project", "my-group/my-project"},
				{"project_path", "my-group/other-project", "my-group/my-project"},
				{"project_id", "21", "20"},
				{"runner_id", json.Number("2"), ""},
				{"ref_protected", "false", ""},
			},
		},
		{
			name:  "circleci",
			shape: "circleci",
			input: func(e *env) api.ConnectionInput {
				return api.ConnectionInput{Name: "circle-deploy", ProviderType: api.ProviderCircleCI, JWKSURL: e.iss.JWKSURL,
					CircleCI: &api.CircleCISettings{OrganizationID: circleOrg, ProjectID: circleProject},
					// context-ids is an array (any element matches); ssh-rerun a boolean.
					Conditions: []api.Condition{
						{Claim: "oidc.circleci.com/context-ids", Operator: api.OpEquals, Value: ptr(circleContext)},
						{Claim: "oidc.circleci.com/ssh-rerun", Operator: api.OpEquals, Value: ptr("false")},
					},
					TokenTTL: &api.TokenTTL{Amount: 90, Unit: api.UnitSeconds}}
			},
			// The shape's iss and aud are the organization's already.
			claims: func(e *env) map[string]any {
				return map[string]any{"oidc.circleci.com/context-ids": []any{"99999999-0000-0000-0000-000000000000", circleContext}}
			},
			sub:       "org/" + circleOrg + "/project/" + circleProject + "/user/fedcba98-7654-3210-fedc-ba9876543210/vcs-origin/github.com/acme/app/vcs-ref/refs/heads/main",
			sourceIss: "https://oidc.circleci.com/org/" + circleOrg,
			scope: []scopeMutation{
				{"iss", "https://oidc.circleci.com/org/99999999-89ab-cdef-0123-456789abcdef", "https://oidc.circleci.com/org/" + circleOrg},
				{"aud", "99999999-89ab-cdef-0123-456789abcdef", circleOrg},
				{"oidc.circleci.com/project-id", "99999999-2345-6789-abcd-ef0123456789", circleProject},
				{"oidc.circleci.com/context-ids", []any{"99999999-0000-0000-0000-000000000000"}, circleContext},
				{"oidc.circleci.com/ssh-rerun", true, ""},
			},
		},
		{
			name:  "google_cloud",
			shape: "google",
			input: func(e *env) api.ConnectionInput {
				return api.ConnectionInput{Name: "gcp-deploy", ProviderType: api.ProviderGoogleCloud, JWKSURL: e.iss.JWKSURL,
					GoogleCloud: &api.GoogleCloudSettings{ClientID: googleClient, Email: googleEmail, AccountID: googleAccount},
					// A JSON pointer into the nested compute_engine object; the workload is named
					// by its service account e-mail.
					Conditions: []api.Condition{
						{Claim: "/google/compute_engine/project_id", Operator: api.OpEquals, Value: ptr("my-project")},
						{Claim: "/google/compute_engine/project_number", Operator: api.OpEquals, Value: ptr("123456789012")},
					},
					IdentityClaim: "email",
					TokenTTL:      &api.TokenTTL{Amount: 2, Unit: api.UnitHours}}
			},
			claims:    func(e *env) map[string]any { return map[string]any{"aud": googleClient} },
			sub:       googleEmail,
			sourceIss: "https://accounts.google.com",
			scope: []scopeMutation{
				{"iss", "https://accounts.google.com.evil.example", "https://accounts.google.com"},
				{"aud", "https://trustgate.example.com", googleClient},
				{"email", "other@my-project.iam.gserviceaccount.com", googleEmail},
				{"email_verified", false, ""},
				{"sub", "998877665544332211000", googleAccount},
				{"/google/compute_engine/project_id", "other-project", "my-project"},
				{"/google/compute_engine/project_number", json.Number("123456789013"), "123456789012"},
			},
		},
		{
			name:  "generic",
			shape: "generic",
			input: func(e *env) api.ConnectionInput {
				return api.ConnectionInput{Name: "generic-deploy", ProviderType: api.ProviderGeneric, JWKSURL: e.iss.JWKSURL,
					Conditions: []api.Condition{
						{Claim: "iss", Operator: api.OpEquals, Value: ptr(e.iss.URL)},
						{Claim: "aud", Operator: api.OpOneOf, Values: []string{"https://a.example.com", e.URL}},
						{Claim: "sub", Operator: api.OpStartsWith, Value: ptr("workload:")},
						{Claim: "team", Operator: api.OpExists},
					}}
			},
			claims:    func(e *env) map[string]any { return map[string]any{"aud": e.URL, "team": "payments"} },
			sub:       "workload:example",
			sourceIss: "", // filled from the issuer URL
			scope: []scopeMutation{
				{"iss", "https://issuer.example.com", ""},
				{"aud", "https://b.example.com", ""},
				{"sub", "other:example", "workload:"},
				{"team", nil, ""},
			},
		},
	}
}

// TestPresetExchangeEndToEnd creates each preset's connection, activates it, exchanges a token
// shaped exactly like that CI system's for an access token that verifies against the server's
// published JWKS, and refuses a token that differs in any one scope claim.
func TestPresetExchangeEndToEnd(t *testing.T) {
	e := newEnv(t)
	for _, pc := range presetCases() {
		t.Run(pc.name, func(t *testing.T) {
			in := pc.input(e)
			conn := e.CreateActive(t, in)
			ttl := ttlOf(in.TokenTTL)
			sourceIss := pc.sourceIss
			if sourceIss == "" {
				sourceIss = e.iss.URL
			}

			good := e.iss.MustMint(t, pc.shape, pc.claims(e))
			access := testkit.MustGrant(t, e.Exchange(conn.Name, good), ttl)
			e.VerifyAccess(t, access).Expect(t, conn, pc.sub, sourceIss, ttl)

			// The same kind of token as JSON, and with the id_token subject type.
			access = testkit.MustGrant(t, e.ExchangeJSON(conn.Name, e.iss.MustMint(t, pc.shape, pc.claims(e))), ttl)
			e.VerifyAccess(t, access).Expect(t, conn, pc.sub, sourceIss, ttl)
			form := testkit.ExchangeForm(conn.Name, e.iss.MustMint(t, pc.shape, pc.claims(e)))
			form.Set("subject_token_type", api.TokenTypeIDToken)
			testkit.MustGrant(t, e.PostForm(form, nil), ttl)

			for _, m := range pc.scope {
				t.Run(fmt.Sprintf("%s=%v is refused", m.claim, m.value), func(t *testing.T) {
					claims := pc.claims(e)
					claims[m.claim] = m.value
					r := e.Exchange(conn.Name, e.iss.MustMint(t, pc.shape, claims))
					testkit.MustRefuse(t, r, api.ErrInvalidGrant, "condition", m.secret)
				})
			}
		})
	}
}

// TestPresetTokensMatchFixtures guards the premise of the preset tests: the dev issuer's tokens
// carry the claim names and JSON types of the CI systems' documented tokens.
func TestPresetTokensMatchFixtures(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		shape string
		want  map[string]string // claim (or JSON pointer) → JSON type
	}{
		{"github", map[string]string{"repository_owner_id": "string", "repository_id": "string", "actor_id": "string", "run_number": "string"}},
		{"gitlab", map[string]string{"runner_id": "number", "project_id": "string", "ref_protected": "string", "user_identities": "array"}},
		{"circleci", map[string]string{"oidc.circleci.com/project-id": "string", "oidc.circleci.com/context-ids": "array", "oidc.circleci.com/ssh-rerun": "bool"}},
		{"google", map[string]string{"email_verified": "bool", "google": "object"}},
	}
	for _, c := range cases {
		t.Run(c.shape, func(t *testing.T) {
			claims, err := e.iss.Claims(c.shape, nil, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(claims)
			var decoded map[string]any
			d := json.NewDecoder(bytes.NewReader(b))
			d.UseNumber()
			if err := d.Decode(&decoded); err != nil {
				t.Fatal(err)
			}
			for claim, typ := range c.want {
				if got := jsonType(decoded[claim]); got != typ {
					t.Errorf("%s: claim %q is a %s, want a %s", c.shape, claim, got, typ)
				}
			}
			if c.shape == "google" {
				ce, _ := decoded["google"].(map[string]any)["compute_engine"].(map[string]any)
				if jsonType(ce["project_number"]) != "number" {
					t.Errorf("google.compute_engine.project_number is not a number: %v", ce)
				}
			}
		})
	}
}
