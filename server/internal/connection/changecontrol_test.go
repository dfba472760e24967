package connection

import (
	"strings"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

var ccNow = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

// activated returns an active connection with a normalised github configuration, created and
// configured by dev-alice, activated by sec-bob.
func activated(t *testing.T) *Connection {
	t.Helper()
	spec := normalized(t, api.ConnectionInput{Name: "deploy", Description: "d", GitHub: github("acme")})
	return &Connection{ID: "id-1", Spec: spec, Status: api.StatusActive, EverActivated: true, Revision: 3,
		CreatedBy: "dev-alice", ConfigChangedBy: "dev-alice", ActivatedBy: "sec-bob", CreatedAt: ccNow, UpdatedAt: ccNow}
}

func TestPlanPatchBeforeActivationChangesTheLiveConfiguration(t *testing.T) {
	c := activated(t)
	c.Status, c.EverActivated = api.StatusDraft, false
	plan, err := PlanPatch(c, []byte(`{"github":{"ref":"refs/heads/main"}}`), testOpts)
	if err != nil || plan.Kind != PatchLive || plan.Spec.GitHub.Ref != "refs/heads/main" || plan.Spec.GitHub.OwnerID != "65" {
		t.Fatalf("draft patch = %+v, %v; want PatchLive with ref set and owner_id kept", plan, err)
	}
	plan, err = PlanPatch(c, []byte(`{"description":"d"}`), testOpts)
	if err != nil || plan.Kind != PatchNoop {
		t.Fatalf("a patch that changes nothing = %+v, %v; want PatchNoop", plan, err)
	}
	plan, err = PlanPatch(c, []byte(`{"name":"deploy-2"}`), testOpts)
	if err != nil || plan.Kind != PatchLive || plan.Spec.Name != "deploy-2" {
		t.Fatalf("rename of a draft = %+v, %v", plan, err)
	}
}

func TestPlanPatchAfterActivationProposesAndNeverTouchesWhatIsLive(t *testing.T) {
	c := activated(t)
	live := cloneSpec(c.Spec)
	plan, err := PlanPatch(c, []byte(`{"github":{"ref":"refs/heads/main"}}`), testOpts)
	if err != nil || plan.Kind != PatchPropose || plan.Spec.GitHub.Ref != "refs/heads/main" {
		t.Fatalf("patch of an active connection = %+v, %v; want PatchPropose", plan, err)
	}
	if !SameConfig(c.Spec, live) {
		t.Fatal("PlanPatch changed the live configuration")
	}

	// With a proposal pending, the next patch applies on top of the proposal.
	c.Proposal = &Proposal{Spec: plan.Spec, ProposedBy: "dev-alice", ProposedAt: ccNow}
	plan, err = PlanPatch(c, []byte(`{"github":{"environment":"prod"}}`), testOpts)
	if err != nil || plan.Kind != PatchPropose || plan.Spec.GitHub.Ref != "refs/heads/main" || plan.Spec.GitHub.Environment != "prod" {
		t.Fatalf("patch on top of a proposal = %+v, %v; want both the ref and the environment", plan.Spec.GitHub, err)
	}

	// Proposing what is already pending changes nothing (and keeps its author).
	plan, err = PlanPatch(c, []byte(`{"github":{"ref":"refs/heads/main"}}`), testOpts)
	if err != nil || plan.Kind != PatchNoop {
		t.Fatalf("re-proposing the pending proposal = %+v, %v; want PatchNoop", plan, err)
	}

	// A patch whose result is the live configuration discards the proposal.
	plan, err = PlanPatch(c, []byte(`{"github":{"ref":null}}`), testOpts)
	if err != nil || plan.Kind != PatchDiscard || !SameConfig(plan.Spec, live) {
		t.Fatalf("patch back to the live configuration = %+v, %v; want PatchDiscard", plan, err)
	}

	// Description-only patches are proposals too.
	c.Proposal = nil
	plan, err = PlanPatch(c, []byte(`{"description":"new words"}`), testOpts)
	if err != nil || plan.Kind != PatchPropose || plan.Spec.Description != "new words" {
		t.Fatalf("description-only patch of an active connection = %+v, %v; want PatchPropose", plan, err)
	}
}

func TestPlanPatchRefusesBadInputAndRenamesAfterDraft(t *testing.T) {
	c := activated(t)
	if _, err := PlanPatch(c, []byte(`{"token_ttl":{"amount":0,"unit":"hours"}}`), testOpts); KindOf(err) != KindValidation {
		t.Fatalf("invalid proposal: %v, want a validation error", err)
	}
	if _, err := PlanPatch(c, []byte(`{"name":"other"}`), testOpts); KindOf(err) != KindConflict {
		t.Fatalf("rename of an active connection: %v, want a conflict", err)
	}
	c.Status = api.StatusInactive
	if _, err := PlanPatch(c, []byte(`{"name":"other"}`), testOpts); KindOf(err) != KindConflict {
		t.Fatalf("rename of an inactive connection: %v, want a conflict", err)
	}
}

func TestCheckApprove(t *testing.T) {
	c := activated(t)
	if err := CheckApprove(c, "sec-carol", "sha256:x", testOpts); KindOf(err) != KindNotFound {
		t.Fatalf("approve without a proposal: %v, want not found", err)
	}
	plan, err := PlanPatch(c, []byte(`{"github":{"ref":"refs/heads/main"}}`), testOpts)
	if err != nil {
		t.Fatal(err)
	}
	c.Proposal = &Proposal{Spec: plan.Spec, ProposedBy: "sec-bob", ProposedAt: ccNow}
	fp := Resolve(plan.Spec, testOpts).Fingerprint
	live := Resolve(c.Spec, testOpts).Fingerprint

	tests := []struct {
		name, principal, fp string
		want                Kind
		problemType         string
	}{
		{"no fingerprint", "sec-carol", "", KindValidation, ""},
		{"the live fingerprint, not the proposal's", "sec-carol", live, KindConflict, api.ProblemFingerprintMismatch},
		{"a stale fingerprint", "sec-carol", "sha256:" + strings.Repeat("0", 64), KindConflict, api.ProblemFingerprintMismatch},
		{"the proposal's author", "sec-bob", fp, KindForbidden, api.ProblemFourEyes},
		{"another security admin", "sec-carol", fp, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckApprove(c, tt.principal, tt.fp, testOpts)
			if KindOf(err) != tt.want {
				t.Fatalf("CheckApprove = %v, want kind %v", err, tt.want)
			}
			if e, ok := err.(*Error); ok && e.Type != tt.problemType {
				t.Fatalf("problem type %q, want %q", e.Type, tt.problemType)
			}
		})
	}
}

func TestApproveMakesTheProposalLiveAndCreditsItsAuthor(t *testing.T) {
	c := activated(t)
	plan, _ := PlanPatch(c, []byte(`{"github":{"ref":"refs/heads/main"}}`), testOpts)
	c.Proposal = &Proposal{Spec: plan.Spec, ProposedBy: "dev-dan", ProposedAt: ccNow}
	later := ccNow.Add(time.Hour)
	next := Approve(c, "sec-carol", later, testOpts)
	if !SameConfig(next.Spec, plan.Spec) || next.Proposal != nil || next.Status != api.StatusActive || next.Revision != c.Revision+1 {
		t.Fatalf("approved = %+v", next)
	}
	if next.ConfigChangedBy != "dev-dan" || next.UpdatedBy != "sec-carol" || !next.UpdatedAt.Equal(later) {
		t.Fatalf("config_changed_by %q updated_by %q, want the author and the approver", next.ConfigChangedBy, next.UpdatedBy)
	}
	if c.Proposal == nil || c.Spec.GitHub.Ref != "" {
		t.Fatal("Approve changed its input")
	}

	// A description-only proposal changes no field the fingerprint covers: config_changed_by stays.
	c.Proposal = nil
	plan, _ = PlanPatch(c, []byte(`{"description":"words"}`), testOpts)
	c.Proposal = &Proposal{Spec: plan.Spec, ProposedBy: "dev-dan", ProposedAt: ccNow}
	next = Approve(c, "sec-carol", later, testOpts)
	if next.Spec.Description != "words" || next.ConfigChangedBy != "dev-alice" {
		t.Fatalf("description-only approval: description %q config_changed_by %q, want dev-alice kept", next.Spec.Description, next.ConfigChangedBy)
	}
}

func TestCheckDiscard(t *testing.T) {
	c := activated(t)
	if err := CheckDiscard(c, api.RoleSecurityAdmin, "sec-carol"); KindOf(err) != KindNotFound {
		t.Fatalf("discard without a proposal: %v", err)
	}
	c.Proposal = &Proposal{Spec: c.Spec, ProposedBy: "dev-dan"}
	for _, tt := range []struct {
		role, principal string
		want            Kind
	}{
		{api.RoleDevOpsAdmin, "dev-dan", 0},
		{api.RoleDevOpsAdmin, "dev-erin", KindForbidden},
		{api.RoleSecurityAdmin, "sec-carol", 0},
	} {
		if err := CheckDiscard(c, tt.role, tt.principal); KindOf(err) != tt.want {
			t.Errorf("%s %s: %v, want kind %v", tt.role, tt.principal, err, tt.want)
		}
	}
}

func TestConfigChangedIgnoresDescriptionAndName(t *testing.T) {
	c := activated(t)
	desc, name, ref := cloneSpec(c.Spec), cloneSpec(c.Spec), cloneSpec(c.Spec)
	desc.Description = "other words"
	name.Name = "renamed"
	ref.GitHub.Ref = "refs/heads/main"
	if ConfigChanged(c.Spec, desc, testOpts) || ConfigChanged(c.Spec, name, testOpts) {
		t.Fatal("a description or a name change counted as a configuration change (four eyes would follow the wrong person)")
	}
	if !ConfigChanged(c.Spec, ref, testOpts) {
		t.Fatal("a ref change did not count as a configuration change")
	}
}

func TestDeactivationRetiresEveryTokenIssuedUntilThen(t *testing.T) {
	c := activated(t)
	if c.RetiredToken(ccNow.Add(-time.Hour)) {
		t.Fatal("a connection never deactivated retired a token")
	}
	off := ccNow.Add(500 * time.Millisecond)
	in := WithStatus(c, "sec-bob", api.StatusInactive, off)
	if in.DeactivatedAt == nil || !in.DeactivatedAt.Equal(off) || in.Revision != c.Revision+1 {
		t.Fatalf("deactivated = %+v", in)
	}
	back := WithStatus(&in, "sec-carol", api.StatusActive, off.Add(time.Minute))
	for _, tt := range []struct {
		iat     time.Time
		retired bool
	}{
		{ccNow.Add(-time.Hour), true},
		{ccNow, true},                      // same second as the deactivation: fail closed
		{off.Add(time.Second), false},      // issued after
		{off.Add(time.Minute), false},      // after the reactivation
		{off.Add(-time.Millisecond), true}, // just before
		{off.Truncate(time.Second), true},  // iat has whole seconds
		{off.Add(2 * time.Second), false},
	} {
		if got := back.RetiredToken(tt.iat); got != tt.retired {
			t.Errorf("iat %s: retired = %v, want %v (reactivation must not bring old tokens back)", tt.iat.Format(time.RFC3339Nano), got, tt.retired)
		}
	}
	if back.ActivatedBy != "sec-carol" || !back.EverActivated || back.DeactivatedAt == nil {
		t.Fatalf("reactivated = %+v", back)
	}
}
