package admin

import (
	"errors"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storeerr"
)

// The refusals that come from the state of storage rather than from a domain rule.
var (
	// ErrNotFound: no connection has this id or name. The transport also answers it for a {ref}
	// that no stored id or name can match.
	ErrNotFound = connection.NotFound("no workload connection with this id or name: list them with GET /v1/workload-connections")
	// ErrPrecondition: If-Match does not name the current revision.
	ErrPrecondition = connection.Precondition("the connection has changed since you read it (If-Match does not match the current revision): read it again and retry")

	// errNameTaken: another connection has the name.
	errNameTaken = &connection.Error{Kind: connection.KindConflict,
		Detail: "a workload connection with this name already exists: choose another name or import the existing one",
		Fields: []api.FieldError{{Field: "name", Detail: "already taken"}}}
	// errBadCursor: a cursor this server did not issue, or one of another list.
	errBadCursor = connection.ValidationDetail("the cursor is not one this server issued: start again without it",
		api.FieldError{Field: "cursor", Detail: "invalid"})
	// errConcurrent: a change without If-Match lost a race with another change.
	errConcurrent = connection.Conflict("the connection was changed by another request at the same time: read it again and retry")
)

// translate turns what the store reports into the domain's refusals. Any other error (the
// database is down, a bug) passes through unchanged for the transport to answer 503 or 500.
// Refusals are audited with the untranslated cause before it is translated, so the audit trail
// keeps the store's own account (which connection, which revision).
func translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storeerr.ErrNotFound):
		return ErrNotFound
	case errors.Is(err, storeerr.ErrDuplicateName):
		return errNameTaken
	case errors.Is(err, storeerr.ErrBadCursor):
		return errBadCursor
	}
	return err
}

// raced turns a lost optimistic-concurrency race into the error the caller expects: 412 when it
// sent If-Match (its precondition no longer holds), 409 when it did not.
func raced(err error, ifMatch *int64) error {
	if errors.Is(err, storeerr.ErrRevisionMismatch) {
		if ifMatch != nil {
			return ErrPrecondition
		}
		return errConcurrent
	}
	return err
}
