package connection

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// parseClaims decodes a claim set the way the jwtverify package does (UseNumber).
func parseClaims(t testing.TB, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("claims %q: %v", s, err)
	}
	return m
}

// loadFixture reads a claim set from testdata/claims (a copy of ../shared/fixtures/claims, so
// that a fresh clone without shared/ still tests).
func loadFixture(t testing.TB, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "claims", name))
	if err != nil {
		t.Fatal(err)
	}
	return parseClaims(t, string(b))
}

func sp(s string) *string { return &s }

func TestLookupClaim(t *testing.T) {
	claims := parseClaims(t, `{
		"sub": "s",
		"a.b": "dotted",
		"oidc.circleci.com/project-id": "p",
		"a": {"b": "nested", "c/d": "slash", "e~f": "tilde", "": "empty-key"},
		"arr": ["x", {"k": "v"}],
		"n": null,
		"": "top-empty",
		"~1": "literal-tilde-one"
	}`)
	tests := []struct {
		name   string
		claim  string
		want   any
		wantOK bool
	}{
		{"top-level name", "sub", "s", true},
		{"dots are literal, not a path", "a.b", "dotted", true},
		{"slashes inside a name without leading slash are literal", "oidc.circleci.com/project-id", "p", true},
		{"pointer into object", "/a/b", "nested", true},
		{"pointer ~1 is slash", "/a/c~1d", "slash", true},
		{"pointer ~0 is tilde", "/a/e~0f", "tilde", true},
		{"pointer to empty key", "/a/", "empty-key", true},
		{"pointer / is top-level empty key", "/", "top-empty", true},
		{"literal name ~1 is not unescaped", "~1", "literal-tilde-one", true},
		{"pointer array index", "/arr/0", "x", true},
		{"pointer through array into object", "/arr/1/k", "v", true},
		{"pointer top-level claim", "/sub", "s", true},
		{"null is present", "n", nil, true},
		{"null via pointer is present", "/n", nil, true},
		{"missing top-level", "nope", nil, false},
		{"dotted name does not traverse", "a.c", nil, false},
		{"pointer missing key", "/a/zz", nil, false},
		{"pointer index out of range", "/arr/2", nil, false},
		{"pointer index with leading zero", "/arr/00", nil, false},
		{"pointer dash index", "/arr/-", nil, false},
		{"pointer negative index", "/arr/-1", nil, false},
		{"pointer non-numeric index", "/arr/x", nil, false},
		{"pointer huge index", "/arr/99999999999999999999", nil, false},
		{"pointer into string", "/sub/0", nil, false},
		{"pointer through null", "/n/x", nil, false},
		{"invalid escape ~2", "/a/e~2f", nil, false},
		{"dangling tilde", "/a/e~", nil, false},
		{"unescaped slash finds nothing", "/a/c/d", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := LookupClaim(claims, tt.claim)
			if ok != tt.wantOK || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("LookupClaim(%q) = %#v, %v; want %#v, %v", tt.claim, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestLookupClaimNilClaims(t *testing.T) {
	if v, ok := LookupClaim(nil, "sub"); ok || v != nil {
		t.Fatalf("nil claims: got %v, %v", v, ok)
	}
	if v, ok := LookupClaim(nil, "/sub"); ok || v != nil {
		t.Fatalf("nil claims pointer: got %v, %v", v, ok)
	}
}

func TestCanonicalDecimal(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"42", "42", true},
		{"42.0", "42", true},
		{"42.000", "42", true},
		{"4.2e1", "42", true},
		{"4.2E+1", "42", true},
		{"420e-1", "42", true},
		{"0", "0", true},
		{"-0", "0", true},
		{"-0.0e5", "0", true},
		{"0.5", "0.5", true},
		{"0.50", "0.5", true},
		{"5e-1", "0.5", true},
		{"1e-3", "0.001", true},
		{"-12.340", "-12.34", true},
		{"1e2", "100", true},
		{"100", "100", true},
		{"9007199254740993", "9007199254740993", true}, // float64 would round this
		{"123456789012345678901234567890", "123456789012345678901234567890", true},
		{"0e999999999999", "0", true},
		{"1e999999999", "", false}, // would expand to a gigabyte
		{"1e-999999999", "", false},
		{"1e2000", "", false},
		{"", "", false},
		{"-", "", false},
		{"01", "", false},
		{"1.", "", false},
		{".5", "", false},
		{"1e", "", false},
		{"+1", "", false},
		{"0x10", "", false},
		{" 1", "", false},
		{"1 ", "", false},
		{"NaN", "", false},
		{"Infinity", "", false},
	}
	for _, tt := range tests {
		got, ok := canonicalDecimal(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("canonicalDecimal(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestEvaluateConditionTypedComparison(t *testing.T) {
	claims := parseClaims(t, `{
		"s": "refs/heads/main",
		"empty": "",
		"n": 42,
		"f": 42.0,
		"big": 9007199254740993,
		"neg": -1.50,
		"t": true,
		"fa": false,
		"nul": null,
		"obj": {"k": "v"},
		"aud": ["https://a", "https://b"],
		"nums": [1, 2],
		"nested": [["x"]],
		"objs": [{"k": "v"}],
		"emptyarr": [],
		"google": {"compute_engine": {"project_id": "p", "project_number": 123456789012}}
	}`)
	tests := []struct {
		name string
		cond api.Condition
		pass bool
	}{
		{"string equals byte for byte", api.Condition{Claim: "s", Operator: "equals", Value: sp("refs/heads/main")}, true},
		{"string equals is case sensitive", api.Condition{Claim: "s", Operator: "equals", Value: sp("refs/heads/MAIN")}, false},
		{"string equals no trimming", api.Condition{Claim: "s", Operator: "equals", Value: sp("refs/heads/main ")}, false},
		{"empty string equals empty", api.Condition{Claim: "empty", Operator: "equals", Value: sp("")}, true},
		{"number equals canonical", api.Condition{Claim: "n", Operator: "equals", Value: sp("42")}, true},
		{"float claim 42.0 equals 42", api.Condition{Claim: "f", Operator: "equals", Value: sp("42")}, true},
		{"number equals expected in other spelling", api.Condition{Claim: "n", Operator: "equals", Value: sp("42.0")}, true},
		{"number equals expected with exponent", api.Condition{Claim: "n", Operator: "equals", Value: sp("4.2e1")}, true},
		{"number not equal", api.Condition{Claim: "n", Operator: "equals", Value: sp("43")}, false},
		{"number vs non-numeric expected", api.Condition{Claim: "n", Operator: "equals", Value: sp("forty-two")}, false},
		{"number vs padded expected", api.Condition{Claim: "n", Operator: "equals", Value: sp(" 42")}, false},
		{"big integer exact", api.Condition{Claim: "big", Operator: "equals", Value: sp("9007199254740993")}, true},
		{"big integer not rounded", api.Condition{Claim: "big", Operator: "equals", Value: sp("9007199254740992")}, false},
		{"negative decimal", api.Condition{Claim: "neg", Operator: "equals", Value: sp("-1.5")}, true},
		{"string claim 42 vs expected 42.0 is byte for byte", api.Condition{Claim: "s", Operator: "equals", Value: sp("42.0")}, false},
		{"bool true equals \"true\"", api.Condition{Claim: "t", Operator: "equals", Value: sp("true")}, true},
		{"bool false equals \"false\"", api.Condition{Claim: "fa", Operator: "equals", Value: sp("false")}, true},
		{"bool true not \"True\"", api.Condition{Claim: "t", Operator: "equals", Value: sp("True")}, false},
		{"bool true not \"1\"", api.Condition{Claim: "t", Operator: "equals", Value: sp("1")}, false},
		{"null never equals", api.Condition{Claim: "nul", Operator: "equals", Value: sp("null")}, false},
		{"null never equals empty", api.Condition{Claim: "nul", Operator: "equals", Value: sp("")}, false},
		{"object never equals", api.Condition{Claim: "obj", Operator: "equals", Value: sp(`{"k":"v"}`)}, false},
		{"object never starts_with", api.Condition{Claim: "obj", Operator: "starts_with", Value: sp("{")}, false},
		{"object never one_of", api.Condition{Claim: "obj", Operator: "one_of", Values: []string{`{"k":"v"}`, "map[k:v]"}}, false},
		{"array any element equals", api.Condition{Claim: "aud", Operator: "equals", Value: sp("https://b")}, true},
		{"array no element equals", api.Condition{Claim: "aud", Operator: "equals", Value: sp("https://c")}, false},
		{"array any element starts_with", api.Condition{Claim: "aud", Operator: "starts_with", Value: sp("https://")}, true},
		{"array any element one_of", api.Condition{Claim: "aud", Operator: "one_of", Values: []string{"x", "https://a"}}, true},
		{"array of numbers equals", api.Condition{Claim: "nums", Operator: "equals", Value: sp("2")}, true},
		{"nested arrays are not flattened", api.Condition{Claim: "nested", Operator: "equals", Value: sp("x")}, false},
		{"array of objects never matches", api.Condition{Claim: "objs", Operator: "equals", Value: sp("v")}, false},
		{"empty array never matches", api.Condition{Claim: "emptyarr", Operator: "equals", Value: sp("")}, false},
		{"starts_with on string", api.Condition{Claim: "s", Operator: "starts_with", Value: sp("refs/heads/")}, true},
		{"starts_with not prefix", api.Condition{Claim: "s", Operator: "starts_with", Value: sp("refs/tags/")}, false},
		{"starts_with longer than claim", api.Condition{Claim: "s", Operator: "starts_with", Value: sp("refs/heads/main/x")}, false},
		{"starts_with on number fails (strings only)", api.Condition{Claim: "n", Operator: "starts_with", Value: sp("4")}, false},
		{"starts_with on bool fails", api.Condition{Claim: "t", Operator: "starts_with", Value: sp("t")}, false},
		{"one_of hit", api.Condition{Claim: "s", Operator: "one_of", Values: []string{"a", "refs/heads/main"}}, true},
		{"one_of miss", api.Condition{Claim: "s", Operator: "one_of", Values: []string{"a", "b"}}, false},
		{"one_of number", api.Condition{Claim: "n", Operator: "one_of", Values: []string{"41", "42"}}, true},
		{"one_of empty list never matches", api.Condition{Claim: "s", Operator: "one_of"}, false},
		{"exists on string", api.Condition{Claim: "s", Operator: "exists"}, true},
		{"exists on empty string", api.Condition{Claim: "empty", Operator: "exists"}, true},
		{"exists on false", api.Condition{Claim: "fa", Operator: "exists"}, true},
		{"exists on object", api.Condition{Claim: "obj", Operator: "exists"}, true},
		{"exists on null fails", api.Condition{Claim: "nul", Operator: "exists"}, false},
		{"exists on missing fails", api.Condition{Claim: "missing", Operator: "exists"}, false},
		{"missing claim fails equals", api.Condition{Claim: "missing", Operator: "equals", Value: sp("")}, false},
		{"missing claim fails one_of", api.Condition{Claim: "missing", Operator: "one_of", Values: []string{""}}, false},
		{"pointer into nested object", api.Condition{Claim: "/google/compute_engine/project_id", Operator: "equals", Value: sp("p")}, true},
		{"pointer to nested number", api.Condition{Claim: "/google/compute_engine/project_number", Operator: "equals", Value: sp("123456789012")}, true},
		{"pointer to array element", api.Condition{Claim: "/aud/1", Operator: "equals", Value: sp("https://b")}, true},
		{"invalid pointer never passes exists", api.Condition{Claim: "/obj~2", Operator: "exists"}, false},
		{"equals without value never passes", api.Condition{Claim: "s", Operator: "equals"}, false},
		{"starts_with without value never passes", api.Condition{Claim: "s", Operator: "starts_with"}, false},
		{"unknown operator never passes", api.Condition{Claim: "s", Operator: "matches", Value: sp(".*")}, false},
		{"empty operator never passes", api.Condition{Claim: "s", Value: sp("refs/heads/main")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := EvaluateCondition(claims, tt.cond)
			if got.Passed != tt.pass {
				t.Fatalf("Passed = %v, want %v (detail %q)", got.Passed, tt.pass, got.Detail)
			}
			if !got.Passed && got.Detail == "" {
				t.Fatalf("a failing check needs a detail")
			}
			if got.Passed && got.Detail != "" {
				t.Fatalf("a passing check has detail %q", got.Detail)
			}
		})
	}
}

func TestEvaluateConditionGoNativeNumbers(t *testing.T) {
	// Claims decoded without UseNumber, or built in Go, still compare by canonical decimal.
	claims := map[string]any{"f": float64(42), "i": 7, "i64": int64(-3), "u": uint8(1), "half": 0.5, "arr": []string{"a", "b"}}
	tests := []struct {
		claim, want string
		pass        bool
	}{
		{"f", "42", true},
		{"f", "42.0", true},
		{"i", "7", true},
		{"i64", "-3", true},
		{"u", "1", true},
		{"half", "0.5", true},
		{"half", "0.50", true},
		{"arr", "b", true},
		{"arr", "c", false},
	}
	for _, tt := range tests {
		got := EvaluateCondition(claims, api.Condition{Claim: tt.claim, Operator: api.OpEquals, Value: sp(tt.want)})
		if got.Passed != tt.pass {
			t.Errorf("%s equals %q: Passed = %v, want %v (%s)", tt.claim, tt.want, got.Passed, tt.pass, got.Detail)
		}
	}
}

func TestEvaluateReportShape(t *testing.T) {
	claims := parseClaims(t, `{"ref": "refs/heads/dev", "aud": ["x", "y"], "obj": {"a": 1}, "runner_id": 1, "nul": null}`)
	conds := []api.Condition{
		{Claim: "ref", Operator: "equals", Value: sp("refs/heads/main")},
		{Claim: "environment", Operator: "exists"},
		{Claim: "aud", Operator: "one_of", Values: []string{"z"}},
		{Claim: "obj", Operator: "equals", Value: sp("a")},
		{Claim: "runner_id", Operator: "starts_with", Value: sp("1")},
		{Claim: "ref", Operator: "starts_with", Value: sp("refs/heads/")},
		{Claim: "nul", Operator: "exists"},
	}
	checks := Evaluate(claims, conds)
	if len(checks) != len(conds) {
		t.Fatalf("got %d checks for %d conditions", len(checks), len(conds))
	}
	want := []struct {
		name        string
		passed      bool
		expected    any
		actual      any
		detailHas   []string
		actualIsNil bool
	}{
		{"condition: ref equals", false, "refs/heads/main", "refs/heads/dev", []string{`"ref"`, `"refs/heads/dev"`, `equal "refs/heads/main"`}, false},
		{"condition: environment exists", false, "present", nil, []string{`"environment"`, "missing"}, true},
		{"condition: aud one_of", false, []string{"z"}, []any{"x", "y"}, []string{`"aud"`, "no element", "1 allowed value"}, false},
		{"condition: obj equals", false, "a", map[string]any{"a": json.Number("1")}, []string{`"obj"`, "object", "never matches equals"}, false},
		{"condition: runner_id starts_with", false, "1", json.Number("1"), []string{`"runner_id"`, "a number", "only matches strings"}, false},
		{"condition: ref starts_with", true, "refs/heads/", "refs/heads/dev", nil, false},
		{"condition: nul exists", false, "present", nil, []string{`"nul"`, "null"}, true},
	}
	for i, w := range want {
		c := checks[i]
		if c.Name != w.name || c.Passed != w.passed {
			t.Errorf("check %d: name %q passed %v; want %q %v", i, c.Name, c.Passed, w.name, w.passed)
		}
		if !reflect.DeepEqual(c.Expected, w.expected) {
			t.Errorf("check %d: expected %#v; want %#v", i, c.Expected, w.expected)
		}
		if w.actualIsNil != (c.Actual == nil) || (!w.actualIsNil && !reflect.DeepEqual(c.Actual, w.actual)) {
			t.Errorf("check %d: actual %#v; want %#v", i, c.Actual, w.actual)
		}
		for _, s := range w.detailHas {
			if !strings.Contains(c.Detail, s) {
				t.Errorf("check %d: detail %q lacks %q", i, c.Detail, s)
			}
		}
	}
	// A missing claim's actual is omitted from the JSON report.
	b, _ := json.Marshal(checks[1])
	if bytes.Contains(b, []byte(`"actual"`)) {
		t.Errorf("missing claim check encodes actual: %s", b)
	}
	if AllPassed(checks) {
		t.Errorf("AllPassed with failures")
	}
	if !AllPassed(checks[5:6]) || !AllPassed(nil) {
		t.Errorf("AllPassed on passing checks is false")
	}
}

func TestEvaluateDoesNotAliasValues(t *testing.T) {
	c := api.Condition{Claim: "a", Operator: "one_of", Values: []string{"x"}}
	check := EvaluateCondition(map[string]any{"a": "y"}, c)
	check.Expected.([]string)[0] = "mutated"
	if c.Values[0] != "x" {
		t.Fatalf("Evaluate shares the values slice with its caller")
	}
}

func TestIdentityValue(t *testing.T) {
	claims := parseClaims(t, `{"sub": "repo:a/b:ref:refs/heads/main", "num": 12345678901234567890, "f": 1.50, "empty": "",
		"b": true, "nul": null, "obj": {"id": "x"}, "arr": ["x"], "huge": 1e5000, "nested": {"id": 7}}`)
	tests := []struct {
		claim   string
		want    string
		wantErr string
	}{
		{"sub", "repo:a/b:ref:refs/heads/main", ""},
		{"", "repo:a/b:ref:refs/heads/main", ""}, // default sub
		{"num", "12345678901234567890", ""},
		{"f", "1.5", ""},
		{"/nested/id", "7", ""},
		{"missing", "", "missing"},
		{"empty", "", "empty"},
		{"b", "", "a boolean"},
		{"nul", "", "null"},
		{"obj", "", "an object"},
		{"arr", "", "an array"},
		{"huge", "", "too large"},
	}
	for _, tt := range tests {
		got, err := IdentityValue(claims, tt.claim)
		if tt.wantErr == "" {
			if err != nil || got != tt.want {
				t.Errorf("IdentityValue(%q) = %q, %v; want %q", tt.claim, got, err, tt.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrIdentity) {
			t.Errorf("IdentityValue(%q) = %q, %v; want error containing %q wrapping ErrIdentity", tt.claim, got, err, tt.wantErr)
		}
		if tt.claim != "" && err != nil && !strings.Contains(err.Error(), tt.claim) {
			t.Errorf("IdentityValue(%q) error %q does not name the claim", tt.claim, err)
		}
	}
}
