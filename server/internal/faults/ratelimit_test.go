package faults_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
)

// clientFrom is an HTTP client whose connections come from the given loopback address, so the
// server sees a different client address.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
}

// rateLimitedExchange sends one form exchange through hc with optional extra headers.
func rateLimitedExchange(hc *http.Client, base, connection, tok string, header http.Header) exchangeResult {
	form := "grant_type=" + api.GrantTypeTokenExchange + "&subject_token=" + tok +
		"&subject_token_type=" + api.TokenTypeJWT + "&connection=" + connection
	return postToken(hc, base, "application/x-www-form-urlencoded", []byte(form), header)
}

func jsonExchange(hc *http.Client, base, connection, tok string) exchangeResult {
	b, _ := json.Marshal(api.TokenRequest{GrantType: api.GrantTypeTokenExchange, SubjectToken: tok,
		SubjectTokenType: api.TokenTypeJWT, Connection: connection})
	return postToken(hc, base, "application/json", b, nil)
}

// want429 checks a rate-limited answer and returns its Retry-After.
func want429(t *testing.T, what string, r exchangeResult) time.Duration {
	t.Helper()
	if r.Status != http.StatusTooManyRequests {
		t.Fatalf("%s: %s, want 429", what, r)
	}
	secs, err := strconv.Atoi(r.RetryAfter)
	if err != nil || secs < 1 {
		t.Fatalf("%s: 429 with Retry-After %q, want whole seconds ≥ 1", what, r.RetryAfter)
	}
	if r.Token != "" {
		t.Fatalf("%s: a 429 carries a token", what)
	}
	return time.Duration(secs) * time.Second
}

func want200(t *testing.T, what string, r exchangeResult) {
	t.Helper()
	if r.Status != http.StatusOK || r.Token == "" {
		t.Fatalf("%s: %s, want 200 with a token", what, r)
	}
}

// TestRateLimitPerConnection: --rate-limit-connection bounds exchanges per connection name,
// whatever the body encoding, without touching other connections.
func TestRateLimitPerConnection(t *testing.T) {
	t.Parallel()
	const burst = 3
	d := newDeployment(t, sqliteDSN(t))
	s := startServer(t, "ratelimit-connection", d, withFlags("--rate-limit-connection", "2", "--rate-limit-burst", strconv.Itoa(burst)))
	iss := startIssuer(t)
	createActive(t, s, iss.connectionInput("rl-a"))
	createActive(t, s, iss.connectionInput("rl-b"))
	tok := iss.token(t)
	hc := clientFrom("127.0.0.1")

	for i := 0; i < burst; i++ {
		want200(t, "exchange within the burst", rateLimitedExchange(hc, s.URL, "rl-a", tok, nil))
	}
	retry := want429(t, "exchange past the burst of rl-a", rateLimitedExchange(hc, s.URL, "rl-a", tok, nil))
	want200(t, "exchange on rl-b while rl-a is limited", rateLimitedExchange(hc, s.URL, "rl-b", tok, nil))
	// The same request as JSON (CONTRACT.md §4 accepts both) is the same connection: still limited.
	want429(t, "JSON exchange on rl-a while rl-a is limited", jsonExchange(hc, s.URL, "rl-a", tok))

	time.Sleep(retry)
	want200(t, "exchange on rl-a after waiting Retry-After", rateLimitedExchange(hc, s.URL, "rl-a", tok, nil))
	summary(t, "rate limit per connection (2/s, burst %d): request %d answered 429 Retry-After %s, other connection unaffected, JSON body limited too, served again after waiting",
		burst, burst+1, retry)
}

// TestRateLimitPerClientAddress: --rate-limit-client bounds exchanges per client address, across
// connections; another address is unaffected, and a forged X-Forwarded-For does not open a new
// bucket.
func TestRateLimitPerClientAddress(t *testing.T) {
	t.Parallel()
	const burst = 3
	d := newDeployment(t, sqliteDSN(t))
	s := startServer(t, "ratelimit-client", d, withFlags("--rate-limit-client", "2", "--rate-limit-burst", strconv.Itoa(burst)))
	iss := startIssuer(t)
	createActive(t, s, iss.connectionInput("rl-a"))
	createActive(t, s, iss.connectionInput("rl-b"))
	tok := iss.token(t)
	one, two := clientFrom("127.0.0.1"), clientFrom("127.0.0.2")

	for i := 0; i < burst; i++ {
		want200(t, "exchange within the burst", rateLimitedExchange(one, s.URL, []string{"rl-a", "rl-b"}[i%2], tok, nil))
	}
	retry := want429(t, "exchange past the burst from 127.0.0.1", rateLimitedExchange(one, s.URL, "rl-b", tok, nil))
	want200(t, "exchange from 127.0.0.2 while 127.0.0.1 is limited", rateLimitedExchange(two, s.URL, "rl-a", tok, nil))
	for i, xff := range []string{"203.0.113.7", "198.51.100.1, 127.0.0.1"} {
		r := rateLimitedExchange(one, s.URL, "rl-a", tok, http.Header{"X-Forwarded-For": {xff}, "X-Real-Ip": {"192.0.2." + strconv.Itoa(i+1)}})
		want429(t, "exchange from the limited 127.0.0.1 claiming X-Forwarded-For "+xff, r)
	}

	time.Sleep(retry)
	want200(t, "exchange from 127.0.0.1 after waiting Retry-After", rateLimitedExchange(one, s.URL, "rl-a", tok, nil))
	summary(t, "rate limit per client address (2/s, burst %d): request %d answered 429 Retry-After %s, another address unaffected, forged X-Forwarded-For still limited, served again after waiting",
		burst, burst+1, retry)
}

// TestTrustedProxyForwardsTheClientAddress: behind a load balancer named by --trusted-proxies, the
// client address (for the per-client limit and the audit log) is the one X-Forwarded-For names; a
// peer that is not a trusted proxy cannot do the same (TestRateLimitPerClientAddress).
func TestTrustedProxyForwardsTheClientAddress(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, sqliteDSN(t))
	s := startServer(t, "trusted-proxy", d, withFlags("--trusted-proxies", "127.0.0.1/32", "--rate-limit-client", "1", "--rate-limit-burst", "1"))
	iss := startIssuer(t)
	createActive(t, s, iss.connectionInput("rl-a"))
	tok := iss.token(t)
	lb := clientFrom("127.0.0.1")
	from := func(ip string) http.Header {
		return http.Header{"X-Forwarded-For": {ip}, "X-Request-Id": {"via-lb-" + strings.ReplaceAll(ip, ".", "-")}}
	}
	want200(t, "first exchange of 203.0.113.1 through the trusted proxy", rateLimitedExchange(lb, s.URL, "rl-a", tok, from("203.0.113.1")))
	want429(t, "second exchange of 203.0.113.1 through the trusted proxy", rateLimitedExchange(lb, s.URL, "rl-a", tok, from("203.0.113.1")))
	want200(t, "first exchange of 203.0.113.2 through the same proxy", rateLimitedExchange(lb, s.URL, "rl-a", tok, from("203.0.113.2")))
	found := false
	for _, ev := range allAuditEvents(t, s.security(t), apiclient.AuditOptions{Action: api.ActionTokenExchange}) {
		if ev.RequestID == "via-lb-203-0-113-2" {
			found = true
			if ev.RemoteAddr != "203.0.113.2" {
				t.Errorf("audit remote_addr %q, want the forwarded client 203.0.113.2", ev.RemoteAddr)
			}
		}
	}
	if !found {
		t.Error("no audit event for the exchange through the proxy")
	}
	summary(t, "trusted proxy: behind --trusted-proxies the per-client limit and the audit log follow X-Forwarded-For")
}
