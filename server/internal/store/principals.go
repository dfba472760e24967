package store

import (
	"context"
	"fmt"

	"github.com/trustgate/terraform-provider-trustgate/server/internal/principal"
)

// principalRow is the principals table.
type principalRow struct {
	Name      string   `gorm:"column:name;primaryKey"`
	Role      string   `gorm:"column:role"`
	KeyHash   string   `gorm:"column:key_hash"`
	CreatedAt dbTime   `gorm:"column:created_at;autoCreateTime:false"`
	RevokedAt nullTime `gorm:"column:revoked_at"`
}

func (principalRow) TableName() string { return "principals" }

func (r principalRow) toPrincipal() principal.Principal {
	return principal.Principal{
		Name:      r.Name,
		Role:      r.Role,
		KeyHash:   r.KeyHash,
		CreatedAt: r.CreatedAt.Time,
		RevokedAt: r.RevokedAt.Ptr(),
	}
}

// CreatePrincipal stores a principal (zero CreatedAt becomes now). A taken name gives
// ErrDuplicateName, also when the principal of that name is revoked: names are never reused, so the
// audit trail stays unambiguous.
func (s *Store) CreatePrincipal(ctx context.Context, p principal.Principal) error {
	if p.CreatedAt.IsZero() {
		p.CreatedAt = now()
	}
	row := principalRow{
		Name:      p.Name,
		Role:      p.Role,
		KeyHash:   p.KeyHash,
		CreatedAt: newDBTime(p.CreatedAt),
		RevokedAt: newNullTime(p.RevokedAt),
	}
	if err := s.db.WithContext(ctx).Create(&row).Error; err != nil {
		if uniqueViolation(err, "principals_pkey", "principals.name") {
			return fmt.Errorf("create principal %q: %w", p.Name, ErrDuplicateName)
		}
		return fmt.Errorf("create principal %q: %w", p.Name, err)
	}
	return nil
}

// PrincipalByKeyHash returns the unrevoked principal whose key hashes to hash, or ErrNotFound.
func (s *Store) PrincipalByKeyHash(ctx context.Context, hash string) (*principal.Principal, error) {
	var rows []principalRow
	if err := s.rdb.WithContext(ctx).Where("key_hash = ? AND revoked_at IS NULL", hash).Limit(1).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("look up principal: %w", err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("principal: %w", ErrNotFound)
	}
	p := rows[0].toPrincipal()
	return &p, nil
}

// ListPrincipals returns every principal, revoked ones included, ordered by name.
func (s *Store) ListPrincipals(ctx context.Context) ([]principal.Principal, error) {
	var rows []principalRow
	if err := s.rdb.WithContext(ctx).Order("name").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list principals: %w", err)
	}
	out := make([]principal.Principal, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.toPrincipal())
	}
	return out, nil
}

// RevokePrincipal revokes the principal's key for good; ErrNotFound when there is no principal of
// that name. Revoking a revoked principal succeeds and keeps the first revocation time.
func (s *Store) RevokePrincipal(ctx context.Context, name string) error {
	res := s.db.WithContext(ctx).Model(&principalRow{}).
		Where("name = ? AND revoked_at IS NULL", name).
		Update("revoked_at", newNullTime(ptr(now())))
	if res.Error != nil {
		return fmt.Errorf("revoke principal %q: %w", name, res.Error)
	}
	if res.RowsAffected > 0 {
		return nil
	}
	var n int64
	if err := s.db.WithContext(ctx).Model(&principalRow{}).Where("name = ?", name).Count(&n).Error; err != nil {
		return fmt.Errorf("revoke principal %q: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("principal %q: %w", name, ErrNotFound)
	}
	return nil
}

// CountPrincipals counts every principal ever created, revoked ones included: zero means a
// database that has never had a key (where `serve --dev` bootstraps the first ones).
func (s *Store) CountPrincipals(ctx context.Context) (int64, error) {
	var n int64
	if err := s.rdb.WithContext(ctx).Model(&principalRow{}).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count principals: %w", err)
	}
	return n, nil
}

func ptr[T any](v T) *T { return &v }
