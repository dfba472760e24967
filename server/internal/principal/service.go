package principal

import (
	"context"
	"errors"
	"fmt"

	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storeerr"
)

// Storer is the storage of principals. Errors wrap the values of package storeerr where the
// method says so; the Service translates them.
type Storer interface {
	// CreatePrincipal stores p; storeerr.ErrDuplicateName when a principal of that name exists
	// or existed (revoked principals keep their names).
	CreatePrincipal(ctx context.Context, p Principal) error
	// PrincipalByKeyHash returns the unrevoked principal whose key hashes to hash;
	// storeerr.ErrNotFound when there is none.
	PrincipalByKeyHash(ctx context.Context, hash string) (*Principal, error)
	// ListPrincipals returns every principal, revoked ones included, ordered by name.
	ListPrincipals(ctx context.Context) ([]Principal, error)
	// RevokePrincipal revokes the principal's key for good (again is fine);
	// storeerr.ErrNotFound when there is no principal of that name.
	RevokePrincipal(ctx context.Context, name string) error
	// CountPrincipals counts every principal ever created, revoked ones included.
	CountPrincipals(ctx context.Context) (int64, error)
}

// The refusals of the key use cases. Test with errors.Is.
var (
	// ErrUnknownKey: no unrevoked principal holds this key.
	ErrUnknownKey = errors.New("unknown or revoked API key")
	// ErrNameTaken: a principal of this name exists or existed.
	ErrNameTaken = errors.New("principal name already taken")
	// ErrNoSuchPrincipal: no principal has this name.
	ErrNoSuchPrincipal = errors.New("no such principal")
)

// Service runs the API-key use cases, for the HTTP layer (Authenticate) and for the operator's
// `trustgate keys` and `serve --dev` (the rest).
type Service struct {
	Store Storer
}

// Authenticate returns the unrevoked principal holding the API key, or ErrUnknownKey.
func (s *Service) Authenticate(ctx context.Context, key string) (*Principal, error) {
	p, err := s.Store.PrincipalByKeyHash(ctx, HashKey(key))
	if errors.Is(err, storeerr.ErrNotFound) {
		return nil, ErrUnknownKey
	}
	return p, err
}

// Create creates a principal with the role and returns its API key, shown only here: the store
// keeps its hash. An invalid name or role is refused with the pattern or the roles to use; a
// taken name with an error that wraps ErrNameTaken.
func (s *Service) Create(ctx context.Context, name, role string) (string, error) {
	if err := ValidateName(name); err != nil {
		return "", err
	}
	if err := ValidateRole(role); err != nil {
		return "", err
	}
	key, hash, err := NewKey()
	if err != nil {
		return "", err
	}
	if err := s.Store.CreatePrincipal(ctx, Principal{Name: name, Role: role, KeyHash: hash}); err != nil {
		if errors.Is(err, storeerr.ErrDuplicateName) {
			// Names are never reused, revoked ones included, so the audit trail stays unambiguous.
			return "", fmt.Errorf("a key named %q already exists (names are never reused, revoked ones included): pick another name: %w", name, ErrNameTaken)
		}
		return "", err
	}
	return key, nil
}

// List returns every principal, revoked ones included, ordered by name. Keys are not among what
// it returns: only their hashes are stored.
func (s *Service) List(ctx context.Context) ([]Principal, error) {
	return s.Store.ListPrincipals(ctx)
}

// Revoke revokes the named principal's key for good; revoking a revoked key again succeeds. A
// name no principal has gives an error that wraps ErrNoSuchPrincipal.
func (s *Service) Revoke(ctx context.Context, name string) error {
	if err := s.Store.RevokePrincipal(ctx, name); err != nil {
		if errors.Is(err, storeerr.ErrNotFound) {
			return fmt.Errorf("no key named %q: %w", name, ErrNoSuchPrincipal)
		}
		return err
	}
	return nil
}

// Bootstrap creates the wanted principals (Name and Role) on a database that has never had one —
// the first run of `serve --dev` — and returns their keys in the same order. On any other
// database it creates nothing and returns nil.
func (s *Service) Bootstrap(ctx context.Context, want []Principal) ([]string, error) {
	n, err := s.Store.CountPrincipals(ctx)
	if err != nil || n > 0 {
		return nil, err
	}
	keys := make([]string, 0, len(want))
	for _, p := range want {
		key, err := s.Create(ctx, p.Name, p.Role)
		if err != nil {
			return nil, err
		}
		keys = append(keys, key)
	}
	return keys, nil
}
