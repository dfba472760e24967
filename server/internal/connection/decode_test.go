package connection

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

func TestDecodeInputAcceptsTheWireShape(t *testing.T) {
	body := `{
		"name": "deploy", "description": "d", "provider_type": "github",
		"github": {"owner": "acme", "repository": "acme/app", "audience": null},
		"jwks_url": "https://x.example/jwks",
		"token_ttl": {"amount": 30, "unit": "minutes"},
		"identity_claim": "sub",
		"conditions": [
			{"claim": "ref", "operator": "equals", "value": "refs/heads/main"},
			{"claim": "environment", "operator": "exists", "value": null},
			{"claim": "x", "operator": "one_of", "values": ["a", "b"]}
		]
	}`
	got, err := DecodeInput([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	want := api.ConnectionInput{
		Name: "deploy", Description: "d", ProviderType: "github",
		GitHub:        &api.GitHubSettings{Owner: "acme", Repository: "acme/app"},
		JWKSURL:       "https://x.example/jwks",
		TokenTTL:      &api.TokenTTL{Amount: 30, Unit: "minutes"},
		IdentityClaim: "sub",
		Conditions: []api.Condition{
			{Claim: "ref", Operator: "equals", Value: sp("refs/heads/main")},
			{Claim: "environment", Operator: "exists"},
			{Claim: "x", Operator: "one_of", Values: []string{"a", "b"}},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

func TestDecodeInputKeepsEmptyStringValue(t *testing.T) {
	got, err := DecodeInput([]byte(`{"name":"a","conditions":[{"claim":"base_ref","operator":"equals","value":""}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got.Conditions[0].Value == nil || *got.Conditions[0].Value != "" {
		t.Fatalf("value \"\" decoded as %v; it must differ from an absent value", got.Conditions[0].Value)
	}
}

func TestDecodeInputRefuses(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantFields []string
		detailHas  string
	}{
		{"unknown top-level field", `{"name":"a","colour":"red"}`, []string{"colour"}, ""},
		{"field in wrong case", `{"Name":"a"}`, []string{"Name"}, ""},
		{"status is read-only, not an input", `{"name":"a","status":"active"}`, []string{"status"}, ""},
		{"read-only fingerprint", `{"name":"a","fingerprint":"sha256:x"}`, []string{"fingerprint"}, ""},
		{"unknown field in a preset block", `{"name":"a","github":{"owner":"acme","repo":"x"}}`, []string{"github.repo"}, ""},
		{"unknown field in token_ttl", `{"name":"a","token_ttl":{"amount":1,"unit":"hours","seconds":3}}`, []string{"token_ttl.seconds"}, ""},
		{"unknown field in a condition", `{"name":"a","conditions":[{"claim":"a","operator":"exists"},{"claim":"b","operator":"equals","valeu":"x"}]}`, []string{"conditions[1].valeu"}, ""},
		{"several unknown fields at once", `{"nam":"a","github":{"onwer":"x"},"condition":[]}`, []string{"condition", "github.onwer", "nam"}, ""},
		{"name not a string", `{"name":5}`, []string{"name"}, ""},
		{"amount not an integer", `{"name":"a","token_ttl":{"amount":1.5,"unit":"hours"}}`, []string{"token_ttl.amount"}, ""},
		{"amount as a string", `{"name":"a","token_ttl":{"amount":"30","unit":"hours"}}`, []string{"token_ttl.amount"}, ""},
		{"amount out of int64 range", `{"name":"a","token_ttl":{"amount":99999999999999999999,"unit":"hours"}}`, []string{"token_ttl.amount"}, ""},
		{"value as a number", `{"name":"a","conditions":[{"claim":"n","operator":"equals","value":42}]}`, []string{"conditions[0].value"}, ""},
		{"values not a list", `{"name":"a","conditions":[{"claim":"n","operator":"one_of","values":"x"}]}`, []string{"conditions[0].values"}, ""},
		{"values with a number", `{"name":"a","conditions":[{"claim":"n","operator":"one_of","values":["x",1]}]}`, []string{"conditions[0].values[1]"}, ""},
		{"conditions as an object", `{"name":"a","conditions":{"claim":"x"}}`, []string{"conditions"}, ""},
		{"block as a string", `{"name":"a","github":"acme"}`, []string{"github"}, ""},
		{"body an array", `[{"name":"a"}]`, nil, "JSON object"},
		{"body a string", `"a"`, nil, "JSON object"},
		{"body null", `null`, nil, "JSON object"},
		{"body empty", ``, nil, "empty"},
		{"body white space", " \n", nil, "empty"},
		{"bad JSON", `{"name": "a",}`, nil, "not valid JSON"},
		{"truncated JSON", `{"name": "a"`, nil, "not valid JSON"},
		{"two JSON values", `{"name":"a"}{"name":"b"}`, nil, "more than one"},
		{"trailing garbage", `{"name":"a"} x`, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeInput([]byte(tt.body))
			if err == nil {
				t.Fatal("accepted")
			}
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindValidation {
				t.Fatalf("error %v is not a validation *Error", err)
			}
			if e.Detail == "" {
				t.Errorf("no detail")
			}
			var got []string
			for _, f := range e.Fields {
				got = append(got, f.Field)
			}
			if !reflect.DeepEqual(got, tt.wantFields) {
				t.Errorf("fields = %q, want %q (%v)", got, tt.wantFields, err)
			}
			if tt.detailHas != "" && !strings.Contains(e.Detail, tt.detailHas) {
				t.Errorf("detail %q lacks %q", e.Detail, tt.detailHas)
			}
		})
	}
}

func TestDecodeInputSuggestsTheField(t *testing.T) {
	_, err := DecodeInput([]byte(`{"name":"a","condition":[]}`))
	var e *Error
	if !errors.As(err, &e) || len(e.Fields) != 1 || !strings.Contains(e.Fields[0].Detail, `"conditions"`) {
		t.Fatalf("want a suggestion of conditions, got %v", err)
	}
}

func TestDecodeInputSyntaxErrorHasPosition(t *testing.T) {
	_, err := DecodeInput([]byte("{\n  \"name\": \"a\",\n  oops\n}"))
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("want the line of the error, got %v", err)
	}
}

func normalized(t *testing.T, in api.ConnectionInput) api.ConnectionInput {
	t.Helper()
	out, err := Normalize(in, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestApplyMergePatch(t *testing.T) {
	githubSpec := normalized(t, api.ConnectionInput{
		Name: "deploy", Description: "d",
		GitHub:   &api.GitHubSettings{OwnerID: "65", Owner: "acme", Repository: "acme/app", Audience: "aud"},
		JWKSURL:  "https://mirror.example/jwks",
		TokenTTL: &api.TokenTTL{Amount: 30, Unit: "minutes"},
		Conditions: []api.Condition{
			{Claim: "ref", Operator: "equals", Value: sp("refs/heads/main")},
			{Claim: "environment", Operator: "exists"},
		},
	})
	tests := []struct {
		name  string
		patch string
		check func(t *testing.T, got api.ConnectionInput)
	}{
		{"empty patch changes nothing", `{}`, func(t *testing.T, got api.ConnectionInput) {
			if !reflect.DeepEqual(got, githubSpec) {
				t.Fatalf("got %+v", got)
			}
		}},
		{"set description", `{"description":"new"}`, func(t *testing.T, got api.ConnectionInput) {
			if got.Description != "new" || got.Name != "deploy" || got.GitHub.Repository != "acme/app" {
				t.Fatalf("got %+v", got)
			}
		}},
		{"null description removes it", `{"description":null}`, func(t *testing.T, got api.ConnectionInput) {
			if got.Description != "" {
				t.Fatalf("got %q", got.Description)
			}
		}},
		{"null jwks_url derives again", `{"jwks_url":null}`, func(t *testing.T, got api.ConnectionInput) {
			if got.JWKSURL != "" {
				t.Fatalf("got %q", got.JWKSURL)
			}
			n := normalized(t, got)
			if r := Resolve(n, testOpts); r.JWKSURL != "https://token.actions.githubusercontent.com/.well-known/jwks" {
				t.Fatalf("effective %q", r.JWKSURL)
			}
		}},
		{"null token_ttl defaults again", `{"token_ttl":null}`, func(t *testing.T, got api.ConnectionInput) {
			if got.TokenTTL != nil {
				t.Fatalf("got %+v", got.TokenTTL)
			}
			if n := normalized(t, got); *n.TokenTTL != (api.TokenTTL{Amount: 1, Unit: "hours"}) {
				t.Fatalf("normalised %+v", n.TokenTTL)
			}
		}},
		{"token_ttl merges member by member", `{"token_ttl":{"amount":45}}`, func(t *testing.T, got api.ConnectionInput) {
			if *got.TokenTTL != (api.TokenTTL{Amount: 45, Unit: "minutes"}) {
				t.Fatalf("got %+v", got.TokenTTL)
			}
		}},
		{"preset field merges, others kept", `{"github":{"ref":"refs/heads/main"}}`, func(t *testing.T, got api.ConnectionInput) {
			if got.GitHub.Ref != "refs/heads/main" || got.GitHub.Repository != "acme/app" || got.GitHub.Owner != "acme" {
				t.Fatalf("got %+v", got.GitHub)
			}
		}},
		{"null preset field removes it", `{"github":{"audience":null}}`, func(t *testing.T, got api.ConnectionInput) {
			if got.GitHub.Audience != "" {
				t.Fatalf("got %+v", got.GitHub)
			}
		}},
		{"conditions replaced as a whole", `{"conditions":[{"claim":"sha","operator":"exists"}]}`, func(t *testing.T, got api.ConnectionInput) {
			if len(got.Conditions) != 1 || got.Conditions[0].Claim != "sha" {
				t.Fatalf("got %+v", got.Conditions)
			}
		}},
		{"null conditions removes all", `{"conditions":null}`, func(t *testing.T, got api.ConnectionInput) {
			if len(got.Conditions) != 0 {
				t.Fatalf("got %+v", got.Conditions)
			}
		}},
		{"switching preset re-infers provider_type", `{"github":null,"circleci":{"organization_id":"org"}}`, func(t *testing.T, got api.ConnectionInput) {
			if got.GitHub != nil || got.CircleCI == nil || got.ProviderType != "" {
				t.Fatalf("got %+v", got)
			}
			if n := normalized(t, api.ConnectionInput{Name: got.Name, CircleCI: got.CircleCI}); n.ProviderType != "circleci" {
				t.Fatalf("normalised type %q", n.ProviderType)
			}
		}},
		{"explicit provider_type is kept for Normalize to check", `{"provider_type":"github","github":null,"circleci":{"organization_id":"org"}}`, func(t *testing.T, got api.ConnectionInput) {
			if got.ProviderType != "github" {
				t.Fatalf("got %q", got.ProviderType)
			}
			if _, err := Normalize(got, testOpts); err == nil {
				t.Fatal("Normalize accepted a github type without a github block")
			}
		}},
		{"patch without preset keys keeps provider_type", `{"name":"other"}`, func(t *testing.T, got api.ConnectionInput) {
			if got.ProviderType != "github" || got.Name != "other" {
				t.Fatalf("got %+v", got)
			}
		}},
		{"null identity_claim defaults again", `{"identity_claim":null}`, func(t *testing.T, got api.ConnectionInput) {
			if got.IdentityClaim != "" || normalized(t, got).IdentityClaim != "sub" {
				t.Fatalf("got %q", got.IdentityClaim)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := Resolve(githubSpec, testOpts).Fingerprint
			got, err := ApplyMergePatch(githubSpec, []byte(tt.patch))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, got)
			if Resolve(githubSpec, testOpts).Fingerprint != before || githubSpec.Conditions[0].Claim != "ref" {
				t.Fatal("ApplyMergePatch changed the current spec")
			}
		})
	}
}

func TestApplyMergePatchRefuses(t *testing.T) {
	current := normalized(t, api.ConnectionInput{Name: "deploy", GitHub: github("acme")})
	tests := []struct {
		name       string
		patch      string
		wantFields []string
		detailHas  string
	}{
		{"unknown field", `{"colour":"red"}`, []string{"colour"}, ""},
		{"unknown nested field", `{"github":{"repo":"x"}}`, []string{"github.repo"}, ""},
		{"read-only field", `{"revision":3}`, []string{"revision"}, ""},
		{"wrong type", `{"token_ttl":{"amount":"x"}}`, []string{"token_ttl.amount"}, ""},
		{"patch is an array", `[{"op":"replace","path":"/name","value":"x"}]`, nil, "JSON object"},
		{"patch is null", `null`, nil, "JSON object"},
		{"patch is not JSON", `{name: x}`, nil, "not valid JSON"},
		{"patch is empty", ``, nil, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ApplyMergePatch(current, []byte(tt.patch))
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindValidation {
				t.Fatalf("error %v is not a validation *Error", err)
			}
			var got []string
			for _, f := range e.Fields {
				got = append(got, f.Field)
			}
			if !reflect.DeepEqual(got, tt.wantFields) {
				t.Errorf("fields = %q, want %q", got, tt.wantFields)
			}
			if tt.detailHas != "" && !strings.Contains(e.Detail, tt.detailHas) {
				t.Errorf("detail %q lacks %q", e.Detail, tt.detailHas)
			}
		})
	}
}

func TestErrorMessageAndKind(t *testing.T) {
	e := Validation(api.FieldError{Field: "name", Detail: "is required"}, api.FieldError{Field: "jwks_url", Detail: "must use https"})
	if got := e.Error(); got != DefaultValidationDetail+": name: is required; jwks_url: must use https" {
		t.Errorf("Error() = %q", got)
	}
	if Conflict("x").Error() != "x" {
		t.Errorf("Conflict Error() = %q", Conflict("x").Error())
	}
	kinds := map[Kind]*Error{KindValidation: e, KindForbidden: Forbidden("f"), KindConflict: Conflict("c"),
		KindPrecondition: Precondition("p"), KindNotFound: NotFound("n")}
	for k, err := range kinds {
		if KindOf(err) != k || k.String() == "unknown" {
			t.Errorf("KindOf(%v) = %v", err, KindOf(err))
		}
	}
	if KindOf(errors.New("plain")) != 0 || KindOf(nil) != 0 {
		t.Errorf("KindOf of a non-domain error is not 0")
	}
}
