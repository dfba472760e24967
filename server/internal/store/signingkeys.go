package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// SigningKey is a stored access-token signing key. SealedPrivate is the private key encrypted with
// the key-encryption key named by KEKID (the store never sees it in the clear; empty once the key
// can never sign again); PublicJWK is the public JWK JSON. The lifecycle times are the signing
// package's to interpret: the store only keeps them.
type SigningKey struct {
	KID           string
	Algorithm     string
	PublicJWK     []byte
	SealedPrivate []byte
	KEKID         string
	CreatedAt     time.Time
	ActivatesAt   time.Time
	WithdrawnAt   *time.Time
}

type signingKeyRow struct {
	KID           string   `gorm:"column:kid;primaryKey"`
	Algorithm     string   `gorm:"column:algorithm"`
	PublicJWK     string   `gorm:"column:public_jwk"`
	SealedPrivate []byte   `gorm:"column:sealed_private"`
	KEKID         string   `gorm:"column:kek_id"`
	CreatedAt     dbTime   `gorm:"column:created_at;autoCreateTime:false"`
	ActivatesAt   dbTime   `gorm:"column:activates_at"`
	WithdrawnAt   nullTime `gorm:"column:withdrawn_at"`
}

func (signingKeyRow) TableName() string { return "signing_keys" }

func toSigningKeyRow(k SigningKey) signingKeyRow {
	sealed := k.SealedPrivate
	if sealed == nil {
		sealed = []byte{} // the column is NOT NULL: an erased key is an empty blob
	}
	return signingKeyRow{KID: k.KID, Algorithm: k.Algorithm, PublicJWK: string(k.PublicJWK), SealedPrivate: sealed,
		KEKID: k.KEKID, CreatedAt: newDBTime(k.CreatedAt), ActivatesAt: newDBTime(k.ActivatesAt), WithdrawnAt: newNullTime(k.WithdrawnAt)}
}

func (r signingKeyRow) toSigningKey() SigningKey {
	return SigningKey{KID: r.KID, Algorithm: r.Algorithm, PublicJWK: []byte(r.PublicJWK), SealedPrivate: r.SealedPrivate,
		KEKID: r.KEKID, CreatedAt: r.CreatedAt.Time, ActivatesAt: r.ActivatesAt.Time, WithdrawnAt: r.WithdrawnAt.Ptr()}
}

// Names of the rows of lifecycle_counters.
const (
	counterSigningKeys = "signing_keys"
	counterRevocations = "revocations"
)

// SigningKeys returns every signing key, in the order they sign (activation time, then kid).
func (s *Store) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	return signingKeys(s.rdb.WithContext(ctx))
}

func signingKeys(db *gorm.DB) ([]SigningKey, error) {
	var rows []signingKeyRow
	if err := db.Order("activates_at, kid").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	out := make([]SigningKey, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.toSigningKey())
	}
	return out, nil
}

// SigningKeysVersion is a number that grows with every change of the signing keys. Replicas poll
// it and reload the keys when it moves.
func (s *Store) SigningKeysVersion(ctx context.Context) (int64, error) {
	return readCounter(s.rdb.WithContext(ctx), counterSigningKeys)
}

// UpdateSigningKeys runs plan on the stored keys inside one transaction that no other
// UpdateSigningKeys (of any process on the database) runs beside, and stores what it returns:
// keys it adds are inserted, keys whose lifecycle times, sealed key or KEK id it changed are
// updated, and its audit events are appended. Keys cannot be removed (plan must return every key
// it was given) and a key's public part never changes. When anything changed, the signing-key
// counter moves in the same transaction. It returns the keys as stored afterwards.
//
// This is how replicas racing to create the next key end up with exactly one: each plans on what
// the others committed before it. PostgreSQL serialises the callers with a transaction-level
// advisory lock; SQLite with its write lock, which an IMMEDIATE transaction takes at BEGIN.
func (s *Store) UpdateSigningKeys(ctx context.Context, plan func(current []SigningKey) ([]SigningKey, []api.AuditEvent, error)) ([]SigningKey, error) {
	var keys []SigningKey
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if s.dialect == DialectPostgres {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", signingKeyLockID).Error; err != nil {
				return fmt.Errorf("lock signing keys: %w", err)
			}
		}
		current, err := signingKeys(tx)
		if err != nil {
			return err
		}
		next, events, err := plan(cloneKeys(current))
		if err != nil {
			return err
		}
		changed, err := applySigningKeys(tx, current, next)
		if err != nil {
			return err
		}
		if changed {
			if _, err := bumpCounter(tx, counterSigningKeys); err != nil {
				return err
			}
		}
		if len(events) > 0 {
			for i := range events {
				fillAuditEvent(&events[i])
			}
			if err := s.insertAudit(tx, events); err != nil {
				return err
			}
		}
		keys, err = signingKeys(tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}

// applySigningKeys writes the difference between the stored keys and next; it reports whether
// anything was written.
func applySigningKeys(tx *gorm.DB, current, next []SigningKey) (bool, error) {
	byKID := make(map[string]SigningKey, len(current))
	for _, k := range current {
		byKID[k.KID] = k
	}
	seen := make(map[string]bool, len(next))
	changed := false
	for _, k := range next {
		if seen[k.KID] {
			return false, fmt.Errorf("update signing keys: key %s appears twice", k.KID)
		}
		seen[k.KID] = true
		old, ok := byKID[k.KID]
		row := toSigningKeyRow(k)
		if !ok {
			if err := tx.Create(&row).Error; err != nil {
				return false, fmt.Errorf("insert signing key %s: %w", k.KID, err)
			}
			changed = true
			continue
		}
		if old.Algorithm != k.Algorithm || !bytes.Equal(old.PublicJWK, k.PublicJWK) || !old.CreatedAt.Equal(row.CreatedAt.Time) {
			return false, fmt.Errorf("update signing keys: the public part of key %s cannot change", k.KID)
		}
		if !old.ActivatesAt.Equal(row.ActivatesAt.Time) || !sameTime(old.WithdrawnAt, row.WithdrawnAt.Ptr()) ||
			old.KEKID != k.KEKID || !bytes.Equal(old.SealedPrivate, row.SealedPrivate) {
			err := tx.Model(&signingKeyRow{}).Where("kid = ?", k.KID).Updates(map[string]any{
				"activates_at": row.ActivatesAt, "withdrawn_at": row.WithdrawnAt,
				"kek_id": row.KEKID, "sealed_private": row.SealedPrivate,
			}).Error
			if err != nil {
				return false, fmt.Errorf("update signing key %s: %w", k.KID, err)
			}
			changed = true
		}
	}
	for kid := range byKID {
		if !seen[kid] {
			return false, fmt.Errorf("update signing keys: key %s was dropped; keys are never deleted", kid)
		}
	}
	return changed, nil
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}

func cloneKeys(keys []SigningKey) []SigningKey {
	out := make([]SigningKey, len(keys))
	for i, k := range keys {
		k.PublicJWK = bytes.Clone(k.PublicJWK)
		k.SealedPrivate = bytes.Clone(k.SealedPrivate)
		if k.WithdrawnAt != nil {
			w := *k.WithdrawnAt
			k.WithdrawnAt = &w
		}
		out[i] = k
	}
	return out
}

// readCounter reads one row of lifecycle_counters.
func readCounter(db *gorm.DB, name string) (int64, error) {
	var v []int64
	if err := db.Raw("SELECT value FROM lifecycle_counters WHERE name = ?", name).Scan(&v).Error; err != nil {
		return 0, fmt.Errorf("read the %s counter: %w", name, err)
	}
	if len(v) != 1 {
		return 0, errors.New("read the " + name + " counter: its lifecycle_counters row is missing")
	}
	return v[0], nil
}

// bumpCounter adds one to a row of lifecycle_counters and returns the new value. The row stays
// locked until the transaction ends, so the transactions that bump one counter commit in the
// order of the values they got.
func bumpCounter(tx *gorm.DB, name string) (int64, error) {
	var v []int64
	if err := tx.Raw("UPDATE lifecycle_counters SET value = value + 1 WHERE name = ? RETURNING value", name).Scan(&v).Error; err != nil {
		return 0, fmt.Errorf("bump the %s counter: %w", name, err)
	}
	if len(v) != 1 {
		return 0, errors.New("bump the " + name + " counter: its lifecycle_counters row is missing")
	}
	return v[0], nil
}
