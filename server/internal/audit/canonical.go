package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// The canonical form of an event is the JSON Canonicalization Scheme (RFC 8785) of its JSON object
// as the API and the stream show it (api.AuditEvent, whose chain, seq, prev_hash and hash are left
// out when empty): keys sorted by their UTF-16 code units, no whitespace, strings with only the
// escapes RFC 8785 requires, numbers as IEEE-754 doubles written the way ECMAScript does.
// An event's hash is sha256 over the canonical form of the event without "hash" (AUDIT.md).
//
// AppendCanonical writes it straight from an api.AuditEvent (the writer does this for every event);
// Canonicalize does it for any JSON text (the verifier reads a stream line or a database row that
// way, as a third party would). A test keeps the two equal.

// HashPrefix starts every event hash.
const HashPrefix = "sha256:"

// EventHash is the hash of ev: sha256 over its canonical form without "hash".
func EventHash(ev *api.AuditEvent) (string, error) {
	bp := canonicalBufs.Get().(*[]byte)
	defer canonicalBufs.Put(bp)
	b, err := AppendCanonical((*bp)[:0], ev, false)
	if err != nil {
		return "", err
	}
	*bp = b
	return hashBytes(b), nil
}

// canonicalBufs recycles the buffers events are encoded into for hashing.
var canonicalBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func hashBytes(b []byte) string {
	sum := sha256.Sum256(b)
	var out [len(HashPrefix) + 2*sha256.Size]byte
	copy(out[:], HashPrefix)
	hex.Encode(out[len(HashPrefix):], sum[:])
	return string(out[:])
}

// AppendCanonical appends the canonical JSON of ev to b, with its "hash" when withHash is set.
// Fields are written in sorted key order: action, actor, chain, connection_id, connection_name,
// detail, hash, id, outcome, prev_hash, reason, remote_addr, request_id, seq, time.
func AppendCanonical(b []byte, ev *api.AuditEvent, withHash bool) ([]byte, error) {
	b = append(b, `{"action":`...)
	b = appendString(b, ev.Action)
	b = append(b, `,"actor":`...)
	b = appendString(b, ev.Actor)
	if ev.Chain != "" {
		b = append(b, `,"chain":`...)
		b = appendString(b, ev.Chain)
	}
	b = append(b, `,"connection_id":`...)
	b = appendString(b, ev.ConnectionID)
	b = append(b, `,"connection_name":`...)
	b = appendString(b, ev.ConnectionName)
	b = append(b, `,"detail":`...)
	var err error
	if ev.Detail == nil {
		b = append(b, "null"...)
	} else if b, err = appendMap(b, ev.Detail); err != nil {
		return nil, err
	}
	if withHash && ev.Hash != "" {
		b = append(b, `,"hash":`...)
		b = appendString(b, ev.Hash)
	}
	b = append(b, `,"id":`...)
	b = appendString(b, ev.ID)
	b = append(b, `,"outcome":`...)
	b = appendString(b, ev.Outcome)
	if ev.PrevHash != "" {
		b = append(b, `,"prev_hash":`...)
		b = appendString(b, ev.PrevHash)
	}
	b = append(b, `,"reason":`...)
	b = appendString(b, ev.Reason)
	b = append(b, `,"remote_addr":`...)
	b = appendString(b, ev.RemoteAddr)
	b = append(b, `,"request_id":`...)
	b = appendString(b, ev.RequestID)
	if ev.Seq != 0 {
		b = append(b, `,"seq":`...)
		b = appendNumber(b, float64(ev.Seq))
	}
	b = append(b, `,"time":"`...)
	b = ev.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...), nil
}

// Canonicalize returns the canonical form of the JSON value in data, leaving out the top-level
// member named without (if any; "" keeps every member).
func Canonicalize(data []byte, without string) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data after the JSON value")
	}
	if m, ok := v.(map[string]any); ok && without != "" {
		delete(m, without)
	}
	return appendValue(nil, v)
}

// appendValue appends the canonical JSON of v: what encoding/json decodes (maps, slices, strings,
// json.Number, float64, bool, nil) directly, common Go values a producer puts in a detail map
// (integers, []string, map[string]string) likewise, anything else through its JSON encoding.
func appendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, x), nil
	case bool:
		if x {
			return append(b, "true"...), nil
		}
		return append(b, "false"...), nil
	case float64:
		return appendFloat(b, x)
	case float32:
		return appendFloat(b, float64(x))
	case int:
		return appendNumber(b, float64(x)), nil
	case int64:
		return appendNumber(b, float64(x)), nil
	case int32:
		return appendNumber(b, float64(x)), nil
	case uint64:
		return appendNumber(b, float64(x)), nil
	case uint32:
		return appendNumber(b, float64(x)), nil
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return nil, fmt.Errorf("number %q: %w", x, err)
		}
		return appendFloat(b, f)
	case map[string]any:
		if x == nil {
			return append(b, "null"...), nil
		}
		return appendMap(b, x)
	case map[string]string:
		if x == nil {
			return append(b, "null"...), nil
		}
		m := make(map[string]any, len(x))
		for k, s := range x {
			m[k] = s
		}
		return appendMap(b, m)
	case []any:
		if x == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case []string:
		if x == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, e)
		}
		return append(b, ']'), nil
	}
	if rv := reflect.ValueOf(v); (rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Map || rv.Kind() == reflect.Slice) && rv.IsNil() {
		return append(b, "null"...), nil
	}
	// Anything else: as encoding/json writes it (which is how the store keeps it), canonicalized.
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	c, err := Canonicalize(raw, "")
	if err != nil {
		return nil, err
	}
	return append(b, c...), nil
}

func appendMap(b []byte, m map[string]any) ([]byte, error) {
	var scratch [16]string
	keys := scratch[:0]
	ascii := true
	for k := range m {
		keys = append(keys, k)
		ascii = ascii && plainASCII(k)
	}
	if ascii { // byte order is UTF-16 order
		slices.Sort(keys)
	} else {
		slices.SortFunc(keys, func(a, b string) int {
			a, b = validUTF8(a), validUTF8(b)
			switch {
			case a == b:
				return 0
			case lessUTF16(a, b):
				return -1
			}
			return 1
		})
	}
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		var err error
		if b, err = appendValue(b, m[k]); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// validUTF8 replaces each invalid byte with U+FFFD, as encoding/json does when it writes a string.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	out := make([]rune, 0, len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		out = append(out, r) // RuneError for an invalid byte
		i += size
	}
	return string(out)
}

// lessUTF16 orders strings by their UTF-16 code units (RFC 8785 §3.2.3).
func lessUTF16(a, b string) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] >= 0x80 || b[i] >= 0x80 {
			ua, ub := utf16.Encode([]rune(a[i:])), utf16.Encode([]rune(b[i:]))
			for j := 0; j < len(ua) && j < len(ub); j++ {
				if ua[j] != ub[j] {
					return ua[j] < ub[j]
				}
			}
			return len(ua) < len(ub)
		}
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}

const hexDigits = "0123456789abcdef"

// appendString appends s quoted as RFC 8785 requires: `"` and `\` escaped, control characters as
// \b \t \n \f \r or \u00xx, everything else (including non-ASCII) as UTF-8; invalid UTF-8 bytes
// become U+FFFD, as encoding/json writes them.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, s[start:i]...)
				b = append(b, "\uFFFD"...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\t':
			b = append(b, '\\', 't')
		case '\n':
			b = append(b, '\\', 'n')
		case '\f':
			b = append(b, '\\', 'f')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("number %v has no JSON form", f)
	}
	return appendNumber(b, f), nil
}

// appendNumber writes f as ECMAScript's Number.prototype.toString does (RFC 8785 §3.2.2.3), which
// is also encoding/json's format for a float64.
func appendNumber(b []byte, f float64) []byte {
	if f == 0 {
		return append(b, '0') // also -0
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs < 1e-6 || abs >= 1e21 {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// 1e-07 → 1e-7, as ECMAScript writes exponents.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}
