package api

import (
	"fmt"
	"strings"
)

// Field rules that the server's validation (server/internal/connection) and the provider's
// plan-time validators both apply. Each lives here once, in the standard library only, because the
// provider cannot import the server's internal packages and a rule written twice drifts.

// MaxClaimReferenceLen bounds a claim reference (a condition's claim, identity_claim, a
// claim_mappings source): a safety bound far above any real claim name (not in CONTRACT.md).
const MaxClaimReferenceLen = 1024

// MaxGlobPatternLen bounds a glob pattern: matching costs up to its length times the claim's, and
// claims are attacker-chosen inside a validly signed token (not in CONTRACT.md; real patterns are
// a ref or a repository path).
const MaxGlobPatternLen = 256

// ClaimReferenceProblem says what is wrong with a claim reference (CONTRACT.md §1, claim
// addressing), or returns "": it must not be empty or overlong, and one that starts with "/" is an
// RFC 6901 JSON pointer, in which every "~" is followed by "0" or "1".
func ClaimReferenceProblem(claim string) string {
	switch {
	case claim == "":
		return "is required"
	case len(claim) > MaxClaimReferenceLen:
		return fmt.Sprintf("is longer than %d bytes", MaxClaimReferenceLen)
	case strings.HasPrefix(claim, "/") && !ValidJSONPointer(claim):
		return fmt.Sprintf("%q starts with \"/\" so it is an RFC 6901 JSON pointer, but it is not a valid one: write \"~\" as \"~0\" and a \"/\" inside a name as \"~1\"", claim)
	}
	return ""
}

// ValidJSONPointer reports whether p is a syntactically valid RFC 6901 JSON pointer: it starts
// with "/" (or is empty, the whole document, which a claim reference never is), and every "~" is
// followed by "0" or "1".
func ValidJSONPointer(p string) bool {
	if p != "" && !strings.HasPrefix(p, "/") {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '~' {
			if i+1 >= len(p) || (p[i+1] != '0' && p[i+1] != '1') {
				return false
			}
			i++
		}
	}
	return true
}

// GlobPatternProblem says why a glob condition's pattern (CONTRACT.md §1, operator glob) is
// refused, or returns "". The empty pattern matches only the empty string (equals says that); a
// pattern of only `*` wildcards matches (nearly) anything (exists says that plainly); and a
// pattern is at most MaxGlobPatternLen bytes.
func GlobPatternProblem(pattern string) string {
	switch {
	case pattern == "":
		return "must not be empty for glob: only the empty string would match; use equals \"\" if that is meant"
	case strings.Trim(pattern, "*") == "":
		return fmt.Sprintf("%q is only wildcards, so it matches (nearly) anything: use exists to require the claim, or write the fixed part of the pattern (refs/heads/release/*)", pattern)
	case len(pattern) > MaxGlobPatternLen:
		return fmt.Sprintf("is longer than %d bytes: a glob pattern that long is better written as several conditions", MaxGlobPatternLen)
	}
	return ""
}
