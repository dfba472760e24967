// Package principal holds the API-key principals of the admin API — their names, roles and the
// hashes of their keys — and the use cases on them (service.go): authenticate a bearer key,
// create, list and revoke keys. Keys are shown once at creation and stored only as hashes
// (CONTRACT.md §2).
//
// # The boundary
//
// The Service declares Storer, what it needs from storage (*store.Store implements it; the store
// in turn uses this package's Principal as its model). It recognises what the store reports by the
// values of package storeerr and translates them into this package's errors (ErrUnknownKey,
// ErrNameTaken, ErrNoSuchPrincipal), so neither the HTTP layer nor the `trustgate keys` command
// sees a store error.
package principal

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// KeyPrefix starts every API key, so that a leaked key is recognisable by secret scanners and a
// caller can tell an API key from a JWT access token without parsing it.
const KeyPrefix = "tg_"

// Principal is a named holder of an API key with one role.
type Principal struct {
	Name      string
	Role      string
	KeyHash   string
	CreatedAt time.Time
	// RevokedAt is set when the key was revoked; a revoked principal never authenticates again.
	RevokedAt *time.Time
}

// Revoked reports whether the principal's key has been revoked.
func (p Principal) Revoked() bool { return p.RevokedAt != nil }

// NewKey returns a fresh API key (`tg_` + base64url of 32 random bytes) and its hash. Only the hash
// is ever stored; the plaintext is shown to the operator once.
func NewKey() (plaintext, hash string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("generate api key: %w", err)
	}
	plaintext = KeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return plaintext, HashKey(plaintext), nil
}

// HashKey returns the hex SHA-256 of an API key, the form in which keys are stored and looked up.
//
// A fast, unsalted hash is right here, unlike for passwords: keys are 256 bits from a CSPRNG, so
// there is nothing to brute-force or look up in a table, and a slow KDF would only add latency to
// every authenticated request. Being deterministic, the hash can also be the lookup index.
func HashKey(plaintext string) string {
	sum := sha256.Sum256([]byte(plaintext))
	return hex.EncodeToString(sum[:])
}

// LooksLikeKey reports whether s has the shape of an API key (prefix only; it says nothing about
// validity).
func LooksLikeKey(s string) bool { return strings.HasPrefix(s, KeyPrefix) }

var namePattern = regexp.MustCompile(api.NamePattern)

// ValidateName checks a principal name against the same pattern as connection names.
func ValidateName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("invalid principal name %q: must match %s", name, api.NamePattern)
	}
	return nil
}

// ValidateRole checks that role is one of api.Roles.
func ValidateRole(role string) error {
	if !slices.Contains(api.Roles, role) {
		return fmt.Errorf("invalid role %q: must be one of %s", role, strings.Join(api.Roles, ", "))
	}
	return nil
}
