package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/trustgate/terraform-provider-trustgate/server/api"
	"github.com/trustgate/terraform-provider-trustgate/server/connection"
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
}

func (auditRow) TableName() string { return "audit_events" }

// fillAuditEvent gives an event its id and time when the caller left them empty, and normalises the
// time to UTC microseconds (what the database keeps).
func fillAuditEvent(ev *api.AuditEvent) {
	if ev.ID == "" {
		ev.ID = uuid.NewString()
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	ev.Time = ev.Time.UTC().Truncate(time.Microsecond)
}

func toAuditRow(ev api.AuditEvent) (auditRow, error) {
	detail, err := json.Marshal(ev.Detail)
	if err != nil {
		return auditRow{}, fmt.Errorf("encode detail of audit event %s: %w", ev.ID, err)
	}
	return auditRow{
		ID:             ev.ID,
		Time:           newDBTime(ev.Time),
		Actor:          ev.Actor,
		Action:         ev.Action,
		ConnectionID:   ev.ConnectionID,
		ConnectionName: ev.ConnectionName,
		Outcome:        ev.Outcome,
		Reason:         ev.Reason,
		RequestID:      ev.RequestID,
		RemoteAddr:     ev.RemoteAddr,
		Detail:         string(detail),
	}, nil
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
	}
	if err := json.Unmarshal([]byte(r.Detail), &ev.Detail); err != nil {
		return ev, fmt.Errorf("decode detail of audit event %s: %w", r.ID, err)
	}
	return ev, nil
}

// insertBatch bounds the rows of one INSERT (12 columns each: well under both databases' limits
// on bound parameters).
const insertBatch = 500

func insertAudit(tx *gorm.DB, evs []api.AuditEvent) error {
	rows := make([]auditRow, 0, len(evs))
	for _, ev := range evs {
		r, err := toAuditRow(ev)
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	if err := tx.CreateInBatches(&rows, insertBatch).Error; err != nil {
		return fmt.Errorf("append %d audit events: %w", len(rows), err)
	}
	return nil
}

// AppendAudit stores events in one transaction with one multi-row insert (per 500 events), in
// slice order. Empty IDs and times are filled in. When it returns nil the events are durable.
func (s *Store) AppendAudit(ctx context.Context, evs []api.AuditEvent) error {
	if len(evs) == 0 {
		return nil
	}
	filled := make([]api.AuditEvent, len(evs))
	copy(filled, evs)
	for i := range filled {
		fillAuditEvent(&filled[i])
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return insertAudit(tx, filled)
	})
}

// AuditFilter selects a page of audit events, newest first. Empty fields do not filter.
type AuditFilter struct {
	// Connection is a connection id or name; events match on either.
	Connection string
	Action     string
	Actor      string
	// Since keeps events at or after this time.
	Since time.Time
	// Limit is the page size: DefaultLimit when ≤ 0, at most MaxLimit.
	Limit int
	// Cursor is the next cursor of the previous page ("" for the first page).
	Cursor string
}

// ListAudit returns one page of audit events, newest first (by insertion order), and the cursor of
// the next page ("" when this is the last). A cursor this store did not produce gives ErrBadCursor.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]api.AuditEvent, string, error) {
	limit := clampLimit(f.Limit)
	q := s.rdb.WithContext(ctx).Model(&auditRow{})
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
		q = q.Where("actor = ?", f.Actor)
	}
	if !f.Since.IsZero() {
		q = q.Where(`"time" >= ?`, newDBTime(f.Since))
	}
	if f.Cursor != "" {
		cur, err := decodeCursor(f.Cursor, cursorAudit)
		if err != nil {
			return nil, "", err
		}
		q = q.Where("seq < ?", cur.Seq)
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
