package jwtverify

import (
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
)

// jwksServer is the kit's CI issuer (internal/testkit/ciissuer: request counter, outage and
// delay switches, JWKS body and Cache-Control overrides) with URL naming its JWKS, which is what
// the cache and the verifier are given.
type jwksServer struct {
	*ciissuer.Issuer
	URL string // the JWKS URL
}

func newJWKSServer(t testing.TB, opts devissuer.Options) *jwksServer {
	t.Helper()
	iss := ciissuer.Start(t, opts)
	return &jwksServer{Issuer: iss, URL: iss.JWKSURL}
}

// fixture is an issuer, its JWKS server and a verifier on a shared test clock.
type fixture struct {
	clock    *ciissuer.Clock
	issuer   *devissuer.Issuer
	server   *jwksServer
	cache    *JWKSCache
	verifier *Verifier
	policy   Policy
}

func newFixture(t testing.TB, opts devissuer.Options) *fixture {
	t.Helper()
	c := ciissuer.NewClock(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	opts.Now = c.Now
	srv := newJWKSServer(t, opts)
	iss := srv.Issuer.Issuer
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
