package e2e_test

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
	"github.com/trustgate/terraform-provider-trustgate/server/app"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
)

// envWith is newEnv on a server with a changed configuration.
func envWith(t *testing.T, cfg func(*app.Config)) *env {
	t.Helper()
	return &env{Server: testkit.Start(t, testkit.WithConfig(cfg)), iss: ciissuer.Start(t, devissuer.Options{})}
}

// metric reads one unlabelled sample from the server's /metrics.
func (e *env) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get(e.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}

// hugeRSAJWK is an RSA public JWK with a 97,600-bit modulus (the size of the issue's report). The
// number is random rather than a product of primes: nothing may get as far as using it.
func hugeRSAJWK(t *testing.T, kid string) string {
	t.Helper()
	const bits = 97600
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), bits-1))
	if err != nil {
		t.Fatal(err)
	}
	n.SetBit(n, bits-1, 1).SetBit(n, 0, 1)
	return fmt.Sprintf(`{"kty":"RSA","kid":%q,"n":%q,"e":"AQAB"}`, kid, base64.RawURLEncoding.EncodeToString(n.Bytes()))
}

// Issue 12, finding 6: a hostile JWKS publishes a 97,600-bit RSA key. The key is refused when the
// JWKS is parsed, so a token under its kid fails the signature kind at the key check, through the
// exchange (audited at the key check) and through the test endpoint (no signature check reported),
// and never reaches an RSA verification.
func TestOversizedRSAKeyInAJWKSIsRefusedBeforeAnyVerification(t *testing.T) {
	e := newEnv(t)
	good, err := e.iss.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	hostile := []byte(strings.TrimSuffix(string(good), "]}") + "," + hugeRSAJWK(t, "huge") + "]}")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(hostile) }))
	t.Cleanup(srv.Close)
	in := e.generic("hostile-jwks")
	in.JWKSURL = srv.URL + "/jwks"
	conn := e.CreateActive(t, in)
	tok := e.iss.MustMintWith(t, devissuer.MintOptions{Shape: "generic", Claims: map[string]any{"aud": e.URL}, Header: map[string]any{"kid": "huge"}})

	t.Run("exchange", func(t *testing.T) {
		r := e.Exchange(conn.Name, tok)
		testkit.MustRefuse(t, r, api.ErrInvalidGrant, "signature")
		ev, ok := e.ExchangeEvents(t, conn.ID)[r.RequestID]
		if !ok {
			t.Fatalf("no audit event for request %s", r.RequestID)
		}
		if ev.Detail["check"] != "key" || !strings.Contains(fmt.Sprint(ev.Detail["detail"]), "97600 bits, at most 8192") {
			t.Fatalf("audit detail %v, want the key check naming the refused size", ev.Detail)
		}
	})
	t.Run("test endpoint", func(t *testing.T) {
		res, err := e.DevOps.TestToken(t.Context(), conn.Name, tok)
		if err != nil {
			t.Fatal(err)
		}
		last := res.Checks[len(res.Checks)-1]
		if res.WouldIssue || last.Name != "key" || last.Passed || !strings.Contains(last.Detail, "97600 bits, at most 8192") {
			t.Fatalf("would_issue %v, last check %+v: want the key check failing on the size", res.WouldIssue, last)
		}
		for _, c := range res.Checks {
			if c.Name == "signature" {
				t.Fatalf("a signature check ran: %+v", res.Checks)
			}
		}
	})
	t.Run("the JWKS's good key still works", func(t *testing.T) {
		testkit.MustGrant(t, e.Exchange(conn.Name, e.iss.MustMint(t, "generic", map[string]any{"aud": e.URL})), ttlOf(&conn.TokenTTL))
	})
}

// Issue 12, finding 7: a DevOps admin loops "PATCH the draft's jwks_url to ?v=N, POST /test".
// Before, every round left its key set in memory for good; now the cache holds only the URLs
// connections use, read from the server's own gauges.
func TestJWKSCacheStaysBoundedWhileADevOpsAdminLoopsPatchAndTest(t *testing.T) {
	e := newEnv(t)
	other := e.CreateActive(t, e.generic("in-use"))
	testkit.MustGrant(t, e.Exchange(other.Name, e.iss.MustMint(t, "generic", map[string]any{"aud": e.URL})), ttlOf(&other.TokenTTL))
	draft := e.CreateDraft(t, e.generic("looped"))
	tok := e.iss.MustMint(t, "generic", map[string]any{"aud": e.URL})
	const rounds = 60
	maxURLs, maxBytes := 0.0, 0.0
	for i := range rounds {
		patch := map[string]any{"jwks_url": fmt.Sprintf("%s?v=%d", e.iss.JWKSURL, i)}
		if _, err := e.DevOps.PatchConnection(t.Context(), draft.Name, patch, 0); err != nil {
			t.Fatalf("round %d: PATCH: %v", i, err)
		}
		res, err := e.DevOps.TestToken(t.Context(), draft.Name, tok)
		if err != nil || !res.WouldIssue {
			t.Fatalf("round %d: test: %v %+v", i, err, res)
		}
		maxURLs = max(maxURLs, e.metric(t, "trustgate_jwks_cache_urls"))
		maxBytes = max(maxBytes, e.metric(t, "trustgate_jwks_cache_bytes"))
	}
	// The active connection's URL and the draft's current one.
	if maxURLs > 2 {
		t.Fatalf("the cache held up to %v URLs during %d rounds, want at most 2", maxURLs, rounds)
	}
	if got := e.metric(t, "trustgate_jwks_cache_evictions_total"); got < rounds-1 {
		t.Fatalf("%v URLs dropped, want at least %d (every URL the draft no longer uses)", got, rounds-1)
	}
	// Deleting the draft drops its URL too.
	if err := e.DevOps.DeleteConnection(t.Context(), draft.Name, 0); err != nil {
		t.Fatal(err)
	}
	if got := e.metric(t, "trustgate_jwks_cache_urls"); got != 1 {
		t.Fatalf("%v URLs cached after the draft was deleted, want 1 (the active connection's)", got)
	}
	t.Logf("%d PATCH+test rounds: at most %v URLs and %v bytes cached", rounds, maxURLs, maxBytes)
}

// addressesIn lists the IP addresses that text shows (with or without brackets and ports).
func addressesIn(text string) []string {
	var out []string
	for _, tok := range strings.FieldsFunc(text, func(r rune) bool {
		return !strings.ContainsRune("0123456789abcdefABCDEF.:[]", r)
	}) {
		cands := []string{tok, strings.Trim(tok, "[]:.")}
		if h, _, err := net.SplitHostPort(tok); err == nil {
			cands = append(cands, h)
		}
		for _, c := range cands {
			if a, err := netip.ParseAddr(c); err == nil && (a.Is4() || strings.Count(c, ":") >= 2) {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

// Issue 12, finding 9: the test endpoint's answer names the JWKS host, never the address the name
// resolved to.
func TestTestEndpointNeverShowsTheAddressAJWKSHostResolvedTo(t *testing.T) {
	t.Run("a connection refused on a name", func(t *testing.T) {
		e := newEnv(t) // insecure JWKS allowed: the dial happens and fails
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		ln.Close()
		in := e.generic("closed-port")
		in.JWKSURL = "http://localhost:" + port + "/jwks"
		conn := e.CreateDraft(t, in)
		res, err := e.DevOps.TestToken(t.Context(), conn.Name, e.iss.MustMint(t, "generic", map[string]any{"aud": e.URL}))
		if err != nil {
			t.Fatal(err)
		}
		key := res.Checks[len(res.Checks)-1]
		if key.Name != "key" || !strings.Contains(key.Detail, "localhost refused the connection") {
			t.Fatalf("last check %+v, want the key check saying localhost refused the connection", key)
		}
		if a := addressesIn(fmt.Sprintf("%+v", res.Checks)); len(a) > 0 {
			t.Fatalf("the answer shows %v: %+v", a, res.Checks)
		}
	})
	t.Run("a name resolving to an internal address", func(t *testing.T) {
		// A name this machine resolves to an internal address without DNS: its own host name
		// (in /etc/hosts, usually loopback or a private container address).
		host, err := os.Hostname()
		if err != nil {
			t.Skipf("no host name to resolve: %v", err)
		}
		addrs, err := net.DefaultResolver.LookupNetIP(t.Context(), "ip", host)
		if err != nil || len(addrs) == 0 {
			t.Skipf("the host name %q does not resolve here (%v): no name resolving to an internal address to test with", host, err)
		}
		for _, a := range addrs {
			if !connection.BlockedJWKSAddr(a) {
				t.Skipf("the host name %q resolves to the public address %s here: no name resolving to an internal address to test with", host, a)
			}
		}
		e := envWith(t, func(c *app.Config) { c.AllowInsecureJWKS = false })
		in := e.generic("internal-name")
		in.JWKSURL = "https://" + host + "/jwks"
		conn := e.CreateDraft(t, in)
		res, err := e.DevOps.TestToken(t.Context(), conn.Name, e.iss.MustMint(t, "generic", map[string]any{"aud": e.URL}))
		if err != nil {
			t.Fatal(err)
		}
		key := res.Checks[len(res.Checks)-1]
		if key.Name != "key" || !strings.Contains(key.Detail, host+" resolves to a") {
			t.Fatalf("last check %+v, want the key check saying %s resolves to an internal address", key, host)
		}
		if a := addressesIn(fmt.Sprintf("%+v", res.Checks)); len(a) > 0 {
			t.Fatalf("the answer shows %v (%s resolves to %v): %+v", a, host, addrs, res.Checks)
		}
	})
}

// Issue 12, finding 8a: on two fresh servers, a draft's name and a made-up name meet the same
// limit at the same request with the same answers, so 429s do not reveal which names exist.
// Before, only existing names had a bucket: the draft's name was limited, the made-up one never.
func TestRateLimitTreatsUnknownAndExistingNamesAlike(t *testing.T) {
	const burst = 3
	limited := func(c *app.Config) { c.RatePerConnection, c.RateBurst = 0.001, burst }
	run := func(name string, create bool) []string {
		e := envWith(t, limited)
		if create {
			e.CreateDraft(t, e.generic(name))
		}
		var seen []string
		for range burst + 2 {
			r := e.Exchange(name, e.iss.MustMint(t, "generic", map[string]any{"aud": e.URL}))
			seen = append(seen, fmt.Sprintf("%d %s %s", r.Status, r.Refusal.Error, strings.ReplaceAll(r.Refusal.ErrorDescription, r.RequestID, "<id>")))
		}
		return seen
	}
	existing, madeUp := run("real-draft", true), run("made-up-name", false)
	for i := range existing {
		if existing[i] != madeUp[i] {
			t.Errorf("request %d: an existing name got %q, a made-up one %q", i+1, existing[i], madeUp[i])
		}
	}
	if !strings.HasPrefix(existing[burst], "429") || !strings.HasPrefix(existing[burst-1], "400 invalid_target") {
		t.Fatalf("answers %q: want %d invalid_target then 429", existing, burst)
	}
}

// Issue 12, finding 8d: an attacker floods an active connection with tokens that fail (a forged
// signature, and a well-signed token that fails a condition). It exhausts only the bucket of
// refused requests; the CI job's tokens keep their whole budget. Before, the attacker's requests
// drained the one per-connection bucket and the CI job got 429.
func TestRefusedTokensCannotExhaustAConnectionsBudget(t *testing.T) {
	const burst = 3
	e := envWith(t, func(c *app.Config) { c.RatePerConnection, c.RateBurst = 0.001, burst })
	conn := e.CreateActive(t, e.generic("ci-deploy"))
	forger := ciissuer.Start(t, devissuer.Options{KID: e.iss.KID()})
	forged := forger.MustMint(t, "generic", map[string]any{"aud": e.URL, "iss": e.iss.URL})
	foreign := e.iss.MustMint(t, "generic", map[string]any{"aud": "https://someone-else.example"})
	for i := range 3 * burst {
		r := e.Exchange(conn.Name, []string{forged, foreign}[i%2])
		if i < burst {
			testkit.MustRefuse(t, r, api.ErrInvalidGrant, "")
		} else if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
			t.Fatalf("attacker request %d: %s, want 429 with Retry-After once its bucket is empty", i+1, r)
		}
	}
	for range burst {
		testkit.MustGrant(t, e.Exchange(conn.Name, e.iss.MustMint(t, "generic", map[string]any{"aud": e.URL})), ttlOf(&conn.TokenTTL))
	}
	// The CI job's own budget is per connection, and now used up.
	if r := e.Exchange(conn.Name, e.iss.MustMint(t, "generic", map[string]any{"aud": e.URL})); r.Status != http.StatusTooManyRequests {
		t.Fatalf("CI request %d: %s, want 429 (the connection's budget is %d)", burst+1, r, burst)
	}
}

// Issue 12, finding 8c: IPv6 clients are limited per /64. The server trusts the loopback proxy,
// whose X-Forwarded-For names the client.
func TestRateLimitGroupsIPv6ClientsByTheirSlash64(t *testing.T) {
	const burst = 2
	e := envWith(t, func(c *app.Config) {
		c.RatePerClient, c.RateBurst = 0.001, burst
		c.TrustedProxies = []string{"127.0.0.0/8", "::1"}
	})
	from := func(addr string) testkit.TokenResult {
		return e.PostToken("application/x-www-form-urlencoded", []byte(testkit.ExchangeForm("nobody", "a.b.c").Encode()),
			http.Header{"X-Forwarded-For": {addr}})
	}
	for i := range burst {
		if r := from(fmt.Sprintf("2001:db8:1:2::%x", i+1)); r.Status == http.StatusTooManyRequests {
			t.Fatalf("request %d within the burst: %s", i+1, r)
		}
	}
	for _, addr := range []string{"2001:db8:1:2::99", "2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2:abcd::1"} {
		if r := from(addr); r.Status != http.StatusTooManyRequests {
			t.Fatalf("%s, in the same /64 as the burst: %s, want 429", addr, r)
		}
	}
	for _, addr := range []string{"2001:db8:1:3::1", "203.0.113.9"} {
		if r := from(addr); r.Status == http.StatusTooManyRequests {
			t.Fatalf("%s, another client: %s, want its own bucket", addr, r)
		}
	}
}

// Issue 12, finding 10: text a database cannot store (NUL, invalid UTF-8) inside a decoded list
// cursor is a 422 problem naming the cursor, for both lists, never a 500 (PostgreSQL refused the
// NUL with an error before) and never sent to the database.
func TestUnstorableTextInsideAListCursorIs422(t *testing.T) {
	e := newEnv(t)
	e.CreateDraft(t, e.generic("listed"))
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, list := range []struct{ path, kind string }{{"/v1/workload-connections", "c"}, {"/v1/audit-events", "a"}} {
		for what, cursor := range map[string]string{
			"escaped NUL":   enc(`{"k":"` + list.kind + `","n":"a\u0000","s":1}`),
			"invalid UTF-8": enc(`{"k":"` + list.kind + `","n":"a` + "\xff" + `","s":1}`),
		} {
			p := e.Do(t, testkit.Request{Method: http.MethodGet, Path: list.path + "?cursor=" + cursor, Key: e.SecurityKey}).
				Problem(t, http.StatusUnprocessableEntity)
			if len(p.Errors) != 1 || p.Errors[0].Field != "cursor" {
				t.Errorf("%s, cursor with %s: %+v, want a 422 problem naming cursor", list.path, what, p)
			}
		}
	}
}
