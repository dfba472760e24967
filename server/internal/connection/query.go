package connection

import "time"

// Filter selects a page of connections, ordered by name. Empty fields do not filter. The admin
// use cases take it from the transport and hand it to their storage (admin.Storer).
type Filter struct {
	Status       string
	ProviderType string
	// NamePrefix matches literally and case-sensitively (wildcards such as % and _ are plain characters).
	NamePrefix string
	// Limit is the page size: the store's default (100) when ≤ 0, at most 500.
	Limit int
	// Cursor is the next cursor of the previous page ("" for the first page).
	Cursor string
}

// AuditFilter selects a page of audit events, newest first. Empty fields do not filter. Actor is
// not the caller's to choose: the admin use case sets it from AuditActorFilter.
type AuditFilter struct {
	// Connection is a connection id (UUID-shaped) or a name.
	Connection string
	Action     string
	// Actor keeps the actions of this principal (token exchanges, whose actor is a workload, never).
	Actor string
	// Since keeps events at or after this time.
	Since time.Time
	// Limit is the page size: the store's default (100) when ≤ 0, at most 500.
	Limit int
	// Cursor is the next cursor of the previous page ("" for the first page).
	Cursor string
	// Outcome keeps events with this outcome (api.Outcome*).
	Outcome string
	// Before keeps events before this time.
	Before time.Time
}
