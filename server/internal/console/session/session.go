// Package session holds the review console's sign-in sessions (CONTRACT.md §7): an API key is
// traded once for a random session token that the browser keeps in a cookie; the database keeps
// only the token's SHA-256, the principal and the expiry, so that every replica knows every
// session and a copy of the table signs nobody in. It knows nothing of HTTP: the console's
// handlers set and read the cookie.
//
// # Rules
//
//   - A session lasts Lifetime from sign-in, whatever happens in between (no sliding renewal: a
//     stolen cookie is good for at most that long).
//   - It ends at sign-out, and when the principal's key is revoked: Resume checks the principal on
//     every request, through the same join as the lookup.
//   - A wrong key and an unknown key are the same refusal (ErrBadKey), so the answer never tells
//     which keys exist.
//   - The CSRF token of a form is derived from the session token (CSRFToken), so it is bound to
//     the session, needs no storage, and cannot be computed by someone who lacks the cookie.
//
// # The boundary
//
// The Service declares what it needs: Storer (*store.Store implements it) and KeyChecker
// (*principal.Service). It recognises storeerr.ErrNotFound and answers ErrNoSession.
package session

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/trustgate/terraform-provider-trustgate/server/internal/principal"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storeerr"
)

// Lifetime is how long a session lasts from sign-in.
const Lifetime = 12 * time.Hour

// maxKeyLen bounds what is hashed and looked up: API keys are 46 characters.
const maxKeyLen = 256

// Session is a signed-in principal.
type Session struct {
	Principal string
	Role      string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Storer is the storage of sessions. Times are compared by the database.
type Storer interface {
	// CreateSession stores a session under the hash of its token.
	CreateSession(ctx context.Context, tokenHash string, s Session) error
	// SessionByTokenHash returns the session whose token hashes to tokenHash if it has not
	// expired at now and its principal's key is not revoked (Role filled in from the principal);
	// storeerr.ErrNotFound otherwise.
	SessionByTokenHash(ctx context.Context, tokenHash string, now time.Time) (*Session, error)
	// DeleteSession deletes the session (none is fine).
	DeleteSession(ctx context.Context, tokenHash string) error
	// DeleteExpiredSessions deletes every session that expired before now.
	DeleteExpiredSessions(ctx context.Context, now time.Time) error
}

// KeyChecker authenticates an API key (*principal.Service).
type KeyChecker interface {
	Authenticate(ctx context.Context, key string) (*principal.Principal, error)
}

// The refusals of the session use cases. Test with errors.Is.
var (
	// ErrBadKey: the key is not one of an unrevoked principal. The same for every wrong key.
	ErrBadKey = errors.New("this API key was not accepted: check that you pasted the whole key, or ask an operator for a new one")
	// ErrNoSession: no session has this token, or it expired, or its key was revoked.
	ErrNoSession = errors.New("your session has ended: sign in again")
)

// Service runs the session use cases.
type Service struct {
	Store Storer
	Keys  KeyChecker
	// Now is the clock of expiry (default time.Now).
	Now func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// SignIn checks an API key and starts a session for its principal. It returns the session token,
// which only the caller (the browser's cookie) keeps. Expired sessions of everyone are deleted
// on the way, so the table holds live sessions only.
func (s *Service) SignIn(ctx context.Context, key string) (string, *Session, error) {
	if key == "" || len(key) > maxKeyLen || !utf8.ValidString(key) || !principal.LooksLikeKey(key) {
		return "", nil, ErrBadKey
	}
	p, err := s.Keys.Authenticate(ctx, key)
	if errors.Is(err, principal.ErrUnknownKey) {
		return "", nil, ErrBadKey
	}
	if err != nil {
		return "", nil, err
	}
	now := s.now()
	if err := s.Store.DeleteExpiredSessions(ctx, now); err != nil {
		return "", nil, err
	}
	token, err := newToken()
	if err != nil {
		return "", nil, err
	}
	sess := &Session{Principal: p.Name, Role: p.Role, CreatedAt: now, ExpiresAt: now.Add(Lifetime)}
	if err := s.Store.CreateSession(ctx, HashToken(token), *sess); err != nil {
		return "", nil, err
	}
	return token, sess, nil
}

// Resume returns the session of a token if it is still good: not expired, not signed out, and
// its principal's key not revoked. ErrNoSession otherwise.
func (s *Service) Resume(ctx context.Context, token string) (*Session, error) {
	if !wellFormed(token) {
		return nil, ErrNoSession
	}
	sess, err := s.Store.SessionByTokenHash(ctx, HashToken(token), s.now())
	if errors.Is(err, storeerr.ErrNotFound) {
		return nil, ErrNoSession
	}
	return sess, err
}

// SignOut ends the session of a token (an unknown token is fine: the result is the same).
func (s *Service) SignOut(ctx context.Context, token string) error {
	if !wellFormed(token) {
		return nil
	}
	return s.Store.DeleteSession(ctx, HashToken(token))
}

// tokenBytes is the entropy of a session token.
const tokenBytes = 32

// newToken returns a fresh session token: base64url of 32 random bytes.
func newToken() (string, error) {
	var b [tokenBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate session token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// NewNonce returns a random token of the same shape as a session token, for the sign-in form's
// own CSRF cookie (there is no session yet to bind it to).
func NewNonce() (string, error) { return newToken() }

// WellFormed reports whether token has the shape of a session token or nonce, so that nothing
// else is hashed, looked up or used as a key.
func WellFormed(token string) bool { return wellFormed(token) }

func wellFormed(token string) bool {
	b, err := base64.RawURLEncoding.DecodeString(token)
	return err == nil && len(b) == tokenBytes
}

// HashToken is the form in which a session token is stored: hex SHA-256. Like API keys, tokens
// are 256 random bits, so a fast unsalted hash is enough and can be the lookup key.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// csrfLabel separates the CSRF derivation from any other use of the token.
const csrfLabel = "trustgate console csrf v1"

// CSRFToken is the CSRF token of the forms of the session whose token is given (or of the
// sign-in form, from its nonce): HMAC-SHA256 keyed with the token. It is stable for the session,
// differs between sessions, and cannot be computed without the token, which the browser keeps in
// an HttpOnly cookie.
func CSRFToken(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(csrfLabel))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// ValidCSRF reports, in constant time, whether got is the CSRF token of the session token.
func ValidCSRF(token, got string) bool {
	if !wellFormed(token) || got == "" {
		return false
	}
	return hmac.Equal([]byte(CSRFToken(token)), []byte(got))
}
