package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
)

// reply is a raw HTTP answer.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// req describes a raw request. Body is sent as is when it is a []byte or string, JSON-encoded
// otherwise; ContentType defaults to application/json when there is a body ("-" sends none).
type req struct {
	Method      string
	Path        string // with query string
	Key         string
	Body        any
	ContentType string
	Header      map[string]string
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// call sends a raw request to the test server and reads the whole answer.
func call(t testing.TB, s *testkit.Server, r req) reply {
	t.Helper()
	var body io.Reader
	ct := r.ContentType
	if r.Body != nil {
		switch b := r.Body.(type) {
		case []byte:
			body = bytes.NewReader(b)
		case string:
			body = strings.NewReader(b)
		default:
			enc, err := json.Marshal(b)
			if err != nil {
				t.Fatalf("encoding request body: %v", err)
			}
			body = bytes.NewReader(enc)
		}
		if ct == "" {
			ct = "application/json"
		}
	}
	hr, err := http.NewRequest(r.Method, s.URL+r.Path, body)
	if err != nil {
		t.Fatalf("building %s %s: %v", r.Method, r.Path, err)
	}
	if ct != "" && ct != "-" {
		hr.Header.Set("Content-Type", ct)
	}
	if r.Key != "" {
		hr.Header.Set("Authorization", "Bearer "+r.Key)
	}
	for k, v := range r.Header {
		hr.Header.Set(k, v)
	}
	resp, err := httpClient.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer of %s %s: %v", r.Method, r.Path, err)
	}
	return reply{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// wantStatus fails the test unless the raw answer has the status.
func (r reply) wantStatus(t testing.TB, want int) reply {
	t.Helper()
	if r.Status != want {
		t.Fatalf("status %d, want %d; body: %s", r.Status, want, truncate(r.Body))
	}
	return r
}

func truncate(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "…"
	}
	return string(b)
}

// decode unmarshals the body into v.
func (r reply) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("answer is not the expected JSON (%v): %s", err, truncate(r.Body))
	}
}

// problem checks that the answer is an RFC 9457 problem with the status and returns it.
func (r reply) problem(t testing.TB, status int) api.Problem {
	t.Helper()
	r.wantStatus(t, status)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	var raw map[string]any
	r.decode(t, &raw)
	for _, k := range []string{"type", "title", "status", "detail"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("problem has no %q member: %s", k, r.Body)
		}
	}
	var p api.Problem
	r.decode(t, &p)
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

// fieldNames lists the fields named in a problem's errors.
func fieldNames(p api.Problem) []string {
	out := make([]string, 0, len(p.Errors))
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

// wantFields fails unless every field is named in the problem's errors.
func wantFields(t testing.TB, p api.Problem, fields ...string) {
	t.Helper()
	got := fieldNames(p)
	for _, f := range fields {
		if !slices.Contains(got, f) {
			t.Errorf("422 errors do not name %q; got %v (detail %q)", f, got, p.Detail)
		}
	}
}

// apiStatus is the HTTP status of an apiclient error (0 when err is nil or not an API answer).
func apiStatus(err error) int { return apiclient.StatusCode(err) }

// apiProblem returns the problem of an apiclient error.
func apiProblem(t testing.TB, err error, status int) api.Problem {
	t.Helper()
	var e *apiclient.Error
	if !errors.As(err, &e) {
		t.Fatalf("want a %d problem, got error %v", status, err)
	}
	if e.StatusCode != status {
		t.Fatalf("status %d, want %d: %v", e.StatusCode, status, err)
	}
	return e.Problem
}

func ptr(s string) *string { return &s }

func eq(claim, value string) api.Condition {
	return api.Condition{Claim: claim, Operator: api.OpEquals, Value: ptr(value)}
}

// githubInput is a valid github connection.
func githubInput(name string) api.ConnectionInput {
	return api.ConnectionInput{Name: name, Description: "deploys acme/app",
		GitHub: &api.GitHubSettings{Owner: "acme", Repository: "acme/app"}}
}

// genericInput is a valid generic connection.
func genericInput(name string) api.ConnectionInput {
	return api.ConnectionInput{Name: name, ProviderType: api.ProviderGeneric, JWKSURL: "https://issuer.example.com/jwks",
		Conditions: []api.Condition{eq("iss", "https://issuer.example.com"), eq("aud", "trustgate")}}
}

var ctx = context.Background()

// env is a running server with a client per role.
type env struct {
	*testkit.Server
	devops, security, auditor *apiclient.Client
}

func start(t testing.TB, opts ...testkit.Option) *env {
	t.Helper()
	s := testkit.Start(t, opts...)
	return &env{Server: s, devops: s.Client(t, s.DevOpsKey), security: s.Client(t, s.SecurityKey), auditor: s.Client(t, s.AuditorKey)}
}

// create creates a connection as the devops admin.
func (e *env) create(t testing.TB, in api.ConnectionInput) *api.Connection {
	t.Helper()
	c, err := e.devops.CreateConnection(ctx, in)
	if err != nil {
		t.Fatalf("creating %s: %v", in.Name, err)
	}
	return c
}

// inStatus creates a github connection and brings it into status (draft, active, or inactive
// after activation).
func (e *env) inStatus(t testing.TB, name, status string) *api.Connection {
	t.Helper()
	c := e.create(t, githubInput(name))
	var err error
	if status == api.StatusActive || status == api.StatusInactive {
		if c, err = e.security.SetStatus(ctx, c.ID, api.StatusChange{Status: api.StatusActive}, 0); err != nil {
			t.Fatalf("activating %s: %v", name, err)
		}
	}
	if status == api.StatusInactive {
		if c, err = e.security.SetStatus(ctx, c.ID, api.StatusChange{Status: api.StatusInactive}, 0); err != nil {
			t.Fatalf("deactivating %s: %v", name, err)
		}
	}
	if c.Status != status {
		t.Fatalf("%s is %s, want %s", name, c.Status, status)
	}
	return c
}

// get reads a connection as the auditor (read-only, so it changes nothing).
func (e *env) get(t testing.TB, ref string) *api.Connection {
	t.Helper()
	c, err := e.auditor.GetConnection(ctx, ref)
	if err != nil {
		t.Fatalf("reading %s: %v", ref, err)
	}
	return c
}

// auditOf lists every audit event of a connection (newest first) as the auditor.
func (e *env) auditOf(t testing.TB, ref string) []api.AuditEvent {
	t.Helper()
	return e.auditAll(t, e.auditor, apiclient.AuditOptions{Connection: ref})
}

func (e *env) auditAll(t testing.TB, c *apiclient.Client, o apiclient.AuditOptions) []api.AuditEvent {
	t.Helper()
	var all []api.AuditEvent
	for {
		page, err := c.ListAuditEvents(ctx, o)
		if err != nil {
			t.Fatalf("listing audit events: %v", err)
		}
		all = append(all, page.Items...)
		if page.NextCursor == "" {
			return all
		}
		o.Cursor = page.NextCursor
	}
}

// etag is the ETag a connection at revision n must carry.
func etag(n int64) string { return strconv.Quote(strconv.FormatInt(n, 10)) }

// wantUnchanged fails unless the connection still has the revision, status and fingerprint of before.
func (e *env) wantUnchanged(t testing.TB, before *api.Connection) {
	t.Helper()
	now := e.get(t, before.ID)
	if now.Revision != before.Revision || now.Status != before.Status || now.Fingerprint != before.Fingerprint ||
		now.Name != before.Name || now.Description != before.Description {
		t.Errorf("connection changed: before rev %d %s %s %q %q, now rev %d %s %s %q %q",
			before.Revision, before.Status, before.Fingerprint, before.Name, before.Description,
			now.Revision, now.Status, now.Fingerprint, now.Name, now.Description)
	}
}
