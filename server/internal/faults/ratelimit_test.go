package faults_test

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/testdb"
)

// from is s as a client at the given loopback address reaches it, so that the server sees a
// different client address.
func from(s *server, ip string) testkit.Endpoint {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	e := s.Endpoint
	e.HTTP = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
	return e
}

// want429 checks a rate-limited answer and returns its Retry-After.
func want429(t *testing.T, what string, r testkit.TokenResult) time.Duration {
	t.Helper()
	if r.Status != http.StatusTooManyRequests {
		t.Fatalf("%s: %s, want 429", what, r)
	}
	secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || secs < 1 {
		t.Fatalf("%s: 429 with Retry-After %q, want whole seconds ≥ 1", what, r.Header.Get("Retry-After"))
	}
	if r.OK.AccessToken != "" {
		t.Fatalf("%s: a 429 carries a token", what)
	}
	return time.Duration(secs) * time.Second
}

func want200(t *testing.T, what string, r testkit.TokenResult) {
	t.Helper()
	if r.Status != http.StatusOK || r.OK.AccessToken == "" {
		t.Fatalf("%s: %s, want 200 with a token", what, r)
	}
}

// TestRateLimitPerConnection: --rate-limit-connection bounds exchanges per connection name,
// whatever the body encoding, without touching other connections.
func TestRateLimitPerConnection(t *testing.T) {
	t.Parallel()
	const burst = 3
	d := newDeployment(t, testdb.SQLite(t))
	s := startServer(t, "ratelimit-connection", d, "--rate-limit-connection", "2", "--rate-limit-burst", strconv.Itoa(burst))
	iss := startIssuer(t)
	s.admins(t).CreateActive(t, connectionInput(iss, "rl-a"))
	s.admins(t).CreateActive(t, connectionInput(iss, "rl-b"))
	tok := ciToken(t, iss)
	hc := from(s, "127.0.0.1")

	for i := 0; i < burst; i++ {
		want200(t, "exchange within the burst", hc.Exchange("rl-a", tok))
	}
	retry := want429(t, "exchange past the burst of rl-a", hc.Exchange("rl-a", tok))
	want200(t, "exchange on rl-b while rl-a is limited", hc.Exchange("rl-b", tok))
	// The same request as JSON (CONTRACT.md §4 accepts both) is the same connection: still limited.
	want429(t, "JSON exchange on rl-a while rl-a is limited", hc.ExchangeJSON("rl-a", tok))

	time.Sleep(retry)
	want200(t, "exchange on rl-a after waiting Retry-After", hc.Exchange("rl-a", tok))
	summary(t, "rate limit per connection (2/s, burst %d): request %d answered 429 Retry-After %s, other connection unaffected, JSON body limited too, served again after waiting",
		burst, burst+1, retry)
}

// TestRateLimitPerClientAddress: --rate-limit-client bounds exchanges per client address, across
// connections; another address is unaffected, and a forged X-Forwarded-For does not open a new
// bucket.
func TestRateLimitPerClientAddress(t *testing.T) {
	t.Parallel()
	const burst = 3
	d := newDeployment(t, testdb.SQLite(t))
	s := startServer(t, "ratelimit-client", d, "--rate-limit-client", "2", "--rate-limit-burst", strconv.Itoa(burst))
	iss := startIssuer(t)
	s.admins(t).CreateActive(t, connectionInput(iss, "rl-a"))
	s.admins(t).CreateActive(t, connectionInput(iss, "rl-b"))
	tok := ciToken(t, iss)
	one, two := from(s, "127.0.0.1"), from(s, "127.0.0.2")

	for i := 0; i < burst; i++ {
		want200(t, "exchange within the burst", one.Exchange([]string{"rl-a", "rl-b"}[i%2], tok))
	}
	retry := want429(t, "exchange past the burst from 127.0.0.1", one.Exchange("rl-b", tok))
	want200(t, "exchange from 127.0.0.2 while 127.0.0.1 is limited", two.Exchange("rl-a", tok))
	for i, xff := range []string{"203.0.113.7", "198.51.100.1, 127.0.0.1"} {
		r := one.PostForm(testkit.ExchangeForm("rl-a", tok), http.Header{"X-Forwarded-For": {xff}, "X-Real-Ip": {"192.0.2." + strconv.Itoa(i+1)}})
		want429(t, "exchange from the limited 127.0.0.1 claiming X-Forwarded-For "+xff, r)
	}

	time.Sleep(retry)
	want200(t, "exchange from 127.0.0.1 after waiting Retry-After", one.Exchange("rl-a", tok))
	summary(t, "rate limit per client address (2/s, burst %d): request %d answered 429 Retry-After %s, another address unaffected, forged X-Forwarded-For still limited, served again after waiting",
		burst, burst+1, retry)
}

// TestTrustedProxyForwardsTheClientAddress: behind a load balancer named by --trusted-proxies, the
// client address (for the per-client limit and the audit log) is the one X-Forwarded-For names; a
// peer that is not a trusted proxy cannot do the same (TestRateLimitPerClientAddress).
func TestTrustedProxyForwardsTheClientAddress(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, testdb.SQLite(t))
	s := startServer(t, "trusted-proxy", d, "--trusted-proxies", "127.0.0.1/32", "--rate-limit-client", "1", "--rate-limit-burst", "1")
	iss := startIssuer(t)
	s.admins(t).CreateActive(t, connectionInput(iss, "rl-a"))
	tok := ciToken(t, iss)
	lb := from(s, "127.0.0.1")
	from := func(ip string) http.Header {
		return http.Header{"X-Forwarded-For": {ip}, "X-Request-Id": {"via-lb-" + strings.ReplaceAll(ip, ".", "-")}}
	}
	want200(t, "first exchange of 203.0.113.1 through the trusted proxy", lb.PostForm(testkit.ExchangeForm("rl-a", tok), from("203.0.113.1")))
	want429(t, "second exchange of 203.0.113.1 through the trusted proxy", lb.PostForm(testkit.ExchangeForm("rl-a", tok), from("203.0.113.1")))
	want200(t, "first exchange of 203.0.113.2 through the same proxy", lb.PostForm(testkit.ExchangeForm("rl-a", tok), from("203.0.113.2")))
	found := false
	for _, ev := range testkit.AuditEvents(t, s.admins(t).Security, apiclient.AuditOptions{Action: api.ActionTokenExchange}) {
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
