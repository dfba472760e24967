package signing

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// Detached signatures: a JWS in compact serialization whose payload is left out (RFC 7515
// Appendix F), "<header>..<signature>", made with the key that signs access tokens and checked
// with nothing but the public JWKS. The audit log's checkpoints use them (AUDIT.md documents the
// signed bytes). The header's typ keeps such a signature from ever passing for an access token,
// whose payload it also lacks.

// rawURL is base64url without padding, as JOSE writes it.
var rawURL = base64.RawURLEncoding

// SignDetached signs payload with the current signing key. It returns the detached JWS and the
// key's kid; the header is {"alg":"ES256","kid":<kid>,"typ":<typ>}.
func (k *KeyRing) SignDetached(typ string, payload []byte) (jws, kid string, err error) {
	key := k.currentKey()
	if key == nil || key.priv == nil {
		return "", "", ErrNoSigningKey
	}
	header, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{Algorithm, key.kid, typ})
	if err != nil {
		return "", "", err
	}
	h := rawURL.EncodeToString(header)
	sig, err := jwt.SigningMethodES256.Sign(h+"."+rawURL.EncodeToString(payload), key.priv)
	if err != nil {
		return "", "", err
	}
	return h + ".." + rawURL.EncodeToString(sig), key.kid, nil
}

// VerifyDetached checks a detached JWS over payload against the keys of a public JWK set (JSON, as
// served at /.well-known/jwks.json). It returns the kid that signed, and fails when the header is
// not ES256 of the expected typ, names a kid the set does not hold, or the signature is wrong.
func VerifyDetached(jwks []byte, typ, jws string, payload []byte) (kid string, err error) {
	parts := strings.Split(jws, ".")
	if len(parts) != 3 || parts[1] != "" {
		return "", errors.New("not a detached JWS (header..signature)")
	}
	hb, err := rawURL.DecodeString(parts[0])
	if err != nil {
		return "", errors.New("JWS header is not base64url")
	}
	var h struct{ Alg, Kid, Typ string }
	if err := json.Unmarshal(hb, &h); err != nil {
		return "", fmt.Errorf("JWS header: %w", err)
	}
	if h.Alg != Algorithm || h.Typ != typ {
		return h.Kid, fmt.Errorf("JWS header has alg %q and typ %q, want %s and %s", h.Alg, h.Typ, Algorithm, typ)
	}
	pub, err := jwksKey(jwks, h.Kid)
	if err != nil {
		return h.Kid, err
	}
	sig, err := rawURL.DecodeString(parts[2])
	if err != nil {
		return h.Kid, errors.New("JWS signature is not base64url")
	}
	if err := jwt.SigningMethodES256.Verify(parts[0]+"."+rawURL.EncodeToString(payload), sig, pub); err != nil {
		return h.Kid, fmt.Errorf("signature by key %s does not match", h.Kid)
	}
	return h.Kid, nil
}

// jwksKey finds the P-256 public key kid in a JWK set.
func jwksKey(jwks []byte, kid string) (*ecdsa.PublicKey, error) {
	var set struct {
		Keys []struct{ Kty, Crv, X, Y, Kid string } `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		return nil, fmt.Errorf("the JWKS is not a JWK set: %w", err)
	}
	for _, k := range set.Keys {
		if k.Kid != kid {
			continue
		}
		if k.Kty != "EC" || k.Crv != "P-256" {
			return nil, fmt.Errorf("key %s in the JWKS is not an EC P-256 key", kid)
		}
		x, errX := rawURL.DecodeString(k.X)
		y, errY := rawURL.DecodeString(k.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return nil, fmt.Errorf("key %s in the JWKS has malformed coordinates", kid)
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, fmt.Errorf("key %s in the JWKS: %w", kid, err)
		}
		return pub, nil
	}
	return nil, fmt.Errorf("the JWKS holds no key %s", kid)
}
