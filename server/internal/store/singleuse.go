package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"gorm.io/gorm"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
)

// Single-use CI tokens (CONTRACT.md §1 single_use, migration 00004). The records ride the audit
// writer's batch: AppendAuditOnce inserts the batch's records and its audit events in one
// transaction, so a record exists exactly when the granted exchange's audit event does, and
// enforcing single use costs an exchange one row in a statement its batch runs anyway rather than
// a round trip of its own. The unique key (connection_id, token_key) decides between replicas: of
// two transactions inserting the same key, the second waits for the first and then finds the
// conflict.

const (
	singleUseInsertHead = `INSERT INTO single_use_tokens (connection_id, token_key, expires_at) VALUES `
	singleUseInsertTail = ` ON CONFLICT (connection_id, token_key) DO NOTHING RETURNING connection_id, token_key`
	// singleUseBatch bounds the rows of one INSERT (3 parameters each).
	singleUseBatch = 500
	// SingleUseCleanupBatch is how many expired records one DeleteExpiredSingleUse removes at most:
	// small, so that the cleanup never holds the write lock (SQLite) or many row locks for long.
	SingleUseCleanupBatch = 500
)

// AppendAuditOnce records single-use records and audit events in one transaction (audit.OnceSink):
// it inserts recs, skipping those whose (ConnectionID, TokenKey) is stored already, calls build
// with which of them were new (fresh[i] for recs[i]) and appends the events build returns
// (filled as AppendAudit fills them). recs must not repeat a key. When it returns nil, the new
// records and the events are durable; on an error neither is.
func (s *Store) AppendAuditOnce(ctx context.Context, recs []connection.SingleUse, build func(fresh []bool) []api.AuditEvent) error {
	if s.dialect == DialectPostgres {
		return s.appendAuditOncePG(ctx, recs, build)
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		fresh, err := insertSingleUse(tx, recs)
		if err != nil {
			return err
		}
		evs := build(fresh)
		filled := make([]api.AuditEvent, len(evs))
		copy(filled, evs)
		for i := range filled {
			fillAuditEvent(&filled[i])
		}
		return s.insertAudit(tx, filled)
	})
}

// insertSingleUse inserts recs with ON CONFLICT DO NOTHING and reports which were inserted, read
// from RETURNING (both dialects: PostgreSQL, SQLite since 3.35).
func insertSingleUse(tx *gorm.DB, recs []connection.SingleUse) ([]bool, error) {
	fresh := make([]bool, len(recs))
	index := make(map[[2]string]int, len(recs))
	for i, r := range recs {
		index[[2]string{r.ConnectionID, r.TokenKey}] = i
	}
	var q strings.Builder
	args := make([]any, 0, 3*min(len(recs), singleUseBatch))
	for start := 0; start < len(recs); start += singleUseBatch {
		chunk := recs[start:min(start+singleUseBatch, len(recs))]
		q.Reset()
		q.WriteString(singleUseInsertHead)
		args = args[:0]
		for i, r := range chunk {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString("(?,?,?)")
			args = append(args, r.ConnectionID, r.TokenKey, newDBTime(r.Until))
		}
		q.WriteString(singleUseInsertTail)
		rows, err := tx.Raw(q.String(), args...).Rows()
		if err != nil {
			return nil, fmt.Errorf("record %d single-use tokens: %w", len(chunk), err)
		}
		for rows.Next() {
			var k [2]string
			if err := rows.Scan(&k[0], &k[1]); err != nil {
				rows.Close()
				return nil, fmt.Errorf("record single-use tokens: %w", err)
			}
			if i, ok := index[k]; ok {
				fresh[i] = true
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("record single-use tokens: %w", err)
		}
	}
	return fresh, nil
}

// DeleteExpiredSingleUse removes at most limit single-use records that expired before now and
// says how many it removed; the caller repeats while it removes limit (server/app's cleanup).
// A record whose token is past exp + 60 s guards nothing: the token can no longer be exchanged.
func (s *Store) DeleteExpiredSingleUse(ctx context.Context, now time.Time, limit int) (int64, error) {
	if limit <= 0 {
		limit = SingleUseCleanupBatch
	}
	cutoff := newDBTime(now)
	// The subquery picks a bounded set of expired keys by the expires_at index; repeating the
	// condition outside keeps a key of the same value in another connection that has not expired.
	res := s.db.WithContext(ctx).Exec(`DELETE FROM single_use_tokens WHERE expires_at < ? AND token_key IN (`+
		`SELECT token_key FROM single_use_tokens WHERE expires_at < ? ORDER BY expires_at LIMIT ?)`, cutoff, cutoff, limit)
	if res.Error != nil {
		return 0, fmt.Errorf("delete expired single-use tokens: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// CountSingleUse is the number of single-use records stored (tests and metrics).
func (s *Store) CountSingleUse(ctx context.Context) (int64, error) {
	var n int64
	if err := s.rdb.WithContext(ctx).Raw(`SELECT COUNT(*) FROM single_use_tokens`).Scan(&n).Error; err != nil {
		return 0, fmt.Errorf("count single-use tokens: %w", err)
	}
	return n, nil
}

// appendAuditOncePG is AppendAuditOnce on PostgreSQL in two round trips instead of four: BEGIN
// and the records' INSERT … RETURNING go in one pipeline, the events' INSERT and COMMIT in a
// second (the events can only be built once the records' answer is known). Through GORM, BEGIN,
// each statement and COMMIT would be a round trip of their own, which on a batch of a few events
// is most of what single_use costs the server.
func (s *Store) appendAuditOncePG(ctx context.Context, recs []connection.SingleUse, build func(fresh []bool) []api.AuditEvent) error {
	conn, err := s.sqlDB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("record single-use tokens: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("record single-use tokens: unexpected driver connection %T", dc)
		}
		c := sc.Conn()
		err := s.pgOnce(ctx, c, recs, build)
		if err != nil {
			// Never hand a connection with an open transaction back to the pool: roll back, or
			// have database/sql discard the connection.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if _, rerr := c.Exec(rctx, "ROLLBACK"); rerr != nil {
				return errors.Join(err, driver.ErrBadConn)
			}
		}
		return err
	})
}

func (s *Store) pgOnce(ctx context.Context, c *pgx.Conn, recs []connection.SingleUse, build func([]bool) []api.AuditEvent) error {
	fresh := make([]bool, len(recs))
	index := make(map[[2]string]int, len(recs))
	var b pgx.Batch
	b.Queue("BEGIN")
	for start := 0; start < len(recs); start += singleUseBatch {
		chunk := recs[start:min(start+singleUseBatch, len(recs))]
		var q strings.Builder
		q.WriteString(singleUseInsertHead)
		args := make([]any, 0, 3*len(chunk))
		for i, r := range chunk {
			if i > 0 {
				q.WriteByte(',')
			}
			fmt.Fprintf(&q, "($%d,$%d,$%d)", 3*i+1, 3*i+2, 3*i+3)
			args = append(args, r.ConnectionID, r.TokenKey, r.Until.UTC().Truncate(time.Microsecond))
			index[[2]string{r.ConnectionID, r.TokenKey}] = start + i
		}
		q.WriteString(singleUseInsertTail)
		b.Queue(q.String(), args...)
	}
	br := c.SendBatch(ctx, &b)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return fmt.Errorf("record single-use tokens: begin: %w", err)
	}
	for start := 0; start < len(recs); start += singleUseBatch {
		rows, err := br.Query()
		if err != nil {
			_ = br.Close()
			return fmt.Errorf("record single-use tokens: %w", err)
		}
		for rows.Next() {
			var k [2]string
			if err := rows.Scan(&k[0], &k[1]); err != nil {
				rows.Close()
				_ = br.Close()
				return fmt.Errorf("record single-use tokens: %w", err)
			}
			if i, ok := index[k]; ok {
				fresh[i] = true
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			_ = br.Close()
			return fmt.Errorf("record single-use tokens: %w", err)
		}
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("record single-use tokens: %w", err)
	}

	evs := build(fresh)
	filled := make([]api.AuditEvent, len(evs))
	copy(filled, evs)
	for i := range filled {
		fillAuditEvent(&filled[i])
	}
	// The events' weeks need their partitions (audit_retention.go); made on another connection,
	// which this transaction does not block: it has not touched audit_events yet.
	if err := s.ensureWeeks(ctx, filled); err != nil {
		return err
	}
	var b2 pgx.Batch
	for start := 0; start < len(filled); start += insertBatch {
		chunk := filled[start:min(start+insertBatch, len(filled))]
		args := make([]any, 0, len(chunk)*auditColumns)
		for i := range chunk {
			var err error
			if args, err = appendAuditArgs(args, &chunk[i]); err != nil {
				return err
			}
		}
		b2.Queue(pgNumbered(auditInsertSQL(len(chunk))), args...)
	}
	b2.Queue("COMMIT")
	br = c.SendBatch(ctx, &b2)
	for range b2.Len() {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return fmt.Errorf("append %d audit events: %w", len(filled), err)
		}
	}
	return br.Close()
}

// pgNumbered rewrites the ? placeholders of a statement built for GORM into PostgreSQL's $1, $2,
// … (the statements here hold no ? elsewhere).
func pgNumbered(q string) string {
	var b strings.Builder
	b.Grow(len(q) + strings.Count(q, "?")*3)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] != '?' {
			b.WriteByte(q[i])
			continue
		}
		n++
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}
