package store

import (
	"errors"
	"strings"

	sqlite "github.com/glebarez/go-sqlite"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storeerr"
)

// The store's sentinel errors: the values of package storeerr, where the use cases recognise them
// without importing the store. Methods wrap them with context; test with errors.Is.
var (
	// ErrNotFound: no such connection, principal (or the principal is revoked), ...
	ErrNotFound = storeerr.ErrNotFound
	// ErrDuplicateName: the name is already taken.
	ErrDuplicateName = storeerr.ErrDuplicateName
	// ErrRevisionMismatch: the row changed since the caller read it (optimistic concurrency).
	ErrRevisionMismatch = storeerr.ErrRevisionMismatch
	// ErrBadCursor: a pagination cursor that this store did not produce.
	ErrBadCursor = storeerr.ErrBadCursor
)

// uniqueViolation reports whether err is a unique-constraint violation of the named constraint.
// Constraints are named identically in both dialects' migrations (e.g. connections_name_key); on
// SQLite, whose errors name the columns instead ("UNIQUE constraint failed: connections.name"),
// the caller also passes the table.column.
func uniqueViolation(err error, pgConstraint, sqliteColumn string) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505" && pgErr.ConstraintName == pgConstraint
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		// SQLITE_CONSTRAINT_UNIQUE (2067) and SQLITE_CONSTRAINT_PRIMARYKEY (1555).
		code := sqErr.Code()
		return (code == 2067 || code == 1555) && strings.Contains(sqErr.Error(), sqliteColumn)
	}
	return false
}
