package store

import (
	"context"
	"fmt"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/server/internal/console/session"
)

// sessionRow is the console_sessions table (migration 00006).
type sessionRow struct {
	TokenHash string `gorm:"column:token_hash;primaryKey"`
	Principal string `gorm:"column:principal"`
	CreatedAt dbTime `gorm:"column:created_at;autoCreateTime:false"`
	ExpiresAt dbTime `gorm:"column:expires_at"`
}

func (sessionRow) TableName() string { return "console_sessions" }

// CreateSession stores a console session under the hash of its token.
func (s *Store) CreateSession(ctx context.Context, tokenHash string, sess session.Session) error {
	row := sessionRow{TokenHash: tokenHash, Principal: sess.Principal,
		CreatedAt: newDBTime(sess.CreatedAt), ExpiresAt: newDBTime(sess.ExpiresAt)}
	if err := s.db.WithContext(ctx).Create(&row).Error; err != nil {
		return fmt.Errorf("create console session for %q: %w", sess.Principal, err)
	}
	return nil
}

// SessionByTokenHash returns the console session stored under tokenHash if it has not expired at
// now and its principal's key is not revoked, with the principal's role; ErrNotFound otherwise.
func (s *Store) SessionByTokenHash(ctx context.Context, tokenHash string, now time.Time) (*session.Session, error) {
	var rows []struct {
		Principal string
		Role      string
		CreatedAt dbTime
		ExpiresAt dbTime
	}
	err := s.rdb.WithContext(ctx).Table("console_sessions AS s").
		Select("s.principal AS principal, p.role AS role, s.created_at AS created_at, s.expires_at AS expires_at").
		Joins("JOIN principals AS p ON p.name = s.principal").
		Where("s.token_hash = ? AND s.expires_at > ? AND p.revoked_at IS NULL", tokenHash, newDBTime(now)).
		Limit(1).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("look up console session: %w", err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("console session: %w", ErrNotFound)
	}
	r := rows[0]
	return &session.Session{Principal: r.Principal, Role: r.Role, CreatedAt: r.CreatedAt.Time, ExpiresAt: r.ExpiresAt.Time}, nil
}

// DeleteSession deletes the console session stored under tokenHash, if any.
func (s *Store) DeleteSession(ctx context.Context, tokenHash string) error {
	if err := s.db.WithContext(ctx).Where("token_hash = ?", tokenHash).Delete(&sessionRow{}).Error; err != nil {
		return fmt.Errorf("delete console session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions deletes every console session that expired at or before now.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) error {
	if err := s.db.WithContext(ctx).Where("expires_at <= ?", newDBTime(now)).Delete(&sessionRow{}).Error; err != nil {
		return fmt.Errorf("delete expired console sessions: %w", err)
	}
	return nil
}
