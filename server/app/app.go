// Package app wires a Trustgate server together from its configuration: store, signing keys,
// connection catalog, audit writer, use cases and router, and runs it with graceful shutdown.
//
// It is the one place where the concrete types meet the interfaces the packages declare for what
// they need: *store.Store is admin.Storer, admin.ActivityReader, broker.Source, principal.Storer,
// session.Storer, audit.Sink and httpapi.Pinger (and signing.KeyStore through keyStore below);
// *audit.Writer is admin.Recorder and broker.Recorder. The assertions below keep that true at compile time.
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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustgate/terraform-provider-trustgate/server/internal/admin"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/audit"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/broker"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/console"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/console/session"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/httpapi"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/jwtverify"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/principal"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/signing"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store"
)

var (
	_ admin.Storer         = (*store.Store)(nil)
	_ broker.Source        = (*store.Store)(nil)
	_ principal.Storer     = (*store.Store)(nil)
	_ audit.Sink           = (*store.Store)(nil)
	_ httpapi.Pinger       = (*store.Store)(nil)
	_ admin.ActivityReader = (*store.Store)(nil)
	_ session.Storer       = (*store.Store)(nil)
	_ admin.Recorder       = (*audit.Writer)(nil)
	_ broker.Recorder      = (*audit.Writer)(nil)
)

// Config is the server's configuration after flags and environment are merged.
type Config struct {
	// PublicURL is the issuer and audience of access tokens.
	PublicURL string
	// Audience is the default audience of the github and gitlab presets (default PublicURL).
	Audience string
	// KEK is the 32-byte key-encryption key for signing keys at rest.
	KEK               []byte
	AllowInsecureJWKS bool
	// CatalogPoll is how often a replica looks for changes made through other replicas. It bounds
	// how late a deactivation reaches this replica (CONTRACT.md §4 promises 1 second).
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
}

// App is a running server's parts.
type App struct {
	Handler http.Handler
	Store   *store.Store
	Catalog *broker.Catalog
	Keys    *signing.KeyRing
	Audit   *audit.Writer
	// Principals runs the API-key use cases (CreateKey; the router authenticates through it).
	Principals *principal.Service
	Opts       connection.Options
	Config     Config

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
	opts := connection.Options{DefaultAudience: cfg.Audience, AllowInsecureJWKS: cfg.AllowInsecureJWKS}
	for _, p := range cfg.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				return nil, fmt.Errorf("trusted proxy %q is neither an IP address nor a CIDR", p)
			}
		}
	}

	keys, err := signing.LoadOrCreate(ctx, keyStore{st}, cfg.KEK)
	if err != nil {
		return nil, fmt.Errorf("loading the signing keys: %w (is TRUSTGATE_KEK the key this database was created with?)", err)
	}
	keys.Issuer, keys.Audience = cfg.PublicURL, cfg.PublicURL

	catalog, err := broker.NewCatalog(ctx, st, opts)
	if err != nil {
		return nil, fmt.Errorf("loading workload connections: %w", err)
	}
	aw := audit.NewWriter(st, auditOptions(st.Dialect()))
	runCtx, stop := context.WithCancel(context.Background())
	principals := &principal.Service{Store: st}
	a := &App{Store: st, Catalog: catalog, Keys: keys, Audit: aw, Principals: principals, Opts: opts, Config: cfg, stop: stop}

	refresh := func() {
		if err := catalog.Refresh(runCtx); err != nil {
			cfg.Logger.Warn("connection catalog refresh after a change failed; the poller will retry", "error", err)
		}
	}
	jwks := jwtverify.NewJWKSCache(jwtverify.JWKSOptions{AllowInsecure: cfg.AllowInsecureJWKS, Now: cfg.Now})
	catalog.PruneJWKS(jwks)
	verifier := jwtverify.NewVerifier(jwks, jwtverify.VerifierOptions{Now: cfg.Now})
	b := &broker.Broker{Catalog: catalog, Verifier: verifier, Keys: keys, Audit: aw, PublicURL: cfg.PublicURL, Now: cfg.Now}
	var limiter *httpapi.RateLimiter
	if cfg.RatePerConnection > 0 || cfg.RatePerClient > 0 {
		limiter = httpapi.NewRateLimiter(cfg.RatePerConnection, cfg.RatePerClient, cfg.RateBurst)
	}
	adm := &admin.Service{Store: st, Opts: opts, Audit: aw, Changed: refresh, Broker: b, Now: cfg.Now, Activity: st}
	ui, err := console.New(console.Deps{Admin: adm, Sessions: &session.Service{Store: st, Keys: principals, Now: cfg.Now},
		Opts: opts, PublicURL: cfg.PublicURL, Now: cfg.Now, Logger: cfg.Logger})
	if err != nil {
		stop()
		aw.Close()
		return nil, err
	}
	a.Handler = httpapi.NewRouter(httpapi.Deps{
		DB: st, Admin: adm, Broker: b, Principals: principals, Keys: keys, Opts: opts, PublicURL: cfg.PublicURL,
		Logger: cfg.Logger, Registry: prometheus.NewRegistry(), Limiter: limiter, TrustedProxies: cfg.TrustedProxies,
		Console: ui,
	})

	a.wg.Add(1)
	go func() { defer a.wg.Done(); catalog.Run(runCtx, cfg.CatalogPoll) }()
	return a, nil
}

// Close stops background work and flushes the audit writer. It does not close the store.
func (a *App) Close() {
	a.stop()
	a.wg.Wait()
	a.Audit.Close()
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

// keyStore adapts the store's signing-key rows to the signing package.
type keyStore struct{ st *store.Store }

func (k keyStore) SigningKeys(ctx context.Context) ([]signing.StoredKey, error) {
	rows, err := k.st.SigningKeys(ctx)
	return toSigning(rows), err
}

func (k keyStore) CreateFirstSigningKey(ctx context.Context, key signing.StoredKey) ([]signing.StoredKey, error) {
	rows, err := k.st.CreateFirstSigningKey(ctx, store.SigningKey(key))
	return toSigning(rows), err
}

func toSigning(rows []store.SigningKey) []signing.StoredKey {
	out := make([]signing.StoredKey, len(rows))
	for i, r := range rows {
		out[i] = signing.StoredKey(r)
	}
	return out
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
