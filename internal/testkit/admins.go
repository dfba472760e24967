package testkit

import (
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
)

// Admins are the API clients of a server's three principals.
type Admins struct {
	DevOps   *apiclient.Client // role devops_admin
	Security *apiclient.Client // role security_admin
	Auditor  *apiclient.Client // role auditor
}

// NewAdmins builds the three clients of the server at url.
func NewAdmins(t testing.TB, url, devopsKey, securityKey, auditorKey string, opts ...apiclient.Option) Admins {
	t.Helper()
	client := func(key string) *apiclient.Client {
		c, err := apiclient.New(url, key, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	return Admins{DevOps: client(devopsKey), Security: client(securityKey), Auditor: client(auditorKey)}
}

// CreateDraft creates a connection as the DevOps admin and checks that it is a draft.
func (a Admins) CreateDraft(t testing.TB, in api.ConnectionInput) *api.Connection {
	t.Helper()
	c, err := a.DevOps.CreateConnection(t.Context(), in)
	if err != nil {
		t.Fatalf("creating connection %s: %v", in.Name, err)
	}
	if c.Status != api.StatusDraft {
		t.Fatalf("new connection %s has status %q, want draft", in.Name, c.Status)
	}
	return c
}

// SetStatus changes the status as the security admin, approving the fingerprint of c.
func (a Admins) SetStatus(t testing.TB, c *api.Connection, status string) *api.Connection {
	t.Helper()
	out, err := a.Security.SetStatus(t.Context(), c.Name, api.StatusChange{Status: status, ApprovedFingerprint: c.Fingerprint}, 0)
	if err != nil {
		t.Fatalf("setting %s to %s: %v", c.Name, status, err)
	}
	if out.Status != status {
		t.Fatalf("%s has status %q after the change, want %q", c.Name, out.Status, status)
	}
	return out
}

// CreateActive creates a connection as the DevOps admin and activates it as the security admin.
func (a Admins) CreateActive(t testing.TB, in api.ConnectionInput) *api.Connection {
	t.Helper()
	return a.SetStatus(t, a.CreateDraft(t, in), api.StatusActive)
}

// ExchangeEvents returns the token.exchange audit events of a connection (id or name), keyed by
// request id, as the security admin reads them. Two events under one request id fail the test.
func (a Admins) ExchangeEvents(t testing.TB, connection string) map[string]api.AuditEvent {
	t.Helper()
	out := map[string]api.AuditEvent{}
	for _, ev := range AuditEvents(t, a.Security, apiclient.AuditOptions{Connection: connection, Action: api.ActionTokenExchange}) {
		if _, dup := out[ev.RequestID]; dup {
			t.Errorf("two token.exchange events carry request id %s", ev.RequestID)
		}
		out[ev.RequestID] = ev
	}
	return out
}

// AuditEvents pages through every audit event c may read that o selects, newest first (pages of
// o.Limit, 500 when unset).
func AuditEvents(t testing.TB, c *apiclient.Client, o apiclient.AuditOptions) []api.AuditEvent {
	t.Helper()
	if o.Limit == 0 {
		o.Limit = 500
	}
	var out []api.AuditEvent
	for {
		page, err := c.ListAuditEvents(t.Context(), o)
		if err != nil {
			t.Fatalf("listing audit events: %v", err)
		}
		out = append(out, page.Items...)
		if page.NextCursor == "" {
			return out
		}
		o.Cursor = page.NextCursor
	}
}
