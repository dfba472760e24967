package admin

import (
	"context"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
)

// ActivityReader counts token exchanges in the audit trail (*store.Store implements it).
type ActivityReader interface {
	// ExchangeCounts counts the exchanges q selects by connection, outcome (and hour).
	ExchangeCounts(ctx context.Context, q connection.ActivityQuery) ([]connection.ExchangeCount, error)
	// LastExchanges returns the time of the newest exchange of each connection that has one.
	LastExchanges(ctx context.Context, connectionIDs []string) (map[string]time.Time, error)
}

// ExchangeActivity counts token exchanges, granted and denied, over a window: every role may see
// these numbers, as it may read the connections they are about (they are counts, not the audit
// events themselves, which a devops admin may not read).
func (s *Service) ExchangeActivity(ctx context.Context, a Actor, q connection.ActivityQuery) ([]connection.ExchangeCount, error) {
	if err := connection.Authorize(a.Role, connection.ActionRead, nil); err != nil {
		return nil, err
	}
	return s.Activity.ExchangeCounts(ctx, q)
}

// LastExchanges returns when each of the connections last exchanged a token (absent: never, as
// far as the audit trail remembers). The same rule as ExchangeActivity.
func (s *Service) LastExchanges(ctx context.Context, a Actor, connectionIDs []string) (map[string]time.Time, error) {
	if err := connection.Authorize(a.Role, connection.ActionRead, nil); err != nil {
		return nil, err
	}
	return s.Activity.LastExchanges(ctx, connectionIDs)
}
