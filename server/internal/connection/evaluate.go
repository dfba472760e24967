package connection

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// LookupClaim finds a claim in a claim set. A claim that starts with "/" is an RFC 6901 JSON
// Pointer (~1 is "/", ~0 is "~", array elements by decimal index); anything else is a top-level
// claim name taken literally, dots and slashes included. A present JSON null is found (nil, true).
// An invalid pointer finds nothing.
func LookupClaim(claims map[string]any, claim string) (any, bool) {
	if !strings.HasPrefix(claim, "/") {
		v, ok := claims[claim]
		return v, ok
	}
	tokens, ok := splitPointer(claim)
	if !ok {
		return nil, false
	}
	var cur any = claims
	for _, tok := range tokens {
		switch node := cur.(type) {
		case map[string]any:
			v, ok := node[tok]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, ok := arrayIndex(tok, len(node))
			if !ok {
				return nil, false
			}
			cur = node[i]
		case []string:
			i, ok := arrayIndex(tok, len(node))
			if !ok {
				return nil, false
			}
			cur = node[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// splitPointer splits an RFC 6901 pointer (which starts with "/") into unescaped reference
// tokens. A "~" not followed by 0 or 1 makes the pointer invalid.
func splitPointer(p string) ([]string, bool) {
	parts := strings.Split(p[1:], "/")
	for i, part := range parts {
		if !strings.Contains(part, "~") {
			continue
		}
		var b strings.Builder
		for j := 0; j < len(part); j++ {
			if part[j] != '~' {
				b.WriteByte(part[j])
				continue
			}
			if j+1 >= len(part) {
				return nil, false
			}
			switch part[j+1] {
			case '0':
				b.WriteByte('~')
			case '1':
				b.WriteByte('/')
			default:
				return nil, false
			}
			j++
		}
		parts[i] = b.String()
	}
	return parts, true
}

// validPointer reports whether p is a syntactically valid RFC 6901 pointer.
func validPointer(p string) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	_, ok := splitPointer(p)
	return ok
}

// arrayIndex parses an RFC 6901 array index: "0" or a decimal without leading zeros, in range.
func arrayIndex(tok string, n int) (int, bool) {
	if tok == "" || len(tok) > 10 || (len(tok) > 1 && tok[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] < '0' || tok[i] > '9' {
			return 0, false
		}
	}
	i, err := strconv.Atoi(tok)
	if err != nil || i >= n {
		return 0, false
	}
	return i, true
}

// kindOfValue names a claim value's JSON type for messages.
func kindOfValue(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case map[string]any:
		return "an object"
	case []any, []string:
		return "an array"
	}
	if _, ok := numberText(v); ok {
		return "a number"
	}
	return fmt.Sprintf("of unsupported type %T", v)
}

// numberText returns the JSON number text of a numeric claim value.
func numberText(v any) (string, bool) {
	switch n := v.(type) {
	case json.Number:
		return string(n), true
	case float64:
		if math.IsNaN(n) || math.IsInf(n, 0) {
			return "", false
		}
		return strconv.FormatFloat(n, 'g', -1, 64), true
	case float32:
		f := float64(n)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return "", false
		}
		return strconv.FormatFloat(f, 'g', -1, 32), true
	case int:
		return strconv.FormatInt(int64(n), 10), true
	case int8:
		return strconv.FormatInt(int64(n), 10), true
	case int16:
		return strconv.FormatInt(int64(n), 10), true
	case int32:
		return strconv.FormatInt(int64(n), 10), true
	case int64:
		return strconv.FormatInt(n, 10), true
	case uint:
		return strconv.FormatUint(uint64(n), 10), true
	case uint8:
		return strconv.FormatUint(uint64(n), 10), true
	case uint16:
		return strconv.FormatUint(uint64(n), 10), true
	case uint32:
		return strconv.FormatUint(uint64(n), 10), true
	case uint64:
		return strconv.FormatUint(n, 10), true
	}
	return "", false
}

// maxCanonicalLen bounds the decimal expansion of a number; a longer number never matches, which
// keeps "1e999999999" from costing a gigabyte.
const maxCanonicalLen = 1000

// canonicalDecimal returns the canonical decimal form of a JSON number literal: no exponent, no
// leading zeros in the integer part, no trailing zeros in the fraction, no "-0" ("42", "42.0" and
// "4.2e1" all give "42"; "0.50" gives "0.5"). It works on the text, so it is exact for any size.
func canonicalDecimal(s string) (string, bool) {
	neg := false
	i := 0
	if i < len(s) && s[i] == '-' {
		neg = true
		i++
	}
	start := i
	if i < len(s) && s[i] == '0' {
		i++
	} else if i < len(s) && s[i] >= '1' && s[i] <= '9' {
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	} else {
		return "", false
	}
	intPart := s[start:i]
	frac := ""
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == fs {
			return "", false
		}
		frac = s[fs:i]
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			eneg = s[i] == '-'
			i++
		}
		es := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == es {
			return "", false
		}
		digits := strings.TrimLeft(s[es:i], "0")
		if len(digits) > 7 {
			// Only a zero mantissa survives an exponent this large.
			if strings.Trim(intPart+frac, "0") == "" {
				return "0", i == len(s)
			}
			return "", false
		}
		if digits != "" {
			exp, _ = strconv.Atoi(digits)
		}
		if eneg {
			exp = -exp
		}
	}
	if i != len(s) {
		return "", false
	}
	// value = digits × 10^exp, digits without leading or trailing zeros.
	digits := intPart + frac
	exp -= len(frac)
	trimmed := strings.TrimLeft(digits, "0")
	if trimmed == "" {
		return "0", true
	}
	t2 := strings.TrimRight(trimmed, "0")
	exp += len(trimmed) - len(t2)
	digits = t2
	absExp := exp
	if absExp < 0 {
		absExp = -absExp
	}
	if len(digits)+absExp+3 > maxCanonicalLen {
		return "", false
	}
	var out string
	switch {
	case exp >= 0:
		out = digits + strings.Repeat("0", exp)
	case len(digits) > -exp:
		k := len(digits) + exp
		out = digits[:k] + "." + digits[k:]
	default:
		out = "0." + strings.Repeat("0", -exp-len(digits)) + digits
	}
	if neg {
		out = "-" + out
	}
	return out, true
}

// scalarEquals reports whether a scalar claim value equals the expected string under CONTRACT.md §1's
// typed comparison. Objects, arrays and null never match here.
func scalarEquals(v any, want string) bool {
	switch x := v.(type) {
	case string:
		return x == want
	case bool:
		return strconv.FormatBool(x) == want
	}
	text, ok := numberText(v)
	if !ok {
		return false
	}
	got, ok := canonicalDecimal(text)
	if !ok {
		return false
	}
	if got == want {
		return true
	}
	// The expected value spelled as another JSON number literal ("1e2", "42.0").
	w, ok := canonicalDecimal(want)
	return ok && got == w
}

// elements returns the elements of an array claim, or nil, false when v is not an array.
func elements(v any) ([]any, bool) {
	switch a := v.(type) {
	case []any:
		return a, true
	case []string:
		out := make([]any, len(a))
		for i, s := range a {
			out[i] = s
		}
		return out, true
	}
	return nil, false
}

// matchScalar applies a value operator to one non-array claim value.
func matchScalar(v any, c api.Condition) bool {
	switch c.Operator {
	case api.OpEquals:
		return c.Value != nil && scalarEquals(v, *c.Value)
	case api.OpStartsWith:
		s, ok := v.(string)
		return ok && c.Value != nil && strings.HasPrefix(s, *c.Value)
	case api.OpOneOf:
		return slices.ContainsFunc(c.Values, func(w string) bool { return scalarEquals(v, w) })
	case api.OpGlob:
		s, ok := v.(string)
		return ok && c.Value != nil && MatchGlob(*c.Value, s)
	}
	return false
}

// EvaluateCondition checks one condition against a claim set. See Evaluate for the shape of the
// result.
func EvaluateCondition(claims map[string]any, c api.Condition) api.Check {
	return evaluateCondition(claims, c, headOf(c))
}

// checkHead is what a condition's check says whatever the claims: its name and expected value.
// Rules computes it once per condition rather than once per token (the impact report decides
// thousands of claim sets under the same conditions).
type checkHead struct {
	name     string
	expected any
}

func headOf(c api.Condition) checkHead {
	h := checkHead{name: "condition: " + c.Claim + " " + c.Operator}
	switch c.Operator {
	case api.OpExists:
		h.expected = "present"
	case api.OpOneOf:
		h.expected = slices.Clone(c.Values)
	case api.OpEquals, api.OpStartsWith, api.OpGlob:
		if c.Value != nil {
			h.expected = *c.Value
		}
	case api.OpNotEquals:
		if c.Value != nil {
			h.expected = "not " + *c.Value
		}
	}
	return h
}

func evaluateCondition(claims map[string]any, c api.Condition, h checkHead) api.Check {
	check := api.Check{Name: h.name, Expected: h.expected}
	switch c.Operator {
	case api.OpExists, api.OpOneOf, api.OpEquals, api.OpStartsWith, api.OpGlob, api.OpNotEquals:
	default:
		check.Detail = fmt.Sprintf("unknown operator %q; the condition on claim %q never holds", c.Operator, c.Claim)
		if v, ok := LookupClaim(claims, c.Claim); ok {
			check.Actual = v
		}
		return check
	}

	if strings.HasPrefix(c.Claim, "/") && !validPointer(c.Claim) {
		check.Detail = fmt.Sprintf("claim %q is not a valid JSON pointer (a \"~\" must be followed by 0 or 1), so it finds nothing", c.Claim)
		return check
	}
	v, found := LookupClaim(claims, c.Claim)
	if !found {
		check.Detail = fmt.Sprintf("claim %q is missing from the token", c.Claim)
		return check
	}
	check.Actual = v
	if v == nil {
		check.Detail = fmt.Sprintf("claim %q is null", c.Claim)
		return check
	}
	if c.Operator == api.OpExists {
		check.Passed = true
		return check
	}
	if c.Operator != api.OpOneOf && c.Value == nil {
		check.Detail = fmt.Sprintf("the %s condition on claim %q has no value, so it never holds", c.Operator, c.Claim)
		return check
	}
	if _, isObject := v.(map[string]any); isObject {
		check.Detail = fmt.Sprintf("claim %q is an object; an object claim never matches %s", c.Claim, c.Operator)
		return check
	}
	if c.Operator == api.OpNotEquals {
		return notEquals(check, v, c)
	}
	if elems, isArray := elements(v); isArray {
		for _, e := range elems {
			if matchScalar(e, c) {
				check.Passed = true
				return check
			}
		}
		check.Detail = fmt.Sprintf("no element of the array claim %q %s", c.Claim, wantPhrase(c))
		return check
	}
	if matchScalar(v, c) {
		check.Passed = true
		return check
	}
	if c.Operator == api.OpStartsWith || c.Operator == api.OpGlob {
		if _, isString := v.(string); !isString {
			check.Detail = fmt.Sprintf("claim %q is %s; %s only matches strings", c.Claim, kindOfValue(v), c.Operator)
			return check
		}
	}
	check.Detail = fmt.Sprintf("claim %q is %s that does not %s", c.Claim, describe(v), wantVerb(c))
	return check
}

// notEquals finishes a not_equals check on a present, non-null claim that is not an object: the
// claim must not equal the value, and an array claim must have no element that does.
func notEquals(check api.Check, v any, c api.Condition) api.Check {
	if elems, isArray := elements(v); isArray {
		for _, e := range elems {
			if scalarEquals(e, *c.Value) {
				check.Detail = fmt.Sprintf("an element of the array claim %q equals %q", c.Claim, *c.Value)
				return check
			}
		}
		check.Passed = true
		return check
	}
	if scalarEquals(v, *c.Value) {
		check.Detail = fmt.Sprintf("claim %q equals %q", c.Claim, *c.Value)
		return check
	}
	check.Passed = true
	return check
}

// wantPhrase says what a condition wanted, for an array claim ("equals \"x\"").
func wantPhrase(c api.Condition) string {
	switch c.Operator {
	case api.OpEquals:
		return fmt.Sprintf("equals %q", *c.Value)
	case api.OpStartsWith:
		return fmt.Sprintf("is a string starting with %q", *c.Value)
	case api.OpOneOf:
		return fmt.Sprintf("is one of the %d allowed values", len(c.Values))
	case api.OpGlob:
		return fmt.Sprintf("is a string matching %q", *c.Value)
	}
	return "matches"
}

// wantVerb is wantPhrase in the infinitive ("equal \"x\"").
func wantVerb(c api.Condition) string {
	switch c.Operator {
	case api.OpEquals:
		return fmt.Sprintf("equal %q", *c.Value)
	case api.OpStartsWith:
		return fmt.Sprintf("start with %q", *c.Value)
	case api.OpOneOf:
		return fmt.Sprintf("equal any of the %d allowed values", len(c.Values))
	case api.OpGlob:
		return fmt.Sprintf("match %q", *c.Value)
	}
	return "match"
}

// describe renders a scalar claim value with its type for a failure detail.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", truncate(x, 200))
	case bool:
		return fmt.Sprintf("the boolean %t", x)
	}
	if t, ok := numberText(v); ok {
		return "the number " + truncate(t, 200)
	}
	return kindOfValue(v)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Evaluate checks every condition in order and returns one api.Check per condition: Name
// "condition: <claim> <operator>", Expected the value (the values list for one_of, "present" for
// exists), Actual the claim value found (nil, so omitted, when missing), Passed, and on failure a
// Detail sentence naming the claim and why it failed. All conditions must pass (logical AND).
func Evaluate(claims map[string]any, conds []api.Condition) []api.Check {
	out := make([]api.Check, 0, len(conds))
	for _, c := range conds {
		out = append(out, EvaluateCondition(claims, c))
	}
	return out
}

// AllPassed reports whether every check passed (true for no checks: the caller decides
// whether an empty list is acceptable).
func AllPassed(checks []api.Check) bool {
	for _, c := range checks {
		if !c.Passed {
			return false
		}
	}
	return true
}

// ErrIdentity is wrapped by every IdentityValue error.
var ErrIdentity = errors.New("identity claim unusable")

// IdentityValue returns the identity claim's value as a string: a string claim as is, a number
// in canonical decimal form. A missing, null, empty, boolean, object or array claim is an error
// wrapping ErrIdentity that names the claim.
func IdentityValue(claims map[string]any, identityClaim string) (string, error) {
	if identityClaim == "" {
		identityClaim = api.DefaultIdentity
	}
	v, ok := LookupClaim(claims, identityClaim)
	if !ok {
		return "", fmt.Errorf("%w: claim %q is missing from the token", ErrIdentity, identityClaim)
	}
	switch x := v.(type) {
	case string:
		if x == "" {
			return "", fmt.Errorf("%w: claim %q is an empty string", ErrIdentity, identityClaim)
		}
		return x, nil
	case nil, bool, map[string]any, []any, []string:
		return "", fmt.Errorf("%w: claim %q is %s; it must be a string or a number", ErrIdentity, identityClaim, kindOfValue(v))
	}
	if t, ok := numberText(v); ok {
		if d, ok := canonicalDecimal(t); ok {
			return d, nil
		}
		return "", fmt.Errorf("%w: claim %q is a number too large to name a workload", ErrIdentity, identityClaim)
	}
	return "", fmt.Errorf("%w: claim %q is %s", ErrIdentity, identityClaim, kindOfValue(v))
}
