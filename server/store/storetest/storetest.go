// Package storetest gives each test a fresh, migrated store: a SQLite file in t.TempDir() by
// default, or, when TRUSTGATE_TEST_POSTGRES_URL names a PostgreSQL server (a DSN to its `postgres`
// database, e.g. from scripts/pg.sh), a new database on that server that is dropped afterwards.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for CREATE/DROP DATABASE

	"github.com/trustgate/terraform-provider-trustgate/server/store"
)

// EnvPostgresURL names the environment variable that switches tests to PostgreSQL.
const EnvPostgresURL = "TRUSTGATE_TEST_POSTGRES_URL"

// New opens a fresh store for the test and closes it when the test ends.
func New(t testing.TB) *store.Store {
	t.Helper()
	dsn := DSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("storetest: open %s store: %v", backend(), err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("storetest: close store: %v", err)
		}
	})
	return s
}

// DSN returns the DSN of a fresh, empty database without opening it (for tests that start a
// server process on it, or open several stores on one database). The database is removed when
// the test ends; stores opened on it must be closed before (register their Close after calling DSN).
func DSN(t testing.TB) string {
	t.Helper()
	base := PostgresURL()
	if base == "" {
		path := filepath.Join(t.TempDir(), "trustgate.db")
		t.Logf("storetest: SQLite database %s (set %s to use PostgreSQL)", path, EnvPostgresURL)
		return "sqlite://" + path
	}
	return postgresDSN(t, base)
}

// PostgresURL returns the PostgreSQL server DSN from the environment, or "".
func PostgresURL() string { return os.Getenv(EnvPostgresURL) }

func backend() string {
	if PostgresURL() != "" {
		return "PostgreSQL"
	}
	return "SQLite"
}

func postgresDSN(t testing.TB, base string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("storetest: %s is not a URL: %v", EnvPostgresURL, err)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("storetest: %v", err)
	}
	name := "tg_test_" + hex.EncodeToString(b[:])

	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("storetest: connect to %s: %v", u.Redacted(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The name is ours (hex), so plain interpolation is safe; CREATE DATABASE takes no parameters.
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE "`+name+`"`); err != nil {
		_ = admin.Close()
		t.Fatalf("storetest: create database on %s: %v", u.Redacted(), err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE ends sessions a test left open (PostgreSQL 13+).
		if _, err := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`); err != nil {
			t.Errorf("storetest: drop database %s: %v", name, err)
		}
	})

	db := *u
	db.Path = "/" + name
	t.Logf("storetest: PostgreSQL database %s on %s", name, u.Host)
	return db.String()
}
