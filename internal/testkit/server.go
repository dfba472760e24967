package testkit

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/testdb"
	"github.com/trustgate/terraform-provider-trustgate/server/app"
)

// Server is a running test server with three principals. Endpoint holds its URL (also its public
// URL) and what a client does with it; Admins the principals' clients.
type Server struct {
	Endpoint
	Admins
	App         *app.App
	DSN         string // the database it runs on
	DevOpsKey   string // principal "devops", role devops_admin
	SecurityKey string // principal "security", role security_admin
	AuditorKey  string // principal "auditor", role auditor

	srv *httptest.Server
}

// Option adjusts the server configuration before it starts.
type Option func(*app.Config)

// WithConfig lets a test change any configuration field.
func WithConfig(f func(*app.Config)) Option { return Option(f) }

// WithClock makes now the server's token-exchange clock (app.Config.Now), e.g. a ciissuer.Clock's
// Now, so that a test moves time forward instead of waiting for it.
func WithClock(now func() time.Time) Option { return func(c *app.Config) { c.Now = now } }

// Start starts a server on a fresh database and stops it when the test ends. Insecure JWKS URLs are
// allowed (the CI issuer of a test listens on loopback http) and the default audience is the
// server's URL.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	return StartOn(t, testdb.DSN(t), opts...)
}

// StartOn starts a server on the database dsn names (which may already hold data, or have other
// servers running on it: replicas) and creates three fresh principals for it.
func StartOn(t testing.TB, dsn string, opts ...Option) *Server {
	t.Helper()
	s := start(t, dsn, opts...)
	s.DevOpsKey = s.ensureKey(t, "devops", api.RoleDevOpsAdmin)
	s.SecurityKey = s.ensureKey(t, "security", api.RoleSecurityAdmin)
	s.AuditorKey = s.ensureKey(t, "auditor", api.RoleAuditor)
	s.Admins = NewAdmins(t, s.URL, s.DevOpsKey, s.SecurityKey, s.AuditorKey)
	return s
}

// Restart stops this server and starts a new one on the same database with the same
// key-encryption key and default audience (so signing keys load and fingerprints stay put),
// keeping the API keys. The new server listens on a new port, so its URL (the access-token issuer)
// differs.
func (s *Server) Restart(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s.srv.Close()
	s.App.Close()
	kek, audience := s.App.Config.KEK, s.App.Config.Audience
	keep := func(c *app.Config) { c.KEK, c.Audience = kek, audience }
	n := start(t, s.DSN, append([]Option{keep}, opts...)...)
	n.DevOpsKey, n.SecurityKey, n.AuditorKey = s.DevOpsKey, s.SecurityKey, s.AuditorKey
	n.Admins = NewAdmins(t, n.URL, n.DevOpsKey, n.SecurityKey, n.AuditorKey)
	return n
}

func start(t testing.TB, dsn string, opts ...Option) *Server {
	t.Helper()
	// The listener is bound (on 127.0.0.1:0) before the server is built so that its address, the
	// public URL, is known to the configuration.
	srv := httptest.NewUnstartedServer(nil)
	url := "http://" + srv.Listener.Addr().String()
	kek := make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	cfg := app.Config{
		PublicURL: url, KEK: kek, AllowInsecureJWKS: true, CatalogPoll: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, o := range opts {
		o(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := app.Open(ctx, dsn, cfg)
	if err != nil {
		srv.Close()
		t.Fatalf("starting the test server on %s: %v", testdb.Backend(), err)
	}
	srv.Config.Handler = a.Handler
	srv.Start()
	s := &Server{Endpoint: Endpoint{URL: url, PublicURL: a.Config.PublicURL}, App: a, DSN: dsn, srv: srv}
	t.Cleanup(s.stop)
	return s
}

func (s *Server) stop() {
	s.srv.Close()
	s.App.Close()
}

// NewKey creates a principal with the role and returns its API key.
func (s *Server) NewKey(t testing.TB, name, role string) string {
	t.Helper()
	key, err := s.App.CreateKey(context.Background(), name, role)
	if err != nil {
		t.Fatalf("creating principal %s: %v", name, err)
	}
	return key
}

// ensureKey creates a principal named name, or, when a server that ran on the same database
// before already created one, name-2, name-3, ... The first server on a database gets the plain
// names, which tests and audit expectations use.
func (s *Server) ensureKey(t testing.TB, name, role string) string {
	t.Helper()
	try := name
	for i := 2; ; i++ {
		key, err := s.App.CreateKey(context.Background(), try, role)
		if err == nil {
			return key
		}
		if i > 20 {
			t.Fatalf("creating principal %s: %v", name, err)
		}
		try = fmt.Sprintf("%s-%d", name, i)
	}
}
