// Package devissuer is a local OIDC issuer for tests and demos (`trustgate dev-issuer`): it
// publishes a JWKS and mints tokens shaped exactly like GitHub Actions, GitLab CI, CircleCI or
// Google tokens (templates in shapes/, embedded), with any claim overridden.
//
// It signs whatever it is asked to sign: never expose it beyond a test machine.
package devissuer

import (
	"bytes"
	"cmp"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"embed"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

//go:embed shapes/*.json
var shapeFiles embed.FS

// Shapes lists the token shapes Mint knows.
var Shapes = []string{"github", "gitlab", "circleci", "google", "generic"}

// DefaultTTL is the lifetime of minted tokens when none is given.
const DefaultTTL = 10 * time.Minute

// Options configure an Issuer. The zero value is an RS256 issuer with a fresh RSA-2048 key.
type Options struct {
	// Issuer is the issuer URL, used in the discovery document and as `iss` of the generic shape.
	// When empty, the discovery document uses the request's host, and SetIssuer can fill it later.
	Issuer string
	// KeyFile is a PEM (PKCS#8) private key file: loaded when it exists, written (0600) with a
	// fresh key otherwise, so that separate processes sign with the same key.
	KeyFile string
	// KID overrides the key id (default: the RFC 7638 thumbprint of the public key, so that
	// processes sharing a key file agree on it).
	KID string
	// Alg is the signing algorithm: RS256 (default), RS384, RS512, PS256/384/512, ES256/384/512,
	// EdDSA. The key type follows the alg.
	Alg string
	// RSABits is the RSA key size (default 2048; tests use 1024 to check that weak keys are refused).
	RSABits int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

type signingKey struct {
	kid  string
	alg  string
	priv crypto.Signer
}

// Issuer is a running dev issuer. It is safe for concurrent use.
type Issuer struct {
	now func() time.Time

	mu      sync.RWMutex
	issuer  string
	keys    []*signingKey // every published key, oldest first
	current *signingKey
}

// New creates an issuer.
func New(opts Options) (*Issuer, error) {
	if opts.RSABits == 0 {
		opts.RSABits = 2048
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	var priv crypto.Signer
	var err error
	if opts.KeyFile != "" {
		priv, err = loadOrCreateKeyFile(opts.KeyFile, cmp.Or(opts.Alg, "RS256"), opts.RSABits)
	} else {
		priv, err = generateKey(cmp.Or(opts.Alg, "RS256"), opts.RSABits)
	}
	if err != nil {
		return nil, err
	}
	if opts.Alg == "" {
		opts.Alg = defaultAlg(priv)
	}
	k, err := newSigningKey(priv, opts.Alg, opts.KID)
	if err != nil {
		return nil, err
	}
	return &Issuer{now: opts.Now, issuer: strings.TrimRight(opts.Issuer, "/"), keys: []*signingKey{k}, current: k}, nil
}

// SetIssuer sets the issuer URL (e.g. once an httptest server knows its address).
func (i *Issuer) SetIssuer(url string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.issuer = strings.TrimRight(url, "/")
}

// URL is the issuer URL ("" until known).
func (i *Issuer) URL() string {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.issuer
}

// KID is the key id new tokens are signed with.
func (i *Issuer) KID() string {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.current.kid
}

// Rotate generates a new key of the current algorithm, publishes it next to the old ones and
// signs new tokens with it. It returns the new kid.
func (i *Issuer) Rotate() (string, error) {
	i.mu.RLock()
	alg, bits := i.current.alg, 2048
	if r, ok := i.current.priv.(*rsa.PrivateKey); ok {
		bits = r.N.BitLen()
	}
	i.mu.RUnlock()
	kid, err := i.AddKey(alg, bits, "")
	if err != nil {
		return "", err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	for _, k := range i.keys {
		if k.kid == kid {
			i.current = k
		}
	}
	return kid, nil
}

// AddKey generates and publishes an extra key without making it current; sign with it through
// MintOptions.KID. It returns the kid (generated when kid is empty).
func (i *Issuer) AddKey(alg string, rsaBits int, kid string) (string, error) {
	priv, err := generateKey(alg, rsaBits)
	if err != nil {
		return "", err
	}
	k, err := newSigningKey(priv, alg, kid)
	if err != nil {
		return "", err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	for _, existing := range i.keys {
		if existing.kid == k.kid {
			return "", fmt.Errorf("devissuer: kid %q already exists", k.kid)
		}
	}
	i.keys = append(i.keys, k)
	return k.kid, nil
}

// RemoveKey stops publishing a key (it cannot be the current one).
func (i *Issuer) RemoveKey(kid string) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.current.kid == kid {
		return errors.New("devissuer: cannot remove the current key")
	}
	i.keys = slices.DeleteFunc(i.keys, func(k *signingKey) bool { return k.kid == kid })
	return nil
}

// JWKS is the public JWK set.
func (i *Issuer) JWKS() ([]byte, error) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	set := jwkset.JWKSMarshal{Keys: []jwkset.JWKMarshal{}}
	for _, k := range i.keys {
		m, err := publicJWK(k)
		if err != nil {
			return nil, err
		}
		set.Keys = append(set.Keys, m)
	}
	return json.Marshal(set)
}

// MintOptions are the full set of minting knobs; Mint covers the common case.
type MintOptions struct {
	Shape string
	// Claims override the template: a key starting with "/" is an RFC 6901 JSON pointer (nested
	// objects are created as needed); any other key is a top-level claim name taken literally.
	// A nil value deletes the claim.
	Claims map[string]any
	TTL    time.Duration // DefaultTTL when zero
	// KID selects a published key other than the current one.
	KID string
	// Header adds or overrides JOSE header members (e.g. "jku" for attack tests); a nil value
	// deletes one (e.g. "kid"). When "alg" names an algorithm the key cannot produce (ES256 on an
	// RSA key), the header says it but the signature uses the key's own algorithm.
	Header map[string]any
}

// Mint signs a token of the given shape with fresh iat (and nbf, jti where the shape has them)
// and exp = now + ttl, then applies overrides.
func (i *Issuer) Mint(shape string, overrides map[string]any, ttl time.Duration) (string, error) {
	return i.MintWith(MintOptions{Shape: shape, Claims: overrides, TTL: ttl})
}

// MintWith signs a token as described by o.
func (i *Issuer) MintWith(o MintOptions) (string, error) {
	claims, err := i.Claims(o.Shape, o.Claims, o.TTL)
	if err != nil {
		return "", err
	}
	i.mu.RLock()
	key := i.current
	if o.KID != "" {
		key = nil
		for _, k := range i.keys {
			if k.kid == o.KID {
				key = k
			}
		}
	}
	i.mu.RUnlock()
	if key == nil {
		return "", fmt.Errorf("devissuer: no key %q", o.KID)
	}
	header := map[string]any{"alg": key.alg, "kid": key.kid, "typ": "JWT"}
	for k, v := range o.Header {
		if v == nil {
			delete(header, k)
		} else {
			header[k] = v
		}
	}
	signAlg := header["alg"]
	if a, ok := signAlg.(string); !ok || keyFitsAlg(key.priv, a) != nil {
		// A header alg the key cannot produce (attack tests): sign with the key's own alg.
		signAlg = key.alg
	}
	return sign(header, signAlg.(string), claims, key.priv)
}

// Claims builds the claim set Mint would sign.
func (i *Issuer) Claims(shape string, overrides map[string]any, ttl time.Duration) (map[string]any, error) {
	if shape == "" {
		shape = "generic"
	}
	claims, err := template(shape)
	if err != nil {
		return nil, err
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	now := i.now()
	claims["iat"] = json.Number(strconv.FormatInt(now.Unix(), 10))
	claims["exp"] = json.Number(strconv.FormatInt(now.Add(ttl).Unix(), 10))
	if _, ok := claims["nbf"]; ok {
		claims["nbf"] = json.Number(strconv.FormatInt(now.Unix(), 10))
	}
	if _, ok := claims["jti"]; ok {
		var b [16]byte
		_, _ = rand.Read(b[:])
		claims["jti"] = fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
	}
	if shape == "generic" {
		if iss := i.URL(); iss != "" {
			claims["iss"] = iss
		}
	}
	// Apply overrides in a stable order: deletions and parents before children.
	for _, k := range slices.Sorted(maps.Keys(overrides)) {
		if err := setClaim(claims, k, overrides[k]); err != nil {
			return nil, err
		}
	}
	return claims, nil
}

func template(shape string) (map[string]any, error) {
	b, err := fs.ReadFile(shapeFiles, "shapes/"+shape+".json")
	if err != nil || !slices.Contains(Shapes, shape) {
		return nil, fmt.Errorf("devissuer: unknown shape %q (one of %s)", shape, strings.Join(Shapes, ", "))
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("devissuer: shape %q: %w", shape, err)
	}
	return m, nil
}

// setClaim sets (or, for nil, deletes) a claim addressed by a top-level name or a JSON pointer.
func setClaim(claims map[string]any, key string, value any) error {
	if !strings.HasPrefix(key, "/") {
		if value == nil {
			delete(claims, key)
		} else {
			claims[key] = value
		}
		return nil
	}
	tokens := strings.Split(key[1:], "/")
	for n, t := range tokens {
		tokens[n] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	obj := claims
	for _, t := range tokens[:len(tokens)-1] {
		next, ok := obj[t]
		if !ok || next == nil {
			if value == nil {
				return nil // deleting under a missing parent: nothing to do
			}
			child := map[string]any{}
			obj[t] = child
			obj = child
			continue
		}
		child, ok := next.(map[string]any)
		if !ok {
			return fmt.Errorf("devissuer: claim %q: %q is not an object", key, t)
		}
		obj = child
	}
	last := tokens[len(tokens)-1]
	if value == nil {
		delete(obj, last)
	} else {
		obj[last] = value
	}
	return nil
}

func sign(header map[string]any, alg string, claims map[string]any, priv crypto.Signer) (string, error) {
	method := jwt.GetSigningMethod(alg)
	if method == nil {
		return "", fmt.Errorf("devissuer: unknown alg %q", alg)
	}
	hb, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	var key any = priv
	if e, ok := priv.(ed25519.PrivateKey); ok {
		key = e
	}
	sig, err := method.Sign(input, key)
	if err != nil {
		return "", fmt.Errorf("devissuer: signing with %s: %w", alg, err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

func generateKey(alg string, rsaBits int) (crypto.Signer, error) {
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		if rsaBits == 0 {
			rsaBits = 2048
		}
		return rsa.GenerateKey(rand.Reader, rsaBits)
	case "ES256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ES512":
		return ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "EdDSA":
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("devissuer: unsupported alg %q", alg)
}

func loadOrCreateKeyFile(path, alg string, rsaBits int) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		priv, err := generateKey(alg, rsaBits)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, err
		}
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, err
			}
		}
		out := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		// O_EXCL: if another process created the file meanwhile, use its key.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			return loadOrCreateKeyFile(path, alg, rsaBits)
		}
		if err != nil {
			return nil, err
		}
		if _, err := f.Write(out); err != nil {
			f.Close()
			return nil, err
		}
		return priv, f.Close()
	}
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("devissuer: %s is not a PEM file", path)
	}
	var key any
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("devissuer: parsing %s: %w", path, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("devissuer: %s holds an unsupported key %T", path, key)
	}
	return signer, nil
}

func newSigningKey(priv crypto.Signer, alg, kid string) (*signingKey, error) {
	if err := keyFitsAlg(priv, alg); err != nil {
		return nil, err
	}
	k := &signingKey{kid: kid, alg: alg, priv: priv}
	if kid == "" {
		m, err := publicJWK(k)
		if err != nil {
			return nil, err
		}
		k.kid = thumbprint(m)
	}
	return k, nil
}

// defaultAlg is the usual algorithm for a key loaded from a file.
func defaultAlg(priv crypto.Signer) string {
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P384():
			return "ES384"
		case elliptic.P521():
			return "ES512"
		}
		return "ES256"
	case ed25519.PrivateKey:
		return "EdDSA"
	}
	return "RS256"
}

func keyFitsAlg(priv crypto.Signer, alg string) error {
	switch priv.(type) {
	case *rsa.PrivateKey:
		if slices.Contains([]string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, alg) {
			return nil
		}
	case *ecdsa.PrivateKey:
		if strings.HasPrefix(alg, "ES") && defaultAlg(priv) == alg {
			return nil
		}
	case ed25519.PrivateKey:
		if alg == "EdDSA" {
			return nil
		}
	}
	return fmt.Errorf("devissuer: a %T cannot sign %s", priv, alg)
}

func publicJWK(k *signingKey) (jwkset.JWKMarshal, error) {
	j, err := jwkset.NewJWKFromKey(k.priv.Public(), jwkset.JWKOptions{
		Metadata: jwkset.JWKMetadataOptions{KID: k.kid, ALG: jwkset.ALG(k.alg), USE: jwkset.UseSig},
	})
	if err != nil {
		return jwkset.JWKMarshal{}, fmt.Errorf("devissuer: encoding public key: %w", err)
	}
	return j.Marshal(), nil
}

// thumbprint is the RFC 7638 thumbprint of a public JWK (base64url SHA-256 of the required
// members in lexicographic order).
func thumbprint(m jwkset.JWKMarshal) string {
	var canonical string
	switch m.KTY {
	case jwkset.KtyRSA:
		canonical = fmt.Sprintf(`{"e":%q,"kty":"RSA","n":%q}`, m.E, m.N)
	case jwkset.KtyEC:
		canonical = fmt.Sprintf(`{"crv":%q,"kty":"EC","x":%q,"y":%q}`, m.CRV, m.X, m.Y)
	default:
		canonical = fmt.Sprintf(`{"crv":%q,"kty":%q,"x":%q}`, m.CRV, m.KTY, m.X)
	}
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
