package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"

	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"gorm.io/gorm"
)

// WithSchemaVersion stops Open's migrations at version, to build a database as an older release
// left it and then test the upgrade.
func WithSchemaVersion(version int64) Option {
	return func(o *options) { o.schemaVersion = version }
}

// AuditIndexes lists the indexes of the audit_events table.
func (s *Store) AuditIndexes(ctx context.Context) ([]string, error) {
	q := "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_events' AND sql IS NOT NULL ORDER BY name"
	if s.dialect == DialectPostgres {
		q = "SELECT indexname FROM pg_indexes WHERE tablename = 'audit_events' ORDER BY indexname"
	}
	var names []string
	err := s.db.WithContext(ctx).Raw(q).Scan(&names).Error
	return names, err
}

// AuditPlan is the database's query plan for ListAudit(f), as text. On PostgreSQL sequential scans
// are disabled for the EXPLAIN, so that the plan on a test-sized table shows which index the query
// can use rather than the table scan the planner rightly prefers for a handful of rows.
func (s *Store) AuditPlan(ctx context.Context, f connection.AuditFilter) (string, error) {
	var rows []auditRow
	q, err := auditQuery(s.rdb.WithContext(ctx).Session(&gorm.Session{DryRun: true}), f)
	if err != nil {
		return "", err
	}
	stmt := q.Order("seq DESC").Limit(clampLimit(f.Limit) + 1).Find(&rows).Statement
	var lines []string
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		explain := "EXPLAIN QUERY PLAN "
		if s.dialect == DialectPostgres {
			explain = "EXPLAIN "
			if err := tx.Exec("SET LOCAL enable_seqscan = off").Error; err != nil {
				return err
			}
		}
		r, err := tx.Raw(explain+stmt.SQL.String(), stmt.Vars...).Rows()
		if err != nil {
			return err
		}
		defer r.Close()
		cols, err := r.Columns()
		if err != nil {
			return err
		}
		for r.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := r.Scan(ptrs...); err != nil {
				return err
			}
			lines = append(lines, fmt.Sprint(vals...))
		}
		return r.Err()
	})
	return strings.Join(lines, "\n"), err
}

// InsertLegacySigningKey inserts a signing key as schema versions before 7 stored them (no
// lifecycle columns), to test the upgrade.
func (s *Store) InsertLegacySigningKey(ctx context.Context, kid string, created time.Time) error {
	return s.db.WithContext(ctx).Exec("INSERT INTO signing_keys (kid, algorithm, public_jwk, sealed_private, created_at) VALUES (?, 'ES256', '{}', ?, ?)",
		kid, []byte{1, 2, 3}, newDBTime(created)).Error
}

// AppendLegacyAudit inserts events the way a release before migration 00008 did (no chain
// columns), into a database stopped at an older schema version.
func (s *Store) AppendLegacyAudit(ctx context.Context, evs []api.AuditEvent) error {
	for i := range evs {
		ev := &evs[i]
		fillAuditEvent(ev)
		detail, err := json.Marshal(ev.Detail)
		if err != nil {
			return err
		}
		err = s.db.WithContext(ctx).Exec(`INSERT INTO audit_events (id, "time", actor, action, connection_id, connection_name, outcome, reason, request_id, remote_addr, detail) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
			ev.ID, ev.Time.Format(timeLayout), ev.Actor, ev.Action, ev.ConnectionID, ev.ConnectionName, ev.Outcome, ev.Reason, ev.RequestID, ev.RemoteAddr, string(detail)).Error
		if err != nil {
			return err
		}
	}
	return nil
}

// ExecSQL runs a statement on the write pool (tests that tamper with the audit log).
func (s *Store) ExecSQL(ctx context.Context, q string, args ...any) error {
	return s.db.WithContext(ctx).Exec(q, args...).Error
}

// ExecForTest runs a statement on the store's database, for tests that must leave it in a state
// only a crash or an operator can (a partition detached and not dropped).
func (s *Store) ExecForTest(ctx context.Context, stmt string) error {
	_, err := s.sqlDB.ExecContext(ctx, stmt)
	return err
}

// RelationCount counts the tables and indexes whose name starts with prefix.
func (s *Store) RelationCount(ctx context.Context, prefix string) (int, error) {
	var n int
	err := s.sqlDB.QueryRowContext(ctx, `SELECT count(*) FROM pg_class WHERE relkind IN ('r', 'i') AND relname LIKE $1 || '%'`, prefix).Scan(&n)
	return n, err
}
