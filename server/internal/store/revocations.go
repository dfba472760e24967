package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// Revocation is a revoked access token, kept until the token expires (CONTRACT.md §3 POST
// /v1/revoke). Seq orders revocations: it is the value the revocations counter took in the
// revocation's transaction.
type Revocation struct {
	JTI          string
	ConnectionID string
	ExpiresAt    time.Time
	RevokedAt    time.Time
	Seq          int64
}

type revocationRow struct {
	JTI          string `gorm:"column:jti;primaryKey"`
	ConnectionID string `gorm:"column:connection_id"`
	ExpiresAt    dbTime `gorm:"column:expires_at"`
	RevokedAt    dbTime `gorm:"column:revoked_at"`
	Seq          int64  `gorm:"column:seq"`
}

func (revocationRow) TableName() string { return "token_revocations" }

// RevokeToken records r (its Seq is assigned here) and appends ev, in one transaction. It reports
// false, and changes nothing, when the token was already revoked. Replicas see the revocation at
// their next poll of RevocationsVersion.
func (s *Store) RevokeToken(ctx context.Context, r Revocation, ev *api.AuditEvent) (bool, error) {
	if r.JTI == "" {
		return false, fmt.Errorf("revoke token: the token has no jti")
	}
	if r.RevokedAt.IsZero() {
		r.RevokedAt = now()
	}
	inserted := false
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// The counter first: its row lock orders concurrent revocations, so a replica that has
		// seen seq n has seen every revocation numbered below n.
		seq, err := bumpCounter(tx, counterRevocations)
		if err != nil {
			return err
		}
		row := revocationRow{JTI: r.JTI, ConnectionID: r.ConnectionID, ExpiresAt: newDBTime(r.ExpiresAt),
			RevokedAt: newDBTime(r.RevokedAt), Seq: seq}
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
		if res.Error != nil {
			return fmt.Errorf("revoke token: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return errAlreadyRevoked // undoes the counter bump
		}
		inserted = true
		if ev != nil {
			fillAuditEvent(ev)
			return s.insertAudit(tx, []api.AuditEvent{*ev})
		}
		return nil
	})
	if err == errAlreadyRevoked {
		return false, nil
	}
	return inserted, err
}

var errAlreadyRevoked = fmt.Errorf("already revoked")

// RevocationsVersion is the number of the latest revocation. Replicas poll it and read the
// revocations after the last one they saw when it moves.
func (s *Store) RevocationsVersion(ctx context.Context) (int64, error) {
	return readCounter(s.rdb.WithContext(ctx), counterRevocations)
}

// RevocationsSince returns the revocations numbered above seq whose token has not expired at
// now, in order.
func (s *Store) RevocationsSince(ctx context.Context, seq int64, now time.Time) ([]Revocation, error) {
	var rows []revocationRow
	err := s.rdb.WithContext(ctx).Where("seq > ? AND expires_at > ?", seq, newDBTime(now)).Order("seq").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("read revocations: %w", err)
	}
	out := make([]Revocation, len(rows))
	for i, r := range rows {
		out[i] = Revocation{JTI: r.JTI, ConnectionID: r.ConnectionID, ExpiresAt: r.ExpiresAt.Time, RevokedAt: r.RevokedAt.Time, Seq: r.Seq}
	}
	return out, nil
}

// PurgeRevocations deletes up to limit revocations of tokens that expired before now (a revoked
// token that has expired is refused for its expiry anyway) and returns how many it deleted.
func (s *Store) PurgeRevocations(ctx context.Context, now time.Time, limit int) (int64, error) {
	res := s.db.WithContext(ctx).Exec(
		"DELETE FROM token_revocations WHERE jti IN (SELECT jti FROM token_revocations WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)",
		newDBTime(now), limit)
	if res.Error != nil {
		return 0, fmt.Errorf("purge expired revocations: %w", res.Error)
	}
	return res.RowsAffected, nil
}
