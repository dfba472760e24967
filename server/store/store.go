// Package store is where Trustgate remembers things: workload connections, principals (API-key
// hashes), audit events, signing keys and a change counter that replicas poll. It speaks SQLite
// (pure Go, the binary builds with CGO_ENABLED=0) and PostgreSQL through GORM, and runs embedded,
// versioned goose migrations at Open. Several processes may share one PostgreSQL database: every
// method is safe against concurrent replicas.
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
	"strings"
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

// Sentinel errors. Methods wrap them with context; test with errors.Is.
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

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationsFS embed.FS

// migrationLockID is the PostgreSQL advisory lock that serialises migrations of replicas starting
// at the same moment (goose's session locker). Advisory locks are per database.
const migrationLockID int64 = 0x7472757374676174 // "trustgat"

// signingKeyLockID serialises CreateFirstSigningKey across replicas (transaction-level lock).
const signingKeyLockID int64 = 0x7472757374676b31 // "trustgk1"

// Store is a handle on the database. It is safe for concurrent use.
type Store struct {
	db      *gorm.DB
	sqlDB   *sql.DB
	dialect string
	log     *slog.Logger
}

// Option configures Open.
type Option func(*options)

type options struct {
	logger *slog.Logger
}

// WithLogger sets the logger for migration progress and slow-query warnings (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// Open connects to the database named by dsn and migrates it to the newest schema.
//
//   - sqlite://PATH — a SQLite file, PATH relative to the working directory or absolute
//     (sqlite:///var/lib/trustgate/trustgate.db). Opened in WAL mode with synchronous=FULL (a
//     committed audit event survives a crash), a 5 s busy timeout, foreign keys on, and IMMEDIATE
//     transactions (a writer takes the write lock at BEGIN, so concurrent writers queue instead of
//     failing to upgrade a read lock).
//   - postgres://… or postgresql://… — PostgreSQL (a libpq URL as understood by pgx).
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	o := options{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}

	var (
		dialector gorm.Dialector
		dialect   string
	)
	switch {
	case strings.HasPrefix(dsn, "sqlite://"):
		path := strings.TrimPrefix(dsn, "sqlite://")
		if path == "" {
			return nil, errors.New("open store: sqlite:// needs a file path, as in sqlite://trustgate.db")
		}
		dialector = sqlite.Open(sqliteDSN(path))
		dialect = DialectSQLite
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		dialector = postgres.Open(dsn)
		dialect = DialectPostgres
	default:
		return nil, fmt.Errorf("open store: unsupported database %q: use sqlite://PATH or postgres://…", redactDSN(dsn))
	}

	db, err := gorm.Open(dialector, &gorm.Config{
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
	})
	if err != nil {
		return nil, fmt.Errorf("open store (%s): %w", dialect, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open store (%s): %w", dialect, err)
	}
	if dialect == DialectPostgres {
		sqlDB.SetMaxOpenConns(20)
		sqlDB.SetMaxIdleConns(10)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	s := &Store{db: db, sqlDB: sqlDB, dialect: dialect, log: o.logger}
	if err := s.Ping(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("open store (%s): %w", dialect, err)
	}
	if err := s.migrate(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, err
	}
	return s, nil
}

// sqliteDSN builds the glebarez/go-sqlite DSN for a file path. The path is a SQLite URI path, so
// the characters that URIs give a meaning are escaped.
func sqliteDSN(path string) string {
	path = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	q := []string{
		"_pragma=journal_mode(WAL)",
		"_pragma=busy_timeout(5000)",
		"_pragma=foreign_keys(1)",
		"_pragma=synchronous(FULL)",
		"_txlock=immediate",
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

func (s *Store) migrate(ctx context.Context) error {
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
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s schema: %w", s.dialect, err)
	}
	for _, r := range results {
		s.log.Info("applied migration", "dialect", s.dialect, "version", r.Source.Version, "duration", r.Duration)
	}
	return nil
}

// Close closes the database connections.
func (s *Store) Close() error { return s.sqlDB.Close() }

// Ping checks that the database answers (the /readyz probe).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s: %w", s.dialect, err)
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
