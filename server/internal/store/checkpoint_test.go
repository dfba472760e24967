package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/glebarez/sqlite"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
)

// fastWAL is defaultWALPolicy scaled down so that tests see several cycles in a second.
var fastWAL = walPolicy{
	interval:     20 * time.Millisecond,
	resetFrames:  100,
	restartAfter: 60 * time.Millisecond,
	restartWait:  time.Second,
	sizeLimit:    1 << 20,
}

// The write loops append a batch every batchPause, about 160 KiB of WAL each (32 MiB/s, ten times
// what a server at 3,000 exchanges/s appends), so 640 KiB per fastWAL interval. walBound, what the
// tests accept, leaves room for a dozen intervals of scheduling delays on a busy machine; without
// checkpoints the loops pass it within half a second.
const (
	batchPause = 5 * time.Millisecond
	walBound   = 8 << 20
)

func walSize(t *testing.T, dbPath string) int64 {
	t.Helper()
	fi, err := os.Stat(dbPath + "-wal")
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// auditLoad appends batches of 32 events with distinct actors (so that each batch changes many
// index pages, as exchanges from many pipelines do), one every batchPause, until n batches are in
// or the WAL file passes stopAbove, and returns the largest WAL file size seen after a commit.
func auditLoad(t *testing.T, s *Store, dbPath string, n int, stopAbove int64) int64 {
	t.Helper()
	ctx := context.Background()
	var largest int64
	for b := range n {
		evs := make([]api.AuditEvent, 32)
		for i := range evs {
			evs[i] = api.AuditEvent{Action: api.ActionTokenExchange, Outcome: api.OutcomeGranted,
				Actor: fmt.Sprintf("repo:acme/app-%d:ref:refs/heads/main", (b*32+i)*7919%100000), ConnectionName: "deploy"}
		}
		if err := s.AppendAudit(ctx, evs); err != nil {
			t.Fatalf("AppendAudit: %v", err)
		}
		largest = max(largest, walSize(t, dbPath))
		if largest > stopAbove {
			break
		}
		time.Sleep(batchPause)
	}
	return largest
}

func openWAL(t *testing.T, dbPath string, p walPolicy) *Store {
	t.Helper()
	s, err := Open(context.Background(), "sqlite://"+dbPath, withWALPolicy(p))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Under a steady write loop with readers coming and going, background checkpoints keep the WAL file
// bounded, although no commit checkpoints. Without them (the control) the same loop grows it past
// the bound, which shows the loop is long enough to tell.
func TestWALStaysBoundedUnderWriteLoop(t *testing.T) {
	off := fastWAL
	off.off = true
	tests := []struct {
		name    string
		policy  walPolicy
		bounded bool
	}{
		{"background checkpoints", fastWAL, true},
		{"control: no checkpoints", off, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dbPath := filepath.Join(t.TempDir(), "wal.db")
			s := openWAL(t, dbPath, tt.policy)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() { // short reads, as the API's authentication and listings do
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, _, err := s.ListAudit(context.Background(), connection.AuditFilter{Limit: 5}); err != nil {
						t.Errorf("ListAudit: %v", err)
						return
					}
					time.Sleep(time.Millisecond)
				}
			})
			largest := auditLoad(t, s, dbPath, 300, 2*walBound)
			close(stop)
			wg.Wait()
			t.Logf("largest WAL file: %d KiB", largest>>10)
			if got := largest <= walBound; got != tt.bounded {
				t.Errorf("largest WAL file %d KiB, bound %d KiB: bounded = %v, want %v", largest>>10, walBound>>10, got, tt.bounded)
			}
		})
	}
}

// Readers whose read transactions overlap, each starting before the previous one ends, always hold
// a snapshot older than the newest commit, so no PASSIVE checkpoint can copy everything and the WAL
// never restarts by itself. The RESTART fallback bounds it; with the fallback pushed out of reach
// (the control) the WAL grows past the bound.
func TestWALRestartsWhenOverlappingReadersStarvePassiveCheckpoints(t *testing.T) {
	never := fastWAL
	never.restartAfter = time.Hour
	tests := []struct {
		name    string
		policy  walPolicy
		bounded bool
	}{
		{"restart fallback", fastWAL, true},
		{"control: no fallback", never, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dbPath := filepath.Join(t.TempDir(), "wal.db")
			s := openWAL(t, dbPath, tt.policy)
			readers, err := sql.Open(sqlite.DriverName, sqliteDSN(dbPath, sqliteReader, tt.policy))
			if err != nil {
				t.Fatal(err)
			}
			defer readers.Close()
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for r := range 2 {
				wg.Go(func() {
					time.Sleep(time.Duration(r) * 15 * time.Millisecond) // staggered: one always open
					for {
						select {
						case <-stop:
							return
						default:
						}
						if err := holdSnapshot(readers, 30*time.Millisecond); err != nil {
							t.Errorf("reader: %v", err)
							return
						}
					}
				})
			}
			largest := auditLoad(t, s, dbPath, 300, 2*walBound)
			close(stop)
			wg.Wait()
			t.Logf("largest WAL file: %d KiB", largest>>10)
			if got := largest <= walBound; got != tt.bounded {
				t.Errorf("largest WAL file %d KiB, bound %d KiB: bounded = %v, want %v", largest>>10, walBound>>10, got, tt.bounded)
			}
		})
	}
}

// holdSnapshot opens a read transaction, reads (which fixes its snapshot) and keeps it for d.
func holdSnapshot(db *sql.DB, d time.Duration) error {
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM audit_events").Scan(&n); err != nil {
		return err
	}
	time.Sleep(d)
	return tx.Commit()
}

// A Store that is the file's only user leaves no WAL behind when it closes, and its checkpoints
// stop: the file then holds every committed event on its own.
func TestCloseLeavesNoWAL(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "wal.db")
	s, err := Open(context.Background(), "sqlite://"+dbPath, withWALPolicy(fastWAL))
	if err != nil {
		t.Fatal(err)
	}
	auditLoad(t, s, dbPath, 20, walBound)
	if walSize(t, dbPath) == 0 {
		t.Fatal("no WAL before Close: the test would prove nothing")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := walSize(t, dbPath); n != 0 {
		t.Errorf("WAL file of %d bytes after Close, want none", n)
	}
	s2, err := Open(context.Background(), "sqlite://"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got, _, err := s2.ListAudit(context.Background(), connection.AuditFilter{Limit: MaxLimit}); err != nil || len(got) != MaxLimit {
		t.Errorf("after reopening: %d events, %v; want a full page", len(got), err)
	}
}
