package harness

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	_ "github.com/glebarez/go-sqlite"  // database/sql driver "sqlite", to count audit rows
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
)

// server is a running `trustgate serve` with a DevOps and a security admin key.
type server struct {
	proc        *proc
	URL         string
	Addr        string
	DSN         string
	DevOpsKey   string
	SecurityKey string
	env         []string // the key-encryption key: replicas share it
}

var listeningRE = regexp.MustCompile(`trustgate listening on (http://\S+)`)

// startServer creates the two admin keys on dsn and starts `trustgate serve` on a free loopback port
// with a fresh key-encryption key; extra flags are appended.
func startServer(ctx context.Context, trustgate, dsn, logDir, name string, extra []string) (*server, error) {
	kek := make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		return nil, err
	}
	env := []string{"TRUSTGATE_KEK=" + base64.StdEncoding.EncodeToString(kek), "TRUSTGATE_DATABASE=", "TRUSTGATE_LISTEN="}
	s := &server{DSN: dsn, env: env}
	var err error
	if s.DevOpsKey, err = runCmd(ctx, trustgate, []string{"keys", "create", "--name", "bench-devops", "--role", api.RoleDevOpsAdmin, "--database", dsn}, env); err != nil {
		return nil, err
	}
	if s.SecurityKey, err = runCmd(ctx, trustgate, []string{"keys", "create", "--name", "bench-security", "--role", api.RoleSecurityAdmin, "--database", dsn}, env); err != nil {
		return nil, err
	}
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--database", dsn, "--allow-insecure-jwks"}, extra...)
	s.proc, s.URL, err = startProc(ctx, name, trustgate, args, env, logDir, listeningRE)
	if err != nil {
		return nil, err
	}
	s.Addr = strings.TrimPrefix(s.URL, "http://")
	return s, nil
}

// startReplica starts another `trustgate serve` on the same database with the same
// key-encryption key; extra flags are appended.
func startReplica(ctx context.Context, base *server, trustgate, logDir, name string, extra []string) (*server, error) {
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--database", base.DSN, "--allow-insecure-jwks"}, extra...)
	s := &server{DSN: base.DSN, env: base.env, DevOpsKey: base.DevOpsKey, SecurityKey: base.SecurityKey}
	var err error
	if s.proc, s.URL, err = startProc(ctx, name, trustgate, args, base.env, logDir, listeningRE); err != nil {
		return nil, err
	}
	s.Addr = strings.TrimPrefix(s.URL, "http://")
	return s, nil
}

func (s *server) stop() error {
	if s == nil {
		return nil
	}
	return s.proc.stop()
}

// BenchConnection is the name of the connection the exchange benchmark goes through.
const BenchConnection = "bench-github"

// activeConnection creates a github-preset connection whose JWKS URL points at the dev issuer and
// whose conditions the minted tokens meet, and has the security admin activate it.
func (s *server) activeConnection(ctx context.Context, jwksURL string) (*api.Connection, error) {
	devops, err := apiclient.New(s.URL, s.DevOpsKey)
	if err != nil {
		return nil, err
	}
	security, err := apiclient.New(s.URL, s.SecurityKey)
	if err != nil {
		return nil, err
	}
	c, err := devops.CreateConnection(ctx, benchConnection(BenchConnection, jwksURL))
	if err != nil {
		return nil, fmt.Errorf("creating the benchmark connection: %w", err)
	}
	c, err = security.SetStatus(ctx, c.Name, api.StatusChange{Status: api.StatusActive, ApprovedFingerprint: c.Fingerprint}, c.Revision)
	if err != nil {
		return nil, fmt.Errorf("activating the benchmark connection: %w", err)
	}
	return c, nil
}

// benchConnection is the benchmark's connection: a github preset whose JWKS URL points at the dev
// issuer and whose conditions the minted tokens meet.
func benchConnection(name, jwksURL string) api.ConnectionInput {
	ref := "refs/heads/main"
	return api.ConnectionInput{
		Name:        name,
		Description: "trustgate-bench: github preset, JWKS from trustgate dev-issuer",
		GitHub:      &api.GitHubSettings{OwnerID: "65", Owner: "octo-org", Repository: "octo-org/octo-repo", Audience: Audience},
		JWKSURL:     jwksURL,
		TokenTTL:    &api.TokenTTL{Amount: 15, Unit: api.UnitMinutes},
		Conditions:  []api.Condition{{Claim: "ref", Operator: api.OpEquals, Value: &ref}},
	}
}

// countGrantedAudit counts the granted token-exchange audit events in the server's database, read
// directly (a second reader beside the running server).
func countGrantedAudit(ctx context.Context, dsn string) (int64, error) {
	driver, src := "pgx", dsn
	if p, ok := strings.CutPrefix(dsn, "sqlite://"); ok {
		abs, err := filepath.Abs(p)
		if err != nil {
			return 0, err
		}
		driver, src = "sqlite", "file:"+abs+"?_pragma=busy_timeout(10000)"
	}
	db, err := sql.Open(driver, src)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int64
	err = db.QueryRowContext(ctx, `SELECT count(*) FROM audit_events WHERE action = 'token.exchange' AND outcome = 'granted'`).Scan(&n)
	return n, err
}

// postgresDurability reports the settings that decide whether a PostgreSQL commit survives a crash.
func postgresDurability(ctx context.Context, dsn string) (string, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return "", err
	}
	defer db.Close()
	var parts []string
	for _, name := range []string{"fsync", "synchronous_commit", "full_page_writes"} {
		var v string
		if err := db.QueryRowContext(ctx, "SHOW "+name).Scan(&v); err != nil {
			return "", err
		}
		parts = append(parts, name+"="+v)
	}
	return strings.Join(parts, " "), nil
}

// auditStorage counts the audit events and the bytes they take: on PostgreSQL the audit table's
// partitions with their indexes and TOAST, on SQLite the database file and its WAL.
func auditStorage(ctx context.Context, dsn string) (rows int64, perEvent float64, err error) {
	driver, src := "pgx", dsn
	path, isSQLite := strings.CutPrefix(dsn, "sqlite://")
	if isSQLite {
		abs, err := filepath.Abs(path)
		if err != nil {
			return 0, 0, err
		}
		driver, src = "sqlite", "file:"+abs+"?_pragma=busy_timeout(10000)"
	}
	db, err := sql.Open(driver, src)
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM audit_events`).Scan(&rows); err != nil || rows == 0 {
		return rows, 0, err
	}
	var size int64
	if isSQLite {
		for _, f := range []string{path, path + "-wal"} {
			if fi, err := os.Stat(f); err == nil {
				size += fi.Size()
			}
		}
	} else if err := db.QueryRowContext(ctx, `SELECT COALESCE((SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('audit_events') WHERE isleaf),
		pg_total_relation_size('audit_events'))`).Scan(&size); err != nil {
		return rows, 0, err
	}
	return rows, round1(float64(size) / float64(rows)), nil
}
