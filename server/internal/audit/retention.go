package audit

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Retention removes audit events older than the retention (CONTRACT.md §3) in the background, in
// short steps with pauses between them, so that the audit inserts of token exchanges never wait
// long behind it. What a step does depends on the database (store.PruneAudit): on PostgreSQL it
// drops a whole weekly partition, or deletes a small batch inside the week that straddles the
// cutoff; on SQLite it deletes a small batch.

// RetentionStore is what retention needs of the store (store.Store implements it).
type RetentionStore interface {
	// PruneAudit removes up to one step's worth of events older than cutoff; more reports that
	// some may remain.
	PruneAudit(ctx context.Context, cutoff time.Time, batch int) (removed int64, more bool, err error)
	// EnsureAuditPartitions prepares the partitions of the coming weeks (PostgreSQL).
	EnsureAuditPartitions(ctx context.Context, now time.Time) error
}

// DefaultRetention is how long events are kept unless configured: 400 days.
const DefaultRetention = 9600 * time.Hour

// Retention is the background retention of the audit log.
type Retention struct {
	Store RetentionStore
	// Keep is how long events are kept (≥ 1 s).
	Keep time.Duration
	// Batch is the most rows one delete step removes (default 500).
	Batch int
	// Pause separates steps: at least this long (default 20 ms; none with a negative value, in
	// tests), and at least PauseFactor times as long as the step took, so that retention uses at
	// most 1/(1+PauseFactor) of the time of one connection to the database, however slow a step
	// is on a busy machine.
	Pause time.Duration
	// PauseFactor is the pause after a step as a multiple of the step's duration (default 9: a
	// tenth of one connection's time; at 3, batched deletes under 1,000 exchanges/s raised their
	// p99 by 3.6–5.5 ms in make bench-audit, BENCHMARKS.md).
	PauseFactor float64
	// Now is the clock (default time.Now); tests move it instead of waiting.
	Now    func() time.Time
	Logger *slog.Logger
}

func (r *Retention) defaults() {
	if r.Batch <= 0 {
		r.Batch = 500
	}
	if r.Pause == 0 {
		r.Pause = 20 * time.Millisecond
	}
	if r.PauseFactor <= 0 {
		r.PauseFactor = 9
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
}

// RunOnce prepares the coming partitions and removes every event older than Keep, step by step.
// It returns how many events it removed (dropped partitions count their estimated rows).
func (r *Retention) RunOnce(ctx context.Context) (int64, error) {
	r.defaults()
	if r.Keep < time.Second {
		return 0, fmt.Errorf("audit retention %s is below the minimum of 1s", r.Keep)
	}
	now := r.Now()
	if err := r.Store.EnsureAuditPartitions(ctx, now); err != nil {
		r.Logger.Warn("audit log: preparing the partitions of the coming weeks failed; retried at the next pass", "error", err)
	}
	cutoff := now.Add(-r.Keep)
	var total int64
	for {
		// The step's duration is measured on the wall clock, not r.Now: it paces real work.
		start := time.Now()
		n, more, err := r.Store.PruneAudit(ctx, cutoff, r.Batch)
		total += n
		if err != nil {
			return total, err
		}
		if !more {
			break
		}
		if r.Pause > 0 {
			pause := max(r.Pause, time.Duration(r.PauseFactor*float64(time.Since(start))))
			select {
			case <-ctx.Done():
				return total, ctx.Err()
			case <-time.After(pause):
			}
		}
	}
	if total > 0 {
		r.Logger.Info("audit log retention removed old events", "removed", total, "older_than", cutoff.UTC().Format(time.RFC3339))
	}
	return total, nil
}

// Run runs RunOnce now and then every interval until ctx ends.
func (r *Retention) Run(ctx context.Context, every time.Duration) {
	r.defaults()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := r.RunOnce(ctx); err != nil && ctx.Err() == nil {
			r.Logger.Warn("audit log retention failed; retried at the next pass", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
