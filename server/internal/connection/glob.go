package connection

// MatchGlob reports whether s matches pattern under CONTRACT.md §1's glob rules: `*` matches any
// run of characters except `/`, `**` any run including `/`, `?` one character except `/`, and every
// other character itself (no classes, no escapes); the whole of s must match. Characters are
// Unicode code points (a `?` matches one code point, not one byte).
//
// The matcher walks the pattern once per attempt and remembers only the last `*` and the last
// `**` it may retry from, so it runs in O(len(pattern) × len(s)) time with no allocation and no
// recursion: a hostile pattern such as `*a*a*a*…b` cannot blow up (FuzzMatchGlobAgainstRegexp
// compares it with a regular-expression reference).
func MatchGlob(pattern, s string) bool {
	p := []rune(pattern)
	r := []rune(s)
	pi, si := 0, 0
	// Backtrack points: the pattern position after the last star and the input position to
	// retry from. A `*` retry may not consume a `/`; a `**` retry may consume anything, and a
	// `**` wipes out an earlier `*` retry (the `**` can absorb whatever the `*` would have).
	starP, starS := -1, -1
	dstarP, dstarS := -1, -1
	for si < len(r) {
		if pi < len(p) {
			switch {
			case p[pi] == '*' && pi+1 < len(p) && p[pi+1] == '*':
				pi += 2
				dstarP, dstarS = pi, si
				starP, starS = -1, -1
				continue
			case p[pi] == '*':
				pi++
				starP, starS = pi, si
				continue
			case p[pi] == '?' && r[si] != '/':
				pi++
				si++
				continue
			case p[pi] != '?' && p[pi] == r[si]:
				pi++
				si++
				continue
			}
		}
		// Mismatch: let the last `*` absorb one more character (never a `/`), else the last `**`.
		if starP >= 0 && r[starS] != '/' {
			starS++
			pi, si = starP, starS
			continue
		}
		if dstarP >= 0 {
			dstarS++
			pi, si = dstarP, dstarS
			starP, starS = -1, -1
			continue
		}
		return false
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
