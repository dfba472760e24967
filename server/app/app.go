// Package app wires a Trustgate server together from its configuration: store, signing keys,
// connection catalog, revoked tokens, audit writer, use cases and router, and runs it with
// graceful shutdown. Three pollers keep a replica in step with the others: the connection
// catalog, the signing-key ring and the revocation list, each reading one counter per poll.
//
// It is the one place where the concrete types meet the interfaces the packages declare for what
// they need: *store.Store is admin.Storer, admin.ActivityReader, admin.SightingStorer,
// broker.Source, principal.Storer, session.Storer, sightings.Sink, audit.Sink, audit.OnceSink,
// audit.StreamSource, audit.RetentionStore and httpapi.Pinger; *audit.Writer is admin.Recorder and
// broker.Recorder. Two adapters translate the store's rows into the types of the packages that use
// them and put their audit events in the hash chain: keyStore (signing.KeyStore) and
// revocationStore (broker.RevocationStore); chainedStore does the latter for the admin use cases.
// The assertions below keep all of that true at compile time.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/admin"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/audit"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/broker"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/console"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/console/session"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/httpapi"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/jwtverify"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/principal"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/sightings"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/signing"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store"
)

var (
	_ admin.Storer         = (*store.Store)(nil)
	_ broker.Source        = (*store.Store)(nil)
	_ principal.Storer     = (*store.Store)(nil)
	_ audit.Sink           = (*store.Store)(nil)
	_ audit.OnceSink       = (*store.Store)(nil)
	_ audit.StreamSource   = (*store.Store)(nil)
	_ audit.RetentionStore = (*store.Store)(nil)
	_ audit.Signer         = (*signing.KeyRing)(nil)
	_ httpapi.Pinger       = (*store.Store)(nil)
	_ admin.Recorder       = (*audit.Writer)(nil)
	_ broker.Recorder      = (*audit.Writer)(nil)

	_ signing.KeyStore       = (*keyStore)(nil)
	_ broker.RevocationStore = (*revocationStore)(nil)
	_ sightings.Sink         = (*store.Store)(nil)
	_ admin.SightingStorer   = (*store.Store)(nil)
	_ admin.ActivityReader   = (*store.Store)(nil)
	_ session.Storer         = (*store.Store)(nil)
)

// Config is the server's configuration after flags and environment are merged.
type Config struct {
	// PublicURL is the issuer and audience of access tokens.
	PublicURL string
	// Audience is the default audience of the github and gitlab presets (default PublicURL).
	Audience string
	// KEK is the 32-byte key-encryption key for signing keys at rest.
	KEK []byte
	// KEKPrevious, when set, also opens signing keys (the rolling restart after `trustgate kek
	// rotate`); keys it opens are re-sealed under KEK.
	KEKPrevious []byte
	// SigningKeyRotation is how long a signing key signs before the next takes over (default
	// 168h; CONTRACT.md §2).
	SigningKeyRotation time.Duration
	AllowInsecureJWKS  bool
	// CatalogPoll is how often a replica looks for changes made through other replicas: the
	// connection catalog, the signing keys and the revoked tokens. It bounds how late a
	// deactivation, a withdrawn key or a revocation reaches this replica (CONTRACT.md §2–§4 promise
	// 1 second).
	CatalogPoll time.Duration
	// Rate limits of the token endpoint, requests per second; 0 disables.
	RatePerConnection float64
	RatePerClient     float64
	RateBurst         int
	// TrustedProxies are reverse proxies (addresses or CIDRs) whose X-Forwarded-For names the
	// client; empty trusts none (the client address is the TCP peer).
	TrustedProxies []string
	Logger         *slog.Logger
	// Now is the server's clock: CI-token time checks, the JWKS cache's ages and refresh
	// cool-down, access-token lifetimes, the times of changes such as a deactivation (default
	// time.Now). Tests move it instead of waiting.
	Now func() time.Time
	// SingleUseCleanup is how often expired single-use token records are removed (default 1
	// minute; tests shorten it).
	SingleUseCleanup time.Duration

	// SightingsRetention is how long workload sightings are kept (default 720h, CONTRACT.md §2).
	SightingsRetention time.Duration
	// SightingsOff records no workload sightings on this replica (retention still runs); impact
	// reports it answers then say so.
	SightingsOff bool

	// AuditRetention is how long audit events are kept (default 9600h; at least 1 s).
	AuditRetention time.Duration
	// AuditLog streams every durable audit event to this file as JSON lines ("-": stdout; "":
	// no stream). See audit.Stream.
	AuditLog string
	// AuditCheckpointEvery is how often the audit chain is signed while events come (default 10
	// minutes); it is always signed at Close.
	AuditCheckpointEvery time.Duration
}

// retentionEvery is how often the audit retention runs (and the coming weeks' partitions are
// checked on PostgreSQL).
const retentionEvery = 10 * time.Minute

// App is a running server's parts.
type App struct {
	Handler http.Handler
	Store   *store.Store
	Catalog *broker.Catalog
	Keys    *signing.KeyRing
	Audit   *audit.Writer
	// Revocations are this replica's revoked tokens (Refresh polls the database).
	Revocations *broker.Revocations
	// Stream is the audit log stream (nil without Config.AuditLog).
	Stream *audit.Stream
	// Retention removes old audit events in the background.
	Retention *audit.Retention
	// Principals runs the API-key use cases (CreateKey; the router authenticates through it).
	Principals *principal.Service
	Opts       connection.Options
	Config     Config

	// Sightings records the workloads seen; it flushes and prunes in the background, and tests
	// call Flush and Prune to do it now.
	Sightings *sightings.Recorder

	stop      context.CancelFunc
	wg        sync.WaitGroup
	ownsStore bool
}

// New builds the server on an open store. The caller keeps ownership of st.
func New(ctx context.Context, cfg Config, st *store.Store) (*App, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PublicURL == "" {
		return nil, errors.New("the public URL is empty: set TRUSTGATE_PUBLIC_URL")
	}
	if cfg.Audience == "" {
		cfg.Audience = cfg.PublicURL
	}
	if cfg.CatalogPoll <= 0 {
		cfg.CatalogPoll = 250 * time.Millisecond
	}
	if cfg.SingleUseCleanup <= 0 {
		cfg.SingleUseCleanup = time.Minute
	}
	if cfg.AuditRetention == 0 {
		cfg.AuditRetention = audit.DefaultRetention
	}
	if cfg.AuditRetention < time.Second {
		return nil, fmt.Errorf("audit retention %s is too short: use a duration of at least 1s (e.g. 9600h)", cfg.AuditRetention)
	}
	opts := connection.Options{DefaultAudience: cfg.Audience, AllowInsecureJWKS: cfg.AllowInsecureJWKS}
	for _, p := range cfg.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				return nil, fmt.Errorf("trusted proxy %q is neither an IP address nor a CIDR", p)
			}
		}
	}

	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	// The audit chain of this process (CONTRACT.md §3): the stream catches up on what an earlier
	// process left unwritten and records this chain before the writer commits its first event.
	// The writer comes first so that every event this process writes joins the chain, the
	// key.rotate of a signing key made at start included; it signs checkpoints with the key ring
	// opened next.
	signer := &ringSigner{}
	wopts := auditOptions(st.Dialect())
	wopts.Chain = uuid.Must(uuid.NewV7()).String()
	wopts.Signer = signer
	wopts.CheckpointEvery = cfg.AuditCheckpointEvery
	wopts.Now = cfg.Now
	var (
		stream *audit.Stream
		err    error
	)
	if cfg.AuditLog != "" {
		if stream, err = audit.OpenStream(ctx, cfg.AuditLog, wopts.Chain, st, cfg.Logger); err != nil {
			return nil, err
		}
		wopts.OnDurable = stream.Enqueue
	}
	aw := audit.NewWriter(st, wopts)
	fail := func(err error) (*App, error) {
		aw.Close()
		if stream != nil {
			stream.Close()
		}
		return nil, err
	}

	keys, err := signing.Open(ctx, &keyStore{st: st, aw: aw}, signing.KEKs{Current: cfg.KEK, Previous: cfg.KEKPrevious},
		signing.Options{Rotation: cfg.SigningKeyRotation, Now: now, Logger: cfg.Logger})
	if err != nil {
		return fail(fmt.Errorf("loading the signing keys: %w", err))
	}
	signer.set(keys)
	keys.Issuer, keys.Audience = cfg.PublicURL, cfg.PublicURL
	revocations, err := broker.NewRevocations(ctx, &revocationStore{st: st, aw: aw}, now)
	if err != nil {
		return fail(fmt.Errorf("loading revoked tokens: %w", err))
	}

	catalog, err := broker.NewCatalog(ctx, st, opts)
	if err != nil {
		return fail(fmt.Errorf("loading workload connections: %w", err))
	}
	runCtx, stop := context.WithCancel(context.Background())
	principals := &principal.Service{Store: st}
	retention := &audit.Retention{Store: st, Keep: cfg.AuditRetention, Now: cfg.Now, Logger: cfg.Logger}
	a := &App{Store: st, Catalog: catalog, Keys: keys, Audit: aw, Revocations: revocations, Stream: stream, Retention: retention,
		Principals: principals, Opts: opts, Config: cfg, stop: stop}

	refresh := func() {
		if err := catalog.Refresh(runCtx); err != nil {
			cfg.Logger.Warn("connection catalog refresh after a change failed; the poller will retry", "error", err)
		}
	}
	jwks := jwtverify.NewJWKSCache(jwtverify.JWKSOptions{AllowInsecure: cfg.AllowInsecureJWKS, Now: cfg.Now})
	catalog.PruneJWKS(jwks)
	verifier := jwtverify.NewVerifier(jwks, jwtverify.VerifierOptions{Now: cfg.Now})
	a.Sightings = sightings.NewRecorder(st, sightings.Options{Retention: cfg.SightingsRetention, Off: cfg.SightingsOff, Now: cfg.Now, Logger: cfg.Logger})
	b := &broker.Broker{Catalog: catalog, Verifier: verifier, Keys: keys, Audit: aw, Revocations: revocations, PublicURL: cfg.PublicURL, Now: cfg.Now,
		Sightings: a.Sightings}
	var limiter *httpapi.RateLimiter
	if cfg.RatePerConnection > 0 || cfg.RatePerClient > 0 {
		limiter = httpapi.NewRateLimiter(cfg.RatePerConnection, cfg.RatePerClient, cfg.RateBurst)
	}
	registry := prometheus.NewRegistry()
	registerKeyMetrics(registry, keys, now)
	adm := &admin.Service{Store: chainedStore{st, aw}, Opts: opts, Audit: aw, Changed: refresh, Broker: b, Now: cfg.Now,
		Sightings: st, SightingsRetention: a.Sightings.Retention(), SightingsOff: a.Sightings.Off(), Activity: st}
	ui, err := console.New(console.Deps{Admin: adm, Sessions: &session.Service{Store: st, Keys: principals, Now: cfg.Now},
		Opts: opts, PublicURL: cfg.PublicURL, Now: cfg.Now, Logger: cfg.Logger})
	if err != nil {
		stop()
		return fail(err)
	}
	a.Handler = httpapi.NewRouter(httpapi.Deps{
		DB: st, Admin: adm, Broker: b, Principals: principals, Keys: keys, Opts: opts, PublicURL: cfg.PublicURL,
		Logger: cfg.Logger, Registry: registry, Limiter: limiter, TrustedProxies: cfg.TrustedProxies,
		Console: ui,
	})

	a.wg.Add(3)
	go func() { defer a.wg.Done(); catalog.Run(runCtx, cfg.CatalogPoll) }()
	go func() { defer a.wg.Done(); keys.Run(runCtx, cfg.CatalogPoll) }()
	go func() { defer a.wg.Done(); revocations.Run(runCtx, cfg.CatalogPoll) }()
	a.wg.Add(3)
	go func() { defer a.wg.Done(); retention.Run(runCtx, retentionEvery) }()
	go func() { defer a.wg.Done(); a.cleanSingleUse(runCtx, cfg.SingleUseCleanup) }()
	go func() { defer a.wg.Done(); a.Sightings.Run(runCtx) }()
	return a, nil
}

// cleanSingleUse removes expired single-use records (CONTRACT.md §1 single_use: kept until the
// token's exp + 60 s) every interval until ctx ends, in small batches with a pause between them
// so that exchanges, whose audit batches insert into the same table, never wait long behind it.
// Every replica runs it; deleting what another replica deleted is a no-op.
func (a *App) cleanSingleUse(ctx context.Context, every time.Duration) {
	now := a.Config.Now
	if now == nil {
		now = time.Now
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for ctx.Err() == nil {
			n, err := a.Store.DeleteExpiredSingleUse(ctx, now(), store.SingleUseCleanupBatch)
			if err != nil {
				if ctx.Err() == nil {
					a.Config.Logger.Warn("removing expired single-use token records failed; retrying later", "error", err)
				}
				break
			}
			if n < store.SingleUseCleanupBatch {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}

// ReopenAuditLog reopens the audit log stream's file (log rotation; serve does it on SIGHUP).
func (a *App) ReopenAuditLog() error {
	if a.Stream == nil {
		return nil
	}
	return a.Stream.Reopen()
}

// Close stops background work (the sightings recorder flushes one last time), flushes the audit
// writer (which signs a last checkpoint) and the audit log stream. It does not close the store.
func (a *App) Close() {
	a.stop()
	a.wg.Wait()
	a.Audit.Close()
	if a.Stream != nil {
		if err := a.Stream.Close(); err != nil {
			a.Config.Logger.Warn("closing the audit log stream", "error", err)
		}
	}
	if a.ownsStore {
		if err := a.Store.Close(); err != nil {
			a.Config.Logger.Warn("closing the database", "error", err)
		}
	}
}

// Serve answers HTTP on ln until ctx ends, then shuts down gracefully: in-flight requests (and
// their audit events) finish, new ones are refused.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.Config.Logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	if serveErr := <-errc; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return err
}

// chainedStore is the store as the admin use cases see it: a connection change and its audit event
// commit in one transaction of the store's, run by the audit writer between its batches so that
// the event takes its place in this process's hash chain (audit.Writer.Exclusive).
type chainedStore struct {
	*store.Store
	aw *audit.Writer
}

func (c chainedStore) CreateConnection(ctx context.Context, conn *connection.Connection, ev *api.AuditEvent) error {
	return c.aw.Exclusive(ctx, func(ctx context.Context, seal func(*api.AuditEvent) error) error {
		return c.Store.CreateConnection(store.WithAuditSeal(ctx, seal), conn, ev)
	})
}

func (c chainedStore) UpdateConnection(ctx context.Context, conn *connection.Connection, expectedRevision int64, ev *api.AuditEvent) error {
	return c.aw.Exclusive(ctx, func(ctx context.Context, seal func(*api.AuditEvent) error) error {
		return c.Store.UpdateConnection(store.WithAuditSeal(ctx, seal), conn, expectedRevision, ev)
	})
}

func (c chainedStore) DeleteConnection(ctx context.Context, id string, expectedRevision int64, ev *api.AuditEvent) error {
	return c.aw.Exclusive(ctx, func(ctx context.Context, seal func(*api.AuditEvent) error) error {
		return c.Store.DeleteConnection(store.WithAuditSeal(ctx, seal), id, expectedRevision, ev)
	})
}

// keyStore adapts the store's signing-key rows to the signing package (the types are identical).
// With a writer, a change's key.rotate events join that writer's hash chain (see chained).
type keyStore struct {
	st *store.Store
	aw *audit.Writer
}

func (k *keyStore) SigningKeys(ctx context.Context) ([]signing.StoredKey, error) {
	rows, err := k.st.SigningKeys(ctx)
	return toSigning(rows), err
}

func (k *keyStore) SigningKeysVersion(ctx context.Context) (int64, error) {
	return k.st.SigningKeysVersion(ctx)
}

func (k *keyStore) UpdateSigningKeys(ctx context.Context, plan func([]signing.StoredKey) ([]signing.StoredKey, []api.AuditEvent, error)) ([]signing.StoredKey, error) {
	var rows []store.SigningKey
	err := chained(ctx, k.aw, func(ctx context.Context) error {
		var err error
		rows, err = k.st.UpdateSigningKeys(ctx, func(cur []store.SigningKey) ([]store.SigningKey, []api.AuditEvent, error) {
			next, events, err := plan(toSigning(cur))
			out := make([]store.SigningKey, len(next))
			for i, n := range next {
				out[i] = store.SigningKey(n)
			}
			return out, events, err
		})
		return err
	})
	return toSigning(rows), err
}

func toSigning(rows []store.SigningKey) []signing.StoredKey {
	out := make([]signing.StoredKey, len(rows))
	for i, r := range rows {
		out[i] = signing.StoredKey(r)
	}
	return out
}

// KeyStore is the signing package's view of a store, for the commands that rotate keys on the
// database while servers run (`trustgate keys rotate-signing`, `trustgate kek rotate`). Their
// key.rotate events join a hash chain of the command's own (unsigned: a command holds no
// checkpoint key of its own, and the next server checkpoint covers only its own chain), so that
// `trustgate audit verify` finds no event outside a chain. Call close when done: it commits
// what is queued.
func KeyStore(st *store.Store) (ks signing.KeyStore, close func()) {
	aw := audit.NewWriter(st, audit.Options{})
	return &keyStore{st: st, aw: aw}, aw.Close
}

// chained runs fn, whose store writes insert audit events in a transaction of their own, through
// the audit writer (audit.Writer.Exclusive) so that those events take their place in its hash
// chain. Without a writer fn runs as it is.
func chained(ctx context.Context, aw *audit.Writer, fn func(ctx context.Context) error) error {
	if aw == nil {
		return fn(ctx)
	}
	return aw.Exclusive(ctx, func(ctx context.Context, seal func(*api.AuditEvent) error) error {
		return fn(store.WithAuditSeal(ctx, seal))
	})
}

// ringSigner signs checkpoints with the key ring, which is opened after the audit writer (see
// New); until then a checkpoint fails and is retried at the next.
type ringSigner struct {
	mu   sync.Mutex
	ring *signing.KeyRing
}

func (r *ringSigner) set(k *signing.KeyRing) { r.mu.Lock(); r.ring = k; r.mu.Unlock() }

func (r *ringSigner) SignDetached(typ string, payload []byte) (string, string, error) {
	r.mu.Lock()
	k := r.ring
	r.mu.Unlock()
	if k == nil {
		return "", "", errors.New("the signing keys are not loaded yet")
	}
	return k.SignDetached(typ, payload)
}

// revocationStore adapts the store's revocations to the broker (the types are identical); a
// revocation's audit event joins the writer's hash chain (see chained).
type revocationStore struct {
	st *store.Store
	aw *audit.Writer
}

func (r *revocationStore) RevokeToken(ctx context.Context, rev broker.Revocation, ev *api.AuditEvent) (bool, error) {
	var revoked bool
	err := chained(ctx, r.aw, func(ctx context.Context) error {
		var err error
		revoked, err = r.st.RevokeToken(ctx, store.Revocation(rev), ev)
		return err
	})
	return revoked, err
}

func (r *revocationStore) RevocationsVersion(ctx context.Context) (int64, error) {
	return r.st.RevocationsVersion(ctx)
}

func (r *revocationStore) RevocationsSince(ctx context.Context, seq int64, now time.Time) ([]broker.Revocation, error) {
	rows, err := r.st.RevocationsSince(ctx, seq, now)
	out := make([]broker.Revocation, len(rows))
	for i, row := range rows {
		out[i] = broker.Revocation(row)
	}
	return out, err
}

func (r *revocationStore) PurgeRevocations(ctx context.Context, now time.Time, limit int) (int64, error) {
	return r.st.PurgeRevocations(ctx, now, limit)
}

// registerKeyMetrics exports the signing-key lifecycle as gauges, evaluated at each scrape.
func registerKeyMetrics(reg *prometheus.Registry, keys *signing.KeyRing, now func() time.Time) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "trustgate_signing_key_age_seconds",
			Help: "How long the current access-token signing key has been signing."},
			func() float64 { n := now(); return n.Sub(keys.Status(n).SignsSince).Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "trustgate_signing_key_next_rotation_seconds",
			Help: "Seconds until the next signing key starts signing."},
			func() float64 { n := now(); return keys.Status(n).NextRotation.Sub(n).Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "trustgate_signing_keys_published",
			Help: "Number of signing keys published in the JWKS (current, next, and retired ones whose tokens may not have expired)."},
			func() float64 { return float64(keys.Status(now()).Published) }),
	)
}

// auditOptions tunes the audit writer to the store. On SQLite a commit's fsync and WAL page writes
// cost this process ~170 CPU µs whatever the batch size, and at saturation batches are only ~6
// events (the CPU, not the commit, is the bottleneck), so under load the writer waits up to 2 ms
// for more: ~15 events per commit, ~8 % more exchanges per second (BENCHMARKS.md). On PostgreSQL
// the commit's work happens in the database's processes and the same delay measured ~8 % fewer
// exchanges per second, so it commits at once.
func auditOptions(dialect string) audit.Options {
	if dialect == store.DialectSQLite {
		return audit.Options{CommitDelay: 2 * time.Millisecond}
	}
	return audit.Options{}
}

// Open opens the database that dsn names (running its migrations) and builds a server on it. The
// App owns that store: Close closes it too. This is how programs outside the server's own tree
// (the test kit, the provider's acceptance tests) embed a server.
func Open(ctx context.Context, dsn string, cfg Config) (*App, error) {
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("opening the database: %w", err)
	}
	a, err := New(ctx, cfg, st)
	if err != nil {
		st.Close()
		return nil, err
	}
	a.ownsStore = true
	return a, nil
}

// CreateKey creates a principal with the role and returns its API key, shown only here (see
// principal.Service.Create).
func (a *App) CreateKey(ctx context.Context, name, role string) (string, error) {
	return a.Principals.Create(ctx, name, role)
}
