package connection

import (
	"fmt"
	"slices"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// Action is something a principal may try to do (CONTRACT.md §1, lifecycle table).
type Action string

// Actions. ActionList is checked like ActionRead. ActionUpdate is a change to a connection that
// was never activated; ActionPropose a change to one that was (PatchAction picks).
const (
	ActionCreate    Action = "create"
	ActionRead      Action = "read"
	ActionList      Action = "list"
	ActionUpdate    Action = "update"
	ActionPropose   Action = "propose"
	ActionApprove   Action = "approve"
	ActionDiscard   Action = "discard"
	ActionDelete    Action = "delete"
	ActionSetStatus Action = "set_status"
	ActionTest      Action = "test"
	ActionImpact    Action = "impact"
	ActionReadAudit Action = "read_audit"
	// ActionRevokeToken is revoking another's access token (POST /v1/revoke with an API key; a
	// token revoking itself needs no role).
	ActionRevokeToken Action = "revoke_token"
)

// PatchAction is the action a PATCH of c is: an update while c has never been activated, a
// proposal afterwards (CONTRACT.md §1, change control).
func PatchAction(c *Connection) Action {
	if c != nil && c.EverActivated {
		return ActionPropose
	}
	return ActionUpdate
}

// Authorize decides whether a principal with role may do action on c (nil c for create, list and
// read_audit). It returns nil, or an *Error: KindForbidden with a detail a person can act on, or
// KindConflict when a security admin deletes an active connection. This is the one place where
// the CONTRACT.md §1 permission table lives.
func Authorize(role string, action Action, c *Connection) error {
	if !slices.Contains(api.Roles, role) {
		return Forbidden(fmt.Sprintf("unknown role %q: ask an administrator for a key with role %s, %s or %s", role, api.RoleDevOpsAdmin, api.RoleSecurityAdmin, api.RoleAuditor))
	}
	switch action {
	case ActionRead, ActionList:
		return nil
	case ActionReadAudit:
		return nil // devops admins see their own actions: AuditActorFilter
	case ActionCreate:
		if role == api.RoleDevOpsAdmin {
			return nil
		}
		if role == api.RoleSecurityAdmin {
			return Forbidden("a security admin approves workload connections but does not create them (split duty): ask a devops admin to create it, then activate it")
		}
		return Forbidden("auditors have read-only access: a devops admin creates workload connections")
	case ActionUpdate:
		switch role {
		case api.RoleSecurityAdmin:
			return nil
		case api.RoleDevOpsAdmin:
			if c != nil && (c.EverActivated || c.Status != api.StatusDraft) {
				return ownedBySecurity(c)
			}
			return nil
		default:
			return Forbidden("auditors have read-only access and may not change workload connections")
		}
	case ActionPropose:
		if role == api.RoleAuditor {
			return Forbidden("auditors have read-only access and may not propose changes to workload connections")
		}
		return nil
	case ActionApprove:
		switch role {
		case api.RoleSecurityAdmin:
			return nil
		case api.RoleDevOpsAdmin:
			return typed(api.ProblemOwnedBySecurity, Forbidden("only a security admin may approve a proposed change (split duty): ask a security admin who did not write it to review and approve it"))
		default:
			return Forbidden("auditors have read-only access and may not approve changes")
		}
	case ActionDiscard:
		if role == api.RoleAuditor {
			return Forbidden("auditors have read-only access and may not discard proposals")
		}
		return nil // a devops admin only their own: CheckDiscard
	case ActionDelete:
		switch role {
		case api.RoleSecurityAdmin:
			if c != nil && c.Status == api.StatusActive {
				return Conflict(fmt.Sprintf("connection %s is active: deactivate it first (set its status to inactive), then delete it", c.Spec.Name))
			}
			return nil
		case api.RoleDevOpsAdmin:
			if c != nil && (c.EverActivated || c.Status != api.StatusDraft) {
				return ownedBySecurity(c)
			}
			return nil
		default:
			return Forbidden("auditors have read-only access and may not delete workload connections")
		}
	case ActionImpact:
		return nil
	case ActionSetStatus:
		switch role {
		case api.RoleSecurityAdmin:
			return nil
		case api.RoleDevOpsAdmin:
			return Forbidden("only a security admin may activate or deactivate a workload connection (split duty): ask a security admin to review and activate it")
		default:
			return Forbidden("auditors have read-only access and may not change a connection's status")
		}
	case ActionRevokeToken:
		switch role {
		case api.RoleSecurityAdmin:
			return nil
		case api.RoleDevOpsAdmin:
			return Forbidden("only a security admin may revoke an access token with an API key: ask a security admin, or have the CI job revoke its own token with the token itself (trustgate revoke)")
		default:
			return Forbidden("auditors have read-only access and may not revoke access tokens")
		}
	case ActionTest:
		if role == api.RoleAuditor {
			return Forbidden("auditors have read-only access and may not test tokens: ask a devops or security admin")
		}
		return nil
	}
	return Forbidden(fmt.Sprintf("unknown action %q", action))
}

// CheckUpdate checks the rules of an update beyond the role: a connection may be renamed only
// while it is a draft. A rename later is a KindConflict (409): the new name is valid, the
// connection's state is what forbids it (tokens, audit and Terraform state refer to the name).
func CheckUpdate(c *Connection, newSpec api.ConnectionInput) error {
	if c == nil {
		return nil
	}
	if newSpec.Name != c.Spec.Name && c.Status != api.StatusDraft {
		return Conflict(fmt.Sprintf("connection %s is %s and can be renamed only while draft: keep the name %q, or create a new connection named %q", c.Spec.Name, c.Status, c.Spec.Name, newSpec.Name))
	}
	return nil
}

// CheckStatusChange checks a status change by principal (whose role Authorize has already
// checked) against the connection's state. In order: the target must be active or inactive (422
// on status); a given approved_fingerprint must equal currentFingerprint (409, both named); a
// change to the current status is a no-op (false, nil); draft→inactive is 409; activation by the
// creator or by the last configuration changer is 403 (four eyes). Deactivation is open to any
// security admin.
func CheckStatusChange(c *Connection, principal string, req api.StatusChange, currentFingerprint string) (bool, error) {
	if req.Status != api.StatusActive && req.Status != api.StatusInactive {
		detail := fmt.Sprintf("status must be %q or %q; got %q", api.StatusActive, api.StatusInactive, req.Status)
		if req.Status == api.StatusDraft {
			detail = "status must be \"active\" or \"inactive\": a connection never goes back to draft"
		}
		return false, ValidationDetail(detail, api.FieldError{Field: "status", Detail: detail})
	}
	if req.ApprovedFingerprint != "" && req.ApprovedFingerprint != currentFingerprint {
		return false, typed(api.ProblemFingerprintMismatch, Conflict(fmt.Sprintf("approved fingerprint %s does not match the current fingerprint %s of connection %s: its configuration changed since it was reviewed; review it again and approve the current fingerprint", req.ApprovedFingerprint, currentFingerprint, c.Spec.Name)))
	}
	if c.Status == req.Status {
		return false, nil
	}
	if c.Status == api.StatusDraft && req.Status == api.StatusInactive {
		return false, Conflict(fmt.Sprintf("connection %s is a draft that has never been active, so it cannot be deactivated: activate it or delete it", c.Spec.Name))
	}
	if req.Status == api.StatusActive {
		switch principal {
		case c.CreatedBy:
			return false, typed(api.ProblemFourEyes, Forbidden(fmt.Sprintf("four eyes: %s created connection %s, so another security admin must review and activate it", principal, c.Spec.Name)))
		case c.ConfigChangedBy:
			return false, typed(api.ProblemFourEyes, Forbidden(fmt.Sprintf("four eyes: %s last changed the configuration of connection %s, so another security admin must review and activate it", principal, c.Spec.Name)))
		}
	}
	return true, nil
}

// WithStatus returns c moved to status by principal at now (CheckStatusChange has passed): the
// revision goes up; an activation records who and when and marks the connection as ever
// activated; a deactivation records its time, which retires every token issued until then.
func WithStatus(c *Connection, principal, status string, now time.Time) Connection {
	next := *c
	next.Status = status
	next.Revision = c.Revision + 1
	next.UpdatedBy, next.UpdatedAt = principal, now
	switch status {
	case api.StatusActive:
		next.EverActivated = true
		next.ActivatedBy = principal
		next.ActivatedAt = &now
	case api.StatusInactive:
		next.DeactivatedAt = &now
	}
	return next
}

// AuditActorFilter says whose audit events a principal may read: a devops admin only their own
// actions (the principal's name is returned), security admins and auditors all ("" means no
// filter). An unknown role gets the narrowest view.
func AuditActorFilter(role, principal string) string {
	switch role {
	case api.RoleSecurityAdmin, api.RoleAuditor:
		return ""
	}
	return principal
}

// ownedBySecurity is the refusal of a devops admin's change to what is live on an activated
// connection, its status or its existence.
func ownedBySecurity(c *Connection) *Error {
	return typed(api.ProblemOwnedBySecurity, Forbidden(fmt.Sprintf("connection %s has been activated; a security admin owns it now: propose a change (PATCH stores it for a security admin's approval), or ask a security admin to deactivate or delete it", c.Spec.Name)))
}

// typed marks a refusal with the problem type clients switch on.
func typed(problemType string, e *Error) *Error {
	e.Type = problemType
	return e
}
