package connection

import (
	"reflect"
	"strings"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

var testOpts = Options{DefaultAudience: "https://trustgate.example.com"}

// condStrings renders conditions compactly for comparison.
func condStrings(cs []api.Condition) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		s := c.Claim + " " + c.Operator
		if c.Value != nil {
			s += " " + *c.Value
		}
		if c.Values != nil {
			s += " [" + strings.Join(c.Values, ",") + "]"
		}
		out = append(out, s)
	}
	return out
}

func TestResolvePresets(t *testing.T) {
	userCond := api.Condition{Claim: "ref_type", Operator: "equals", Value: sp("branch")}
	tests := []struct {
		name     string
		spec     api.ConnectionInput
		issuer   string
		jwks     string
		wantCond []string
	}{
		{
			name:   "github minimal uses default audience",
			spec:   api.ConnectionInput{ProviderType: "github", GitHub: &api.GitHubSettings{OwnerID: "65", Owner: "acme"}},
			issuer: "https://token.actions.githubusercontent.com",
			jwks:   "https://token.actions.githubusercontent.com/.well-known/jwks",
			wantCond: []string{
				"iss equals https://token.actions.githubusercontent.com",
				"aud equals https://trustgate.example.com",
				"repository_owner_id equals 65",
				"repository_owner equals acme",
			},
		},
		{
			name: "github every input in table order, then user conditions",
			spec: api.ConnectionInput{ProviderType: "github", GitHub: &api.GitHubSettings{
				Owner: "acme", OwnerID: "65", Repository: "acme/app", Ref: "refs/heads/main",
				Environment: "prod", EnterpriseSlug: "acme-ent", Audience: "sts.example",
			}, Conditions: []api.Condition{userCond}},
			issuer: "https://token.actions.githubusercontent.com/acme-ent",
			jwks:   "https://token.actions.githubusercontent.com/acme-ent/.well-known/jwks",
			wantCond: []string{
				"iss equals https://token.actions.githubusercontent.com/acme-ent",
				"aud equals sts.example",
				"repository_owner_id equals 65",
				"repository_owner equals acme",
				"repository equals acme/app",
				"ref equals refs/heads/main",
				"environment equals prod",
				"ref_type equals branch",
			},
		},
		{
			name: "gitlab with group, project_path, project_id",
			spec: api.ConnectionInput{ProviderType: "gitlab", GitLab: &api.GitLabSettings{
				Domain: "gitlab.example.com", Group: "my-group", ProjectPath: "my-group/my-project", ProjectID: "20",
			}},
			issuer: "https://gitlab.example.com",
			jwks:   "https://gitlab.example.com/oauth/discovery/keys",
			wantCond: []string{
				"iss equals https://gitlab.example.com",
				"aud equals https://trustgate.example.com",
				"project_path starts_with my-group/",
				"project_path equals my-group/my-project",
				"project_id equals 20",
			},
		},
		{
			name:     "gitlab explicit audience",
			spec:     api.ConnectionInput{ProviderType: "gitlab", GitLab: &api.GitLabSettings{Domain: "gitlab.com", Group: "g", Audience: "aud-x"}},
			issuer:   "https://gitlab.com",
			jwks:     "https://gitlab.com/oauth/discovery/keys",
			wantCond: []string{"iss equals https://gitlab.com", "aud equals aud-x", "project_path starts_with g/"},
		},
		{
			name:   "circleci",
			spec:   api.ConnectionInput{ProviderType: "circleci", CircleCI: &api.CircleCISettings{OrganizationID: "org-1", ProjectID: "proj-1"}},
			issuer: "https://oidc.circleci.com/org/org-1",
			jwks:   "https://oidc.circleci.com/org/org-1/.well-known/jwks-pub.json",
			wantCond: []string{
				"iss equals https://oidc.circleci.com/org/org-1",
				"aud equals org-1",
				"oidc.circleci.com/project-id equals proj-1",
			},
		},
		{
			name:   "google_cloud email and account",
			spec:   api.ConnectionInput{ProviderType: "google_cloud", GoogleCloud: &api.GoogleCloudSettings{ClientID: "cid", Email: "a@b.iam.gserviceaccount.com", AccountID: "123"}},
			issuer: "https://accounts.google.com",
			jwks:   "https://www.googleapis.com/oauth2/v3/certs",
			wantCond: []string{
				"iss equals https://accounts.google.com",
				"aud equals cid",
				"email equals a@b.iam.gserviceaccount.com",
				"email_verified equals true",
				"sub equals 123",
			},
		},
		{
			name:     "google_cloud account only has no email_verified",
			spec:     api.ConnectionInput{ProviderType: "google_cloud", GoogleCloud: &api.GoogleCloudSettings{ClientID: "cid", AccountID: "123"}},
			issuer:   "https://accounts.google.com",
			jwks:     "https://www.googleapis.com/oauth2/v3/certs",
			wantCond: []string{"iss equals https://accounts.google.com", "aud equals cid", "sub equals 123"},
		},
		{
			name: "generic has only user conditions and the user's jwks_url",
			spec: api.ConnectionInput{ProviderType: "generic", JWKSURL: "https://idp.example/jwks", Conditions: []api.Condition{
				{Claim: "iss", Operator: "equals", Value: sp("https://idp.example")},
				{Claim: "aud", Operator: "one_of", Values: []string{"a", "b"}},
			}},
			issuer:   "",
			jwks:     "https://idp.example/jwks",
			wantCond: []string{"iss equals https://idp.example", "aud one_of [a,b]"},
		},
		{
			name:     "override replaces derived jwks_url but keeps the issuer",
			spec:     api.ConnectionInput{ProviderType: "github", GitHub: &api.GitHubSettings{OwnerID: "65", Owner: "acme"}, JWKSURL: "https://mirror.example/jwks"},
			issuer:   "https://token.actions.githubusercontent.com",
			jwks:     "https://mirror.example/jwks",
			wantCond: []string{"iss equals https://token.actions.githubusercontent.com", "aud equals https://trustgate.example.com", "repository_owner_id equals 65", "repository_owner equals acme"},
		},
		{
			name:     "unnormalised spec: type inferred from the block",
			spec:     api.ConnectionInput{CircleCI: &api.CircleCISettings{OrganizationID: "o"}},
			issuer:   "https://oidc.circleci.com/org/o",
			jwks:     "https://oidc.circleci.com/org/o/.well-known/jwks-pub.json",
			wantCond: []string{"iss equals https://oidc.circleci.com/org/o", "aud equals o"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Resolve(tt.spec, testOpts)
			if r.Issuer != tt.issuer {
				t.Errorf("Issuer = %q, want %q", r.Issuer, tt.issuer)
			}
			if r.JWKSURL != tt.jwks {
				t.Errorf("JWKSURL = %q, want %q", r.JWKSURL, tt.jwks)
			}
			if got := condStrings(r.EffectiveConditions); !reflect.DeepEqual(got, tt.wantCond) {
				t.Errorf("EffectiveConditions =\n  %q\nwant\n  %q", got, tt.wantCond)
			}
			if !strings.HasPrefix(r.Fingerprint, "sha256:") || len(r.Fingerprint) != len("sha256:")+64 {
				t.Errorf("Fingerprint = %q", r.Fingerprint)
			}
		})
	}
}

func TestResolveEveryPresetPinsIssuerAndAudience(t *testing.T) {
	for _, spec := range []api.ConnectionInput{
		{ProviderType: "github", GitHub: &api.GitHubSettings{OwnerID: "65", Owner: "o"}},
		{ProviderType: "gitlab", GitLab: &api.GitLabSettings{Domain: "gitlab.example.com"}},
		{ProviderType: "circleci", CircleCI: &api.CircleCISettings{OrganizationID: "o"}},
		{ProviderType: "google_cloud", GoogleCloud: &api.GoogleCloudSettings{ClientID: "c", Email: "a@b"}},
	} {
		r := Resolve(spec, testOpts)
		ec := r.EffectiveConditions
		if len(ec) < 2 || ec[0].Claim != "iss" || ec[0].Operator != api.OpEquals || *ec[0].Value != r.Issuer || r.Issuer == "" {
			t.Errorf("%s: first condition does not pin iss: %q", spec.ProviderType, condStrings(ec))
		}
		if ec[1].Claim != "aud" || ec[1].Operator != api.OpEquals || *ec[1].Value == "" {
			t.Errorf("%s: second condition does not pin aud: %q", spec.ProviderType, condStrings(ec))
		}
	}
}

func TestResolveDoesNotAliasUserConditions(t *testing.T) {
	spec := api.ConnectionInput{ProviderType: "generic", Conditions: []api.Condition{{Claim: "a", Operator: "one_of", Values: []string{"x"}, Value: nil}, {Claim: "b", Operator: "equals", Value: sp("y")}}}
	r := Resolve(spec, testOpts)
	r.EffectiveConditions[0].Values[0] = "changed"
	*r.EffectiveConditions[1].Value = "changed"
	if spec.Conditions[0].Values[0] != "x" || *spec.Conditions[1].Value != "y" {
		t.Fatal("Resolve's effective conditions share memory with the spec")
	}
}

// fixtureSpecs are connections that each fixture claim set must satisfy.
func fixtureSpecs() map[string]api.ConnectionInput {
	return map[string]api.ConnectionInput{
		"github-actions.json": {Name: "gh", GitHub: &api.GitHubSettings{
			Owner: "octo-org", OwnerID: "65", Repository: "octo-org/octo-repo", Ref: "refs/heads/main",
			Environment: "prod", Audience: "https://github.com/octo-org",
		}, Conditions: []api.Condition{
			{Claim: "job_workflow_ref", Operator: "starts_with", Value: sp("octo-org/octo-automation/")},
			{Claim: "run_attempt", Operator: "one_of", Values: []string{"1", "2"}},
		}},
		"gitlab-ci.json": {Name: "gl", GitLab: &api.GitLabSettings{
			Domain: "gitlab.example.com", Group: "my-group", ProjectPath: "my-group/my-project", ProjectID: "20",
		}, Conditions: []api.Condition{
			{Claim: "runner_id", Operator: "equals", Value: sp("1")},
			{Claim: "ref_protected", Operator: "equals", Value: sp("true")},
			{Claim: "groups_direct", Operator: "equals", Value: sp("my-group/my-subgroup")},
			{Claim: "/user_identities/0/provider", Operator: "equals", Value: sp("github")},
		}},
		"circleci.json": {Name: "cc", CircleCI: &api.CircleCISettings{
			OrganizationID: "01234567-89ab-cdef-0123-456789abcdef", ProjectID: "abcdef01-2345-6789-abcd-ef0123456789",
		}, Conditions: []api.Condition{
			{Claim: "oidc.circleci.com/context-ids", Operator: "equals", Value: sp("11111111-2222-3333-4444-555555555555")},
			{Claim: "oidc.circleci.com/ssh-rerun", Operator: "equals", Value: sp("false")},
			{Claim: "/oidc.circleci.com~1vcs-ref", Operator: "equals", Value: sp("refs/heads/main")},
		}},
		"google-cloud.json": {Name: "gc", GoogleCloud: &api.GoogleCloudSettings{
			ClientID: "https://trustgate.example.com", Email: "deployer@my-project.iam.gserviceaccount.com", AccountID: "112233445566778899000",
		}, Conditions: []api.Condition{
			{Claim: "/google/compute_engine/project_id", Operator: "equals", Value: sp("my-project")},
			{Claim: "/google/compute_engine/project_number", Operator: "equals", Value: sp("123456789012")},
		}},
	}
}

func TestFixtureClaimsPassTheirPresets(t *testing.T) {
	for file, in := range fixtureSpecs() {
		t.Run(file, func(t *testing.T) {
			spec, err := Normalize(in, testOpts)
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			claims := loadFixture(t, file)
			checks := Evaluate(claims, Resolve(spec, testOpts).EffectiveConditions)
			for _, c := range checks {
				if !c.Passed {
					t.Errorf("%s failed: %s", c.Name, c.Detail)
				}
			}
			if _, err := IdentityValue(claims, spec.IdentityClaim); err != nil {
				t.Errorf("identity: %v", err)
			}
		})
	}
}

// Each fixture, with one claim changed, must be refused by its preset: the preset conditions are
// not decoration.
func TestFixtureClaimsTamperedAreRefused(t *testing.T) {
	tamper := map[string][]struct {
		name  string
		apply func(map[string]any)
	}{
		"github-actions.json": {
			{"other issuer", func(c map[string]any) { c["iss"] = "https://evil.example" }},
			{"other audience", func(c map[string]any) { c["aud"] = "https://github.com/other" }},
			{"other owner", func(c map[string]any) { c["repository_owner"] = "evil-org" }},
			{"other owner id", func(c map[string]any) { c["repository_owner_id"] = "66" }},
			{"other repository", func(c map[string]any) { c["repository"] = "octo-org/other" }},
			{"other ref", func(c map[string]any) { c["ref"] = "refs/heads/dev" }},
			{"no environment", func(c map[string]any) { delete(c, "environment") }},
		},
		"gitlab-ci.json": {
			{"other instance", func(c map[string]any) { c["iss"] = "https://gitlab.com" }},
			{"other audience", func(c map[string]any) { c["aud"] = "https://else.example" }},
			{"project outside group", func(c map[string]any) { c["project_path"] = "my-group-evil/my-project" }},
			{"other project id", func(c map[string]any) { c["project_id"] = "21" }},
			{"project path as object", func(c map[string]any) { c["project_path"] = map[string]any{"x": "my-group/my-project"} }},
		},
		"circleci.json": {
			{"other org issuer", func(c map[string]any) { c["iss"] = "https://oidc.circleci.com/org/other" }},
			{"other org audience", func(c map[string]any) { c["aud"] = "other" }},
			{"other project", func(c map[string]any) { c["oidc.circleci.com/project-id"] = "other" }},
		},
		"google-cloud.json": {
			{"other audience", func(c map[string]any) { c["aud"] = "https://other.example" }},
			{"unverified email", func(c map[string]any) { c["email_verified"] = false }},
			{"email_verified missing", func(c map[string]any) { delete(c, "email_verified") }},
			{"other account", func(c map[string]any) { c["sub"] = "1" }},
			{"other email", func(c map[string]any) { c["email"] = "x@evil.iam.gserviceaccount.com" }},
		},
	}
	specs := fixtureSpecs()
	for file, cases := range tamper {
		spec, err := Normalize(specs[file], testOpts)
		if err != nil {
			t.Fatalf("%s: Normalize: %v", file, err)
		}
		conds := Resolve(spec, testOpts).EffectiveConditions
		for _, tc := range cases {
			t.Run(file+"/"+tc.name, func(t *testing.T) {
				claims := loadFixture(t, file)
				tc.apply(claims)
				if AllPassed(Evaluate(claims, conds)) {
					t.Fatal("tampered claims passed every condition")
				}
			})
		}
	}
}

func TestFingerprintCoversWhatDecidesWhoGetsAToken(t *testing.T) {
	base := api.ConnectionInput{
		Name: "deploy", Description: "d", ProviderType: "github",
		GitHub:        &api.GitHubSettings{OwnerID: "65", Owner: "acme", Repository: "acme/app"},
		TokenTTL:      &api.TokenTTL{Amount: 30, Unit: "minutes"},
		IdentityClaim: "sub",
		Conditions:    []api.Condition{{Claim: "ref", Operator: "equals", Value: sp("refs/heads/main")}},
	}
	fp := Resolve(base, testOpts).Fingerprint
	clone := func(f func(*api.ConnectionInput)) api.ConnectionInput {
		s := base
		g := *base.GitHub
		s.GitHub = &g
		ttl := *base.TokenTTL
		s.TokenTTL = &ttl
		s.Conditions = []api.Condition{cloneCondition(base.Conditions[0])}
		f(&s)
		return s
	}

	same := map[string]api.ConnectionInput{
		"name":        clone(func(s *api.ConnectionInput) { s.Name = "other" }),
		"description": clone(func(s *api.ConnectionInput) { s.Description = "other" }),
		"explicit derived jwks_url equals derived": clone(func(s *api.ConnectionInput) {
			s.JWKSURL = "https://token.actions.githubusercontent.com/.well-known/jwks"
		}),
		"stray block of another type is ignored": clone(func(s *api.ConnectionInput) { s.CircleCI = &api.CircleCISettings{OrganizationID: "x"} }),
		"empty identity means sub":               clone(func(s *api.ConnectionInput) { s.IdentityClaim = "" }),
	}
	for name, s := range same {
		if got := Resolve(s, testOpts).Fingerprint; got != fp {
			t.Errorf("changing %s changed the fingerprint", name)
		}
	}

	differ := map[string]api.ConnectionInput{
		"provider setting":  clone(func(s *api.ConnectionInput) { s.GitHub.Repository = "acme/other" }),
		"audience setting":  clone(func(s *api.ConnectionInput) { s.GitHub.Audience = "https://trustgate.example.com" }),
		"jwks_url override": clone(func(s *api.ConnectionInput) { s.JWKSURL = "https://mirror.example/jwks" }),
		"ttl amount":        clone(func(s *api.ConnectionInput) { s.TokenTTL.Amount = 31 }),
		"ttl unit as given": clone(func(s *api.ConnectionInput) { s.TokenTTL = &api.TokenTTL{Amount: 1800, Unit: "seconds"} }),
		"identity claim":    clone(func(s *api.ConnectionInput) { s.IdentityClaim = "repository" }),
		"user condition":    clone(func(s *api.ConnectionInput) { *s.Conditions[0].Value = "refs/heads/dev" }),
		"condition order": clone(func(s *api.ConnectionInput) {
			s.Conditions = append([]api.Condition{{Claim: "environment", Operator: "exists"}}, s.Conditions...)
		}),
		"provider type": clone(func(s *api.ConnectionInput) {
			s.ProviderType, s.GitHub = "generic", nil
			s.JWKSURL = "https://token.actions.githubusercontent.com/.well-known/jwks"
		}),
	}
	for name, s := range differ {
		if got := Resolve(s, testOpts).Fingerprint; got == fp {
			t.Errorf("changing %s did not change the fingerprint", name)
		}
	}
	// The server's default audience is part of the effective conditions, so of the fingerprint.
	if Resolve(base, Options{DefaultAudience: "https://other.example"}).Fingerprint == fp {
		t.Errorf("changing the server default audience did not change the fingerprint")
	}
	// Deterministic.
	if Resolve(base, testOpts).Fingerprint != fp {
		t.Errorf("fingerprint is not deterministic")
	}
}

// TestFingerprintGolden pins the canonical form: if this fails, every approved fingerprint in
// every deployment would stop matching. Change it only on purpose, with a migration story.
func TestFingerprintGolden(t *testing.T) {
	// A connection stored before owner_id was required: its fingerprint must not move when
	// fields are added to the canonical form (they go at the end, omitted when empty).
	spec := api.ConnectionInput{
		Name: "deploy", ProviderType: "github",
		GitHub:        &api.GitHubSettings{Owner: "acme", Repository: "acme/app"},
		TokenTTL:      &api.TokenTTL{Amount: 1, Unit: "hours"},
		IdentityClaim: "sub",
		Conditions:    []api.Condition{{Claim: "ref", Operator: "equals", Value: sp("refs/heads/main")}},
	}
	// sha256 of exactly this text (checked with sha256sum):
	// {"provider_type":"github","github":{"owner":"acme","repository":"acme/app"},
	// "jwks_url":"https://token.actions.githubusercontent.com/.well-known/jwks",
	// "token_ttl":{"amount":1,"unit":"hours"},"identity_claim":"sub","effective_conditions":[
	// {"claim":"iss","operator":"equals","value":"https://token.actions.githubusercontent.com"},
	// {"claim":"aud","operator":"equals","value":"https://trustgate.example.com"},
	// {"claim":"repository_owner","operator":"equals","value":"acme"},
	// {"claim":"repository","operator":"equals","value":"acme/app"},
	// {"claim":"ref","operator":"equals","value":"refs/heads/main"}]}
	// (one line, no spaces).
	const want = "sha256:b5efe69ea0f84061154a996534af1b586531c5d33770e4a31af7d9cee8f19b9c"
	got := Resolve(spec, Options{DefaultAudience: "https://trustgate.example.com"}).Fingerprint
	if got != want {
		t.Fatalf("fingerprint = %s, want %s", got, want)
	}
}
