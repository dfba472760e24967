package connection

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

func conn(status string, everActivated bool) *Connection {
	return &Connection{
		ID: "id-1", Spec: api.ConnectionInput{Name: "deploy"}, Status: status, EverActivated: everActivated,
		CreatedBy: "dev-alice", ConfigChangedBy: "dev-alice",
	}
}

// kindOf returns "ok" for nil or the error's Kind name.
func kindOf(err error) string {
	if err == nil {
		return "ok"
	}
	var e *Error
	if !errors.As(err, &e) {
		return fmt.Sprintf("non-domain error %v", err)
	}
	return e.Kind.String()
}

// TestAuthorizeMatrix is CONTRACT.md §1's lifecycle table, cell by cell.
func TestAuthorizeMatrix(t *testing.T) {
	const (
		dev = api.RoleDevOpsAdmin
		sec = api.RoleSecurityAdmin
		aud = api.RoleAuditor
	)
	draft := conn(api.StatusDraft, false)
	active := conn(api.StatusActive, true)
	inactive := conn(api.StatusInactive, true)
	tests := []struct {
		role   string
		action Action
		c      *Connection
		want   string
	}{
		{dev, ActionCreate, nil, "ok"},
		{sec, ActionCreate, nil, "forbidden"},
		{aud, ActionCreate, nil, "forbidden"},

		{dev, ActionRead, active, "ok"},
		{sec, ActionRead, draft, "ok"},
		{aud, ActionRead, inactive, "ok"},
		{dev, ActionList, nil, "ok"},
		{sec, ActionList, nil, "ok"},
		{aud, ActionList, nil, "ok"},

		{dev, ActionUpdate, draft, "ok"},
		{dev, ActionUpdate, active, "forbidden"},
		{dev, ActionUpdate, inactive, "forbidden"},
		{sec, ActionUpdate, draft, "ok"},
		{sec, ActionUpdate, active, "ok"},
		{sec, ActionUpdate, inactive, "ok"},
		{aud, ActionUpdate, draft, "forbidden"},

		{dev, ActionDelete, draft, "ok"},
		{dev, ActionDelete, active, "forbidden"},
		{dev, ActionDelete, inactive, "forbidden"},
		{sec, ActionDelete, draft, "ok"},
		{sec, ActionDelete, active, "conflict"},
		{sec, ActionDelete, inactive, "ok"},
		{aud, ActionDelete, draft, "forbidden"},
		{aud, ActionDelete, active, "forbidden"},

		{dev, ActionSetStatus, draft, "forbidden"},
		{sec, ActionSetStatus, draft, "ok"},
		{sec, ActionSetStatus, active, "ok"},
		{aud, ActionSetStatus, draft, "forbidden"},

		{dev, ActionTest, draft, "ok"},
		{dev, ActionTest, active, "ok"},
		{sec, ActionTest, draft, "ok"},
		{aud, ActionTest, draft, "forbidden"},

		// Change control (v2): a change to an activated connection is a proposal, open to both
		// admin roles; approving is a security admin's; discarding is checked further by
		// CheckDiscard (a devops admin only their own).
		{dev, ActionPropose, active, "ok"},
		{dev, ActionPropose, inactive, "ok"},
		{sec, ActionPropose, active, "ok"},
		{sec, ActionPropose, inactive, "ok"},
		{aud, ActionPropose, active, "forbidden"},
		{dev, ActionApprove, active, "forbidden"},
		{sec, ActionApprove, active, "ok"},
		{sec, ActionApprove, inactive, "ok"},
		{aud, ActionApprove, active, "forbidden"},
		{dev, ActionDiscard, active, "ok"},
		{sec, ActionDiscard, inactive, "ok"},
		{aud, ActionDiscard, active, "forbidden"},
		{dev, ActionImpact, active, "ok"},
		{sec, ActionImpact, draft, "ok"},
		{aud, ActionImpact, inactive, "ok"},

		{dev, ActionReadAudit, nil, "ok"},
		{sec, ActionReadAudit, nil, "ok"},
		{aud, ActionReadAudit, nil, "ok"},
		{sec, ActionRevokeToken, nil, "ok"},
		{dev, ActionRevokeToken, nil, "forbidden"},
		{aud, ActionRevokeToken, nil, "forbidden"},

		{"root", ActionRead, nil, "forbidden"},
		{"", ActionRead, nil, "forbidden"},
		{"DEVOPS_ADMIN", ActionCreate, nil, "forbidden"},
		{sec, Action("fly"), draft, "forbidden"},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s %s", tt.role, tt.action)
		if tt.c != nil {
			name += " " + tt.c.Status
		}
		t.Run(name, func(t *testing.T) {
			err := Authorize(tt.role, tt.action, tt.c)
			if got := kindOf(err); got != tt.want {
				t.Fatalf("Authorize = %s (%v), want %s", got, err, tt.want)
			}
			if err != nil && err.(*Error).Detail == "" {
				t.Fatal("refusal without a detail")
			}
		})
	}
}

func TestAuthorizeDevOpsLosesTheConnectionForGood(t *testing.T) {
	// Activated once, now inactive, even shown as draft by a hypothetical bug: still refused.
	for _, c := range []*Connection{conn(api.StatusInactive, true), conn(api.StatusDraft, true), conn(api.StatusActive, false)} {
		for _, a := range []Action{ActionUpdate, ActionDelete} {
			err := Authorize(api.RoleDevOpsAdmin, a, c)
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindForbidden {
				t.Fatalf("%s on %s (ever activated %v): %v", a, c.Status, c.EverActivated, err)
			}
			for _, s := range []string{"deploy", "activated", "a security admin owns it now", "ask a security admin"} {
				if !strings.Contains(e.Detail, s) {
					t.Errorf("detail %q lacks %q", e.Detail, s)
				}
			}
		}
	}
}

func TestAuthorizeDeleteActiveSaysDeactivateFirst(t *testing.T) {
	err := Authorize(api.RoleSecurityAdmin, ActionDelete, conn(api.StatusActive, true))
	if kindOf(err) != "conflict" || !strings.Contains(err.Error(), "deactivate it first") {
		t.Fatalf("got %v", err)
	}
}

func TestCheckUpdateRename(t *testing.T) {
	tests := []struct {
		status  string
		newName string
		want    string
	}{
		{api.StatusDraft, "renamed", "ok"},
		{api.StatusActive, "renamed", "conflict"},
		{api.StatusInactive, "renamed", "conflict"},
		{api.StatusActive, "deploy", "ok"},
		{api.StatusInactive, "deploy", "ok"},
	}
	for _, tt := range tests {
		c := conn(tt.status, tt.status != api.StatusDraft)
		err := CheckUpdate(c, api.ConnectionInput{Name: tt.newName, Description: "changed"})
		if got := kindOf(err); got != tt.want {
			t.Errorf("%s rename to %q: %s (%v), want %s", tt.status, tt.newName, got, err, tt.want)
		}
		if err != nil && !strings.Contains(err.Error(), "only while draft") {
			t.Errorf("detail %q does not say why", err)
		}
	}
}

func TestCheckStatusChange(t *testing.T) {
	const fp = "sha256:current"
	tests := []struct {
		name        string
		c           *Connection
		principal   string
		req         api.StatusChange
		wantChanged bool
		want        string
		detailHas   []string
	}{
		{"activate a draft", conn(api.StatusDraft, false), "sec-bob", api.StatusChange{Status: "active"}, true, "ok", nil},
		{"activate with matching fingerprint", conn(api.StatusDraft, false), "sec-bob", api.StatusChange{Status: "active", ApprovedFingerprint: fp}, true, "ok", nil},
		{"activate with stale fingerprint", conn(api.StatusDraft, false), "sec-bob", api.StatusChange{Status: "active", ApprovedFingerprint: "sha256:old"}, false, "conflict", []string{"sha256:old", fp}},
		{"deactivate with stale fingerprint", conn(api.StatusActive, true), "sec-bob", api.StatusChange{Status: "inactive", ApprovedFingerprint: "sha256:old"}, false, "conflict", []string{"sha256:old", fp}},
		{"no-op with stale fingerprint is still refused", conn(api.StatusActive, true), "sec-bob", api.StatusChange{Status: "active", ApprovedFingerprint: "sha256:old"}, false, "conflict", nil},
		{"deactivate active", conn(api.StatusActive, true), "sec-bob", api.StatusChange{Status: "inactive"}, true, "ok", nil},
		{"reactivate inactive", conn(api.StatusInactive, true), "sec-bob", api.StatusChange{Status: "active"}, true, "ok", nil},
		{"already active is a no-op", conn(api.StatusActive, true), "sec-bob", api.StatusChange{Status: "active"}, false, "ok", nil},
		{"already inactive is a no-op", conn(api.StatusInactive, true), "sec-bob", api.StatusChange{Status: "inactive"}, false, "ok", nil},
		{"draft to inactive", conn(api.StatusDraft, false), "sec-bob", api.StatusChange{Status: "inactive"}, false, "conflict", []string{"draft", "activate it or delete it"}},
		{"back to draft", conn(api.StatusActive, true), "sec-bob", api.StatusChange{Status: "draft"}, false, "validation", []string{"never goes back to draft"}},
		{"unknown status", conn(api.StatusActive, true), "sec-bob", api.StatusChange{Status: "enabled"}, false, "validation", []string{"enabled"}},
		{"empty status", conn(api.StatusActive, true), "sec-bob", api.StatusChange{}, false, "validation", nil},
		{"status is case sensitive", conn(api.StatusDraft, false), "sec-bob", api.StatusChange{Status: "Active"}, false, "validation", nil},
		{"creator may not activate", conn(api.StatusDraft, false), "dev-alice", api.StatusChange{Status: "active"}, false, "forbidden", []string{"four eyes", "dev-alice", "created", "another security admin"}},
		{"config changer may not activate", func() *Connection {
			c := conn(api.StatusDraft, false)
			c.ConfigChangedBy = "sec-carol"
			return c
		}(), "sec-carol", api.StatusChange{Status: "active"}, false, "forbidden", []string{"four eyes", "last changed"}},
		{"config changer may not reactivate", func() *Connection {
			c := conn(api.StatusInactive, true)
			c.ConfigChangedBy = "sec-carol"
			return c
		}(), "sec-carol", api.StatusChange{Status: "active"}, false, "forbidden", nil},
		{"creator may not activate even after someone else changed the config", func() *Connection {
			c := conn(api.StatusDraft, false)
			c.ConfigChangedBy = "sec-carol"
			return c
		}(), "dev-alice", api.StatusChange{Status: "active"}, false, "forbidden", nil},
		{"config changer may deactivate (safety action)", func() *Connection {
			c := conn(api.StatusActive, true)
			c.ConfigChangedBy = "sec-carol"
			return c
		}(), "sec-carol", api.StatusChange{Status: "inactive"}, true, "ok", nil},
		{"creator may deactivate", conn(api.StatusActive, true), "dev-alice", api.StatusChange{Status: "inactive"}, true, "ok", nil},
		{"principal names compare exactly", conn(api.StatusDraft, false), "Dev-Alice", api.StatusChange{Status: "active"}, true, "ok", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changed, err := CheckStatusChange(tt.c, tt.principal, tt.req, fp)
			if got := kindOf(err); got != tt.want || changed != tt.wantChanged {
				t.Fatalf("got changed=%v %s (%v), want changed=%v %s", changed, got, err, tt.wantChanged, tt.want)
			}
			for _, s := range tt.detailHas {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("detail %q lacks %q", err, s)
				}
			}
			if tt.want == "validation" && (len(err.(*Error).Fields) != 1 || err.(*Error).Fields[0].Field != "status") {
				t.Errorf("validation error does not name the status field: %+v", err)
			}
		})
	}
}

func TestAuditActorFilter(t *testing.T) {
	tests := []struct{ role, principal, want string }{
		{api.RoleDevOpsAdmin, "dev-alice", "dev-alice"},
		{api.RoleSecurityAdmin, "sec-bob", ""},
		{api.RoleAuditor, "aud-eve", ""},
		{"unknown", "x", "x"},
		{"", "x", "x"},
	}
	for _, tt := range tests {
		if got := AuditActorFilter(tt.role, tt.principal); got != tt.want {
			t.Errorf("AuditActorFilter(%q, %q) = %q, want %q", tt.role, tt.principal, got, tt.want)
		}
	}
}
