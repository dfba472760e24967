package store

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Page sizes of the list methods.
const (
	DefaultLimit = 100
	MaxLimit     = 500
)

// clampLimit applies the default (for ≤ 0) and the maximum.
func clampLimit(n int) int {
	switch {
	case n <= 0:
		return DefaultLimit
	case n > MaxLimit:
		return MaxLimit
	default:
		return n
	}
}

// cursor is the decoded form of an opaque pagination cursor: base64url of its JSON. Kind keeps a
// connection cursor from being replayed against the audit list and vice versa.
type cursor struct {
	Kind string `json:"k"`
	Name string `json:"n,omitempty"` // connections: the last name returned
	Seq  int64  `json:"s,omitempty"` // audit: the last seq returned
}

const (
	cursorConnections = "c"
	cursorAudit       = "a"
)

func encodeCursor(c cursor) string {
	b, _ := json.Marshal(c) // cannot fail: plain struct
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s, kind string) (cursor, error) {
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return c, fmt.Errorf("%w: not base64url", ErrBadCursor)
	}
	// Text the databases cannot store never reaches them (CONTRACT.md §3): json.Unmarshal would
	// quietly turn invalid UTF-8 into U+FFFD and decode \u0000 into a NUL, which PostgreSQL
	// refuses with an error (a 500) and SQLite would compare as a different name.
	if !utf8.Valid(b) {
		return c, fmt.Errorf("%w: not UTF-8", ErrBadCursor)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%w: %v", ErrBadCursor, err)
	}
	if strings.ContainsRune(c.Kind, 0) || strings.ContainsRune(c.Name, 0) {
		return c, fmt.Errorf("%w: unstorable text", ErrBadCursor)
	}
	if c.Kind != kind {
		return c, fmt.Errorf("%w: cursor of another list", ErrBadCursor)
	}
	switch kind {
	case cursorConnections:
		if c.Name == "" {
			return c, fmt.Errorf("%w: empty position", ErrBadCursor)
		}
	case cursorAudit:
		if c.Seq <= 0 {
			return c, fmt.Errorf("%w: empty position", ErrBadCursor)
		}
	}
	return c, nil
}

// escapeLike escapes the LIKE wildcards (and the escape character itself) with '\'.
func escapeLike(s string) string {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r == '\\' || r == '%' || r == '_' {
			out = append(out, '\\')
		}
		out = append(out, r)
	}
	return string(out)
}
