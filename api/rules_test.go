package api

import (
	"strings"
	"testing"
)

// The glob pattern rule the server applies at create/update and the provider at plan time.
func TestGlobPatternProblem(t *testing.T) {
	tests := []struct {
		pattern string
		refused string // what the refusal says; "" when accepted
	}{
		{"refs/heads/release/*", ""},
		{"refs/heads/release/**", ""},
		{"**/main", ""},
		{"acme/app-?", ""},
		{"?", ""}, // one character: not only star wildcards
		{"*/*", ""},
		{"", "must not be empty"},
		{"*", "only wildcards"},
		{"**", "only wildcards"},
		{"*****", "only wildcards"},
		{strings.Repeat("a", MaxGlobPatternLen), ""},
		{strings.Repeat("a", MaxGlobPatternLen+1), "longer than 256 bytes"},
	}
	for _, tt := range tests {
		got := GlobPatternProblem(tt.pattern)
		if (got == "") != (tt.refused == "") || !strings.Contains(got, tt.refused) {
			t.Errorf("GlobPatternProblem(%.20q) = %q, want a refusal saying %q", tt.pattern, got, tt.refused)
		}
	}
}

func TestClaimReferenceProblem(t *testing.T) {
	tests := []struct {
		claim string
		ok    bool
	}{
		{"sub", true},
		{"oidc.circleci.com/project-id", true}, // a name, slashes included
		{"/google/compute_engine/project_id", true},
		{"/a~0b/c~1d", true},
		{"/", true}, // the claim named ""
		{"/a~", false},
		{"/a~2", false},
		{"", false},
		{strings.Repeat("x", MaxClaimReferenceLen+1), false},
	}
	for _, tt := range tests {
		if got := ClaimReferenceProblem(tt.claim); (got == "") != tt.ok {
			t.Errorf("ClaimReferenceProblem(%.20q) = %q, want ok %v", tt.claim, got, tt.ok)
		}
	}
}
