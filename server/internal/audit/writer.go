// Package audit records audit events durably without capping throughput: a group-commit writer.
// It also defines Meta, the one description of a request that every audit event carries.
//
// The boundary: the writer stores through Sink, which it declares and *store.Store implements;
// the use cases (admin, broker) record through interfaces of their own that *Writer implements.
//
// CONTRACT.md §3 requires a granted exchange's audit event to be durable before the token is returned.
// Committing each event in its own transaction would bound exchanges per second by the database's
// commit latency (an fsync each). Instead, Record enqueues the event and blocks; one background
// goroutine takes everything queued so far, commits it in a single AppendAudit, and wakes every
// waiter with the result. Under load, batches grow by themselves; unloaded, an event is committed
// at once. A failed commit is returned to every waiter of that batch, so callers fail closed.
//
// The writer is also where the hash chain of CONTRACT.md §3 is made (chain.go): it numbers each
// batch's events in its chain and links their hashes just before committing, because it is the
// one place that knows the commit order. Durable batches go on to the stream (stream.go);
// retention (retention.go) and verification (verify.go) live here too.
package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// Sink stores a batch of events durably and atomically (store.Store implements it).
// AuditEventStored tells whether an event is stored: the writer asks it after a commit that
// failed, because a commit whose answer was lost may still have happened.
type Sink interface {
	AppendAudit(ctx context.Context, evs []api.AuditEvent) error
	AuditEventStored(ctx context.Context, id, chain string, seq int64) (bool, error)
}

// ErrClosed is returned by Record after Close.
var ErrClosed = errors.New("audit writer closed")

// Options tune a Writer. Zero values take the defaults.
type Options struct {
	// MaxBatch is the most events committed in one AppendAudit (default 256).
	MaxBatch int
	// CommitTimeout bounds one AppendAudit (default 10 s).
	CommitTimeout time.Duration
	// OnBatch, if set, is called after each commit with the batch size and its error (metrics).
	OnBatch func(size int, err error)
	// CommitDelay and CommitSiblings are PostgreSQL's commit_delay and commit_siblings for the
	// audit log: when at least CommitSiblings events (default 4) were already waiting as a batch
	// formed (the server is busy), the writer waits up to CommitDelay for more before committing.
	// Zero or negative CommitDelay never waits. Worth it where a commit costs this process about
	// the same CPU whatever its size (SQLite: the fsync and the WAL page writes happen here), so
	// that bigger batches make each durable event cheaper; an idle or lightly loaded server,
	// whose batches are smaller, never waits.
	CommitDelay    time.Duration
	CommitSiblings int

	// Chain names this writer's hash chain (default: a new UUIDv7). One chain per process.
	Chain string
	// Signer signs checkpoints (the server's key ring); nil writes none.
	Signer Signer
	// CheckpointEvery is how often a checkpoint is written while events keep coming (default
	// 10 minutes; negative: only at Close). Close always writes one when events came after the last.
	CheckpointEvery time.Duration
	// OnDurable, if set, receives every committed batch, in commit order, on the writer's
	// goroutine: it must not block (Stream.Enqueue does not). The slice is the callee's.
	OnDurable func(evs []api.AuditEvent)
	// Now is the clock of checkpoint events (default time.Now).
	Now func() time.Time
}

// Writer is a group-commit audit writer. It is safe for concurrent use.
type Writer struct {
	sink Sink
	opts Options

	mu     sync.RWMutex // guards closed against sends on queue
	closed bool
	queue  chan *pending
	done   chan struct{}
	stopCk chan struct{}

	chain chainState // only the run goroutine touches it
}

type pending struct {
	ev         api.AuditEvent
	checkpoint bool                                                              // a checkpoint request: the event is made when its turn comes
	exclusive  func(ctx context.Context, seal func(*api.AuditEvent) error) error // Exclusive's work
	ctx        context.Context                                                   // Exclusive's caller's
	result     chan error                                                        // buffered(1): the writer never blocks on a waiter that gave up
}

// NewWriter starts a writer on sink. Call Close to flush and stop it.
func NewWriter(sink Sink, opts Options) *Writer {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.CommitTimeout <= 0 {
		opts.CommitTimeout = 10 * time.Second
	}
	if opts.CommitSiblings <= 0 {
		opts.CommitSiblings = 4
	}
	if opts.Chain == "" {
		opts.Chain = uuid.Must(uuid.NewV7()).String()
	}
	if opts.CheckpointEvery == 0 {
		opts.CheckpointEvery = 10 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	w := &Writer{
		sink:   sink,
		opts:   opts,
		queue:  make(chan *pending, 4*opts.MaxBatch),
		done:   make(chan struct{}),
		stopCk: make(chan struct{}),
		chain:  chainState{id: opts.Chain},
	}
	go w.run()
	if opts.Signer != nil && opts.CheckpointEvery > 0 {
		go w.checkpoints(opts.CheckpointEvery)
	}
	return w
}

// Chain is the name of this writer's hash chain.
func (w *Writer) Chain() string { return w.opts.Chain }

// Record fills in an empty ID (a new UUIDv7: time-ordered, so the database's unique index on ids
// grows at one end) and Time (now, UTC), then blocks until the batch holding
// the event is committed, and returns the commit's error. If ctx ends first, Record returns
// ctx.Err(); the event may still be committed afterwards (a caller that gave up must not act as if
// it was recorded, and audit trails tolerate an extra record better than a missing one).
func (w *Writer) Record(ctx context.Context, ev api.AuditEvent) error {
	if ev.ID == "" {
		ev.ID = uuid.Must(uuid.NewV7()).String()
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	ev.Time = ev.Time.UTC().Truncate(time.Microsecond)
	storable(&ev)
	return w.enqueue(ctx, &pending{ev: ev, result: make(chan error, 1)})
}

// Checkpoint writes a signed audit.checkpoint event covering every event of the chain so far
// (chain.go), unless the chain has had no event since its last checkpoint.
func (w *Writer) Checkpoint(ctx context.Context) error {
	if w.opts.Signer == nil {
		return errors.New("audit writer has no signer for checkpoints")
	}
	return w.enqueue(ctx, &pending{checkpoint: true, result: make(chan error, 1)})
}

// Exclusive runs fn on the writer's goroutine, between two batches, with seal, which links an
// event into the chain (its id, time and content must be final). fn is meant to insert the sealed
// events in a transaction of its own and commit it (a connection change and its audit event, see
// store.WithAuditSeal); when fn returns nil they are taken as committed. While fn runs no batch
// is committed, so the chain's order stays its commit order; fn's context is ctx bounded by the
// commit timeout.
func (w *Writer) Exclusive(ctx context.Context, fn func(ctx context.Context, seal func(*api.AuditEvent) error) error) error {
	return w.enqueue(ctx, &pending{exclusive: fn, ctx: ctx, result: make(chan error, 1)})
}

func (w *Writer) enqueue(ctx context.Context, p *pending) error {
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return ErrClosed
	}
	select {
	case w.queue <- p:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		return ctx.Err()
	}

	select {
	case err := <-p.result:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Caps on text an event carries. Several fields hold what a caller chose (the connection name of an
// unauthenticated token request, a CI token's subject, a refused request's reason), so they are
// bounded here rather than trusted to every producer.
const (
	maxFieldText  = 512
	maxReasonText = 4096
)

// storable makes an event's text storable by every supported database: invalid UTF-8 and NUL
// bytes (which PostgreSQL refuses in text) become U+FFFD, and long values are cut. Events are
// committed in shared batches, so one unstorable event would otherwise fail every exchange batched
// with it. Detail is stored as JSON, whose encoding already escapes both.
func storable(ev *api.AuditEvent) {
	for _, f := range []*string{&ev.Actor, &ev.Action, &ev.ConnectionID, &ev.ConnectionName, &ev.Outcome, &ev.RequestID, &ev.RemoteAddr} {
		*f = cleanText(*f, maxFieldText)
	}
	ev.Reason = cleanText(ev.Reason, maxReasonText)
}

func cleanText(s string, limit int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// Close stops accepting events, commits everything already queued followed by a last checkpoint
// (with a signer), and returns when done. It is safe to call more than once.
func (w *Writer) Close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.stopCk)
		if w.opts.Signer != nil {
			w.queue <- &pending{checkpoint: true, result: make(chan error, 1)}
		}
		close(w.queue)
	}
	w.mu.Unlock()
	<-w.done
}

// checkpoints writes a checkpoint every interval until Close.
func (w *Writer) checkpoints(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-w.stopCk:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), w.opts.CommitTimeout)
			_ = w.Checkpoint(ctx) // a failed checkpoint is retried at the next tick
			cancel()
		}
	}
}

func (w *Writer) run() {
	defer close(w.done)
	batch := make([]*pending, 0, w.opts.MaxBatch)
	evs := make([]api.AuditEvent, 0, w.opts.MaxBatch)
	delay := time.NewTimer(time.Hour)
	delay.Stop()
	for first := range w.queue {
		batch = append(batch[:0], first)
		// Take whatever else is already waiting, without waiting for more: the batch forms while
		// the previous commit was in flight.
	drain:
		for len(batch) < w.opts.MaxBatch {
			select {
			case p, ok := <-w.queue:
				if !ok {
					break drain
				}
				batch = append(batch, p)
			default:
				break drain
			}
		}
		if w.opts.CommitDelay > 0 && len(batch) >= w.opts.CommitSiblings {
			delay.Reset(w.opts.CommitDelay)
		gather:
			for len(batch) < w.opts.MaxBatch {
				select {
				case p, ok := <-w.queue:
					if !ok {
						break gather
					}
					batch = append(batch, p)
				case <-delay.C:
					break gather
				}
			}
			delay.Stop()
		}
		// Exclusive work runs alone, in its place in the queue: what came before it is
		// committed first.
		start := 0
		for i, p := range batch {
			if p.exclusive == nil {
				continue
			}
			if i > start {
				w.commitBatch(batch[start:i], &evs)
			}
			w.runExclusive(p)
			start = i + 1
		}
		if start < len(batch) {
			w.commitBatch(batch[start:], &evs)
		}
	}
}

func (w *Writer) runExclusive(p *pending) {
	if err := w.settleUncertain(); err != nil {
		p.result <- err
		return
	}
	l := w.chain.begin()
	var sealed []api.AuditEvent
	ctx, cancel := context.WithTimeout(p.ctx, w.opts.CommitTimeout)
	defer cancel()
	err := p.exclusive(ctx, func(ev *api.AuditEvent) error {
		if err := l.add(ev); err != nil {
			return err
		}
		sealed = append(sealed, *ev)
		return nil
	})
	switch {
	case err == nil:
		w.chain.commit(l)
		w.durable(sealed)
	case len(sealed) > 0: // perhaps committed after all: settled before the next batch
		w.chain.uncertain, w.chain.uncertainLink = sealed, l
	}
	if w.opts.OnBatch != nil && len(sealed) > 0 {
		w.opts.OnBatch(len(sealed), err)
	}
	p.result <- err
}

// commitBatch links the batch into the chain, commits it and answers its waiters. A waiter whose
// event cannot be hashed (or whose checkpoint cannot be signed) gets that error alone.
func (w *Writer) commitBatch(batch []*pending, evs *[]api.AuditEvent) {
	if err := w.settleUncertain(); err != nil {
		for _, p := range batch {
			p.result <- err
		}
		return
	}
	*evs = (*evs)[:0]
	link := w.chain.begin()
	var members []*pending
	for _, p := range batch {
		if p.checkpoint {
			ev, ok, err := w.checkpointEvent(&link)
			if err != nil || !ok {
				p.result <- err
				continue
			}
			p.ev = ev
		}
		if err := link.add(&p.ev); err != nil {
			p.result <- err
			continue
		}
		*evs = append(*evs, p.ev)
		members = append(members, p)
	}
	if len(members) == 0 {
		return
	}
	err := w.commit(*evs)
	if err == nil {
		w.chain.commit(link)
		w.durable(*evs)
	} else {
		// The commit may have happened anyway (an answer lost on the way): the next batch finds
		// out before it takes the next numbers (settleUncertain).
		w.chain.uncertain = append(w.chain.uncertain[:0], *evs...)
		w.chain.uncertainLink = link
	}
	if w.opts.OnBatch != nil {
		w.opts.OnBatch(len(*evs), err)
	}
	for _, p := range members {
		p.result <- err
	}
}

// settleUncertain resolves a batch whose commit failed: if it is stored after all, the chain
// continues after it (and it is streamed); if not, its numbers are used again. Until the store
// can say, nothing more is committed, so that no number of the chain is ever used twice.
func (w *Writer) settleUncertain() error {
	if len(w.chain.uncertain) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.opts.CommitTimeout)
	defer cancel()
	first := w.chain.uncertain[0]
	stored, err := w.sink.AuditEventStored(ctx, first.ID, first.Chain, first.Seq)
	if err != nil {
		return fmt.Errorf("audit log unavailable (checking whether the previous batch was stored): %w", err)
	}
	if stored {
		w.chain.commit(w.chain.uncertainLink)
		w.durable(w.chain.uncertain)
	}
	w.chain.uncertain = w.chain.uncertain[:0]
	return nil
}

func (w *Writer) durable(evs []api.AuditEvent) {
	if w.opts.OnDurable != nil {
		w.opts.OnDurable(slices.Clone(evs))
	}
}

func (w *Writer) commit(evs []api.AuditEvent) error {
	ctx, cancel := context.WithTimeout(context.Background(), w.opts.CommitTimeout)
	defer cancel()
	return w.sink.AppendAudit(ctx, evs)
}
