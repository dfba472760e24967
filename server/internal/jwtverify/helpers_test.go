package jwtverify

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
)

// clock is a settable test clock shared by the issuer, the cache and the verifier.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// jwksServer serves an issuer's JWKS over real HTTP and counts requests. Down makes it answer 503;
// Body overrides what it serves.
type jwksServer struct {
	*httptest.Server
	issuer       *devissuer.Issuer
	requests     atomic.Int64
	down         atomic.Bool
	delay        atomic.Int64 // nanoseconds to wait before answering
	cacheControl atomic.Value // string
	body         atomic.Value // []byte, overrides the issuer's JWKS when set
}

func newJWKSServer(t testing.TB, iss *devissuer.Issuer) *jwksServer {
	t.Helper()
	s := &jwksServer{issuer: iss}
	s.cacheControl.Store("")
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if d := s.delay.Load(); d > 0 {
			time.Sleep(time.Duration(d))
		}
		if s.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if cc := s.cacheControl.Load().(string); cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		if b, ok := s.body.Load().([]byte); ok {
			_, _ = w.Write(b)
			return
		}
		b, err := s.issuer.JWKS()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write(b)
	}))
	t.Cleanup(s.Close)
	return s
}

// fixture is an issuer, its JWKS server and a verifier on a shared test clock.
type fixture struct {
	clock    *clock
	issuer   *devissuer.Issuer
	server   *jwksServer
	cache    *JWKSCache
	verifier *Verifier
	policy   Policy
}

func newFixture(t testing.TB, opts devissuer.Options) *fixture {
	t.Helper()
	c := newClock()
	opts.Now = c.Now
	iss, err := devissuer.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := newJWKSServer(t, iss)
	cache := NewJWKSCache(JWKSOptions{AllowInsecure: true, Now: c.Now})
	return &fixture{
		clock:    c,
		issuer:   iss,
		server:   srv,
		cache:    cache,
		verifier: NewVerifier(cache, VerifierOptions{Now: c.Now}),
		policy: Policy{
			JWKSURL: srv.URL,
			Conditions: []api.Condition{
				{Claim: "iss", Operator: api.OpEquals, Value: ptr("https://token.actions.githubusercontent.com")},
				{Claim: "repository", Operator: api.OpEquals, Value: ptr("octo-org/octo-repo")},
			},
		},
	}
}

func (f *fixture) mint(t *testing.T, claims map[string]any) string {
	t.Helper()
	tok, err := f.issuer.Mint("github", claims, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func ptr(s string) *string { return &s }

func b64json(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func checkNames(checks []api.Check) []string {
	out := make([]string, len(checks))
	for i, c := range checks {
		out[i] = c.Name
	}
	return out
}
