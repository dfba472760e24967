package connection

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
)

func TestNotEqualsAndGlobAreTypedAndArrayAware(t *testing.T) {
	claims := parseClaims(t, `{
		"ref": "refs/heads/release/1.2", "deep": "refs/heads/release/1.2/hotfix",
		"env": "prod", "n": 42, "b": true, "nul": null, "obj": {"a": "b"},
		"tags": ["x", "refs/heads/release/2"], "nums": [1, 2], "empty": []
	}`)
	c := func(claim, op, v string) api.Condition { return api.Condition{Claim: claim, Operator: op, Value: &v} }
	tests := []struct {
		cond api.Condition
		want bool
	}{
		{c("env", api.OpNotEquals, "dev"), true},
		{c("env", api.OpNotEquals, "prod"), false},
		{c("missing", api.OpNotEquals, "prod"), false}, // must be present
		{c("nul", api.OpNotEquals, "prod"), false},     // null never matches
		{c("obj", api.OpNotEquals, "prod"), false},     // an object is not comparable: fail closed
		{c("n", api.OpNotEquals, "42"), false},         // typed: 42 equals "42"
		{c("n", api.OpNotEquals, "42.0"), false},
		{c("n", api.OpNotEquals, "43"), true},
		{c("b", api.OpNotEquals, "true"), false},
		{c("tags", api.OpNotEquals, "x"), false}, // an array: no element may equal it
		{c("tags", api.OpNotEquals, "y"), true},
		{c("nums", api.OpNotEquals, "2"), false},
		{c("empty", api.OpNotEquals, "x"), true},

		{c("ref", api.OpGlob, "refs/heads/release/*"), true},
		{c("deep", api.OpGlob, "refs/heads/release/*"), false},
		{c("deep", api.OpGlob, "refs/heads/release/**"), true},
		{c("/ref", api.OpGlob, "refs/heads/*/1.?"), true},
		{c("tags", api.OpGlob, "refs/heads/release/*"), true}, // any element
		{c("tags", api.OpGlob, "main"), false},
		{c("n", api.OpGlob, "4?"), false}, // numbers never match
		{c("b", api.OpGlob, "t*e"), false},
		{c("obj", api.OpGlob, "*b*"), false},
		{c("nums", api.OpGlob, "1"), false},
		{c("missing", api.OpGlob, "x*"), false},
	}
	for _, tt := range tests {
		got := EvaluateCondition(claims, tt.cond)
		if got.Passed != tt.want {
			t.Errorf("%s %s %q: passed = %v, want %v (%s)", tt.cond.Claim, tt.cond.Operator, *tt.cond.Value, got.Passed, tt.want, got.Detail)
		}
		if !got.Passed && got.Detail == "" {
			t.Errorf("%s %s: a failure without a detail", tt.cond.Claim, tt.cond.Operator)
		}
	}
}

func publicJWKS(t *testing.T, opts devissuer.Options) string {
	t.Helper()
	iss, err := devissuer.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := iss.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestNewFieldsAreValidated(t *testing.T) {
	jwks := publicJWKS(t, devissuer.Options{KID: "k1"})
	var doc map[string][]map[string]any
	if err := json.Unmarshal([]byte(jwks), &doc); err != nil {
		t.Fatal(err)
	}
	doc["keys"][0]["d"] = "c2VjcmV0"
	withPrivate, _ := json.Marshal(doc)
	sym := `{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}`
	pinned := genericPinned()
	glob := func(v string) []api.Condition {
		return append(genericPinned(), api.Condition{Claim: "ref", Operator: api.OpGlob, Value: &v})
	}
	tests := []struct {
		name   string
		in     api.ConnectionInput
		fields []string // nil: accepted
		detail string
	}{
		{"issuer_url for discovery", api.ConnectionInput{IssuerURL: "https://idp.example", Conditions: pinned[1:]}, nil, ""},
		{"issuer_url on a preset", api.ConnectionInput{IssuerURL: "https://idp.example", GitHub: github("acme")}, []string{"issuer_url"}, "generic connections only"},
		{"issuer_url over http", api.ConnectionInput{IssuerURL: "http://idp.example", Conditions: pinned}, []string{"issuer_url"}, "https"},
		{"issuer_url with a trailing slash", api.ConnectionInput{IssuerURL: "https://tenant.auth0.example/", Conditions: pinned[1:]}, nil, ""},
		{"issuer_url with a query", api.ConnectionInput{IssuerURL: "https://idp.example/?tenant=1", Conditions: pinned}, []string{"issuer_url"}, "byte for byte"},
		{"issuer_url on a private address", api.ConnectionInput{IssuerURL: "https://10.1.2.3", Conditions: pinned}, []string{"issuer_url"}, "private"},
		{"two key sources", api.ConnectionInput{JWKSURL: "https://idp.example/jwks", IssuerURL: "https://idp.example", Conditions: pinned}, []string{"issuer_url"}, "only one key source"},
		{"three key sources", api.ConnectionInput{JWKSURL: "https://idp.example/jwks", IssuerURL: "https://idp.example", JWKS: jwks, Conditions: pinned}, []string{"issuer_url", "jwks"}, ""},
		{"inline jwks on generic", api.ConnectionInput{JWKS: jwks, Conditions: pinned}, nil, ""},
		{"inline jwks on a preset", api.ConnectionInput{JWKS: jwks, GitLab: &api.GitLabSettings{Domain: "gitlab.acme.example"}}, nil, ""},
		{"inline jwks with a private key", api.ConnectionInput{JWKS: string(withPrivate), Conditions: pinned}, []string{"jwks"}, "private member \"d\""},
		{"inline symmetric key", api.ConnectionInput{JWKS: sym, Conditions: pinned}, []string{"jwks"}, "private member \"k\""},
		{"inline jwks not a JWKS", api.ConnectionInput{JWKS: `["a"]`, Conditions: pinned}, []string{"jwks"}, "not a JWKS"},
		{"inline jwks without keys", api.ConnectionInput{JWKS: `{"keys":[]}`, Conditions: pinned}, []string{"jwks"}, "no keys"},
		{"inline jwks too big", api.ConnectionInput{JWKS: `{"keys":[],"x":"` + strings.Repeat("a", api.MaxInlineJWKSBytes) + `"}`, Conditions: pinned}, []string{"jwks"}, "at most"},
		{"no key source at all", api.ConnectionInput{Conditions: pinned}, []string{"jwks_url"}, "issuer_url"},
		{"claim mappings", api.ConnectionInput{JWKSURL: "https://idp.example/jwks", Conditions: pinned,
			ClaimMappings: map[string]string{"repository": "repository", "project": "/google/project_id"}}, nil, ""},
		{"claim mapping bad name", api.ConnectionInput{JWKSURL: "https://idp.example/jwks", Conditions: pinned,
			ClaimMappings: map[string]string{"Repo": "repository", "ok": "x"}}, []string{"claim_mappings.Repo"}, ""},
		{"claim mapping bad pointer", api.ConnectionInput{JWKSURL: "https://idp.example/jwks", Conditions: pinned,
			ClaimMappings: map[string]string{"x": "/a~2b"}}, []string{"claim_mappings.x"}, "pointer"},
		{"too many claim mappings", api.ConnectionInput{JWKSURL: "https://idp.example/jwks", Conditions: pinned,
			ClaimMappings: manyMappings(21)}, []string{"claim_mappings"}, "at most 20"},
		{"token audiences", api.ConnectionInput{JWKSURL: "https://idp.example/jwks", Conditions: pinned, TokenAudience: []string{"https://api.example", "vault"}}, nil, ""},
		{"token audience duplicated and blank", api.ConnectionInput{JWKSURL: "https://idp.example/jwks", Conditions: pinned, TokenAudience: []string{"a", "a", " b"}}, []string{"token_audience[1]", "token_audience[2]"}, ""},
		{"too many token audiences", api.ConnectionInput{JWKSURL: "https://idp.example/jwks", Conditions: pinned, TokenAudience: strings.Split("a,b,c,d,e,f,g,h,i,j,k", ",")}, []string{"token_audience"}, ""},
		{"glob", api.ConnectionInput{JWKSURL: "https://idp.example/jwks", Conditions: glob("refs/heads/release/*")}, nil, ""},
		{"glob of wildcards only", api.ConnectionInput{JWKSURL: "https://idp.example/jwks", Conditions: glob("**")}, []string{"conditions[2].value"}, "exists"},
		{"glob of one star", api.ConnectionInput{JWKSURL: "https://idp.example/jwks", Conditions: glob("*")}, []string{"conditions[2].value"}, "exists"},
		{"glob too long", api.ConnectionInput{JWKSURL: "https://idp.example/jwks", Conditions: glob(strings.Repeat("a", 257))}, []string{"conditions[2].value"}, "256"},
		{"not_equals without value", api.ConnectionInput{JWKSURL: "https://idp.example/jwks", Conditions: append(genericPinned(), api.Condition{Claim: "env", Operator: api.OpNotEquals})}, []string{"conditions[2].value"}, "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			in.Name = "n"
			out, err := Normalize(in, testOpts)
			if tt.fields == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !SameConfig(out, normalized(t, in)) {
					t.Fatal("normalising twice differs")
				}
				return
			}
			got := validationFields(t, err)
			if strings.Join(got, ",") != strings.Join(tt.fields, ",") {
				t.Fatalf("fields = %q, want %q (%v)", got, tt.fields, err)
			}
			if !strings.Contains(err.Error(), tt.detail) {
				t.Fatalf("error %q does not say %q", err, tt.detail)
			}
		})
	}
}

func manyMappings(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m["c"+strings.Repeat("x", i)] = "sub"
	}
	return m
}

func TestNewFieldsResolveAndFingerprint(t *testing.T) {
	disc := normalized(t, api.ConnectionInput{Name: "d", IssuerURL: "https://idp.example", Conditions: genericPinned()[1:]})
	r := Resolve(disc, testOpts)
	if r.IssuerURL != "https://idp.example" || r.JWKSURL != "" || len(r.EffectiveConditions) != 2 ||
		r.EffectiveConditions[0].Claim != "iss" || *r.EffectiveConditions[0].Value != "https://idp.example" {
		t.Fatalf("issuer_url resolves to %+v", r)
	}

	k1 := publicJWKS(t, devissuer.Options{KID: "k1"})
	k2 := publicJWKS(t, devissuer.Options{KID: "k2", Alg: "ES256"})
	var a, b map[string][]json.RawMessage
	_ = json.Unmarshal([]byte(k1), &a)
	_ = json.Unmarshal([]byte(k2), &b)
	both := func(first, second json.RawMessage) string {
		doc, _ := json.Marshal(map[string]any{"keys": []json.RawMessage{first, second}})
		return string(doc)
	}
	gl := normalized(t, api.ConnectionInput{Name: "g", JWKS: both(a["keys"][0], b["keys"][0]), GitLab: &api.GitLabSettings{Domain: "gitlab.acme.example"}})
	rg := Resolve(gl, testOpts)
	if rg.JWKSURL != "" || rg.InlineJWKS == "" || len(rg.JWKSThumbprints) != 2 {
		t.Fatalf("inline jwks on a preset resolves to jwks_url %q, %d thumbprints", rg.JWKSURL, len(rg.JWKSThumbprints))
	}
	swapped := gl
	swapped.JWKS = both(b["keys"][0], a["keys"][0])
	if Resolve(swapped, testOpts).Fingerprint != rg.Fingerprint {
		t.Error("reordering the inline keys changed the fingerprint")
	}
	other := gl
	other.JWKS = k1
	if Resolve(other, testOpts).Fingerprint == rg.Fingerprint {
		t.Error("removing an inline key did not change the fingerprint")
	}

	base := normalized(t, api.ConnectionInput{Name: "b", JWKSURL: "https://idp.example/jwks", Conditions: genericPinned()})
	fp := Resolve(base, testOpts).Fingerprint
	for name, change := range map[string]func(*api.ConnectionInput){
		"claim_mappings": func(s *api.ConnectionInput) { s.ClaimMappings = map[string]string{"repo": "repository"} },
		"token_audience": func(s *api.ConnectionInput) { s.TokenAudience = []string{"vault"} },
		"single_use":     func(s *api.ConnectionInput) { s.SingleUse = true },
	} {
		s := cloneSpec(base)
		change(&s)
		if Resolve(s, testOpts).Fingerprint == fp {
			t.Errorf("%s is not covered by the fingerprint", name)
		}
	}
}

func TestIssuerURLPinsIssForTenancyAndNamesSharedIssuers(t *testing.T) {
	if _, err := Normalize(api.ConnectionInput{Name: "d", IssuerURL: "https://idp.example"}, testOpts); err == nil ||
		!strings.Contains(err.Error(), "on aud") || strings.Contains(err.Error(), "on iss") {
		t.Fatalf("issuer_url without an aud condition: %v; want only aud missing", err)
	}
	_, err := Normalize(api.ConnectionInput{Name: "d", IssuerURL: "https://token.actions.githubusercontent.com",
		Conditions: genericPinned()[1:]}, testOpts)
	if err == nil || !strings.Contains(err.Error(), "repository_owner_id") {
		t.Fatalf("discovery on GitHub's issuer without an owner id: %v, want refused", err)
	}
}

// TestFingerprintGoldenV2Fields pins the canonical form of the fields v2 added to a connection.
func TestFingerprintGoldenV2Fields(t *testing.T) {
	x := "x"
	spec := api.ConnectionInput{
		Name: "d", ProviderType: "generic", IssuerURL: "https://idp.example",
		TokenTTL: &api.TokenTTL{Amount: 1, Unit: "hours"}, IdentityClaim: "sub",
		Conditions:    []api.Condition{{Claim: "aud", Operator: "equals", Value: &x}},
		ClaimMappings: map[string]string{"repo": "repository"}, TokenAudience: []string{"vault"}, SingleUse: true,
	}
	// sha256 of exactly this text (checked with sha256sum; one line, no spaces):
	// {"provider_type":"generic","jwks_url":"","token_ttl":{"amount":1,"unit":"hours"},"identity_claim":"sub",
	// "effective_conditions":[{"claim":"iss","operator":"equals","value":"https://idp.example"},
	// {"claim":"aud","operator":"equals","value":"x"}],"issuer_url":"https://idp.example",
	// "claim_mappings":{"repo":"repository"},"token_audience":["vault"],"single_use":true}
	const want = "sha256:b7c34000842c4b48e42681dd6a76a4213b7f6eb28ca7b06e25e5c674e000396a"
	if got := Resolve(spec, testOpts).Fingerprint; got != want {
		t.Fatalf("fingerprint = %s, want %s", got, want)
	}
}
