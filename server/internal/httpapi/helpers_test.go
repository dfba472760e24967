package httpapi_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
)

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
		GitHub: &api.GitHubSettings{OwnerID: "65", Owner: "acme", Repository: "acme/app"}}
}

// genericInput is a valid generic connection (nothing is exchanged through it).
func genericInput(name string) api.ConnectionInput {
	return testkit.GenericInput(name, "https://issuer.example.com", "https://issuer.example.com/jwks", "trustgate")
}

var ctx = context.Background()

// env is a running server (with a client per role) and this package's connection helpers.
type env struct{ *testkit.Server }

func start(t testing.TB, opts ...testkit.Option) *env {
	t.Helper()
	return &env{testkit.Start(t, opts...)}
}

// create creates a connection as the devops admin.
func (e *env) create(t testing.TB, in api.ConnectionInput) *api.Connection {
	t.Helper()
	c, err := e.DevOps.CreateConnection(ctx, in)
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
		if c, err = e.Security.SetStatus(ctx, c.ID, api.StatusChange{Status: api.StatusActive}, 0); err != nil {
			t.Fatalf("activating %s: %v", name, err)
		}
	}
	if status == api.StatusInactive {
		if c, err = e.Security.SetStatus(ctx, c.ID, api.StatusChange{Status: api.StatusInactive}, 0); err != nil {
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
	c, err := e.Auditor.GetConnection(ctx, ref)
	if err != nil {
		t.Fatalf("reading %s: %v", ref, err)
	}
	return c
}

// auditOf lists every audit event of a connection (newest first) as the auditor.
func (e *env) auditOf(t testing.TB, ref string) []api.AuditEvent {
	t.Helper()
	return testkit.AuditEvents(t, e.Auditor, apiclient.AuditOptions{Connection: ref})
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
