package jwtverify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
)

func TestVerifyAcceptsValidTokenAndReportsEveryCheckInOrder(t *testing.T) {
	f := newFixture(t, devissuer.Options{})
	tok := f.mint(t, nil)

	res := f.verifier.Verify(context.Background(), tok, f.policy)

	if !res.OK || res.FailedKind != "" || !res.Verified {
		t.Fatalf("want OK, got kind %q checks %+v", res.FailedKind, res.Checks)
	}
	want := []string{"size", "format", "algorithm", "key", "signature", "exp", "nbf", "iat", "lifetime",
		"condition: iss equals", "condition: repository equals", "identity"}
	if got := checkNames(res.Checks); !slices.Equal(got, want) {
		t.Fatalf("checks = %q, want %q", got, want)
	}
	if res.Subject != "repo:octo-org/octo-repo:environment:prod" {
		t.Errorf("subject = %q", res.Subject)
	}
	if res.SourceIssuer != "https://token.actions.githubusercontent.com" {
		t.Errorf("source issuer = %q", res.SourceIssuer)
	}
	if res.KeyID != f.issuer.KID() || res.Algorithm != "RS256" {
		t.Errorf("kid/alg = %q/%q", res.KeyID, res.Algorithm)
	}
	if _, ok := res.Claims["exp"].(json.Number); !ok {
		t.Errorf("claims must be decoded with UseNumber, exp is %T", res.Claims["exp"])
	}
}

func TestVerifyIdentityClaimBecomesSubject(t *testing.T) {
	f := newFixture(t, devissuer.Options{})
	p := f.policy
	p.IdentityClaim = "repository"
	res := f.verifier.Verify(context.Background(), f.mint(t, nil), p)
	if !res.OK || res.Subject != "octo-org/octo-repo" {
		t.Fatalf("OK=%v subject=%q", res.OK, res.Subject)
	}

	p.IdentityClaim = "/no/such/claim"
	res = f.verifier.Verify(context.Background(), f.mint(t, nil), p)
	if res.OK || res.FailedKind != KindCondition || res.FailedCheck != CheckIdentity {
		t.Fatalf("unresolvable identity: OK=%v kind=%q check=%q", res.OK, res.FailedKind, res.FailedCheck)
	}
}

func TestVerifyReportsEveryFailedConditionAndNamesTheFirst(t *testing.T) {
	f := newFixture(t, devissuer.Options{})
	tok := f.mint(t, map[string]any{"repository": "evil/repo", "iss": "https://evil.example"})

	res := f.verifier.Verify(context.Background(), tok, f.policy)

	if res.OK || res.FailedKind != KindCondition || res.FailedCheck != "condition: iss equals" {
		t.Fatalf("OK=%v kind=%q check=%q", res.OK, res.FailedKind, res.FailedCheck)
	}
	var failed []string
	for _, c := range res.Checks {
		if !c.Passed {
			failed = append(failed, c.Name)
		}
	}
	if want := []string{"condition: iss equals", "condition: repository equals"}; !slices.Equal(failed, want) {
		t.Fatalf("failed checks = %q, want %q", failed, want)
	}
}

func TestVerifyAcceptsEveryAsymmetricAlgorithm(t *testing.T) {
	for _, alg := range SupportedAlgorithms {
		t.Run(alg, func(t *testing.T) {
			f := newFixture(t, devissuer.Options{Alg: alg})
			res := f.verifier.Verify(context.Background(), f.mint(t, nil), f.policy)
			if !res.OK {
				t.Fatalf("kind %q checks %+v", res.FailedKind, res.Checks)
			}
		})
	}
}

func TestVerifyTimeClaimsHaveSixtySecondsLeeway(t *testing.T) {
	f := newFixture(t, devissuer.Options{})
	now := f.clock.Now().Unix()
	cases := []struct {
		name   string
		claims map[string]any
		kind   string
	}{
		{"exp 59 s ago accepted", map[string]any{"exp": now - 59}, ""},
		{"exp 61 s ago refused", map[string]any{"exp": now - 61}, KindExpired},
		{"nbf 59 s ahead accepted", map[string]any{"nbf": now + 59}, ""},
		{"nbf 61 s ahead refused", map[string]any{"nbf": now + 61}, KindNotYetValid},
		{"iat 59 s ahead accepted", map[string]any{"iat": now + 59}, ""},
		{"iat 61 s ahead refused", map[string]any{"iat": now + 61}, KindIssuedInFuture},
		{"lifetime exactly 24 h accepted", map[string]any{"iat": now - 60, "exp": now - 60 + 86400}, ""},
		{"lifetime 24 h + 1 s refused", map[string]any{"iat": now - 60, "exp": now - 60 + 86401}, KindLifetime},
		{"lifetime without iat measured from nbf", map[string]any{"iat": nil, "nbf": now - 10, "exp": now + 86400}, KindLifetime},
		{"fractional exp accepted", map[string]any{"exp": json.Number(fmt.Sprintf("%d.5", now+300))}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := f.verifier.Verify(context.Background(), f.mint(t, tc.claims), f.policy)
			if res.FailedKind != tc.kind || res.OK != (tc.kind == "") {
				t.Fatalf("kind = %q (OK=%v), want %q; checks %+v", res.FailedKind, res.OK, tc.kind, res.Checks)
			}
		})
	}
}

// attack builds a token from the fixture and the attacker's resources.
type attack struct {
	name  string
	token func(t *testing.T, f *fixture, attacker *attackerServer) string
	kind  string
	check string
	// detail must appear in the failing check's detail.
	detail string
}

// attackerServer is a JWKS an attacker controls; no test may ever cause a request to it.
type attackerServer struct {
	*httptest.Server
	key      *rsa.PrivateKey
	requests atomic.Int64
}

func newAttacker(t *testing.T, kid string) *attackerServer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	a := &attackerServer{key: key}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.requests.Add(1)
		n := base64.RawURLEncoding.EncodeToString(key.N.Bytes())
		_, _ = w.Write([]byte(`{"keys":[{"kty":"RSA","kid":"` + kid + `","n":"` + n + `","e":"AQAB"}]}`))
	}))
	t.Cleanup(a.Close)
	return a
}

func signWith(t *testing.T, method jwt.SigningMethod, key any, header map[string]any, claims map[string]any) string {
	t.Helper()
	input := b64json(t, header) + "." + b64json(t, claims)
	sig, err := method.Sign(input, key)
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func validClaims(t *testing.T, f *fixture) map[string]any {
	t.Helper()
	c, err := f.issuer.Claims("github", nil, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func segments(tok string) []string { return strings.Split(tok, ".") }

func TestVerifyRefusesAttacks(t *testing.T) {
	attacks := []attack{
		{
			name: "alg none with empty signature",
			token: func(t *testing.T, f *fixture, _ *attackerServer) string {
				return b64json(t, map[string]any{"alg": "none", "kid": f.issuer.KID()}) + "." + b64json(t, validClaims(t, f)) + "."
			},
			kind: KindAlgorithm, check: CheckAlgorithm,
		},
		{
			name: "alg none spelled NONE with a signature",
			token: func(t *testing.T, f *fixture, _ *attackerServer) string {
				return b64json(t, map[string]any{"alg": "NONE"}) + "." + b64json(t, validClaims(t, f)) + ".c2ln"
			},
			kind: KindAlgorithm, check: CheckAlgorithm,
		},
		{
			name: "HS256 signed with the RSA public key as HMAC secret",
			token: func(t *testing.T, f *fixture, _ *attackerServer) string {
				pub := fetchPublicKeyPEM(t, f)
				return signWith(t, jwt.SigningMethodHS256, pub, map[string]any{"alg": "HS256", "kid": f.issuer.KID()}, validClaims(t, f))
			},
			kind: KindAlgorithm, check: CheckAlgorithm,
		},
		{
			name: "unknown kid",
			token: func(t *testing.T, f *fixture, _ *attackerServer) string {
				return mustMint(t, f, devissuer.MintOptions{Shape: "github", Header: map[string]any{"kid": "not-a-known-kid"}})
			},
			kind: KindSignature, check: CheckKey, detail: "not among",
		},
		{
			name: "jku header pointing to the attacker's JWKS",
			token: func(t *testing.T, f *fixture, a *attackerServer) string {
				return signWith(t, jwt.SigningMethodRS256, a.key,
					map[string]any{"alg": "RS256", "kid": f.issuer.KID(), "jku": a.URL}, validClaims(t, f))
			},
			kind: KindSignature, check: CheckSignature,
		},
		{
			name: "jku header with the attacker's own kid",
			token: func(t *testing.T, f *fixture, a *attackerServer) string {
				return signWith(t, jwt.SigningMethodRS256, a.key,
					map[string]any{"alg": "RS256", "kid": "attacker", "jku": a.URL}, validClaims(t, f))
			},
			kind: KindSignature, check: CheckKey,
		},
		{
			name: "x5u header pointing to the attacker",
			token: func(t *testing.T, f *fixture, a *attackerServer) string {
				return signWith(t, jwt.SigningMethodRS256, a.key,
					map[string]any{"alg": "RS256", "kid": f.issuer.KID(), "x5u": a.URL + "/cert.pem"}, validClaims(t, f))
			},
			kind: KindSignature, check: CheckSignature,
		},
		{
			name: "embedded jwk header with the attacker's key",
			token: func(t *testing.T, f *fixture, a *attackerServer) string {
				jwk := map[string]any{"kty": "RSA", "n": base64.RawURLEncoding.EncodeToString(a.key.N.Bytes()), "e": "AQAB"}
				return signWith(t, jwt.SigningMethodRS256, a.key,
					map[string]any{"alg": "RS256", "kid": f.issuer.KID(), "jwk": jwk}, validClaims(t, f))
			},
			kind: KindSignature, check: CheckSignature,
		},
		{
			name: "expired",
			token: func(t *testing.T, f *fixture, _ *attackerServer) string {
				return f.mint(t, map[string]any{"exp": f.clock.Now().Unix() - 3600})
			},
			kind: KindExpired, check: CheckExp,
		},
		{
			name:  "exp missing",
			token: func(t *testing.T, f *fixture, _ *attackerServer) string { return f.mint(t, map[string]any{"exp": nil}) },
			kind:  KindExpired, check: CheckExp, detail: "required",
		},
		{
			name: "exp is a string",
			token: func(t *testing.T, f *fixture, _ *attackerServer) string {
				return f.mint(t, map[string]any{"exp": "2099-01-01"})
			},
			kind: KindExpired, check: CheckExp, detail: "not a number",
		},
		{
			name: "nbf in the future",
			token: func(t *testing.T, f *fixture, _ *attackerServer) string {
				return f.mint(t, map[string]any{"nbf": f.clock.Now().Unix() + 600})
			},
			kind: KindNotYetValid, check: CheckNbf,
		},
		{
			name: "iat in the future",
			token: func(t *testing.T, f *fixture, _ *attackerServer) string {
				return f.mint(t, map[string]any{"iat": f.clock.Now().Unix() + 600})
			},
			kind: KindIssuedInFuture, check: CheckIat,
		},
		{
			name: "lifetime over 24 h",
			token: func(t *testing.T, f *fixture, _ *attackerServer) string {
				return f.mint(t, map[string]any{"exp": f.clock.Now().Unix() + 25*3600})
			},
			kind: KindLifetime, check: CheckLifetime,
		},
		{
			name: "tampered payload",
			token: func(t *testing.T, f *fixture, _ *attackerServer) string {
				s := segments(f.mint(t, nil))
				c := validClaims(t, f)
				c["repository"] = "octo-org/octo-repo"
				c["ref"] = "refs/heads/evil"
				return s[0] + "." + b64json(t, c) + "." + s[2]
			},
			kind: KindSignature, check: CheckSignature,
		},
		{
			name: "tampered signature",
			token: func(t *testing.T, f *fixture, _ *attackerServer) string {
				tok := []byte(f.mint(t, nil))
				i := len(tok) - 10
				tok[i] = map[bool]byte{true: 'A', false: 'B'}[tok[i] != 'A']
				return string(tok)
			},
			kind: KindSignature, check: CheckSignature,
		},
		{
			name: "two segments",
			token: func(t *testing.T, f *fixture, _ *attackerServer) string {
				s := segments(f.mint(t, nil))
				return s[0] + "." + s[1]
			},
			kind: KindMalformed, check: CheckFormat,
		},
		{
			name:  "four segments",
			token: func(t *testing.T, f *fixture, _ *attackerServer) string { return f.mint(t, nil) + ".x" },
			kind:  KindMalformed, check: CheckFormat,
		},
		{
			name: "truncated in the middle of the payload",
			token: func(t *testing.T, f *fixture, _ *attackerServer) string {
				tok := f.mint(t, nil)
				return tok[:len(tok)/2]
			},
			kind: KindMalformed, check: CheckFormat,
		},
		{
			name: "non-base64 header",
			token: func(t *testing.T, f *fixture, _ *attackerServer) string {
				s := segments(f.mint(t, nil))
				return "ey!!." + s[1] + "." + s[2]
			},
			kind: KindMalformed, check: CheckFormat,
		},
		{
			name: "padded base64",
			token: func(t *testing.T, f *fixture, _ *attackerServer) string {
				s := segments(f.mint(t, nil))
				return s[0] + "=." + s[1] + "." + s[2]
			},
			kind: KindMalformed, check: CheckFormat,
		},
		{
			name: "payload is a JSON array",
			token: func(t *testing.T, f *fixture, _ *attackerServer) string {
				s := segments(f.mint(t, nil))
				return s[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`["iss"]`)) + "." + s[2]
			},
			kind: KindMalformed, check: CheckFormat,
		},
		{
			name: "crit header",
			token: func(t *testing.T, f *fixture, _ *attackerServer) string {
				return mustMint(t, f, devissuer.MintOptions{Shape: "github", Header: map[string]any{"crit": []string{"b64"}, "b64": false}})
			},
			kind: KindMalformed, check: CheckFormat,
		},
		{
			name: "token over 16 KiB even when validly signed",
			token: func(t *testing.T, f *fixture, _ *attackerServer) string {
				return f.mint(t, map[string]any{"padding": strings.Repeat("a", 16<<10)})
			},
			kind: KindMalformed, check: CheckSize,
		},
		{
			name: "ES256 header with an RSA key",
			token: func(t *testing.T, f *fixture, _ *attackerServer) string {
				ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				return signWith(t, jwt.SigningMethodES256, ec, map[string]any{"alg": "ES256", "kid": f.issuer.KID()}, validClaims(t, f))
			},
			kind: KindAlgorithm, check: CheckKey, detail: "needs an EC key",
		},
		{
			name: "PS256 header when the JWKS pins the key to RS256",
			token: func(t *testing.T, f *fixture, _ *attackerServer) string {
				return mustMint(t, f, devissuer.MintOptions{Shape: "github", Header: map[string]any{"alg": "PS256"}})
			},
			kind: KindAlgorithm, check: CheckKey, detail: "pinned to RS256",
		},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			f := newFixture(t, devissuer.Options{})
			attacker := newAttacker(t, f.issuer.KID())
			tok := a.token(t, f, attacker)

			res := f.verifier.Verify(context.Background(), tok, f.policy)

			assertRefused(t, res, tok, a.kind, a.check, a.detail)
			if n := attacker.requests.Load(); n != 0 {
				t.Fatalf("the attacker's server got %d requests; token headers must never be fetched", n)
			}
		})
	}
}

func TestVerifyRefusesWeakOrMismatchedKeysFromTheJWKS(t *testing.T) {
	cases := []struct {
		name   string
		opts   devissuer.Options
		header map[string]any
		kind   string
		detail string
	}{
		{"RSA-1024 key in the JWKS", devissuer.Options{RSABits: 1024}, nil, KindSignature, "1024 bits"},
		{"RS256 header with an EC key", devissuer.Options{Alg: "ES256"}, map[string]any{"alg": "RS256"}, KindAlgorithm, "needs an RSA key"},
		{"ES384 header with a P-256 key", devissuer.Options{Alg: "ES256"}, map[string]any{"alg": "ES384"}, KindAlgorithm, "needs curve P-384"},
		{"EdDSA header with an RSA key", devissuer.Options{}, map[string]any{"alg": "EdDSA"}, KindAlgorithm, "needs an Ed25519 key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.opts)
			tok := mustMint(t, f, devissuer.MintOptions{Shape: "github", Header: tc.header})
			res := f.verifier.Verify(context.Background(), tok, f.policy)
			assertRefused(t, res, tok, tc.kind, CheckKey, tc.detail)
		})
	}
}

func TestVerifyChecksCurveEvenWhenTheJWKDoesNotPinAnAlg(t *testing.T) {
	f := newFixture(t, devissuer.Options{Alg: "ES256"})
	// Serve the issuer's key without its alg member.
	jwks, err := f.issuer.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string][]map[string]any
	if err := json.Unmarshal(jwks, &doc); err != nil {
		t.Fatal(err)
	}
	delete(doc["keys"][0], "alg")
	b, _ := json.Marshal(doc)
	f.server.ServeJWKS(b)

	tok := mustMint(t, f, devissuer.MintOptions{Shape: "github", Header: map[string]any{"alg": "ES384"}})
	res := f.verifier.Verify(context.Background(), tok, f.policy)
	assertRefused(t, res, tok, KindAlgorithm, CheckKey, "needs curve P-384")
}

func TestVerifyResultNeverContainsTheRawToken(t *testing.T) {
	f := newFixture(t, devissuer.Options{})
	for _, tok := range []string{f.mint(t, nil), f.mint(t, map[string]any{"exp": nil}), f.mint(t, nil) + "x"} {
		res := f.verifier.Verify(context.Background(), tok, f.policy)
		b, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		for _, seg := range segments(tok) {
			if len(seg) > 8 && strings.Contains(string(b), seg) {
				t.Fatalf("result contains a token segment: %s", b)
			}
		}
	}
}

func assertRefused(t *testing.T, res *Result, tok, kind, check, detail string) {
	t.Helper()
	if res.OK {
		t.Fatalf("token was accepted; checks %+v", res.Checks)
	}
	if res.FailedKind != kind || res.FailedCheck != check {
		t.Fatalf("failed kind/check = %q/%q, want %q/%q; checks %+v", res.FailedKind, res.FailedCheck, kind, check, res.Checks)
	}
	last := res.Checks[len(res.Checks)-1]
	var failing api.Check
	for _, c := range res.Checks {
		if !c.Passed {
			failing = c
			break
		}
	}
	if failing.Name != check {
		t.Fatalf("first failing check is %q, want %q", failing.Name, check)
	}
	if !strings.Contains(failing.Detail, detail) {
		t.Fatalf("detail %q does not mention %q", failing.Detail, detail)
	}
	// Cryptographic failures stop the pipeline: nothing after them is evaluated.
	if (kind == KindMalformed || kind == KindAlgorithm || kind == KindSignature) && last.Name != check {
		t.Fatalf("checks continued after a cryptographic failure: %q", checkNames(res.Checks))
	}
	if res.Verified && (kind == KindAlgorithm || kind == KindSignature) {
		t.Fatal("Verified must be false when the signature was not verified")
	}
	_ = tok
}

func mustMint(t *testing.T, f *fixture, o devissuer.MintOptions) string {
	t.Helper()
	o.TTL = 10 * time.Minute
	tok, err := f.issuer.MintWith(o)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// fetchPublicKeyPEM returns the issuer's public key as an attacker would have it: the PEM bytes.
func fetchPublicKeyPEM(t *testing.T, f *fixture) []byte {
	t.Helper()
	key, err := f.cache.Key(context.Background(), f.server.URL, f.issuer.KID())
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestVerifyTimeCheckBoundsFollowTheClock(t *testing.T) {
	f := newFixture(t, devissuer.Options{})
	for range 3 {
		now := f.clock.Now()
		res := f.verifier.Verify(context.Background(), f.mint(t, nil), f.policy)
		if !res.OK {
			t.Fatalf("kind %q checks %+v", res.FailedKind, res.Checks)
		}
		want := map[string]string{
			CheckExp: "after " + now.Add(-Leeway).UTC().Format(time.RFC3339),
			CheckNbf: "at or before " + now.Add(Leeway).UTC().Format(time.RFC3339),
			CheckIat: "at or before " + now.Add(Leeway).UTC().Format(time.RFC3339),
		}
		for _, c := range res.Checks {
			if w, ok := want[c.Name]; ok && c.Expected != w {
				t.Errorf("at %s, check %s expected %v, want %q", now, c.Name, c.Expected, w)
			}
			if c.Name == CheckIat && c.Actual != now.UTC().Format(time.RFC3339) {
				t.Errorf("iat actual %v, want %s", c.Actual, now.UTC().Format(time.RFC3339))
			}
		}
		f.clock.Advance(1500 * time.Millisecond)
	}
}
