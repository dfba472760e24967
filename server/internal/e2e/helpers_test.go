package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
)

// issuer is a dev issuer served over HTTP on loopback, counting JWKS requests.
type issuer struct {
	*devissuer.Issuer
	URL       string
	JWKSURL   string
	jwksHits  atomic.Int64
	totalHits atomic.Int64
}

// JWKSHits is how many times the JWKS was fetched.
func (i *issuer) JWKSHits() int64 { return i.jwksHits.Load() }

// Hits is how many requests of any kind the issuer answered.
func (i *issuer) Hits() int64 { return i.totalHits.Load() }

func startIssuer(t *testing.T, opts devissuer.Options) *issuer {
	t.Helper()
	di, err := devissuer.New(opts)
	if err != nil {
		t.Fatalf("dev issuer: %v", err)
	}
	iss := &issuer{Issuer: di}
	h := di.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		iss.totalHits.Add(1)
		if r.URL.Path == "/.well-known/jwks.json" {
			iss.jwksHits.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	iss.URL = srv.URL
	iss.JWKSURL = srv.URL + "/.well-known/jwks.json"
	di.SetIssuer(srv.URL)
	return iss
}

// mint signs a token of shape with overrides, failing the test on error.
func (i *issuer) mint(t *testing.T, shape string, overrides map[string]any) string {
	t.Helper()
	tok, err := i.Mint(shape, overrides, 0)
	if err != nil {
		t.Fatalf("minting a %s token: %v", shape, err)
	}
	return tok
}

func (i *issuer) mintWith(t *testing.T, o devissuer.MintOptions) string {
	t.Helper()
	tok, err := i.MintWith(o)
	if err != nil {
		t.Fatalf("minting a %s token: %v", o.Shape, err)
	}
	return tok
}

// env is one Trustgate server with a dev issuer and a client per role.
type env struct {
	s                         *testkit.Server
	iss                       *issuer
	devops, security, auditor *apiclient.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	s := testkit.Start(t)
	return &env{
		s:        s,
		iss:      startIssuer(t, devissuer.Options{}),
		devops:   s.Client(t, s.DevOpsKey),
		security: s.Client(t, s.SecurityKey),
		auditor:  s.Client(t, s.AuditorKey),
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// createDraft creates a connection as the DevOps admin.
func (e *env) createDraft(t *testing.T, in api.ConnectionInput) *api.Connection {
	t.Helper()
	c, err := e.devops.CreateConnection(ctx(t), in)
	if err != nil {
		t.Fatalf("creating connection %s: %v", in.Name, err)
	}
	if c.Status != api.StatusDraft {
		t.Fatalf("new connection %s has status %q, want draft", in.Name, c.Status)
	}
	return c
}

// setStatus changes the status as the security admin, approving the fingerprint it saw.
func (e *env) setStatus(t *testing.T, c *api.Connection, status string) *api.Connection {
	t.Helper()
	out, err := e.security.SetStatus(ctx(t), c.Name, api.StatusChange{Status: status, ApprovedFingerprint: c.Fingerprint}, 0)
	if err != nil {
		t.Fatalf("setting %s to %s: %v", c.Name, status, err)
	}
	if out.Status != status {
		t.Fatalf("%s has status %q after the change, want %q", c.Name, out.Status, status)
	}
	return out
}

// createActive creates a connection as DevOps and activates it as Security.
func (e *env) createActive(t *testing.T, in api.ConnectionInput) *api.Connection {
	t.Helper()
	return e.setStatus(t, e.createDraft(t, in), api.StatusActive)
}

// tokenResult is the raw answer of POST /v1/token.
type tokenResult struct {
	Status    int
	RequestID string
	Header    http.Header
	Body      []byte
	OK        api.TokenResponse
	Err       api.OAuthError
}

// String describes the answer without the access token (tests never log tokens).
func (r tokenResult) String() string {
	if r.Status == http.StatusOK {
		return fmt.Sprintf("status 200, token_type %q, expires_in %d (access token withheld)", r.OK.TokenType, r.OK.ExpiresIn)
	}
	return fmt.Sprintf("status %d, body %s", r.Status, r.Body)
}

// postToken sends POST /v1/token with a raw body and content type.
func (e *env) postToken(t *testing.T, contentType string, body []byte, header http.Header) tokenResult {
	t.Helper()
	r, err := e.sendToken(ctx(t), contentType, body, header)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// sendToken is postToken for goroutines other than the test's: it returns errors instead.
func (e *env) sendToken(c context.Context, contentType string, body []byte, header http.Header) (tokenResult, error) {
	req, err := http.NewRequestWithContext(c, http.MethodPost, e.s.URL+"/v1/token", bytes.NewReader(body))
	if err != nil {
		return tokenResult{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return tokenResult{}, fmt.Errorf("POST /v1/token: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return tokenResult{}, err
	}
	r := tokenResult{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id"), Header: resp.Header, Body: b}
	if resp.StatusCode == http.StatusOK {
		if err := strictJSON(b, &r.OK); err != nil {
			return r, fmt.Errorf("the token response is not the documented JSON: %w", err)
		}
	} else if err := strictJSON(b, &r.Err); err != nil {
		return r, fmt.Errorf("the error response (%d) is not RFC 6749 §5.2 JSON: %w: %s", resp.StatusCode, err, b)
	}
	return r, nil
}

func strictJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// exchangeForm is the standard RFC 8693 form request.
func exchangeForm(connection, token string) url.Values {
	return url.Values{
		"grant_type":         {api.GrantTypeTokenExchange},
		"subject_token":      {token},
		"subject_token_type": {api.TokenTypeJWT},
		"connection":         {connection},
	}
}

func (e *env) postForm(t *testing.T, form url.Values) tokenResult {
	t.Helper()
	return e.postToken(t, "application/x-www-form-urlencoded", []byte(form.Encode()), nil)
}

// exchange trades token through connection with a form request.
func (e *env) exchange(t *testing.T, connection, token string) tokenResult {
	t.Helper()
	return e.postForm(t, exchangeForm(connection, token))
}

// exchangeJSON trades token through connection with a JSON request.
func (e *env) exchangeJSON(t *testing.T, connection, token string) tokenResult {
	t.Helper()
	b, err := json.Marshal(api.TokenRequest{GrantType: api.GrantTypeTokenExchange, SubjectToken: token,
		SubjectTokenType: api.TokenTypeJWT, Connection: connection})
	if err != nil {
		t.Fatal(err)
	}
	return e.postToken(t, "application/json", b, nil)
}

// mustGrant fails unless r is a 200 with the documented response for a connection whose TTL is ttl.
func mustGrant(t *testing.T, r tokenResult, ttl time.Duration) string {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("exchange refused, want granted: %s", r)
	}
	if r.OK.AccessToken == "" {
		t.Errorf("access_token is empty")
	}
	if r.OK.IssuedTokenType != api.TokenTypeJWT {
		t.Errorf("issued_token_type = %q, want %q", r.OK.IssuedTokenType, api.TokenTypeJWT)
	}
	if r.OK.TokenType != "Bearer" {
		t.Errorf("token_type = %q, want Bearer", r.OK.TokenType)
	}
	if want := int64(ttl / time.Second); r.OK.ExpiresIn != want {
		t.Errorf("expires_in = %d, want %d (the connection's TTL)", r.OK.ExpiresIn, want)
	}
	if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("Cache-Control = %q, want no-store on a token response", cc)
	}
	return r.OK.AccessToken
}

// mustRefuse fails unless r is a 400 RFC 6749 error with code whose description names kind (when
// given) and the request id, and names none of the secrets.
func mustRefuse(t *testing.T, r tokenResult, code, kind string, secrets ...string) {
	t.Helper()
	if r.Status != http.StatusBadRequest {
		t.Errorf("want 400 (401 is never used by the token endpoint), got %s", r)
	}
	if r.Err.Error != code {
		t.Errorf("error = %q, want %q (%s)", r.Err.Error, code, r.Err.ErrorDescription)
	}
	if kind != "" && !strings.Contains(r.Err.ErrorDescription, kind) {
		t.Errorf("error_description %q does not name the failed check kind %q", r.Err.ErrorDescription, kind)
	}
	if r.RequestID == "" {
		t.Errorf("no X-Request-Id header")
	} else if !strings.Contains(r.Err.ErrorDescription, r.RequestID) {
		t.Errorf("error_description %q does not include the request id %s", r.Err.ErrorDescription, r.RequestID)
	}
	// The request id is random and may contain a short expected value by chance.
	desc := r.Err.ErrorDescription
	if r.RequestID != "" {
		desc = strings.ReplaceAll(desc, r.RequestID, "<request id>")
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(desc, s) {
			t.Errorf("error_description %q reveals the expected value %q", r.Err.ErrorDescription, s)
		}
	}
	if r.OK.AccessToken != "" {
		t.Errorf("a refused exchange returned an access token")
	}
}

// serverJWKS fetches the server's published JWKS as a keyfunc.
func (e *env) serverJWKS(t *testing.T) keyfunc.Keyfunc {
	t.Helper()
	resp, err := http.Get(e.s.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatalf("GET /.well-known/jwks.json: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /.well-known/jwks.json: %d %v", resp.StatusCode, err)
	}
	kf, err := keyfunc.NewJWKSetJSON(b)
	if err != nil {
		t.Fatalf("the server's JWKS does not parse: %v: %s", err, b)
	}
	return kf
}

// accessClaims is what an access token carries (CONTRACT.md §4).
type accessClaims struct {
	jwt.RegisteredClaims
	Connection   string `json:"connection"`
	ConnectionID string `json:"connection_id"`
	SourceIss    string `json:"source_iss"`
}

// verifyAccess parses an access token with golang-jwt against the server's published JWKS and
// checks the claims every access token must have.
func (e *env) verifyAccess(t *testing.T, token string, conn *api.Connection, sub, sourceIss string, ttl time.Duration) *accessClaims {
	t.Helper()
	var claims accessClaims
	parsed, err := jwt.ParseWithClaims(token, &claims, e.serverJWKS(t).Keyfunc,
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(e.s.URL), jwt.WithAudience(e.s.URL),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(5*time.Second))
	if err != nil {
		t.Fatalf("the access token does not verify against /.well-known/jwks.json: %v", err)
	}
	if kid, _ := parsed.Header["kid"].(string); kid == "" {
		t.Errorf("the access token header has no kid: %v", parsed.Header)
	}
	if claims.Subject != sub {
		t.Errorf("sub = %q, want %q (the identity claim)", claims.Subject, sub)
	}
	if claims.Connection != conn.Name || claims.ConnectionID != conn.ID {
		t.Errorf("connection, connection_id = %q, %q; want %q, %q", claims.Connection, claims.ConnectionID, conn.Name, conn.ID)
	}
	if claims.SourceIss != sourceIss {
		t.Errorf("source_iss = %q, want %q", claims.SourceIss, sourceIss)
	}
	if claims.IssuedAt == nil || claims.ExpiresAt == nil || claims.NotBefore == nil {
		t.Fatalf("iat, nbf and exp are required: %+v", claims.RegisteredClaims)
	}
	if got := claims.ExpiresAt.Sub(claims.IssuedAt.Time); got != ttl {
		t.Errorf("exp - iat = %s, want the connection's TTL %s", got, ttl)
	}
	if d := time.Since(claims.IssuedAt.Time); d < -5*time.Second || d > time.Minute {
		t.Errorf("iat is %s away from now", d)
	}
	if claims.ID == "" {
		t.Errorf("jti is empty")
	}
	return &claims
}

// auditByRequest returns the token.exchange audit events of a connection (id or name), keyed by
// request id. The security admin reads all events.
func (e *env) auditByRequest(t *testing.T, connection string) map[string]api.AuditEvent {
	t.Helper()
	out := map[string]api.AuditEvent{}
	o := apiclient.AuditOptions{Connection: connection, Action: api.ActionTokenExchange, Limit: 500}
	for {
		page, err := e.security.ListAuditEvents(ctx(t), o)
		if err != nil {
			t.Fatalf("listing audit events: %v", err)
		}
		for _, ev := range page.Items {
			if _, dup := out[ev.RequestID]; dup {
				t.Errorf("two token.exchange events carry request id %s", ev.RequestID)
			}
			out[ev.RequestID] = ev
		}
		if page.NextCursor == "" {
			return out
		}
		o.Cursor = page.NextCursor
	}
}

func ptr[T any](v T) *T { return &v }

func ttlOf(t *api.TokenTTL) time.Duration {
	if t == nil {
		return time.Hour
	}
	unit := map[string]time.Duration{api.UnitSeconds: time.Second, api.UnitMinutes: time.Minute, api.UnitHours: time.Hour}[t.Unit]
	return time.Duration(t.Amount) * unit
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case json.Number, float64:
		return "number"
	case bool:
		return "bool"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// issuerOptsSameKID is an issuer with a fresh key published under someone else's kid.
func issuerOptsSameKID(kid string) devissuer.Options { return devissuer.Options{KID: kid} }

// apiGeneric is a generic connection trusting e's dev issuer for tokens minted for e's server.
func apiGeneric(e *env, name string) api.ConnectionInput {
	return api.ConnectionInput{Name: name, JWKSURL: e.iss.JWKSURL, Conditions: []api.Condition{
		{Claim: "iss", Operator: api.OpEquals, Value: ptr(e.iss.URL)},
		{Claim: "aud", Operator: api.OpEquals, Value: ptr(e.s.URL)},
	}}
}
