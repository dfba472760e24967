package connection

import (
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// validationFields returns the field paths of a KindValidation error, failing otherwise.
func validationFields(t *testing.T, err error) []string {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if e.Kind != KindValidation {
		t.Fatalf("kind = %v, want validation", e.Kind)
	}
	out := make([]string, 0, len(e.Fields))
	for _, f := range e.Fields {
		if f.Detail == "" {
			t.Errorf("field %s has no detail", f.Field)
		}
		out = append(out, f.Field)
	}
	return out
}

func github(owner string) *api.GitHubSettings {
	return &api.GitHubSettings{OwnerID: "65", Owner: owner}
}

func genericPinned(extra ...api.Condition) []api.Condition {
	return append([]api.Condition{
		{Claim: "iss", Operator: "equals", Value: sp("https://idp.example")},
		{Claim: "aud", Operator: "equals", Value: sp("trustgate")},
	}, extra...)
}

func TestNormalizeDefaultsAndInference(t *testing.T) {
	tests := []struct {
		name string
		in   api.ConnectionInput
		want api.ConnectionInput
	}{
		{
			name: "type inferred from the single block, ttl and identity defaulted",
			in:   api.ConnectionInput{Name: "deploy", GitHub: github("acme")},
			want: api.ConnectionInput{Name: "deploy", ProviderType: "github", GitHub: github("acme"),
				TokenTTL: &api.TokenTTL{Amount: 1, Unit: "hours"}, IdentityClaim: "sub"},
		},
		{
			name: "no block means generic",
			in:   api.ConnectionInput{Name: "g", JWKSURL: "https://idp.example/jwks", Conditions: genericPinned()},
			want: api.ConnectionInput{Name: "g", ProviderType: "generic", JWKSURL: "https://idp.example/jwks",
				TokenTTL: &api.TokenTTL{Amount: 1, Unit: "hours"}, IdentityClaim: "sub", Conditions: genericPinned()},
		},
		{
			name: "explicit type matching the block, ttl kept as given (no normalisation)",
			in: api.ConnectionInput{Name: "c", ProviderType: "circleci", CircleCI: &api.CircleCISettings{OrganizationID: "org"},
				TokenTTL: &api.TokenTTL{Amount: 60, Unit: "minutes"}, IdentityClaim: "/oidc.circleci.com~1project-id"},
			want: api.ConnectionInput{Name: "c", ProviderType: "circleci", CircleCI: &api.CircleCISettings{OrganizationID: "org"},
				TokenTTL: &api.TokenTTL{Amount: 60, Unit: "minutes"}, IdentityClaim: "/oidc.circleci.com~1project-id"},
		},
		{
			name: "jwks_url override is kept, derived stays empty",
			in:   api.ConnectionInput{Name: "o", GitHub: github("acme"), JWKSURL: "https://mirror.example/jwks"},
			want: api.ConnectionInput{Name: "o", ProviderType: "github", GitHub: github("acme"), JWKSURL: "https://mirror.example/jwks",
				TokenTTL: &api.TokenTTL{Amount: 1, Unit: "hours"}, IdentityClaim: "sub"},
		},
		{
			name: "empty values list on a value operator is dropped",
			in: api.ConnectionInput{Name: "e", GitHub: github("acme"), Conditions: []api.Condition{
				{Claim: "ref", Operator: "equals", Value: sp("refs/heads/main"), Values: []string{}},
				{Claim: "environment", Operator: "exists", Values: []string{}},
			}},
			want: api.ConnectionInput{Name: "e", ProviderType: "github", GitHub: github("acme"),
				TokenTTL: &api.TokenTTL{Amount: 1, Unit: "hours"}, IdentityClaim: "sub", Conditions: []api.Condition{
					{Claim: "ref", Operator: "equals", Value: sp("refs/heads/main")},
					{Claim: "environment", Operator: "exists"},
				}},
		},
		{
			name: "equals with an empty value is legal",
			in: api.ConnectionInput{Name: "e", GitHub: github("acme"), Conditions: []api.Condition{
				{Claim: "base_ref", Operator: "equals", Value: sp("")},
			}},
			want: api.ConnectionInput{Name: "e", ProviderType: "github", GitHub: github("acme"),
				TokenTTL: &api.TokenTTL{Amount: 1, Unit: "hours"}, IdentityClaim: "sub", Conditions: []api.Condition{
					{Claim: "base_ref", Operator: "equals", Value: sp("")},
				}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Normalize(tt.in, testOpts)
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
			// Idempotent: normalising a normalised spec changes nothing.
			again, err := Normalize(got, testOpts)
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("not idempotent: %+v, %v", again, err)
			}
		})
	}
}

func TestNormalizeDoesNotAliasInput(t *testing.T) {
	in := api.ConnectionInput{Name: "a", GitHub: github("acme"), TokenTTL: &api.TokenTTL{Amount: 2, Unit: "hours"},
		Conditions: []api.Condition{{Claim: "x", Operator: "one_of", Values: []string{"1"}}}}
	out, err := Normalize(in, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	out.TokenTTL.Amount = 3
	out.Conditions[0].Values[0] = "2"
	if in.TokenTTL.Amount != 2 || in.Conditions[0].Values[0] != "1" {
		t.Fatal("Normalize's result shares memory with its input")
	}
}

func TestNormalizeAcceptsValidPresetInputs(t *testing.T) {
	valid := map[string]api.ConnectionInput{
		"github full": {Name: "a", GitHub: &api.GitHubSettings{Owner: "Octo-Org", OwnerID: "65", Repository: "Octo-Org/repo.name_x",
			Ref: "refs/tags/v1.2.3", Environment: "prod eu", EnterpriseSlug: "acme_corp", Audience: "https://sts.example"}},
		"github EMU owner":             {Name: "a", GitHub: &api.GitHubSettings{OwnerID: "65", Owner: "jdoe_acme"}},
		"gitlab self-managed no scope": {Name: "a", GitLab: &api.GitLabSettings{Domain: "gitlab.example.com"}},
		"gitlab with port":             {Name: "a", GitLab: &api.GitLabSettings{Domain: "gitlab.example.com:8443", Group: "g"}},
		"gitlab.com with group":        {Name: "a", GitLab: &api.GitLabSettings{Domain: "gitlab.com", Group: "my-group/sub.group"}},
		"gitlab.com with project_path": {Name: "a", GitLab: &api.GitLabSettings{Domain: "gitlab.com", ProjectPath: "g/p"}},
		"gitlab.com with project_id":   {Name: "a", GitLab: &api.GitLabSettings{Domain: "gitlab.com", ProjectID: "20"}},
		"gitlab public IP":             {Name: "a", GitLab: &api.GitLabSettings{Domain: "203.0.113.10"}},
		"circleci":                     {Name: "a", CircleCI: &api.CircleCISettings{OrganizationID: "01234567-89ab-cdef-0123-456789abcdef", ProjectID: "p"}},
		"google with email":            {Name: "a", GoogleCloud: &api.GoogleCloudSettings{ClientID: "c", Email: "d@p.iam.gserviceaccount.com"}},
		"google with account":          {Name: "a", GoogleCloud: &api.GoogleCloudSettings{ClientID: "c", AccountID: "112233445566778899000"}},
		"generic pinned by pointer":    {Name: "a", JWKSURL: "https://idp.example/jwks", Conditions: []api.Condition{{Claim: "/iss", Operator: "equals", Value: sp("x")}, {Claim: "/aud", Operator: "one_of", Values: []string{"a"}}}},
		"name of 63 characters":        {Name: strings.Repeat("a", 63), GitHub: github("acme")},
		"name of one character":        {Name: "a", GitHub: github("acme")},
		"description of 1024 runes":    {Name: "a", Description: strings.Repeat("é", 1024), GitHub: github("acme")},
		"ttl 60 seconds":               {Name: "a", GitHub: github("acme"), TokenTTL: &api.TokenTTL{Amount: 60, Unit: "seconds"}},
		"ttl 1 minute":                 {Name: "a", GitHub: github("acme"), TokenTTL: &api.TokenTTL{Amount: 1, Unit: "minutes"}},
		"ttl 24 hours":                 {Name: "a", GitHub: github("acme"), TokenTTL: &api.TokenTTL{Amount: 24, Unit: "hours"}},
		"ttl 86400 seconds":            {Name: "a", GitHub: github("acme"), TokenTTL: &api.TokenTTL{Amount: 86400, Unit: "seconds"}},
		"ttl 1440 minutes":             {Name: "a", GitHub: github("acme"), TokenTTL: &api.TokenTTL{Amount: 1440, Unit: "minutes"}},
		"one_of with 50 values": {Name: "a", GitHub: github("acme"), Conditions: []api.Condition{
			{Claim: "ref", Operator: "one_of", Values: slices.Repeat([]string{"x"}, 50)}}},
		"claim names with dots and slashes": {Name: "a", GitHub: github("acme"), Conditions: []api.Condition{
			{Claim: "oidc.circleci.com/project-id", Operator: "exists"}, {Claim: "/a~0b/c~1d/0", Operator: "exists"}}},
	}
	for name, in := range valid {
		t.Run(name, func(t *testing.T) {
			if _, err := Normalize(in, testOpts); err != nil {
				t.Fatalf("Normalize: %v", err)
			}
		})
	}
}

func TestNormalizeRefusesInvalidFields(t *testing.T) {
	long := strings.Repeat("x", 2000)
	tests := []struct {
		name       string
		in         api.ConnectionInput
		opts       *Options
		wantFields []string
		detailHas  string // in the field detail of the first wanted field
	}{
		{"name missing", api.ConnectionInput{GitHub: github("acme")}, nil, []string{"name"}, "required"},
		{"name uppercase", api.ConnectionInput{Name: "Deploy", GitHub: github("acme")}, nil, []string{"name"}, "lowercase"},
		{"name leading hyphen", api.ConnectionInput{Name: "-a", GitHub: github("acme")}, nil, []string{"name"}, ""},
		{"name trailing hyphen", api.ConnectionInput{Name: "a-", GitHub: github("acme")}, nil, []string{"name"}, ""},
		{"name underscore", api.ConnectionInput{Name: "a_b", GitHub: github("acme")}, nil, []string{"name"}, ""},
		{"name dot", api.ConnectionInput{Name: "a.b", GitHub: github("acme")}, nil, []string{"name"}, ""},
		{"name 64 characters", api.ConnectionInput{Name: strings.Repeat("a", 64), GitHub: github("acme")}, nil, []string{"name"}, ""},
		{"name with newline", api.ConnectionInput{Name: "a\n", GitHub: github("acme")}, nil, []string{"name"}, ""},
		{"name shaped like an id", api.ConnectionInput{Name: "9e24978d-c8ba-41de-ab79-818a63aace17", GitHub: github("acme")}, nil, []string{"name"}, "connection id"},
		{"description 1025 runes", api.ConnectionInput{Name: "a", Description: strings.Repeat("é", 1025), GitHub: github("acme")}, nil, []string{"description"}, "1025"},

		{"unknown provider_type", api.ConnectionInput{Name: "a", ProviderType: "jenkins"}, nil, []string{"provider_type"}, "jenkins"},
		{"two blocks without type", api.ConnectionInput{Name: "a", GitHub: github("acme"), GitLab: &api.GitLabSettings{Domain: "gitlab.example.com"}}, nil, []string{"provider_type"}, "at most one"},
		{"type github with gitlab block", api.ConnectionInput{Name: "a", ProviderType: "github", GitLab: &api.GitLabSettings{Domain: "gitlab.example.com"}}, nil, []string{"gitlab", "github"}, "only a github block"},
		{"type github without block", api.ConnectionInput{Name: "a", ProviderType: "github"}, nil, []string{"github"}, "needs a github block"},
		{"type generic with a block", api.ConnectionInput{Name: "a", ProviderType: "generic", GitHub: github("acme"), JWKSURL: "https://x.example/j", Conditions: genericPinned()}, nil, []string{"github"}, "no preset block"},
		{"type github with both blocks", api.ConnectionInput{Name: "a", ProviderType: "github", GitHub: github("acme"), CircleCI: &api.CircleCISettings{OrganizationID: "o"}}, nil, []string{"circleci"}, ""},

		{"github owner_id missing", api.ConnectionInput{Name: "a", GitHub: &api.GitHubSettings{Owner: "acme"}}, nil, []string{"github.owner_id"}, "required"},
		{"github owner with slash", api.ConnectionInput{Name: "a", GitHub: github("acme/app")}, nil, []string{"github.owner"}, ""},
		{"github owner with space", api.ConnectionInput{Name: "a", GitHub: github("ac me")}, nil, []string{"github.owner"}, ""},
		{"github owner_id not numeric", api.ConnectionInput{Name: "a", GitHub: &api.GitHubSettings{Owner: "acme", OwnerID: "acme"}}, nil, []string{"github.owner_id"}, ""},
		{"github repository without owner", api.ConnectionInput{Name: "a", GitHub: &api.GitHubSettings{OwnerID: "65", Owner: "acme", Repository: "app"}}, nil, []string{"github.repository"}, "owner/name"},
		{"github repository of another owner", api.ConnectionInput{Name: "a", GitHub: &api.GitHubSettings{OwnerID: "65", Owner: "acme", Repository: "evil/app"}}, nil, []string{"github.repository"}, "not under owner"},
		{"github repository owner differs in case", api.ConnectionInput{Name: "a", GitHub: &api.GitHubSettings{OwnerID: "65", Owner: "acme", Repository: "Acme/app"}}, nil, []string{"github.repository"}, ""},
		{"github repository with extra slash", api.ConnectionInput{Name: "a", GitHub: &api.GitHubSettings{OwnerID: "65", Owner: "acme", Repository: "acme/app/x"}}, nil, []string{"github.repository"}, ""},
		{"github repository empty name", api.ConnectionInput{Name: "a", GitHub: &api.GitHubSettings{OwnerID: "65", Owner: "acme", Repository: "acme/"}}, nil, []string{"github.repository"}, ""},
		{"github ref not qualified", api.ConnectionInput{Name: "a", GitHub: &api.GitHubSettings{OwnerID: "65", Owner: "acme", Ref: "main"}}, nil, []string{"github.ref"}, "refs/heads/main"},
		{"github enterprise slug with slash", api.ConnectionInput{Name: "a", GitHub: &api.GitHubSettings{OwnerID: "65", Owner: "acme", EnterpriseSlug: "a/../b"}}, nil, []string{"github.enterprise_slug"}, "URL-safe"},
		{"github enterprise slug with query", api.ConnectionInput{Name: "a", GitHub: &api.GitHubSettings{OwnerID: "65", Owner: "acme", EnterpriseSlug: "a?x=1"}}, nil, []string{"github.enterprise_slug"}, ""},
		{"github no audience anywhere", api.ConnectionInput{Name: "a", GitHub: github("acme")}, &Options{}, []string{"github.audience"}, "default audience"},
		{"github audience with spaces", api.ConnectionInput{Name: "a", GitHub: &api.GitHubSettings{OwnerID: "65", Owner: "acme", Audience: " x"}}, nil, []string{"github.audience"}, ""},
		{"github environment too long", api.ConnectionInput{Name: "a", GitHub: &api.GitHubSettings{OwnerID: "65", Owner: "acme", Environment: long}}, nil, []string{"github.environment"}, ""},

		{"gitlab domain missing", api.ConnectionInput{Name: "a", GitLab: &api.GitLabSettings{}}, nil, []string{"gitlab.domain"}, "required"},
		{"gitlab domain with scheme", api.ConnectionInput{Name: "a", GitLab: &api.GitLabSettings{Domain: "https://gitlab.example.com"}}, nil, []string{"gitlab.domain"}, "host name"},
		{"gitlab domain with path", api.ConnectionInput{Name: "a", GitLab: &api.GitLabSettings{Domain: "gitlab.example.com/evil"}}, nil, []string{"gitlab.domain"}, ""},
		{"gitlab domain with userinfo", api.ConnectionInput{Name: "a", GitLab: &api.GitLabSettings{Domain: "evil@gitlab.example.com"}}, nil, []string{"gitlab.domain"}, ""},
		{"gitlab domain uppercase", api.ConnectionInput{Name: "a", GitLab: &api.GitLabSettings{Domain: "GitLab.example.com"}}, nil, []string{"gitlab.domain"}, "lowercase"},
		{"gitlab domain bad port", api.ConnectionInput{Name: "a", GitLab: &api.GitLabSettings{Domain: "gitlab.example.com:99999"}}, nil, []string{"gitlab.domain"}, "port"},
		{"gitlab domain underscore label", api.ConnectionInput{Name: "a", GitLab: &api.GitLabSettings{Domain: "git_lab.example.com"}}, nil, []string{"gitlab.domain"}, ""},
		{"gitlab domain trailing dot", api.ConnectionInput{Name: "a", GitLab: &api.GitLabSettings{Domain: "gitlab.example.com."}}, nil, []string{"gitlab.domain"}, ""},
		{"gitlab domain private IP", api.ConnectionInput{Name: "a", GitLab: &api.GitLabSettings{Domain: "10.0.0.5"}}, nil, []string{"gitlab.domain"}, "private"},
		{"gitlab domain localhost", api.ConnectionInput{Name: "a", GitLab: &api.GitLabSettings{Domain: "localhost"}}, nil, []string{"gitlab.domain"}, "localhost"},
		{"gitlab group trailing slash", api.ConnectionInput{Name: "a", GitLab: &api.GitLabSettings{Domain: "gitlab.example.com", Group: "g/"}}, nil, []string{"gitlab.group"}, "trailing"},
		{"gitlab group with space", api.ConnectionInput{Name: "a", GitLab: &api.GitLabSettings{Domain: "gitlab.example.com", Group: "my group"}}, nil, []string{"gitlab.group"}, ""},
		{"gitlab project_path without group part", api.ConnectionInput{Name: "a", GitLab: &api.GitLabSettings{Domain: "gitlab.example.com", ProjectPath: "project"}}, nil, []string{"gitlab.project_path"}, "group/project"},
		{"gitlab project_path outside group", api.ConnectionInput{Name: "a", GitLab: &api.GitLabSettings{Domain: "gitlab.example.com", Group: "g", ProjectPath: "gg/p"}}, nil, []string{"gitlab.project_path"}, "not under group"},
		{"gitlab project_id not numeric", api.ConnectionInput{Name: "a", GitLab: &api.GitLabSettings{Domain: "gitlab.example.com", ProjectID: "p20"}}, nil, []string{"gitlab.project_id"}, ""},

		{"circleci organization missing", api.ConnectionInput{Name: "a", CircleCI: &api.CircleCISettings{}}, nil, []string{"circleci.organization_id"}, "required"},
		{"circleci organization with slash", api.ConnectionInput{Name: "a", CircleCI: &api.CircleCISettings{OrganizationID: "org/../x"}}, nil, []string{"circleci.organization_id"}, "URL-safe"},
		{"circleci organization with hash", api.ConnectionInput{Name: "a", CircleCI: &api.CircleCISettings{OrganizationID: "org#x"}}, nil, []string{"circleci.organization_id"}, ""},

		{"google client_id missing", api.ConnectionInput{Name: "a", GoogleCloud: &api.GoogleCloudSettings{Email: "a@b"}}, nil, []string{"google_cloud.client_id"}, "required"},
		{"google email malformed", api.ConnectionInput{Name: "a", GoogleCloud: &api.GoogleCloudSettings{ClientID: "c", Email: "deployer"}}, nil, []string{"google_cloud.email"}, ""},
		{"google account_id not numeric", api.ConnectionInput{Name: "a", GoogleCloud: &api.GoogleCloudSettings{ClientID: "c", AccountID: "deployer@x"}}, nil, []string{"google_cloud.account_id"}, ""},

		{"generic without jwks_url", api.ConnectionInput{Name: "a", Conditions: genericPinned()}, nil, []string{"jwks_url"}, "required"},
		{"jwks_url http", api.ConnectionInput{Name: "a", JWKSURL: "http://idp.example/jwks", Conditions: genericPinned()}, nil, []string{"jwks_url"}, "https"},
		{"jwks_url ftp", api.ConnectionInput{Name: "a", JWKSURL: "ftp://idp.example/jwks", Conditions: genericPinned()}, nil, []string{"jwks_url"}, ""},
		{"jwks_url ftp even when insecure allowed", api.ConnectionInput{Name: "a", JWKSURL: "ftp://idp.example/jwks", Conditions: genericPinned()}, &Options{DefaultAudience: "x", AllowInsecureJWKS: true}, []string{"jwks_url"}, ""},
		{"jwks_url relative", api.ConnectionInput{Name: "a", JWKSURL: "/jwks", Conditions: genericPinned()}, nil, []string{"jwks_url"}, ""},
		{"jwks_url no host", api.ConnectionInput{Name: "a", JWKSURL: "https:///jwks", Conditions: genericPinned()}, nil, []string{"jwks_url"}, "host"},
		{"jwks_url with credentials", api.ConnectionInput{Name: "a", JWKSURL: "https://u:p@idp.example/jwks", Conditions: genericPinned()}, nil, []string{"jwks_url"}, "credentials"},
		{"jwks_url with fragment", api.ConnectionInput{Name: "a", JWKSURL: "https://idp.example/jwks#x", Conditions: genericPinned()}, nil, []string{"jwks_url"}, "fragment"},
		{"jwks_url unparsable", api.ConnectionInput{Name: "a", JWKSURL: "https://idp example/%zz", Conditions: genericPinned()}, nil, []string{"jwks_url"}, ""},
		{"jwks_url loopback v4", api.ConnectionInput{Name: "a", JWKSURL: "https://127.0.0.1/jwks", Conditions: genericPinned()}, nil, []string{"jwks_url"}, "loopback"},
		{"jwks_url loopback v4 other", api.ConnectionInput{Name: "a", JWKSURL: "https://127.1.2.3:8443/jwks", Conditions: genericPinned()}, nil, []string{"jwks_url"}, ""},
		{"jwks_url loopback v6", api.ConnectionInput{Name: "a", JWKSURL: "https://[::1]/jwks", Conditions: genericPinned()}, nil, []string{"jwks_url"}, ""},
		{"jwks_url v4-mapped loopback", api.ConnectionInput{Name: "a", JWKSURL: "https://[::ffff:127.0.0.1]/jwks", Conditions: genericPinned()}, nil, []string{"jwks_url"}, ""},
		{"jwks_url private 10/8", api.ConnectionInput{Name: "a", JWKSURL: "https://10.1.2.3/jwks", Conditions: genericPinned()}, nil, []string{"jwks_url"}, ""},
		{"jwks_url private 192.168", api.ConnectionInput{Name: "a", JWKSURL: "https://192.168.0.1/jwks", Conditions: genericPinned()}, nil, []string{"jwks_url"}, ""},
		{"jwks_url private 172.16", api.ConnectionInput{Name: "a", JWKSURL: "https://172.16.0.1/jwks", Conditions: genericPinned()}, nil, []string{"jwks_url"}, ""},
		{"jwks_url unique local v6", api.ConnectionInput{Name: "a", JWKSURL: "https://[fd00::1]/jwks", Conditions: genericPinned()}, nil, []string{"jwks_url"}, ""},
		{"jwks_url link-local metadata", api.ConnectionInput{Name: "a", JWKSURL: "https://169.254.169.254/jwks", Conditions: genericPinned()}, nil, []string{"jwks_url"}, ""},
		{"jwks_url link-local v6", api.ConnectionInput{Name: "a", JWKSURL: "https://[fe80::1]/jwks", Conditions: genericPinned()}, nil, []string{"jwks_url"}, ""},
		{"jwks_url unspecified", api.ConnectionInput{Name: "a", JWKSURL: "https://0.0.0.0/jwks", Conditions: genericPinned()}, nil, []string{"jwks_url"}, ""},
		{"jwks_url localhost", api.ConnectionInput{Name: "a", JWKSURL: "https://localhost/jwks", Conditions: genericPinned()}, nil, []string{"jwks_url"}, "localhost"},
		{"jwks_url LOCALHOST.", api.ConnectionInput{Name: "a", JWKSURL: "https://LOCALHOST./jwks", Conditions: genericPinned()}, nil, []string{"jwks_url"}, ""},
		{"jwks_url sub.localhost", api.ConnectionInput{Name: "a", JWKSURL: "https://idp.localhost/jwks", Conditions: genericPinned()}, nil, []string{"jwks_url"}, ""},
		{"jwks_url override on a preset is checked too", api.ConnectionInput{Name: "a", GitHub: github("acme"), JWKSURL: "http://mirror.example/jwks"}, nil, []string{"jwks_url"}, ""},

		{"ttl zero amount", api.ConnectionInput{Name: "a", GitHub: github("acme"), TokenTTL: &api.TokenTTL{Amount: 0, Unit: "hours"}}, nil, []string{"token_ttl.amount"}, "at least 1"},
		{"ttl negative amount", api.ConnectionInput{Name: "a", GitHub: github("acme"), TokenTTL: &api.TokenTTL{Amount: -5, Unit: "hours"}}, nil, []string{"token_ttl.amount"}, ""},
		{"ttl bad unit", api.ConnectionInput{Name: "a", GitHub: github("acme"), TokenTTL: &api.TokenTTL{Amount: 1, Unit: "days"}}, nil, []string{"token_ttl.unit"}, "days"},
		{"ttl empty unit", api.ConnectionInput{Name: "a", GitHub: github("acme"), TokenTTL: &api.TokenTTL{Amount: 1}}, nil, []string{"token_ttl.unit"}, ""},
		{"ttl unit is case sensitive", api.ConnectionInput{Name: "a", GitHub: github("acme"), TokenTTL: &api.TokenTTL{Amount: 1, Unit: "Hours"}}, nil, []string{"token_ttl.unit"}, ""},
		{"ttl 59 seconds", api.ConnectionInput{Name: "a", GitHub: github("acme"), TokenTTL: &api.TokenTTL{Amount: 59, Unit: "seconds"}}, nil, []string{"token_ttl"}, "between 60 seconds and 24 hours"},
		{"ttl 86401 seconds", api.ConnectionInput{Name: "a", GitHub: github("acme"), TokenTTL: &api.TokenTTL{Amount: 86401, Unit: "seconds"}}, nil, []string{"token_ttl"}, ""},
		{"ttl 1441 minutes", api.ConnectionInput{Name: "a", GitHub: github("acme"), TokenTTL: &api.TokenTTL{Amount: 1441, Unit: "minutes"}}, nil, []string{"token_ttl"}, ""},
		{"ttl 25 hours", api.ConnectionInput{Name: "a", GitHub: github("acme"), TokenTTL: &api.TokenTTL{Amount: 25, Unit: "hours"}}, nil, []string{"token_ttl"}, ""},
		{"ttl overflowing amount", api.ConnectionInput{Name: "a", GitHub: github("acme"), TokenTTL: &api.TokenTTL{Amount: 1 << 62, Unit: "hours"}}, nil, []string{"token_ttl"}, ""},
		{"ttl amount that wraps to a small product", api.ConnectionInput{Name: "a", GitHub: github("acme"), TokenTTL: &api.TokenTTL{Amount: 5124095576030432, Unit: "hours"}}, nil, []string{"token_ttl"}, ""},

		{"identity_claim invalid pointer", api.ConnectionInput{Name: "a", GitHub: github("acme"), IdentityClaim: "/a~2"}, nil, []string{"identity_claim"}, "pointer"},
		{"identity_claim too long", api.ConnectionInput{Name: "a", GitHub: github("acme"), IdentityClaim: long}, nil, []string{"identity_claim"}, ""},

		{"condition claim empty", api.ConnectionInput{Name: "a", GitHub: github("acme"), Conditions: []api.Condition{{Operator: "exists"}}}, nil, []string{"conditions[0].claim"}, "required"},
		{"condition claim bad pointer", api.ConnectionInput{Name: "a", GitHub: github("acme"), Conditions: []api.Condition{{Claim: "/a~", Operator: "exists"}}}, nil, []string{"conditions[0].claim"}, "~1"},
		{"condition operator missing", api.ConnectionInput{Name: "a", GitHub: github("acme"), Conditions: []api.Condition{{Claim: "a", Value: sp("x")}}}, nil, []string{"conditions[0].operator"}, "required"},
		{"condition operator unknown", api.ConnectionInput{Name: "a", GitHub: github("acme"), Conditions: []api.Condition{{Claim: "a", Operator: "regex", Value: sp("x")}}}, nil, []string{"conditions[0].operator"}, "regex"},
		{"condition operator case", api.ConnectionInput{Name: "a", GitHub: github("acme"), Conditions: []api.Condition{{Claim: "a", Operator: "EQUALS", Value: sp("x")}}}, nil, []string{"conditions[0].operator"}, ""},
		{"equals without value", api.ConnectionInput{Name: "a", GitHub: github("acme"), Conditions: []api.Condition{{Claim: "a", Operator: "equals"}}}, nil, []string{"conditions[0].value"}, "required"},
		{"equals with values", api.ConnectionInput{Name: "a", GitHub: github("acme"), Conditions: []api.Condition{{Claim: "a", Operator: "equals", Value: sp("x"), Values: []string{"y"}}}}, nil, []string{"conditions[0].values"}, "one_of"},
		{"starts_with without value", api.ConnectionInput{Name: "a", GitHub: github("acme"), Conditions: []api.Condition{{Claim: "a", Operator: "starts_with"}}}, nil, []string{"conditions[0].value"}, ""},
		{"starts_with empty value", api.ConnectionInput{Name: "a", GitHub: github("acme"), Conditions: []api.Condition{{Claim: "a", Operator: "starts_with", Value: sp("")}}}, nil, []string{"conditions[0].value"}, "exists"},
		{"exists with value", api.ConnectionInput{Name: "a", GitHub: github("acme"), Conditions: []api.Condition{{Claim: "a", Operator: "exists", Value: sp("")}}}, nil, []string{"conditions[0].value"}, "absent"},
		{"exists with values", api.ConnectionInput{Name: "a", GitHub: github("acme"), Conditions: []api.Condition{{Claim: "a", Operator: "exists", Values: []string{"x"}}}}, nil, []string{"conditions[0].values"}, "absent"},
		{"one_of without values", api.ConnectionInput{Name: "a", GitHub: github("acme"), Conditions: []api.Condition{{Claim: "a", Operator: "one_of"}}}, nil, []string{"conditions[0].values"}, "1 to 50"},
		{"one_of empty values", api.ConnectionInput{Name: "a", GitHub: github("acme"), Conditions: []api.Condition{{Claim: "a", Operator: "one_of", Values: []string{}}}}, nil, []string{"conditions[0].values"}, ""},
		{"one_of with 51 values", api.ConnectionInput{Name: "a", GitHub: github("acme"), Conditions: []api.Condition{{Claim: "a", Operator: "one_of", Values: slices.Repeat([]string{"x"}, 51)}}}, nil, []string{"conditions[0].values"}, "got 51"},
		{"one_of with value", api.ConnectionInput{Name: "a", GitHub: github("acme"), Conditions: []api.Condition{{Claim: "a", Operator: "one_of", Value: sp("x"), Values: []string{"x"}}}}, nil, []string{"conditions[0].value"}, "values"},
		{"index names the right condition", api.ConnectionInput{Name: "a", GitHub: github("acme"), Conditions: []api.Condition{
			{Claim: "a", Operator: "exists"}, {Claim: "b", Operator: "exists"}, {Claim: "c", Operator: "one_of"}}}, nil, []string{"conditions[2].values"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testOpts
			if tt.opts != nil {
				opts = *tt.opts
			}
			out, err := Normalize(tt.in, opts)
			if err == nil {
				t.Fatalf("Normalize accepted %+v", tt.in)
			}
			if !reflect.DeepEqual(out, api.ConnectionInput{}) {
				t.Errorf("a refused input returned a spec: %+v", out)
			}
			got := validationFields(t, err)
			if !reflect.DeepEqual(got, tt.wantFields) {
				t.Fatalf("fields = %q, want %q (%v)", got, tt.wantFields, err)
			}
			if tt.detailHas != "" {
				var e *Error
				errors.As(err, &e)
				if !strings.Contains(e.Fields[0].Detail, tt.detailHas) {
					t.Errorf("detail %q lacks %q", e.Fields[0].Detail, tt.detailHas)
				}
			}
		})
	}
}

func TestNormalizeReportsEveryInvalidFieldAtOnce(t *testing.T) {
	in := api.ConnectionInput{
		Name:        "Bad Name",
		Description: strings.Repeat("x", 1025),
		GitHub:      &api.GitHubSettings{OwnerID: "acme", Repository: "nope"},
		JWKSURL:     "http://x.example/j",
		TokenTTL:    &api.TokenTTL{Amount: 0, Unit: "weeks"},
		Conditions: []api.Condition{
			{Claim: "", Operator: "equals"},
			{Claim: "x", Operator: "one_of", Value: sp("y")},
		},
	}
	_, err := Normalize(in, testOpts)
	got := validationFields(t, err)
	want := []string{"name", "description", "github.owner_id", "github.repository", "jwks_url", "token_ttl.unit", "token_ttl.amount",
		"conditions[0].claim", "conditions[0].value", "conditions[1].value", "conditions[1].values"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fields =\n  %q\nwant\n  %q", got, want)
	}
}

func TestNormalizeInsecureJWKSOption(t *testing.T) {
	insecure := Options{DefaultAudience: "x", AllowInsecureJWKS: true}
	for _, u := range []string{"http://127.0.0.1:8080/jwks", "https://localhost/jwks", "http://10.0.0.1/jwks", "http://[::1]:9/jwks", "https://169.254.169.254/x"} {
		in := api.ConnectionInput{Name: "a", JWKSURL: u, Conditions: genericPinned()}
		if _, err := Normalize(in, insecure); err != nil {
			t.Errorf("%s refused with AllowInsecureJWKS: %v", u, err)
		}
		if _, err := Normalize(in, testOpts); err == nil {
			t.Errorf("%s accepted without AllowInsecureJWKS", u)
		}
	}
	// A gitlab instance on a private address works only in insecure mode.
	gl := api.ConnectionInput{Name: "a", GitLab: &api.GitLabSettings{Domain: "192.168.1.10:8443"}}
	if _, err := Normalize(gl, insecure); err != nil {
		t.Errorf("private gitlab refused with AllowInsecureJWKS: %v", err)
	}
}

func TestNormalizeTenancy(t *testing.T) {
	tests := []struct {
		name      string
		in        api.ConnectionInput
		detailHas []string
	}{
		{"gitlab.com without scope", api.ConnectionInput{Name: "a", GitLab: &api.GitLabSettings{Domain: "gitlab.com"}},
			[]string{"gitlab.group", "gitlab.project_path", "gitlab.project_id", "shared"}},
		{"gitlab.com with port without scope", api.ConnectionInput{Name: "a", GitLab: &api.GitLabSettings{Domain: "gitlab.com:443"}},
			[]string{"gitlab.group"}},
		{"gitlab.com with audience only", api.ConnectionInput{Name: "a", GitLab: &api.GitLabSettings{Domain: "gitlab.com", Audience: "mine"}},
			[]string{"gitlab.group"}},
		{"google without email or account", api.ConnectionInput{Name: "a", GoogleCloud: &api.GoogleCloudSettings{ClientID: "c"}},
			[]string{"google_cloud.email", "google_cloud.account_id", "every Google customer"}},
		{"generic without conditions", api.ConnectionInput{Name: "a", JWKSURL: "https://idp.example/jwks"},
			[]string{"iss and aud", "equals or one_of"}},
		{"generic with iss only", api.ConnectionInput{Name: "a", JWKSURL: "https://idp.example/jwks", Conditions: genericPinned()[:1]},
			[]string{"on aud"}},
		{"generic with aud only", api.ConnectionInput{Name: "a", JWKSURL: "https://idp.example/jwks", Conditions: genericPinned()[1:]},
			[]string{"on iss"}},
		{"generic pins iss with starts_with only", api.ConnectionInput{Name: "a", JWKSURL: "https://idp.example/jwks", Conditions: []api.Condition{
			{Claim: "iss", Operator: "starts_with", Value: sp("https://")}, {Claim: "aud", Operator: "equals", Value: sp("x")}}},
			[]string{"on iss"}},
		{"generic pins iss with exists only", api.ConnectionInput{Name: "a", JWKSURL: "https://idp.example/jwks", Conditions: []api.Condition{
			{Claim: "iss", Operator: "exists"}, {Claim: "aud", Operator: "equals", Value: sp("x")}}},
			[]string{"on iss"}},
		{"generic conditions on look-alike claims", api.ConnectionInput{Name: "a", JWKSURL: "https://idp.example/jwks", Conditions: []api.Condition{
			{Claim: "ISS", Operator: "equals", Value: sp("x")}, {Claim: "/x/aud", Operator: "equals", Value: sp("x")}}},
			[]string{"iss and aud"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Normalize(tt.in, testOpts)
			if err == nil {
				t.Fatal("accepted")
			}
			fields := validationFields(t, err)
			// A preset's refusal names its block; a generic one names the user's conditions.
			want := "conditions"
			switch {
			case tt.in.GitLab != nil:
				want = "gitlab"
			case tt.in.GoogleCloud != nil:
				want = "google_cloud"
			}
			if !slices.Contains(fields, want) {
				t.Errorf("fields %q do not carry the tenancy refusal on %q", fields, want)
			}
			var e *Error
			errors.As(err, &e)
			// The problem's detail itself says what to add and why.
			for _, s := range tt.detailHas {
				if !strings.Contains(e.Detail, s) {
					t.Errorf("detail %q lacks %q", e.Detail, s)
				}
			}
		})
	}
}

func TestBlockedJWKSAddr(t *testing.T) {
	tests := []struct {
		addr    string
		blocked bool
	}{
		{"127.0.0.1", true}, {"::1", true}, {"10.0.0.1", true}, {"172.31.255.255", true}, {"192.168.1.1", true},
		{"169.254.169.254", true}, {"fe80::1", true}, {"fd12::1", true}, {"0.0.0.0", true}, {"::", true},
		{"224.0.0.1", true}, {"::ffff:10.0.0.1", true},
		{"8.8.8.8", false}, {"172.32.0.1", false}, {"2606:4700::1111", false}, {"203.0.113.10", false},
	}
	for _, tt := range tests {
		if got := BlockedJWKSAddr(netip.MustParseAddr(tt.addr)); got != tt.blocked {
			t.Errorf("BlockedJWKSAddr(%s) = %v, want %v", tt.addr, got, tt.blocked)
		}
	}
	if !BlockedJWKSAddr(netip.Addr{}) {
		t.Errorf("the zero Addr is not blocked")
	}
}
