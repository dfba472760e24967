package testkit

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// AccessClaims is what an access token carries (CONTRACT.md §4).
type AccessClaims struct {
	jwt.RegisteredClaims
	Connection   string `json:"connection"`
	ConnectionID string `json:"connection_id"`
	SourceIss    string `json:"source_iss"`
	// Claims is the mapped claims object (claim_mappings); numbers are json.Number.
	Claims map[string]any `json:"claims"`
}

// JWKS fetches the endpoint's /.well-known/jwks.json.
func (e Endpoint) JWKS(t testing.TB) []byte {
	t.Helper()
	resp, err := e.httpClient().Get(e.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatalf("GET /.well-known/jwks.json: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /.well-known/jwks.json: %d %v", resp.StatusCode, err)
	}
	return b
}

// VerifyAccess verifies an access token with golang-jwt against the endpoint's published JWKS
// and its public URL (see VerifyAccessToken).
func (e Endpoint) VerifyAccess(t testing.TB, token string) *AccessClaims {
	t.Helper()
	return VerifyAccessToken(t, e.JWKS(t), token, e.PublicURL)
}

// VerifyAccessFor is VerifyAccess of a token whose aud holds audience (a connection's
// token_audience entry) rather than the public URL.
func (e Endpoint) VerifyAccessFor(t testing.TB, token, audience string) *AccessClaims {
	t.Helper()
	return VerifyAccessTokenFor(t, e.JWKS(t), token, e.PublicURL, audience)
}

// VerifyAccessToken checks an access token's ES256 signature against a JWKS, its kid, its issuer
// and audience (both issuer) and its time claims, and returns its claims.
func VerifyAccessToken(t testing.TB, jwks []byte, token, issuer string) *AccessClaims {
	t.Helper()
	return VerifyAccessTokenFor(t, jwks, token, issuer, issuer)
}

// VerifyAccessTokenFor is VerifyAccessToken for a token whose aud (a string or an array) holds
// audience.
func VerifyAccessTokenFor(t testing.TB, jwks []byte, token, issuer, audience string) *AccessClaims {
	t.Helper()
	kf, err := keyfunc.NewJWKSetJSON(jwks)
	if err != nil {
		t.Fatalf("the JWKS does not parse: %v: %s", err, jwks)
	}
	var claims AccessClaims
	parsed, err := jwt.ParseWithClaims(token, &claims, kf.Keyfunc,
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(issuer), jwt.WithAudience(audience),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(5*time.Second), jwt.WithJSONNumber())
	if err != nil {
		t.Fatalf("the access token does not verify against /.well-known/jwks.json: %v", err)
	}
	if kid, _ := parsed.Header["kid"].(string); kid == "" {
		t.Errorf("the access token header has no kid: %v", parsed.Header)
	}
	return &claims
}

// Expect checks the claims every access token of conn must have: the identity claim's value sub,
// the source issuer, a lifetime of the connection's TTL, iat close to now, a jti.
func (c *AccessClaims) Expect(t testing.TB, conn *api.Connection, sub, sourceIss string, ttl time.Duration) {
	t.Helper()
	if c.Subject != sub {
		t.Errorf("sub = %q, want %q (the identity claim)", c.Subject, sub)
	}
	if c.Connection != conn.Name || c.ConnectionID != conn.ID {
		t.Errorf("connection, connection_id = %q, %q; want %q, %q", c.Connection, c.ConnectionID, conn.Name, conn.ID)
	}
	if c.SourceIss != sourceIss {
		t.Errorf("source_iss = %q, want %q", c.SourceIss, sourceIss)
	}
	if c.IssuedAt == nil || c.ExpiresAt == nil || c.NotBefore == nil {
		t.Fatalf("iat, nbf and exp are required: %+v", c.RegisteredClaims)
	}
	if got := c.ExpiresAt.Sub(c.IssuedAt.Time); got != ttl {
		t.Errorf("exp - iat = %s, want the connection's TTL %s", got, ttl)
	}
	if d := time.Since(c.IssuedAt.Time); d < -5*time.Second || d > time.Minute {
		t.Errorf("iat is %s away from now", d)
	}
	if c.ID == "" {
		t.Errorf("jti is empty")
	}
}

// KIDs lists the key ids of a JWKS, sorted.
func KIDs(t testing.TB, jwks []byte) []string {
	t.Helper()
	out := KIDsInOrder(t, jwks)
	sort.Strings(out)
	return out
}

// KIDsInOrder lists the key ids of a JWKS in the set's own order (a Trustgate server lists its
// keys in the order they sign).
func KIDsInOrder(t testing.TB, jwks []byte) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatalf("the JWKS is not JSON: %v", err)
	}
	out := []string{}
	for _, k := range set.Keys {
		out = append(out, k.Kid)
	}
	return out
}

// Segments splits a compact JWS and decodes its header and payload without checking anything
// (numbers stay json.Number).
func Segments(t testing.TB, token string) (header, payload map[string]any, parts []string) {
	t.Helper()
	parts = strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS compact token (%d segments)", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &payload} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("JWT segment %d: %v", i, err)
		}
		d := json.NewDecoder(strings.NewReader(string(b)))
		d.UseNumber()
		if err := d.Decode(dst); err != nil {
			t.Fatalf("JWT segment %d: %v", i, err)
		}
	}
	return header, payload, parts
}
