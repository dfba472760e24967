package testkit

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
)

// Endpoint is a Trustgate server as a client reaches it, whether it runs in the test's process
// (Server) or as the real binary (Proc).
type Endpoint struct {
	URL       string // where it listens: http://127.0.0.1:PORT
	PublicURL string // the issuer and audience of its access tokens (URL unless configured)
	// HTTP sends the token requests and raw requests (nil: a client with a 30 s timeout that
	// shows redirects as they are instead of following them).
	HTTP *http.Client
}

var defaultHTTP = &http.Client{Timeout: 30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (e Endpoint) httpClient() *http.Client {
	if e.HTTP != nil {
		return e.HTTP
	}
	return defaultHTTP
}

// Client returns an API client of the endpoint that authenticates with key (an API key or an
// access token).
func (e Endpoint) Client(t testing.TB, key string) *apiclient.Client {
	t.Helper()
	c, err := apiclient.New(e.URL, key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Request is one raw HTTP request, for what the typed client cannot send.
type Request struct {
	Method string
	Path   string // path and query, appended to the URL as they are (already escaped)
	Key    string // sent as a bearer token when set
	// Body is sent as it is when it is a []byte or a string, JSON-encoded otherwise.
	Body any
	// ContentType defaults to application/json when there is a body; "-" sends none.
	ContentType string
	Header      http.Header
}

// Response is a raw HTTP answer, read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends r and reads the whole answer, failing the test when there is none.
func (e Endpoint) Do(t testing.TB, r Request) Response {
	t.Helper()
	var body io.Reader
	ct := r.ContentType
	if b, ok := r.Body.([]byte); ok && b == nil {
		r.Body = nil // a nil []byte is no body
	}
	if r.Body != nil {
		switch b := r.Body.(type) {
		case []byte:
			body = bytes.NewReader(b)
		case string:
			body = strings.NewReader(b)
		default:
			enc, err := json.Marshal(b)
			if err != nil {
				t.Fatalf("encoding the request body: %v", err)
			}
			body = bytes.NewReader(enc)
		}
		if ct == "" {
			ct = "application/json"
		}
	}
	hr, err := http.NewRequest(r.Method, e.URL+r.Path, body)
	if err != nil {
		t.Fatalf("building %s %s: %v", r.Method, Truncate(r.Path, 80), err)
	}
	if ct != "" && ct != "-" {
		hr.Header.Set("Content-Type", ct)
	}
	if r.Key != "" {
		hr.Header.Set("Authorization", "Bearer "+r.Key)
	}
	for k, vs := range r.Header {
		hr.Header[k] = vs
	}
	resp, err := e.httpClient().Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, Truncate(r.Path, 80), err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer of %s %s: %v", r.Method, Truncate(r.Path, 80), err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// WantStatus fails the test unless the answer has the status.
func (r Response) WantStatus(t testing.TB, want int) Response {
	t.Helper()
	if r.Status != want {
		t.Fatalf("status %d, want %d; body: %s", r.Status, want, Truncate(string(r.Body), 2000))
	}
	return r
}

// Decode unmarshals the body into v, failing the test when it does not fit.
func (r Response) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("the answer is not the expected JSON (%v): %s", err, Truncate(string(r.Body), 2000))
	}
}

// Problem checks that the answer is an RFC 9457 problem with the status (every member present,
// request_id equal to X-Request-Id) and returns it.
func (r Response) Problem(t testing.TB, status int) api.Problem {
	t.Helper()
	r.WantStatus(t, status)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	var raw map[string]any
	r.Decode(t, &raw)
	for _, k := range []string{"type", "title", "status", "detail"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("the problem has no %q member: %s", k, r.Body)
		}
	}
	var p api.Problem
	r.Decode(t, &p)
	if p.Status != status {
		t.Errorf("problem status %d, want %d", p.Status, status)
	}
	if p.Type == "" || p.Title == "" || p.Detail == "" {
		t.Errorf("problem type, title and detail must be non-empty: %s", r.Body)
	}
	if id := r.Header.Get("X-Request-Id"); p.RequestID != "" && p.RequestID != id {
		t.Errorf("problem request_id %q differs from X-Request-Id %q", p.RequestID, id)
	}
	return p
}

// AsProblem reports whether the answer is application/problem+json whose status is the answer's
// and whose type, title and detail are set, and returns the problem.
func (r Response) AsProblem() (api.Problem, bool) {
	var p api.Problem
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/problem+json") {
		return p, false
	}
	if err := json.Unmarshal(r.Body, &p); err != nil {
		return p, false
	}
	return p, p.Status == r.Status && p.Type != "" && p.Title != "" && p.Detail != ""
}

// Truncate shortens s to n bytes for a failure message.
func Truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
