package jwtverify

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
)

// discoveryPolicy is f's policy with its keys found through the issuer's discovery document.
func (f *fixture) discoveryPolicy() Policy {
	p := f.policy
	p.JWKSURL, p.IssuerURL = "", f.server.Issuer.URL
	return p
}

func findCheck(t *testing.T, res *Result, name string) api.Check {
	t.Helper()
	for _, c := range res.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s check in %v", name, checkNames(res.Checks))
	return api.Check{}
}

// issuer_url: the keys come from the jwks_uri of the discovery document, which is reported as a
// check of its own and cached like a JWKS.
func TestDiscoveryFindsTheKeysAndIsCached(t *testing.T) {
	f := newFixture(t, devissuer.Options{})
	p := f.discoveryPolicy()
	res := f.verifier.Verify(context.Background(), f.mint(t, nil), p)
	if !res.OK {
		t.Fatalf("refused: %s %+v", res.FailedKind, res.Checks)
	}
	names := checkNames(res.Checks)
	if strings.Join(names[:5], ",") != "size,format,algorithm,discovery,key" {
		t.Fatalf("checks %v: want discovery right before key", names)
	}
	d := findCheck(t, res, CheckDiscovery)
	if !d.Passed || d.Expected != f.server.Issuer.URL || d.Actual != f.server.Issuer.URL || !strings.Contains(d.Detail, f.server.URL) {
		t.Fatalf("discovery check %+v: want the issuer expected and found, and the jwks_uri named", d)
	}
	if k := findCheck(t, res, CheckKey); k.Expected != wantDiscoveredKey {
		t.Errorf("key check expects %v, want it to say the key comes from the discovered jwks_uri", k.Expected)
	}
	hits, jwks := f.server.Hits(), f.server.JWKSHits()
	if hits != 2 || jwks != 1 {
		t.Fatalf("%d requests (%d JWKS): want one discovery document and one JWKS", hits, jwks)
	}
	for range 3 {
		if res := f.verifier.Verify(context.Background(), f.mint(t, nil), p); !res.OK {
			t.Fatalf("refused from cache: %s", res.FailedKind)
		}
	}
	if f.server.Hits() != hits {
		t.Fatalf("%d requests after three more tokens, want none (both documents cached)", f.server.Hits()-hits)
	}
	// Past the discovery document's max-age (the dev issuer sends max-age=300 for its JWKS and
	// none for discovery: the default hour) both are fetched again.
	f.clock.Advance(DefaultJWKSMaxAge + time.Second)
	if res := f.verifier.Verify(context.Background(), f.mint(t, nil), p); !res.OK {
		t.Fatalf("refused after expiry: %s", res.FailedKind)
	}
	if got := f.server.Hits() - hits; got != 2 {
		t.Fatalf("%d requests after the max-age, want the discovery document and the JWKS again", got)
	}
}

// A rotated key (unknown kid) refreshes the discovery document together with the JWKS, at most
// once per cool-down.
func TestDiscoveryIsRefreshedWithTheJWKSOnAnUnknownKid(t *testing.T) {
	f := newFixture(t, devissuer.Options{})
	p := f.discoveryPolicy()
	if res := f.verifier.Verify(context.Background(), f.mint(t, nil), p); !res.OK {
		t.Fatalf("refused: %s", res.FailedKind)
	}
	if _, err := f.issuer.Rotate(); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(DefaultRefreshCooldown + time.Second)
	before := f.server.Hits()
	if res := f.verifier.Verify(context.Background(), f.mint(t, nil), p); !res.OK {
		t.Fatalf("refused after rotation: %s %+v", res.FailedKind, res.Checks)
	}
	if got := f.server.Hits() - before; got != 2 {
		t.Fatalf("%d requests for the new kid, want 2 (discovery document and JWKS)", got)
	}
	// Another unknown kid within the cool-down fetches nothing and fails closed.
	if _, err := f.issuer.Rotate(); err != nil {
		t.Fatal(err)
	}
	before = f.server.Hits()
	res := f.verifier.Verify(context.Background(), f.mint(t, nil), p)
	if res.OK || res.FailedCheck != CheckKey || f.server.Hits() != before {
		t.Fatalf("within the cool-down: ok %v, failed %s, %d requests; want the key check to fail without fetching", res.OK, res.FailedCheck, f.server.Hits()-before)
	}
}

// discoveryServer serves a discovery document with the given members (and the JWKS of keys at
// /jwks, when keys is set).
func discoveryServer(t *testing.T, doc map[string]any, keys []byte) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			out := map[string]any{}
			for k, v := range doc {
				if s, ok := v.(string); ok {
					v = strings.ReplaceAll(s, "SELF", srv.URL)
				}
				out[k] = v
			}
			_ = json.NewEncoder(w).Encode(out)
		case "/jwks":
			_, _ = w.Write(keys)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A discovery document that names another issuer cannot vouch for keys: the exchange fails the
// signature kind at the discovery check, which shows what the document said, and its jwks_uri is
// never fetched.
func TestDiscoveryDocumentThatLiesAboutItsIssuerIsRefused(t *testing.T) {
	f := newFixture(t, devissuer.Options{})
	for _, tc := range []struct {
		name, said string
		doc        map[string]any
	}{
		{"another issuer", "https://token.actions.githubusercontent.com", map[string]any{"issuer": "https://token.actions.githubusercontent.com", "jwks_uri": f.server.URL}},
		{"trailing slash", "SELF/", map[string]any{"issuer": "SELF/", "jwks_uri": f.server.URL}},
		{"no issuer", "", map[string]any{"jwks_uri": f.server.URL}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := discoveryServer(t, tc.doc, nil)
			p := f.policy
			p.JWKSURL, p.IssuerURL = "", srv.URL
			before := f.server.JWKSHits()
			res := f.verifier.Verify(context.Background(), f.mint(t, nil), p)
			if res.OK || res.FailedKind != KindSignature || res.FailedCheck != CheckDiscovery {
				t.Fatalf("ok %v, failed %s/%s: want the discovery check to fail as signature", res.OK, res.FailedKind, res.FailedCheck)
			}
			d := findCheck(t, res, CheckDiscovery)
			said := strings.ReplaceAll(tc.said, "SELF", srv.URL)
			if d.Expected != srv.URL || (said != "" && d.Actual != said) || (said == "" && d.Actual != nil) {
				t.Errorf("discovery check expected %v actual %v; want %s and %q", d.Expected, d.Actual, srv.URL, said)
			}
			if !strings.Contains(d.Detail, "issuer") {
				t.Errorf("detail %q does not say the issuer is wrong", d.Detail)
			}
			if f.server.JWKSHits() != before {
				t.Error("the lying document's jwks_uri was fetched")
			}
			if names := checkNames(res.Checks); names[len(names)-1] != CheckDiscovery {
				t.Errorf("checks %v ran past the failed discovery", names)
			}
		})
	}
}

// A discovery document whose jwks_uri breaks the JWKS URL rules is refused, whatever it names.
func TestDiscoveryRefusesAJWKSURIOutsideTheJWKSRules(t *testing.T) {
	f := newFixture(t, devissuer.Options{})
	for name, uri := range map[string]string{
		"credentials":    "https://user:secret@ci.example/jwks",
		"another scheme": "file:///etc/passwd",
		"no host":        "https:///jwks",
		"relative":       "/jwks",
	} {
		t.Run(name, func(t *testing.T) {
			srv := discoveryServer(t, map[string]any{"issuer": "SELF", "jwks_uri": uri}, nil)
			p := f.policy
			p.JWKSURL, p.IssuerURL = "", srv.URL
			res := f.verifier.Verify(context.Background(), f.mint(t, nil), p)
			d := findCheck(t, res, CheckDiscovery)
			if res.OK || res.FailedCheck != CheckDiscovery || d.Actual != srv.URL || !strings.Contains(d.Detail, "jwks_uri is refused") {
				t.Fatalf("failed %s, discovery check %+v: want the jwks_uri refused", res.FailedCheck, d)
			}
			if strings.Contains(d.Detail, "secret") {
				t.Errorf("detail %q shows the credentials", d.Detail)
			}
		})
	}
}

// Outside --allow-insecure-jwks the discovery document's jwks_uri obeys the address rules: a
// literal internal address is refused at discovery, and a name that resolves to one when its keys
// are fetched. The discovery document itself is served over TLS by a server the test's dialer lets
// through (it is on loopback too), so that only the jwks_uri meets the production rules.
func TestDiscoveryRefusesAJWKSURIAtAnInternalAddress(t *testing.T) {
	f := newFixture(t, devissuer.Options{})
	keys, err := f.issuer.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	var jwksHits int
	var doc map[string]any
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/jwks" {
			jwksHits++
			_, _ = w.Write(keys)
			return
		}
		_ = json.NewEncoder(w).Encode(doc)
	}))
	t.Cleanup(srv.Close)
	allowed := srv.Listener.Addr().String()
	_, port, _ := net.SplitHostPort(allowed)

	cache := NewJWKSCache(JWKSOptions{Now: f.clock.Now})
	tr := cache.client.Transport.(*http.Transport)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	dialer := &net.Dialer{Timeout: time.Second, Control: func(network, address string, c syscall.RawConn) error {
		if address == allowed {
			return nil // the discovery server alone
		}
		return publicOnlyControl(network, address, c)
	}}
	tr.DialContext = dialer.DialContext
	v := NewVerifier(cache, VerifierOptions{Now: f.clock.Now})

	for _, tc := range []struct {
		name, jwksURI, failed, detail string
	}{
		{"literal loopback", "https://127.0.0.1:" + port + "/jwks", CheckDiscovery, "names a loopback address"},
		{"literal IPv4-mapped loopback", "https://[::ffff:127.0.0.1]:" + port + "/jwks", CheckDiscovery, "names a"},
		// Another port: the dialer lets the discovery server's own address through.
		{"name resolving to loopback", "https://localhost:1/jwks", CheckKey, "localhost resolves to a loopback address"},
		{"http", "http://ci.example/jwks", CheckDiscovery, "must be https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc = map[string]any{"issuer": srv.URL, "jwks_uri": tc.jwksURI}
			cache.Retain(nil) // forget the previous subtest's document
			p := Policy{IssuerURL: srv.URL, Conditions: f.policy.Conditions}
			res := v.Verify(context.Background(), f.mint(t, nil), p)
			last := res.Checks[len(res.Checks)-1]
			if res.OK || res.FailedKind != KindSignature || res.FailedCheck != tc.failed || !strings.Contains(last.Detail, tc.detail) {
				t.Fatalf("failed %s/%s, last check %+v: want %s failing with %q", res.FailedKind, res.FailedCheck, last, tc.failed, tc.detail)
			}
			if strings.Contains(last.Detail, "127.0.0.1") && tc.name == "name resolving to loopback" {
				t.Errorf("detail %q shows the address the name resolved to", last.Detail)
			}
			if jwksHits != 0 {
				t.Fatalf("the internal jwks_uri was fetched %d times", jwksHits)
			}
		})
	}
}

// The cache's bounds and pruning cover discovery documents, and a retained document keeps its
// jwks_uri's keys.
func TestDiscoveryDocumentsAreBoundedAndRetainedWithTheirJWKS(t *testing.T) {
	f := newFixture(t, devissuer.Options{})
	p := f.discoveryPolicy()
	if res := f.verifier.Verify(context.Background(), f.mint(t, nil), p); !res.OK {
		t.Fatal(res.FailedKind)
	}
	if st := f.cache.Stats(); st.URLs != 2 {
		t.Fatalf("%d URLs cached, want the discovery document and its JWKS", st.URLs)
	}
	f.cache.Retain(map[string]struct{}{DiscoveryKey(f.server.Issuer.URL): {}})
	if st := f.cache.Stats(); st.URLs != 2 {
		t.Fatalf("Retain of the discovery key kept %d entries, want its JWKS too", st.URLs)
	}
	hits := f.server.Hits()
	if res := f.verifier.Verify(context.Background(), f.mint(t, nil), p); !res.OK || f.server.Hits() != hits {
		t.Fatalf("after Retain: ok %v, %d fetches; want served from cache", res.OK, f.server.Hits()-hits)
	}
	f.cache.Retain(map[string]struct{}{})
	if st := f.cache.Stats(); st.URLs != 0 {
		t.Fatalf("%d URLs left after the connection went away", st.URLs)
	}

	small := NewJWKSCache(JWKSOptions{AllowInsecure: true, Now: f.clock.Now, MaxURLs: 2})
	v := NewVerifier(small, VerifierOptions{Now: f.clock.Now})
	for range 3 {
		other := newJWKSServer(t, devissuer.Options{})
		tok, err := other.Mint("github", nil, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		_ = v.Verify(context.Background(), tok, Policy{IssuerURL: other.Issuer.URL})
		if st := small.Stats(); st.URLs > 2 {
			t.Fatalf("%d URLs cached, more than the bound of 2", st.URLs)
		}
	}
}

// Inline keys verify tokens without any fetch; an unknown kid or a key ParseJWKS refuses fails the
// key check with the reason, and nothing is fetched either.
func TestInlineKeysVerifyWithoutFetching(t *testing.T) {
	f := newFixture(t, devissuer.Options{})
	doc, err := f.issuer.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	p := f.policy
	p.JWKSURL, p.Inline = "", ParseInlineKeys(string(doc))
	if p.Inline.Len() != 1 || len(p.Sources()) != 0 {
		t.Fatalf("inline keys: %d usable, sources %v", p.Inline.Len(), p.Sources())
	}
	res := f.verifier.Verify(context.Background(), f.mint(t, nil), p)
	if !res.OK {
		t.Fatalf("refused: %s %+v", res.FailedKind, res.Checks)
	}
	if k := findCheck(t, res, CheckKey); k.Expected != wantInlineKey {
		t.Errorf("key check expects %v, want it to name the inline JWKS", k.Expected)
	}
	if _, err := f.issuer.Rotate(); err != nil {
		t.Fatal(err)
	}
	res = f.verifier.Verify(context.Background(), f.mint(t, nil), p)
	if res.OK || res.FailedCheck != CheckKey || res.FailedKind != KindSignature || !strings.Contains(res.Checks[len(res.Checks)-1].Detail, "not among the 1 keys") {
		t.Fatalf("a kid the inline JWKS lacks: ok %v, failed %s, %+v", res.OK, res.FailedCheck, res.Checks[len(res.Checks)-1])
	}
	if f.server.Hits() != 0 {
		t.Fatalf("%d requests for inline keys, want none", f.server.Hits())
	}

	// A 1024-bit RSA key: accepted as a public JWK when saved, refused by the JWKS rules here.
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	e := base64.RawURLEncoding.EncodeToString(big.NewInt(int64(weak.E)).Bytes())
	weakDoc := `{"keys":[{"kty":"RSA","kid":"weak","n":"` + base64.RawURLEncoding.EncodeToString(weak.N.Bytes()) + `","e":"` + e + `"}]}`
	p.Inline = ParseInlineKeys(weakDoc)
	res = f.verifier.Verify(context.Background(), f.mint(t, nil), p)
	if last := res.Checks[len(res.Checks)-1]; res.OK || last.Name != CheckKey || !strings.Contains(last.Detail, "at least 2048 required") {
		t.Fatalf("a 1024-bit inline key: ok %v, last check %+v", res.OK, last)
	}
}
