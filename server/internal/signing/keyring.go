package signing

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// Algorithm is the only algorithm of access tokens.
const Algorithm = "ES256"

// StoredKey is a signing key as the store keeps it (identical to store.SigningKey).
type StoredKey struct {
	KID           string
	Algorithm     string
	PublicJWK     []byte
	SealedPrivate []byte
	CreatedAt     time.Time
}

// KeyStore persists signing keys. CreateFirstSigningKey inserts k only when no signing key exists
// yet (atomically, so that replicas starting together agree on one key) and returns the keys that
// exist afterwards.
type KeyStore interface {
	SigningKeys(ctx context.Context) ([]StoredKey, error)
	CreateFirstSigningKey(ctx context.Context, k StoredKey) ([]StoredKey, error)
}

// Errors of Verify.
var (
	ErrInvalidToken = errors.New("signing: invalid access token")
	ErrExpired      = errors.New("signing: access token expired")
)

// AccessClaims are the claims of an access token (CONTRACT.md §4).
type AccessClaims struct {
	Issuer string
	// Audience is the token's aud: one entry is written as a JSON string, several as an array
	// (CONTRACT.md §1 token_audience). Mint uses the ring's Audience when it is empty.
	Audience     []string
	Subject      string
	IssuedAt     time.Time
	NotBefore    time.Time
	Expiry       time.Time
	ID           string // jti; Mint generates one when empty
	Connection   string
	ConnectionID string
	SourceIssuer string
	// Claims are the connection's mapped claims (claim_mappings): strings, numbers (json.Number),
	// booleans and arrays of those. Nil leaves the claim out; an empty map is written as {}.
	Claims map[string]any
}

type wireClaims struct {
	Iss          string       `json:"iss"`
	Sub          string       `json:"sub"`
	Aud          api.Audience `json:"aud"`
	Iat          int64        `json:"iat"`
	Nbf          int64        `json:"nbf"`
	Exp          int64        `json:"exp"`
	Jti          string       `json:"jti"`
	Connection   string       `json:"connection"`
	ConnectionID string       `json:"connection_id"`
	SourceIss    string       `json:"source_iss"`
	// Claims is omitted when nil and written as {} when empty (omitzero, not omitempty).
	Claims map[string]any `json:"claims,omitzero"`
}

type ringKey struct {
	kid     string
	priv    *ecdsa.PrivateKey
	header  string // base64url of the JOSE header, precomputed
	created time.Time
}

// KeyRing signs access tokens with the newest key and verifies with any key it holds.
// Set Issuer and Audience (the public URL) before calling Verify: Verify refuses every token while
// they are empty.
type KeyRing struct {
	Issuer   string
	Audience string

	current *ringKey
	byKID   map[string]*ringKey
	jwks    []byte
}

// LoadOrCreate loads every signing key from ks and decrypts it with kek; on an empty store it
// creates one ES256 key (race-safe: if another replica wins, its key is used).
func LoadOrCreate(ctx context.Context, ks KeyStore, kek []byte) (*KeyRing, error) {
	if len(kek) != KEKSize {
		return nil, fmt.Errorf("signing: key-encryption key must be %d bytes, got %d", KEKSize, len(kek))
	}
	stored, err := ks.SigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("signing: loading signing keys: %w", err)
	}
	if len(stored) == 0 {
		k, err := NewStoredKey(kek, time.Now())
		if err != nil {
			return nil, err
		}
		if stored, err = ks.CreateFirstSigningKey(ctx, k); err != nil {
			return nil, fmt.Errorf("signing: storing the first signing key: %w", err)
		}
		if len(stored) == 0 {
			return nil, errors.New("signing: the store returned no signing key after creating one")
		}
	}
	return NewKeyRing(stored, kek)
}

// NewStoredKey generates a new ES256 key sealed under kek.
func NewStoredKey(kek []byte, now time.Time) (StoredKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return StoredKey{}, err
	}
	kid, err := Thumbprint(&priv.PublicKey)
	if err != nil {
		return StoredKey{}, err
	}
	sealed, err := Seal(kek, kid, priv)
	if err != nil {
		return StoredKey{}, err
	}
	pub, err := json.Marshal(publicJWK(kid, &priv.PublicKey))
	if err != nil {
		return StoredKey{}, err
	}
	return StoredKey{KID: kid, Algorithm: Algorithm, PublicJWK: pub, SealedPrivate: sealed, CreatedAt: now.UTC()}, nil
}

// NewKeyRing decrypts stored keys with kek. The newest key signs.
func NewKeyRing(stored []StoredKey, kek []byte) (*KeyRing, error) {
	if len(stored) == 0 {
		return nil, errors.New("signing: no signing keys")
	}
	ring := &KeyRing{byKID: map[string]*ringKey{}}
	jwks := jwkSet{Keys: []jwk{}}
	sorted := append([]StoredKey(nil), stored...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].CreatedAt.Before(sorted[j].CreatedAt) })
	for _, s := range sorted {
		if s.Algorithm != Algorithm {
			return nil, fmt.Errorf("signing: key %q has algorithm %q, only %s is supported", s.KID, s.Algorithm, Algorithm)
		}
		priv, err := Open(kek, s.KID, s.SealedPrivate)
		if err != nil {
			return nil, err
		}
		if priv.Curve != elliptic.P256() {
			return nil, fmt.Errorf("signing: key %q is not on P-256", s.KID)
		}
		header, err := json.Marshal(map[string]string{"alg": Algorithm, "kid": s.KID, "typ": "JWT"})
		if err != nil {
			return nil, err
		}
		k := &ringKey{kid: s.KID, priv: priv, header: base64.RawURLEncoding.EncodeToString(header), created: s.CreatedAt}
		ring.byKID[s.KID] = k
		ring.current = k
		jwks.Keys = append(jwks.Keys, publicJWK(s.KID, &priv.PublicKey))
	}
	var err error
	if ring.jwks, err = json.Marshal(jwks); err != nil {
		return nil, err
	}
	return ring, nil
}

// KID is the key id of the key that signs new tokens.
func (k *KeyRing) KID() string { return k.current.kid }

// JWKS is the public JWK set (application/json) to publish at /.well-known/jwks.json.
func (k *KeyRing) JWKS() []byte { return bytes.Clone(k.jwks) }

// Mint signs an access token with the current key. Empty Issuer/Audience default to the ring's;
// an empty ID gets a random jti.
func (k *KeyRing) Mint(c AccessClaims) (string, error) {
	if c.Issuer == "" {
		c.Issuer = k.Issuer
	}
	if len(c.Audience) == 0 {
		c.Audience = []string{k.Audience}
	}
	if c.ID == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		c.ID = base64.RawURLEncoding.EncodeToString(b[:])
	}
	if c.Expiry.IsZero() || c.Subject == "" {
		return "", errors.New("signing: an access token needs a subject and an expiry")
	}
	var scratch [512]byte // the claims JSON usually fits: no allocation for it
	payload, err := appendWireClaims(scratch[:0], wireClaims{
		Iss: c.Issuer, Sub: c.Subject, Aud: c.Audience,
		Iat: c.IssuedAt.Unix(), Nbf: c.NotBefore.Unix(), Exp: c.Expiry.Unix(),
		Jti: c.ID, Connection: c.Connection, ConnectionID: c.ConnectionID, SourceIss: c.SourceIssuer,
		Claims: c.Claims,
	})
	if err != nil {
		return "", err
	}
	key := k.current
	// One buffer holds the token; the signing input is its prefix (String shares the buffer, and
	// the capacity is reserved up front so the signature is appended in place).
	var sb strings.Builder
	sb.Grow(len(key.header) + 1 + b64.EncodedLen(len(payload)) + 1 + b64.EncodedLen(es256SigLen))
	sb.WriteString(key.header)
	sb.WriteByte('.')
	writeBase64(&sb, payload)
	signingInput := sb.String()
	sig, err := jwt.SigningMethodES256.Sign(signingInput, key.priv)
	if err != nil {
		return "", err
	}
	sb.WriteByte('.')
	writeBase64(&sb, sig)
	return sb.String(), nil
}

var b64 = base64.RawURLEncoding

// es256SigLen is the length of an ES256 JWS signature (r || s, 32 bytes each).
const es256SigLen = 64

// writeBase64 appends the base64url encoding of b to sb, through a stack buffer when it fits.
func writeBase64(sb *strings.Builder, b []byte) {
	var scratch [1024]byte
	if n := b64.EncodedLen(len(b)); n <= len(scratch) {
		b64.Encode(scratch[:n], b)
		sb.Write(scratch[:n])
		return
	}
	sb.WriteString(b64.EncodeToString(b))
}

// appendWireClaims appends w as encoding/json would marshal it, byte for byte (the field order of
// wireClaims; strings escaped by encoding/json whenever they hold anything but plain printable
// ASCII; aud as api.Audience writes it; the claims object with its keys sorted), without
// reflection. TestMintClaimsJSONIsWhatEncodingJSONWrites and FuzzWireClaimsMatchEncodingJSON keep
// it equal to encoding/json; BenchmarkMint and BenchmarkMintWithClaims measure it within Mint.
func appendWireClaims(b []byte, w wireClaims) ([]byte, error) {
	b = append(b, `{"iss":`...)
	b = appendJSONString(b, w.Iss)
	b = append(b, `,"sub":`...)
	b = appendJSONString(b, w.Sub)
	b = append(b, `,"aud":`...)
	b = appendAudience(b, w.Aud)
	b = append(b, `,"iat":`...)
	b = strconv.AppendInt(b, w.Iat, 10)
	b = append(b, `,"nbf":`...)
	b = strconv.AppendInt(b, w.Nbf, 10)
	b = append(b, `,"exp":`...)
	b = strconv.AppendInt(b, w.Exp, 10)
	b = append(b, `,"jti":`...)
	b = appendJSONString(b, w.Jti)
	b = append(b, `,"connection":`...)
	b = appendJSONString(b, w.Connection)
	b = append(b, `,"connection_id":`...)
	b = appendJSONString(b, w.ConnectionID)
	b = append(b, `,"source_iss":`...)
	b = appendJSONString(b, w.SourceIss)
	if w.Claims != nil {
		b = append(b, `,"claims":`...)
		var err error
		if b, err = appendJSONValue(b, w.Claims); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendAudience appends an aud claim as api.Audience marshals it: one entry as a string, nil as
// null, anything else as an array.
func appendAudience(b []byte, aud api.Audience) []byte {
	switch {
	case len(aud) == 1:
		return appendJSONString(b, aud[0])
	case aud == nil:
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, a := range aud {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, a)
	}
	return append(b, ']')
}

// appendJSONValue appends a claim value: the types a decoded claim set holds (strings, booleans,
// null, json.Number, []any, map[string]any with its keys sorted as encoding/json sorts them)
// directly, anything else through json.Marshal.
func appendJSONValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		return appendJSONString(b, x), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case nil:
		return append(b, "null"...), nil
	case json.Number:
		if x == "" {
			return append(b, '0'), nil // encoding/json writes an empty Number as 0
		}
		if !isJSONNumber(string(x)) {
			return nil, fmt.Errorf("signing: invalid number literal %q", string(x))
		}
		return append(b, x...), nil
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendJSONValue(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		if x == nil {
			return append(b, "null"...), nil
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendJSONValue(b, x[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	}
	enc, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("signing: encoding a claim: %w", err)
	}
	return append(b, enc...), nil
}

// isJSONNumber reports whether s is a JSON number literal (RFC 8259 §6), what encoding/json
// requires of a json.Number it writes.
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	return i == len(s)
}

// appendJSONString appends s quoted. Plain printable ASCII is copied; anything encoding/json
// would escape (quotes, backslashes, control characters, <, >, &, non-ASCII) goes through
// json.Marshal so the bytes stay identical.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// Verify checks an access token: our signature (ES256, a kid of this ring), iss equal to the
// ring's Issuer, exp not reached (no leeway) and nbf reached. The aud is returned, not checked: an
// access token's aud is one its connection allows (CONTRACT.md §1 token_audience), which the
// caller decides (broker.Workload).
func (k *KeyRing) Verify(token string, now time.Time) (*AccessClaims, error) {
	if k.Issuer == "" || k.Audience == "" {
		return nil, fmt.Errorf("%w: the key ring has no issuer or audience configured", ErrInvalidToken)
	}
	if len(token) > 16<<10 {
		return nil, fmt.Errorf("%w: too large", ErrInvalidToken)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: not a JWS", ErrInvalidToken)
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("%w: header", ErrInvalidToken)
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(hb, &h); err != nil || h.Alg != Algorithm {
		return nil, fmt.Errorf("%w: header", ErrInvalidToken)
	}
	key, ok := k.byKID[h.Kid]
	if !ok {
		return nil, fmt.Errorf("%w: unknown kid", ErrInvalidToken)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("%w: signature encoding", ErrInvalidToken)
	}
	if err := jwt.SigningMethodES256.Verify(parts[0]+"."+parts[1], sig, &key.priv.PublicKey); err != nil {
		return nil, fmt.Errorf("%w: signature", ErrInvalidToken)
	}
	pb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("%w: payload", ErrInvalidToken)
	}
	var w wireClaims
	dec := json.NewDecoder(bytes.NewReader(pb))
	dec.UseNumber() // mapped numbers keep their exact text
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("%w: payload", ErrInvalidToken)
	}
	if w.Iss != k.Issuer {
		return nil, fmt.Errorf("%w: issuer", ErrInvalidToken)
	}
	if w.Exp == 0 || !now.Before(time.Unix(w.Exp, 0)) {
		return nil, ErrExpired
	}
	if now.Before(time.Unix(w.Nbf, 0).Add(-60 * time.Second)) {
		return nil, fmt.Errorf("%w: not valid yet", ErrInvalidToken)
	}
	return &AccessClaims{
		Issuer: w.Iss, Audience: w.Aud, Subject: w.Sub,
		IssuedAt: time.Unix(w.Iat, 0).UTC(), NotBefore: time.Unix(w.Nbf, 0).UTC(), Expiry: time.Unix(w.Exp, 0).UTC(),
		ID: w.Jti, Connection: w.Connection, ConnectionID: w.ConnectionID, SourceIssuer: w.SourceIss,
		Claims: w.Claims,
	}, nil
}

type jwkSet struct {
	Keys []jwk `json:"keys"`
}

type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

func publicJWK(kid string, pub *ecdsa.PublicKey) jwk {
	x, y := coords(pub)
	return jwk{Kty: "EC", Crv: "P-256", X: x, Y: y, Kid: kid, Use: "sig", Alg: Algorithm}
}

func coords(pub *ecdsa.PublicKey) (x, y string) {
	p, err := pub.ECDH()
	if err != nil {
		return "", ""
	}
	b := p.Bytes() // 0x04 | X(32) | Y(32)
	return base64.RawURLEncoding.EncodeToString(b[1:33]), base64.RawURLEncoding.EncodeToString(b[33:65])
}

// Thumbprint is the RFC 7638 JWK thumbprint of a P-256 public key, used as its kid.
func Thumbprint(pub *ecdsa.PublicKey) (string, error) {
	if pub.Curve != elliptic.P256() {
		return "", errors.New("signing: only P-256 keys are supported")
	}
	x, y := coords(pub)
	if x == "" {
		return "", errors.New("signing: invalid public key")
	}
	canonical := `{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}
