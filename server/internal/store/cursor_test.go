package store_test

import (
	"encoding/base64"
	"errors"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/testdb"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storetest"
)

// unstorableCursors are well-formed cursors (base64url of JSON of the right kind) whose decoded
// text the databases cannot store: an escaped NUL, a raw NUL, and bytes that are not UTF-8.
func unstorableCursors(kind string) map[string]string {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	return map[string]string{
		"escaped NUL in the name":     enc(`{"k":"` + kind + `","n":"a\u0000b","s":5}`),
		"escaped NUL alone":           enc(`{"k":"` + kind + `","n":"\u0000","s":5}`),
		"escaped NUL in the kind":     enc(`{"k":"` + kind + `\u0000","n":"a","s":5}`),
		"invalid UTF-8 in the name":   enc(`{"k":"` + kind + `","n":"a` + "\xff\xfe" + `","s":5}`),
		"overlong UTF-8 in the name":  enc(`{"k":"` + kind + `","n":"` + "\xc0\x80" + `","s":5}`),
		"invalid UTF-8 outside names": enc(`{"k":"` + kind + `","n":"a","s":5,"x":"` + "\xff" + `"}`),
	}
}

// CONTRACT.md §3 (v2): text that cannot be stored inside a decoded list cursor is refused as a bad
// cursor (a 422 at the API) and never reaches the database, on SQLite and PostgreSQL, for both
// lists. Before, PostgreSQL answered an escaped NUL with an error (a 500).
func TestListsRefuseCursorsWithUnstorableText(t *testing.T) {
	t.Parallel()
	s := storetest.New(t)
	ctx := ctxT(t)
	if err := s.CreateConnection(ctx, newConnection("a", api.ProviderGitHub, api.StatusDraft), nil); err != nil {
		t.Fatal(err)
	}
	for name, cur := range unstorableCursors("c") {
		if _, _, err := s.ListConnections(ctx, connection.Filter{Cursor: cur}); !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("%s: ListConnections on %s: err = %v, want ErrBadCursor", name, testdb.Backend(), err)
		}
	}
	for name, cur := range unstorableCursors("a") {
		if _, _, err := s.ListAudit(ctx, connection.AuditFilter{Cursor: cur}); !errors.Is(err, store.ErrBadCursor) {
			t.Errorf("%s: ListAudit on %s: err = %v, want ErrBadCursor", name, testdb.Backend(), err)
		}
	}
	// A well-formed cursor with ordinary text still works.
	ok := base64.RawURLEncoding.EncodeToString([]byte(`{"k":"c","n":"a"}`))
	if _, _, err := s.ListConnections(ctx, connection.Filter{Cursor: ok}); err != nil {
		t.Fatalf("a storable cursor: %v", err)
	}
}
