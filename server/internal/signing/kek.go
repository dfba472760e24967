// Package signing holds the server's ES256 signing keys: generated once, stored encrypted under the
// key-encryption key (KEK), shared by every replica through the store, used to mint and verify
// access tokens and published as a JWKS (CONTRACT.md §2, §4).
package signing

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// KEKSize is the size of the key-encryption key (AES-256).
const KEKSize = 32

const kekHelp = "generate one with: openssl rand -base64 32"

// ParseKEK decodes a base64 (standard or URL alphabet, padding optional) key-encryption key of
// exactly 32 bytes. Surrounding whitespace (a trailing newline in a file) is ignored.
func ParseKEK(b64 string) ([]byte, error) {
	s := strings.TrimSpace(b64)
	if s == "" {
		return nil, errors.New("key-encryption key is empty; " + kekHelp)
	}
	var key []byte
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err = enc.DecodeString(s); err == nil {
			break
		}
	}
	if err != nil {
		return nil, errors.New("key-encryption key is not valid base64; " + kekHelp)
	}
	if len(key) != KEKSize {
		return nil, fmt.Errorf("key-encryption key must decode to %d bytes, got %d; %s", KEKSize, len(key), kekHelp)
	}
	return key, nil
}

// sealVersion prefixes every sealed blob so the format can change later.
const sealVersion = 1

// Seal encrypts a private key with AES-256-GCM under kek. The kid is authenticated as additional
// data, so a sealed key cannot be moved to another key's row. Layout: version(1) | nonce(12) |
// ciphertext+tag.
func Seal(kek []byte, kid string, key *ecdsa.PrivateKey) ([]byte, error) {
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("signing: encoding private key: %w", err)
	}
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(der)+aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return aead.Seal(out, out[1:], der, []byte(kid)), nil
}

// Open decrypts a key sealed by Seal under kek for kid.
func Open(kek []byte, kid string, sealed []byte) (*ecdsa.PrivateKey, error) {
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	if len(sealed) < 1+aead.NonceSize()+aead.Overhead() || sealed[0] != sealVersion {
		return nil, fmt.Errorf("signing: sealed key %q has an unknown format", kid)
	}
	nonce, ct := sealed[1:1+aead.NonceSize()], sealed[1+aead.NonceSize():]
	der, err := aead.Open(nil, nonce, ct, []byte(kid))
	if err != nil {
		return nil, fmt.Errorf("signing: cannot decrypt signing key %q: wrong key-encryption key? (%v)", kid, err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("signing: decrypted key %q is not PKCS#8: %w", kid, err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing: key %q is %T, not ECDSA", kid, k)
	}
	return ec, nil
}

func newAEAD(kek []byte) (cipher.AEAD, error) {
	if len(kek) != KEKSize {
		return nil, fmt.Errorf("signing: key-encryption key must be %d bytes, got %d", KEKSize, len(kek))
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
