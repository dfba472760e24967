package connection

import (
	"fmt"
	"reflect"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// PatchKind is what a PATCH does to a connection (CONTRACT.md §1, change control).
type PatchKind int

const (
	// PatchNoop: the result equals what is already there (the live configuration, or the pending
	// proposal): nothing changes, no revision, no audit event.
	PatchNoop PatchKind = iota
	// PatchLive: a connection that was never activated takes the new configuration at once.
	PatchLive
	// PatchPropose: an activated connection stores the result as its proposal; nothing live changes.
	PatchPropose
	// PatchDiscard: on an activated connection the result equals the live configuration, so the
	// pending proposal is discarded.
	PatchDiscard
)

// PatchPlan is the decision of PlanPatch: what to do and the normalised configuration it is about.
type PatchPlan struct {
	Kind PatchKind
	Spec api.ConnectionInput
}

// PlanPatch decides what a JSON merge patch does to c. Before the first activation the patch
// applies to the live configuration. Afterwards it applies to the pending proposal if there is
// one, else to the live configuration, and the result becomes the proposal: nobody, security
// admins included, changes what is live alone. The result is validated like a create, and a rename
// outside draft is refused (CheckUpdate). The role has been checked (Authorize with PatchAction).
func PlanPatch(c *Connection, patch []byte, opts Options) (PatchPlan, error) {
	base := c.Spec
	if c.EverActivated && c.Proposal != nil {
		base = c.Proposal.Spec
	}
	merged, err := ApplyMergePatch(base, patch)
	if err != nil {
		return PatchPlan{}, err
	}
	spec, err := Normalize(merged, opts)
	if err != nil {
		return PatchPlan{}, err
	}
	if err := CheckUpdate(c, spec); err != nil {
		return PatchPlan{}, err
	}
	switch {
	case !c.EverActivated && SameConfig(spec, c.Spec):
		return PatchPlan{Kind: PatchNoop, Spec: c.Spec}, nil
	case !c.EverActivated:
		return PatchPlan{Kind: PatchLive, Spec: spec}, nil
	case SameConfig(spec, c.Spec) && c.Proposal != nil:
		return PatchPlan{Kind: PatchDiscard, Spec: c.Spec}, nil
	case SameConfig(spec, c.Spec):
		return PatchPlan{Kind: PatchNoop, Spec: c.Spec}, nil
	case c.Proposal != nil && SameConfig(spec, c.Proposal.Spec):
		// Proposing again what is already pending changes nothing, and keeps its author: the
		// platform workspace re-applying the same configuration does not churn revisions.
		return PatchPlan{Kind: PatchNoop, Spec: c.Proposal.Spec}, nil
	}
	return PatchPlan{Kind: PatchPropose, Spec: spec}, nil
}

// SameConfig reports whether two normalised configurations are equal in every field, description
// and name included (a description-only change is a change, though not of the fingerprint).
func SameConfig(a, b api.ConnectionInput) bool { return reflect.DeepEqual(a, b) }

// ConfigChanged reports whether going from one configuration to another changes a field the
// fingerprint covers, and so moves config_changed_by (a description-only edit or a rename does not).
func ConfigChanged(from, to api.ConnectionInput, opts Options) bool {
	return Resolve(from, opts).Fingerprint != Resolve(to, opts).Fingerprint
}

// CheckApprove checks an approval of c's proposal by principal (a security admin: Authorize with
// ActionApprove has run), in order: there is a proposal (404), approved_fingerprint is given (422)
// and names exactly the proposal (409, so an approval racing a new proposal either applies what
// was reviewed or nothing), and principal did not write it (403, four eyes).
func CheckApprove(c *Connection, principal, approvedFingerprint string, opts Options) error {
	if c.Proposal == nil {
		return NotFound(fmt.Sprintf("connection %s has no pending proposal to approve: it may have been approved or discarded already; read the connection again", c.Spec.Name))
	}
	if approvedFingerprint == "" {
		d := "approved_fingerprint is required: copy the proposal's fingerprint from the connection (proposal.fingerprint) after reviewing it"
		return ValidationDetail(d, api.FieldError{Field: "approved_fingerprint", Detail: "is required"})
	}
	if fp := Resolve(c.Proposal.Spec, opts).Fingerprint; approvedFingerprint != fp {
		return typed(api.ProblemFingerprintMismatch, Conflict(fmt.Sprintf("approved fingerprint %s does not match the pending proposal's fingerprint %s on connection %s: the proposal changed since it was reviewed; review it again and approve its current fingerprint", approvedFingerprint, fp, c.Spec.Name)))
	}
	if principal == c.Proposal.ProposedBy {
		return typed(api.ProblemFourEyes, Forbidden(fmt.Sprintf("four eyes: %s proposed this change to connection %s, so another security admin must review and approve it", principal, c.Spec.Name)))
	}
	return nil
}

// Approve returns c with its proposal made live by principal at now: the configuration becomes
// the proposal's, config_changed_by its author (when the fingerprint moves), the status stays,
// and the revision goes up by one. CheckApprove must have passed.
func Approve(c *Connection, principal string, now time.Time, opts Options) Connection {
	next := *c
	next.Spec = c.Proposal.Spec
	if ConfigChanged(c.Spec, next.Spec, opts) {
		next.ConfigChangedBy = c.Proposal.ProposedBy
	}
	next.Proposal = nil
	next.Revision = c.Revision + 1
	next.UpdatedBy, next.UpdatedAt = principal, now
	return next
}

// CheckDiscard checks that principal (role already authorised for ActionDiscard) may discard c's
// proposal: there is one (404), and a devops admin discards only their own (403).
func CheckDiscard(c *Connection, role, principal string) error {
	if c.Proposal == nil {
		return NotFound(fmt.Sprintf("connection %s has no pending proposal", c.Spec.Name))
	}
	if role == api.RoleDevOpsAdmin && principal != c.Proposal.ProposedBy {
		return Forbidden(fmt.Sprintf("%s proposed this change to connection %s; a devops admin may discard only their own proposals: ask %s or a security admin", c.Proposal.ProposedBy, c.Spec.Name, c.Proposal.ProposedBy))
	}
	return nil
}
