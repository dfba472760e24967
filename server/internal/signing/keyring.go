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
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
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
	Issuer       string
	Audience     string
	Subject      string
	IssuedAt     time.Time
	NotBefore    time.Time
	Expiry       time.Time
	ID           string // jti; Mint generates one when empty
	Connection   string
	ConnectionID string
	SourceIssuer string
}

type wireClaims struct {
	Iss          string `json:"iss"`
	Sub          string `json:"sub"`
	Aud          string `json:"aud"`
	Iat          int64  `json:"iat"`
	Nbf          int64  `json:"nbf"`
	Exp          int64  `json:"exp"`
	Jti          string `json:"jti"`
	Connection   string `json:"connection"`
	ConnectionID string `json:"connection_id"`
	SourceIss    string `json:"source_iss"`
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
	if c.Audience == "" {
		c.Audience = k.Audience
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
	payload := appendWireClaims(scratch[:0], wireClaims{
		Iss: c.Issuer, Sub: c.Subject, Aud: c.Audience,
		Iat: c.IssuedAt.Unix(), Nbf: c.NotBefore.Unix(), Exp: c.Expiry.Unix(),
		Jti: c.ID, Connection: c.Connection, ConnectionID: c.ConnectionID, SourceIss: c.SourceIssuer,
	})
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
// ASCII), without reflection, so that Mint builds the signing input in one buffer.
// BenchmarkMintSigningInput runs it beside json.Marshal (figures in BENCHMARKS.md, "Fast paths and
// their benchmarks"); TestMintClaimsJSONIsWhatEncodingJSONWrites and
// FuzzMintClaimsJSONIsWhatEncodingJSONWrites keep the bytes identical.
func appendWireClaims(b []byte, w wireClaims) []byte {
	b = append(b, `{"iss":`...)
	b = appendJSONString(b, w.Iss)
	b = append(b, `,"sub":`...)
	b = appendJSONString(b, w.Sub)
	b = append(b, `,"aud":`...)
	b = appendJSONString(b, w.Aud)
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
	return append(b, '}')
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

// Verify checks an access token: our signature (ES256, a kid of this ring), iss and aud equal to
// the ring's Issuer and Audience, exp not reached (no leeway) and nbf reached.
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
	if err := json.Unmarshal(pb, &w); err != nil {
		return nil, fmt.Errorf("%w: payload", ErrInvalidToken)
	}
	if w.Iss != k.Issuer {
		return nil, fmt.Errorf("%w: issuer", ErrInvalidToken)
	}
	if w.Aud != k.Audience {
		return nil, fmt.Errorf("%w: audience", ErrInvalidToken)
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
