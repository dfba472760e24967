package jwtverify

import (
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"

	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
)

func TestJWKSRotationPicksUpNewKidWithoutRestart(t *testing.T) {
	f := newFixture(t, devissuer.Options{})
	if res := f.verifier.Verify(context.Background(), f.mint(t, nil), f.policy); !res.OK {
		t.Fatalf("before rotation: %q", res.FailedKind)
	}
	if _, err := f.issuer.Rotate(); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(DefaultRefreshCooldown + time.Second)

	res := f.verifier.Verify(context.Background(), f.mint(t, nil), f.policy)

	if !res.OK {
		t.Fatalf("after rotation: %q %+v", res.FailedKind, res.Checks)
	}
	if got := f.server.JWKSHits(); got != 2 {
		t.Fatalf("JWKS fetched %d times, want 2 (initial + one refresh on the new kid)", got)
	}
}

func TestJWKSUnknownKidWithinCooldownFailsClosedWithoutFetching(t *testing.T) {
	f := newFixture(t, devissuer.Options{})
	if _, err := f.cache.Key(context.Background(), f.server.URL, f.issuer.KID()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.issuer.Rotate(); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(DefaultRefreshCooldown - time.Second)

	_, err := f.cache.Key(context.Background(), f.server.URL, f.issuer.KID())

	if !errors.Is(err, ErrUnknownKID) {
		t.Fatalf("err = %v, want ErrUnknownKID", err)
	}
	if got := f.server.JWKSHits(); got != 1 {
		t.Fatalf("JWKS fetched %d times within the cool-down, want 1", got)
	}
}

func TestJWKSServerDownKeepsCachedKeysFor24Hours(t *testing.T) {
	f := newFixture(t, devissuer.Options{})
	kid := f.issuer.KID()
	ctx := context.Background()
	if _, err := f.cache.Key(ctx, f.server.URL, kid); err != nil {
		t.Fatal(err)
	}
	f.server.SetDown(true)

	// Past max-age (1 h default): the refresh fails, cached keys keep working.
	f.clock.Advance(2 * time.Hour)
	if _, err := f.cache.Key(ctx, f.server.URL, kid); err != nil {
		t.Fatalf("cached key refused while the JWKS server is down: %v", err)
	}
	if s := f.cache.Stats(); s.FetchErrors != 1 || s.StaleServed == 0 {
		t.Fatalf("stats = %+v, want one fetch error and stale answers", s)
	}
	// An unknown kid fails closed.
	f.clock.Advance(time.Minute)
	if _, err := f.cache.Key(ctx, f.server.URL, "rotated-kid"); !errors.Is(err, ErrUnknownKID) {
		t.Fatalf("unknown kid while down: err = %v, want ErrUnknownKID", err)
	}
	// A whole verification still succeeds on the cached key.
	if res := f.verifier.Verify(ctx, f.mint(t, nil), f.policy); !res.OK {
		t.Fatalf("verify while down: %q %+v", res.FailedKind, res.Checks)
	}
	// 24 h after the last successful fetch the cache gives up.
	f.clock.Advance(22 * time.Hour)
	if _, err := f.cache.Key(ctx, f.server.URL, kid); !errors.Is(err, ErrFetch) {
		t.Fatalf("after 24 h: err = %v, want ErrFetch", err)
	}
	// When the server is back, keys are fetched again.
	f.server.SetDown(false)
	f.clock.Advance(DefaultRefreshCooldown + time.Second)
	if _, err := f.cache.Key(ctx, f.server.URL, kid); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestJWKSFirstFetchFailureIsNotRetriedWithinCooldown(t *testing.T) {
	f := newFixture(t, devissuer.Options{})
	f.server.SetDown(true)
	ctx := context.Background()
	for range 5 {
		if _, err := f.cache.Key(ctx, f.server.URL, f.issuer.KID()); !errors.Is(err, ErrFetch) {
			t.Fatalf("err = %v, want ErrFetch", err)
		}
	}
	if got := f.server.JWKSHits(); got != 1 {
		t.Fatalf("fetched %d times, want 1", got)
	}
}

func TestJWKSConcurrentUnknownKidsShareOneFetchPerCooldown(t *testing.T) {
	f := newFixture(t, devissuer.Options{})
	ctx := context.Background()
	if _, err := f.cache.Key(ctx, f.server.URL, f.issuer.KID()); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(DefaultRefreshCooldown + time.Second)
	f.server.SetDelay(50 * time.Millisecond)

	burst := func() {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 50 {
			wg.Go(func() {
				<-start
				_, err := f.cache.Key(ctx, f.server.URL, fmt.Sprintf("unknown-%d", i))
				if !errors.Is(err, ErrUnknownKID) {
					t.Errorf("err = %v, want ErrUnknownKID", err)
				}
			})
		}
		close(start)
		wg.Wait()
	}
	burst()
	if got := f.server.JWKSHits(); got != 2 {
		t.Fatalf("after a burst of 50 unknown kids: %d fetches in total, want 2 (initial + 1)", got)
	}
	burst()
	if got := f.server.JWKSHits(); got != 2 {
		t.Fatalf("a second burst within the cool-down fetched again: %d fetches", got)
	}
	if s := f.cache.Stats(); s.Fetches != 2 {
		t.Fatalf("Stats().Fetches = %d, want 2", s.Fetches)
	}
}

func TestJWKSMaxAgeIsClamped(t *testing.T) {
	cases := []struct {
		header string
		want   time.Duration
	}{
		{"", time.Hour},
		{"max-age=60", 5 * time.Minute},
		{"public, max-age=7200", 2 * time.Hour},
		{"max-age=999999999999999", 24 * time.Hour},
		{"no-cache, max-age=600", 10 * time.Minute},
		{"max-age=abc", time.Hour},
		{"max-age=-5", time.Hour},
		{`MAX-AGE="900"`, 15 * time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.header, func(t *testing.T) {
			if got := maxAge(tc.header); got != tc.want {
				t.Fatalf("maxAge(%q) = %s, want %s", tc.header, got, tc.want)
			}
		})
	}
}

func TestJWKSRefetchesOnlyAfterClampedMaxAge(t *testing.T) {
	f := newFixture(t, devissuer.Options{})
	f.server.SetCacheControl("max-age=10")
	ctx := context.Background()
	kid := f.issuer.KID()
	if _, err := f.cache.Key(ctx, f.server.URL, kid); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(4 * time.Minute)
	if _, err := f.cache.Key(ctx, f.server.URL, kid); err != nil {
		t.Fatal(err)
	}
	if got := f.server.JWKSHits(); got != 1 {
		t.Fatalf("max-age=10 must be raised to 5 min: %d fetches after 4 min", got)
	}
	f.clock.Advance(2 * time.Minute)
	if _, err := f.cache.Key(ctx, f.server.URL, kid); err != nil {
		t.Fatal(err)
	}
	if got := f.server.JWKSHits(); got != 2 {
		t.Fatalf("after 6 min: %d fetches, want 2", got)
	}
}

func TestJWKSBodyOverOneMebibyteIsRefused(t *testing.T) {
	f := newFixture(t, devissuer.Options{})
	jwks, err := f.issuer.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	// Valid JSON, padded with whitespace just past the cap.
	big := append(append([]byte{}, jwks...), []byte(strings.Repeat(" ", DefaultJWKSMaxBytes-len(jwks)+1))...)
	f.server.ServeJWKS(big)

	_, err = f.cache.Key(context.Background(), f.server.URL, f.issuer.KID())

	if !errors.Is(err, ErrFetch) || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v, want a size refusal", err)
	}

	// Exactly at the cap is fine.
	f.server.ServeJWKS(big[:DefaultJWKSMaxBytes])
	f.clock.Advance(DefaultRefreshCooldown + time.Second)
	if _, err := f.cache.Key(context.Background(), f.server.URL, f.issuer.KID()); err != nil {
		t.Fatalf("a JWKS of exactly 1 MiB: %v", err)
	}
}

func TestJWKSRefusesLoopbackAndPlainHTTPUnlessInsecure(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte(`{"keys":[]}`))
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(interface{ String() string }).String()
	_, port, _ = strings.Cut(port, ":")

	cache := NewJWKSCache(JWKSOptions{})
	cases := []struct {
		name string
		url  string
		want error
	}{
		{"https on 127.0.0.1", srv.URL, ErrAddressRefused},
		{"https on a name resolving to loopback", "https://localhost:" + port + "/jwks", ErrAddressRefused},
		{"https on IPv6 loopback", "https://[::1]:" + port + "/jwks", ErrAddressRefused},
		{"plain http", "http://" + srv.Listener.Addr().String() + "/jwks", ErrInsecureURL},
		{"file scheme", "file:///etc/passwd", ErrInsecureURL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cache.Keys(context.Background(), tc.url)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the loopback server got %d requests", n)
	}
}

func TestRefusedAddressClassifiesInternalRanges(t *testing.T) {
	refused := []string{"127.0.0.1", "127.8.9.10", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "fc00::1",
		"169.254.169.254", "fe80::1", "0.0.0.0", "::", "100.64.0.1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
		"224.0.0.1", "255.255.255.255", "0.1.2.3"}
	allowed := []string{"8.8.8.8", "140.82.112.3", "2606:4700:4700::1111", "172.32.0.1", "192.169.0.1"}
	for _, s := range refused {
		if connection.JWKSAddrRefusal(netip.MustParseAddr(s)) == "" {
			t.Errorf("%s must be refused", s)
		}
	}
	for _, s := range allowed {
		if why := connection.JWKSAddrRefusal(netip.MustParseAddr(s)); why != "" {
			t.Errorf("%s must be allowed, refused as %s", s, why)
		}
	}
}

func TestParseJWKSIgnoresUnusableKeysWithAReason(t *testing.T) {
	f := newFixture(t, devissuer.Options{})
	good, err := f.issuer.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	goodKey := strings.TrimSuffix(strings.TrimPrefix(string(good), `{"keys":[`), `]}`)
	weak, err := devissuer.New(devissuer.Options{RSABits: 1024, KID: "weak"})
	if err != nil {
		t.Fatal(err)
	}
	weakJWKS, _ := weak.JWKS()
	weakKey := strings.TrimSuffix(strings.TrimPrefix(string(weakJWKS), `{"keys":[`), `]}`)
	doc := `{"keys":[` + strings.Join([]string{
		goodKey,
		weakKey,
		`{"kty":"oct","kid":"hmac","k":"c2VjcmV0"}`,
		`{"kty":"RSA","kid":"enc","use":"enc","n":"AQAB","e":"AQAB"}`,
		`{"kty":"OKP","kid":"x25519","crv":"X25519","x":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"}`,
		`{"kty":"EC","kid":"bad-ec","crv":"P-256","x":"AA","y":"AA"}`,
		`"not an object"`,
	}, ",") + `]}`

	keys, ignored, err := ParseJWKS([]byte(doc))

	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].KID != f.issuer.KID() {
		t.Fatalf("usable keys = %+v", keys)
	}
	reasons := map[string]string{}
	for _, ig := range ignored {
		reasons[ig.KID] = ig.Reason
	}
	for kid, want := range map[string]string{"weak": "1024 bits", "hmac": "cannot verify", "enc": "not sig", "x25519": "", "bad-ec": "invalid key"} {
		why, ok := reasons[kid]
		if !ok || !strings.Contains(why, want) {
			t.Errorf("key %q: reason %q (present %v), want it to mention %q", kid, why, ok, want)
		}
	}
	if len(ignored) != 6 {
		t.Errorf("ignored %d keys, want 6: %+v", len(ignored), ignored)
	}

	if _, _, err := ParseJWKS([]byte(`{"keys":[` + weakKey + `]}`)); err == nil || !strings.Contains(err.Error(), "1024 bits") {
		t.Fatalf("a JWKS with only a weak key: err = %v, want a refusal naming the reason", err)
	}
	if _, _, err := ParseJWKS([]byte(`[]`)); err == nil {
		t.Fatal("a non-object JWKS must be refused")
	}
}

func TestJWKSKeyCertificateURLsAreNeverFetched(t *testing.T) {
	var hits atomic.Int64
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer attacker.Close()
	f := newFixture(t, devissuer.Options{})
	good, _ := f.issuer.JWKS()
	withX5U := strings.Replace(string(good), `"kty"`, `"x5u":"`+attacker.URL+`/chain.pem","kty"`, 1)
	f.server.ServeJWKS([]byte(withX5U))

	if res := f.verifier.Verify(context.Background(), f.mint(t, nil), f.policy); !res.OK {
		t.Fatalf("%q %+v", res.FailedKind, res.Checks)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("x5u of a JWK was fetched %d times", n)
	}
}

func TestJWKSWaitingCallerHonoursItsContext(t *testing.T) {
	f := newFixture(t, devissuer.Options{})
	f.server.SetDelay(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := f.cache.Key(ctx, f.server.URL, f.issuer.KID()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	// The shared fetch itself goes on for the next caller, who joins it (or finds its result
	// cached): no second fetch.
	if _, err := f.cache.Key(context.Background(), f.server.URL, f.issuer.KID()); err != nil {
		t.Fatalf("the next caller: %v", err)
	}
	if got := f.server.JWKSHits(); got != 1 {
		t.Errorf("%d JWKS fetches, want 1: the abandoned fetch was not the one the next caller got", got)
	}
}
