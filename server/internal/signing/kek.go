package signing

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
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

// KEKID names a key-encryption key without revealing it: "kek-" and the first 12 hex digits of a
// SHA-256 over a label and the key. Every sealed key records the id of the KEK it is sealed with,
// so that a server given the wrong KEK can say which one it needs (`trustgate kek id` prints the
// id of a KEK).
func KEKID(kek []byte) string {
	h := sha256.New()
	h.Write([]byte("trustgate key-encryption key id\x00"))
	h.Write(kek)
	return "kek-" + hex.EncodeToString(h.Sum(nil))[:12]
}

// KEKs are the key-encryption keys a server opens sealed signing keys with. Current seals every
// key it creates or re-seals; Previous (optional) only opens, during the rolling restart that
// follows `trustgate kek rotate` (TRUSTGATE_KEK_PREVIOUS).
type KEKs struct {
	Current  []byte
	Previous []byte
}

func (k KEKs) id() string { return KEKID(k.Current) }

func (k KEKs) validate() error {
	if len(k.Current) != KEKSize {
		return fmt.Errorf("signing: key-encryption key must be %d bytes, got %d", KEKSize, len(k.Current))
	}
	if k.Previous != nil && len(k.Previous) != KEKSize {
		return fmt.Errorf("signing: previous key-encryption key must be %d bytes, got %d", KEKSize, len(k.Previous))
	}
	return nil
}

// open decrypts the private part of s with the KEK its KEKID names, or, for a key sealed before
// ids were recorded, with whichever of the two opens it. The error says which KEK is needed.
func (k KEKs) open(s StoredKey) (*ecdsa.PrivateKey, error) {
	if len(s.SealedPrivate) == 0 {
		return nil, fmt.Errorf("signing: key %s has no private part any more (it retired or was withdrawn), yet this process's clock says it signs now: check that the clocks of the servers and this machine agree", s.KID)
	}
	candidates := [][]byte{k.Current, k.Previous}
	if s.KEKID != "" {
		candidates = nil
		for _, kek := range [][]byte{k.Current, k.Previous} {
			if kek != nil && KEKID(kek) == s.KEKID {
				candidates = append(candidates, kek)
			}
		}
	}
	var lastErr error
	for _, kek := range candidates {
		if kek == nil {
			continue
		}
		priv, err := Unseal(kek, s.KID, s.SealedPrivate)
		if err == nil {
			return priv, nil
		}
		lastErr = err
	}
	return nil, &WrongKEKError{KID: s.KID, Need: s.KEKID, Have: KEKID(k.Current), HavePrevious: k.previousID(), cause: lastErr}
}

func (k KEKs) previousID() string {
	if k.Previous == nil {
		return ""
	}
	return KEKID(k.Previous)
}

// WrongKEKError means a sealed signing key opens with neither KEK the server was given.
type WrongKEKError struct {
	KID          string
	Need         string // the id recorded with the key; empty for keys sealed before ids were kept
	Have         string // the id of TRUSTGATE_KEK
	HavePrevious string // the id of TRUSTGATE_KEK_PREVIOUS, if set
	cause        error
}

func (e *WrongKEKError) Error() string {
	sealed := "with a key-encryption key whose id was not recorded (sealed before KEK ids were kept)"
	need := "the key-encryption key this database was created with"
	if e.Need != "" {
		sealed = "with the key-encryption key " + e.Need
		need = "the key-encryption key whose id is " + e.Need
	}
	have := "this process has " + e.Have + " (TRUSTGATE_KEK or --kek-file)"
	if e.HavePrevious != "" {
		have += " and " + e.HavePrevious + " (TRUSTGATE_KEK_PREVIOUS)"
	} else {
		have += " and no previous KEK (TRUSTGATE_KEK_PREVIOUS)"
	}
	msg := fmt.Sprintf("signing key %s is sealed %s, but %s. Supply %s as TRUSTGATE_KEK or --kek-file "+
		"(`trustgate kek id --kek-file F` prints the id of a KEK); after `trustgate kek rotate` that is the new KEK, "+
		"with the old one as TRUSTGATE_KEK_PREVIOUS until every server has restarted", e.KID, sealed, have, need)
	if e.cause != nil {
		msg += " (" + e.cause.Error() + ")"
	}
	return msg
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

// Unseal decrypts a key sealed by Seal under kek for kid.
func Unseal(kek []byte, kid string, sealed []byte) (*ecdsa.PrivateKey, error) {
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
