package connection

import (
	"strings"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// TestGenericConnectionsOnSharedIssuersNeedThePresetsScope reproduces finding 4 of the trust-model
// review: a generic connection pointing at a shared issuer with only iss and aud pinned would
// accept a token from any tenant of that service (the CI job picks its own aud).
func TestGenericConnectionsOnSharedIssuersNeedThePresetsScope(t *testing.T) {
	c := func(claim, op, v string) api.Condition {
		return api.Condition{Claim: claim, Operator: op, Value: sp(v)}
	}
	one := func(claim string, vs ...string) api.Condition {
		return api.Condition{Claim: claim, Operator: api.OpOneOf, Values: vs}
	}
	gh := "https://token.actions.githubusercontent.com"
	tests := []struct {
		name    string
		jwks    string
		conds   []api.Condition
		refused string // a word of the refusal, "" = accepted
	}{
		{"github iss, aud only", "https://keys.example/jwks", []api.Condition{c("iss", "equals", gh), c("aud", "equals", "x")}, "repository_owner_id"},
		{"github enterprise iss, aud only", "https://keys.example/jwks", []api.Condition{c("iss", "equals", gh+"/acme-ent"), c("aud", "equals", "x")}, "github preset"},
		{"github iss among others", "https://keys.example/jwks", []api.Condition{one("iss", "https://idp.example", gh), c("aud", "equals", "x")}, "repository_owner_id"},
		{"github JWKS host, another iss", gh + "/.well-known/jwks", []api.Condition{c("iss", "equals", "https://idp.example"), c("aud", "equals", "x")}, "repository_owner_id"},
		{"github pinned by owner name only", "https://keys.example/jwks", []api.Condition{c("iss", "equals", gh), c("aud", "equals", "x"), c("repository_owner", "equals", "acme")}, "repository_owner_id"},
		{"github pinned by owner id", "https://keys.example/jwks", []api.Condition{c("iss", "equals", gh), c("aud", "equals", "x"), c("repository_owner_id", "equals", "65")}, ""},
		{"github pinned by owner id pointer", gh + "/.well-known/jwks", []api.Condition{c("/iss", "equals", gh), c("aud", "equals", "x"), c("/repository_owner_id", "equals", "65")}, ""},
		{"gitlab.com iss, aud only", "https://keys.example/jwks", []api.Condition{c("iss", "equals", "https://gitlab.com"), c("aud", "equals", "x")}, "project_id"},
		{"gitlab.com JWKS host", "https://gitlab.com/oauth/discovery/keys", []api.Condition{c("iss", "equals", "https://idp.example"), c("aud", "equals", "x")}, "gitlab preset"},
		{"gitlab.com loose path prefix", "https://gitlab.com/oauth/discovery/keys", []api.Condition{c("iss", "equals", "https://gitlab.com"), c("aud", "equals", "x"), c("project_path", "starts_with", "acme")}, "project_path"},
		{"gitlab.com group path prefix", "https://gitlab.com/oauth/discovery/keys", []api.Condition{c("iss", "equals", "https://gitlab.com"), c("aud", "equals", "x"), c("project_path", "starts_with", "acme/")}, ""},
		{"gitlab.com project id", "https://gitlab.com/oauth/discovery/keys", []api.Condition{c("iss", "equals", "https://gitlab.com"), c("aud", "equals", "x"), one("project_id", "7", "8")}, ""},
		{"gitlab.com namespace id", "https://gitlab.com/oauth/discovery/keys", []api.Condition{c("iss", "equals", "https://gitlab.com"), c("aud", "equals", "x"), c("namespace_id", "equals", "9")}, ""},
		{"self-managed gitlab", "https://gitlab.acme.example/oauth/discovery/keys", []api.Condition{c("iss", "equals", "https://gitlab.acme.example"), c("aud", "equals", "x")}, ""},
		{"google iss, aud only", GoogleJWKSURL, []api.Condition{c("iss", "equals", "https://accounts.google.com"), c("aud", "equals", "x")}, "email or sub"},
		{"google iss without scheme", "https://keys.example/jwks", []api.Condition{c("iss", "equals", "accounts.google.com"), c("aud", "equals", "x")}, "google_cloud preset"},
		{"google JWKS host", GoogleJWKSURL, []api.Condition{c("iss", "equals", "https://idp.example"), c("aud", "equals", "x")}, "email or sub"},
		{"google pinned by email", GoogleJWKSURL, []api.Condition{c("iss", "equals", "https://accounts.google.com"), c("aud", "equals", "x"), c("email", "equals", "d@p.iam.gserviceaccount.com")}, ""},
		{"google pinned by sub", GoogleJWKSURL, []api.Condition{c("iss", "equals", "https://accounts.google.com"), c("aud", "equals", "x"), c("sub", "equals", "1234")}, ""},
		{"unrelated issuer", "https://keys.example/jwks", []api.Condition{c("iss", "equals", "https://idp.example"), c("aud", "equals", "x")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Normalize(api.ConnectionInput{Name: "g", JWKSURL: tt.jwks, Conditions: tt.conds}, testOpts)
			if tt.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if got := validationFields(t, err); len(got) != 1 || got[0] != "conditions" {
				t.Fatalf("fields = %q, want [conditions]", got)
			}
			if !strings.Contains(err.Error(), tt.refused) {
				t.Fatalf("refusal %q does not mention %q", err, tt.refused)
			}
		})
	}
}

func TestGitHubPresetPinsImmutableIDs(t *testing.T) {
	for _, tt := range []struct {
		name   string
		in     api.GitHubSettings
		fields []string
	}{
		{"owner_id required", api.GitHubSettings{Owner: "acme", Repository: "acme/app"}, []string{"github.owner_id"}},
		{"owner_id alone is enough", api.GitHubSettings{OwnerID: "65"}, nil},
		{"repository without owner name", api.GitHubSettings{OwnerID: "65", Repository: "acme/app"}, nil},
		{"repository_id numeric", api.GitHubSettings{OwnerID: "65", RepositoryID: "12345"}, nil},
		{"repository_id not numeric", api.GitHubSettings{OwnerID: "65", RepositoryID: "acme/app"}, []string{"github.repository_id"}},
		{"GHES host", api.GitHubSettings{OwnerID: "65", Host: "github.acme.example"}, nil},
		{"GHES host with enterprise slug", api.GitHubSettings{OwnerID: "65", Host: "github.acme.example", EnterpriseSlug: "acme"}, []string{"github.host"}},
		{"host github.com", api.GitHubSettings{OwnerID: "65", Host: "github.com"}, []string{"github.host"}},
		{"host with a path", api.GitHubSettings{OwnerID: "65", Host: "github.acme.example/x"}, []string{"github.host"}},
		{"host on a private address", api.GitHubSettings{OwnerID: "65", Host: "10.0.0.1"}, []string{"github.host"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := tt.in
			_, err := Normalize(api.ConnectionInput{Name: "a", GitHub: &g}, testOpts)
			if tt.fields == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if got := validationFields(t, err); strings.Join(got, ",") != strings.Join(tt.fields, ",") {
				t.Fatalf("fields = %q, want %q (%v)", got, tt.fields, err)
			}
		})
	}

	r := Resolve(normalized(t, api.ConnectionInput{Name: "a", GitHub: &api.GitHubSettings{
		OwnerID: "65", Owner: "acme", RepositoryID: "12345", Repository: "acme/app", Host: "github.acme.example",
	}}), testOpts)
	const iss = "https://github.acme.example/_services/token"
	if r.Issuer != iss || r.JWKSURL != iss+"/.well-known/jwks" {
		t.Fatalf("GHES issuer %q jwks %q", r.Issuer, r.JWKSURL)
	}
	var got []string
	for _, c := range r.EffectiveConditions {
		got = append(got, c.Claim+"="+*c.Value)
	}
	want := "iss=" + iss + ",aud=https://trustgate.example.com,repository_owner_id=65,repository_owner=acme,repository_id=12345,repository=acme/app"
	if strings.Join(got, ",") != want {
		t.Fatalf("effective conditions\n  %s\nwant\n  %s", strings.Join(got, ","), want)
	}
}

// TestFingerprintGoldenV2 pins the canonical form of a connection with the fields v2 added to the
// github preset (ids and host go at the end of the block).
func TestFingerprintGoldenV2(t *testing.T) {
	spec := api.ConnectionInput{
		Name: "deploy", ProviderType: "github",
		GitHub:        &api.GitHubSettings{OwnerID: "65", RepositoryID: "12345", Host: "github.acme.example"},
		TokenTTL:      &api.TokenTTL{Amount: 1, Unit: "hours"},
		IdentityClaim: "sub",
	}
	got := Resolve(spec, Options{DefaultAudience: "https://trustgate.example.com"}).Fingerprint
	// sha256 of exactly this text (checked with sha256sum; one line, no spaces):
	// {"provider_type":"github","github":{"owner_id":"65","repository_id":"12345","host":"github.acme.example"},
	// "jwks_url":"https://github.acme.example/_services/token/.well-known/jwks","token_ttl":{"amount":1,"unit":"hours"},
	// "identity_claim":"sub","effective_conditions":[{"claim":"iss","operator":"equals","value":"https://github.acme.example/_services/token"},
	// {"claim":"aud","operator":"equals","value":"https://trustgate.example.com"},
	// {"claim":"repository_owner_id","operator":"equals","value":"65"},{"claim":"repository_id","operator":"equals","value":"12345"}]}
	const want = "sha256:9a06c9e946947513a08dc2bab54c952cd96a92941df4adfea0dc115d0f17b739"
	if got != want {
		t.Fatalf("fingerprint = %s, want %s", got, want)
	}
}
