package sightings_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/server/internal/sightings"
)

func decodeNumbers(t testing.TB, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("not JSON (%v): %s", err, b)
	}
	return v
}

// odd claim values: every JSON type, nesting, and strings that need escaping.
var oddClaims = map[string]any{
	"s": "plain", "quote": `say "hi"`, "backslash": `a\b`, "nul": "a\x00b", "controls": "\t\n\r\x01\x1f\x7f",
	"html": "<script>&</script>", "separators": "\u2028\u2029", "utf8": "größe ✓ 𝄞", "invalid": "bad\xffbyte",
	"n": json.Number("12345678901234567890"), "neg": json.Number("-1.5e-7"), "t": true, "f": false, "null": nil,
	"arr": []any{"x", json.Number("1"), []any{}, map[string]any{"k": "v"}}, "obj": map[string]any{"nested": map[string]any{"deep": "yes"}},
	"float": 0.1, "iat": json.Number("1"), "nbf": json.Number("1"), "exp": json.Number("2"), "jti": "drop me",
	"bad number": json.Number("12abc"),
}

// TestAppendStoredClaimsMatchesEncodingJSON: what the fast encoder writes decodes to exactly what
// encoding/json's encoding of the same claims (without iat, nbf, exp and jti) decodes to, for the
// claim fixtures and for odd values.
func TestAppendStoredClaimsMatchesEncodingJSON(t *testing.T) {
	sets := map[string]map[string]any{"odd": oddClaims}
	fixtures, _ := filepath.Glob("/work/shared/fixtures/claims/*.json")
	fixtures = append(fixtures, "../../../internal/devissuer/shapes/github.json")
	for _, f := range fixtures {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if m, ok := decodeNumbers(t, b).(map[string]any); ok {
			sets[filepath.Base(f)] = m
		}
	}
	for name, claims := range sets {
		kept := maps.Clone(claims)
		for _, k := range []string{"iat", "nbf", "exp", "jti"} {
			delete(kept, k)
		}
		if n, ok := kept["bad number"]; ok && n == json.Number("12abc") {
			kept["bad number"] = nil // not a number: written as null rather than breaking the JSON
		}
		want, err := json.Marshal(kept)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got := sightings.AppendStoredClaims(nil, claims)
		if !reflect.DeepEqual(decodeNumbers(t, got), decodeNumbers(t, want)) {
			t.Errorf("%s: AppendStoredClaims wrote\n%s\nencoding/json writes\n%s", name, got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, v := range oddClaims {
		if s, ok := v.(string); ok {
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := sightings.AppendJSONString(nil, s)
		want, _ := json.Marshal(s)
		var a, b string
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("AppendJSONString(%q) = %s is not a JSON string: %v", s, got, err)
		}
		_ = json.Unmarshal(want, &b)
		if a != b {
			t.Errorf("AppendJSONString(%q) decodes to %q, encoding/json's to %q", s, a, b)
		}
	})
}

// BenchmarkAppendStoredClaims writes the stored claims of a GitHub-shaped token (the flush does it
// for every workload); BenchmarkEncodingJSONClaims is encoding/json on the same claims.
func BenchmarkAppendStoredClaims(b *testing.B) {
	claims := githubClaims(b)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = sightings.AppendStoredClaims(buf[:0], claims)
	}
}

func BenchmarkEncodingJSONClaims(b *testing.B) {
	claims := githubClaims(b)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = json.Marshal(claims)
	}
}

func githubClaims(b *testing.B) map[string]any {
	raw, err := os.ReadFile("../../../internal/devissuer/shapes/github.json")
	if err != nil {
		b.Fatal(err)
	}
	return decodeNumbers(b, raw).(map[string]any)
}
