// Package testserver starts a real Trustgate server (router, services and store) on a real socket
// for tests: the API tests, the provider's acceptance tests and end-to-end tests share it. The store
// is SQLite in a temporary directory, or a fresh PostgreSQL database when
// TRUSTGATE_TEST_POSTGRES_URL is set (see server/store/storetest).
package testserver

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/server/api"
	"github.com/trustgate/terraform-provider-trustgate/server/apiclient"
	"github.com/trustgate/terraform-provider-trustgate/server/app"
	"github.com/trustgate/terraform-provider-trustgate/server/principal"
	"github.com/trustgate/terraform-provider-trustgate/server/store"
	"github.com/trustgate/terraform-provider-trustgate/server/store/storetest"
)

// Server is a running test server with three principals.
type Server struct {
	URL         string
	App         *app.App
	Store       *store.Store
	DevOpsKey   string // principal "devops", role devops_admin
	SecurityKey string // principal "security", role security_admin
	AuditorKey  string // principal "auditor", role auditor

	srv *httptest.Server
}

// Restart stops this server and starts a new one on the same store with the same key-encryption
// key and default audience (so signing keys load and fingerprints stay put), keeping the API keys.
// The new server listens on a new port, so its URL (the access-token issuer) differs.
func (s *Server) Restart(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s.srv.Close()
	s.App.Close()
	kek, audience := s.App.Config.KEK, s.App.Config.Audience
	keep := func(c *app.Config) { c.KEK, c.Audience = kek, audience }
	n := start(t, s.Store, append([]Option{keep}, opts...)...)
	n.DevOpsKey, n.SecurityKey, n.AuditorKey = s.DevOpsKey, s.SecurityKey, s.AuditorKey
	return n
}

// Option adjusts the server configuration before it starts.
type Option func(*app.Config)

// WithConfig lets a test change any configuration field.
func WithConfig(f func(*app.Config)) Option { return Option(f) }

// Start starts a server and stops it when the test ends. Insecure JWKS URLs are allowed (the dev
// issuer of a test listens on loopback http) and the default audience is the server's URL.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	st := storetest.New(t)
	return StartOn(t, st, opts...)
}

// StartOn starts a server on an existing store and creates fresh principals (use Restart to keep
// the KEK, the audience and the keys of a server that ran on the store before).
func StartOn(t testing.TB, st *store.Store, opts ...Option) *Server {
	t.Helper()
	s := start(t, st, opts...)
	s.DevOpsKey = s.ensureKey(t, "devops", api.RoleDevOpsAdmin)
	s.SecurityKey = s.ensureKey(t, "security", api.RoleSecurityAdmin)
	s.AuditorKey = s.ensureKey(t, "auditor", api.RoleAuditor)
	return s
}

func start(t testing.TB, st *store.Store, opts ...Option) *Server {
	t.Helper()
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
	a, err := app.New(context.Background(), cfg, st)
	if err != nil {
		t.Fatalf("starting the test server: %v", err)
	}
	srv.Config.Handler = a.Handler
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		a.Close()
	})
	return &Server{URL: url, App: a, Store: st, srv: srv}
}

// ensureKey creates a principal, or a fresh key under a new name when the store already has it
// (a restarted server on the same database).
func (s *Server) ensureKey(t testing.TB, name, role string) string {
	t.Helper()
	ps, err := s.Store.ListPrincipals(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.Name == name {
			name = sanitize(name + "-" + time.Now().Format("150405.000000"))
		}
	}
	return s.NewKey(t, name, role)
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			b[i] = '-'
		}
	}
	return string(b)
}

// NewKey creates a principal with the role and returns its API key.
func (s *Server) NewKey(t testing.TB, name, role string) string {
	t.Helper()
	key, hash, err := principal.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Store.CreatePrincipal(context.Background(), principal.Principal{Name: name, Role: role, KeyHash: hash}); err != nil {
		t.Fatalf("creating principal %s: %v", name, err)
	}
	return key
}

// Client returns an API client using key.
func (s *Server) Client(t testing.TB, key string) *apiclient.Client {
	t.Helper()
	c, err := apiclient.New(s.URL, key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
