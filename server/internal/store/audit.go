package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
)

// auditRow is the audit_events table. Seq orders events (newest first = seq descending).
type auditRow struct {
	Seq            int64  `gorm:"column:seq;primaryKey;autoIncrement"`
	ID             string `gorm:"column:id"`
	Time           dbTime `gorm:"column:time"`
	Actor          string `gorm:"column:actor"`
	Action         string `gorm:"column:action"`
	ConnectionID   string `gorm:"column:connection_id"`
	ConnectionName string `gorm:"column:connection_name"`
	Outcome        string `gorm:"column:outcome"`
	Reason         string `gorm:"column:reason"`
	RequestID      string `gorm:"column:request_id"`
	RemoteAddr     string `gorm:"column:remote_addr"`
	Detail         string `gorm:"column:detail"`
	// The hash chain (CONTRACT.md §3, migration 00008): ChainSeq is the event's `seq` in its chain.
	Chain    string `gorm:"column:chain"`
	ChainSeq int64  `gorm:"column:chain_seq"`
	PrevHash string `gorm:"column:prev_hash"`
	Hash     string `gorm:"column:hash"`
}

func (auditRow) TableName() string { return "audit_events" }

// fillAuditEvent gives an event its id and time when the caller left them empty, and normalises the
// time to UTC microseconds (what the database keeps). Ids are UUIDv7: they start with the time, so
// the unique index on id grows at its right edge instead of taking inserts at random pages.
func fillAuditEvent(ev *api.AuditEvent) {
	if ev.ID == "" {
		ev.ID = uuid.Must(uuid.NewV7()).String()
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	ev.Time = ev.Time.UTC().Truncate(time.Microsecond)
}

func (r auditRow) toEvent() (api.AuditEvent, error) {
	ev := api.AuditEvent{
		ID:             r.ID,
		Time:           r.Time.Time,
		Actor:          r.Actor,
		Action:         r.Action,
		ConnectionID:   r.ConnectionID,
		ConnectionName: r.ConnectionName,
		Outcome:        r.Outcome,
		Reason:         r.Reason,
		RequestID:      r.RequestID,
		RemoteAddr:     r.RemoteAddr,
		Chain:          r.Chain,
		Seq:            r.ChainSeq,
		PrevHash:       r.PrevHash,
		Hash:           r.Hash,
	}
	if err := json.Unmarshal([]byte(r.Detail), &ev.Detail); err != nil {
		return ev, fmt.Errorf("decode detail of audit event %s: %w", r.ID, err)
	}
	return ev, nil
}

// auditInsert is the multi-row INSERT of audit events with insertBatch rows of placeholders;
// a statement for n rows is its prefix (see auditInsertSQL). seq is left to the database, which
// numbers the rows of one statement in VALUES order; nothing is read back (no RETURNING).
var auditInsert = func() string {
	var b strings.Builder
	b.WriteString(auditInsertHead)
	for i := range insertBatch {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(auditRowPlaceholders)
	}
	return b.String()
}()

const (
	auditInsertHead = `INSERT INTO audit_events (id, "time", actor, action, connection_id, connection_name, outcome, reason, request_id, remote_addr, detail, chain, chain_seq, prev_hash, hash) VALUES `
	// auditRowPlaceholders has one placeholder per column of auditInsertHead.
	auditRowPlaceholders = "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
	auditColumns         = 15
	// insertBatch bounds the rows of one INSERT: 500 × 15 = 7,500 bound parameters, under both
	// SQLite's limit (32,766 since 3.32) and PostgreSQL's (65,535).
	insertBatch = 500
)

// auditInsertSQL is the INSERT statement for n rows (1 ≤ n ≤ insertBatch).
func auditInsertSQL(n int) string {
	return auditInsert[:len(auditInsertHead)+n*len(auditRowPlaceholders)+n-1]
}

// auditSealKey is the context key of WithAuditSeal.
type auditSealKey struct{}

// WithAuditSeal returns a context under which every audit event the store inserts is first passed
// to seal, once its id, time and connection are final: the audit writer links it into its hash
// chain (audit.Writer.Exclusive). A connection change's audit event is inserted in the change's
// own transaction, not by the writer, so this is how it joins the chain.
func WithAuditSeal(ctx context.Context, seal func(*api.AuditEvent) error) context.Context {
	return context.WithValue(ctx, auditSealKey{}, seal)
}

// insertAudit inserts filled events (see fillAuditEvent), in slice order, with one INSERT per
// insertBatch events. Callers that pass more than insertBatch events must run it in a transaction.
// On PostgreSQL it first makes sure the events' weeks have their partitions (audit_retention.go).
func (s *Store) insertAudit(tx *gorm.DB, evs []api.AuditEvent) error {
	if err := s.ensureWeeks(tx.Statement.Context, evs); err != nil {
		return err
	}
	if tx.Statement.Context != nil {
		if seal, ok := tx.Statement.Context.Value(auditSealKey{}).(func(*api.AuditEvent) error); ok {
			for i := range evs {
				if err := seal(&evs[i]); err != nil {
					return err
				}
			}
		}
	}
	args := make([]any, 0, min(len(evs), insertBatch)*auditColumns)
	for start := 0; start < len(evs); start += insertBatch {
		chunk := evs[start:min(start+insertBatch, len(evs))]
		args = args[:0]
		for i := range chunk {
			var err error
			if args, err = appendAuditArgs(args, &chunk[i]); err != nil {
				return err
			}
		}
		if err := tx.Exec(auditInsertSQL(len(chunk)), args...).Error; err != nil {
			return fmt.Errorf("append %d audit events: %w", len(evs), err)
		}
	}
	return nil
}

// appendAuditArgs appends the values of one row of auditInsertHead's columns.
func appendAuditArgs(args []any, ev *api.AuditEvent) ([]any, error) {
	detail, err := json.Marshal(ev.Detail)
	if err != nil {
		return nil, fmt.Errorf("encode detail of audit event %s: %w", ev.ID, err)
	}
	return append(args, ev.ID, ev.Time.UTC().Format(timeLayout), ev.Actor, ev.Action, ev.ConnectionID,
		ev.ConnectionName, ev.Outcome, ev.Reason, ev.RequestID, ev.RemoteAddr, string(detail),
		ev.Chain, ev.Seq, ev.PrevHash, ev.Hash), nil
}

// AppendAudit stores events atomically, in slice order, with one multi-row INSERT per 500
// events (a batch that fits one INSERT needs no explicit transaction: a statement is atomic on
// its own). Empty IDs and times are filled in. When it returns nil the events are durable.
func (s *Store) AppendAudit(ctx context.Context, evs []api.AuditEvent) error {
	if len(evs) == 0 {
		return nil
	}
	filled := make([]api.AuditEvent, len(evs))
	copy(filled, evs)
	for i := range filled {
		fillAuditEvent(&filled[i])
	}
	err := s.appendAudit(ctx, filled)
	if err != nil && s.dialect == DialectPostgres && isMissingPartition(err) {
		for i := range filled { // another replica's retention dropped a week this one had seen
			s.weeks.Delete(weekStart(filled[i].Time))
		}
		// An event outside every partition (the server creates the coming weeks' ahead of time, so
		// this takes a clock far off or partition upkeep failing for weeks): create the weeks the
		// batch needs and insert again rather than fail the exchanges batched with it.
		if perr := s.ensurePartitionsFor(ctx, filled); perr != nil {
			return errors.Join(err, perr)
		}
		err = s.appendAudit(ctx, filled)
	}
	return err
}

func (s *Store) appendAudit(ctx context.Context, evs []api.AuditEvent) error {
	db := s.db.WithContext(ctx)
	if len(evs) <= insertBatch {
		return s.insertAudit(db, evs)
	}
	return db.Transaction(func(tx *gorm.DB) error {
		return s.insertAudit(tx, evs)
	})
}

// ListAudit returns one page of audit events, newest first (by insertion order), and the cursor of
// the next page ("" when this is the last). A cursor this store did not produce gives ErrBadCursor.
func (s *Store) ListAudit(ctx context.Context, f connection.AuditFilter) ([]api.AuditEvent, string, error) {
	limit := clampLimit(f.Limit)
	q, err := auditQuery(s.rdb.WithContext(ctx), f)
	if err != nil {
		return nil, "", err
	}
	var rows []auditRow
	if err := q.Order("seq DESC").Limit(limit + 1).Find(&rows).Error; err != nil {
		return nil, "", fmt.Errorf("list audit events: %w", err)
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		next = encodeCursor(cursor{Kind: cursorAudit, Seq: rows[len(rows)-1].Seq})
	}
	out := make([]api.AuditEvent, 0, len(rows))
	for _, r := range rows {
		ev, err := r.toEvent()
		if err != nil {
			return nil, "", err
		}
		out = append(out, ev)
	}
	return out, next, nil
}

// notExchange is the predicate of the partial index audit_events_admin_actor_idx (migration
// 00002), spelled as a literal: a planner uses a partial index only when the query's WHERE clause
// implies the index's, and PostgreSQL's generic plan of a prepared statement (pgx caches them)
// cannot see that through a bound parameter.
const notExchange = "action <> '" + api.ActionTokenExchange + "'"

// auditQuery applies f's filters (not the order or the limit) to db.
func auditQuery(db *gorm.DB, f connection.AuditFilter) (*gorm.DB, error) {
	q := db.Model(&auditRow{})
	if f.Connection != "" {
		// Names never have the shape of an id (connection.Normalize refuses it), so the two
		// cannot be confused and one connection's events never show under another's ref.
		if connection.LooksLikeID(f.Connection) {
			q = q.Where("connection_id = ?", f.Connection)
		} else {
			q = q.Where("connection_name = ?", f.Connection)
		}
	}
	if f.Action != "" {
		q = q.Where("action = ?", f.Action)
	}
	if f.Actor != "" {
		// A principal's own actions. Token exchanges are never a principal's action: their actor is
		// the workload's subject, which could happen to equal a principal's name.
		q = q.Where("actor = ? AND "+notExchange, f.Actor)
	}
	if !f.Since.IsZero() {
		q = q.Where(`"time" >= ?`, newDBTime(f.Since))
	}
	if !f.Before.IsZero() {
		q = q.Where(`"time" < ?`, newDBTime(f.Before))
	}
	if f.Outcome != "" {
		q = q.Where("outcome = ?", f.Outcome)
	}
	if f.Cursor != "" {
		cur, err := decodeCursor(f.Cursor, cursorAudit)
		if err != nil {
			return nil, err
		}
		q = q.Where("seq < ?", cur.Seq)
	}
	return q, nil
}
