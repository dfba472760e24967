package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
)

// permRow is one row of the CONTRACT.md §1 permission table: an action and the status code each role gets
// on a connection that is draft (never activated), active, or inactive after activation.
type permRow struct {
	action string
	want   map[string][3]int // role → codes for draft, active, inactive
}

var permStatuses = []string{api.StatusDraft, api.StatusActive, api.StatusInactive}

const (
	devops   = api.RoleDevOpsAdmin
	security = api.RoleSecurityAdmin
	auditor  = api.RoleAuditor
)

// permTable is CONTRACT.md §1's lifecycle table written as status codes. After the first
// activation a PATCH is a proposal (202) by either admin role; the proposal rows run on a
// connection with a pending proposal written by the devops admin (a draft has none: 404).
var permTable = []permRow{
	{"read", map[string][3]int{devops: {200, 200, 200}, security: {200, 200, 200}, auditor: {200, 200, 200}}},
	{"list", map[string][3]int{devops: {200, 200, 200}, security: {200, 200, 200}, auditor: {200, 200, 200}}},
	{"update", map[string][3]int{devops: {200, 202, 202}, security: {200, 202, 202}, auditor: {403, 403, 403}}},
	{"approve", map[string][3]int{devops: {403, 403, 403}, security: {404, 200, 200}, auditor: {403, 403, 403}}},
	{"discard", map[string][3]int{devops: {404, 204, 204}, security: {404, 204, 204}, auditor: {403, 403, 403}}},
	{"test_proposal", map[string][3]int{devops: {404, 200, 200}, security: {404, 200, 200}, auditor: {403, 403, 403}}},
	{"delete", map[string][3]int{devops: {204, 403, 403}, security: {204, 409, 204}, auditor: {403, 403, 403}}},
	// draft → inactive is not a lifecycle transition (draft → active ⇄ inactive): 409.
	{"set_status_active", map[string][3]int{devops: {403, 403, 403}, security: {200, 200, 200}, auditor: {403, 403, 403}}},
	{"set_status_inactive", map[string][3]int{devops: {403, 403, 403}, security: {409, 200, 200}, auditor: {403, 403, 403}}},
	{"test", map[string][3]int{devops: {200, 200, 200}, security: {200, 200, 200}, auditor: {403, 403, 403}}},
	{"read_audit", map[string][3]int{devops: {200, 200, 200}, security: {200, 200, 200}, auditor: {200, 200, 200}}},
}

func TestPermissionTable(t *testing.T) {
	e := start(t)
	keys := map[string]string{devops: e.DevOpsKey, security: e.SecurityKey, auditor: e.AuditorKey}
	principals := map[string]string{devops: "devops", security: "security", auditor: "auditor"}
	var n atomic.Int64
	fresh := func(prefix string) string { return fmt.Sprintf("%s-%d", prefix, n.Add(1)) }

	// create has no connection status: it always makes a new draft.
	for _, tc := range []struct {
		role string
		want int
	}{{devops, 201}, {security, 403}, {auditor, 403}} {
		t.Run(fmt.Sprintf("%s/no_connection_yet/create_is_%d", tc.role, tc.want), func(t *testing.T) {
			name := fresh("perm-create")
			r := e.Do(t, testkit.Request{Method: http.MethodPost, Path: "/v1/workload-connections", Key: keys[tc.role], Body: githubInput(name)})
			if tc.want != 201 {
				r.Problem(t, tc.want)
				if g := e.Do(t, testkit.Request{Method: http.MethodGet, Path: "/v1/workload-connections/" + name, Key: e.AuditorKey}); g.Status != 404 {
					t.Errorf("refused create left a connection behind: GET answers %d", g.Status)
				}
				return
			}
			r.WantStatus(t, 201)
			var c api.Connection
			r.Decode(t, &c)
			if c.Status != api.StatusDraft || c.CreatedBy != principals[tc.role] {
				t.Errorf("created status %q by %q, want draft by %q", c.Status, c.CreatedBy, principals[tc.role])
			}
		})
	}

	for _, row := range permTable {
		for _, role := range api.Roles {
			for si, status := range permStatuses {
				want := row.want[role][si]
				t.Run(fmt.Sprintf("%s/%s/%s_is_%d", role, status, row.action, want), func(t *testing.T) {
					c := e.inStatus(t, fresh("perm"), status)
					key := keys[role]
					path := "/v1/workload-connections/" + c.ID
					proposalFP := ""
					if status != api.StatusDraft && (row.action == "approve" || row.action == "discard" || row.action == "test_proposal") {
						p, err := e.DevOps.PatchConnection(ctx, c.ID, map[string]any{"description": "proposed by devops"}, 0)
						if err != nil || p.Proposal == nil {
							t.Fatalf("setting up a proposal: %+v, %v", p, err)
						}
						c, proposalFP = p, p.Proposal.Fingerprint
					}
					var r testkit.Response
					switch row.action {
					case "read":
						r = e.Do(t, testkit.Request{Method: http.MethodGet, Path: path, Key: key})
					case "list":
						r = e.Do(t, testkit.Request{Method: http.MethodGet, Key: key,
							Path: "/v1/workload-connections?status=" + status + "&name_prefix=" + url.QueryEscape(c.Name)})
					case "update":
						r = e.Do(t, testkit.Request{Method: http.MethodPatch, Path: path, Key: key,
							ContentType: "application/merge-patch+json", Body: map[string]any{"description": "changed by " + role}})
					case "approve":
						r = e.Do(t, testkit.Request{Method: http.MethodPost, Path: path + "/proposal/approve", Key: key,
							Body: api.ProposalApproval{ApprovedFingerprint: orString(proposalFP, "sha256:none")}})
					case "discard":
						r = e.Do(t, testkit.Request{Method: http.MethodDelete, Path: path + "/proposal", Key: key})
					case "test_proposal":
						r = e.Do(t, testkit.Request{Method: http.MethodPost, Path: path + "/test?config=proposal", Key: key, Body: api.TestRequest{Token: "not.a.jwt"}})
					case "delete":
						r = e.Do(t, testkit.Request{Method: http.MethodDelete, Path: path, Key: key})
					case "set_status_active":
						r = e.Do(t, testkit.Request{Method: http.MethodPut, Path: path + "/status", Key: key, Body: api.StatusChange{Status: api.StatusActive}})
					case "set_status_inactive":
						r = e.Do(t, testkit.Request{Method: http.MethodPut, Path: path + "/status", Key: key, Body: api.StatusChange{Status: api.StatusInactive}})
					case "test":
						r = e.Do(t, testkit.Request{Method: http.MethodPost, Path: path + "/test", Key: key, Body: api.TestRequest{Token: "not.a.jwt"}})
					case "read_audit":
						r = e.Do(t, testkit.Request{Method: http.MethodGet, Path: "/v1/audit-events?connection=" + c.ID, Key: key})
					default:
						t.Fatalf("unknown action %s", row.action)
					}

					if want >= 400 {
						p := r.Problem(t, want)
						e.wantUnchanged(t, c)
						if role == devops && status != api.StatusDraft && row.action == "delete" &&
							!strings.Contains(p.Detail, "security admin owns it") {
							t.Errorf("403 detail %q does not say that a security admin owns the connection", p.Detail)
						}
						if want == 409 && row.action == "delete" && !strings.Contains(p.Detail, "deactivate it first") {
							t.Errorf("409 detail %q does not say to deactivate first", p.Detail)
						}
						return
					}
					r.WantStatus(t, want)
					switch row.action {
					case "read":
						var got api.Connection
						r.Decode(t, &got)
						if got.ID != c.ID || got.Status != status {
							t.Errorf("read %s (%s), want %s (%s)", got.ID, got.Status, c.ID, status)
						}
					case "list":
						var got api.ConnectionList
						r.Decode(t, &got)
						if len(got.Items) != 1 || got.Items[0].ID != c.ID {
							t.Errorf("list by status %s and name returned %d items, want exactly %s", status, len(got.Items), c.Name)
						}
					case "update":
						now := e.get(t, c.ID)
						if status == api.StatusDraft {
							if now.Revision != c.Revision+1 || now.Description != "changed by "+role || now.Status != status || now.Proposal != nil {
								t.Errorf("after update: rev %d %q %s, want rev %d, new description, status %s", now.Revision, now.Description, now.Status, c.Revision+1, status)
							}
							break
						}
						// Activated: the change waits as a proposal, nothing live moved.
						if now.Revision != c.Revision+1 || now.Description != c.Description || now.Fingerprint != c.Fingerprint ||
							now.Proposal == nil || now.Proposal.Config.Description != "changed by "+role || now.Proposal.ProposedBy != principals[role] {
							t.Errorf("after a proposal: rev %d, live description %q, proposal %+v", now.Revision, now.Description, now.Proposal)
						}
					case "approve":
						now := e.get(t, c.ID)
						if now.Proposal != nil || now.Description != "proposed by devops" || now.Status != status || now.Revision != c.Revision+1 {
							t.Errorf("after approval: %+v", now)
						}
					case "discard":
						now := e.get(t, c.ID)
						if now.Proposal != nil || now.Description == "proposed by devops" || now.Revision != c.Revision+1 {
							t.Errorf("after discard: %+v", now)
						}
					case "test_proposal":
						var got api.TestResult
						r.Decode(t, &got)
						if got.WouldIssue {
							t.Error("a garbage token would issue")
						}
						e.wantUnchanged(t, c)
					case "delete":
						if g := e.Do(t, testkit.Request{Method: http.MethodGet, Path: path, Key: e.AuditorKey}); g.Status != 404 {
							t.Errorf("deleted connection still readable: %d", g.Status)
						}
					case "set_status_active", "set_status_inactive":
						target := strings.TrimPrefix(row.action, "set_status_")
						var got api.Connection
						r.Decode(t, &got)
						if got.Status != target {
							t.Errorf("status %s after setting %s", got.Status, target)
						}
						if wantRev := c.Revision + map[bool]int64{true: 0, false: 1}[status == target]; got.Revision != wantRev {
							t.Errorf("revision %d, want %d", got.Revision, wantRev)
						}
					case "test":
						var got api.TestResult
						r.Decode(t, &got)
						if got.WouldIssue {
							t.Error("a garbage token would issue")
						}
						e.wantUnchanged(t, c)
					case "read_audit":
						var got api.AuditEventList
						r.Decode(t, &got)
						actions := map[string]bool{}
						for _, ev := range got.Items {
							actions[ev.Action] = true
							if role == devops && ev.Actor != "devops" {
								t.Errorf("devops admin sees an event by %s", ev.Actor)
							}
						}
						if !actions[api.ActionConnectionCreate] {
							t.Errorf("%s does not see the create event", role)
						}
						if role != devops && status != api.StatusDraft && !actions[api.ActionConnectionStatus] {
							t.Errorf("%s does not see the security admin's status events", role)
						}
					}
				})
			}
		}
	}
}

// TestDevOpsAfterActivationOnlyProposes: once activated, a devops admin can no longer change what
// is live, its status, or delete it (403 saying a security admin owns it); a change becomes a
// proposal, for good, also after the connection went back to inactive.
func TestDevOpsAfterActivationOnlyProposes(t *testing.T) {
	e := start(t)
	for _, status := range []string{api.StatusActive, api.StatusInactive} {
		c := e.inStatus(t, "owned-"+status, status)
		p := apiProblem(t, e.DevOps.DeleteConnection(ctx, c.Name, 0), http.StatusForbidden)
		if !strings.Contains(p.Detail, "a security admin owns it") || p.Type != api.ProblemOwnedBySecurity {
			t.Errorf("%s: delete 403 %q (type %q) does not say a security admin owns it", status, p.Detail, p.Type)
		}
		if _, err := e.DevOps.SetStatus(ctx, c.Name, api.StatusChange{Status: api.StatusActive}, 0); apiStatus(err) != http.StatusForbidden {
			t.Errorf("%s: devops status change: %v, want 403", status, err)
		}
		e.wantUnchanged(t, c)
		got, err := e.DevOps.PatchConnection(ctx, c.Name, map[string]any{"description": "mine again?"}, 0)
		if err != nil || got.Proposal == nil || got.Description != c.Description || got.Fingerprint != c.Fingerprint {
			t.Errorf("%s: devops change = %+v, %v; want a proposal with the live fields unchanged", status, got, err)
		}
	}
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func TestSecurityDeletingActiveConnectionIs409DeactivateFirst(t *testing.T) {
	e := start(t)
	c := e.inStatus(t, "busy", api.StatusActive)
	p := apiProblem(t, e.Security.DeleteConnection(ctx, c.ID, 0), http.StatusConflict)
	if !strings.Contains(strings.ToLower(p.Detail), "deactivate it first") {
		t.Errorf("409 detail %q does not say to deactivate first", p.Detail)
	}
	e.wantUnchanged(t, c)
	c, err := e.Security.SetStatus(ctx, c.ID, api.StatusChange{Status: api.StatusInactive}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Security.DeleteConnection(ctx, c.ID, 0); err != nil {
		t.Fatalf("deleting after deactivation: %v", err)
	}
}

func TestAuditVisibility_DevOpsSeesOwnActions_SecurityAndAuditorSeeAll(t *testing.T) {
	e := start(t)
	other := e.Client(t, e.NewKey(t, "devops-2", api.RoleDevOpsAdmin))
	c := e.inStatus(t, "seen", api.StatusActive)
	if _, err := other.CreateConnection(ctx, githubInput("other-devops")); err != nil {
		t.Fatal(err)
	}
	// A refused action of the devops admin is theirs too.
	if _, err := e.DevOps.SetStatus(ctx, c.ID, api.StatusChange{Status: api.StatusInactive}, 0); apiStatus(err) != 403 {
		t.Fatalf("devops status change: %v, want 403", err)
	}

	actors := func(evs []api.AuditEvent) map[string]int {
		m := map[string]int{}
		for _, ev := range evs {
			m[ev.Actor]++
		}
		return m
	}
	own := actors(testkit.AuditEvents(t, e.DevOps, apiclient.AuditOptions{}))
	if len(own) != 1 || own["devops"] != 2 {
		t.Errorf("devops admin sees events by %v, want exactly its own 2 (create, refused status change)", own)
	}
	// Filtering by a connection does not widen the view.
	if got := actors(testkit.AuditEvents(t, e.DevOps, apiclient.AuditOptions{Connection: c.ID})); len(got) != 1 || got["devops"] != 2 {
		t.Errorf("devops admin filtering by connection sees %v", got)
	}
	for name, cl := range map[string]*apiclient.Client{"security": e.Security, "auditor": e.Auditor} {
		all := actors(testkit.AuditEvents(t, cl, apiclient.AuditOptions{}))
		if all["devops"] != 2 || all["devops-2"] != 1 || all["security"] != 1 {
			t.Errorf("%s sees events by %v, want devops 2, devops-2 1, security 1", name, all)
		}
	}
}
