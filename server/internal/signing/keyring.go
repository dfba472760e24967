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
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// Algorithm is the only algorithm of access tokens.
const Algorithm = "ES256"

// StoredKey is a signing key as the store keeps it (identical to store.SigningKey). ActivatesAt is
// when it starts signing (zero for keys stored before the lifecycle: their creation); WithdrawnAt
// is set once it has been withdrawn; SealedPrivate is empty once the key can never sign again.
type StoredKey struct {
	KID           string
	Algorithm     string
	PublicJWK     []byte
	SealedPrivate []byte
	KEKID         string
	CreatedAt     time.Time
	ActivatesAt   time.Time
	WithdrawnAt   *time.Time
}

// KeyStore persists signing keys, shared by every replica. UpdateSigningKeys runs plan on the
// stored keys in a transaction that no other plan runs beside (on any replica), stores the keys
// it returns (adding new ones, updating lifecycle times, sealed keys and KEK ids) with its audit
// events, moves the version when anything changed, and returns the keys stored afterwards.
type KeyStore interface {
	SigningKeys(ctx context.Context) ([]StoredKey, error)
	SigningKeysVersion(ctx context.Context) (int64, error)
	UpdateSigningKeys(ctx context.Context, plan func(current []StoredKey) ([]StoredKey, []api.AuditEvent, error)) ([]StoredKey, error)
}

// Errors of Verify and Mint.
var (
	ErrInvalidToken = errors.New("signing: invalid access token")
	ErrExpired      = errors.New("signing: access token expired")
	// ErrWithdrawn: the token was signed by a key withdrawn after a compromise.
	ErrWithdrawn = fmt.Errorf("%w: its signing key was withdrawn", ErrInvalidToken)
	// ErrNoSigningKey: this server holds no key that may sign now (see the server log).
	ErrNoSigningKey = errors.New("signing: no usable signing key: the key that signs now could not be opened (see the server log)")
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

// ringKey is a published key as the ring uses it. It never changes once built.
type ringKey struct {
	kid    string
	priv   *ecdsa.PrivateKey // nil when this server does not hold it: a retired key verifies only
	pub    *ecdsa.PublicKey
	header string // base64url of the JOSE header, precomputed
}

// ringState is what the ring serves between two evaluations of the lifecycle: readers load it
// atomically, so minting and verifying never wait for a refresh.
type ringState struct {
	signer *ringKey // signs now; nil before the first key's activation (clock skew)
	next   *ringKey // the published key that signs from nextAt, if any
	nextAt time.Time
	// signerSince is when signer started signing; rotation the period of the schedule (0: none).
	signerSince time.Time
	rotation    time.Duration
	byKID       map[string]*ringKey // every published key
	withdrawn   map[string]bool
	jwks        []byte
}

// keyAt is the key that signs a token issued at t: the signer, or the next key once its time has
// come (between two evaluations, so that no replica signs with a key after its last signing time).
func (s *ringState) keyAt(t time.Time) *ringKey {
	if s.next != nil && (s.signer == nil || !t.Before(s.nextAt)) {
		return s.next
	}
	return s.signer
}

// KeyRing signs access tokens with the current key and verifies them with any published key
// (lifecycle.go says which those are). Set Issuer and Audience (the public URL) before calling
// Verify: Verify refuses every token while they are empty.
//
// A ring from Open follows the store: Refresh (Run, on a ticker) reloads the keys when another
// replica or command changed them, evaluates the lifecycle at the clock's time, and does what is
// due (creates the next key, erases retired private keys). A ring from NewKeyRing is fixed.
type KeyRing struct {
	Issuer   string
	Audience string

	state atomic.Pointer[ringState]

	src      KeyStore // nil for a fixed ring
	keks     KEKs
	rotation time.Duration
	now      func() time.Time
	log      *slog.Logger

	mu       sync.Mutex // serialises Refresh; guards the fields below
	rows     []StoredKey
	version  int64
	built    map[string]*ringKey // every key built so far, by kid
	reported map[string]bool     // keys whose failure to open has been logged
}

// Options configure a ring that follows the store.
type Options struct {
	// Rotation is how long a key signs before the next one takes over (default DefaultRotation;
	// at least MinRotation).
	Rotation time.Duration
	// Now is the clock the lifecycle is evaluated with (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// Open loads the signing keys from ks and makes the ring that follows them. On an empty store it
// creates the first key (race-safe: replicas starting together agree on one). It refuses, with
// an error that names the KEK to supply (*WrongKEKError), when the key that signs now or next
// cannot be opened with keks: a server must never paper over a wrong KEK by minting with a new
// key. Then it does whatever the lifecycle says is due.
func Open(ctx context.Context, ks KeyStore, keks KEKs, o Options) (*KeyRing, error) {
	if err := keks.validate(); err != nil {
		return nil, err
	}
	if o.Rotation == 0 {
		o.Rotation = DefaultRotation
	}
	if o.Rotation < MinRotation {
		return nil, fmt.Errorf("signing: the signing-key rotation period %s is shorter than %s: a new key is published %s before it signs", o.Rotation, MinRotation, PublishLead)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	k := &KeyRing{src: ks, keks: keks, rotation: o.Rotation, now: o.Now, log: o.Logger,
		built: map[string]*ringKey{}, reported: map[string]bool{}}
	k.mu.Lock()
	defer k.mu.Unlock()
	var err error
	if k.version, err = ks.SigningKeysVersion(ctx); err != nil {
		return nil, fmt.Errorf("signing: reading the signing-key version: %w", err)
	}
	if k.rows, err = ks.SigningKeys(ctx); err != nil {
		return nil, fmt.Errorf("signing: loading signing keys: %w", err)
	}
	now := k.now()
	if err := checkOpens(k.rows, now, keks); err != nil {
		return nil, err
	}
	if err := k.maintain(ctx, now); err != nil {
		return nil, err
	}
	if err := k.install(now, true); err != nil {
		return nil, err
	}
	return k, nil
}

// checkOpens opens the keys that sign now and next: proof that keks is this database's.
func checkOpens(rows []StoredKey, now time.Time, keks KEKs) error {
	s := evaluate(rows, now)
	for _, sk := range []*StoredKey{s.signer, s.next} {
		if sk == nil {
			continue
		}
		if _, err := keks.open(*sk); err != nil {
			return err
		}
	}
	return nil
}

// Refresh brings the ring up to date at the clock's time: it reloads the keys if the store's
// version moved (a rotation by another replica or by a command), does what the lifecycle says is
// due, and installs what is published and who signs. Replicas call it on a ticker (Run), which
// bounds how late a withdrawal reaches them.
func (k *KeyRing) Refresh(ctx context.Context) error {
	if k.src == nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	v, err := k.src.SigningKeysVersion(ctx)
	if err != nil {
		return fmt.Errorf("signing: reading the signing-key version: %w", err)
	}
	if v != k.version {
		rows, err := k.src.SigningKeys(ctx)
		if err != nil {
			return fmt.Errorf("signing: loading signing keys: %w", err)
		}
		k.rows, k.version = rows, v
	}
	now := k.now()
	if err := k.maintain(ctx, now); err != nil {
		// Keep serving with the keys as they are; the next refresh tries again.
		k.log.WarnContext(ctx, "signing-key maintenance failed; will retry", "error", err)
	}
	return k.install(now, false)
}

// Run refreshes the ring every interval until ctx ends.
func (k *KeyRing) Run(ctx context.Context, every time.Duration) {
	if k.src == nil {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := k.Refresh(ctx); err != nil && ctx.Err() == nil {
				k.log.WarnContext(ctx, "signing-key refresh failed; keeping the current keys", "error", err)
			}
		}
	}
}

// maintain runs the maintenance plan when something is due at now (k.mu held). Nothing is
// written otherwise: an idle refresh is one read of the version.
func (k *KeyRing) maintain(ctx context.Context, now time.Time) error {
	if !k.maintenanceDue(now) {
		return nil
	}
	rows, err := k.src.UpdateSigningKeys(ctx, func(cur []StoredKey) ([]StoredKey, []api.AuditEvent, error) {
		return maintain(cur, now, k.rotation, k.keks)
	})
	if err != nil {
		return fmt.Errorf("signing: signing-key maintenance: %w", err)
	}
	k.rows = rows // the version moved; the next refresh reads it and the same rows again
	return nil
}

// maintenanceDue reports whether the maintenance plan would change anything at now: a key to
// create, a private part to erase, or a key this server opened with a KEK other than its current
// one (to re-seal).
func (k *KeyRing) maintenanceDue(now time.Time) bool {
	s := evaluate(k.rows, now)
	if due, _ := s.nextKeyDue(now, k.rotation); due || len(s.erasable) > 0 {
		return true
	}
	id := k.keks.id()
	for _, r := range k.rows {
		if len(r.SealedPrivate) > 0 && r.KEKID != id {
			if rk := k.built[r.KID]; rk != nil && rk.priv != nil {
				return true
			}
		}
	}
	return false
}

// install evaluates the lifecycle at now and publishes the result (k.mu held). Keys that sign
// now or next are opened; one that cannot be is an error when strict (at start), and is logged
// once otherwise (the ring keeps publishing it and cannot sign with it).
func (k *KeyRing) install(now time.Time, strict bool) error {
	s := evaluate(k.rows, now)
	st := &ringState{rotation: k.rotation, byKID: make(map[string]*ringKey, len(s.published)), withdrawn: map[string]bool{}}
	jwks := jwkSet{Keys: make([]jwk, 0, len(s.published))}
	for _, sk := range s.published {
		needPrivate := sk == s.signer || sk == s.next
		rk, err := k.buildKey(*sk, needPrivate)
		if err != nil {
			if strict {
				return err
			}
			if !k.reported[sk.KID] {
				k.reported[sk.KID] = true
				k.log.Error("a signing key cannot be opened by this server; it cannot sign with it", "kid", sk.KID, "error", err)
			}
		}
		if rk == nil {
			continue
		}
		st.byKID[rk.kid] = rk
		jwks.Keys = append(jwks.Keys, publicJWK(rk.kid, rk.pub))
		switch sk {
		case s.signer:
			st.signer, st.signerSince = rk, activation(sk)
		case s.next:
			st.next, st.nextAt = rk, activation(sk)
		}
	}
	for _, r := range k.rows {
		if r.WithdrawnAt != nil {
			st.withdrawn[r.KID] = true
		}
	}
	if st.signer == nil && st.next == nil {
		return errors.New("signing: no signing key is usable: see the errors above")
	}
	var err error
	if st.jwks, err = json.Marshal(jwks); err != nil {
		return err
	}
	if old := k.state.Load(); old != nil && old.signer != st.signer && st.signer != nil {
		k.log.Info("a new signing key signs", "kid", st.signer.kid)
	}
	k.state.Store(st)
	return nil
}

// buildKey returns the ring's form of a stored key, opening its private part when needPrivate.
// A key whose private part cannot be opened is returned without it, with the error.
func (k *KeyRing) buildKey(sk StoredKey, needPrivate bool) (*ringKey, error) {
	rk := k.built[sk.KID]
	if rk == nil {
		var err error
		if rk, err = newRingKey(sk, nil); err != nil {
			return nil, err
		}
		k.built[sk.KID] = rk
	}
	if !needPrivate || rk.priv != nil {
		return rk, nil
	}
	priv, err := k.keks.open(sk)
	if err != nil {
		return rk, err
	}
	if !priv.PublicKey.Equal(rk.pub) {
		return rk, fmt.Errorf("signing: the private part of key %s does not match its public part", sk.KID)
	}
	rk = &ringKey{kid: rk.kid, priv: priv, pub: rk.pub, header: rk.header}
	k.built[sk.KID] = rk
	return rk, nil
}

// newRingKey builds a ring key from a stored one: its public part from the stored JWK (checked
// against the kid, its RFC 7638 thumbprint), with priv if given.
func newRingKey(sk StoredKey, priv *ecdsa.PrivateKey) (*ringKey, error) {
	if sk.Algorithm != Algorithm {
		return nil, fmt.Errorf("signing: key %q has algorithm %q, only %s is supported", sk.KID, sk.Algorithm, Algorithm)
	}
	pub, err := parsePublicJWK(sk.PublicJWK)
	if err != nil {
		return nil, fmt.Errorf("signing: the public part of key %q: %w", sk.KID, err)
	}
	if tp, err := Thumbprint(pub); err != nil || tp != sk.KID {
		return nil, fmt.Errorf("signing: key %q: its public part does not match its kid", sk.KID)
	}
	header, err := json.Marshal(map[string]string{"alg": Algorithm, "kid": sk.KID, "typ": "JWT"})
	if err != nil {
		return nil, err
	}
	return &ringKey{kid: sk.KID, priv: priv, pub: pub, header: base64.RawURLEncoding.EncodeToString(header)}, nil
}

// parsePublicJWK decodes a P-256 public JWK.
func parsePublicJWK(b []byte) (*ecdsa.PublicKey, error) {
	var j jwk
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, err
	}
	if j.Kty != "EC" || j.Crv != "P-256" {
		return nil, fmt.Errorf("not a P-256 key (kty %q, crv %q)", j.Kty, j.Crv)
	}
	x, errX := base64.RawURLEncoding.DecodeString(j.X)
	y, errY := base64.RawURLEncoding.DecodeString(j.Y)
	if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
		return nil, errors.New("malformed coordinates")
	}
	return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
}

// NewStoredKey generates a new ES256 key sealed under kek, created (and, unless the caller says
// otherwise, signing) at now.
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
	now = now.UTC().Truncate(time.Microsecond) // what the store keeps
	return StoredKey{KID: kid, Algorithm: Algorithm, PublicJWK: pub, SealedPrivate: sealed, KEKID: KEKID(kek),
		CreatedAt: now, ActivatesAt: now}, nil
}

// NewKeyRing is a fixed ring of stored keys decrypted with kek (tests and benchmarks): every key
// must open, and the lifecycle is evaluated once, at time.Now.
func NewKeyRing(stored []StoredKey, kek []byte) (*KeyRing, error) {
	if len(stored) == 0 {
		return nil, errors.New("signing: no signing keys")
	}
	keks := KEKs{Current: kek}
	if err := keks.validate(); err != nil {
		return nil, err
	}
	k := &KeyRing{keks: keks, now: time.Now, log: slog.New(slog.DiscardHandler), rows: append([]StoredKey(nil), stored...),
		built: map[string]*ringKey{}, reported: map[string]bool{}}
	for _, sk := range stored {
		priv, err := keks.open(sk)
		if err != nil {
			return nil, err
		}
		if priv.Curve != elliptic.P256() {
			return nil, fmt.Errorf("signing: key %q is not on P-256", sk.KID)
		}
		rk, err := newRingKey(sk, priv)
		if err != nil {
			return nil, err
		}
		k.built[sk.KID] = rk
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.install(k.now(), true); err != nil {
		return nil, err
	}
	return k, nil
}

// Status is the ring's lifecycle at one instant, for the metrics.
type Status struct {
	KID          string    // the key that signs
	SignsSince   time.Time // when it started signing
	NextRotation time.Time // when the next key signs; zero if not scheduled (a fixed ring)
	Published    int       // keys in the JWKS
}

// Status reports the lifecycle at now.
func (k *KeyRing) Status(now time.Time) Status {
	st := k.state.Load()
	s := Status{Published: len(st.byKID)}
	key := st.keyAt(now)
	if key == nil {
		return s
	}
	s.KID = key.kid
	switch {
	case key == st.next:
		s.SignsSince = st.nextAt
		if st.rotation > 0 {
			s.NextRotation = st.nextAt.Add(st.rotation)
		}
	case st.next != nil:
		s.SignsSince, s.NextRotation = st.signerSince, st.nextAt
	default:
		s.SignsSince = st.signerSince
		if st.rotation > 0 {
			s.NextRotation = st.signerSince.Add(st.rotation)
		}
	}
	return s
}

// currentKey is the key that signs at this moment. Minting picks by the token's issue time
// instead; this is for signatures that are not tokens.
func (k *KeyRing) currentKey() *ringKey { return k.state.Load().keyAt(k.clock()) }

func (k *KeyRing) clock() time.Time {
	if k.now == nil {
		return time.Now()
	}
	return k.now()
}

// KID is the key id of the key that signs new tokens.
func (k *KeyRing) KID() string {
	if key := k.currentKey(); key != nil {
		return key.kid
	}
	return ""
}

// JWKS is the public JWK set (application/json) to publish at /.well-known/jwks.json: every
// published key, in the order they sign.
func (k *KeyRing) JWKS() []byte { return bytes.Clone(k.state.Load().jwks) }

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
	key := k.state.Load().keyAt(c.IssuedAt)
	if key == nil || key.priv == nil {
		return "", ErrNoSigningKey
	}
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
// reflection, so that Mint builds the signing input in one buffer. BenchmarkMintSigningInput runs
// it beside json.Marshal (figures in BENCHMARKS.md, "Fast paths and their benchmarks"), and
// BenchmarkMint and BenchmarkMintWithClaims within Mint; TestMintClaimsJSONIsWhatEncodingJSONWrites,
// FuzzMintClaimsJSONIsWhatEncodingJSONWrites and FuzzWireClaimsMatchEncodingJSON keep the bytes
// identical.
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
	st := k.state.Load()
	key, ok := st.byKID[h.Kid]
	if !ok {
		if st.withdrawn[h.Kid] {
			return nil, ErrWithdrawn
		}
		return nil, fmt.Errorf("%w: unknown kid", ErrInvalidToken)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("%w: signature encoding", ErrInvalidToken)
	}
	if err := jwt.SigningMethodES256.Verify(parts[0]+"."+parts[1], sig, key.pub); err != nil {
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
