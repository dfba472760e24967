package jwtverify

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
)

// Limits of CI JWT validation (CONTRACT.md §4).
const (
	MaxTokenBytes = 16 << 10
	Leeway        = 60 * time.Second
	MaxLifetime   = 24 * time.Hour
)

// Failure kinds, as the token endpoint names them in error_description (CONTRACT.md §4).
const (
	KindMalformed      = "malformed"
	KindAlgorithm      = "algorithm"
	KindSignature      = "signature"
	KindExpired        = "expired"
	KindNotYetValid    = "not_yet_valid"
	KindIssuedInFuture = "issued_in_future"
	KindLifetime       = "lifetime"
	KindCondition      = "condition"
)

// Check names, in evaluation order. Condition checks are named by the condition evaluator.
const (
	CheckSize      = "size"
	CheckFormat    = "format"
	CheckAlgorithm = "algorithm"
	// CheckDiscovery is the issuer_url's discovery document (before the key check, only for
	// connections with issuer_url).
	CheckDiscovery = "discovery"
	CheckKey       = "key"
	CheckSignature = "signature"
	CheckExp       = "exp"
	CheckNbf       = "nbf"
	CheckIat       = "iat"
	CheckLifetime  = "lifetime"
	CheckIdentity  = connection.CheckIdentity
)

// kindOfCheck maps the fixed check names to failure kinds.
var kindOfCheck = map[string]string{
	CheckSize:      KindMalformed,
	CheckFormat:    KindMalformed,
	CheckAlgorithm: KindAlgorithm,
	CheckDiscovery: KindSignature, // keys of an unverified source cannot be trusted
	CheckKey:       KindSignature,
	CheckSignature: KindSignature,
	CheckExp:       KindExpired,
	CheckNbf:       KindNotYetValid,
	CheckIat:       KindIssuedInFuture,
	CheckLifetime:  KindLifetime,
	CheckIdentity:  KindCondition,
}

// Policy is what a connection requires of a CI JWT. Exactly one key source is set: JWKSURL,
// IssuerURL (OIDC discovery of the JWKS URL) or Inline.
type Policy struct {
	JWKSURL string
	// IssuerURL: the keys are at the jwks_uri of this issuer's discovery document.
	IssuerURL string
	// Inline: the connection's inline JWKS (ParseInlineKeys), never fetched.
	Inline        *InlineKeys
	Conditions    []api.Condition // the effective conditions, in evaluation order
	IdentityClaim string          // "sub" when empty
}

// Sources are the JWKS cache entries the policy uses (a JWKS URL or a DiscoveryKey; none for
// inline keys), for JWKSCache.Retain.
func (p Policy) Sources() []string {
	switch {
	case p.Inline != nil:
		return nil
	case p.IssuerURL != "":
		return []string{DiscoveryKey(p.IssuerURL)}
	case p.JWKSURL != "":
		return []string{p.JWKSURL}
	}
	return nil
}

// Result is the outcome of verifying one token. It never contains the raw token.
type Result struct {
	// Claims are the token's claims (decoded with UseNumber) whenever the payload could be parsed.
	// They are only trustworthy when Verified is true.
	Claims map[string]any
	// Checks are every step that ran, in order. The cryptographic steps stop at the first
	// failure; once the signature holds, every time check and every condition is reported.
	Checks []api.Check
	// OK is true when every check passed: the token may be exchanged.
	OK bool
	// Verified is true when the signature was verified with a key of the policy's JWKS.
	Verified bool
	// FailedKind is the kind of the first failed check ("" when OK), and FailedCheck its name.
	FailedKind  string
	FailedCheck string
	// Subject is the identity claim's value; SourceIssuer the token's `iss`.
	Subject      string
	SourceIssuer string
	// KeyID and Algorithm of the token header, when it could be parsed.
	KeyID     string
	Algorithm string
	// Expiry is the token's exp when it is a valid date (zero otherwise).
	Expiry time.Time
}

// VerifierOptions configure a Verifier. The zero value is the production configuration.
type VerifierOptions struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Verifier validates CI JWTs against a Policy. It is safe for concurrent use.
type Verifier struct {
	keys *JWKSCache
	now  func() time.Time

	lastBounds atomic.Pointer[timeBounds]
}

// NewVerifier returns a verifier that takes keys from cache.
func NewVerifier(cache *JWKSCache, opts VerifierOptions) *Verifier {
	if cache == nil {
		panic("exchange: NewVerifier needs a JWKS cache")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Verifier{keys: cache, now: opts.Now}
}

// Cache is the JWKS cache the verifier takes keys from (for its size metrics and for pruning).
func (v *Verifier) Cache() *JWKSCache { return v.keys }

// supportedAlgs maps each accepted `alg` to the key it needs. HMAC and none are absent on purpose.
var supportedAlgs = map[string]algSpec{
	"RS256": {jwt.SigningMethodRS256, "RSA", nil, "RS256"},
	"RS384": {jwt.SigningMethodRS384, "RSA", nil, "RS384"},
	"RS512": {jwt.SigningMethodRS512, "RSA", nil, "RS512"},
	"PS256": {jwt.SigningMethodPS256, "RSA", nil, "PS256"},
	"PS384": {jwt.SigningMethodPS384, "RSA", nil, "PS384"},
	"PS512": {jwt.SigningMethodPS512, "RSA", nil, "PS512"},
	"ES256": {jwt.SigningMethodES256, "EC", elliptic.P256(), "ES256"},
	"ES384": {jwt.SigningMethodES384, "EC", elliptic.P384(), "ES384"},
	"ES512": {jwt.SigningMethodES512, "EC", elliptic.P521(), "ES512"},
	"EdDSA": {jwt.SigningMethodEdDSA, "OKP", nil, "EdDSA"},
}

type algSpec struct {
	method jwt.SigningMethod
	kty    string
	curve  elliptic.Curve
	name   any // the alg, boxed once for the algorithm check's Actual
}

// SupportedAlgorithms lists the accepted `alg` values.
var SupportedAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Check values that do not depend on the token, boxed once: a string or slice stored in an `any`
// costs an allocation every time.
var (
	wantJWKSKey        any = "a key from the connection's JWKS"
	wantInlineKey      any = "a key of the connection's inline JWKS"
	wantDiscoveredKey  any = "a key from the JWKS at the discovery document's jwks_uri"
	sizeExpected       any = fmt.Sprintf("at most %d bytes", MaxTokenBytes)
	supportedAlgsValue any = SupportedAlgorithms
	lifetimeExpected       = map[string]any{}
)

func init() {
	for _, from := range []string{"iat", "nbf", "now"} {
		lifetimeExpected[from] = "exp - " + from + " at most " + MaxLifetime.String()
	}
}

type run struct {
	res *Result
}

func (r *run) pass(name string, expected, actual any, detail string) {
	r.res.Checks = append(r.res.Checks, api.Check{Name: name, Passed: true, Expected: expected, Actual: actual, Detail: detail})
}

// fail records a failed fixed check; its kind comes from kindOfCheck.
func (r *run) fail(name string, expected, actual any, detail string) *Result {
	return r.failKind(name, kindOfCheck[name], expected, actual, detail)
}

func (r *run) failKind(name, kind string, expected, actual any, detail string) *Result {
	r.res.Checks = append(r.res.Checks, api.Check{Name: name, Passed: false, Expected: expected, Actual: actual, Detail: detail})
	if r.res.FailedKind == "" {
		r.res.FailedKind, r.res.FailedCheck = kind, name
	}
	return r.res
}

// Verify runs every check of CONTRACT.md §4 on rawJWT against p.
func (v *Verifier) Verify(ctx context.Context, rawJWT string, p Policy) *Result {
	// Room for every check: the 9 fixed ones before the conditions (10 with discovery), the
	// conditions, identity.
	fixed := 10
	if p.IssuerURL != "" {
		fixed++
	}
	r := &run{res: &Result{Checks: make([]api.Check, 0, fixed+len(p.Conditions))}}

	// 1. Size.
	if len(rawJWT) > MaxTokenBytes {
		return r.fail(CheckSize, sizeExpected, strconv.Itoa(len(rawJWT))+" bytes", "the token is too large")
	}
	r.pass(CheckSize, sizeExpected, strconv.Itoa(len(rawJWT))+" bytes", "")

	// 2. Format: three base64url segments, JSON header and payload.
	alg, kid, claims, signingInput, sig, err := parseCompact(rawJWT)
	if err != nil {
		return r.fail(CheckFormat, "a JWS in compact serialization", nil, err.Error())
	}
	r.res.Claims = claims
	if iss, ok := claims["iss"].(string); ok {
		r.res.SourceIssuer = iss
	}
	r.pass(CheckFormat, "a JWS in compact serialization", nil, "")

	// 3. Algorithm: one of the accepted asymmetric algorithms (refused before any fetch).
	r.res.Algorithm, r.res.KeyID = alg, kid
	spec, ok := supportedAlgs[alg]
	if !ok {
		return r.fail(CheckAlgorithm, supportedAlgsValue, alg, "the alg is not accepted (never none or HMAC)")
	}
	r.pass(CheckAlgorithm, supportedAlgsValue, spec.name, "")

	// 4. Key by kid from the policy's key source, of the type the alg needs. jku, x5u and jwk
	// headers are ignored: keys come from the connection's key source only. With issuer_url, the
	// discovery document is checked first and reported on its own.
	var (
		key     JWK
		wantKey = wantJWKSKey
	)
	switch {
	case p.Inline != nil:
		wantKey = wantInlineKey
		key, err = p.Inline.lookup(kid)
	case p.IssuerURL != "":
		doc, derr := v.keys.discoveryDoc(ctx, p.IssuerURL)
		if derr != nil {
			var refusal *discoveryRefusal
			var said any
			if errors.As(derr, &refusal) && refusal.said != "" {
				said = refusal.said
			}
			return r.fail(CheckDiscovery, p.IssuerURL, said, derr.Error())
		}
		// The document's issuer equals issuer_url byte for byte (fetchDiscovery): both values are
		// the one boxed when it was fetched.
		r.pass(CheckDiscovery, doc.issuerValue, doc.issuerValue, doc.discoveryDetail)
		wantKey = wantDiscoveredKey
		key, err = v.keys.lookupDiscovered(ctx, p.IssuerURL, doc, kid)
	case p.JWKSURL != "":
		key, err = v.keys.lookup(ctx, p.JWKSURL, kid)
	default:
		err = errors.New("the connection has no key source")
	}
	if err != nil {
		return r.fail(CheckKey, wantKey, kid, err.Error())
	}
	if why := keyMatches(alg, spec.kty, spec.curve, key); why != "" {
		return r.failKind(CheckKey, KindAlgorithm, keyTypeNames[spec.kty]+" for "+alg, describeKey(key), why)
	}
	r.pass(CheckKey, wantKey, kid, describeKey(key))

	// 5. Signature.
	if err := spec.method.Verify(signingInput, sig, key.Key); err != nil {
		return r.fail(CheckSignature, "valid", "invalid", "the signature does not verify with the key "+quoteKID(key.KID))
	}
	r.res.Verified = true
	r.pass(CheckSignature, "valid", "valid", "")

	// 6. Time claims, all reported.
	now := v.now()
	v.timeChecks(r, claims, now)

	// 7. The connection's rules, all reported: the effective conditions, then the identity claim,
	// decided where the impact report decides them too (connection.Decide).
	var d connection.Decision
	r.res.Checks, d = connection.Decide(r.res.Checks, claims, p.Conditions, p.IdentityClaim)
	r.res.Subject = d.Identity
	if !d.OK && r.res.FailedKind == "" {
		r.res.FailedKind, r.res.FailedCheck = KindCondition, d.FailedCheck
	}

	r.res.OK = r.res.FailedKind == ""
	return r.res
}

func (v *Verifier) timeChecks(r *run, claims map[string]any, now time.Time) {
	exp, hasExp, expErr := numericDate(claims, "exp")
	nbf, hasNbf, nbfErr := numericDate(claims, "nbf")
	iat, hasIat, iatErr := numericDate(claims, "iat")
	after, atOrBefore := v.bounds(now)
	expStamp, nbfStamp, iatStamp := stamps(exp, nbf, iat)

	switch {
	case expErr != nil:
		r.fail(CheckExp, "a numeric date", nil, expErr.Error())
	case !hasExp:
		r.fail(CheckExp, "present", nil, "exp is required")
	case now.After(exp.Add(Leeway)):
		r.fail(CheckExp, after, expStamp, "the token has expired")
	default:
		r.pass(CheckExp, after, expStamp, "")
	}
	if hasExp {
		r.res.Expiry = exp
	}

	switch {
	case nbfErr != nil:
		r.fail(CheckNbf, "a numeric date", nil, nbfErr.Error())
	case !hasNbf:
		r.pass(CheckNbf, atOrBefore, nil, "absent")
	case nbf.After(now.Add(Leeway)):
		r.fail(CheckNbf, atOrBefore, nbfStamp, "the token is not valid yet")
	default:
		r.pass(CheckNbf, atOrBefore, nbfStamp, "")
	}

	switch {
	case iatErr != nil:
		r.fail(CheckIat, "a numeric date", nil, iatErr.Error())
	case !hasIat:
		r.pass(CheckIat, atOrBefore, nil, "absent")
	case iat.After(now.Add(Leeway)):
		r.fail(CheckIat, atOrBefore, iatStamp, "the token was issued in the future")
	default:
		r.pass(CheckIat, atOrBefore, iatStamp, "")
	}

	// Lifetime from iat, else nbf, else now (a token without either can live no longer than 24 h
	// from the moment it is presented).
	if hasExp {
		start, from := now, "now"
		if hasIat {
			start, from = iat, "iat"
		} else if hasNbf {
			start, from = nbf, "nbf"
		}
		life := exp.Sub(start)
		expected := lifetimeExpected[from]
		if life > MaxLifetime {
			r.fail(CheckLifetime, expected, life.String(), "the token lives longer than 24 h")
		} else {
			r.pass(CheckLifetime, expected, life.String(), "")
		}
	} else {
		r.fail(CheckLifetime, lifetimeExpected["iat"], nil, "exp is required")
	}
}

// timeBounds are the Expected values of the time checks for one second of the clock, boxed.
type timeBounds struct {
	unix       int64
	after      any // "after <now - leeway>"
	atOrBefore any // "at or before <now + leeway>"
}

// bounds returns the time checks' Expected values for now. They only change once a second (RFC
// 3339 has whole seconds), so the last ones are kept and shared by concurrent verifications.
func (v *Verifier) bounds(now time.Time) (after, atOrBefore any) {
	if b := v.lastBounds.Load(); b != nil && b.unix == now.Unix() {
		return b.after, b.atOrBefore
	}
	b := &timeBounds{unix: now.Unix(), after: "after " + stamp(now.Add(-Leeway)), atOrBefore: "at or before " + stamp(now.Add(Leeway))}
	v.lastBounds.Store(b)
	return b.after, b.atOrBefore
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// stamps is stamp of three times (zero ones included: their text is simply unused) in one
// allocation. numericDate's times are UTC with years 0..9999, 20 bytes each.
func stamps(a, b, c time.Time) (string, string, string) {
	var buf [3 * len("2006-01-02T15:04:05Z")]byte
	out := a.UTC().AppendFormat(buf[:0], time.RFC3339)
	i := len(out)
	out = b.UTC().AppendFormat(out, time.RFC3339)
	j := len(out)
	out = c.UTC().AppendFormat(out, time.RFC3339)
	all := string(out)
	return all[:i], all[i:j], all[j:]
}

func quoteKID(kid string) string {
	if kid == "" {
		return "(no kid)"
	}
	return fmt.Sprintf("%q", kid)
}

// numericDate reads an RFC 7519 NumericDate; present is false for a missing claim and whenever
// err is set.
func numericDate(claims map[string]any, name string) (t time.Time, present bool, err error) {
	v, ok := claims[name]
	if !ok {
		return time.Time{}, false, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false, fmt.Errorf("%s is not a number", name)
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return time.Time{}, false, fmt.Errorf("%s is not a valid number", name)
	}
	// Clamp to years 0..9999 so absurd values cannot overflow.
	const maxUnix = 253402300799
	f = math.Max(math.Min(f, maxUnix), -62135596800)
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true, nil
}

var keyTypeNames = map[string]string{"RSA": "an RSA key", "EC": "an EC key", "OKP": "an Ed25519 key"}

func keyMatches(alg, kty string, curve elliptic.Curve, key JWK) string {
	have := ""
	switch k := key.Key.(type) {
	case *rsa.PublicKey:
		have = "RSA"
	case *ecdsa.PublicKey:
		have = "EC"
		if kty == "EC" && k.Curve != curve {
			return fmt.Sprintf("%s needs curve %s, the key is on %s", alg, curve.Params().Name, k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		have = "OKP"
	default:
		return fmt.Sprintf("unsupported key %T", key.Key)
	}
	if have != kty {
		return fmt.Sprintf("%s needs %s, the JWKS has %s", alg, keyTypeNames[kty], keyTypeNames[have])
	}
	if key.Alg != "" && key.Alg != alg {
		return fmt.Sprintf("the key %s is pinned to %s", quoteKID(key.KID), key.Alg)
	}
	return ""
}

func describeKey(k JWK) string {
	if k.desc != "" {
		return k.desc
	}
	switch key := k.Key.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d bits, kid %s", key.N.BitLen(), quoteKID(k.KID))
	case *ecdsa.PublicKey:
		return fmt.Sprintf("EC %s, kid %s", key.Curve.Params().Name, quoteKID(k.KID))
	case ed25519.PublicKey:
		return "Ed25519, kid " + quoteKID(k.KID)
	}
	return fmt.Sprintf("%T", k.Key)
}

// DecodeClaims decodes a JSON object exactly as a token's claims are decoded: numbers as
// json.Number, names and plain strings sharing one copy of s (what encoding/json with UseNumber
// gives, with fewer allocations). The sightings store reads stored claims back with it, so the
// impact report sees the values an exchange saw.
func DecodeClaims(s string) (map[string]any, error) { return decodeObject(s) }

// DecodeClaimsKeeping is DecodeClaims keeping only the top-level claims named in keep (the
// impact report reads the few claims its conditions name out of thousands of stored claim sets).
func DecodeClaimsKeeping(s string, keep map[string]bool) (map[string]any, error) {
	return decodeObjectKeeping(s, keep)
}

var b64 = base64.RawURLEncoding.Strict()

// parseCompact splits and decodes a compact JWS. It never returns the raw token in errors.
// signingInput is a substring of raw; the three segments are base64-decoded into one buffer, and
// the claims' names and plain string values are substrings of one copy of the payload.
func parseCompact(raw string) (alg, kid string, claims map[string]any, signingInput string, sig []byte, err error) {
	if n := strings.Count(raw, "."); n != 2 {
		return "", "", nil, "", nil, fmt.Errorf("expected 3 dot-separated segments, got %d", n+1)
	}
	h, rest, _ := strings.Cut(raw, ".")
	p, s, _ := strings.Cut(rest, ".")
	names := [3]string{"header", "payload", "signature"}
	segs := [3]string{h, p, s}
	buf := make([]byte, 0, b64.DecodedLen(len(h))+b64.DecodedLen(len(p))+b64.DecodedLen(len(s)))
	var ends [3]int
	for i, seg := range segs {
		if seg == "" && i != 2 {
			return "", "", nil, "", nil, fmt.Errorf("the %s segment is empty", names[i])
		}
		// Strict: one encoding per byte string, so a token cannot be altered without changing
		// the signed bytes.
		n, derr := b64.Decode(buf[len(buf):cap(buf)], []byte(seg))
		if derr != nil {
			return "", "", nil, "", nil, fmt.Errorf("the %s segment is not base64url", names[i])
		}
		buf = buf[:len(buf)+n]
		ends[i] = len(buf)
	}
	text := string(buf[:ends[1]]) // header and payload
	header, err := decodeHeader(text[:ends[0]])
	if err != nil {
		return "", "", nil, "", nil, fmt.Errorf("the header is not a JSON object: %v", err)
	}
	if claims, err = decodeObject(text[ends[0]:]); err != nil {
		return "", "", nil, "", nil, fmt.Errorf("the payload is not a JSON object: %v", err)
	}
	if !header.algString {
		return "", "", nil, "", nil, errors.New("the header has no alg string")
	}
	if header.kidPresent && !header.kidString {
		return "", "", nil, "", nil, errors.New("the header kid is not a string")
	}
	if header.crit {
		return "", "", nil, "", nil, errors.New("the header has crit extensions, none are supported")
	}
	return header.alg, header.kid, claims, raw[:len(h)+1+len(p)], buf[ends[1]:], nil
}
