package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// SigningKey is a stored access-token signing key. SealedPrivate is the private key encrypted with
// the key-encryption key (the store never sees it in the clear); PublicJWK is the public JWK JSON.
type SigningKey struct {
	KID           string
	Algorithm     string
	PublicJWK     []byte
	SealedPrivate []byte
	CreatedAt     time.Time
}

type signingKeyRow struct {
	KID           string `gorm:"column:kid;primaryKey"`
	Algorithm     string `gorm:"column:algorithm"`
	PublicJWK     string `gorm:"column:public_jwk"`
	SealedPrivate []byte `gorm:"column:sealed_private"`
	CreatedAt     dbTime `gorm:"column:created_at;autoCreateTime:false"`
}

func (signingKeyRow) TableName() string { return "signing_keys" }

// SigningKeys returns every signing key, oldest first.
func (s *Store) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	return signingKeys(s.rdb.WithContext(ctx))
}

func signingKeys(db *gorm.DB) ([]SigningKey, error) {
	var rows []signingKeyRow
	if err := db.Order("created_at, kid").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	out := make([]SigningKey, 0, len(rows))
	for _, r := range rows {
		out = append(out, SigningKey{
			KID:           r.KID,
			Algorithm:     r.Algorithm,
			PublicJWK:     []byte(r.PublicJWK),
			SealedPrivate: r.SealedPrivate,
			CreatedAt:     r.CreatedAt.Time,
		})
	}
	return out, nil
}

// CreateFirstSigningKey inserts k only if there is no signing key yet, and returns the keys present
// afterwards. Replicas starting at the same moment each generate a key and call this: exactly one
// insert wins, and the losers get the winner's key back. PostgreSQL serialises the callers with a
// transaction-level advisory lock; SQLite with its write lock, which an IMMEDIATE transaction takes
// at BEGIN. Zero CreatedAt becomes now.
func (s *Store) CreateFirstSigningKey(ctx context.Context, k SigningKey) ([]SigningKey, error) {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = now()
	}
	var keys []SigningKey
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if s.dialect == DialectPostgres {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", signingKeyLockID).Error; err != nil {
				return fmt.Errorf("lock signing keys: %w", err)
			}
		}
		var n int64
		if err := tx.Model(&signingKeyRow{}).Count(&n).Error; err != nil {
			return fmt.Errorf("count signing keys: %w", err)
		}
		if n == 0 {
			row := signingKeyRow{
				KID:           k.KID,
				Algorithm:     k.Algorithm,
				PublicJWK:     string(k.PublicJWK),
				SealedPrivate: k.SealedPrivate,
				CreatedAt:     newDBTime(k.CreatedAt),
			}
			if err := tx.Create(&row).Error; err != nil {
				return fmt.Errorf("insert signing key %s: %w", k.KID, err)
			}
		}
		var err error
		keys, err = signingKeys(tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}
