// Package apiclient is the typed Go client of the Trustgate API. The Terraform provider and
// `trustgate exchange` use it, so the wire contract (server/api) is spoken in one place.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// Client talks to one Trustgate server with one credential.
type Client struct {
	base      *url.URL
	apiKey    string
	http      *http.Client
	userAgent string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient replaces the default HTTP client (30 s timeout).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a client for endpoint (scheme and host, optionally a path prefix). apiKey may be empty
// for the unauthenticated token endpoint, or an access token for whoami.
func New(endpoint, apiKey string, opts ...Option) (*Client, error) {
	if strings.TrimSpace(endpoint) == "" {
		return nil, errors.New("trustgate endpoint is empty: set it to the server URL, e.g. https://trustgate.example.com")
	}
	u, err := url.Parse(strings.TrimRight(endpoint, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("trustgate endpoint %q is not an http(s) URL: use a URL like https://trustgate.example.com", endpoint)
	}
	c := &Client{base: u, apiKey: apiKey, http: &http.Client{Timeout: 30 * time.Second}, userAgent: "trustgate-apiclient"}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Error is a problem+json answer of the admin API.
type Error struct {
	StatusCode int
	Problem    api.Problem
}

func (e *Error) Error() string {
	msg := e.Problem.Detail
	if msg == "" {
		msg = e.Problem.Title
	}
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	for _, f := range e.Problem.Errors {
		msg += fmt.Sprintf("; %s: %s", f.Field, f.Detail)
	}
	if e.Problem.RequestID != "" {
		return fmt.Sprintf("trustgate: %d %s (request %s)", e.StatusCode, msg, e.Problem.RequestID)
	}
	return fmt.Sprintf("trustgate: %d %s", e.StatusCode, msg)
}

// StatusCode returns the HTTP status of an *Error, or 0 for any other error.
func StatusCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

// ProblemType returns the problem type of an *Error (api.Problem* for the refusals a client tells
// apart), or "" for any other error.
func ProblemType(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Problem.Type
	}
	return ""
}

// IsNotFound reports whether err is a 404 answer.
func IsNotFound(err error) bool { return StatusCode(err) == http.StatusNotFound }

// OAuthError is a refusal of the token endpoint (RFC 6749 §5.2), or a 429.
type OAuthError struct {
	StatusCode int
	Err        api.OAuthError
	RetryAfter time.Duration
}

func (e *OAuthError) Error() string {
	if e.Err.ErrorDescription != "" {
		return fmt.Sprintf("token exchange refused (%s): %s", e.Err.Error, e.Err.ErrorDescription)
	}
	return fmt.Sprintf("token exchange refused: %d %s", e.StatusCode, e.Err.Error)
}

// ListOptions filter and page GET /v1/workload-connections.
type ListOptions struct {
	Status       string
	ProviderType string
	NamePrefix   string
	Limit        int
	Cursor       string
}

// AuditOptions filter and page GET /v1/audit-events.
type AuditOptions struct {
	Connection string
	Action     string
	Since      time.Time
	Limit      int
	Cursor     string
}

// CreateConnection creates a draft connection.
func (c *Client) CreateConnection(ctx context.Context, in api.ConnectionInput) (*api.Connection, error) {
	var out api.Connection
	return &out, c.do(ctx, http.MethodPost, "/v1/workload-connections", nil, in, 0, "", &out)
}

// GetConnection reads a connection by id or name.
func (c *Client) GetConnection(ctx context.Context, ref string) (*api.Connection, error) {
	var out api.Connection
	return &out, c.do(ctx, http.MethodGet, connPath(ref), nil, nil, 0, "", &out)
}

// ListConnections reads one page of connections.
func (c *Client) ListConnections(ctx context.Context, o ListOptions) (*api.ConnectionList, error) {
	q := url.Values{}
	set(q, "status", o.Status)
	set(q, "provider_type", o.ProviderType)
	set(q, "name_prefix", o.NamePrefix)
	set(q, "cursor", o.Cursor)
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	var out api.ConnectionList
	return &out, c.do(ctx, http.MethodGet, "/v1/workload-connections", q, nil, 0, "", &out)
}

// ListAllConnections follows the cursor until the last page.
func (c *Client) ListAllConnections(ctx context.Context, o ListOptions) ([]api.Connection, error) {
	all := []api.Connection{}
	for {
		page, err := c.ListConnections(ctx, o)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			return all, nil
		}
		o.Cursor = page.NextCursor
	}
}

// PatchConnection applies patch (marshalled as a JSON merge patch). ifMatch > 0 sends If-Match.
// On a connection that has been activated the server stores the result as the connection's
// proposal (202) and the live fields stay as they were: the answer's Proposal says what is pending.
func (c *Client) PatchConnection(ctx context.Context, ref string, patch any, ifMatch int64) (*api.Connection, error) {
	var out api.Connection
	return &out, c.do(ctx, http.MethodPatch, connPath(ref), nil, patch, ifMatch, "application/merge-patch+json", &out)
}

// DeleteConnection deletes a connection. ifMatch > 0 sends If-Match.
func (c *Client) DeleteConnection(ctx context.Context, ref string, ifMatch int64) error {
	return c.do(ctx, http.MethodDelete, connPath(ref), nil, nil, ifMatch, "", nil)
}

// SetStatus activates or deactivates a connection.
func (c *Client) SetStatus(ctx context.Context, ref string, req api.StatusChange, ifMatch int64) (*api.Connection, error) {
	var out api.Connection
	return &out, c.do(ctx, http.MethodPut, connPath(ref)+"/status", nil, req, ifMatch, "", &out)
}

// ApproveProposal makes the connection's pending proposal live; approvedFingerprint must be the
// proposal's fingerprint, and the caller a security admin who did not write it. ifMatch > 0 sends
// If-Match.
func (c *Client) ApproveProposal(ctx context.Context, ref, approvedFingerprint string, ifMatch int64) (*api.Connection, error) {
	var out api.Connection
	return &out, c.do(ctx, http.MethodPost, connPath(ref)+"/proposal/approve", nil,
		api.ProposalApproval{ApprovedFingerprint: approvedFingerprint}, ifMatch, "", &out)
}

// DiscardProposal drops the connection's pending proposal. ifMatch > 0 sends If-Match.
func (c *Client) DiscardProposal(ctx context.Context, ref string, ifMatch int64) error {
	return c.do(ctx, http.MethodDelete, connPath(ref)+"/proposal", nil, nil, ifMatch, "", nil)
}

// TestToken evaluates a CI token against a connection in any status; nothing is issued.
func (c *Client) TestToken(ctx context.Context, ref, token string) (*api.TestResult, error) {
	var out api.TestResult
	return &out, c.do(ctx, http.MethodPost, connPath(ref)+"/test", nil, api.TestRequest{Token: token}, 0, "", &out)
}

// TestProposal evaluates a CI token against the connection's pending proposal (404 when there is
// none); nothing is issued.
func (c *Client) TestProposal(ctx context.Context, ref, token string) (*api.TestResult, error) {
	var out api.TestResult
	q := url.Values{"config": {"proposal"}}
	return &out, c.do(ctx, http.MethodPost, connPath(ref)+"/test", q, api.TestRequest{Token: token}, 0, "", &out)
}

// ImpactOptions qualify an impact report.
type ImpactOptions struct {
	// Window is how far back workloads count (0: the server's default, 720h or its retention).
	Window time.Duration
}

// Impact asks what a change would do to the workloads seen on a connection: patch is a JSON merge
// patch on the live configuration (a struct, a map or a json.RawMessage), or nil for the pending
// proposal (sent as {}; 404 when there is none). Nothing changes on the server.
func (c *Client) Impact(ctx context.Context, ref string, patch any, o ImpactOptions) (*api.ImpactReport, error) {
	if patch == nil {
		patch = json.RawMessage("{}")
	}
	q := url.Values{}
	if o.Window > 0 {
		q.Set("window", o.Window.String())
	}
	var out api.ImpactReport
	return &out, c.do(ctx, http.MethodPost, connPath(ref)+"/impact", q, patch, 0, "application/merge-patch+json", &out)
}

// SightingOptions page GET /v1/workload-connections/{ref}/sightings.
type SightingOptions struct {
	Limit  int
	Cursor string
}

// ListSightings reads one page of the workloads seen on a connection, newest first.
func (c *Client) ListSightings(ctx context.Context, ref string, o SightingOptions) (*api.SightingList, error) {
	q := url.Values{}
	set(q, "cursor", o.Cursor)
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	var out api.SightingList
	return &out, c.do(ctx, http.MethodGet, connPath(ref)+"/sightings", q, nil, 0, "", &out)
}

// ListAuditEvents reads one page of audit events, newest first.
func (c *Client) ListAuditEvents(ctx context.Context, o AuditOptions) (*api.AuditEventList, error) {
	q := url.Values{}
	set(q, "connection", o.Connection)
	set(q, "action", o.Action)
	set(q, "cursor", o.Cursor)
	if !o.Since.IsZero() {
		q.Set("since", o.Since.UTC().Format(time.RFC3339Nano))
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	var out api.AuditEventList
	return &out, c.do(ctx, http.MethodGet, "/v1/audit-events", q, nil, 0, "", &out)
}

// Whoami describes the client's credential.
func (c *Client) Whoami(ctx context.Context) (*api.Whoami, error) {
	var out api.Whoami
	return &out, c.do(ctx, http.MethodGet, "/v1/whoami", nil, nil, 0, "", &out)
}

// Introspect asks whether an access token is active (RFC 7662). Needs an API key.
func (c *Client) Introspect(ctx context.Context, token string) (*api.Introspection, error) {
	form := url.Values{"token": {token}}
	req, err := c.newRequest(ctx, http.MethodPost, "/v1/introspect", nil, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var out api.Introspection
	return &out, c.send(req, &out)
}

// Revoke revokes an access token (RFC 7009, POST /v1/revoke). The client's credential is either
// that same access token (New(endpoint, accessToken): a CI job giving its token back) or a
// security admin's API key. The server answers success whatever the token was.
func (c *Client) Revoke(ctx context.Context, token string) error {
	form := url.Values{"token": {token}}
	req, err := c.newRequest(ctx, http.MethodPost, "/v1/revoke", nil, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.send(req, nil)
}

// ExchangeToken trades a CI JWT for an access token (RFC 8693). Refusals are *OAuthError.
func (c *Client) ExchangeToken(ctx context.Context, connection, subjectToken string) (*api.TokenResponse, error) {
	return c.Exchange(ctx, api.TokenRequest{Connection: connection, SubjectToken: subjectToken})
}

// Exchange sends a token request (RFC 8693): grant_type and subject_token_type default to the
// token exchange of a JWT, and audience (one of the connection's token_audience) is sent when
// set. Refusals are *OAuthError.
func (c *Client) Exchange(ctx context.Context, r api.TokenRequest) (*api.TokenResponse, error) {
	if r.GrantType == "" {
		r.GrantType = api.GrantTypeTokenExchange
	}
	if r.SubjectTokenType == "" {
		r.SubjectTokenType = api.TokenTypeJWT
	}
	form := url.Values{
		"grant_type":         {r.GrantType},
		"subject_token":      {r.SubjectToken},
		"subject_token_type": {r.SubjectTokenType},
		"connection":         {r.Connection},
	}
	if r.Audience != "" {
		form.Set("audience", r.Audience)
	}
	req, err := c.newRequest(ctx, http.MethodPost, "/v1/token", nil, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Del("Authorization") // the CI token is the only credential of an exchange
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("token exchange with %s failed: %w", c.base.Host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the token response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		oe := &OAuthError{StatusCode: resp.StatusCode}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			oe.RetryAfter = time.Duration(s) * time.Second
		}
		if json.Unmarshal(body, &oe.Err) != nil || oe.Err.Error == "" {
			oe.Err.Error = http.StatusText(resp.StatusCode)
		}
		return nil, oe
	}
	var out api.TokenResponse
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("the token response is not JSON: %w", err)
	}
	return &out, nil
}

func connPath(ref string) string { return "/v1/workload-connections/" + url.PathEscape(ref) }

func set(q url.Values, k, v string) {
	if v != "" {
		q.Set(k, v)
	}
}

func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, body io.Reader) (*http.Request, error) {
	// path arrives escaped (refs go through url.PathEscape), so keep both forms of the URL path.
	u := *c.base
	u.RawPath = strings.TrimRight(c.base.EscapedPath(), "/") + path
	unescaped, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return nil, fmt.Errorf("bad request path %q: %w", path, err)
	}
	u.Path = unescaped
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	return req, nil
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, in any, ifMatch int64, contentType string, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encoding request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := c.newRequest(ctx, method, path, q, body)
	if err != nil {
		return err
	}
	if in != nil {
		if contentType == "" {
			contentType = "application/json"
		}
		req.Header.Set("Content-Type", contentType)
	}
	if ifMatch > 0 {
		req.Header.Set("If-Match", strconv.Quote(strconv.FormatInt(ifMatch, 10)))
	}
	return c.send(req, out)
}

func (c *Client) send(req *http.Request, out any) error {
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("trustgate request %s %s failed: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return fmt.Errorf("reading trustgate response: %w", err)
	}
	if resp.StatusCode >= 300 {
		e := &Error{StatusCode: resp.StatusCode}
		_ = json.Unmarshal(body, &e.Problem)
		if e.Problem.RequestID == "" {
			e.Problem.RequestID = resp.Header.Get("X-Request-Id")
		}
		return e
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("trustgate answered %d with a body that is not the expected JSON: %w", resp.StatusCode, err)
	}
	return nil
}
