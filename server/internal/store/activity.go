package store

import (
	"context"
	"fmt"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
)

// hourLayout is the text form of an hour bucket that hourExpr produces in both dialects.
const hourLayout = "2006-01-02T15"

// hourExpr is the SQL expression of the UTC hour of an audit event, as hourLayout text. On SQLite
// "time" is already UTC text in timeLayout, so the hour is its first 13 characters.
func (s *Store) hourExpr() string {
	if s.dialect == DialectPostgres {
		return `to_char("time" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24')`
	}
	return `substr("time", 1, 13)`
}

// ExchangeCounts counts the token exchanges in the audit trail that q selects, by connection and
// outcome (and hour when q.Hourly). It reads the events of the window through the time index (or
// the connection's index), so its cost grows with the exchanges in the window, not with the
// whole trail.
func (s *Store) ExchangeCounts(ctx context.Context, q connection.ActivityQuery) ([]connection.ExchangeCount, error) {
	sel := `connection_id, outcome, COUNT(*) AS n, MAX("time") AS latest`
	group := "connection_id, outcome"
	if q.Hourly {
		sel += ", " + s.hourExpr() + " AS hour"
		group += ", " + s.hourExpr()
	}
	db := s.rdb.WithContext(ctx).Model(&auditRow{}).Select(sel).
		Where(`action = ? AND "time" >= ?`, api.ActionTokenExchange, newDBTime(q.Since))
	if q.ConnectionID != "" {
		db = db.Where("connection_id = ?", q.ConnectionID)
	}
	var rows []struct {
		ConnectionID string
		Outcome      string
		N            int64
		Latest       dbTime
		Hour         string
	}
	if err := db.Group(group).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("count token exchanges: %w", err)
	}
	out := make([]connection.ExchangeCount, 0, len(rows))
	for _, r := range rows {
		c := connection.ExchangeCount{ConnectionID: r.ConnectionID, Outcome: r.Outcome, Count: r.N, Latest: r.Latest.Time}
		if q.Hourly {
			h, err := time.Parse(hourLayout, r.Hour)
			if err != nil {
				return nil, fmt.Errorf("count token exchanges: hour %q: %w", r.Hour, err)
			}
			c.Hour = h
		}
		out = append(out, c)
	}
	return out, nil
}

// LastExchanges returns the time of the newest token exchange of each of the connections (by id)
// that has had one. One indexed lookup per connection: the newest events of a connection that
// exchanges tokens are nearly all exchanges, so each walks back a few index entries.
func (s *Store) LastExchanges(ctx context.Context, ids []string) (map[string]time.Time, error) {
	out := make(map[string]time.Time, len(ids))
	for _, id := range ids {
		var rows []struct{ Time dbTime }
		err := s.rdb.WithContext(ctx).Model(&auditRow{}).Select(`"time"`).
			Where("connection_id = ? AND action = ?", id, api.ActionTokenExchange).
			Order("seq DESC").Limit(1).Scan(&rows).Error
		if err != nil {
			return nil, fmt.Errorf("last token exchange of connection %s: %w", id, err)
		}
		if len(rows) > 0 {
			out[id] = rows[0].Time.Time
		}
	}
	return out, nil
}
