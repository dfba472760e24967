package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// SQLite write-ahead log checkpoints.
//
// A commit in WAL mode appends the changed pages to the WAL file; a checkpoint copies them back
// into the database file and fsyncs it, and once everything is copied the next write transaction
// starts the WAL again from its beginning. By default SQLite checkpoints inside the commit that
// takes the WAL past 1000 pages, so every few seconds one audit commit, and every exchange waiting
// for it, took 25–75 ms longer. Here the automatic checkpoint is off (wal_autocheckpoint(0), on
// every connection of every Store) and a background goroutine does the work instead:
//
//  1. Every interval, a PASSIVE checkpoint on a connection of its own copies what is committed into
//     the database file. PASSIVE takes no lock that writers or readers wait for, so commits go on
//     while it copies and fsyncs.
//  2. Copying alone does not shorten the WAL: it restarts from its beginning only when a write
//     transaction begins with every frame copied, and under load the next audit commit lands
//     while step 1 is still running. So once the WAL holds resetFrames frames, a second PASSIVE
//     checkpoint runs on the store's writer connection, where audit commits queue behind it in Go:
//     it copies only the few frames committed during step 1 (plus one fsync), and the commit after
//     it restarts the WAL. journal_size_limit then cuts the file back if a burst made it larger.
//  3. Neither step can copy frames newer than the snapshot of the oldest open read transaction, so
//     readers that keep overlapping (or another process writing between step 2 and our next
//     commit) can keep the WAL from ever restarting. If it has not restarted for restartAfter, a
//     RESTART checkpoint holds writers back and waits up to restartWait for readers to move on,
//     then restarts the WAL. If a reader holds its snapshot longer than that (a long export, an
//     interactive `sqlite3` session left in a transaction), nothing can shrink the WAL until it
//     ends: the RESTART is retried with a growing pause (up to a minute) and each failure is logged.
//
// Other processes on the same file (`trustgate keys create`, a second Store in tests) open it with
// the same settings and run their own checkpointer while open. That is harmless: checkpoints work
// on the file, not on one connection's commits, so the server's checkpointer copies the other
// process's frames too; concurrent PASSIVE checkpoints do not wait for each other (the second
// reports busy and does nothing); a process that exits without closing leaves only frames that the
// next checkpoint copies; and binaries from before this change still checkpoint inside their own
// commits, which is what SQLite always did. Close ends with a PASSIVE checkpoint only, not
// TRUNCATE: a TRUNCATE from a short-lived `keys` process would hold the running server's audit
// commits back while it copied and waited for the server's readers. When the closing Store is the
// last user of the file, SQLite itself checkpoints on closing the last connection and deletes the
// WAL.

// walPolicy sets how the WAL is checkpointed. defaultWALPolicy is what Open uses.
type walPolicy struct {
	interval     time.Duration // between background PASSIVE checkpoints
	resetFrames  int           // WAL frames from which the writer connection catches up (step 2)
	restartAfter time.Duration // the WAL has not restarted for this long: RESTART (step 3)
	restartWait  time.Duration // the longest a RESTART waits for readers while writers wait for it
	sizeLimit    int64         // journal_size_limit: bytes the WAL file is cut back to on restart
	off          bool          // tests only: no background checkpoints at all
}

var defaultWALPolicy = walPolicy{
	interval:     500 * time.Millisecond,
	resetFrames:  1000, // SQLite's own autocheckpoint threshold, ≈ 4 MiB with 4 KiB pages
	restartAfter: 5 * time.Second,
	restartWait:  time.Second,
	sizeLimit:    16 << 20,
}

// walState is the answer of PRAGMA wal_checkpoint.
type walState struct {
	busy         bool // the checkpoint could not run, or (RESTART) could not wait out the readers
	frames       int  // frames in the WAL since it last restarted
	checkpointed int  // of those, frames copied into the database file
}

func walCheckpoint(ctx context.Context, db *sql.DB, mode string) (walState, error) {
	var busy, frames, done int
	if err := db.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &frames, &done); err != nil {
		return walState{}, fmt.Errorf("sqlite wal_checkpoint(%s): %w", mode, err)
	}
	return walState{busy: busy != 0, frames: frames, checkpointed: done}, nil
}

// checkpointer runs the background checkpoints of one SQLite Store.
type checkpointer struct {
	conn   *sql.DB // its own connection (steps 1 and 3)
	writer *sql.DB // the store's write pool (step 2)
	p      walPolicy
	log    *slog.Logger

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once

	// Owned by the loop goroutine.
	lastFrames int       // frames seen by the previous tick
	growing    time.Time // since when the WAL has held ≥ resetFrames without restarting (zero: it has restarted)
	pause      time.Duration
	nextTry    time.Time // no RESTART before this, after one failed
}

func startCheckpointer(conn, writer *sql.DB, p walPolicy, log *slog.Logger) *checkpointer {
	c := &checkpointer{conn: conn, writer: writer, p: p, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	if p.off {
		close(c.done)
		return c
	}
	go c.run()
	return c
}

func (c *checkpointer) run() {
	defer close(c.done)
	t := time.NewTicker(c.p.interval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case now := <-t.C:
			c.tick(now)
		}
	}
}

func (c *checkpointer) tick(now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := walCheckpoint(ctx, c.conn, "PASSIVE")
	if err != nil {
		c.log.Warn("background WAL checkpoint failed", "err", err)
		return
	}
	// The WAL restarted since the last tick (it holds fewer frames), or is still short.
	restarted := st.frames < c.lastFrames || st.frames < c.p.resetFrames
	c.lastFrames = st.frames
	if restarted {
		c.growing, c.pause = time.Time{}, 0
	}
	if st.frames < c.p.resetFrames {
		return
	}
	if _, err := walCheckpoint(ctx, c.writer, "PASSIVE"); err != nil {
		c.log.Warn("WAL checkpoint on the writer connection failed", "err", err)
		return
	}
	if c.growing.IsZero() {
		c.growing = now
	}
	if now.Sub(c.growing) < c.p.restartAfter || now.Before(c.nextTry) {
		return
	}
	st, err = walCheckpoint(ctx, c.conn, "RESTART")
	if err == nil && !st.busy {
		c.log.Info("SQLite WAL restarted by a RESTART checkpoint: readers had kept passive checkpoints from finishing",
			"frames", st.frames, "growing_for", now.Sub(c.growing).Round(time.Millisecond))
		c.growing, c.pause, c.lastFrames = time.Time{}, 0, 0
		return
	}
	c.pause = min(max(2*c.pause, c.p.restartAfter), time.Minute)
	c.nextTry = now.Add(c.pause)
	c.log.Warn("SQLite WAL cannot restart: a reader has kept an old snapshot; the WAL file grows until it ends",
		"frames", st.frames, "checkpointed", st.checkpointed, "growing_for", now.Sub(c.growing).Round(time.Millisecond),
		"retry_in", c.pause, "err", err)
}

// close stops the loop, copies what is committed into the database file (PASSIVE: it never holds
// back another process's commits) and closes the checkpoint connection.
func (c *checkpointer) close() error {
	var err error
	c.stopOnce.Do(func() {
		close(c.stop)
		<-c.done
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, cerr := walCheckpoint(ctx, c.conn, "PASSIVE"); cerr != nil {
			c.log.Warn("final WAL checkpoint failed", "err", cerr)
		}
		err = c.conn.Close()
	})
	return err
}

// withWALPolicy replaces defaultWALPolicy (tests).
func withWALPolicy(p walPolicy) Option {
	return func(o *options) { o.wal = p }
}
