package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
)

func TestFourEyes_SecurityAdminWhoLastChangedConfigCannotActivate(t *testing.T) {
	e := start(t)
	second := e.Client(t, e.NewKey(t, "security-2", api.RoleSecurityAdmin))
	c := e.create(t, githubInput("four-eyes"))
	c, err := e.Security.PatchConnection(ctx, c.ID, map[string]any{"github": map[string]any{"ref": "refs/heads/main"}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if c.UpdatedBy != "security" {
		t.Fatalf("updated_by %q, want security", c.UpdatedBy)
	}

	_, err = e.Security.SetStatus(ctx, c.ID, api.StatusChange{Status: api.StatusActive}, 0)
	p := apiProblem(t, err, http.StatusForbidden)
	if !strings.Contains(p.Detail, "four eyes") {
		t.Errorf("403 detail %q does not name the four-eyes rule", p.Detail)
	}
	if p.Type != api.ProblemFourEyes {
		t.Errorf("four-eyes refusal has problem type %q, want %q", p.Type, api.ProblemFourEyes)
	}
	e.wantUnchanged(t, c)

	c, err = second.SetStatus(ctx, c.ID, api.StatusChange{Status: api.StatusActive, ApprovedFingerprint: c.Fingerprint}, 0)
	if err != nil {
		t.Fatalf("another security admin activates: %v", err)
	}
	if c.Status != api.StatusActive || c.ActivatedBy != "security-2" || c.ActivatedAt == nil {
		t.Errorf("after activation: status %s, activated_by %q, activated_at %v", c.Status, c.ActivatedBy, c.ActivatedAt)
	}

	// Deactivation is a safety action: the one who changed the configuration may do it.
	if c, err = e.Security.SetStatus(ctx, c.ID, api.StatusChange{Status: api.StatusInactive}, 0); err != nil {
		t.Fatalf("deactivation by the last config changer: %v", err)
	}
	// Once activated, security-2's change is a proposal that security approves: security-2 wrote
	// the rules now live, so security-2 may not reactivate them, while security may.
	p2, err := second.PatchConnection(ctx, c.ID, map[string]any{"github": map[string]any{"ref": "refs/heads/release"}}, 0)
	if err != nil || p2.Proposal == nil {
		t.Fatalf("security-2's change: %+v, %v; want a proposal", p2, err)
	}
	if c, err = e.Security.ApproveProposal(ctx, c.ID, p2.Proposal.Fingerprint, 0); err != nil || c.ConfigChangedBy != "security-2" || c.Status != api.StatusInactive {
		t.Fatalf("approval: %+v, %v; want config_changed_by security-2 and still inactive", c, err)
	}
	if _, err := second.SetStatus(ctx, c.ID, api.StatusChange{Status: api.StatusActive}, 0); apiStatus(err) != http.StatusForbidden {
		t.Errorf("security-2 reactivating its own change: %v, want 403", err)
	}
	if c, err = e.Security.SetStatus(ctx, c.ID, api.StatusChange{Status: api.StatusActive}, 0); err != nil {
		t.Errorf("security reactivating security-2's change: %v", err)
	}
	if c.Status != api.StatusActive || c.ActivatedBy != "security" {
		t.Errorf("after reactivation: status %s, activated_by %q", c.Status, c.ActivatedBy)
	}
}

func TestApprovedFingerprintMismatchIs409AndChangesNothing(t *testing.T) {
	e := start(t)
	c := e.create(t, githubInput("approve-what-you-saw"))
	before := e.auditOf(t, c.ID)

	r := e.Do(t, testkit.Request{Method: http.MethodPut, Path: "/v1/workload-connections/" + c.ID + "/status", Key: e.SecurityKey,
		Body: api.StatusChange{Status: api.StatusActive, ApprovedFingerprint: "sha256:" + strings.Repeat("0", 64)}})
	p := r.Problem(t, http.StatusConflict)
	if !strings.Contains(p.Detail, c.Fingerprint) {
		t.Errorf("409 detail %q does not name the current fingerprint", p.Detail)
	}
	if p.Type != api.ProblemFingerprintMismatch {
		t.Errorf("fingerprint refusal has problem type %q, want %q", p.Type, api.ProblemFingerprintMismatch)
	}
	e.wantUnchanged(t, c)
	after := e.auditOf(t, c.ID)
	if len(after) != len(before)+1 {
		t.Fatalf("audit events %d → %d, want exactly one more (the denied attempt)", len(before), len(after))
	}
	ev := after[0]
	if ev.Action != api.ActionConnectionStatus || ev.Outcome != api.OutcomeDenied || ev.Actor != "security" ||
		ev.RequestID != r.Header.Get("X-Request-Id") || ev.ConnectionID != c.ID {
		t.Errorf("denied event %+v", ev)
	}

	// The same mismatch on deactivation of an active connection.
	c, err := e.Security.SetStatus(ctx, c.ID, api.StatusChange{Status: api.StatusActive, ApprovedFingerprint: c.Fingerprint}, 0)
	if err != nil {
		t.Fatalf("activating with the right fingerprint: %v", err)
	}
	if _, err := e.Security.SetStatus(ctx, c.ID, api.StatusChange{Status: api.StatusInactive, ApprovedFingerprint: "sha256:00"}, 0); apiStatus(err) != http.StatusConflict {
		t.Errorf("deactivation with a stale fingerprint: %v, want 409", err)
	}
	e.wantUnchanged(t, c)
}

func TestIfMatchMismatchIs412AndChangesNothing(t *testing.T) {
	e := start(t)
	draft := e.create(t, githubInput("if-match"))
	draft, err := e.DevOps.PatchConnection(ctx, draft.ID, map[string]any{"description": "rev 2"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	path := "/v1/workload-connections/" + draft.ID
	for _, tc := range []struct {
		name, method, path, key string
		body                    any
		ct                      string
	}{
		{"patch", http.MethodPatch, path, e.DevOpsKey, map[string]any{"description": "stale"}, "application/merge-patch+json"},
		{"delete", http.MethodDelete, path, e.DevOpsKey, nil, ""},
		{"status", http.MethodPut, path + "/status", e.SecurityKey, api.StatusChange{Status: api.StatusActive}, ""},
	} {
		for _, im := range []string{`"1"`, `"3"`, `1`, `"abc"`, `W/"99"`} {
			t.Run(tc.name+"_with_If-Match_"+im, func(t *testing.T) {
				before := e.auditOf(t, draft.ID)
				r := e.Do(t, testkit.Request{Method: tc.method, Path: tc.path, Key: tc.key, Body: tc.body, ContentType: tc.ct,
					Header: http.Header{"If-Match": {im}}})
				r.Problem(t, http.StatusPreconditionFailed)
				e.wantUnchanged(t, draft)
				after := e.auditOf(t, draft.ID)
				for _, ev := range after[:len(after)-len(before)] {
					if ev.Outcome == api.OutcomeSuccess {
						t.Errorf("a refused precondition left a success event: %+v", ev)
					}
				}
			})
		}
	}

	// The current revision, quoted as in the ETag, matches; so does "*".
	c, err := e.DevOps.PatchConnection(ctx, draft.ID, map[string]any{"description": "rev 3"}, draft.Revision)
	if err != nil || c.Revision != 3 {
		t.Fatalf("patch with the current If-Match: %v (rev %d)", err, c.Revision)
	}
	r := e.Do(t, testkit.Request{Method: http.MethodPatch, Path: path, Key: e.DevOpsKey, ContentType: "application/merge-patch+json",
		Body: map[string]any{"description": "rev 4"}, Header: http.Header{"If-Match": {"*"}}})
	r.WantStatus(t, http.StatusOK)
	c, err = e.Security.SetStatus(ctx, draft.ID, api.StatusChange{Status: api.StatusActive}, 4)
	if err != nil || c.Revision != 5 {
		t.Fatalf("status with the current If-Match: %v", err)
	}
	c, err = e.Security.SetStatus(ctx, draft.ID, api.StatusChange{Status: api.StatusInactive}, 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Security.DeleteConnection(ctx, draft.ID, c.Revision); err != nil {
		t.Fatalf("delete with the current If-Match: %v", err)
	}
}

func TestETagIsTheRevisionAndRevisionCountsEveryChange(t *testing.T) {
	e := start(t)
	wantETag := func(t *testing.T, r testkit.Response, rev int64) api.Connection {
		t.Helper()
		var c api.Connection
		r.Decode(t, &c)
		if c.Revision != rev {
			t.Errorf("revision %d, want %d", c.Revision, rev)
		}
		if got := r.Header.Get("ETag"); got != etag(c.Revision) {
			t.Errorf("ETag %q, want %q (the revision)", got, etag(c.Revision))
		}
		return c
	}
	r := e.Do(t, testkit.Request{Method: http.MethodPost, Path: "/v1/workload-connections", Key: e.DevOpsKey, Body: githubInput("etag")})
	c := wantETag(t, r.WantStatus(t, 201), 1)
	path := "/v1/workload-connections/" + c.ID
	patch := func(key string, body any) testkit.Response {
		return e.Do(t, testkit.Request{Method: http.MethodPatch, Path: path, Key: key, ContentType: "application/merge-patch+json", Body: body})
	}

	wantETag(t, e.Do(t, testkit.Request{Method: http.MethodGet, Path: path, Key: e.AuditorKey}).WantStatus(t, 200), 1)
	wantETag(t, e.Do(t, testkit.Request{Method: http.MethodGet, Path: "/v1/workload-connections/etag", Key: e.AuditorKey}).WantStatus(t, 200), 1)
	wantETag(t, patch(e.DevOpsKey, map[string]any{"description": "two"}).WantStatus(t, 200), 2)
	// No-op patches: the same value, an empty patch, and the JSON type of the default spelled out.
	wantETag(t, patch(e.DevOpsKey, map[string]any{"description": "two"}).WantStatus(t, 200), 2)
	wantETag(t, patch(e.DevOpsKey, map[string]any{}).WantStatus(t, 200), 2)
	wantETag(t, patch(e.DevOpsKey, map[string]any{"token_ttl": map[string]any{"amount": 1, "unit": "hours"}, "identity_claim": "sub"}).WantStatus(t, 200), 2)
	for _, ev := range e.auditOf(t, c.ID) {
		if ev.Action == api.ActionConnectionUpdate && ev.Detail["revision"] != float64(2) {
			t.Errorf("a no-op patch was audited as an update: %+v", ev)
		}
	}
	wantETag(t, patch(e.DevOpsKey, map[string]any{"token_ttl": map[string]any{"amount": 30, "unit": "minutes"}}).WantStatus(t, 200), 3)
	wantETag(t, patch(e.DevOpsKey, map[string]any{"conditions": []api.Condition{eq("ref", "refs/heads/main")}}).WantStatus(t, 200), 4)
	act := e.Do(t, testkit.Request{Method: http.MethodPut, Path: path + "/status", Key: e.SecurityKey, Body: api.StatusChange{Status: api.StatusActive}})
	wantETag(t, act.WantStatus(t, 200), 5)
	// Setting the current status again changes nothing.
	again := e.Do(t, testkit.Request{Method: http.MethodPut, Path: path + "/status", Key: e.SecurityKey, Body: api.StatusChange{Status: api.StatusActive}})
	wantETag(t, again.WantStatus(t, 200), 5)
	// After activation a change is a proposal (202): a new revision, nothing live moves.
	wantETag(t, patch(e.SecurityKey, map[string]any{"description": "security edit"}).WantStatus(t, 202), 6)
	off := e.Do(t, testkit.Request{Method: http.MethodPut, Path: path + "/status", Key: e.SecurityKey, Body: api.StatusChange{Status: api.StatusInactive}})
	got := wantETag(t, off.WantStatus(t, 200), 7)
	if got.TokenTTL != (api.TokenTTL{Amount: 30, Unit: api.UnitMinutes}) {
		t.Errorf("token_ttl %+v, want stored as given: 30 minutes", got.TokenTTL)
	}

	// Revisions in the audit trail: one success event per change, revisions 1..7.
	var revs []float64
	for _, ev := range e.auditOf(t, c.ID) {
		if ev.Outcome == api.OutcomeSuccess {
			revs = append(revs, ev.Detail["revision"].(float64))
		}
	}
	if len(revs) != 7 || revs[0] != 7 || revs[6] != 1 {
		t.Errorf("success events carry revisions %v, want 7..1", revs)
	}
}

func TestRenameOnlyWhileDraft(t *testing.T) {
	e := start(t)
	c := e.create(t, githubInput("old-name"))
	c, err := e.DevOps.PatchConnection(ctx, c.ID, map[string]any{"name": "new-name"}, 0)
	if err != nil {
		t.Fatalf("renaming a draft: %v", err)
	}
	if c.Name != "new-name" || c.Revision != 2 {
		t.Errorf("after rename: %s rev %d", c.Name, c.Revision)
	}
	if _, err := e.Auditor.GetConnection(ctx, "old-name"); apiStatus(err) != http.StatusNotFound {
		t.Errorf("old name still resolves: %v", err)
	}
	if got := e.get(t, "new-name"); got.ID != c.ID {
		t.Errorf("new name resolves to %s", got.ID)
	}

	for _, status := range []string{api.StatusActive, api.StatusInactive} {
		c := e.inStatus(t, "fixed-"+status, status)
		_, err := e.Security.PatchConnection(ctx, c.ID, map[string]any{"name": "renamed-" + status}, 0)
		p := apiProblem(t, err, http.StatusConflict)
		if !strings.Contains(p.Detail, "only while draft") {
			t.Errorf("%s rename: detail %q does not say renames are only for drafts", status, p.Detail)
		}
		e.wantUnchanged(t, c)
		if _, err := e.Auditor.GetConnection(ctx, "renamed-"+status); apiStatus(err) != http.StatusNotFound {
			t.Errorf("refused rename created the new name: %v", err)
		}
	}
}

func TestDuplicateNamesAre409(t *testing.T) {
	e := start(t)
	first := e.create(t, githubInput("taken"))
	r := e.Do(t, testkit.Request{Method: http.MethodPost, Path: "/v1/workload-connections", Key: e.DevOpsKey, Body: genericInput("taken")})
	p := r.Problem(t, http.StatusConflict)
	wantFields(t, p, "name")
	e.wantUnchanged(t, first)
	all, err := e.Auditor.ListAllConnections(ctx, apiclient.ListOptions{NamePrefix: "taken"})
	if err != nil || len(all) != 1 {
		t.Errorf("connections named taken: %d (%v)", len(all), err)
	}

	// Renaming a draft onto a taken name is refused the same way.
	other := e.create(t, githubInput("other"))
	_, err = e.DevOps.PatchConnection(ctx, other.ID, map[string]any{"name": "taken"}, 0)
	p = apiProblem(t, err, http.StatusConflict)
	wantFields(t, p, "name")
	e.wantUnchanged(t, other)

	// A deleted connection's name is free again.
	if err := e.DevOps.DeleteConnection(ctx, first.ID, 0); err != nil {
		t.Fatal(err)
	}
	e.create(t, genericInput("taken"))
}
