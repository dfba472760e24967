package connection

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"slices"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// This file holds the rules of CONTRACT.md §1 that shape what an exchange issues: the mapped
// claims, the access token's audience and the single-use key of a CI token. The broker applies
// them; whoami and introspection check audiences through AudienceAllowed.

// MappedClaims is the `claims` object of an access token issued through a connection with
// claim_mappings: each mapped name gets the value of its source claim (a name or a JSON Pointer,
// as in conditions) when that value is a string, a number, a boolean, or an array whose elements
// are all strings, numbers or booleans, copied with its JSON type. A missing claim, null, an
// object, and an array holding anything else (an object, an array, null) are left out: an object
// would hand downstream services structure the connection's author never saw, and a partial array
// would say something the token did not. With mappings and nothing to copy the object is empty
// (not nil): the token still says which claims it could carry. Nil without mappings.
func MappedClaims(claims map[string]any, mappings map[string]string) map[string]any {
	if len(mappings) == 0 {
		return nil
	}
	out := make(map[string]any, len(mappings))
	for name, source := range mappings {
		v, ok := LookupClaim(claims, source)
		if !ok || !copyable(v) {
			continue
		}
		out[name] = v
	}
	return out
}

// copyable reports whether a claim value may be copied into the claims object.
func copyable(v any) bool {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if !scalar(e) {
				return false
			}
		}
		return true
	case []string:
		return true
	}
	return scalar(v)
}

func scalar(v any) bool {
	switch v.(type) {
	case string, bool:
		return true
	case nil, map[string]any, []any, []string:
		return false
	}
	_, ok := numberText(v)
	return ok
}

// AllowedAudiences are the `aud` values an access token of spec may carry: token_audience, or
// the server's public URL alone when it is unset.
func AllowedAudiences(spec api.ConnectionInput, publicURL string) []string {
	if len(spec.TokenAudience) == 0 {
		return []string{publicURL}
	}
	return spec.TokenAudience
}

// IssuedAudience is the `aud` of an access token issued through spec (CONTRACT.md §1
// token_audience, §4). Without the RFC 8693 `audience` parameter (requested == "") it is every
// allowed audience: the public URL when token_audience is unset, else the whole token_audience
// list (so a resource server listed there accepts the token without the job having to ask). With
// it, the requested value alone, which must be one of the allowed audiences; ok is false
// otherwise (the exchange answers invalid_target).
func IssuedAudience(spec api.ConnectionInput, publicURL, requested string) (aud []string, ok bool) {
	allowed := AllowedAudiences(spec, publicURL)
	if requested == "" {
		return allowed, true
	}
	if slices.Contains(allowed, requested) {
		return []string{requested}, true
	}
	return nil, false
}

// AudienceAllowed reports whether an access token whose `aud` is aud may have been issued through
// spec as it is now: aud is non-empty and each entry is allowed. An access token whose connection
// no longer allows its audience (token_audience changed by an approved proposal) is no longer
// valid for whoami and introspection.
func AudienceAllowed(spec api.ConnectionInput, publicURL string, aud []string) bool {
	if len(aud) == 0 {
		return false
	}
	allowed := AllowedAudiences(spec, publicURL)
	for _, a := range aud {
		if !slices.Contains(allowed, a) {
			return false
		}
	}
	return true
}

// SingleUseLinger is how long after a CI token's exp its single-use record is kept: the
// verifier's leeway, after which the token can no longer be exchanged anyway.
const SingleUseLinger = 60 * time.Second

// SingleUse is the record that a CI token was exchanged through a single_use connection. The
// store keeps one per (ConnectionID, TokenKey) until Until; a second one is a replay.
type SingleUse struct {
	ConnectionID string
	TokenKey     string
	Until        time.Time
}

// SingleUseKey identifies a CI token for single_use (CONTRACT.md §1): its `iss` and `jti` when
// the token has a non-empty string jti, else the SHA-256 of the whole token. Either way the key
// is a fixed-size hash (a jti is the issuer's to choose and may be long), and the two kinds carry
// different prefixes so that they can never collide. iss and jti are length-prefixed in the hash
// so that no choice of the two strings gives another pair's key.
func SingleUseKey(claims map[string]any, rawToken string) string {
	var sum [sha256.Size]byte
	prefix := "sha256:"
	if jti, ok := claims["jti"].(string); ok && jti != "" {
		iss, _ := claims["iss"].(string)
		var scratch [256]byte // on the stack for the usual iss and jti: one allocation per key
		in := binary.BigEndian.AppendUint64(scratch[:0], uint64(len(iss)))
		in = append(append(in, iss...), jti...)
		sum, prefix = sha256.Sum256(in), "jti:"
	} else {
		sum = sha256.Sum256([]byte(rawToken))
	}
	var out [len("sha256:") + 43]byte
	n := copy(out[:], prefix)
	base64.RawURLEncoding.Encode(out[n:], sum[:])
	return string(out[:n+base64.RawURLEncoding.EncodedLen(sha256.Size)])
}
