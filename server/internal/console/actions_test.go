package console_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
)

const jwksURL = "http://127.0.0.1:1/jwks.json" // never fetched: nothing is exchanged here

// status reads a connection's status through the API.
func status(t *testing.T, s *testkit.Server, name string) *api.Connection {
	t.Helper()
	c, err := s.Auditor.GetConnection(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestActionsNeedTheSessionsCSRFToken(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	s.CreateDraft(t, testkit.GitHubInput("deploy", jwksURL))
	sec := newClient(t, s)
	sec.signIn(s.SecurityKey)
	other := newClient(t, s)
	other.signIn(s.NewKey(t, "security-2", api.RoleSecurityAdmin))

	form := sec.confirmForm("/ui/connections/deploy/activate")
	refused := func(why string, f url.Values, header ...string) {
		t.Helper()
		p := sec.post("/ui/connections/deploy/activate", f, header...)
		if p.Status != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", why, p.Status)
		}
		if got := status(t, s, "deploy").Status; got != api.StatusDraft {
			t.Fatalf("%s: the connection became %s", why, got)
		}
	}
	without := url.Values{"revision": form["revision"], "fingerprint": form["fingerprint"]}
	refused("no CSRF token", without)
	foreign := url.Values{"csrf": {formValue(t, other.get("/ui/"), "csrf")}, "revision": form["revision"], "fingerprint": form["fingerprint"]}
	refused("another session's CSRF token", foreign)
	refused("a cross-site form", form, "Sec-Fetch-Site", "cross-site")

	if p := sec.post("/ui/sign-out", url.Values{}); p.Status != http.StatusForbidden {
		t.Errorf("sign-out without the CSRF token answered %d, want 403", p.Status)
	}
	// Login CSRF: a sign-in form posted from elsewhere carries no nonce cookie and no token.
	if p := newClient(t, s).post("/ui/sign-in", url.Values{"key": {s.SecurityKey}}); p.Status != http.StatusForbidden {
		t.Errorf("a sign-in without the form's token answered %d, want 403", p.Status)
	}

	if p := sec.post("/ui/connections/deploy/activate", form, "Sec-Fetch-Site", "same-origin"); p.Status != http.StatusSeeOther {
		t.Fatalf("the real form answered %d: %s", p.Status, problemOf(p))
	}
	if got := status(t, s, "deploy").Status; got != api.StatusActive {
		t.Errorf("after the confirmed activation the connection is %s", got)
	}
}

// actionLinks are the action buttons a connection page offers.
func actionLinks(p page) []string {
	var out []string
	for _, a := range []string{"activate", "deactivate", "approve", "discard"} {
		if strings.Contains(p.Body, `/`+a+`">`) {
			out = append(out, a)
		}
	}
	return out
}

func TestDevOpsAdminsAndAuditorsAreOfferedNothingAndForgedFormsAreRefused(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	s.CreateDraft(t, testkit.GitHubInput("draft", jwksURL))
	live := s.CreateActive(t, testkit.GitHubInput("live", jwksURL))
	// A devops admin proposes a change to the active connection.
	if _, err := s.DevOps.PatchConnection(t.Context(), "live", map[string]any{"description": "proposed"}, live.Revision); err != nil {
		t.Fatal(err)
	}
	live = status(t, s, "live")
	if live.Proposal == nil {
		t.Fatal("no proposal stored")
	}

	devops, auditor, security := newClient(t, s), newClient(t, s), newClient(t, s)
	devops.signIn(s.DevOpsKey)
	auditor.signIn(s.AuditorKey)
	security.signIn(s.SecurityKey)

	for _, tc := range []struct {
		who  string
		c    *client
		path string
		want string
	}{
		{"security admin", security, "/ui/connections/draft", "activate"},
		{"security admin", security, "/ui/connections/live", "deactivate approve discard"},
		{"devops admin", devops, "/ui/connections/draft", ""},
		{"devops admin", devops, "/ui/connections/live", "discard"}, // their own proposal
		{"auditor", auditor, "/ui/connections/draft", ""},
		{"auditor", auditor, "/ui/connections/live", ""},
	} {
		p := tc.c.get(tc.path)
		if got := strings.Join(actionLinks(p), " "); p.Status != http.StatusOK || got != tc.want {
			t.Errorf("%s on %s: offered %q (status %d), want %q", tc.who, tc.path, got, p.Status, tc.want)
		}
	}
	if p := auditor.get("/ui/connections/draft/activate"); p.Status != http.StatusForbidden || !strings.Contains(problemOf(p), "read-only") {
		t.Errorf("an auditor's confirmation page answered %d %q, want 403 saying why", p.Status, problemOf(p))
	}
	if p := security.get("/ui/connections/draft/deactivate"); p.Status != http.StatusConflict {
		t.Errorf("deactivating a draft: the confirmation page answered %d, want 409", p.Status)
	}

	// Forged forms: a devops admin or an auditor posts what the page never offered them, with a
	// valid session and CSRF token. The use case refuses (and audits) it, in the API's words.
	draft := status(t, s, "draft")
	forms := map[string]url.Values{
		"draft": {"revision": {itoa(draft.Revision)}, "fingerprint": {draft.Fingerprint}},
		"live":  {"revision": {itoa(live.Revision)}, "fingerprint": {live.Fingerprint}},
		"prop":  {"revision": {itoa(live.Revision)}, "fingerprint": {live.Proposal.Fingerprint}},
	}
	for _, tc := range []struct {
		who, conn, action, form, reason string
		c                               *client
	}{
		{"devops admin", "draft", "activate", "draft", "only a security admin may activate", devops},
		{"devops admin", "live", "deactivate", "live", "only a security admin may activate or deactivate", devops},
		{"devops admin", "live", "approve", "prop", "only a security admin may approve", devops},
		{"auditor", "draft", "activate", "draft", "auditors have read-only access", auditor},
		{"auditor", "live", "approve", "prop", "auditors have read-only access", auditor},
		{"auditor", "live", "discard", "prop", "auditors have read-only access", auditor},
	} {
		f := url.Values{"csrf": {formValue(t, tc.c.get("/ui/"), "csrf")}}
		for k, v := range forms[tc.form] {
			f[k] = v
		}
		p := tc.c.post("/ui/connections/"+tc.conn+"/"+tc.action, f)
		if p.Status != http.StatusForbidden || !strings.Contains(problemOf(p), tc.reason) {
			t.Errorf("%s forging %s on %s: %d %q, want 403 saying %q", tc.who, tc.action, tc.conn, p.Status, problemOf(p), tc.reason)
		}
	}
	if got := status(t, s, "draft"); got.Status != api.StatusDraft {
		t.Errorf("draft is %s after forged forms", got.Status)
	}
	if got := status(t, s, "live"); got.Status != api.StatusActive || got.Proposal == nil || got.Revision != live.Revision {
		t.Errorf("live changed after forged forms: %s, revision %d, proposal %v", got.Status, got.Revision, got.Proposal != nil)
	}
	// The refusals were the use case's: each is in the audit trail as denied, by its author.
	denied := map[string]int{}
	for _, ev := range testkit.AuditEvents(t, s.Security, apiclient.AuditOptions{}) {
		if ev.Outcome == api.OutcomeDenied {
			denied[ev.Actor+" "+ev.Action]++
		}
	}
	for k, want := range map[string]int{
		"devops connection.status": 2, "devops connection.approve": 1,
		"auditor connection.status": 1, "auditor connection.approve": 1, "auditor connection.discard": 1,
	} {
		if denied[k] != want {
			t.Errorf("%d denied %q events in the audit trail, want %d (all: %v)", denied[k], k, want, denied)
		}
	}
}

func TestApprovalFollowsFourEyesPinningAndIfMatch(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	live := s.CreateActive(t, testkit.GitHubInput("live", jwksURL))
	// The security admin proposes a change: they may not approve it themselves.
	if _, err := s.Security.PatchConnection(t.Context(), "live", map[string]any{"github": map[string]any{"environment": "prod"}}, live.Revision); err != nil {
		t.Fatal(err)
	}
	author := newClient(t, s)
	author.signIn(s.SecurityKey)
	form := author.confirmForm("/ui/connections/live/approve")
	p := author.post("/ui/connections/live/approve", form)
	if p.Status != http.StatusForbidden || !strings.Contains(problemOf(p), "four eyes") {
		t.Fatalf("the author approving: %d %q, want 403 four eyes", p.Status, problemOf(p))
	}
	if !strings.Contains(p.Body, `name="fingerprint" value="`+form.Get("fingerprint")) {
		t.Errorf("the refusal does not show the confirmation (with the proposal's fingerprint) again")
	}

	reviewer := newClient(t, s)
	reviewer.signIn(s.NewKey(t, "security-2", api.RoleSecurityAdmin))
	form = reviewer.confirmForm("/ui/connections/live/approve")

	stale := url.Values{"csrf": form["csrf"], "revision": {"1"}, "fingerprint": form["fingerprint"]}
	if p := reviewer.post("/ui/connections/live/approve", stale); p.Status != http.StatusPreconditionFailed ||
		!strings.Contains(problemOf(p), "has changed since you read it") {
		t.Errorf("a stale revision: %d %q, want 412", p.Status, problemOf(p))
	}
	wrong := url.Values{"csrf": form["csrf"], "revision": form["revision"], "fingerprint": {"sha256:" + strings.Repeat("0", 64)}}
	if p := reviewer.post("/ui/connections/live/approve", wrong); p.Status != http.StatusConflict ||
		!strings.Contains(problemOf(p), "does not match the pending proposal's fingerprint") {
		t.Errorf("another fingerprint: %d %q, want 409", p.Status, problemOf(p))
	}
	if p := reviewer.post("/ui/connections/live/approve", url.Values{"csrf": form["csrf"], "revision": form["revision"]}); p.Status != http.StatusUnprocessableEntity {
		t.Errorf("no fingerprint: %d, want 422 (the console always pins)", p.Status)
	}

	p = reviewer.post("/ui/connections/live/approve", form)
	if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/ui/connections/live?done=approve" {
		t.Fatalf("the second security admin approving: %d to %q: %s", p.Status, p.Header.Get("Location"), problemOf(p))
	}
	got := status(t, s, "live")
	if got.Proposal != nil || got.Fingerprint != form.Get("fingerprint") || got.GitHub.Environment != "prod" {
		t.Errorf("after approval: proposal %v, fingerprint %s, environment %q", got.Proposal != nil, got.Fingerprint, got.GitHub.Environment)
	}
	if page := reviewer.get(p.Header.Get("Location")); !strings.Contains(page.Body, "The proposal is approved") {
		t.Errorf("the connection page does not confirm the approval")
	}
	evs := testkit.AuditEvents(t, s.Security, apiclient.AuditOptions{Connection: "live", Action: api.ActionConnectionApprove})
	if len(evs) == 0 || evs[0].Outcome != api.OutcomeSuccess || evs[0].Actor != "security-2" ||
		evs[0].RequestID == "" || evs[0].RemoteAddr != "127.0.0.1" {
		t.Errorf("no successful connection.approve event by security-2 with the request's id and address in the audit trail: %+v", evs)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
