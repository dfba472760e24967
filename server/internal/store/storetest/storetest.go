// Package storetest gives each test of the server's own packages a fresh, migrated store on the
// database the test kit picks (SQLite by default, PostgreSQL when TRUSTGATE_TEST_POSTGRES_URL is
// set; see internal/testkit).
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/testdb"

	"github.com/trustgate/terraform-provider-trustgate/server/internal/store"
)

// New opens a fresh store for the test and closes it when the test ends.
func New(t testing.TB) *store.Store {
	t.Helper()
	dsn := testdb.DSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("storetest: open %s store: %v", testdb.Backend(), err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("storetest: close store: %v", err)
		}
	})
	return s
}
