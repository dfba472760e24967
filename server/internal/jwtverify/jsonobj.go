package jwtverify

import (
	"encoding/json"
	"errors"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// This file decodes the JSON objects of a JWS (header and claims) in one pass, giving exactly what
// encoding/json's Decoder with UseNumber gives when decoding into a map[string]any:
//
//   - objects are map[string]any, arrays []any, strings string, booleans bool, null nil, and
//     numbers json.Number holding the literal text (9007199254740993 stays distinct from …992);
//   - a repeated member name keeps the last value;
//   - invalid UTF-8 and unpaired UTF-16 surrogate escapes become U+FFFD;
//   - the same grammar (RFC 8259), whitespace (space, tab, CR, LF) and nesting limit (10000).
//
// It works on a string holding the decoded segment, so member names and string values without
// escapes are substrings of it and cost no allocation. It exists because every token exchange
// decodes a CI token this way: BenchmarkDecodeClaims runs it beside the encoding/json decoding it
// replaces (figures in BENCHMARKS.md, "Fast paths and their benchmarks"), and
// TestDecodeObjectMatchesEncodingJSON and FuzzDecodeObjectMatchesEncodingJSON keep it equal to
// encoding/json.

// maxNestingDepth is encoding/json's limit.
const maxNestingDepth = 10000

var (
	errInvalidJSON  = errors.New("invalid JSON")
	errNullObject   = errors.New("null")
	errTrailingData = errors.New("trailing data after the JSON object")
)

type jsonDecoder struct {
	s     string
	i     int
	depth int
}

// decodeObject decodes s, which must hold one JSON object and nothing but whitespace after it.
// Its errors are errInvalidJSON, errNullObject (s is the literal null) and errTrailingData.
func decodeObject(s string) (map[string]any, error) {
	d := jsonDecoder{s: s}
	if err := d.start(); err != nil {
		return nil, err
	}
	m, ok := d.object()
	if !ok {
		return nil, errInvalidJSON
	}
	d.skipSpace()
	if d.i != len(d.s) {
		return nil, errTrailingData
	}
	return m, nil
}

// decodeObjectKeeping is decodeObject keeping only the top-level members keep names: the others
// are checked and skipped (a string without boxing it). Its errors are decodeObject's, for the same
// inputs: only what is kept differs.
func decodeObjectKeeping(s string, keep map[string]bool) (map[string]any, error) {
	d := jsonDecoder{s: s}
	if err := d.start(); err != nil {
		return nil, err
	}
	m := make(map[string]any, len(keep))
	ok := d.members(func(name string) bool {
		if !keep[name] {
			if d.i < len(d.s) && d.s[d.i] == '"' {
				_, ok := d.str()
				return ok
			}
			_, ok := d.value()
			return ok
		}
		v, ok := d.value()
		m[name] = v
		return ok
	})
	if !ok {
		return nil, errInvalidJSON
	}
	d.skipSpace()
	if d.i != len(d.s) {
		return nil, errTrailingData
	}
	return m, nil
}

// jwsHeader is what verification reads of a JOSE header. Members are decoded like decodeObject
// does (the last of repeated names wins) but only these are kept.
type jwsHeader struct {
	alg, kid   string
	algString  bool // alg is present and a string
	kidPresent bool
	kidString  bool
	crit       bool // crit is present, whatever its value
}

// decodeHeader decodes a JOSE header; its errors are those of decodeObject.
func decodeHeader(s string) (jwsHeader, error) {
	var h jwsHeader
	d := jsonDecoder{s: s}
	if err := d.start(); err != nil {
		return h, err
	}
	ok := d.members(func(name string) bool {
		var str string
		isString := d.i < len(d.s) && d.s[d.i] == '"'
		if isString {
			var ok bool
			if str, ok = d.str(); !ok {
				return false
			}
		} else if _, ok := d.value(); !ok {
			return false
		}
		switch name {
		case "alg":
			h.alg, h.algString = str, isString
		case "kid":
			h.kid, h.kidPresent, h.kidString = str, true, isString
		case "crit":
			h.crit = true
		}
		return true
	})
	if !ok {
		return jwsHeader{}, errInvalidJSON
	}
	d.skipSpace()
	if d.i != len(d.s) {
		return jwsHeader{}, errTrailingData
	}
	return h, nil
}

// start skips leading whitespace and checks that an object follows.
func (d *jsonDecoder) start() error {
	d.skipSpace()
	if d.i >= len(d.s) {
		return errInvalidJSON
	}
	switch d.s[d.i] {
	case '{':
		return nil
	case 'n':
		// encoding/json decodes a top-level null into a nil map, whatever follows it.
		if d.literal("null") {
			return errNullObject
		}
	}
	return errInvalidJSON
}

func (d *jsonDecoder) skipSpace() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// literal consumes lit (true, false or null) at the current position.
func (d *jsonDecoder) literal(lit string) bool {
	if len(d.s)-d.i < len(lit) || d.s[d.i:d.i+len(lit)] != lit {
		return false
	}
	d.i += len(lit)
	return true
}

// value decodes the value at the current position (whitespace already skipped).
func (d *jsonDecoder) value() (any, bool) {
	if d.i >= len(d.s) {
		return nil, false
	}
	switch c := d.s[d.i]; {
	case c == '{':
		m, ok := d.object()
		return m, ok
	case c == '[':
		return d.array()
	case c == '"':
		s, ok := d.str()
		return s, ok
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	}
	return nil, false
}

func (d *jsonDecoder) enter() bool {
	d.depth++
	return d.depth <= maxNestingDepth
}

// object decodes an object; the current byte is '{'. The top-level map is sized for one member
// per 40 bytes of input (a GitHub token's 27 claims take ~37 each), at most 128, so that it grows
// at most once; nested ones start small.
func (d *jsonDecoder) object() (map[string]any, bool) {
	hint := 0
	if d.depth == 0 {
		hint = min(len(d.s)/40, 128)
	}
	m := make(map[string]any, hint)
	ok := d.members(func(k string) bool {
		v, ok := d.value()
		m[k] = v
		return ok
	})
	return m, ok
}

// members walks the object at the current position (its '{'), calling member with each name;
// member must consume the value that follows (whitespace already skipped) and report whether it
// was valid.
func (d *jsonDecoder) members(member func(name string) bool) bool {
	if !d.enter() {
		return false
	}
	d.i++
	d.skipSpace()
	if d.i < len(d.s) && d.s[d.i] == '}' {
		d.i++
		d.depth--
		return true
	}
	for {
		if d.i >= len(d.s) || d.s[d.i] != '"' {
			return false
		}
		k, ok := d.str()
		if !ok {
			return false
		}
		d.skipSpace()
		if d.i >= len(d.s) || d.s[d.i] != ':' {
			return false
		}
		d.i++
		d.skipSpace()
		if !member(k) {
			return false
		}
		d.skipSpace()
		if d.i >= len(d.s) {
			return false
		}
		switch d.s[d.i] {
		case ',':
			d.i++
			d.skipSpace()
		case '}':
			d.i++
			d.depth--
			return true
		default:
			return false
		}
	}
}

// array decodes an array; the current byte is '['.
func (d *jsonDecoder) array() (any, bool) {
	if !d.enter() {
		return nil, false
	}
	d.i++
	d.skipSpace()
	a := []any{}
	if d.i < len(d.s) && d.s[d.i] == ']' {
		d.i++
		d.depth--
		return a, true
	}
	for {
		v, ok := d.value()
		if !ok {
			return nil, false
		}
		a = append(a, v)
		d.skipSpace()
		if d.i >= len(d.s) {
			return nil, false
		}
		switch d.s[d.i] {
		case ',':
			d.i++
			d.skipSpace()
		case ']':
			d.i++
			d.depth--
			return a, true
		default:
			return nil, false
		}
	}
}

// number decodes a number literal into a json.Number holding its exact text.
func (d *jsonDecoder) number() (any, bool) {
	start := d.i
	if d.s[d.i] == '-' {
		d.i++
	}
	switch {
	case d.i >= len(d.s):
		return nil, false
	case d.s[d.i] == '0':
		d.i++
	case d.s[d.i] >= '1' && d.s[d.i] <= '9':
		d.digits()
	default:
		return nil, false
	}
	if d.i < len(d.s) && d.s[d.i] == '.' {
		d.i++
		if d.digits() == 0 {
			return nil, false
		}
	}
	if d.i < len(d.s) && (d.s[d.i] == 'e' || d.s[d.i] == 'E') {
		d.i++
		if d.i < len(d.s) && (d.s[d.i] == '+' || d.s[d.i] == '-') {
			d.i++
		}
		if d.digits() == 0 {
			return nil, false
		}
	}
	return json.Number(d.s[start:d.i]), true
}

func (d *jsonDecoder) digits() int {
	start := d.i
	for d.i < len(d.s) && d.s[d.i] >= '0' && d.s[d.i] <= '9' {
		d.i++
	}
	return d.i - start
}

// str decodes a string; the current byte is '"'. A string without escapes and with valid UTF-8
// is a substring of the input.
func (d *jsonDecoder) str() (string, bool) {
	d.i++
	start := d.i
	for d.i < len(d.s) {
		c := d.s[d.i]
		switch {
		case c == '"':
			s := d.s[start:d.i]
			d.i++
			return s, true
		case c == '\\' || c < ' ':
			return d.strSlow(start)
		case c < utf8.RuneSelf:
			d.i++
		default:
			r, size := utf8.DecodeRuneInString(d.s[d.i:])
			if r == utf8.RuneError && size == 1 {
				return d.strSlow(start)
			}
			d.i += size
		}
	}
	return "", false
}

// strSlow decodes the rest of a string that has escapes, control characters or invalid UTF-8,
// the way encoding/json does; d.s[start:d.i] is the clean prefix.
func (d *jsonDecoder) strSlow(start int) (string, bool) {
	b := make([]byte, 0, d.i-start+16)
	b = append(b, d.s[start:d.i]...)
	for d.i < len(d.s) {
		c := d.s[d.i]
		switch {
		case c == '"':
			d.i++
			return string(b), true
		case c < ' ':
			return "", false
		case c == '\\':
			d.i++
			if d.i >= len(d.s) {
				return "", false
			}
			switch e := d.s[d.i]; e {
			case '"', '\\', '/':
				b = append(b, e)
				d.i++
			case 'b':
				b = append(b, '\b')
				d.i++
			case 'f':
				b = append(b, '\f')
				d.i++
			case 'n':
				b = append(b, '\n')
				d.i++
			case 'r':
				b = append(b, '\r')
				d.i++
			case 't':
				b = append(b, '\t')
				d.i++
			case 'u':
				d.i++
				r, ok := d.hex4()
				if !ok {
					return "", false
				}
				if utf16.IsSurrogate(r) {
					// A valid pair is consumed whole; anything else leaves the next escape alone
					// and replaces this half.
					if r2, ok := d.peekEscapedHex4(); ok {
						if dec := utf16.DecodeRune(r, r2); dec != unicode.ReplacementChar {
							d.i += 6
							b = utf8.AppendRune(b, dec)
							continue
						}
					}
					r = unicode.ReplacementChar
				}
				b = utf8.AppendRune(b, r)
			default:
				return "", false
			}
		case c < utf8.RuneSelf:
			b = append(b, c)
			d.i++
		default:
			r, size := utf8.DecodeRuneInString(d.s[d.i:])
			d.i += size
			b = utf8.AppendRune(b, r) // RuneError for invalid UTF-8
		}
	}
	return "", false
}

// hex4 consumes four hex digits.
func (d *jsonDecoder) hex4() (rune, bool) {
	if len(d.s)-d.i < 4 {
		return 0, false
	}
	r, ok := parseHex4(d.s[d.i : d.i+4])
	if ok {
		d.i += 4
	}
	return r, ok
}

// peekEscapedHex4 reads a \uXXXX escape at the current position without consuming it.
func (d *jsonDecoder) peekEscapedHex4() (rune, bool) {
	if len(d.s)-d.i < 6 || d.s[d.i] != '\\' || d.s[d.i+1] != 'u' {
		return 0, false
	}
	return parseHex4(d.s[d.i+2 : d.i+6])
}

func parseHex4(h string) (rune, bool) {
	var r rune
	for i := 0; i < 4; i++ {
		c := h[i]
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r*16 + rune(c)
	}
	return r, true
}
