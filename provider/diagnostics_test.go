package provider

import (
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
)

func problem(status int, detail string, fields ...api.FieldError) error {
	return &apiclient.Error{StatusCode: status, Problem: api.Problem{Status: status, Detail: detail, Errors: fields}}
}

// typedProblem is a refusal the server marks with one of the api.Problem* types.
func typedProblem(status int, problemType, detail string) error {
	return &apiclient.Error{StatusCode: status, Problem: api.Problem{Type: problemType, Status: status, Detail: detail}}
}

func TestWriteErrorExplainsEachRefusal(t *testing.T) {
	draft := &connectionModel{Name: types.StringValue("c"), Status: types.StringValue("draft"), ActivatedAt: types.StringNull()}
	active := &connectionModel{Name: types.StringValue("c"), Status: types.StringValue("active"), ActivatedAt: types.StringValue("2026-11-28T10:00:00Z")}
	tests := []struct {
		name        string
		err         error
		state       *connectionModel
		wantSummary string
		wantDetail  string
	}{
		{"403 after activation", typedProblem(403, api.ProblemOwnedBySecurity, "connection c has been activated; a security admin owns it now"), active,
			ownershipSummary, "only through proposals"},
		{"403 on a draft is the key's role", problem(403, "auditors have read-only access"), draft,
			"Trustgate refused to update", "role does not allow"},
		{"401", problem(401, "invalid API key"), draft, "Trustgate rejected the API key", "trustgate keys list"},
		{"412", problem(412, "revision mismatch"), draft, "changed on the server", "plan` again"},
		{"network", errors.New("dial tcp: connection refused"), draft, "Cannot update", "reachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var diags diag.Diagnostics
			(&workloadConnectionResource{}).writeError(&diags, "update workload connection \"c\"", tt.err, tt.state)
			if len(diags) != 1 {
				t.Fatalf("diagnostics = %v", diags)
			}
			if !strings.Contains(diags[0].Summary(), tt.wantSummary) || !strings.Contains(diags[0].Detail(), tt.wantDetail) {
				t.Errorf("got %q / %q, want %q / …%q…", diags[0].Summary(), diags[0].Detail(), tt.wantSummary, tt.wantDetail)
			}
		})
	}
}

func TestValidationErrorsLandOnTheirAttributes(t *testing.T) {
	var diags diag.Diagnostics
	err := problem(422, "the workload connection is invalid; see errors for each field",
		api.FieldError{Field: "github.owner", Detail: "is required"},
		api.FieldError{Field: "conditions[1].value", Detail: "is required for operator equals"},
		api.FieldError{Field: "provider_type", Detail: "unknown"})
	if !addValidationErrors(&diags, err) {
		t.Fatal("a 422 with field errors was not recognised")
	}
	want := []path.Path{path.Root("github").AtName("owner"), path.Root("condition").AtListIndex(1).AtName("value"), path.Empty()}
	if len(diags) != len(want) {
		t.Fatalf("diagnostics = %v", diags)
	}
	for i, d := range diags {
		got := path.Empty()
		if wp, ok := d.(diag.DiagnosticWithPath); ok {
			got = wp.Path()
		}
		if !got.Equal(want[i]) {
			t.Errorf("diagnostic %d on %s, want %s", i, got, want[i])
		}
	}
	if addValidationErrors(&diags, problem(409, "conflict")) {
		t.Error("a 409 was taken for a validation error")
	}
}

func TestActivationErrorNamesFourEyesAndTheFingerprint(t *testing.T) {
	conn := &api.Connection{Name: "c", Fingerprint: "sha256:new"}
	var diags diag.Diagnostics
	activationError(&diags, "activate workload connection \"c\"", conn, "sha256:old", typedProblem(409, api.ProblemFingerprintMismatch, "approved fingerprint does not match"))
	if len(diags) != 1 || !strings.Contains(diags[0].Summary(), "not the one that was approved") || !strings.Contains(diags[0].Detail(), "sha256:new") {
		t.Errorf("fingerprint refusal: %v", diags)
	}
	diags = nil
	activationError(&diags, "activate workload connection \"c\"", conn, "", typedProblem(403, api.ProblemFourEyes, "four eyes: security created connection c"))
	if len(diags) != 1 || !strings.Contains(diags[0].Detail(), "another security admin") {
		t.Errorf("four-eyes refusal: %v", diags)
	}
	diags = nil
	activationError(&diags, "activate workload connection \"c\"", conn, "sha256:new", problem(409, "draft cannot be deactivated"))
	if len(diags) != 1 || strings.Contains(diags[0].Summary(), "approved") {
		t.Errorf("a 409 unrelated to the fingerprint was blamed on it: %v", diags)
	}
}

func TestApprovalErrorNamesTheAuthorAndBothFingerprints(t *testing.T) {
	conn := &api.Connection{Name: "c", Fingerprint: "sha256:live",
		Proposal: &api.Proposal{Fingerprint: "sha256:pending", ProposedBy: "alice"}}
	var diags diag.Diagnostics
	approvalError(&diags, conn, "sha256:reviewed", typedProblem(409, api.ProblemFingerprintMismatch, "approved fingerprint does not match"))
	if len(diags) != 1 || !strings.Contains(diags[0].Summary(), "not the one that was approved") {
		t.Fatalf("stale approval: %v", diags)
	}
	for _, want := range []string{"sha256:reviewed", "sha256:pending", "sha256:live", "alice", "nothing was changed"} {
		if !strings.Contains(diags[0].Detail(), want) {
			t.Errorf("stale approval detail does not say %q: %s", want, diags[0].Detail())
		}
	}
	if wp, ok := diags[0].(diag.DiagnosticWithPath); !ok || !wp.Path().Equal(path.Root("approved_fingerprint")) {
		t.Errorf("stale approval not on approved_fingerprint: %v", diags[0])
	}
	diags = nil
	approvalError(&diags, conn, "sha256:pending", typedProblem(403, api.ProblemFourEyes, "four eyes: alice proposed this change"))
	if len(diags) != 1 || !strings.Contains(diags[0].Summary(), "four eyes") ||
		!strings.Contains(diags[0].Detail(), "alice wrote the change") || !strings.Contains(diags[0].Detail(), "another security admin") {
		t.Errorf("four-eyes refusal: %v", diags)
	}
	diags = nil
	approvalError(&diags, conn, "sha256:pending", problem(404, "no pending proposal"))
	if len(diags) != 1 || strings.Contains(diags[0].Summary(), "four eyes") || strings.Contains(diags[0].Summary(), "approved") {
		t.Errorf("a 404 was blamed on four eyes or the fingerprint: %v", diags)
	}
}

func TestChangeControlOutcomeSaysWhatTheApplyDid(t *testing.T) {
	proposal := &api.Proposal{Fingerprint: "sha256:pending", ProposedBy: "devops"}
	tests := []struct {
		name       string
		conn       *api.Connection
		wasPending bool
		want       []string // summary, then detail fragments; nil: no diagnostic
	}{
		{"a draft changes in place", &api.Connection{Name: "c", Status: api.StatusDraft}, false, nil},
		{"a proposal is stored", &api.Connection{Name: "c", Status: api.StatusActive, Fingerprint: "sha256:live", Proposal: proposal}, false,
			[]string{"Change stored as a proposal: sha256:pending", "sha256:live", `approved_fingerprint = "sha256:pending"`, "other than its author (devops)"}},
		{"a proposal on an inactive connection", &api.Connection{Name: "c", Status: api.StatusInactive, Fingerprint: "sha256:live", Proposal: proposal}, true,
			[]string{"Change stored as a proposal"}},
		{"back to the live configuration", &api.Connection{Name: "c", Status: api.StatusActive, Fingerprint: "sha256:live"}, true,
			[]string{"Pending proposal discarded", "sha256:live"}},
		{"nothing was pending and nothing is", &api.Connection{Name: "c", Status: api.StatusActive}, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var diags diag.Diagnostics
			addChangeControlOutcome(&diags, tt.conn, tt.wasPending)
			if tt.want == nil {
				if len(diags) != 0 {
					t.Fatalf("want no diagnostic, got %v", diags)
				}
				return
			}
			if len(diags) != 1 || diags.HasError() || !strings.Contains(diags[0].Summary(), tt.want[0]) {
				t.Fatalf("want one warning %q, got %v", tt.want[0], diags)
			}
			for _, w := range tt.want[1:] {
				if !strings.Contains(diags[0].Detail(), w) {
					t.Errorf("detail does not say %q: %s", w, diags[0].Detail())
				}
			}
		})
	}
}

// approved_fingerprint approves a proposal only when it names the pending one and not the live
// configuration: deactivating or activating again with the live fingerprint approves nothing.
func TestApprovesProposalOnlyWhenApprovedNamesThePendingProposal(t *testing.T) {
	for _, tt := range []struct {
		name     string
		approved types.String
		live     string
		proposal string
		want     bool
	}{
		{"the pending proposal", types.StringValue("sha256:p"), "sha256:l", "sha256:p", true},
		{"the live fingerprint", types.StringValue("sha256:l"), "sha256:l", "sha256:p", false},
		{"nothing pending", types.StringValue("sha256:p"), "sha256:l", "", false},
		{"a description-only proposal", types.StringValue("sha256:l"), "sha256:l", "sha256:l", false},
		{"no approved_fingerprint", types.StringNull(), "sha256:l", "sha256:p", false},
		{"not known yet", types.StringUnknown(), "sha256:l", "sha256:p", false},
		{"a stale one", types.StringValue("sha256:old"), "sha256:l", "sha256:p", false},
	} {
		if got := approvesProposal(tt.approved, tt.live, tt.proposal); got != tt.want {
			t.Errorf("%s: approvesProposal = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestReviewWarningsSayWhatWaitsForTheSecurityTeam(t *testing.T) {
	state := func(approved, live, proposal string) activationModel {
		return activationModel{ConnectionName: types.StringValue("c"), Status: types.StringValue(api.StatusActive),
			ApprovedFingerprint: types.StringValue(approved), Fingerprint: types.StringValue(live),
			ProposalFingerprint: types.StringValue(proposal)}
	}
	author := proposalAuthorFrom(proposalPrivateValue(&api.Proposal{ProposedBy: "devops"}))
	tests := []struct {
		name           string
		planned, prior activationModel
		want           []string // summary: detail fragment
	}{
		{"nothing pending, live approved", state("sha256:l", "sha256:l", ""), state("sha256:l", "sha256:l", ""), nil},
		{"a proposal waits", state("sha256:l", "sha256:l", "sha256:p"), state("sha256:l", "sha256:l", "sha256:p"),
			[]string{"A proposed change waits for review", `devops (at 0001-01-01T00:00:00Z) proposed`, `approved_fingerprint = "sha256:p"`}},
		{"a description-only proposal", state("sha256:l", "sha256:l", "sha256:l"), state("sha256:l", "sha256:l", "sha256:l"),
			[]string{"A proposed change waits for review", "approve it through the API"}},
		{"approved elsewhere", state("sha256:old", "sha256:l", ""), state("sha256:old", "sha256:l", ""),
			[]string{"The active connection is no longer the approved one", "sha256:old"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var diags diag.Diagnostics
			addReviewWarnings(&diags, tt.planned, tt.prior, author)
			if tt.want == nil {
				if len(diags) != 0 {
					t.Fatalf("want no warning, got %v", diags)
				}
				return
			}
			if len(diags) != 1 || diags.HasError() || diags[0].Summary() != tt.want[0] {
				t.Fatalf("want the warning %q, got %v", tt.want[0], diags)
			}
			for _, w := range tt.want[1:] {
				if !strings.Contains(diags[0].Detail(), w) {
					t.Errorf("detail does not say %q: %s", w, diags[0].Detail())
				}
			}
		})
	}
}
