package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// Audit retention (CONTRACT.md §3). On PostgreSQL the audit table is partitioned by week
// (migration 00008): retention detaches and drops whole weeks, and deletes in small batches only
// inside the one week that straddles the cutoff. On SQLite it deletes in small batches through the
// "time" index. Either way each step is short, so that the audit inserts of token exchanges never
// wait long behind it, and a caller (audit.Retention) paces the steps.

// auditMaintenanceLockID serialises partition upkeep and retention across replicas (session-level
// advisory lock, tried, never waited for: another replica already doing it is as good).
const auditMaintenanceLockID int64 = 0x7472757374676175 // "trustgau"

// partitionWeek is the width of an audit partition.
const partitionWeek = 7 * 24 * time.Hour

// partitionsAhead is how many weeks after the current one have their partition ready.
const partitionsAhead = 2

// partitionName matches the partitions migration 00008 and the server create.
var partitionName = regexp.MustCompile(`^audit_events_w(\d{8})$`)

// weekStart is the Monday 00:00 UTC that starts t's ISO week (PostgreSQL's date_trunc('week')).
func weekStart(t time.Time) time.Time {
	t = t.UTC()
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	offset := (int(d.Weekday()) + 6) % 7 // Monday = 0
	return d.AddDate(0, 0, -offset)
}

func weekPartition(monday time.Time) string { return "audit_events_w" + monday.Format("20060102") }

// AuditPartition is one weekly partition of the PostgreSQL audit table: [From, To).
type AuditPartition struct {
	Name     string
	From, To time.Time
}

// PruneAudit removes audit events older than cutoff, one short step per call. On PostgreSQL a step
// is one of, in this order: an index, or at last the table, of a weekly table that was detached
// before (freeing a gigabyte of files at once keeps a disk mounted with online discard busy for
// hundreds of milliseconds, and the exchanges' WAL flushes wait behind it, so the files go one
// at a time with the retention's pauses between them); detaching the oldest partition that lies
// wholly before cutoff (concurrently: removed is PostgreSQL's estimate of its rows, as counting
// would read it); else deleting up to batch of the oldest events before cutoff. On SQLite a step
// deletes up to batch of the oldest events. Call it again while more is true. On PostgreSQL a step
// that finds another replica busy with the same work does nothing.
func (s *Store) PruneAudit(ctx context.Context, cutoff time.Time, batch int) (removed int64, more bool, err error) {
	if batch <= 0 {
		batch = 500
	}
	if s.dialect != DialectPostgres {
		n, err := s.deleteAuditBefore(ctx, s.sqlDB, cutoff, batch)
		return n, n == int64(batch), err
	}
	err = s.withMaintenanceLock(ctx, func(conn *sql.Conn) error {
		detached, err := detachedPartitions(ctx, conn)
		if err != nil {
			return err
		}
		if len(detached) > 0 && !detached[0].To.After(cutoff) {
			done, err := dropDetachedStep(ctx, conn, detached[0].Name)
			if err != nil {
				return err
			}
			if done {
				s.log.Info("audit retention dropped a partition", "partition", detached[0].Name)
			}
			more = true
			return nil
		}
		parts, err := auditPartitions(ctx, conn)
		if err != nil {
			return err
		}
		if len(parts) > 0 && !parts[0].To.After(cutoff) {
			s.weeks.Delete(parts[0].From)
			if removed, err = detachPartition(ctx, conn, parts[0].Name); err != nil {
				return err
			}
			s.log.Info("audit retention detached a partition; its files are dropped next, one at a time", "partition", parts[0].Name, "estimated_rows", removed)
			more = true
			return nil
		}
		removed, err = s.deleteAuditBefore(ctx, conn, cutoff, batch)
		more = removed == int64(batch)
		return err
	})
	return removed, more, err
}

// execer is what deleteAuditBefore needs of a pool or a connection.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (s *Store) deleteAuditBefore(ctx context.Context, db execer, cutoff time.Time, batch int) (int64, error) {
	q := `DELETE FROM audit_events WHERE seq IN (SELECT seq FROM audit_events WHERE "time" < ? ORDER BY "time" LIMIT ?)`
	if s.dialect == DialectPostgres {
		q = `DELETE FROM audit_events WHERE (seq, "time") IN (SELECT seq, "time" FROM audit_events WHERE "time" < $1 ORDER BY "time" LIMIT $2)`
	}
	r, err := db.ExecContext(ctx, q, newDBTime(cutoff).Format(timeLayout), batch)
	if err != nil {
		return 0, fmt.Errorf("delete audit events before %s: %w", cutoff.UTC().Format(time.RFC3339), err)
	}
	return r.RowsAffected()
}

// EnsureAuditPartitions creates the partitions of the week of now and of the next two weeks where
// they are missing (PostgreSQL; nothing to do on SQLite).
func (s *Store) EnsureAuditPartitions(ctx context.Context, now time.Time) error {
	if s.dialect != DialectPostgres {
		return nil
	}
	first := weekStart(now)
	weeks := make([]time.Time, 0, partitionsAhead+1)
	for i := 0; i <= partitionsAhead; i++ {
		weeks = append(weeks, first.Add(time.Duration(i)*partitionWeek))
	}
	return s.withMaintenanceLock(ctx, func(conn *sql.Conn) error { return s.createPartitions(ctx, conn, weeks) })
}

// ensureWeeks makes sure the weeks of evs have their partitions before they are inserted
// (PostgreSQL): from memory for a week already seen, which is nearly always; by asking the
// database, and creating what is missing, otherwise. An insert into a missing partition fails,
// and inside a transaction (a connection change) it cannot simply be retried.
func (s *Store) ensureWeeks(ctx context.Context, evs []api.AuditEvent) error {
	if s.dialect != DialectPostgres {
		return nil
	}
	var missing []api.AuditEvent
	for i := range evs {
		if _, ok := s.weeks.Load(weekStart(evs[i].Time)); !ok {
			missing = append(missing, evs[i])
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if ctx == nil {
		ctx = context.Background()
	}
	return s.ensurePartitionsFor(ctx, missing)
}

// ensurePartitionsFor creates the weeks that evs fall into, waiting for the maintenance lock (an
// insert is waiting on it).
func (s *Store) ensurePartitionsFor(ctx context.Context, evs []api.AuditEvent) error {
	seen := map[time.Time]bool{}
	var weeks []time.Time
	for _, ev := range evs {
		if w := weekStart(ev.Time); !seen[w] {
			seen[w] = true
			weeks = append(weeks, w)
		}
	}
	conn, err := s.sqlDB.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", auditMaintenanceLockID); err != nil {
		return fmt.Errorf("audit partitions: %w", err)
	}
	defer func() {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", auditMaintenanceLockID)
	}()
	return s.createPartitions(ctx, conn, weeks)
}

// AuditPartitions lists the audit table's partitions, oldest first (none on SQLite).
func (s *Store) AuditPartitions(ctx context.Context) ([]AuditPartition, error) {
	if s.dialect != DialectPostgres {
		return nil, nil
	}
	conn, err := s.sqlDB.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return auditPartitions(ctx, conn)
}

// withMaintenanceLock runs fn on a connection holding the audit maintenance lock, or does nothing
// when another session holds it.
func (s *Store) withMaintenanceLock(ctx context.Context, fn func(*sql.Conn) error) error {
	conn, err := s.sqlDB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("audit maintenance: %w", err)
	}
	defer conn.Close()
	var got bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", auditMaintenanceLockID).Scan(&got); err != nil {
		return fmt.Errorf("audit maintenance: %w", err)
	}
	if !got {
		return nil
	}
	defer func() {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", auditMaintenanceLockID)
	}()
	return fn(conn)
}

// auditPartitions lists the weekly partitions attached to audit_events (or being detached),
// oldest first.
func auditPartitions(ctx context.Context, conn *sql.Conn) ([]AuditPartition, error) {
	rows, err := conn.QueryContext(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'audit_events'::regclass`)
	if err != nil {
		return nil, fmt.Errorf("list audit partitions: %w", err)
	}
	defer rows.Close()
	var out []AuditPartition
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		m := partitionName.FindStringSubmatch(name)
		if m == nil {
			continue // not one of ours: leave it alone
		}
		from, err := time.Parse("20060102", m[1])
		if err != nil {
			continue
		}
		out = append(out, AuditPartition{Name: name, From: from, To: from.Add(partitionWeek)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].From.Before(out[j].From) })
	return out, rows.Err()
}

// createPartitions creates and attaches the weekly partitions starting at weeks that do not exist
// yet. CREATE TABLE … PARTITION OF would take an ACCESS EXCLUSIVE lock on audit_events, queueing
// every audit insert behind any running audit query; a table created on its own, given the range
// as a CHECK constraint (so ATTACH need not scan it) and then attached, takes only SHARE UPDATE
// EXCLUSIVE on audit_events, which inserts and reads do not conflict with.
func (s *Store) createPartitions(ctx context.Context, conn *sql.Conn, weeks []time.Time) error {
	existing, err := auditPartitions(ctx, conn)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, p := range existing {
		have[p.Name] = true
		s.weeks.Store(p.From, struct{}{})
	}
	for _, w := range weeks {
		name := weekPartition(w)
		if have[name] {
			continue
		}
		from, to := w.Format(timeLayout), w.Add(partitionWeek).Format(timeLayout)
		stmts := []string{
			fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (LIKE audit_events INCLUDING DEFAULTS)`, name),
			fmt.Sprintf(`ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s_range`, name, name),
			fmt.Sprintf(`ALTER TABLE %s ADD CONSTRAINT %s_range CHECK ("time" >= '%s' AND "time" < '%s')`, name, name, from, to),
			fmt.Sprintf(`ALTER TABLE audit_events ATTACH PARTITION %s FOR VALUES FROM ('%s') TO ('%s')`, name, from, to),
			fmt.Sprintf(`ALTER TABLE %s DROP CONSTRAINT %s_range`, name, name),
		}
		if err := execAll(ctx, conn, ddlLockTimeout, stmts); err != nil {
			return fmt.Errorf("create audit partition %s: %w", name, err)
		}
		s.weeks.Store(w, struct{}{})
	}
	return nil
}

// detachedPartitions lists the weekly tables beside audit_events that are no partition of it any
// more, oldest first: detached by retention and not yet dropped (also after a crash between the
// two). Partitions are created and attached under the maintenance lock, which the caller holds, so
// a table about to be attached is never among them.
func detachedPartitions(ctx context.Context, conn *sql.Conn) ([]AuditPartition, error) {
	rows, err := conn.QueryContext(ctx, `SELECT c.relname FROM pg_class c
		WHERE c.relkind = 'r' AND c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = 'audit_events'::regclass)
		AND c.relname ~ '^audit_events_w[0-9]{8}$' AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid)`)
	if err != nil {
		return nil, fmt.Errorf("list detached audit partitions: %w", err)
	}
	defer rows.Close()
	var out []AuditPartition
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		m := partitionName.FindStringSubmatch(name)
		from, err := time.Parse("20060102", m[1])
		if err != nil {
			continue
		}
		out = append(out, AuditPartition{Name: name, From: from, To: from.Add(partitionWeek)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].From.Before(out[j].From) })
	return out, rows.Err()
}

// dropDetachedStep drops one index of a detached weekly table (through its constraint when a
// constraint owns it), or the table once it has none; done reports the table dropped. The table is
// no partition: nothing else waits for its locks.
func dropDetachedStep(ctx context.Context, conn *sql.Conn, table string) (done bool, err error) {
	var index, constraint sql.NullString
	err = conn.QueryRowContext(ctx, `SELECT i.indexrelid::regclass::text, con.conname FROM pg_index i
		LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
		WHERE i.indrelid = $1::regclass ORDER BY i.indexrelid LIMIT 1`, table).Scan(&index, &constraint)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if err := execAll(ctx, conn, ddlLockTimeout, []string{"DROP TABLE " + table}); err != nil {
			return false, fmt.Errorf("drop audit partition %s: %w", table, err)
		}
		return true, nil
	case err != nil:
		return false, fmt.Errorf("drop audit partition %s: %w", table, err)
	}
	stmt := "DROP INDEX " + index.String
	if constraint.Valid {
		stmt = fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s", table, pqIdent(constraint.String))
	}
	if err := execAll(ctx, conn, ddlLockTimeout, []string{stmt}); err != nil {
		return false, fmt.Errorf("drop an index of audit partition %s: %w", table, err)
	}
	return false, nil
}

// pqIdent quotes a PostgreSQL identifier.
func pqIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// detachPartition detaches a partition concurrently (inserts and reads of audit_events go on),
// finishing a detach that an earlier process left pending; dropDetachedStep removes its files
// afterwards. It returns the partition's estimated row count.
func detachPartition(ctx context.Context, conn *sql.Conn, name string) (int64, error) {
	var pending bool
	var tuples float64
	err := conn.QueryRowContext(ctx, `SELECT i.inhdetachpending, c.reltuples FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'audit_events'::regclass AND c.relname = $1`, name).Scan(&pending, &tuples)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("drop audit partition %s: %w", name, err)
	}
	detach := fmt.Sprintf("ALTER TABLE audit_events DETACH PARTITION %s CONCURRENTLY", name)
	if pending {
		detach = fmt.Sprintf("ALTER TABLE audit_events DETACH PARTITION %s FINALIZE", name)
	}
	// A concurrent detach waits for every transaction that may still read the partition (a long
	// audit query, `trustgate audit verify`'s snapshot); it holds only SHARE UPDATE EXCLUSIVE on
	// audit_events meanwhile, which inserts and reads do not wait for, so it may wait long.
	if err := execAll(ctx, conn, detachLockTimeout, []string{detach}); err != nil {
		return 0, fmt.Errorf("detach audit partition %s: %w", name, err)
	}
	return max(int64(tuples), 0), nil
}

// Lock timeouts of the partition DDL (see execAll).
const (
	ddlLockTimeout    = "2s"
	detachLockTimeout = "10min"
)

// execAll runs statements on conn, each with a lock timeout: a DDL statement that waits for a
// lock makes every later request for that lock wait behind it, so it gives up instead (the next
// upkeep retries).
func execAll(ctx context.Context, conn *sql.Conn, lockTimeout string, stmts []string) error {
	if _, err := conn.ExecContext(ctx, "SET lock_timeout = '"+lockTimeout+"'"); err != nil {
		return err
	}
	defer func() { _, _ = conn.ExecContext(context.WithoutCancel(ctx), "RESET lock_timeout") }()
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// isMissingPartition reports PostgreSQL's "no partition of relation … found for row".
func isMissingPartition(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23514" && strings.Contains(pgErr.Message, "no partition")
}
