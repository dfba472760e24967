package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The SQLite settings that durability and concurrency rest on are really in force, on both pools.
func TestSQLitePragmasInForce(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pragma := func(db *Store, read bool, name string) string {
		g := db.db
		if read {
			g = db.rdb
		}
		var v string
		if err := g.WithContext(ctx).Raw("PRAGMA " + name).Row().Scan(&v); err != nil {
			t.Fatalf("PRAGMA %s: %v", name, err)
		}
		return v
	}
	for _, read := range []bool{false, true} {
		for name, want := range map[string]string{
			"journal_mode": "wal",
			"synchronous":  "2", // FULL
			"foreign_keys": "1",
			"busy_timeout": "5000",
			// Checkpoints run in the background (checkpoint.go), never inside a commit.
			"wal_autocheckpoint": "0",
			"journal_size_limit": "16777216",
		} {
			if got := pragma(s, read, name); got != want {
				t.Errorf("read pool %v: PRAGMA %s = %s, want %s", read, name, got, want)
			}
		}
	}
	if got := pragma(s, true, "query_only"); got != "1" {
		t.Errorf("read pool query_only = %s, want 1", got)
	}
	if err := s.rdb.WithContext(ctx).Exec("UPDATE change_counter SET value = 9").Error; err == nil {
		t.Error("a write through the read pool succeeded")
	}
	if got := pragma(s, false, "query_only"); got != "0" {
		t.Errorf("write pool query_only = %s, want 0", got)
	}
}

func TestSQLiteDSNEscapesURIChars(t *testing.T) {
	got := sqliteDSN("/tmp/a%b?c#d.db", sqliteWriter, defaultWALPolicy)
	if !strings.HasPrefix(got, "file:/tmp/a%25b%3fc%23d.db?") {
		t.Errorf("sqliteDSN = %q", got)
	}
	if strings.Contains(got, "query_only") {
		t.Errorf("write DSN is query_only: %q", got)
	}
	if !strings.Contains(sqliteDSN("x.db", sqliteReader, defaultWALPolicy), "_pragma=query_only(1)") {
		t.Error("read DSN lacks query_only")
	}
}

func TestClampLimit(t *testing.T) {
	tests := []struct{ in, want int }{{-1, DefaultLimit}, {0, DefaultLimit}, {1, 1}, {500, 500}, {501, MaxLimit}, {1 << 30, MaxLimit}}
	for _, tt := range tests {
		if got := clampLimit(tt.in); got != tt.want {
			t.Errorf("clampLimit(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestEscapeLike(t *testing.T) {
	tests := map[string]string{"abc": "abc", "a_b": `a\_b`, "50%": `50\%`, `a\b`: `a\\b`, "é_": `é\_`}
	for in, want := range tests {
		if got := escapeLike(in); got != want {
			t.Errorf("escapeLike(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCursorRoundTripAndRejects(t *testing.T) {
	c := encodeCursor(cursor{Kind: cursorConnections, Name: "abc"})
	got, err := decodeCursor(c, cursorConnections)
	if err != nil || got.Name != "abc" {
		t.Fatalf("decodeCursor = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "%%%", c + "x", encodeCursor(cursor{Kind: cursorAudit, Seq: 3}), encodeCursor(cursor{Kind: cursorConnections})} {
		if _, err := decodeCursor(bad, cursorConnections); !errors.Is(err, ErrBadCursor) {
			t.Errorf("decodeCursor(%q) = %v, want ErrBadCursor", bad, err)
		}
	}
}

func TestDBTimeScansBothForms(t *testing.T) {
	want := time.Date(2026, 11, 28, 1, 2, 3, 456789000, time.UTC)
	v, _ := newDBTime(want.In(time.FixedZone("Z", 3600)).Add(999)).Value()
	if v != "2026-11-28T01:02:03.456789Z" {
		t.Errorf("Value = %v", v)
	}
	for _, src := range []any{v, []byte(v.(string)), want.In(time.FixedZone("Z", -3600))} {
		var got dbTime
		if err := got.Scan(src); err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("Scan(%T) = %v, %v", src, got.Time, err)
		}
	}
	var bad dbTime
	if err := bad.Scan(42); err == nil {
		t.Error("Scan(int) succeeded")
	}
}
