// Package ciissuer is the CI side of a test: a dev issuer (internal/devissuer) with real keys,
// served over loopback HTTP with request counters and switches for outages, and a settable clock
// that the issuer and the server under test can share. It does not depend on the server, so the
// server's own packages (jwtverify) test with it as well as internal/testkit, which builds on it.
package ciissuer

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
)

// JWKSPath is where the issuer publishes its keys.
const JWKSPath = "/.well-known/jwks.json"

// Issuer is a dev issuer served over HTTP on loopback for the length of one test. Its
// discovery document and JWKS are the dev issuer's; the switches below break them on demand.
type Issuer struct {
	*devissuer.Issuer
	URL     string // the issuer URL: iss of its generic tokens
	JWKSURL string // URL + JWKSPath

	srv            *httptest.Server
	closed         chan struct{} // closed when the test ends: releases delayed answers
	hits, jwksHits atomic.Int64
	down           atomic.Bool
	delay          atomic.Int64 // time.Duration

	mu           sync.Mutex
	jwksBody     []byte // served instead of the keys when set
	cacheControl string // replaces the dev issuer's Cache-Control on the JWKS when set
}

// Start starts an issuer with opts (a fresh RSA-2048 key by default) and stops it when the test
// ends. The issuer URL is the server's loopback URL.
func Start(t testing.TB, opts devissuer.Options) *Issuer {
	t.Helper()
	di, err := devissuer.New(opts)
	if err != nil {
		t.Fatalf("dev issuer: %v", err)
	}
	i := &Issuer{Issuer: di, closed: make(chan struct{})}
	h := di.Handler()
	i.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i.hits.Add(1)
		jwks := r.URL.Path == JWKSPath
		if jwks {
			i.jwksHits.Add(1)
		}
		if d := time.Duration(i.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			case <-i.closed:
				return
			}
		}
		if i.down.Load() {
			http.Error(w, "the issuer is down (test switch)", http.StatusServiceUnavailable)
			return
		}
		i.mu.Lock()
		body, cc := i.jwksBody, i.cacheControl
		i.mu.Unlock()
		if jwks && body != nil {
			if cc != "" {
				w.Header().Set("Cache-Control", cc)
			}
			_, _ = w.Write(body)
			return
		}
		if jwks && cc != "" {
			w = cacheControlWriter{ResponseWriter: w, value: cc}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		close(i.closed)
		i.srv.Close()
	})
	i.URL = i.srv.URL
	i.JWKSURL = i.srv.URL + JWKSPath
	di.SetIssuer(i.URL)
	return i
}

// cacheControlWriter replaces the Cache-Control header the dev issuer sets.
type cacheControlWriter struct {
	http.ResponseWriter
	value string
}

func (w cacheControlWriter) WriteHeader(status int) {
	w.Header().Set("Cache-Control", w.value)
	w.ResponseWriter.WriteHeader(status)
}

func (w cacheControlWriter) Write(b []byte) (int, error) {
	w.Header().Set("Cache-Control", w.value)
	return w.ResponseWriter.Write(b)
}

// Hits is how many requests of any kind the issuer received.
func (i *Issuer) Hits() int64 { return i.hits.Load() }

// JWKSHits is how many times its JWKS was requested.
func (i *Issuer) JWKSHits() int64 { return i.jwksHits.Load() }

// SetDown makes every answer a 503 (true) or the normal one again (false).
func (i *Issuer) SetDown(down bool) { i.down.Store(down) }

// SetDelay makes every answer wait d first (0: none). A waiting answer ends early when its client
// gives up or the test ends.
func (i *Issuer) SetDelay(d time.Duration) { i.delay.Store(int64(d)) }

// ServeJWKS makes the JWKS endpoint answer body instead of the issuer's keys (nil: the keys again).
func (i *Issuer) ServeJWKS(body []byte) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.jwksBody = body
}

// SetCacheControl makes the JWKS answer carry this Cache-Control ("": the dev issuer's max-age=300).
func (i *Issuer) SetCacheControl(v string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.cacheControl = v
}

// Close stops the HTTP server: from now on connections to the issuer are refused.
func (i *Issuer) Close() { i.srv.Close() }

// MustMint signs a token of shape (devissuer.Shapes) with the claims overridden (a nil value
// deletes one) and the default lifetime, failing the test on error.
func (i *Issuer) MustMint(t testing.TB, shape string, claims map[string]any) string {
	t.Helper()
	return i.MustMintWith(t, devissuer.MintOptions{Shape: shape, Claims: claims})
}

// MustMintWith signs a token as o describes, failing the test on error.
func (i *Issuer) MustMintWith(t testing.TB, o devissuer.MintOptions) string {
	t.Helper()
	tok, err := i.MintWith(o)
	if err != nil {
		t.Fatalf("minting a %s token: %v", o.Shape, err)
	}
	return tok
}

// Clock is a settable clock for tests. Share it between the issuer (devissuer.Options.Now) and the
// server (testkit.WithClock) to move time forward instead of waiting for it.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock that stands at start until it is advanced.
func NewClock(start time.Time) *Clock { return &Clock{t: start} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
