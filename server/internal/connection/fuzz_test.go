package connection

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// decodeClaimsForFuzz decodes a claim set as the jwtverify package does; ok=false when the input
// is not a JSON object.
func decodeClaimsForFuzz(s string) (map[string]any, bool) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, false
	}
	return m, true
}

const fuzzClaims = `{"iss":"https://token.actions.githubusercontent.com","aud":["a","b"],"n":42,"f":4.2e1,"t":true,
"nul":null,"obj":{"a/b":{"c~d":[1,"x"]}},"oidc.circleci.com/project-id":"p","":"empty","big":1e400}`

func FuzzEvaluateCondition(f *testing.F) {
	seeds := []struct {
		claims, claim, op, value string
		hasValue                 bool
		values                   string
	}{
		{fuzzClaims, "iss", "equals", "https://token.actions.githubusercontent.com", true, ""},
		{fuzzClaims, "aud", "equals", "b", true, ""},
		{fuzzClaims, "n", "equals", "42.0", true, ""},
		{fuzzClaims, "f", "one_of", "", false, "41\n42"},
		{fuzzClaims, "t", "equals", "true", true, ""},
		{fuzzClaims, "nul", "exists", "", false, ""},
		{fuzzClaims, "obj", "starts_with", "{", true, ""},
		{fuzzClaims, "/obj/a~1b/c~0d/1", "equals", "x", true, ""},
		{fuzzClaims, "/obj/a~1b/c~0d/01", "equals", "x", true, ""},
		{fuzzClaims, "/obj/~2", "exists", "", false, ""},
		{fuzzClaims, "oidc.circleci.com/project-id", "equals", "p", true, ""},
		{fuzzClaims, "/", "equals", "empty", true, ""},
		{fuzzClaims, "big", "equals", "1e400", true, ""},
		{fuzzClaims, "missing", "exists", "", false, ""},
		{fuzzClaims, "iss", "regex", ".*", true, ""},
		{`{"a":[[["x"]]]}`, "a", "equals", "x", true, ""},
		{`{"a":1e999999999}`, "a", "equals", "1", true, ""},
		{`{"a":-0.0}`, "a", "equals", "0", true, ""},
		{`{}`, "", "equals", "", true, ""},
	}
	for _, s := range seeds {
		f.Add(s.claims, s.claim, s.op, s.value, s.hasValue, s.values)
	}
	f.Fuzz(func(t *testing.T, claimsJSON, claim, op, value string, hasValue bool, values string) {
		claims, ok := decodeClaimsForFuzz(claimsJSON)
		if !ok {
			return
		}
		c := api.Condition{Claim: claim, Operator: op}
		if hasValue {
			c.Value = &value
		}
		if values != "" {
			c.Values = strings.Split(values, "\n")
		}
		check := EvaluateCondition(claims, c)

		if want := "condition: " + claim + " " + op; check.Name != want {
			t.Fatalf("name %q, want %q", check.Name, want)
		}
		if check.Passed == (check.Detail != "") {
			t.Fatalf("passed=%v with detail %q", check.Passed, check.Detail)
		}
		v, found := LookupClaim(claims, claim)
		if !found && check.Passed {
			t.Fatalf("a missing claim passed: %+v", check)
		}
		if !found && check.Actual != nil {
			t.Fatalf("a missing claim has an actual value: %+v", check)
		}
		if found && v == nil && check.Passed {
			t.Fatalf("a null claim passed: %+v", check)
		}
		switch op {
		case api.OpEquals, api.OpStartsWith, api.OpOneOf:
			if _, isObject := v.(map[string]any); isObject && check.Passed {
				t.Fatalf("an object claim passed %s", op)
			}
		case api.OpExists:
			if check.Passed != (found && v != nil) {
				t.Fatalf("exists: passed=%v, found=%v, value=%v", check.Passed, found, v)
			}
		default:
			if check.Passed {
				t.Fatalf("unknown operator %q passed", op)
			}
		}
		if op == api.OpEquals && !hasValue && check.Passed {
			t.Fatal("equals without a value passed")
		}
		if s, isString := v.(string); isString && check.Passed {
			switch op {
			case api.OpEquals:
				if s != value {
					t.Fatalf("string %q passed equals %q", s, value)
				}
			case api.OpStartsWith:
				if !strings.HasPrefix(s, value) {
					t.Fatalf("string %q passed starts_with %q", s, value)
				}
			}
		}
		if again := EvaluateCondition(claims, c); !reflect.DeepEqual(again, check) {
			t.Fatalf("not deterministic: %+v vs %+v", again, check)
		}
		// The HTTP layer and the audit writer encode checks.
		if _, err := json.Marshal(check); err != nil {
			t.Fatalf("check does not encode: %v", err)
		}
	})
}

// escapePointerToken escapes one RFC 6901 reference token.
func escapePointerToken(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func FuzzLookupClaim(f *testing.F) {
	for _, s := range [][2]string{
		{fuzzClaims, "iss"},
		{fuzzClaims, "/obj/a~1b/c~0d/0"},
		{fuzzClaims, "/obj/a~1b/c~0d/-"},
		{fuzzClaims, "/aud/1"},
		{fuzzClaims, "/aud/18446744073709551616"},
		{fuzzClaims, "oidc.circleci.com/project-id"},
		{fuzzClaims, "/oidc.circleci.com~1project-id"},
		{fuzzClaims, "/"},
		{fuzzClaims, "//"},
		{fuzzClaims, "/~"},
		{fuzzClaims, "~1"},
		{`{"a~b/c":1}`, "a~b/c"},
		{`{"x":[0,[1,[2]]]}`, "/x/1/1/0"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, claimsJSON, claim string) {
		claims, ok := decodeClaimsForFuzz(claimsJSON)
		if !ok {
			return
		}
		v, found := LookupClaim(claims, claim)
		if !strings.HasPrefix(claim, "/") {
			direct, ok := claims[claim]
			if found != ok || !reflect.DeepEqual(v, direct) {
				t.Fatalf("literal name %q: got %v %v, map has %v %v", claim, v, found, direct, ok)
			}
		} else if !validPointer(claim) && found {
			t.Fatalf("invalid pointer %q found %v", claim, v)
		}
		// Any top-level name, escaped as a pointer, finds the same value as the literal name.
		if direct, ok := claims[claim]; ok {
			pv, pfound := LookupClaim(claims, "/"+escapePointerToken(claim))
			if !pfound || !reflect.DeepEqual(pv, direct) {
				t.Fatalf("pointer for %q: got %v %v, want %v", claim, pv, pfound, direct)
			}
		}
	})
}

func FuzzCanonicalDecimal(f *testing.F) {
	for _, s := range []string{"42", "42.0", "4.2e1", "-0", "0.000", "1e-7", "123456789012345678901234567890", "1e400", "1e999999999", "01", "1.", "-", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := canonicalDecimal(s)
		if !ok {
			return
		}
		if len(d) > maxCanonicalLen {
			t.Fatalf("canonical form of %q is %d bytes long", s, len(d))
		}
		// Canonical is a fixed point, and a valid JSON number.
		if d2, ok := canonicalDecimal(d); !ok || d2 != d {
			t.Fatalf("canonical(%q) = %q, canonical of that = %q %v", s, d, d2, ok)
		}
		if !json.Valid([]byte(d)) {
			t.Fatalf("canonical(%q) = %q is not JSON", s, d)
		}
		// Same value as the input, within float precision.
		a, err1 := strconv.ParseFloat(s, 64)
		b, err2 := strconv.ParseFloat(d, 64)
		if err1 == nil && err2 == nil && a != b {
			t.Fatalf("canonical(%q) = %q changes the value: %v vs %v", s, d, a, b)
		}
	})
}

// FuzzDecodeNormalize drives a body through the whole create path: decoding never panics, a
// normalised spec is a fixed point of Normalize, and resolving and rendering it never panics.
func FuzzDecodeNormalize(f *testing.F) {
	for _, s := range []string{
		`{"name":"deploy","github":{"owner":"acme","repository":"acme/app"}}`,
		`{"name":"g","jwks_url":"https://idp.example/jwks","conditions":[{"claim":"iss","operator":"equals","value":"x"},{"claim":"aud","operator":"one_of","values":["a"]}]}`,
		`{"name":"gl","gitlab":{"domain":"gitlab.com","group":"g"},"token_ttl":{"amount":30,"unit":"minutes"}}`,
		`{"name":"c","circleci":{"organization_id":"o"},"identity_claim":"/oidc.circleci.com~1project-id"}`,
		`{"name":"x","google_cloud":{"client_id":"c","email":"a@b"},"provider_type":"google_cloud"}`,
		`{"name":"x","github":{"owner":"a"},"gitlab":{"domain":"d"}}`,
		`{"name":1}`, `[]`, `{`, `{"token_ttl":{"amount":9223372036854775807,"unit":"hours"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := DecodeInput(body)
		if err != nil {
			if KindOf(err) != KindValidation {
				t.Fatalf("decode error of kind %v: %v", KindOf(err), err)
			}
			return
		}
		out, err := Normalize(in, testOpts)
		if err != nil {
			if KindOf(err) != KindValidation {
				t.Fatalf("normalize error of kind %v: %v", KindOf(err), err)
			}
			return
		}
		again, err := Normalize(out, testOpts)
		if err != nil || !reflect.DeepEqual(again, out) {
			t.Fatalf("Normalize is not idempotent: %+v, %v", again, err)
		}
		if out.ProviderType == "" || out.TokenTTL == nil || out.IdentityClaim == "" {
			t.Fatalf("normalised spec lacks defaults: %+v", out)
		}
		r := Resolve(out, testOpts)
		if out.ProviderType != api.ProviderGeneric && (len(r.EffectiveConditions) < 2 || r.EffectiveConditions[0].Claim != "iss" || r.EffectiveConditions[1].Claim != "aud") {
			t.Fatalf("preset does not pin iss and aud: %+v", r.EffectiveConditions)
		}
		if r.JWKSURL == "" {
			t.Fatal("no JWKS URL after Normalize")
		}
		// The stored spec round-trips through JSON and a no-op merge patch.
		b, _ := json.Marshal(out)
		back, err := DecodeInput(b)
		if err != nil {
			t.Fatalf("normalised spec does not decode: %v (%s)", err, b)
		}
		patched, err := ApplyMergePatch(back, []byte(`{}`))
		if err != nil || Resolve(patched, testOpts).Fingerprint != r.Fingerprint {
			t.Fatalf("no-op patch changed the fingerprint: %v", err)
		}
		rendered := ToAPI(&Connection{Spec: out}, testOpts)
		if _, err := json.Marshal(rendered); err != nil || !bytes.HasPrefix([]byte(rendered.Fingerprint), []byte("sha256:")) {
			t.Fatalf("render: %v %q", err, rendered.Fingerprint)
		}
	})
}
