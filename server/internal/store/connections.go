package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
)

// connectionRow is the connections table. Spec holds the JSON of api.ConnectionInput; name and
// provider_type are copies of Spec's fields, kept as columns for the unique index and the filters.
type connectionRow struct {
	ID              string `gorm:"column:id;primaryKey"`
	Name            string `gorm:"column:name"`
	ProviderType    string `gorm:"column:provider_type"`
	Status          string `gorm:"column:status"`
	Revision        int64  `gorm:"column:revision"`
	EverActivated   bool   `gorm:"column:ever_activated"`
	Spec            string `gorm:"column:spec"`
	CreatedBy       string `gorm:"column:created_by"`
	UpdatedBy       string `gorm:"column:updated_by"`
	ConfigChangedBy string `gorm:"column:config_changed_by"`
	ActivatedBy     string `gorm:"column:activated_by"`
	CreatedAt       dbTime `gorm:"column:created_at;autoCreateTime:false"`
	UpdatedAt       dbTime `gorm:"column:updated_at;autoUpdateTime:false"`
	ActivatedAt     nullTime
	DeactivatedAt   nullTime
	// Proposal is the JSON of proposalDoc, or NULL when there is none.
	Proposal *string `gorm:"column:proposal"`
}

func (connectionRow) TableName() string { return "connections" }

// proposalDoc is how a pending proposal is stored in the proposal column.
type proposalDoc struct {
	Spec       api.ConnectionInput `json:"spec"`
	ProposedBy string              `json:"proposed_by"`
	ProposedAt time.Time           `json:"proposed_at"`
}

func toConnectionRow(c *connection.Connection) (connectionRow, error) {
	spec, err := json.Marshal(c.Spec)
	if err != nil {
		return connectionRow{}, fmt.Errorf("encode connection spec: %w", err)
	}
	var proposal *string
	if p := c.Proposal; p != nil {
		b, err := json.Marshal(proposalDoc{Spec: p.Spec, ProposedBy: p.ProposedBy, ProposedAt: p.ProposedAt})
		if err != nil {
			return connectionRow{}, fmt.Errorf("encode connection proposal: %w", err)
		}
		proposal = ptr(string(b))
	}
	return connectionRow{
		ID:              c.ID,
		Name:            c.Spec.Name,
		ProviderType:    c.Spec.ProviderType,
		Status:          c.Status,
		Revision:        c.Revision,
		EverActivated:   c.EverActivated,
		Spec:            string(spec),
		CreatedBy:       c.CreatedBy,
		UpdatedBy:       c.UpdatedBy,
		ConfigChangedBy: c.ConfigChangedBy,
		ActivatedBy:     c.ActivatedBy,
		CreatedAt:       newDBTime(c.CreatedAt),
		UpdatedAt:       newDBTime(c.UpdatedAt),
		ActivatedAt:     newNullTime(c.ActivatedAt),
		DeactivatedAt:   newNullTime(c.DeactivatedAt),
		Proposal:        proposal,
	}, nil
}

func (r connectionRow) toConnection() (connection.Connection, error) {
	c := connection.Connection{
		ID:              r.ID,
		Status:          r.Status,
		Revision:        r.Revision,
		EverActivated:   r.EverActivated,
		CreatedBy:       r.CreatedBy,
		UpdatedBy:       r.UpdatedBy,
		ConfigChangedBy: r.ConfigChangedBy,
		ActivatedBy:     r.ActivatedBy,
		CreatedAt:       r.CreatedAt.Time,
		UpdatedAt:       r.UpdatedAt.Time,
		ActivatedAt:     r.ActivatedAt.Ptr(),
		DeactivatedAt:   r.DeactivatedAt.Ptr(),
	}
	if err := json.Unmarshal([]byte(r.Spec), &c.Spec); err != nil {
		return c, fmt.Errorf("decode spec of connection %s: %w", r.ID, err)
	}
	if r.Proposal != nil {
		var p proposalDoc
		if err := json.Unmarshal([]byte(*r.Proposal), &p); err != nil {
			return c, fmt.Errorf("decode proposal of connection %s: %w", r.ID, err)
		}
		c.Proposal = &connection.Proposal{Spec: p.Spec, ProposedBy: p.ProposedBy, ProposedAt: p.ProposedAt.UTC()}
	}
	return c, nil
}

// columns returns the mutable columns of an update (everything but id and created_*).
func (r connectionRow) updateColumns() map[string]any {
	return map[string]any{
		"name":              r.Name,
		"provider_type":     r.ProviderType,
		"status":            r.Status,
		"revision":          r.Revision,
		"ever_activated":    r.EverActivated,
		"spec":              r.Spec,
		"updated_by":        r.UpdatedBy,
		"config_changed_by": r.ConfigChangedBy,
		"activated_by":      r.ActivatedBy,
		"updated_at":        r.UpdatedAt,
		"activated_at":      r.ActivatedAt,
		"deactivated_at":    r.DeactivatedAt,
		"proposal":          r.Proposal,
	}
}

func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// CreateConnection inserts c and, in the same transaction, bumps the change counter and appends ev
// (if non-nil). Empty c.ID gets a new UUID, zero c.Revision becomes 1, zero CreatedAt/UpdatedAt
// become now; times are normalised to UTC microseconds in c, so c equals what a Get returns.
// A name that is taken gives ErrDuplicateName.
func (s *Store) CreateConnection(ctx context.Context, c *connection.Connection, ev *api.AuditEvent) error {
	if c.ID == "" {
		c.ID = uuid.NewString()
	}
	if c.Revision == 0 {
		c.Revision = 1
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now()
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = c.CreatedAt
	}
	normaliseTimes(c)
	row, err := toConnectionRow(c)
	if err != nil {
		return err
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&row).Error; err != nil {
			if uniqueViolation(err, "connections_name_key", "connections.name") {
				return fmt.Errorf("create connection %q: %w", row.Name, ErrDuplicateName)
			}
			return fmt.Errorf("create connection %q: %w", row.Name, err)
		}
		return s.afterConnectionChange(tx, ev, c.ID, row.Name)
	})
	return err
}

// GetConnection returns the connection whose id or name is ref (an id wins over a name, for the
// unlikely name that looks like another connection's UUID), or ErrNotFound.
func (s *Store) GetConnection(ctx context.Context, ref string) (*connection.Connection, error) {
	// Ids are UUIDs and names never look like one (connection.Normalize), so the shape of ref
	// says which column to match: one rule for every "id or name" lookup (see ListAudit too).
	column := "name = ?"
	if connection.LooksLikeID(ref) {
		column = "id = ?"
	}
	var row connectionRow
	res := s.rdb.WithContext(ctx).Where(column, ref).Limit(1).Find(&row)
	if res.Error != nil {
		return nil, fmt.Errorf("get connection %q: %w", ref, res.Error)
	}
	if res.RowsAffected == 0 {
		return nil, fmt.Errorf("connection %q: %w", ref, ErrNotFound)
	}
	c, err := row.toConnection()
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// ListConnections returns one page of connections ordered by name and the cursor of the next page
// ("" when this is the last). A cursor this store did not produce gives ErrBadCursor.
func (s *Store) ListConnections(ctx context.Context, f connection.Filter) ([]connection.Connection, string, error) {
	limit := clampLimit(f.Limit)
	q := s.rdb.WithContext(ctx).Model(&connectionRow{})
	if f.Status != "" {
		q = q.Where("status = ?", f.Status)
	}
	if f.ProviderType != "" {
		q = q.Where("provider_type = ?", f.ProviderType)
	}
	if f.NamePrefix != "" {
		// LIKE with escaped wildcards narrows the scan; SQLite's LIKE ignores ASCII case, so the exact
		// comparison of the leading characters makes the match case-sensitive on both databases.
		q = q.Where(`name LIKE ? ESCAPE '\' AND substr(name, 1, ?) = ?`,
			escapeLike(f.NamePrefix)+"%", utf8.RuneCountInString(f.NamePrefix), f.NamePrefix)
	}
	if f.Cursor != "" {
		cur, err := decodeCursor(f.Cursor, cursorConnections)
		if err != nil {
			return nil, "", err
		}
		q = q.Where("name > ?", cur.Name)
	}
	var rows []connectionRow
	if err := q.Order("name").Limit(limit + 1).Find(&rows).Error; err != nil {
		return nil, "", fmt.Errorf("list connections: %w", err)
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		next = encodeCursor(cursor{Kind: cursorConnections, Name: rows[len(rows)-1].Name})
	}
	out, err := toConnections(rows)
	return out, next, err
}

// ConnectionRevisions returns the revision of every connection by id: what a replica's connection
// cache compares with its own after each change, so that it reads (and decodes) only the rows
// that moved instead of every row.
func (s *Store) ConnectionRevisions(ctx context.Context) (map[string]int64, error) {
	var rows []struct {
		ID       string
		Revision int64
	}
	if err := s.rdb.WithContext(ctx).Model(&connectionRow{}).Select("id", "revision").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list connection revisions: %w", err)
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.ID] = r.Revision
	}
	return out, nil
}

// idsPerQuery bounds the ids bound in one IN (…) list (SQLite allows 32766 variables).
const idsPerQuery = 500

// ConnectionsByID returns the connections with these ids, in no particular order; ids that do not
// exist (any more) are left out.
func (s *Store) ConnectionsByID(ctx context.Context, ids []string) ([]connection.Connection, error) {
	var rows []connectionRow
	for start := 0; start < len(ids); start += idsPerQuery {
		var chunk []connectionRow
		if err := s.rdb.WithContext(ctx).Where("id IN ?", ids[start:min(start+idsPerQuery, len(ids))]).Find(&chunk).Error; err != nil {
			return nil, fmt.Errorf("read %d connections by id: %w", len(ids), err)
		}
		rows = append(rows, chunk...)
	}
	return toConnections(rows)
}

func toConnections(rows []connectionRow) ([]connection.Connection, error) {
	out := make([]connection.Connection, 0, len(rows))
	for _, r := range rows {
		c, err := r.toConnection()
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// UpdateConnection writes c over the stored row only if the row's revision is still
// expectedRevision; c.Revision is set to expectedRevision+1 (callers set it so already). In the
// same transaction it bumps the change counter and appends ev (if non-nil). It returns
// ErrRevisionMismatch when the row has moved on (and changes nothing), ErrNotFound when it is gone,
// ErrDuplicateName when a rename clashes. CreatedAt/CreatedBy are never changed; zero UpdatedAt
// becomes now.
func (s *Store) UpdateConnection(ctx context.Context, c *connection.Connection, expectedRevision int64, ev *api.AuditEvent) error {
	c.Revision = expectedRevision + 1
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = now()
	}
	normaliseTimes(c)
	row, err := toConnectionRow(c)
	if err != nil {
		return err
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&connectionRow{}).
			Where("id = ? AND revision = ?", c.ID, expectedRevision).
			Updates(row.updateColumns())
		if res.Error != nil {
			if uniqueViolation(res.Error, "connections_name_key", "connections.name") {
				return fmt.Errorf("rename connection %s to %q: %w", c.ID, row.Name, ErrDuplicateName)
			}
			return fmt.Errorf("update connection %s: %w", c.ID, res.Error)
		}
		if res.RowsAffected == 0 {
			return s.missOrMismatch(tx, c.ID, expectedRevision)
		}
		return s.afterConnectionChange(tx, ev, c.ID, row.Name)
	})
}

// DeleteConnection deletes the connection if its revision is still expectedRevision, bumping the
// change counter and appending ev (if non-nil) in the same transaction. ErrRevisionMismatch when
// the row has moved on, ErrNotFound when it is gone.
func (s *Store) DeleteConnection(ctx context.Context, id string, expectedRevision int64, ev *api.AuditEvent) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Where("id = ? AND revision = ?", id, expectedRevision).Delete(&connectionRow{})
		if res.Error != nil {
			return fmt.Errorf("delete connection %s: %w", id, res.Error)
		}
		if res.RowsAffected == 0 {
			return s.missOrMismatch(tx, id, expectedRevision)
		}
		return s.afterConnectionChange(tx, ev, id, "")
	})
}

// missOrMismatch explains why a conditional write touched no row.
func (s *Store) missOrMismatch(tx *gorm.DB, id string, expected int64) error {
	var rows []connectionRow
	if err := tx.Select("id", "revision").Where("id = ?", id).Limit(1).Find(&rows).Error; err != nil {
		return fmt.Errorf("connection %s: %w", id, err)
	}
	if len(rows) == 0 {
		return fmt.Errorf("connection %s: %w", id, ErrNotFound)
	}
	return fmt.Errorf("connection %s is at revision %d, not %d: %w", id, rows[0].Revision, expected, ErrRevisionMismatch)
}

// afterConnectionChange runs in the transaction of every connection mutation. An event without a
// connection id or name gets those of the changed connection (on create, the id is only known here).
func (s *Store) afterConnectionChange(tx *gorm.DB, ev *api.AuditEvent, id, name string) error {
	if err := tx.Exec("UPDATE change_counter SET value = value + 1 WHERE id = 1").Error; err != nil {
		return fmt.Errorf("bump change counter: %w", err)
	}
	if ev == nil {
		return nil
	}
	if ev.ConnectionID == "" {
		ev.ConnectionID = id
	}
	if ev.ConnectionName == "" {
		ev.ConnectionName = name
	}
	fillAuditEvent(ev)
	if err := s.insertAudit(tx, []api.AuditEvent{*ev}); err != nil {
		return err
	}
	return nil
}

// ChangeCounter returns a number that grows with every connection change. Replicas poll it and
// reload their connection cache when it moves.
func (s *Store) ChangeCounter(ctx context.Context) (int64, error) {
	var v []int64
	if err := s.rdb.WithContext(ctx).Raw("SELECT value FROM change_counter WHERE id = 1").Scan(&v).Error; err != nil {
		return 0, fmt.Errorf("read change counter: %w", err)
	}
	if len(v) != 1 {
		return 0, errors.New("read change counter: the change_counter row is missing")
	}
	return v[0], nil
}

func normaliseTimes(c *connection.Connection) {
	c.CreatedAt = c.CreatedAt.UTC().Truncate(time.Microsecond)
	c.UpdatedAt = c.UpdatedAt.UTC().Truncate(time.Microsecond)
	for _, p := range []**time.Time{&c.ActivatedAt, &c.DeactivatedAt} {
		if *p != nil {
			t := (*p).UTC().Truncate(time.Microsecond)
			*p = &t
		}
	}
	if c.Proposal != nil {
		p := *c.Proposal
		p.ProposedAt = p.ProposedAt.UTC().Truncate(time.Microsecond)
		c.Proposal = &p
	}
}
