// Package testdb hands each test a fresh, empty database: a SQLite file in the test's temporary
// directory by default, or a new database on the PostgreSQL server that TRUSTGATE_TEST_POSTGRES_URL
// names (make test starts one). It has no dependency on the server, so the store's own tests use it too.
package testdb

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
)

// EnvPostgresURL names the environment variable that switches tests to PostgreSQL: a DSN to a
// server's `postgres` database (scripts/pg.sh prints one).
const EnvPostgresURL = "TRUSTGATE_TEST_POSTGRES_URL"

// PostgresURL returns the PostgreSQL server DSN from the environment, or "".
func PostgresURL() string { return os.Getenv(EnvPostgresURL) }

// Backend names the database tests run on: "SQLite" or "PostgreSQL".
func Backend() string {
	if PostgresURL() != "" {
		return "PostgreSQL"
	}
	return "SQLite"
}

// DSN returns the DSN of a fresh, empty database: a SQLite file in t.TempDir(), or a new
// database on the PostgreSQL server that EnvPostgresURL names. The database is removed when the
// test ends; stores opened on it must be closed before (register their Close after calling this).
func DSN(t testing.TB) string {
	t.Helper()
	base := PostgresURL()
	if base == "" {
		path := filepath.Join(t.TempDir(), "trustgate.db")
		t.Logf("testdb: SQLite database %s (set %s to use PostgreSQL)", path, EnvPostgresURL)
		return "sqlite://" + path
	}
	return postgresDSN(t, base)
}

// SQLite returns the DSN of a fresh, empty SQLite database in t.TempDir(), whatever the
// environment says (for tests that run on both databases in one pass).
func SQLite(t testing.TB) string {
	t.Helper()
	return "sqlite://" + filepath.Join(t.TempDir(), "trustgate.db")
}

// RequirePostgres returns the DSN of a fresh PostgreSQL database, or skips the test saying why when
// EnvPostgresURL is not set. With TRUSTGATE_REQUIRE_POSTGRES set it fails instead (CI).
func RequirePostgres(t testing.TB) string {
	t.Helper()
	if PostgresURL() == "" {
		if os.Getenv("TRUSTGATE_REQUIRE_POSTGRES") != "" {
			t.Fatalf("%s is not set but TRUSTGATE_REQUIRE_POSTGRES is: run the tests through make test (or make test-faults)", EnvPostgresURL)
		}
		t.Skipf("needs PostgreSQL: set %s (make test and make test-faults do)", EnvPostgresURL)
	}
	return postgresDSN(t, PostgresURL())
}

func postgresDSN(t testing.TB, base string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("testdb: %s is not a URL: %v", EnvPostgresURL, err)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("testdb: %v", err)
	}
	name := "tg_test_" + hex.EncodeToString(b[:])

	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("testdb: connect to %s: %v", u.Redacted(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The name is ours (hex), so plain interpolation is safe; CREATE DATABASE takes no parameters.
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE "`+name+`"`); err != nil {
		_ = admin.Close()
		t.Fatalf("testdb: create database on %s: %v", u.Redacted(), err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE ends sessions a test left open (PostgreSQL 13+).
		if _, err := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`); err != nil {
			t.Errorf("testdb: drop database %s: %v", name, err)
		}
	})

	db := *u
	db.Path = "/" + name
	t.Logf("testdb: PostgreSQL database %s on %s", name, u.Host)
	return db.String()
}
