package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/sightings"
)

// Workload sightings (migration 00005): sightings.Sink for the recorder's flushes and retention,
// and the reads of the sightings list and the impact report.

// The upsert takes its rows as one JSON array parameter, each row an array [connection_id,
// identity, outcome, first_seen, last_seen, exchanges, {claims}], which the database unpacks: one
// statement and one bound parameter per flush, whatever its size. (A VALUES list would need seven
// parameters per row, and the SQLite driver binds parameters in time quadratic in their number:
// 4,096 rows took ~75 ms of CPU to bind alone.) The claims are embedded as a JSON string holding
// their JSON, not as an object: PostgreSQL's JSON functions refuse to extract an object holding
// \u0000 (a claim may), but extracting a string unescapes it to text that still spells \u0000.
const (
	sightingsInsertHead = `INSERT INTO workload_sightings (connection_id, identity, outcome, first_seen, last_seen, exchanges, claims) `
	sightingsFromSQLite = `SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
 json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]'), json_extract(value, '$[6]')
 FROM json_each(?) WHERE true`
	sightingsFromPostgres = `SELECT r->>0, r->>1, r->>2, (r->>3)::timestamptz, (r->>4)::timestamptz, (r->>5)::bigint, r->>6
 FROM json_array_elements(?::json) AS r`
	// A row that exists takes the earlier first_seen, the later last_seen and that time's claims,
	// and adds the exchanges. Every expression reads the row as it was before this statement.
	sightingsUpsertTail = ` ON CONFLICT (connection_id, identity, outcome) DO UPDATE SET
 first_seen = CASE WHEN excluded.first_seen < workload_sightings.first_seen THEN excluded.first_seen ELSE workload_sightings.first_seen END,
 last_seen = CASE WHEN excluded.last_seen > workload_sightings.last_seen THEN excluded.last_seen ELSE workload_sightings.last_seen END,
 claims = CASE WHEN excluded.last_seen >= workload_sightings.last_seen THEN excluded.claims ELSE workload_sightings.claims END,
 exchanges = workload_sightings.exchanges + excluded.exchanges`
	// pruneBatch bounds the rows one DELETE removes, so that retention never holds the database's
	// write lock (SQLite) for long.
	pruneBatch = 1000
)

// UpsertSightings adds a batch of aggregates to the stored sightings in one statement
// (sightings.Sink). Rows must be unique by (connection, identity, outcome) within the batch, as
// the recorder's aggregate makes them (PostgreSQL refuses to update one row twice in a statement).
func (s *Store) UpsertSightings(ctx context.Context, batch []sightings.Seen) error {
	if len(batch) == 0 {
		return nil
	}
	param := make([]byte, 0, len(batch)*1024)
	param = append(param, '[')
	for i := range batch {
		r := &batch[i]
		if i > 0 {
			param = append(param, ',')
		}
		param = append(param, '[')
		param = sightings.AppendJSONString(param, r.ConnectionID)
		param = append(param, ',')
		param = sightings.AppendJSONString(param, r.Identity)
		param = append(param, ',')
		param = sightings.AppendJSONString(param, r.Outcome)
		param = append(param, ',', '"')
		param = r.FirstSeen.UTC().AppendFormat(param, timeLayout)
		param = append(param, '"', ',', '"')
		param = r.LastSeen.UTC().AppendFormat(param, timeLayout)
		param = append(param, '"', ',')
		param = strconv.AppendInt(param, r.Exchanges, 10)
		param = append(param, ',')
		claims := string(r.Claims)
		if claims == "" {
			claims = "{}"
		}
		param = sightings.AppendJSONString(param, claims)
		param = append(param, ']')
	}
	param = append(param, ']')
	from := sightingsFromSQLite
	if s.dialect == DialectPostgres {
		from = sightingsFromPostgres
	}
	if err := s.db.WithContext(ctx).Exec(sightingsInsertHead+from+sightingsUpsertTail, string(param)).Error; err != nil {
		return fmt.Errorf("record %d workload sightings: %w", len(batch), err)
	}
	return nil
}

// PruneSightings removes sightings last seen before `before`, those of connections that no longer
// exist, and beyond perConnection per connection the least recently seen (sightings.Sink). Each
// DELETE removes at most 1,000 rows.
func (s *Store) PruneSightings(ctx context.Context, before time.Time, perConnection int) (int64, error) {
	db := s.db.WithContext(ctx)
	var total int64
	deleteAll := func(what, query string, args ...any) error {
		for {
			res := db.Exec(query, args...)
			if res.Error != nil {
				return fmt.Errorf("prune workload sightings (%s): %w", what, res.Error)
			}
			total += res.RowsAffected
			if res.RowsAffected < pruneBatch {
				return nil
			}
		}
	}
	if err := deleteAll("retention", `DELETE FROM workload_sightings WHERE id IN (SELECT id FROM workload_sightings WHERE last_seen < ? LIMIT ?)`,
		newDBTime(before), pruneBatch); err != nil {
		return total, err
	}
	if err := deleteAll("deleted connections", `DELETE FROM workload_sightings WHERE id IN (SELECT id FROM workload_sightings
		WHERE NOT EXISTS (SELECT 1 FROM connections c WHERE c.id = workload_sightings.connection_id) LIMIT ?)`, pruneBatch); err != nil {
		return total, err
	}
	var over []string
	if err := s.rdb.WithContext(ctx).Raw(`SELECT connection_id FROM workload_sightings GROUP BY connection_id HAVING COUNT(*) > ?`,
		perConnection).Scan(&over).Error; err != nil {
		return total, fmt.Errorf("prune workload sightings (cap): %w", err)
	}
	for _, id := range over {
		// Everything after the perConnection most recently seen, 1,000 at a time.
		if err := deleteAll("cap", `DELETE FROM workload_sightings WHERE id IN (SELECT id FROM workload_sightings
			WHERE connection_id = ? ORDER BY last_seen DESC, id DESC LIMIT ? OFFSET ?)`, id, pruneBatch, perConnection); err != nil {
			return total, err
		}
	}
	return total, nil
}

// sightingCursor is the position after the last sighting of a page: its last_seen and id (the
// order is last_seen descending, then id descending). Its kind keeps it from being replayed
// against another list.
type sightingCursor struct {
	Kind     string `json:"k"`
	LastSeen string `json:"t"`
	ID       int64  `json:"s"`
}

const cursorSightings = "w"

func encodeSightingCursor(lastSeen time.Time, id int64) string {
	b, _ := json.Marshal(sightingCursor{Kind: cursorSightings, LastSeen: lastSeen.UTC().Format(timeLayout), ID: id}) // plain struct: cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeSightingCursor(s string) (time.Time, int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("%w: not base64url", ErrBadCursor)
	}
	if !utf8.Valid(b) {
		return time.Time{}, 0, fmt.Errorf("%w: not UTF-8", ErrBadCursor)
	}
	var c sightingCursor
	if err := json.Unmarshal(b, &c); err != nil {
		return time.Time{}, 0, fmt.Errorf("%w: %v", ErrBadCursor, err)
	}
	if c.Kind != cursorSightings {
		return time.Time{}, 0, fmt.Errorf("%w: cursor of another list", ErrBadCursor)
	}
	t, err := time.Parse(timeLayout, c.LastSeen)
	if err != nil || c.ID <= 0 {
		return time.Time{}, 0, fmt.Errorf("%w: empty position", ErrBadCursor)
	}
	return t, c.ID, nil
}

const sightingColumnsSelect = `SELECT id, identity, outcome, first_seen, last_seen, exchanges, claims FROM workload_sightings`

// ListSightings returns one page of a connection's sightings, newest first, and the cursor of the
// next page ("" when this is the last). A cursor this store did not produce gives ErrBadCursor.
func (s *Store) ListSightings(ctx context.Context, f sightings.Filter) ([]api.Sighting, string, error) {
	limit := clampLimit(f.Limit)
	q := sightingColumnsSelect + ` WHERE connection_id = ? AND last_seen >= ?`
	args := []any{f.ConnectionID, newDBTime(f.Since)}
	if f.Cursor != "" {
		t, id, err := decodeSightingCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		q += ` AND (last_seen < ? OR (last_seen = ? AND id < ?))`
		args = append(args, newDBTime(t), newDBTime(t), id)
	}
	out, ids, err := s.querySightings(ctx, nil, limit+1, q+` ORDER BY last_seen DESC, id DESC LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = encodeSightingCursor(out[limit-1].LastSeen, ids[limit-1])
	}
	return out, next, nil
}

// RecentSightings returns a connection's sightings last seen at or after since, newest first, at
// most limit (the impact report's input), with only the top-level claims in keep decoded (nil:
// all of them; see sightings.ClaimsRead).
func (s *Store) RecentSightings(ctx context.Context, connectionID string, since time.Time, limit int, keep map[string]bool) ([]api.Sighting, error) {
	out, _, err := s.querySightings(ctx, keep, limit, sightingColumnsSelect+` WHERE connection_id = ? AND last_seen >= ? ORDER BY last_seen DESC, id DESC LIMIT ?`,
		connectionID, newDBTime(since), limit)
	return out, err
}

// querySightings runs a select of sightingColumnsSelect and returns the sightings and their ids.
// Claims are decoded as the verifier decodes a token's (numbers as json.Number), so the impact
// report compares them exactly as an exchange did.
func (s *Store) querySightings(ctx context.Context, keep map[string]bool, sizeHint int, query string, args ...any) ([]api.Sighting, []int64, error) {
	rows, err := s.rdb.WithContext(ctx).Raw(query, args...).Rows()
	if err != nil {
		return nil, nil, fmt.Errorf("read workload sightings: %w", err)
	}
	defer rows.Close()
	out := make([]api.Sighting, 0, min(sizeHint, sightings.DefaultMaxPerConnection))
	ids := make([]int64, 0, cap(out))
	for rows.Next() {
		var (
			sg          api.Sighting
			id          int64
			first, last dbTime
			claims      string
		)
		if err := rows.Scan(&id, &sg.Identity, &sg.Outcome, &first, &last, &sg.Exchanges, &claims); err != nil {
			return nil, nil, fmt.Errorf("read workload sightings: %w", err)
		}
		sg.FirstSeen, sg.LastSeen = first.Time, last.Time
		if sg.Claims, err = sightings.DecodeClaimsKeeping(claims, keep); err != nil {
			return nil, nil, fmt.Errorf("decode the claims of sighting %d: %w", id, err)
		}
		out = append(out, sg)
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read workload sightings: %w", err)
	}
	return out, ids, nil
}
