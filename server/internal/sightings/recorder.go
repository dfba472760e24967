// Package sightings keeps the evidence of who uses a workload connection (CONTRACT.md §3, workload
// sightings) and answers what a proposed configuration would change for them (the impact report).
// It knows nothing of HTTP or of the database: the store implements Sink, and the admin use cases
// read stored sightings and hand them to Impact.
//
// # Recording
//
// Every exchange whose CI token passed the signature and time checks counts, granted or refused by
// the connection's rules (Counts): a forged, expired or unsigned token never does, so nobody can
// write evidence with claims they made up. Recording must cost an exchange almost nothing and must
// never fail or delay it, so Saw only updates an in-memory aggregate per (connection, identity,
// outcome) under a mutex: the first and last time seen, the number of exchanges and the latest
// token's claims, kept as the verifier decoded them (a reference: nothing changes a verified
// token's claims) and encoded to JSON once per workload at the flush rather than once per
// exchange (encoding into a per-workload buffer in Saw measured no cheaper). A background loop
// (Run) flushes the aggregate to the database with one upsert statement per flush that adds this
// replica's counts to what other replicas wrote, and at shutdown flushes once more. What this
// costs an exchange is measured in BENCHMARKS.md (make bench runs servers with and without). The aggregate is bounded (Options.MaxPending keys): when it is full, an
// exchange of a workload not yet in it is dropped and counted (Dropped) rather than blocking. A
// failed flush puts its batch back (within the same bound), so a short database outage loses
// nothing.
//
// What is recorded: the identity is the identity claim's value, made storable (invalid UTF-8 and
// NUL become U+FFFD, cut at MaxIdentityBytes). A token whose identity claim is unusable (missing,
// empty, an object...) was refused on the identity check and names no workload, so it is not
// recorded at all; the impact report says so when a proposal changes the identity claim. The
// claims kept are the latest token's without iat, nbf, exp and jti (AppendStoredClaims): they change
// with every token and say nothing about who the workload is.
//
// # Retention
//
// Prune, run by the same loop every Options.PruneEvery and once at start, removes sightings last
// seen before now − Options.Retention, sightings of connections that no longer exist, and beyond
// Options.MaxPerConnection per connection the least recently seen. The clock is Options.Now, so
// tests move time instead of waiting.
package sightings

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/jwtverify"
)

// Defaults and limits (CONTRACT.md §2).
const (
	DefaultRetention        = 720 * time.Hour
	DefaultMaxPerConnection = 10_000
	// DefaultMaxPending bounds the keys of one replica's aggregate between flushes. Each holds
	// one token's decoded claims (their strings share the token's one payload copy), at most
	// 16 KiB of token (the largest accepted) and typically 1–3 KiB: 64 MiB at worst, a few MiB in
	// practice, and a few thousand small maps for the collector to mark.
	DefaultMaxPending = 4096
	// DefaultFlushEvery: the evidence is read at review time, minutes or days later, so seconds of
	// delay cost nothing, while a flush costs ~20-30 µs of CPU per workload row on SQLite whatever
	// the row's count: the longer the interval, the more exchanges share a row. At 10 s, make
	// bench's saturation (2,000 workloads, 7,000-8,000 exchanges/s on its 2 cores) pays ~1 µs per
	// exchange for the flush; at 1,700 exchanges/s, ~4 µs. A crash loses at most this much of the
	// evidence (the audit log keeps every exchange); a shutdown loses nothing.
	DefaultFlushEvery = 10 * time.Second
	DefaultPruneEvery = 10 * time.Minute
	// MaxIdentityBytes caps a stored identity (it is part of a unique index).
	MaxIdentityBytes = 512
)

// Seen is one aggregate of exchanges, as a flush hands it to the Sink.
type Seen struct {
	ConnectionID string
	Identity     string
	Outcome      string // api.OutcomeGranted or api.OutcomeDenied
	FirstSeen    time.Time
	LastSeen     time.Time
	Exchanges    int64
	// Claims is the JSON object of the latest token's claims without iat, nbf, exp and jti
	// (AppendStoredClaims); empty means {}.
	Claims json.RawMessage
}

// Sink stores sightings (*store.Store implements it).
type Sink interface {
	// UpsertSightings adds a batch to the stored sightings atomically: a new (connection,
	// identity, outcome) is inserted, an existing one takes the earlier first_seen, the later
	// last_seen with its claims, and the sum of the exchanges.
	UpsertSightings(ctx context.Context, batch []Seen) error
	// PruneSightings removes sightings last seen before `before`, those of connections that no
	// longer exist, and beyond perConnection per connection the least recently seen. It returns
	// how many it removed.
	PruneSightings(ctx context.Context, before time.Time, perConnection int) (int64, error)
}

// Options tune a Recorder. Zero values take the defaults.
type Options struct {
	Retention        time.Duration
	MaxPerConnection int
	MaxPending       int
	FlushEvery       time.Duration
	PruneEvery       time.Duration
	// Off records nothing (`trustgate serve --sightings=false`): Saw returns at once, while Run
	// still prunes what other replicas record and what was recorded before.
	Off bool
	// Now is the clock of first and last seen times and of retention (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.MaxPerConnection <= 0 {
		o.MaxPerConnection = DefaultMaxPerConnection
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = DefaultFlushEvery
	}
	if o.PruneEvery <= 0 {
		o.PruneEvery = DefaultPruneEvery
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

type key struct {
	connectionID string
	identity     string
	granted      bool
}

type aggregate struct {
	first, last time.Time
	exchanges   int64
	// latest is the latest token's claims as the verifier decoded them (read only: nothing
	// changes a verified token's claims). Saw keeps the reference and Flush encodes it, once per
	// workload and flush instead of once per exchange.
	latest map[string]any
}

// Recorder aggregates sightings in memory and flushes them to a Sink. It is safe for concurrent
// use, and a nil *Recorder records nothing.
type Recorder struct {
	sink Sink
	opts Options

	mu      sync.Mutex
	pending map[key]*aggregate
	// kick asks Run for an early flush when the aggregate is half full, so that a burst of new
	// workloads is flushed before it has to be dropped.
	kick chan struct{}

	flushMu  sync.Mutex // one flush at a time
	dropped  atomic.Int64
	reported int64 // dropped already logged; guarded by flushMu
}

// NewRecorder returns a recorder that flushes to sink. Call Run to flush and prune in the
// background.
func NewRecorder(sink Sink, opts Options) *Recorder {
	opts = opts.withDefaults()
	return &Recorder{sink: sink, opts: opts, pending: make(map[key]*aggregate), kick: make(chan struct{}, 1)}
}

// Retention is how long sightings are kept.
func (r *Recorder) Retention() time.Duration { return r.opts.Retention }

// Off reports whether this recorder records nothing (Options.Off).
func (r *Recorder) Off() bool { return r.opts.Off }

// Dropped is how many exchanges were not recorded because the aggregate was full.
func (r *Recorder) Dropped() int64 { return r.dropped.Load() }

// Counts reports whether a verification result is a sighting: the signature verified, every time
// check passed, and the identity claim named a workload. The verifier's first failure is a
// condition (or identity) check only when every cryptographic and time check before it passed.
func Counts(res *jwtverify.Result) bool {
	return res != nil && res.Verified && res.Subject != "" && (res.OK || res.FailedKind == jwtverify.KindCondition)
}

// Saw records one exchange through the connection whose verification gave res, if it counts
// (Counts). It never blocks on the database and never fails.
func (r *Recorder) Saw(connectionID string, res *jwtverify.Result) {
	if r == nil || r.opts.Off || !Counts(res) {
		return
	}
	k := key{connectionID: connectionID, identity: StorableIdentity(res.Subject), granted: res.OK}
	now := r.opts.Now()
	r.mu.Lock()
	a := r.pending[k]
	if a == nil {
		if len(r.pending) >= r.opts.MaxPending {
			r.mu.Unlock()
			r.dropped.Add(1)
			return
		}
		a = &aggregate{first: now}
		r.pending[k] = a
		if len(r.pending) == r.opts.MaxPending/2 {
			select {
			case r.kick <- struct{}{}:
			default:
			}
		}
	}
	if now.After(a.last) {
		a.last = now
	}
	a.exchanges++
	a.latest = res.Claims
	r.mu.Unlock()
}

// StorableIdentity makes an identity storable by every supported database: invalid UTF-8 and NUL
// (which PostgreSQL refuses in text) become U+FFFD, and it is cut at MaxIdentityBytes on a rune
// boundary. Identities that are already storable (nearly all) are returned as they are.
func StorableIdentity(s string) string {
	if len(s) <= MaxIdentityBytes && utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
	if len(s) <= MaxIdentityBytes {
		return s
	}
	cut := MaxIdentityBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// droppedClaims are the claims a sighting does not keep: they change with every token.
var droppedClaims = []string{"iat", "nbf", "exp", "jti"}

// DecodeClaims decodes stored claims (the JSON of AppendStoredClaims) the way the verifier decodes a
// token's, so that the impact report compares exactly what an exchange compared.
func DecodeClaims(s string) (map[string]any, error) { return jwtverify.DecodeClaims(s) }

// DecodeClaimsKeeping is DecodeClaims keeping only the top-level claims in keep; nil keeps all.
func DecodeClaimsKeeping(s string, keep map[string]bool) (map[string]any, error) {
	if keep == nil {
		return jwtverify.DecodeClaims(s)
	}
	return jwtverify.DecodeClaimsKeeping(s, keep)
}

// Flush writes everything aggregated so far in one upsert. On failure the batch is put back (as
// far as the bound allows) for the next flush, and the error returned.
func (r *Recorder) Flush(ctx context.Context) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	if d := r.dropped.Load(); d > r.reported {
		r.opts.Logger.Warn("workload sightings: the in-memory aggregate was full; some exchanges were not recorded as sightings",
			"not_recorded", d-r.reported, "max_pending", r.opts.MaxPending)
		r.reported = d
	}
	r.mu.Lock()
	batch := r.pending
	if len(batch) == 0 {
		r.mu.Unlock()
		return nil
	}
	r.pending = make(map[key]*aggregate, len(batch))
	r.mu.Unlock()

	rows := make([]Seen, 0, len(batch))
	for k, a := range batch {
		outcome := api.OutcomeDenied
		if k.granted {
			outcome = api.OutcomeGranted
		}
		rows = append(rows, Seen{ConnectionID: k.connectionID, Identity: k.identity, Outcome: outcome,
			FirstSeen: a.first, LastSeen: a.last, Exchanges: a.exchanges, Claims: AppendStoredClaims(nil, a.latest)})
	}
	// One order for every replica: concurrent upserts of overlapping rows then lock them in the
	// same order and cannot deadlock (PostgreSQL).
	slices.SortFunc(rows, func(a, b Seen) int {
		if c := strings.Compare(a.ConnectionID, b.ConnectionID); c != 0 {
			return c
		}
		if c := strings.Compare(a.Identity, b.Identity); c != 0 {
			return c
		}
		return strings.Compare(a.Outcome, b.Outcome)
	})
	if err := r.sink.UpsertSightings(ctx, rows); err != nil {
		r.putBack(batch)
		return err
	}
	return nil
}

// putBack merges a batch that could not be written into what was aggregated since.
func (r *Recorder) putBack(batch map[key]*aggregate) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, old := range batch {
		cur := r.pending[k]
		if cur == nil {
			if len(r.pending) >= r.opts.MaxPending {
				r.dropped.Add(old.exchanges)
				continue
			}
			r.pending[k] = old
			continue
		}
		// cur is newer: it keeps its claims and last time.
		if old.first.Before(cur.first) {
			cur.first = old.first
		}
		if old.last.After(cur.last) {
			cur.last = old.last
		}
		cur.exchanges += old.exchanges
	}
}

// Prune enforces retention and the per-connection cap (see Sink.PruneSightings) as of the
// recorder's clock.
func (r *Recorder) Prune(ctx context.Context) (int64, error) {
	return r.sink.PruneSightings(ctx, r.opts.Now().Add(-r.opts.Retention), r.opts.MaxPerConnection)
}

// flushTimeout bounds one flush or prune in the background, so a stuck database cannot pile up
// work; the batch of a flush that times out is put back.
const flushTimeout = 30 * time.Second

// Run flushes every Options.FlushEvery (and early when the aggregate is half full) and prunes at start and every Options.PruneEvery until ctx
// ends, then flushes one last time (shutdown: the exchanges already served are not lost).
func (r *Recorder) Run(ctx context.Context) {
	flush := time.NewTicker(r.opts.FlushEvery)
	defer flush.Stop()
	prune := time.NewTicker(r.opts.PruneEvery)
	defer prune.Stop()
	r.background(ctx, "prune", func(ctx context.Context) error { _, err := r.Prune(ctx); return err })
	for {
		select {
		case <-ctx.Done():
			r.background(context.Background(), "final flush", r.Flush)
			return
		case <-flush.C:
			r.background(ctx, "flush", r.Flush)
		case <-r.kick:
			r.background(ctx, "flush", r.Flush)
		case <-prune.C:
			r.background(ctx, "prune", func(ctx context.Context) error { _, err := r.Prune(ctx); return err })
		}
	}
}

func (r *Recorder) background(ctx context.Context, what string, f func(context.Context) error) {
	ctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	if err := f(ctx); err != nil && ctx.Err() == nil {
		r.opts.Logger.Warn("workload sightings: "+what+" failed; will retry", "error", err)
	}
}

// Filter selects a page of one connection's sightings, newest first (by last seen).
type Filter struct {
	ConnectionID string
	// Since keeps the sightings last seen at or after it.
	Since time.Time
	// Limit is the page size: the store's default (100) when ≤ 0, at most 500.
	Limit int
	// Cursor is the next cursor of the previous page ("" for the first page).
	Cursor string
}
