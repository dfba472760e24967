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
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
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

// OnceSink is a Sink that also stores single-use records (CONTRACT.md §1 single_use) in the
// transaction of a batch (store.Store implements it). AppendAuditOnce inserts recs, skipping
// those whose (ConnectionID, TokenKey) is stored already, then calls build with which were new
// (fresh[i] for recs[i]) — the batch's pre-insert hook — and appends the events build returns, all
// in one transaction: a record is stored exactly when its event is.
type OnceSink interface {
	AppendAuditOnce(ctx context.Context, recs []connection.SingleUse, build func(fresh []bool) []api.AuditEvent) error
}

// ErrReplay is RecordOnce's answer when the CI token was exchanged before: the refusal event was
// recorded instead of the granted one.
var ErrReplay = errors.New("audit: the single-use token was exchanged before")

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
	once       *once                                                             // set by RecordOnce
	checkpoint bool                                                              // a checkpoint request: the event is made when its turn comes
	exclusive  func(ctx context.Context, seal func(*api.AuditEvent) error) error // Exclusive's work
	ctx        context.Context                                                   // Exclusive's caller's
	result     chan error                                                        // buffered(1): the writer never blocks on a waiter that gave up
	// Set while a batch is sealed: the event was left out of the batch (done), with this answer.
	done bool
	err  error
}

// once is what RecordOnce adds to an event: its single-use record, the event recorded instead
// when the record exists already, and (set while committing) whether it did.
type once struct {
	rec     connection.SingleUse
	refused api.AuditEvent
	taken   bool
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

// RecordOnce is Record for the granted exchange of a single-use CI token (CONTRACT.md §1
// single_use): rec is stored in the same transaction as ev, unless a record with its
// (ConnectionID, TokenKey) exists already, on any replica; then refused is recorded instead of ev
// (with ev's id and time) and RecordOnce returns ErrReplay. Two RecordOnce of one key in one batch:
// the first queued wins. It fails closed on a sink that cannot store records.
func (w *Writer) RecordOnce(ctx context.Context, ev api.AuditEvent, rec connection.SingleUse, refused api.AuditEvent) error {
	if _, ok := w.sink.(OnceSink); !ok {
		return errors.New("audit: this store cannot record single-use tokens")
	}
	if ev.ID == "" {
		ev.ID = uuid.Must(uuid.NewV7()).String()
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	ev.Time = ev.Time.UTC().Truncate(time.Microsecond)
	storable(&ev)
	refused.ID, refused.Time = ev.ID, ev.Time
	storable(&refused)
	return w.enqueue(ctx, &pending{ev: ev, once: &once{rec: rec, refused: refused}, result: make(chan error, 1)})
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
	var (
		link    link
		members []*pending
	)
	// seal links the batch's events into the chain in the order queued, a single-use grant
	// replaced by its refusal when its token was exchanged before (RecordOnce). With single-use
	// records the store calls it inside the transaction, once it knows which records are new, and
	// may call it again: it starts over each time.
	seal := func() []api.AuditEvent {
		*evs = (*evs)[:0]
		members = members[:0]
		link = w.chain.begin()
		for _, p := range batch {
			p.done, p.err = false, nil
			ev := p.ev
			if p.checkpoint {
				cp, ok, err := w.checkpointEvent(&link)
				if err != nil || !ok { // nothing to cover (ok false) is no error
					p.done, p.err = true, err
					continue
				}
				ev = cp
			} else if p.once != nil && p.once.taken {
				ev = p.once.refused
			}
			if err := link.add(&ev); err != nil {
				p.done, p.err = true, err
				continue
			}
			*evs = append(*evs, ev)
			members = append(members, p)
		}
		return *evs
	}
	var err error
	if hasOnce(batch) {
		err = w.commitOnce(batch, seal)
	} else if seal(); len(members) > 0 {
		err = w.commit(*evs)
	}
	if len(members) > 0 {
		if err == nil {
			w.chain.commit(link)
			w.durable(*evs)
		} else {
			// The commit may have happened anyway (an answer lost on the way): the next batch
			// finds out before it takes the next numbers (settleUncertain).
			w.chain.uncertain = append(w.chain.uncertain[:0], *evs...)
			w.chain.uncertainLink = link
		}
		if w.opts.OnBatch != nil {
			w.opts.OnBatch(len(*evs), err)
		}
	}
	for _, p := range batch {
		switch {
		case p.done:
			p.result <- p.err
		case err == nil && p.once != nil && p.once.taken:
			p.result <- ErrReplay
		default:
			p.result <- err
		}
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

func hasOnce(batch []*pending) bool {
	for _, p := range batch {
		if p.once != nil {
			return true
		}
	}
	return false
}

// commitOnce commits a batch holding single-use records (RecordOnce) through OnceSink: the
// records first, then, in the same transaction, the events seal returns, each replay's refusal in
// place of its grant. A key queued twice in the batch is a replay at its second occurrence without
// asking the store. Only the events change; their order and ids do not.
func (w *Writer) commitOnce(batch []*pending, seal func() []api.AuditEvent) error {
	type key struct{ conn, token string }
	var (
		recs   []connection.SingleUse
		owners []*pending
		seen   = map[key]bool{}
	)
	for _, p := range batch {
		if p.once == nil {
			continue
		}
		k := key{p.once.rec.ConnectionID, p.once.rec.TokenKey}
		if seen[k] {
			p.once.taken = true
			continue
		}
		seen[k] = true
		recs = append(recs, p.once.rec)
		owners = append(owners, p)
	}
	build := func(fresh []bool) []api.AuditEvent {
		for i, p := range owners {
			p.once.taken = !fresh[i]
		}
		return seal()
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.opts.CommitTimeout)
	defer cancel()
	return w.sink.(OnceSink).AppendAuditOnce(ctx, recs, build)
}

func (w *Writer) commit(evs []api.AuditEvent) error {
	ctx, cancel := context.WithTimeout(context.Background(), w.opts.CommitTimeout)
	defer cancel()
	return w.sink.AppendAudit(ctx, evs)
}
