package admin_test

import (
	"context"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/admin"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
)

// propose stores a proposal by a on the activated connection "deploy" and returns the connection.
func (f *fixture) propose(t *testing.T, a admin.Actor, patch string) *connection.Connection {
	t.Helper()
	c, proposed, err := f.svc.Update(context.Background(), a, "deploy", []byte(patch), nil, meta)
	if err != nil || !proposed || c.Proposal == nil {
		t.Fatalf("propose %s: %+v, proposed %v, %v", patch, c, proposed, err)
	}
	return c
}

func TestAProposalChangesNothingLiveUntilASecondSecurityAdminApprovesIt(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	live := f.activate(t, f.create(t, "deploy"))
	liveFP := f.fingerprint(live)

	// A security admin's own change is a proposal too: nobody changes what is live alone.
	c := f.propose(t, sam, `{"github":{"ref":"refs/heads/main"}}`)
	if c.Spec.GitHub.Ref != "" || f.fingerprint(c) != liveFP || c.Proposal.ProposedBy != "sam" || c.Status != api.StatusActive {
		t.Fatalf("after the proposal: live ref %q, fingerprint moved %v, proposed by %q, status %s",
			c.Spec.GitHub.Ref, f.fingerprint(c) != liveFP, c.Proposal.ProposedBy, c.Status)
	}
	stored, err := f.svc.Get(ctx, ada, "deploy")
	if err != nil || stored.Proposal == nil || stored.Spec.GitHub.Ref != "" {
		t.Fatalf("stored: %+v, %v", stored, err)
	}
	proposalFP := connection.Resolve(c.Proposal.Spec, f.svc.Opts).Fingerprint

	// Four eyes: the author may not approve, and an approval names the proposal exactly.
	_, err = f.svc.ApproveProposal(ctx, sam, "deploy", api.ProposalApproval{ApprovedFingerprint: proposalFP}, nil, meta)
	if de := wantKind(t, err, connection.KindForbidden); de.Type != api.ProblemFourEyes {
		t.Fatalf("self-approval refused with type %q, want four-eyes", de.Type)
	}
	wantRefusalAudited(t, f.last(t), sam, api.ActionConnectionApprove, "deploy")
	_, err = f.svc.ApproveProposal(ctx, sue, "deploy", api.ProposalApproval{ApprovedFingerprint: liveFP}, nil, meta)
	if de := wantKind(t, err, connection.KindConflict); de.Type != api.ProblemFingerprintMismatch {
		t.Fatalf("approval of the live fingerprint refused with type %q, want fingerprint-mismatch", de.Type)
	}
	_, err = f.svc.ApproveProposal(ctx, dana, "deploy", api.ProposalApproval{ApprovedFingerprint: proposalFP}, nil, meta)
	wantKind(t, err, connection.KindForbidden)
	if got, _ := f.svc.Get(ctx, ada, "deploy"); got.Revision != c.Revision || got.Spec.GitHub.Ref != "" {
		t.Fatalf("a refused approval changed the connection: %+v", got)
	}

	approved, err := f.svc.ApproveProposal(ctx, sue, "deploy", api.ProposalApproval{ApprovedFingerprint: proposalFP}, nil, meta)
	if err != nil {
		t.Fatal(err)
	}
	if approved.Spec.GitHub.Ref != "refs/heads/main" || approved.Proposal != nil || approved.Status != api.StatusActive ||
		approved.ConfigChangedBy != "sam" || approved.UpdatedBy != "sue" || approved.Revision != c.Revision+1 || !approved.UpdatedAt.Equal(clock) {
		t.Fatalf("approved = %+v", approved)
	}
	ev := f.last(t)
	if ev.Action != api.ActionConnectionApprove || ev.Actor != "sue" || ev.Detail["fingerprint"] != proposalFP ||
		ev.Detail["previous_fingerprint"] != liveFP || ev.Detail["proposed_by"] != "sam" {
		t.Fatalf("approval audited as %+v", ev)
	}
	// Nothing is left to approve.
	_, err = f.svc.ApproveProposal(ctx, sue, "deploy", api.ProposalApproval{ApprovedFingerprint: proposalFP}, nil, meta)
	wantKind(t, err, connection.KindNotFound)
}

func TestDiscardingAProposal(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.activate(t, f.create(t, "deploy"))
	c := f.propose(t, dana, `{"description":"only words"}`) // description-only changes are proposals too

	err := f.svc.DiscardProposal(ctx, dave, "deploy", nil, meta)
	wantKind(t, err, connection.KindForbidden) // a devops admin discards only their own
	err = f.svc.DiscardProposal(ctx, ada, "deploy", nil, meta)
	wantKind(t, err, connection.KindForbidden)
	stale := c.Revision - 1
	err = f.svc.DiscardProposal(ctx, dana, "deploy", &stale, meta)
	wantKind(t, err, connection.KindPrecondition)

	if err := f.svc.DiscardProposal(ctx, dana, "deploy", &c.Revision, meta); err != nil {
		t.Fatal(err)
	}
	got, _ := f.svc.Get(ctx, ada, "deploy")
	if got.Proposal != nil || got.Spec.Description == "only words" || got.Revision != c.Revision+1 {
		t.Fatalf("after discard: %+v", got)
	}
	if ev := f.last(t); ev.Action != api.ActionConnectionDiscard || ev.Actor != "dana" || ev.Detail["proposed_by"] != "dana" {
		t.Fatalf("discard audited as %+v", ev)
	}
	wantKind(t, f.svc.DiscardProposal(ctx, sam, "deploy", nil, meta), connection.KindNotFound)

	// A security admin discards anyone's; a patch back to the live configuration discards too.
	f.propose(t, dana, `{"github":{"ref":"refs/heads/main"}}`)
	back, proposed, err := f.svc.Update(ctx, dave, "deploy", []byte(`{"github":{"ref":null}}`), nil, meta)
	if err != nil || proposed || back.Proposal != nil {
		t.Fatalf("patch back to live: %+v, proposed %v, %v; want the proposal discarded", back, proposed, err)
	}
	if ev := f.last(t); ev.Action != api.ActionConnectionDiscard || ev.Actor != "dave" {
		t.Fatalf("discard by patch audited as %+v", ev)
	}
	f.propose(t, dana, `{"github":{"ref":"refs/heads/main"}}`)
	if err := f.svc.DiscardProposal(ctx, sue, "deploy", nil, meta); err != nil {
		t.Fatal(err)
	}
}

// TestFourEyesFollowsTheAuthorOfTheRulesNotTheLastEditor reproduces finding 1 of the trust-model
// review: a security admin loosens a draft, someone else edits only its description, and she tries
// to activate her own rules.
func TestFourEyesFollowsTheAuthorOfTheRulesNotTheLastEditor(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.create(t, "deploy")
	loosened, _, err := f.svc.Update(ctx, sam, "deploy", []byte(`{"github":{"repository":null}}`), nil, meta)
	if err != nil || loosened.ConfigChangedBy != "sam" {
		t.Fatalf("loosen: config_changed_by %q, %v", loosened.ConfigChangedBy, err)
	}
	edited, _, err := f.svc.Update(ctx, dave, "deploy", []byte(`{"description":"harmless words"}`), nil, meta)
	if err != nil || edited.ConfigChangedBy != "sam" || edited.UpdatedBy != "dave" {
		t.Fatalf("description edit: config_changed_by %q updated_by %q, %v; want sam kept", edited.ConfigChangedBy, edited.UpdatedBy, err)
	}
	_, err = f.svc.SetStatus(ctx, sam, "deploy", api.StatusChange{Status: api.StatusActive, ApprovedFingerprint: f.fingerprint(edited)}, nil, meta)
	if de := wantKind(t, err, connection.KindForbidden); de.Type != api.ProblemFourEyes {
		t.Fatalf("activation of one's own rules refused with %q, want four-eyes", de.Type)
	}
	if _, err := f.svc.SetStatus(ctx, sue, "deploy", api.StatusChange{Status: api.StatusActive, ApprovedFingerprint: f.fingerprint(edited)}, nil, meta); err != nil {
		t.Fatalf("another security admin: %v", err)
	}
}

// TestAnApprovalRacingANewProposalAppliesWhatWasReviewedOrNothing: a new proposal lands between
// the approval's read and its write; the approval must not make the new one live.
func TestAnApprovalRacingANewProposalAppliesWhatWasReviewedOrNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.activate(t, f.create(t, "deploy"))
	c := f.propose(t, dana, `{"github":{"ref":"refs/heads/main"}}`)
	reviewed := connection.Resolve(c.Proposal.Spec, f.svc.Opts).Fingerprint

	f.races.before = func() {
		if _, _, err := f.svc.Update(ctx, dave, "deploy", []byte(`{"github":{"ref":"refs/heads/evil"}}`), nil, meta); err != nil {
			t.Errorf("the competing proposal: %v", err)
		}
	}
	_, err := f.svc.ApproveProposal(ctx, sam, "deploy", api.ProposalApproval{ApprovedFingerprint: reviewed}, nil, meta)
	wantKind(t, err, connection.KindConflict)
	got, _ := f.svc.Get(ctx, ada, "deploy")
	if got.Spec.GitHub.Ref != "" || got.Proposal == nil || got.Proposal.Spec.GitHub.Ref != "refs/heads/evil" {
		t.Fatalf("after the race: live ref %q, proposal %+v; want nothing live and the new proposal pending", got.Spec.GitHub.Ref, got.Proposal)
	}
	// Approving again with the reviewed fingerprint is refused: it is not what is pending now.
	_, err = f.svc.ApproveProposal(ctx, sam, "deploy", api.ProposalApproval{ApprovedFingerprint: reviewed}, nil, meta)
	if de := wantKind(t, err, connection.KindConflict); de.Type != api.ProblemFingerprintMismatch {
		t.Fatalf("stale approval refused with %q", de.Type)
	}
}

func TestTestingAProposal(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.activate(t, f.create(t, "deploy"))
	tok, err := f.issuer.Mint("github", map[string]any{"ref": "refs/heads/feature"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Test(ctx, dave, "deploy", tok, true, meta)
	wantKind(t, err, connection.KindNotFound) // no proposal yet

	f.propose(t, dana, `{"github":{"ref":"refs/heads/main"}}`)
	live, err := f.svc.Test(ctx, dave, "deploy", tok, false, meta)
	if err != nil || !live.WouldIssue {
		t.Fatalf("live test: %+v, %v; want the token to pass the live rules", live, err)
	}
	prop, err := f.svc.Test(ctx, dave, "deploy", tok, true, meta)
	if err != nil || prop.WouldIssue {
		t.Fatalf("proposal test: %+v, %v; want the token refused by the proposed ref rule", prop, err)
	}
	if ev := f.last(t); ev.Detail["config"] != "proposal" {
		t.Fatalf("proposal test audited as %+v", ev)
	}
}

func TestDeactivationRecordsTheTimeThatRetiresTokens(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.activate(t, f.create(t, "deploy"))
	off, err := f.svc.SetStatus(ctx, sue, "deploy", api.StatusChange{Status: api.StatusInactive}, nil, meta)
	if err != nil || off.DeactivatedAt == nil || !off.DeactivatedAt.Equal(clock) {
		t.Fatalf("deactivated: %+v, %v", off, err)
	}
	stored, _ := f.svc.Get(ctx, ada, "deploy")
	if stored.DeactivatedAt == nil || !stored.RetiredToken(clock.Add(-time.Minute)) || stored.RetiredToken(clock.Add(time.Minute)) {
		t.Fatalf("stored deactivated_at %v", stored.DeactivatedAt)
	}
}
