package testkit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// TokenResult is the answer of POST /v1/token, read whole. Its String never shows the access token.
type TokenResult struct {
	Status    int
	Header    http.Header
	Body      []byte
	RequestID string            // X-Request-Id
	OK        api.TokenResponse // the answer of a granted exchange (200)
	Refusal   api.OAuthError    // the RFC 6749 §5.2 answer of a refused one
	Elapsed   time.Duration
	// TransportErr is set when there was no answer (refused connection, timeout, reset).
	TransportErr error
	// DecodeErr is set when the answer is not the documented JSON (unknown fields included).
	DecodeErr error
}

// String describes the answer without the access token: tests never log tokens.
func (r TokenResult) String() string {
	switch {
	case r.TransportErr != nil:
		return "no answer: " + r.TransportErr.Error()
	case r.Status == http.StatusOK:
		return fmt.Sprintf("status 200, token_type %q, expires_in %d (access token withheld)", r.OK.TokenType, r.OK.ExpiresIn)
	default:
		return fmt.Sprintf("status %d, body %s", r.Status, bytes.TrimSpace(r.Body))
	}
}

// Answered fails the test unless the endpoint answered with the documented JSON, and returns r.
func (r TokenResult) Answered(t testing.TB) TokenResult {
	t.Helper()
	switch {
	case r.TransportErr != nil:
		t.Fatalf("POST /v1/token: %v", r.TransportErr)
	case r.DecodeErr != nil:
		t.Fatalf("POST /v1/token answered %d with something that is not the documented JSON: %v: %s", r.Status, r.DecodeErr, Truncate(string(r.Body), 2000))
	}
	return r
}

// ExchangeForm is the standard RFC 8693 form request.
func ExchangeForm(connection, token string) url.Values {
	return url.Values{
		"grant_type":         {api.GrantTypeTokenExchange},
		"subject_token":      {token},
		"subject_token_type": {api.TokenTypeJWT},
		"connection":         {connection},
	}
}

// Exchange trades token through connection with a form request.
func (e Endpoint) Exchange(connection, token string) TokenResult {
	return e.PostForm(ExchangeForm(connection, token), nil)
}

// ExchangeAudience trades token through connection asking for an access token for audience (the
// RFC 8693 audience parameter), with a form request.
func (e Endpoint) ExchangeAudience(connection, token, audience string) TokenResult {
	f := ExchangeForm(connection, token)
	f.Set("audience", audience)
	return e.PostForm(f, nil)
}

// ExchangeJSON trades token through connection with a JSON request.
func (e Endpoint) ExchangeJSON(connection, token string) TokenResult {
	b, err := json.Marshal(api.TokenRequest{GrantType: api.GrantTypeTokenExchange, SubjectToken: token,
		SubjectTokenType: api.TokenTypeJWT, Connection: connection})
	if err != nil {
		return TokenResult{TransportErr: err}
	}
	return e.PostToken("application/json", b, nil)
}

// PostForm sends form to the token endpoint with the extra headers.
func (e Endpoint) PostForm(form url.Values, header http.Header) TokenResult {
	return e.PostToken("application/x-www-form-urlencoded", []byte(form.Encode()), header)
}

// PostToken sends POST /v1/token with a raw body, content type ("" sends none) and extra headers.
// It never fails the test, so goroutines may call it: the result says what happened.
func (e Endpoint) PostToken(contentType string, body []byte, header http.Header) TokenResult {
	start := time.Now()
	req, err := http.NewRequest(http.MethodPost, e.URL+"/v1/token", bytes.NewReader(body))
	if err != nil {
		return TokenResult{TransportErr: err}
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := e.httpClient().Do(req)
	if err != nil {
		return TokenResult{TransportErr: fmt.Errorf("POST /v1/token: %w", err), Elapsed: time.Since(start)}
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	r := TokenResult{Status: resp.StatusCode, Header: resp.Header, Body: b, RequestID: resp.Header.Get("X-Request-Id"),
		Elapsed: time.Since(start)}
	if err != nil {
		r.TransportErr = fmt.Errorf("reading the answer of POST /v1/token: %w", err)
		return r
	}
	if resp.StatusCode == http.StatusOK {
		if err := decodeStrict(b, &r.OK); err != nil {
			r.DecodeErr = fmt.Errorf("the token response is not the documented JSON: %w", err)
		}
	} else if err := decodeStrict(b, &r.Refusal); err != nil {
		r.DecodeErr = fmt.Errorf("the error response is not RFC 6749 §5.2 JSON: %w", err)
	}
	return r
}

// decodeStrict fills v from b as far as it can and says whether b is exactly v's JSON.
func decodeStrict(b []byte, v any) error {
	_ = json.Unmarshal(b, v)
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return fmt.Errorf("more than one JSON value")
	}
	return nil
}

// MustGrant fails unless r is a 200 with the documented response for a connection whose TTL is
// ttl, and returns the access token.
func MustGrant(t testing.TB, r TokenResult, ttl time.Duration) string {
	t.Helper()
	r.Answered(t)
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

// MustRefuse fails unless r is a 400 RFC 6749 error with code whose description names kind (when
// given) and the request id, and names none of the secrets (the expected values the refusal
// must not reveal).
func MustRefuse(t testing.TB, r TokenResult, code, kind string, secrets ...string) {
	t.Helper()
	r.Answered(t)
	if r.Status != http.StatusBadRequest {
		t.Errorf("want 400 (401 is never used by the token endpoint), got %s", r)
	}
	if r.Refusal.Error != code {
		t.Errorf("error = %q, want %q (%s)", r.Refusal.Error, code, r.Refusal.ErrorDescription)
	}
	if kind != "" && !strings.Contains(r.Refusal.ErrorDescription, kind) {
		t.Errorf("error_description %q does not name the failed check kind %q", r.Refusal.ErrorDescription, kind)
	}
	if r.RequestID == "" {
		t.Errorf("no X-Request-Id header")
	} else if !strings.Contains(r.Refusal.ErrorDescription, r.RequestID) {
		t.Errorf("error_description %q does not include the request id %s", r.Refusal.ErrorDescription, r.RequestID)
	}
	// The request id is random and may contain a short expected value by chance.
	desc := r.Refusal.ErrorDescription
	if r.RequestID != "" {
		desc = strings.ReplaceAll(desc, r.RequestID, "<request id>")
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(desc, s) {
			t.Errorf("error_description %q reveals the expected value %q", r.Refusal.ErrorDescription, s)
		}
	}
	if r.OK.AccessToken != "" {
		t.Errorf("a refused exchange returned an access token")
	}
}
