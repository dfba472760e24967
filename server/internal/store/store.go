// Package store is where Trustgate remembers things: workload connections, principals (API-key
// hashes), audit events, signing keys, revoked tokens and the counters that replicas poll. It
// speaks SQLite (pure Go, the binary builds with CGO_ENABLED=0) and PostgreSQL through GORM, and
// runs embedded, versioned goose migrations at Open. Several processes may share one PostgreSQL
// database: every method is safe against concurrent replicas.
//
// # The boundary
//
// Nothing above the use cases imports this package. The use cases declare what they need and *Store
// implements it: admin.Storer (connections, audit trail), broker.Source (the catalog's reads),
// principal.Storer (API keys), audit.Sink (the group-commit writer), httpapi.Pinger (/readyz) and,
// through server/app's adapters, signing.KeyStore and broker.RevocationStore. It speaks their types
// — the domain's connection.Connection, connection.Filter, principal.Principal, api.AuditEvent —
// and reports outcomes with the sentinel errors of package storeerr (re-exported here), which each
// use case translates into its own errors. server/app is where the two meet.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Dialect names returned by (*Store).Dialect.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationsFS embed.FS

// migrationLockID is the PostgreSQL advisory lock that serialises migrations of replicas starting
// at the same moment (goose's session locker). Advisory locks are per database.
const migrationLockID int64 = 0x7472757374676174 // "trustgat"

// signingKeyLockID serialises UpdateSigningKeys across replicas (transaction-level lock).
const signingKeyLockID int64 = 0x7472757374676b31 // "trustgk1"

// Store is a handle on the database. It is safe for concurrent use.
type Store struct {
	db        *gorm.DB // writes and transactions
	rdb       *gorm.DB // reads outside transactions (== db on PostgreSQL)
	sqlDB     *sql.DB
	readSQLDB *sql.DB       // SQLite's read pool; nil on PostgreSQL
	ckpt      *checkpointer // SQLite's background WAL checkpoints (checkpoint.go); nil on PostgreSQL
	dialect   string
	log       *slog.Logger
	// weeks holds the week starts (time.Time) known to have an audit partition (PostgreSQL;
	// audit_retention.go).
	weeks sync.Map
}

// Option configures Open.
type Option func(*options)

type options struct {
	logger *slog.Logger
	wal    walPolicy
	// schemaVersion stops migrating at this version (0: the newest); upgrade tests only.
	schemaVersion int64
	readOnly      bool
}

// WithLogger sets the logger for migration progress and slow-query warnings (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// ReadOnly opens the store for reading alone (`trustgate audit verify` beside running servers):
// it runs no migrations, refusing a schema older than this binary's, and starts no background
// WAL checkpoints on SQLite.
func ReadOnly() Option {
	return func(o *options) { o.readOnly = true }
}

// Open connects to the database named by dsn and migrates it to the newest schema.
//
//   - sqlite://PATH — a SQLite file, PATH relative to the working directory or absolute
//     (sqlite:///var/lib/trustgate/trustgate.db). Opened in WAL mode with synchronous=FULL (a
//     committed audit event survives a crash), a 5 s busy timeout, foreign keys on, and IMMEDIATE
//     transactions (a writer takes the write lock at BEGIN, so concurrent writers queue instead of
//     failing to upgrade a read lock). The WAL is checkpointed in the background, not inside
//     commits (checkpoint.go).
//   - postgres://… or postgresql://… — PostgreSQL (a libpq URL as understood by pgx).
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	o := options{logger: slog.New(slog.DiscardHandler), wal: defaultWALPolicy}
	for _, opt := range opts {
		opt(&o)
	}
	var (
		s   *Store
		err error
	)
	sqlitePath, isSQLite := strings.CutPrefix(dsn, "sqlite://")
	switch {
	case isSQLite:
		s, err = openSQLite(ctx, sqlitePath, o)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		s, err = openPostgres(dsn, o)
	default:
		err = fmt.Errorf("open store: unsupported database %q: use sqlite://PATH or postgres://…", redactDSN(dsn))
	}
	if err != nil {
		return nil, err
	}
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("open store (%s): %w", s.dialect, err)
	}
	if err := s.migrate(ctx, o.schemaVersion, o.readOnly); err != nil {
		_ = s.Close()
		return nil, err
	}
	if isSQLite && !o.readOnly {
		if err := s.startCheckpoints(ctx, sqlitePath, o); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	return s, nil
}

// gormConfig is the GORM configuration of every pool.
func gormConfig(o options) *gorm.Config {
	return &gorm.Config{
		// Every write that needs a transaction opens one explicitly.
		SkipDefaultTransaction: true,
		Logger: logger.New(slogWriter{o.logger}, logger.Config{
			SlowThreshold:             500 * time.Millisecond,
			LogLevel:                  logger.Warn,
			IgnoreRecordNotFoundError: true,
			// Never print bound values: they include key hashes and sealed keys.
			ParameterizedQueries: true,
		}),
		NowFunc: func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
	}
}

// openSQLite opens the SQLite file's write and read pools (not yet migrated).
//
// SQLite has one writer at a time. Writes go through a pool of one connection, so writers queue in
// Go (first come, first served) rather than in SQLite's busy handler, whose sleeps grow to 100 ms
// and starve unlucky writers. Reads use a pool of their own: in WAL mode readers never wait for the
// writer, so an authentication lookup does not queue behind an audit commit. Other processes on
// the same file (`trustgate keys`) still meet the busy timeout.
func openSQLite(ctx context.Context, path string, o options) (*Store, error) {
	if path == "" {
		return nil, errors.New("open store: sqlite:// needs a file path, as in sqlite://trustgate.db")
	}
	s := &Store{log: o.logger, dialect: DialectSQLite}
	w, err := openSQLitePool(ctx, sqliteDSN(path, sqliteWriter, o.wal))
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	if s.db, err = gorm.Open(&sqlite.Dialector{Conn: w}, gormConfig(o)); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("open store (sqlite): %w", err)
	}
	s.sqlDB = w
	r, err := openSQLitePool(ctx, sqliteDSN(path, sqliteReader, o.wal))
	if err != nil {
		_ = w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)))
	if s.rdb, err = gorm.Open(&sqlite.Dialector{Conn: r}, gormConfig(o)); err != nil {
		_ = w.Close()
		_ = r.Close()
		return nil, fmt.Errorf("open store (sqlite): %w", err)
	}
	s.readSQLDB = r
	return s, nil
}

// startCheckpoints starts the SQLite file's background WAL checkpoints on a connection of their
// own (checkpoint.go).
func (s *Store) startCheckpoints(ctx context.Context, path string, o options) error {
	c, err := openSQLitePool(ctx, sqliteDSN(path, sqliteCheckpointer, o.wal))
	if err != nil {
		return err
	}
	c.SetMaxOpenConns(1)
	s.ckpt = startCheckpointer(c, s.sqlDB, o.wal, o.logger)
	return nil
}

// openPostgres opens the PostgreSQL pool (not yet migrated). One pool serves reads and writes.
func openPostgres(dsn string, o options) (*Store, error) {
	db, err := gorm.Open(postgres.Open(dsn), gormConfig(o))
	if err != nil {
		return nil, fmt.Errorf("open store (postgres): %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open store (postgres): %w", err)
	}
	sqlDB.SetMaxOpenConns(20)
	sqlDB.SetMaxIdleConns(10)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	return &Store{log: o.logger, dialect: DialectPostgres, db: db, rdb: db, sqlDB: sqlDB}, nil
}

// openSQLitePool opens a pool and its first connection. Processes that open a new file at the same
// moment race to switch it to WAL, which needs an exclusive lock and can fail with SQLITE_BUSY
// without waiting for the busy timeout; once the file is in WAL mode (persistent) the pragma is a
// no-op. So the first connection is retried for a while.
func openSQLitePool(ctx context.Context, dsn string) (*sql.DB, error) {
	db, err := sql.Open(sqlite.DriverName, dsn)
	if err != nil {
		return nil, fmt.Errorf("open store (sqlite): %w", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for attempt := 1; ; attempt++ {
		err = db.PingContext(ctx)
		if err == nil {
			return db, nil
		}
		if !strings.Contains(err.Error(), "SQLITE_BUSY") || time.Now().After(deadline) || ctx.Err() != nil {
			_ = db.Close()
			return nil, fmt.Errorf("open store (sqlite): %w", err)
		}
		time.Sleep(time.Duration(min(attempt, 10)) * 10 * time.Millisecond)
	}
}

// The connections a SQLite Store opens.
type sqliteConn int

const (
	sqliteWriter       sqliteConn = iota // the write pool (one connection)
	sqliteReader                         // the read pool: refuses writes
	sqliteCheckpointer                   // background checkpoints (checkpoint.go)
)

// sqliteDSN builds the glebarez/go-sqlite DSN for a file path. The path is a SQLite URI path, so
// the characters that URIs give a meaning are escaped.
// Reader connections refuse writes (query_only), so a write routed to the read pool by mistake
// fails loudly instead of bypassing the writer queue. Readers map the database file (mmap_size,
// 256 MiB of address space, not memory): a page is read from the kernel's page cache without a
// pread and a copy, which makes reading 10,000 sightings for an impact report ~15 % faster
// (BenchmarkImpactReport in server/internal/e2e: 82 → 70 ms); a larger page cache instead
// (cache_size) made the same read bimodal, 70–220 ms. Pages in the WAL are still read with
// pread, and the writer does not map the file. No connection checkpoints inside its
// commits (wal_autocheckpoint(0)); the checkpointer's busy timeout is how long its RESTART
// checkpoints may hold writers back.
func sqliteDSN(path string, conn sqliteConn, wal walPolicy) string {
	path = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	busy := 5 * time.Second
	if conn == sqliteCheckpointer {
		busy = wal.restartWait
	}
	q := []string{
		"_pragma=journal_mode(WAL)",
		fmt.Sprintf("_pragma=busy_timeout(%d)", busy.Milliseconds()),
		"_pragma=foreign_keys(1)",
		"_pragma=synchronous(FULL)",
		"_pragma=wal_autocheckpoint(0)",
		"_pragma=temp_store(2)",
		fmt.Sprintf("_pragma=journal_size_limit(%d)", wal.sizeLimit),
		"_txlock=immediate",
	}
	if conn == sqliteReader {
		q = append(q, "_pragma=query_only(1)", "_pragma=mmap_size(268435456)")
	}
	return "file:" + path + "?" + strings.Join(q, "&")
}

// redactDSN drops a password from a DSN for error messages.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	return u.Redacted()
}

func (s *Store) migrate(ctx context.Context, version int64, readOnly bool) error {
	sub, err := fs.Sub(migrationsFS, "migrations/"+s.dialect)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var (
		gooseDialect goose.Dialect
		popts        = []goose.ProviderOption{goose.WithSlog(s.log)}
	)
	switch s.dialect {
	case DialectSQLite:
		gooseDialect = goose.DialectSQLite3
	case DialectPostgres:
		gooseDialect = goose.DialectPostgres
		// Replicas starting at once: the first takes a session-level advisory lock and migrates,
		// the others wait (probing every second, up to 5 minutes) and then find nothing to do.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockID), lock.WithLockTimeout(1, 300))
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		popts = append(popts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(gooseDialect, s.sqlDB, sub, popts...)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if readOnly {
		pending, err := p.HasPending(ctx)
		if err != nil {
			return fmt.Errorf("read the %s schema version: %w", s.dialect, err)
		}
		if pending {
			return fmt.Errorf("the %s database's schema is older than this trustgate's: start `trustgate serve` of this version once to migrate it", s.dialect)
		}
		return nil
	}
	var results []*goose.MigrationResult
	if version > 0 {
		results, err = p.UpTo(ctx, version)
	} else {
		results, err = s.up(ctx, p)
	}
	if err != nil {
		return fmt.Errorf("migrate %s schema: %w", s.dialect, err)
	}
	for _, r := range results {
		s.log.Info("applied migration", "dialect", s.dialect, "version", r.Source.Version, "duration", r.Duration)
	}
	return nil
}

// Close closes the database connections. On SQLite it stops the background checkpoints first,
// and closes the writer last: when no other process has the file open, SQLite checkpoints on
// closing the last connection and deletes the WAL.
func (s *Store) Close() error {
	var err error
	if s.ckpt != nil {
		err = s.ckpt.close()
	}
	if s.readSQLDB != nil {
		err = errors.Join(err, s.readSQLDB.Close())
	}
	return errors.Join(err, s.sqlDB.Close())
}

// Ping checks that the database answers (the /readyz probe).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", s.dialect, err)
	}
	if s.readSQLDB != nil {
		if err := s.readSQLDB.PingContext(ctx); err != nil {
			return fmt.Errorf("ping %s (read pool): %w", s.dialect, err)
		}
	}
	return nil
}

// Dialect is "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.dialect }

// slogWriter adapts GORM's printf logger to slog.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Printf(format string, args ...any) {
	w.l.Warn("gorm", "msg", fmt.Sprintf(format, args...))
}

// up applies pending migrations. On PostgreSQL the session locker serialises processes. SQLite has
// no lock that spans goose's transactions, so two processes opening a new file at once can both
// try migration N; each migration runs in its own transaction, so the loser's attempt rolls back
// and fails ("table … already exists"). up then looks again: if another process has applied
// everything, there is nothing left to do; if it has made progress, try again; otherwise the error
// is real.
func (s *Store) up(ctx context.Context, p *goose.Provider) ([]*goose.MigrationResult, error) {
	results, err := p.Up(ctx)
	if err == nil || s.dialect != DialectSQLite {
		return results, err
	}
	last := int64(-1)
	for attempt := 1; attempt <= 50; attempt++ {
		version, verr := p.GetDBVersion(ctx)
		pending, perr := p.HasPending(ctx)
		if verr == nil && perr == nil && !pending {
			s.log.Info("schema migrated concurrently by another process", "version", version)
			return nil, nil
		}
		if verr != nil || perr != nil || version <= last && attempt > 1 {
			return results, err
		}
		last = version
		select {
		case <-ctx.Done():
			return results, err
		case <-time.After(time.Duration(attempt) * 20 * time.Millisecond):
		}
		results, err = p.Up(ctx)
		if err == nil {
			return results, nil
		}
	}
	return results, err
}
