package connection

import (
	"regexp"
	"strings"
	"testing"
)

func TestMatchGlob(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"refs/heads/release/*", "refs/heads/release/1.2", true},
		{"refs/heads/release/*", "refs/heads/release/1.2/hotfix", false},
		{"refs/heads/release/**", "refs/heads/release/1.2/hotfix", true},
		{"refs/heads/release/**", "refs/heads/release/", true},
		{"refs/heads/release/*", "refs/heads/release/", true},
		{"refs/heads/release/*", "refs/heads/release", false},
		{"refs/*/main", "refs/heads/main", true},
		{"refs/*/main", "refs/heads/x/main", false},
		{"refs/**/main", "refs/heads/x/main", true},
		{"refs/**/main", "refs/main", false},
		{"**/main", "refs/heads/main", true},
		{"acme/*", "acme/app", true},
		{"acme/*", "acme-evil/app", false},
		{"acme/app-?", "acme/app-1", true},
		{"acme/app-?", "acme/app-12", false},
		{"acme/app-?", "acme/app-/", false},
		{"acme/ü?", "acme/üß", true},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY/c", false},
		{"a**c", "aX/Y/c", true},
		{"*.example.com", "api.example.com", true},
		{"*.example.com", "a.b.example.com", true}, // `*` stops only at "/"
		{"exact", "exact", true},
		{"exact", "exactly", false},
		{"", "", true},
		{"", "x", false},
		{"a*", "a", true},
		{"a**", "a/b/", true},
		{"*a*a*a*a*a*a*a*a*b", strings.Repeat("a", 200), false},
		{"**a**a**a**a**b", strings.Repeat("a/", 100), false},
		{"[abc]", "[abc]", true}, // no classes: brackets are literal
		{`a\*`, `a\xyz`, true},   // no escapes: the backslash is literal
	}
	for _, tt := range tests {
		if got := MatchGlob(tt.pattern, tt.s); got != tt.want {
			t.Errorf("MatchGlob(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
		if got := globReference(tt.pattern).MatchString(tt.s); got != tt.want {
			t.Errorf("reference(%q, %q) = %v, want %v (the table is wrong, or the reference)", tt.pattern, tt.s, got, tt.want)
		}
	}
}

// globReference is the glob rule written as a regular expression: the reference implementation
// the matcher is fuzzed against. `**` is read before `*`, left to right.
func globReference(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`^`)
	for i := 0; i < len(pattern); {
		switch {
		case strings.HasPrefix(pattern[i:], "**"):
			b.WriteString(`.*`)
			i += 2
		case pattern[i] == '*':
			b.WriteString(`[^/]*`)
			i++
		case pattern[i] == '?':
			b.WriteString(`[^/]`)
			i++
		default:
			r := []rune(pattern[i:])[0]
			b.WriteString(regexp.QuoteMeta(string(r)))
			i += len(string(r))
		}
	}
	b.WriteString(`$`)
	return regexp.MustCompile("(?s)" + b.String())
}

// FuzzMatchGlobAgainstRegexp compares the matcher with the regular-expression reference.
func FuzzMatchGlobAgainstRegexp(f *testing.F) {
	for _, seed := range [][2]string{
		{"refs/heads/release/*", "refs/heads/release/1.2"},
		{"refs/**/main", "refs/heads/x/main"},
		{"a*b**c?d", "aXb/Y/cZd"},
		{"***", "a/b"},
		{"*/**", "/"},
		{"?*?", "ab"},
		{"**/*", "a/b/c"},
		{"*a*a*b", "aaaaab"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if len(pattern) > 64 || len(s) > 256 || !validUTF8(pattern) || !validUTF8(s) {
			return
		}
		want := globReference(pattern).MatchString(s)
		if got := MatchGlob(pattern, s); got != want {
			t.Fatalf("MatchGlob(%q, %q) = %v, reference says %v", pattern, s, got, want)
		}
	})
}

func validUTF8(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }
