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
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/app"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/signing"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store"
)

const defaultDatabase = "sqlite://trustgate.db"

func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address to listen on (TRUSTGATE_LISTEN)")
	database := fs.String("database", defaultDatabase, "sqlite://PATH or postgres://… (TRUSTGATE_DATABASE)")
	publicURL := fs.String("public-url", "", "issuer of access tokens (TRUSTGATE_PUBLIC_URL; default http://<listen>)")
	audience := fs.String("audience", "", "default audience of the github and gitlab presets (TRUSTGATE_AUDIENCE; default the public URL)")
	kekFile := fs.String("kek-file", "", "file holding the base64 32-byte key-encryption key (else TRUSTGATE_KEK)")
	insecure := fs.Bool("allow-insecure-jwks", false, "allow http and loopback/private JWKS URLs, for tests and demos (TRUSTGATE_ALLOW_INSECURE_JWKS)")
	dev := fs.Bool("dev", false, "first-run mode: SQLite in the working directory, generated KEK beside it, insecure JWKS allowed, bootstrap keys printed once")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error (TRUSTGATE_LOG_LEVEL)")
	logFormat := fs.String("log-format", "text", "text or json (TRUSTGATE_LOG_FORMAT)")
	ratePerConn := fs.Float64("rate-limit-connection", 0, "token requests per second per connection, 0 = unlimited (TRUSTGATE_RATE_LIMIT_CONNECTION)")
	ratePerClient := fs.Float64("rate-limit-client", 0, "token requests per second per client address, 0 = unlimited (TRUSTGATE_RATE_LIMIT_CLIENT)")
	rateBurst := fs.Int("rate-limit-burst", 20, "burst of the token rate limits (TRUSTGATE_RATE_LIMIT_BURST)")
	trustedProxies := fs.String("trusted-proxies", "", "comma-separated addresses or CIDRs of load balancers whose X-Forwarded-For names the client (TRUSTGATE_TRUSTED_PROXIES); none by default")
	pprofAddr := fs.String("pprof", "", "serve Go profiles (net/http/pprof) on this address, e.g. 127.0.0.1:6060; off when empty. Keep it on loopback")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := envDefaults(fs, map[string]string{
		"listen": "TRUSTGATE_LISTEN", "database": "TRUSTGATE_DATABASE", "public-url": "TRUSTGATE_PUBLIC_URL",
		"audience": "TRUSTGATE_AUDIENCE", "allow-insecure-jwks": "TRUSTGATE_ALLOW_INSECURE_JWKS",
		"log-level": "TRUSTGATE_LOG_LEVEL", "log-format": "TRUSTGATE_LOG_FORMAT",
		"rate-limit-connection": "TRUSTGATE_RATE_LIMIT_CONNECTION", "rate-limit-client": "TRUSTGATE_RATE_LIMIT_CLIENT",
		"rate-limit-burst": "TRUSTGATE_RATE_LIMIT_BURST", "trusted-proxies": "TRUSTGATE_TRUSTED_PROXIES",
	}); err != nil {
		return err
	}
	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	slog.SetDefault(logger)
	setGCDefault()

	var kek []byte
	switch {
	case *kekFile != "":
		b, err := os.ReadFile(*kekFile)
		if err != nil {
			return fmt.Errorf("reading --kek-file: %w", err)
		}
		if kek, err = signing.ParseKEK(strings.TrimSpace(string(b))); err != nil {
			return fmt.Errorf("--kek-file %s: %w", *kekFile, err)
		}
	case os.Getenv("TRUSTGATE_KEK") != "":
		if kek, err = signing.ParseKEK(os.Getenv("TRUSTGATE_KEK")); err != nil {
			return fmt.Errorf("TRUSTGATE_KEK: %w", err)
		}
	case *dev:
		if kek, err = devKEK(*database); err != nil {
			return err
		}
	default:
		return errors.New("no key-encryption key: set TRUSTGATE_KEK or --kek-file to a base64 32-byte key (make one with `openssl rand -base64 32`), or run with --dev for a first try")
	}
	if *dev {
		*insecure = true
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", *listen, err)
	}
	if *publicURL == "" {
		*publicURL = "http://" + ln.Addr().String()
	}

	st, err := store.Open(ctx, *database)
	if err != nil {
		ln.Close()
		return fmt.Errorf("opening the database: %w", err)
	}
	defer st.Close()

	if *dev {
		if err := bootstrapDevKeys(ctx, st, stdout); err != nil {
			ln.Close()
			return err
		}
	}

	a, err := app.New(ctx, app.Config{
		PublicURL: strings.TrimRight(*publicURL, "/"), Audience: *audience, KEK: kek, AllowInsecureJWKS: *insecure,
		RatePerConnection: *ratePerConn, RatePerClient: *ratePerClient, RateBurst: *rateBurst, Logger: logger,
		TrustedProxies: splitList(*trustedProxies),
	}, st)
	if err != nil {
		ln.Close()
		return err
	}
	defer a.Close()
	if *pprofAddr != "" {
		if err := servePprof(ctx, *pprofAddr, logger); err != nil {
			ln.Close()
			return err
		}
	}
	logger.Info("trustgate serving", "listen", ln.Addr().String(), "public_url", *publicURL,
		"database", st.Dialect(), "allow_insecure_jwks", *insecure, "version", version)
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

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", format)
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

// bootstrapDevKeys creates one devops_admin and one security_admin key on an empty database and
// prints them once; they are stored only as hashes.
func bootstrapDevKeys(ctx context.Context, st *store.Store, stdout io.Writer) error {
	n, err := st.CountPrincipals(ctx)
	if err != nil || n > 0 {
		return err
	}
	fmt.Fprintln(stdout, "First run: created two API keys. They are shown only now; store them safely.")
	for _, p := range []struct{ name, role string }{{"devops", api.RoleDevOpsAdmin}, {"security", api.RoleSecurityAdmin}} {
		key, err := app.CreateKeyIn(ctx, st, p.name, p.role)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "  %-16s %s=%s\n", p.role, strings.ToUpper("TRUSTGATE_"+p.name+"_KEY"), key)
	}
	return nil
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
