package httpapi_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/testdb"
	"github.com/trustgate/terraform-provider-trustgate/server/app"
)

func TestRestartKeepsConnectionsKeysAndAuditEvents(t *testing.T) {
	dsn := testdb.DSN(t)
	var (
		kek                            []byte
		audience                       string
		devopsKey, securityKey, extra  string
		conns                          []api.Connection
		events                         []api.AuditEvent
		revokedKey                     string
		connectionsJSON, auditEventsJS []byte
	)
	// The first server lives in a subtest so that it is closed (listener and background work) when
	// the subtest ends; the store stays open for the second.
	t.Run("first server", func(t *testing.T) {
		e := &env{testkit.StartOn(t, dsn)}
		kek, audience = e.App.Config.KEK, e.App.Config.Audience
		devopsKey, securityKey = e.DevOpsKey, e.SecurityKey
		extra = e.NewKey(t, "ops-auditor", api.RoleAuditor)
		revokedKey = e.NewKey(t, "gone", api.RoleAuditor)
		if err := e.App.Store.RevokePrincipal(ctx, "gone"); err != nil {
			t.Fatal(err)
		}
		e.inStatus(t, "kept-draft", api.StatusDraft)
		e.inStatus(t, "kept-active", api.StatusActive)
		e.inStatus(t, "kept-inactive", api.StatusInactive)
		in := api.ConnectionInput{Name: "kept-gitlab", Description: "with everything", JWKSURL: "https://keys.acme.example/jwks",
			GitLab:        &api.GitLabSettings{Domain: "gitlab.com", Group: "acme", ProjectID: "7"},
			TokenTTL:      &api.TokenTTL{Amount: 90, Unit: api.UnitSeconds},
			IdentityClaim: "project_path",
			Conditions:    []api.Condition{{Claim: "ref_type", Operator: api.OpOneOf, Values: []string{"branch", "tag"}}, {Claim: "/namespace_id", Operator: api.OpExists}}}
		e.create(t, in)
		if _, err := e.DevOps.SetStatus(ctx, "kept-draft", api.StatusChange{Status: api.StatusActive}, 0); apiStatus(err) != 403 {
			t.Fatalf("want a denied event: %v", err)
		}
		conns = listAll(t, e.Auditor)
		events = testkit.AuditEvents(t, e.Auditor, apiclient.AuditOptions{})
		if len(conns) != 4 || len(events) != 8 {
			t.Fatalf("%d connections, %d events before the restart", len(conns), len(events))
		}
		connectionsJSON, _ = json.Marshal(conns)
		auditEventsJS, _ = json.Marshal(events)
	})
	if t.Failed() {
		return
	}

	// A restart on the same database needs the same key-encryption key (the signing keys are
	// encrypted with it) and the same default audience (presets without an audience pin it, so it
	// is part of their effective conditions and fingerprint), as a real restart would have. The
	// test server listens on a new port, whose URL would otherwise become the default audience.
	s := testkit.StartOn(t, dsn, testkit.WithConfig(func(c *app.Config) { c.KEK, c.Audience = kek, audience }))
	old := s.Client(t, devopsKey)

	w, err := old.Whoami(ctx)
	if err != nil || w.Name != "devops" || w.Role != api.RoleDevOpsAdmin {
		t.Errorf("the devops key after the restart: %v %+v", err, w)
	}
	if w, err := s.Client(t, extra).Whoami(ctx); err != nil || w.Name != "ops-auditor" {
		t.Errorf("a key created before the restart: %v %+v", err, w)
	}
	if _, err := s.Client(t, revokedKey).Whoami(ctx); apiStatus(err) != http.StatusUnauthorized {
		t.Errorf("a key revoked before the restart: %v, want 401", err)
	}

	after := listAll(t, s.Client(t, extra))
	if b, _ := json.Marshal(after); string(b) != string(connectionsJSON) {
		t.Errorf("connections changed across the restart\nbefore %s\n after %s", connectionsJSON, b)
	}
	afterEvents := testkit.AuditEvents(t, s.Client(t, securityKey), apiclient.AuditOptions{})
	// The first server signed its hash chain as it stopped (CONTRACT.md §3): one checkpoint more.
	if len(afterEvents) == 0 || afterEvents[0].Action != api.ActionAuditCheckpoint {
		t.Errorf("no audit.checkpoint from the first server's shutdown: %+v", afterEvents)
	} else {
		afterEvents = afterEvents[1:]
	}
	if b, _ := json.Marshal(afterEvents); string(b) != string(auditEventsJS) {
		t.Errorf("audit events changed across the restart\nbefore %s\n after %s", auditEventsJS, b)
	}

	// The lifecycle state survived too: the devops admin still does not own the activated ones,
	// the four-eyes facts are intact, and revisions continue.
	if err := old.DeleteConnection(ctx, "kept-inactive", 0); apiStatus(err) != http.StatusForbidden {
		t.Errorf("devops delete of an ever-activated connection after restart: %v, want 403", err)
	}
	if p, err := old.PatchConnection(ctx, "kept-inactive", map[string]any{"description": "x"}, 0); err != nil || p.Proposal == nil || p.Description == "x" {
		t.Errorf("devops patch of an ever-activated connection after restart: %+v, %v; want a proposal", p, err)
	}
	c, err := s.Client(t, securityKey).SetStatus(ctx, "kept-inactive", api.StatusChange{Status: api.StatusActive}, 0)
	if err != nil || c.Revision != 5 || c.Proposal == nil {
		t.Errorf("reactivation after restart: %v (revision %d, want 5, proposal still pending)", err, c.Revision)
	}
	var before api.Connection
	for _, x := range conns {
		if x.Name == "kept-active" {
			before = x
		}
	}
	got, err := old.GetConnection(ctx, "kept-active")
	if err != nil || !reflect.DeepEqual(*got, before) {
		t.Errorf("kept-active after restart: %v\n%+v\nwant %+v", err, got, before)
	}
}

func listAll(t testing.TB, c *apiclient.Client) []api.Connection {
	t.Helper()
	all, err := c.ListAllConnections(ctx, apiclient.ListOptions{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	return all
}
