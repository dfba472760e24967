package connection

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

func TestMappedClaimsCopyScalarsAndScalarArraysOnly(t *testing.T) {
	claims := parseClaims(t, `{
		"repository": "acme/app", "run": 42, "big": 9007199254740993, "protected": true,
		"groups": ["a", "b"], "mixed": ["a", 1, false], "empty": [],
		"objs": [{"a": 1}], "nested": [["a"]], "withnull": ["a", null], "nul": null,
		"obj": {"project": {"id": 7, "path": "acme/app"}}, "a/b": "slash"
	}`)
	got := MappedClaims(claims, map[string]string{
		"repository": "repository", "run": "run", "big": "big", "protected": "protected",
		"groups": "groups", "mixed": "mixed", "empty": "empty",
		"project_id": "/obj/project/id", "first_group": "/groups/0", "slash": "a/b",
		"objs": "objs", "nested": "nested", "withnull": "withnull", "nul": "nul",
		"project": "/obj/project", "missing": "nope", "missing_ptr": "/obj/nope",
	})
	want := parseClaims(t, `{
		"repository": "acme/app", "run": 42, "big": 9007199254740993, "protected": true,
		"groups": ["a", "b"], "mixed": ["a", 1, false], "empty": [],
		"project_id": 7, "first_group": "a", "slash": "slash"
	}`)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("mapped %v\nwant   %v", got, want)
	}
	if n, ok := got["big"].(json.Number); !ok || n != "9007199254740993" {
		t.Errorf("a large number is %#v, want its exact text", got["big"])
	}
	if m := MappedClaims(claims, nil); m != nil {
		t.Errorf("no mappings gave %v, want nil (no claims member)", m)
	}
	if m := MappedClaims(claims, map[string]string{"x": "nope"}); m == nil || len(m) != 0 {
		t.Errorf("mappings that find nothing gave %#v, want an empty object", m)
	}
}

func TestIssuedAudience(t *testing.T) {
	const public = "https://tg.example"
	none := api.ConnectionInput{}
	two := api.ConnectionInput{TokenAudience: []string{"https://deploy.example", "https://artifacts.example"}}
	tests := []struct {
		spec      api.ConnectionInput
		requested string
		want      []string
		ok        bool
	}{
		{none, "", []string{public}, true},
		{none, public, []string{public}, true},
		{none, "https://deploy.example", nil, false},
		{two, "", []string{"https://deploy.example", "https://artifacts.example"}, true},
		{two, "https://artifacts.example", []string{"https://artifacts.example"}, true},
		{two, public, nil, false}, // the public URL is not among them any more
		{two, "https://DEPLOY.example", nil, false},
	}
	for _, tc := range tests {
		got, ok := IssuedAudience(tc.spec, public, tc.requested)
		if ok != tc.ok || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v asked %q: got %v %v, want %v %v", tc.spec.TokenAudience, tc.requested, got, ok, tc.want, tc.ok)
		}
		if ok && !AudienceAllowed(tc.spec, public, got) {
			t.Errorf("%v: the issued audience %v is not allowed back", tc.spec.TokenAudience, got)
		}
	}
	if AudienceAllowed(two, public, []string{"https://deploy.example", public}) || AudienceAllowed(two, public, nil) {
		t.Error("an audience with an entry the connection does not issue, or none, was allowed")
	}
}

func TestSingleUseKey(t *testing.T) {
	a := SingleUseKey(map[string]any{"iss": "https://ci.example", "jti": "1"}, "token-a")
	if a != SingleUseKey(map[string]any{"iss": "https://ci.example", "jti": "1", "sub": "x"}, "token-b") {
		t.Error("two tokens with the same iss and jti have different keys")
	}
	for _, other := range []map[string]any{
		{"iss": "https://ci.example", "jti": "2"},
		{"iss": "https://other.example", "jti": "1"},
		{"iss": "https://ci.example1", "jti": ""}, // no jti: by hash
		{"iss": "https://ci.exampl", "jti": "e1"}, // the same concatenation, another pair
	} {
		if SingleUseKey(other, "token-a") == a {
			t.Errorf("%v has the key of iss https://ci.example jti 1", other)
		}
	}
	h := SingleUseKey(map[string]any{"iss": "x"}, "token-a")
	if !strings.HasPrefix(h, "sha256:") || h == SingleUseKey(map[string]any{"iss": "x"}, "token-b") ||
		h != SingleUseKey(map[string]any{"iss": "x", "jti": 7}, "token-a") {
		t.Errorf("without a string jti the key must be the token's hash: %s", h)
	}
	if len(SingleUseKey(map[string]any{"iss": "x", "jti": strings.Repeat("j", 10000)}, "")) > 64 {
		t.Error("a long jti gives a long key")
	}
}
