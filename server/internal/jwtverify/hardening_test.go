package jwtverify

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
)

// rsaJWK is an RSA public JWK whose modulus has exactly bits bits. The number is random, not a
// product of primes: parsing and size checks never look further, and a real 97,600-bit key would
// take hours to generate.
func rsaJWK(t testing.TB, kid string, bits int) string {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(bits-1)))
	if err != nil {
		t.Fatal(err)
	}
	n.SetBit(n, bits-1, 1).SetBit(n, 0, 1)
	return fmt.Sprintf(`{"kty":"RSA","kid":%q,"use":"sig","n":%q,"e":"AQAB"}`, kid, base64.RawURLEncoding.EncodeToString(n.Bytes()))
}

// withKeys is the issuer's JWKS with extra JWK objects appended.
func withKeys(t testing.TB, iss *devissuer.Issuer, extra ...string) []byte {
	t.Helper()
	good, err := iss.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.TrimSuffix(string(good), "]}") + "," + strings.Join(extra, ",") + "]}")
}

// CONTRACT.md §4 (v2): RSA keys over 8192 bits are refused when the JWKS is parsed, with a reason,
// so a hostile JWKS cannot make each verification cost a quarter of a second of CPU.
func TestParseJWKSRefusesRSAKeysOver8192Bits(t *testing.T) {
	iss, err := devissuer.New(devissuer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	doc := withKeys(t, iss, rsaJWK(t, "huge", 97600), rsaJWK(t, "just-over", 8193), rsaJWK(t, "at-bound", 8192))

	keys, ignored, err := ParseJWKS(doc)

	if err != nil {
		t.Fatal(err)
	}
	kids := map[string]bool{}
	for _, k := range keys {
		kids[k.KID] = true
	}
	if !kids[iss.KID()] || !kids["at-bound"] || len(keys) != 2 {
		t.Fatalf("usable keys %v, want the issuer's and the 8192-bit one", kids)
	}
	reasons := map[string]string{}
	for _, ig := range ignored {
		reasons[ig.KID] = ig.Reason
	}
	for kid, want := range map[string]string{"huge": "97600 bits, at most 8192", "just-over": "8193 bits, at most 8192"} {
		if !strings.Contains(reasons[kid], want) {
			t.Errorf("key %q: reason %q, want it to say %q", kid, reasons[kid], want)
		}
	}
}

// A token whose kid names the oversized key fails the signature kind at the key check: the
// verifier reports no signature check at all, so no RSA verification ran.
func TestVerifyNeverRunsRSAOnAnOversizedKey(t *testing.T) {
	f := newFixture(t, devissuer.Options{})
	f.server.ServeJWKS(withKeys(t, f.issuer, rsaJWK(t, "huge", 97600)))
	tok, err := f.issuer.MintWith(devissuer.MintOptions{Shape: "github", Header: map[string]any{"kid": "huge"}})
	if err != nil {
		t.Fatal(err)
	}

	res := f.verifier.Verify(context.Background(), tok, f.policy)

	if res.OK || res.FailedKind != KindSignature || res.FailedCheck != CheckKey {
		t.Fatalf("kind %q check %q, want signature at the key check", res.FailedKind, res.FailedCheck)
	}
	last := res.Checks[len(res.Checks)-1]
	if last.Name != CheckKey || !strings.Contains(last.Detail, "97600 bits, at most 8192") {
		t.Fatalf("last check %+v, want the key check naming the refused size", last)
	}
	for _, c := range res.Checks {
		if c.Name == CheckSignature {
			t.Fatalf("a signature check ran on the oversized key: %+v", res.Checks)
		}
	}
	// The other keys of the same JWKS keep working.
	if res := f.verifier.Verify(context.Background(), f.mint(t, nil), f.policy); !res.OK {
		t.Fatalf("a token under the good key: %q %+v", res.FailedKind, res.Checks)
	}
}

// multiJWKS serves the same JWKS under any path and query, counting requests per URL.
func multiJWKS(t testing.TB, body []byte) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// CONTRACT.md §4 (v2): the cache holds at most 1,000 URLs; the least recently used go first.
func TestJWKSCacheHoldsAtMostAThousandURLs(t *testing.T) {
	iss, err := devissuer.New(devissuer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := iss.JWKS()
	srv, _ := multiJWKS(t, body)
	c := ciissuer.NewClock(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	cache := NewJWKSCache(JWKSOptions{AllowInsecure: true, Now: c.Now})
	ctx := context.Background()
	first := srv.URL + "/jwks?v=0"
	for i := range MaxCachedURLs + 200 {
		c.Advance(time.Second)
		if _, err := cache.Keys(ctx, fmt.Sprintf("%s/jwks?v=%d", srv.URL, i)); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			// The first URL stays in use, so it is never the least recently used.
			if _, err := cache.Keys(ctx, first); err != nil {
				t.Fatal(err)
			}
		}
	}
	s := cache.Stats()
	if s.URLs != MaxCachedURLs {
		t.Fatalf("%d URLs cached, want the bound %d", s.URLs, MaxCachedURLs)
	}
	if s.Evictions != 200 {
		t.Fatalf("%d evictions, want 200", s.Evictions)
	}
	if _, ok := cache.hot.Load(first); !ok {
		t.Fatal("the URL in use was evicted before idle ones")
	}
	if _, ok := cache.hot.Load(srv.URL + "/jwks?v=1"); ok {
		t.Fatal("the least recently used URL is still cached")
	}
}

func TestJWKSCacheEvictsLeastRecentlyUsedFirst(t *testing.T) {
	iss, err := devissuer.New(devissuer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := iss.JWKS()
	srv, fetches := multiJWKS(t, body)
	c := ciissuer.NewClock(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	cache := NewJWKSCache(JWKSOptions{AllowInsecure: true, Now: c.Now, MaxURLs: 3})
	ctx := context.Background()
	url := func(s string) string { return srv.URL + "/" + s }
	use := func(s string) {
		t.Helper()
		c.Advance(time.Second)
		if _, err := cache.Key(ctx, url(s), iss.KID()); err != nil {
			t.Fatal(err)
		}
	}
	use("a")
	use("b")
	use("c")
	use("a") // b is now the least recently used
	use("d")
	for s, want := range map[string]bool{"a": true, "b": false, "c": true, "d": true} {
		if _, ok := cache.hot.Load(url(s)); ok != want {
			t.Errorf("%s cached = %v, want %v", s, ok, want)
		}
	}
	if got := fetches.Load(); got != 4 {
		t.Fatalf("%d fetches, want 4 (a hit on a cached URL fetches nothing)", got)
	}
}

// CONTRACT.md §4 (v2): at most 16 MiB of key material. Each JWKS here is just under 1 MiB of
// RSA-2048 keys (the largest a fetch accepts), so 20 URLs would hold ~20 MiB without the bound.
func TestJWKSCacheHoldsAtMostSixteenMebibytesOfKeys(t *testing.T) {
	iss, err := devissuer.New(devissuer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	size := 0
	for i := 0; size < DefaultJWKSMaxBytes-4096; i++ {
		k := rsaJWK(t, fmt.Sprintf("k%d", i), 2048)
		keys = append(keys, k)
		size += len(k) + 1
	}
	body := withKeys(t, iss, keys...)
	if len(body) > DefaultJWKSMaxBytes {
		t.Fatalf("test JWKS is %d bytes, over the fetch cap", len(body))
	}
	srv, _ := multiJWKS(t, body)
	c := ciissuer.NewClock(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	cache := NewJWKSCache(JWKSOptions{AllowInsecure: true, Now: c.Now})
	ctx := context.Background()
	var last string
	for i := range 20 {
		c.Advance(time.Second)
		last = fmt.Sprintf("%s/jwks?v=%d", srv.URL, i)
		if _, err := cache.Keys(ctx, last); err != nil {
			t.Fatal(err)
		}
		if s := cache.Stats(); s.Bytes > MaxCachedBytes {
			t.Fatalf("after %d URLs the cache holds %d bytes, over %d", i+1, s.Bytes, MaxCachedBytes)
		}
	}
	s := cache.Stats()
	if s.URLs >= 20 || s.Bytes < MaxCachedBytes/2 {
		t.Fatalf("stats %+v: want some URLs evicted and the cache filled towards its bound", s)
	}
	if _, ok := cache.hot.Load(last); !ok {
		t.Fatal("the URL just fetched was evicted")
	}
	t.Logf("%d keys per JWKS (%d bytes): %d URLs cached, %d bytes", len(keys)+1, len(body), s.URLs, s.Bytes)
}

// Retain drops what no connection uses; what stays is served without a new fetch.
func TestJWKSCacheRetainDropsURLsNoConnectionUses(t *testing.T) {
	f := newFixture(t, devissuer.Options{})
	ctx := context.Background()
	for _, q := range []string{"", "?v=1", "?v=2"} {
		if _, err := f.cache.Keys(ctx, f.server.URL+q); err != nil {
			t.Fatal(err)
		}
	}
	f.cache.Retain(map[string]struct{}{f.server.URL: {}})

	if s := f.cache.Stats(); s.URLs != 1 || s.Evictions != 2 {
		t.Fatalf("stats %+v, want 1 URL left and 2 evictions", s)
	}
	before := f.server.JWKSHits()
	if res := f.verifier.Verify(ctx, f.mint(t, nil), f.policy); !res.OK {
		t.Fatalf("%q %+v", res.FailedKind, res.Checks)
	}
	if got := f.server.JWKSHits(); got != before {
		t.Fatalf("the retained URL was fetched again (%d → %d)", before, got)
	}
	if s := f.cache.Stats(); s.Bytes <= 0 {
		t.Fatalf("stats %+v: the retained key set has no size", s)
	}
	f.cache.Retain(nil)
	if s := f.cache.Stats(); s.URLs != 0 || s.Bytes != 0 {
		t.Fatalf("stats %+v after retaining nothing, want an empty cache", s)
	}
}

// A URL forgotten while its fetch runs is not resurrected by the fetch's result, and the byte
// count stays exact.
func TestJWKSCacheForgettingAURLDuringItsFetchKeepsCountsExact(t *testing.T) {
	f := newFixture(t, devissuer.Options{})
	f.server.SetDelay(100 * time.Millisecond)
	done := make(chan error, 1)
	go func() {
		_, err := f.cache.Keys(context.Background(), f.server.URL)
		done <- err
	}()
	for f.server.JWKSHits() == 0 {
		time.Sleep(time.Millisecond)
	}
	f.cache.Retain(nil)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := f.cache.Stats(); s.URLs != 0 || s.Bytes != 0 {
		t.Fatalf("stats %+v, want the forgotten URL gone and 0 bytes", s)
	}
}

// noAddress fails when text shows an IP address (v4 or v6, with or without a port).
func noAddress(t *testing.T, what, text string) {
	t.Helper()
	for _, tok := range strings.FieldsFunc(text, func(r rune) bool {
		return r != '.' && r != ':' && r != '[' && r != ']' && (r < '0' || r > '9') && (r < 'a' || r > 'f') && (r < 'A' || r > 'F')
	}) {
		for _, cand := range []string{tok, strings.Trim(tok, "[]:."), hostOf(tok)} {
			if a, err := netip.ParseAddr(cand); err == nil && (a.Is4() || strings.Count(cand, ":") >= 2) {
				t.Errorf("%s shows the address %s: %q", what, cand, text)
				return
			}
		}
	}
}

func hostOf(s string) string {
	if h, _, err := net.SplitHostPort(s); err == nil {
		return h
	}
	return s
}

// CONTRACT.md §4 (v2): what users see of a failed fetch names the host, never the address it
// resolved to (nor the DNS server's).
func TestJWKSFetchErrorsNameTheHostNeverTheResolvedAddress(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer tlsSrv.Close()
	_, tlsPort, _ := net.SplitHostPort(tlsSrv.Listener.Addr().String())
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, closedPort, _ := net.SplitHostPort(closed.Addr().String())
	closed.Close()

	secure := NewJWKSCache(JWKSOptions{})
	insecure := NewJWKSCache(JWKSOptions{AllowInsecure: true})
	cases := []struct {
		name  string
		cache *JWKSCache
		url   string
		want  string
		is    error
	}{
		{"a name resolving to loopback", secure, "https://localhost:" + tlsPort + "/jwks", "localhost resolves to a loopback address", ErrAddressRefused},
		{"connection refused", insecure, "http://localhost:" + closedPort + "/jwks", "localhost refused the connection", ErrFetch},
		{"untrusted certificate", insecure, "https://localhost:" + tlsPort + "/jwks", "the TLS certificate of localhost", ErrFetch},
		{"a name that does not exist", insecure, "http://trustgate-test.invalid/jwks", "trustgate-test.invalid", ErrFetch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cache.Keys(context.Background(), tc.url)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %v naming %q", err, tc.is, tc.want)
			}
			noAddress(t, "the fetch error", err.Error())
		})
	}
}

// Lookups, new URLs, evictions and Retain racing each other (run with -race) leave the counts
// exact and within the bounds.
func TestJWKSCacheBoundsHoldUnderConcurrentUse(t *testing.T) {
	iss, err := devissuer.New(devissuer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := iss.JWKS()
	srv, _ := multiJWKS(t, body)
	cache := NewJWKSCache(JWKSOptions{AllowInsecure: true, MaxURLs: 8})
	ctx := context.Background()
	done := make(chan struct{})
	var wg, pruner sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				if _, err := cache.Key(ctx, fmt.Sprintf("%s/jwks?g=%d&v=%d", srv.URL, g, i%20), iss.KID()); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	pruner.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
				cache.Retain(map[string]struct{}{srv.URL + "/jwks?g=0&v=0": {}})
			}
		}
	})
	wg.Wait()
	close(done)
	pruner.Wait()

	cache.mu.Lock()
	defer cache.mu.Unlock()
	var sum int64
	for _, e := range cache.entries {
		sum += e.size
	}
	if len(cache.entries) > 8 || sum != cache.bytes {
		t.Fatalf("%d entries (bound 8), %d bytes counted, %d held", len(cache.entries), cache.bytes, sum)
	}
}

// A JWKS of many tiny bogus keys keeps only a few refusal reasons, so its parsed form stays far
// smaller than the document (the cache's byte bound counts what is kept).
func TestParseJWKSKeepsAFewReasonsForManyRefusedKeys(t *testing.T) {
	iss, err := devissuer.New(devissuer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bogus := make([]string, 200_000)
	for i := range bogus {
		bogus[i] = "{}"
	}
	keys, ignored, err := ParseJWKS(withKeys(t, iss, bogus...))
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys %d, err %v: want the one good key", len(keys), err)
	}
	if len(ignored) != maxIgnoredKeys {
		t.Fatalf("%d refusal reasons kept, want %d", len(ignored), maxIgnoredKeys)
	}
	_, _, err = ParseJWKS([]byte(`{"keys":[` + strings.Join(bogus, ",") + `]}`))
	if err == nil || len(err.Error()) > 2048 || !strings.Contains(err.Error(), fmt.Sprintf("%d more", len(bogus)-maxIgnoredKeys)) {
		t.Fatalf("error of %d bytes, want a short one counting the rest: %.300v", len(fmt.Sprint(err)), err)
	}
}
