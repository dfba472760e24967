package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/app"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/audit"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/principal"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/signing"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store"
)

const defaultDatabase = "sqlite://trustgate.db"

// serveConfig is `trustgate serve`'s configuration: each setting from its flag, else from its
// TRUSTGATE_* variable, else the default. parseServeConfig builds and validates it; run serves.
type serveConfig struct {
	listen   string
	database string
	// publicURL is the issuer of access tokens; empty means http://<the listener's address>.
	publicURL string
	audience  string
	// kek is the key-encryption key from --kek-file or TRUSTGATE_KEK; nil only with dev, whose
	// key run reads or creates beside the database. kekPrevious (--kek-previous-file or
	// TRUSTGATE_KEK_PREVIOUS) also opens signing keys, during the rolling restart after `trustgate
	// kek rotate`.
	kek               []byte
	kekPrevious       []byte
	signingRotation   time.Duration
	dev               bool
	allowInsecureJWKS bool
	logLevel          slog.Level
	logFormat         string
	ratePerConnection float64
	ratePerClient     float64
	rateBurst         int
	trustedProxies    []string
	pprof             string
	// sightingsRetention is how long workload sightings are kept (CONTRACT.md §2).
	sightingsRetention time.Duration
	sightings          bool
	auditRetention     time.Duration
	auditLog           string
}

func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseServeConfig(args, stderr)
	if err != nil {
		return err
	}
	return c.run(ctx, stdout, stderr)
}

// parseServeConfig reads serve's flags and environment, and refuses what cannot work: an unknown
// log level or format, an unreadable or malformed key-encryption key, or none outside --dev.
func parseServeConfig(args []string, stderr io.Writer) (serveConfig, error) {
	var c serveConfig
	var kekFile, kekPreviousFile, logLevel, trustedProxies string
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8080", "address to listen on (TRUSTGATE_LISTEN)")
	fs.StringVar(&c.database, "database", defaultDatabase, "sqlite://PATH or postgres://… (TRUSTGATE_DATABASE)")
	fs.StringVar(&c.publicURL, "public-url", "", "issuer of access tokens (TRUSTGATE_PUBLIC_URL; default http://<listen>)")
	fs.StringVar(&c.audience, "audience", "", "default audience of the github and gitlab presets (TRUSTGATE_AUDIENCE; default the public URL)")
	fs.StringVar(&kekFile, "kek-file", "", "file holding the base64 32-byte key-encryption key (else TRUSTGATE_KEK)")
	fs.StringVar(&kekPreviousFile, "kek-previous-file", "", "file holding the previous key-encryption key, during the rolling restart after `trustgate kek rotate` (else TRUSTGATE_KEK_PREVIOUS)")
	fs.DurationVar(&c.signingRotation, "signing-key-rotation", signing.DefaultRotation, "how long an access-token signing key signs before the next takes over; at least 1h (TRUSTGATE_SIGNING_KEY_ROTATION)")
	fs.BoolVar(&c.allowInsecureJWKS, "allow-insecure-jwks", false, "allow http and loopback/private JWKS URLs, for tests and demos (TRUSTGATE_ALLOW_INSECURE_JWKS)")
	fs.BoolVar(&c.dev, "dev", false, "first-run mode: SQLite in the working directory, generated KEK beside it, insecure JWKS allowed, bootstrap keys printed once")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error (TRUSTGATE_LOG_LEVEL)")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json (TRUSTGATE_LOG_FORMAT)")
	fs.Float64Var(&c.ratePerConnection, "rate-limit-connection", 0, "token requests per second per connection, 0 = unlimited (TRUSTGATE_RATE_LIMIT_CONNECTION)")
	fs.Float64Var(&c.ratePerClient, "rate-limit-client", 0, "token requests per second per client address, 0 = unlimited (TRUSTGATE_RATE_LIMIT_CLIENT)")
	fs.IntVar(&c.rateBurst, "rate-limit-burst", 20, "burst of the token rate limits (TRUSTGATE_RATE_LIMIT_BURST)")
	fs.StringVar(&trustedProxies, "trusted-proxies", "", "comma-separated addresses or CIDRs of load balancers whose X-Forwarded-For names the client (TRUSTGATE_TRUSTED_PROXIES); none by default")
	fs.DurationVar(&c.sightingsRetention, "sightings-retention", 720*time.Hour, "how long workload sightings are kept, at most 10,000 per connection (TRUSTGATE_SIGHTINGS_RETENTION)")
	fs.BoolVar(&c.sightings, "sightings", true, "record workload sightings, the evidence of impact reports; false records none and keeps pruning (TRUSTGATE_SIGHTINGS)")
	fs.StringVar(&c.pprof, "pprof", "", "serve Go profiles (net/http/pprof) on this address, e.g. 127.0.0.1:6060; off when empty. Keep it on loopback")
	fs.DurationVar(&c.auditRetention, "audit-retention", audit.DefaultRetention, "how long audit events are kept, at least 1s (TRUSTGATE_AUDIT_RETENTION)")
	fs.StringVar(&c.auditLog, "audit-log", "", "append every audit event as a JSON line to this file once it is durable, - for stdout; reopened on SIGHUP (TRUSTGATE_AUDIT_LOG)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if err := envDefaults(fs, map[string]string{
		"audit-retention": "TRUSTGATE_AUDIT_RETENTION", "audit-log": "TRUSTGATE_AUDIT_LOG",
		"listen": "TRUSTGATE_LISTEN", "database": "TRUSTGATE_DATABASE", "public-url": "TRUSTGATE_PUBLIC_URL",
		"audience": "TRUSTGATE_AUDIENCE", "allow-insecure-jwks": "TRUSTGATE_ALLOW_INSECURE_JWKS",
		"log-level": "TRUSTGATE_LOG_LEVEL", "log-format": "TRUSTGATE_LOG_FORMAT",
		"rate-limit-connection": "TRUSTGATE_RATE_LIMIT_CONNECTION", "rate-limit-client": "TRUSTGATE_RATE_LIMIT_CLIENT",
		"rate-limit-burst": "TRUSTGATE_RATE_LIMIT_BURST", "trusted-proxies": "TRUSTGATE_TRUSTED_PROXIES",
		"signing-key-rotation": "TRUSTGATE_SIGNING_KEY_ROTATION",
		"sightings-retention":  "TRUSTGATE_SIGHTINGS_RETENTION", "sightings": "TRUSTGATE_SIGHTINGS",
	}); err != nil {
		return c, err
	}
	if c.sightingsRetention < time.Second {
		return c, fmt.Errorf("--sightings-retention %s: use a duration of at least 1s, e.g. 720h", c.sightingsRetention)
	}
	if err := c.logLevel.UnmarshalText([]byte(logLevel)); err != nil {
		return c, fmt.Errorf("--log-level %q: use debug, info, warn or error", logLevel)
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return c, fmt.Errorf("--log-format %q: use text or json", c.logFormat)
	}
	if c.signingRotation < signing.MinRotation {
		return c, fmt.Errorf("--signing-key-rotation %s: use at least %s (a new key is published %s before it signs)", c.signingRotation, signing.MinRotation, signing.PublishLead)
	}
	if c.auditRetention < time.Second {
		return c, fmt.Errorf("--audit-retention %s: keep audit events for at least 1s (the default is 9600h, 400 days)", c.auditRetention)
	}
	var err error
	if c.kek, err = configuredKEK(kekFile, c.dev); err != nil {
		return c, err
	}
	if c.kekPrevious, err = readKEK("kek-previous-file", kekPreviousFile, "TRUSTGATE_KEK_PREVIOUS"); err != nil {
		return c, err
	}
	if c.dev {
		c.allowInsecureJWKS = true
	}
	c.trustedProxies = splitList(trustedProxies)
	return c, nil
}

// configuredKEK reads the key-encryption key from --kek-file, else from TRUSTGATE_KEK. Without
// either it is an error, except in dev mode (nil: run finds or makes the dev key).
func configuredKEK(kekFile string, dev bool) ([]byte, error) {
	switch {
	case kekFile != "":
		b, err := os.ReadFile(kekFile)
		if err != nil {
			return nil, fmt.Errorf("reading --kek-file: %w", err)
		}
		kek, err := signing.ParseKEK(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("--kek-file %s: %w", kekFile, err)
		}
		return kek, nil
	case os.Getenv("TRUSTGATE_KEK") != "":
		kek, err := signing.ParseKEK(os.Getenv("TRUSTGATE_KEK"))
		if err != nil {
			return nil, fmt.Errorf("TRUSTGATE_KEK: %w", err)
		}
		return kek, nil
	case dev:
		return nil, nil
	}
	return nil, errors.New("no key-encryption key: set TRUSTGATE_KEK or --kek-file to a base64 32-byte key (make one with `openssl rand -base64 32`), or run with --dev for a first try")
}

// run serves until ctx ends: it listens, opens (and migrates) the database, bootstraps the dev
// keys on a first --dev run, builds the server and serves, shutting down gracefully.
func (c serveConfig) run(ctx context.Context, stdout, stderr io.Writer) error {
	logger := newLogger(stderr, c.logLevel, c.logFormat)
	slog.SetDefault(logger)
	setGCDefault()
	if c.kek == nil {
		kek, err := devKEK(c.database)
		if err != nil {
			return err
		}
		c.kek = kek
	}

	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", c.listen, err)
	}
	if c.publicURL == "" {
		c.publicURL = "http://" + ln.Addr().String()
	}
	st, err := store.Open(ctx, c.database)
	if err != nil {
		ln.Close()
		return fmt.Errorf("opening the database: %w", err)
	}
	defer st.Close()
	keyHint := "make one with `trustgate keys create --name NAME --role security_admin`"
	if c.dev {
		keyHint = "the keys printed on the first run, or " + keyHint
		printed, err := bootstrapDevKeys(ctx, &principal.Service{Store: st}, stdout)
		if err != nil {
			ln.Close()
			return err
		}
		if printed {
			keyHint = "TRUSTGATE_SECURITY_KEY above reviews and activates"
		}
	}
	a, err := app.New(ctx, app.Config{
		PublicURL: strings.TrimRight(c.publicURL, "/"), Audience: c.audience, KEK: c.kek, KEKPrevious: c.kekPrevious,
		SigningKeyRotation: c.signingRotation, AllowInsecureJWKS: c.allowInsecureJWKS,
		RatePerConnection: c.ratePerConnection, RatePerClient: c.ratePerClient, RateBurst: c.rateBurst, Logger: logger,
		TrustedProxies: c.trustedProxies, SightingsRetention: c.sightingsRetention, SightingsOff: !c.sightings, AuditRetention: c.auditRetention, AuditLog: c.auditLog,
	}, st)
	if err != nil {
		ln.Close()
		return err
	}
	defer a.Close()
	if c.pprof != "" {
		if err := servePprof(ctx, c.pprof, logger); err != nil {
			ln.Close()
			return err
		}
	}
	// SIGHUP reopens the audit log stream (log rotation), and never ends the server.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := a.ReopenAuditLog(); err != nil {
					logger.Error("reopening the audit log stream on SIGHUP", "error", err)
				} else if c.auditLog != "" {
					logger.Info("audit log stream reopened", "path", c.auditLog)
				}
			}
		}
	}()
	logger.Info("trustgate serving", "listen", ln.Addr().String(), "public_url", c.publicURL,
		"database", st.Dialect(), "allow_insecure_jwks", c.allowInsecureJWKS, "version", version)
	fmt.Fprintf(stdout, "review console: %s/ui/ (sign in with an API key: %s)\n", strings.TrimRight(c.publicURL, "/"), keyHint)
	fmt.Fprintf(stdout, "trustgate listening on http://%s\n", ln.Addr().String())
	err = a.Serve(ctx, ln)
	logger.Info("trustgate stopped")
	return err
}

// servePprof serves the Go profiling endpoints on their own listener (never on the API's) until ctx
// ends.
func servePprof(ctx context.Context, addr string, logger *slog.Logger) error {
	pln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--pprof %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(pln) }()
	go func() { <-ctx.Done(); _ = srv.Close() }()
	logger.Warn("profiling endpoints enabled", "pprof", "http://"+pln.Addr().String()+"/debug/pprof/")
	return nil
}

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// newLogger is the server's structured logger on w, in a format parseServeConfig has checked.
func newLogger(w io.Writer, level slog.Level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// devKEK reads or creates the key-encryption key beside the SQLite file, readable by its owner only.
func devKEK(database string) ([]byte, error) {
	dir := "."
	if p, ok := strings.CutPrefix(database, "sqlite://"); ok {
		dir = filepath.Dir(p)
	}
	path := filepath.Join(dir, "trustgate.kek")
	if b, err := os.ReadFile(path); err == nil {
		return signing.ParseKEK(strings.TrimSpace(string(b)))
	}
	raw := make([]byte, signing.KEKSize)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	enc := base64.StdEncoding.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(enc+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("writing the dev key-encryption key %s: %w", path, err)
	}
	return raw, nil
}

// bootstrapDevKeys creates one devops_admin and one security_admin key on a database that has never
// had a key and prints them once (printed says so); they are stored only as hashes.
func bootstrapDevKeys(ctx context.Context, principals *principal.Service, stdout io.Writer) (printed bool, err error) {
	first := []principal.Principal{{Name: "devops", Role: api.RoleDevOpsAdmin}, {Name: "security", Role: api.RoleSecurityAdmin}}
	keys, err := principals.Bootstrap(ctx, first)
	if err != nil || len(keys) == 0 {
		return false, err
	}
	fmt.Fprintln(stdout, "First run: created two API keys. They are shown only now; store them safely.")
	for i, p := range first {
		fmt.Fprintf(stdout, "  %-16s %s=%s\n", p.Role, strings.ToUpper("TRUSTGATE_"+p.Name+"_KEY"), keys[i])
	}
	return true, nil
}

// serveGCPercent is the server's garbage-collection target when GOGC is not set. The server's live
// heap is small (connection catalog, JWKS cache, a few thousand in-flight requests) and every
// exchange allocates a few KiB of short-lived garbage, so at Go's default of 100 the collector
// runs hundreds of times a second under load: 400 trades a few tens of MiB of heap for ~12 % of
// the CPU per exchange (BENCHMARKS.md). GOGC (and GOMEMLIMIT) in the environment still win.
const serveGCPercent = 400

func setGCDefault() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
}
