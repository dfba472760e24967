package connection

import "time"

// ActivityQuery selects token exchanges from the audit trail to count (the review console's
// counts and chart, CONTRACT.md §7).
type ActivityQuery struct {
	// ConnectionID keeps one connection's exchanges ("" counts every connection's).
	ConnectionID string
	// Since keeps exchanges at or after this time (required: the count is over a window).
	Since time.Time
	// Hourly splits the counts by the UTC hour of the exchange.
	Hourly bool
}

// ExchangeCount is the number of token exchanges of one connection with one outcome
// (api.OutcomeGranted or api.OutcomeDenied), within the query's window or, when the query is
// hourly, within the hour that starts at Hour.
type ExchangeCount struct {
	ConnectionID string
	Outcome      string
	Hour         time.Time
	Count        int64
	// Latest is the time of the newest of these exchanges.
	Latest time.Time
}
