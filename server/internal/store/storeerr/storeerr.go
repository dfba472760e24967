// Package storeerr holds the outcomes the store reports as sentinel errors, in a package of their
// own so that the use cases (admin, principal) can recognise them and translate them into their
// domain errors without importing the store, GORM or a database driver — as io/fs and os share
// fs.ErrNotExist. Package store re-exports each value (store.ErrNotFound is storeerr.ErrNotFound).
// The store's methods wrap them with context: test with errors.Is.
package storeerr

import "errors"

var (
	// ErrNotFound: no such connection, principal (or the principal is revoked), ...
	ErrNotFound = errors.New("not found")
	// ErrDuplicateName: the name is already taken.
	ErrDuplicateName = errors.New("name already exists")
	// ErrRevisionMismatch: the row changed since the caller read it (optimistic concurrency).
	ErrRevisionMismatch = errors.New("revision mismatch")
	// ErrBadCursor: a pagination cursor that this store did not produce.
	ErrBadCursor = errors.New("invalid cursor")
)
