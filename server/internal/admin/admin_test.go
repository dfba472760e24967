package admin_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/admin"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/audit"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/broker"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/jwtverify"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store/storetest"
)

// The principals of these tests: two devops admins, two security admins (four eyes) and an auditor.
var (
	dana = admin.Actor{Name: "dana", Role: api.RoleDevOpsAdmin}
	dave = admin.Actor{Name: "dave", Role: api.RoleDevOpsAdmin}
	sam  = admin.Actor{Name: "sam", Role: api.RoleSecurityAdmin}
	sue  = admin.Actor{Name: "sue", Role: api.RoleSecurityAdmin}
	ada  = admin.Actor{Name: "ada", Role: api.RoleAuditor}
	meta = audit.Meta{RequestID: "req-1", RemoteAddr: "192.0.2.7"}
)

var clock = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// fixture is the admin service on a fresh real store, with a real audit writer and the real
// verifier behind the test endpoint, fed by a dev issuer's JWKS.
type fixture struct {
	svc     *admin.Service
	st      *store.Store
	races   *racingStore
	issuer  *devissuer.Issuer
	jwksURL string
	changes atomic.Int64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st := storetest.New(t)
	aw := audit.NewWriter(st, audit.Options{})
	t.Cleanup(aw.Close)
	iss, err := devissuer.New(devissuer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(iss.Handler())
	t.Cleanup(jwks.Close)
	f := &fixture{st: st, races: &racingStore{Storer: st}, issuer: iss, jwksURL: jwks.URL + "/.well-known/jwks.json"}
	verifier := jwtverify.NewVerifier(jwtverify.NewJWKSCache(jwtverify.JWKSOptions{AllowInsecure: true}), jwtverify.VerifierOptions{})
	f.svc = &admin.Service{
		Store:   f.races,
		Opts:    connection.Options{DefaultAudience: "https://trustgate.example", AllowInsecureJWKS: true},
		Audit:   aw,
		Changed: func() { f.changes.Add(1) },
		Broker:  &broker.Broker{Verifier: verifier},
		Now:     func() time.Time { return clock },
	}
	return f
}

// input is a valid github connection for the dev issuer's github-shaped tokens.
func (f *fixture) input(name string) api.ConnectionInput {
	return api.ConnectionInput{Name: name, ProviderType: api.ProviderGitHub, JWKSURL: f.jwksURL,
		GitHub: &api.GitHubSettings{OwnerID: "65", Owner: "octo-org", Repository: "octo-org/octo-repo", Audience: "https://github.com/octo-org"}}
}

func (f *fixture) create(t *testing.T, name string) *connection.Connection {
	t.Helper()
	c, err := f.svc.Create(context.Background(), dana, f.input(name), meta)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return c
}

func (f *fixture) fingerprint(c *connection.Connection) string {
	return connection.Resolve(c.Spec, f.svc.Opts).Fingerprint
}

// activate has a second security admin approve the connection's current fingerprint.
func (f *fixture) activate(t *testing.T, c *connection.Connection) *connection.Connection {
	t.Helper()
	got, err := f.svc.SetStatus(context.Background(), sam, c.Spec.Name, api.StatusChange{Status: api.StatusActive, ApprovedFingerprint: f.fingerprint(c)}, nil, meta)
	if err != nil {
		t.Fatalf("activate %s: %v", c.Spec.Name, err)
	}
	return got
}

// events reads the whole audit trail from the store, newest first.
func (f *fixture) events(t *testing.T) []api.AuditEvent {
	t.Helper()
	evs, _, err := f.st.ListAudit(context.Background(), connection.AuditFilter{Limit: store.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// last is the newest audit event.
func (f *fixture) last(t *testing.T) api.AuditEvent {
	t.Helper()
	evs := f.events(t)
	if len(evs) == 0 {
		t.Fatal("the audit trail is empty")
	}
	return evs[0]
}

// wantKind fails the test unless err is a domain refusal of kind, and returns it (as a value, so
// that callers who only assert the kind need not use it).
func wantKind(t *testing.T, err error, kind connection.Kind) connection.Error {
	t.Helper()
	var de *connection.Error
	if !errors.As(err, &de) || de.Kind != kind {
		t.Fatalf("error = %v (%T), want a %s refusal", err, err, kind)
	}
	return *de
}

func wantRefusalAudited(t *testing.T, ev api.AuditEvent, actor admin.Actor, action, connName string) {
	t.Helper()
	if ev.Outcome != api.OutcomeDenied || ev.Action != action || ev.Actor != actor.Name || ev.ConnectionName != connName ||
		ev.Reason == "" || ev.RequestID != meta.RequestID || ev.RemoteAddr != meta.RemoteAddr {
		t.Fatalf("audited refusal = %+v, want %s denied for %s on %q with a reason and the request's id and address", ev, action, actor.Name, connName)
	}
}

func TestCreateStoresADraftAndAuditsIt(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.create(t, "deploy")
	if c.Status != api.StatusDraft || c.Revision != 1 || c.CreatedBy != "dana" || c.ConfigChangedBy != "dana" || !c.CreatedAt.Equal(clock) {
		t.Fatalf("created = %+v, want a revision-1 draft by dana at the service's clock", c)
	}
	for _, ref := range []string{"deploy", c.ID} {
		got, err := f.svc.Get(ctx, ada, ref)
		if err != nil || got.ID != c.ID || got.Spec.Name != "deploy" {
			t.Fatalf("Get(%q) = %+v, %v; want the created connection", ref, got, err)
		}
	}
	ev := f.last(t)
	if ev.Action != api.ActionConnectionCreate || ev.Outcome != api.OutcomeSuccess || ev.Actor != "dana" || ev.ConnectionID != c.ID ||
		ev.RequestID != "req-1" || ev.RemoteAddr != "192.0.2.7" || ev.Detail["fingerprint"] != f.fingerprint(c) || ev.Detail["revision"] != float64(1) {
		t.Fatalf("create audited as %+v", ev)
	}
	if n := f.changes.Load(); n != 1 {
		t.Errorf("Changed was called %d times after one create, want 1", n)
	}
}

func TestCreateRefusalsAreAuditedAndNothingIsStored(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()

	_, err := f.svc.Create(ctx, sam, f.input("by-security"), meta)
	wantKind(t, err, connection.KindForbidden)
	wantRefusalAudited(t, f.last(t), sam, api.ActionConnectionCreate, "by-security")

	bad := f.input("bad")
	bad.GitHub.Repository = "not-a-repository"
	_, err = f.svc.Create(ctx, dana, bad, meta)
	de := wantKind(t, err, connection.KindValidation)
	ev := f.last(t)
	wantRefusalAudited(t, ev, dana, api.ActionConnectionCreate, "bad")
	errs, _ := ev.Detail["errors"].([]any)
	if len(de.Fields) == 0 || len(errs) != len(de.Fields) {
		t.Errorf("the audited refusal lists %d invalid fields, the error %d: %+v", len(errs), len(de.Fields), ev.Detail)
	}

	if conns, _, err := f.svc.List(ctx, ada, connection.Filter{}); err != nil || len(conns) != 0 {
		t.Fatalf("after refused creates the store holds %d connections (%v), want none", len(conns), err)
	}
	if n := f.changes.Load(); n != 0 {
		t.Errorf("Changed was called %d times for refusals", n)
	}
}

func TestUpdateMakesANewRevisionOnlyWhenSomethingChanged(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.create(t, "deploy")
	before := len(f.events(t))

	same, _, err := f.svc.Update(ctx, dave, "deploy", []byte(`{}`), nil, meta)
	if err != nil || same.Revision != 1 {
		t.Fatalf("empty patch: revision %d, %v; want revision 1 and no error", same.Revision, err)
	}
	if n := len(f.events(t)); n != before {
		t.Errorf("an update that changed nothing was audited (%d events, want %d)", n, before)
	}

	rev := c.Revision
	next, _, err := f.svc.Update(ctx, dave, c.ID, []byte(`{"github":{"repository":"octo-org/other"}}`), &rev, meta)
	if err != nil {
		t.Fatal(err)
	}
	if next.Revision != 2 || next.Spec.GitHub.Repository != "octo-org/other" || next.ConfigChangedBy != "dave" || next.CreatedBy != "dana" {
		t.Fatalf("updated = %+v, want revision 2 changed by dave, created by dana", next)
	}
	ev := f.last(t)
	if ev.Action != api.ActionConnectionUpdate || ev.Outcome != api.OutcomeSuccess || ev.Detail["previous_fingerprint"] != f.fingerprint(c) ||
		ev.Detail["fingerprint"] != f.fingerprint(next) || ev.Detail["revision"] != float64(2) {
		t.Fatalf("update audited as %+v", ev)
	}
	if stored, _ := f.svc.Get(ctx, ada, "deploy"); stored.Revision != 2 {
		t.Errorf("stored revision %d, want 2", stored.Revision)
	}
	if n := f.changes.Load(); n != 2 {
		t.Errorf("Changed was called %d times (create + one real update), want 2", n)
	}
}

func TestIfMatchThatIsNotTheCurrentRevisionIsRefusedAndAudited(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.create(t, "deploy")
	stale := c.Revision + 1

	_, _, err := f.svc.Update(ctx, dana, "deploy", []byte(`{"github":{"repository":"octo-org/other"}}`), &stale, meta)
	if !errors.Is(err, admin.ErrPrecondition) {
		t.Fatalf("update with a stale If-Match: %v, want ErrPrecondition", err)
	}
	wantRefusalAudited(t, f.last(t), dana, api.ActionConnectionUpdate, "deploy")

	err = f.svc.Delete(ctx, dana, "deploy", &stale, meta)
	wantKind(t, err, connection.KindPrecondition)
	wantRefusalAudited(t, f.last(t), dana, api.ActionConnectionDelete, "deploy")

	_, err = f.svc.SetStatus(ctx, sam, "deploy", api.StatusChange{Status: api.StatusActive}, &stale, meta)
	wantKind(t, err, connection.KindPrecondition)
	wantRefusalAudited(t, f.last(t), sam, api.ActionConnectionStatus, "deploy")

	if got, _ := f.svc.Get(ctx, ada, "deploy"); got.Revision != c.Revision || got.Status != api.StatusDraft {
		t.Errorf("a refused change changed the connection: %+v", got)
	}
}

func TestStatusFollowsFourEyesAndSplitDuty(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.create(t, "deploy")
	activate := api.StatusChange{Status: api.StatusActive, ApprovedFingerprint: f.fingerprint(c)}

	_, err := f.svc.SetStatus(ctx, dana, "deploy", activate, nil, meta)
	wantKind(t, err, connection.KindForbidden)
	wantRefusalAudited(t, f.last(t), dana, api.ActionConnectionStatus, "deploy")

	_, err = f.svc.SetStatus(ctx, sam, "deploy", api.StatusChange{Status: api.StatusActive, ApprovedFingerprint: "sha256:stale"}, nil, meta)
	if de := wantKind(t, err, connection.KindConflict); de.Type != api.ProblemFingerprintMismatch {
		t.Errorf("a stale approval is refused with type %q, want %q", de.Type, api.ProblemFingerprintMismatch)
	}

	active, err := f.svc.SetStatus(ctx, sam, "deploy", activate, nil, meta)
	if err != nil {
		t.Fatal(err)
	}
	if active.Status != api.StatusActive || !active.EverActivated || active.ActivatedBy != "sam" || active.Revision != 2 ||
		active.ActivatedAt == nil || !active.ActivatedAt.Equal(clock) {
		t.Fatalf("activated = %+v", active)
	}
	ev := f.last(t)
	if ev.Action != api.ActionConnectionStatus || ev.Outcome != api.OutcomeSuccess || ev.Detail["from"] != api.StatusDraft || ev.Detail["to"] != api.StatusActive {
		t.Fatalf("activation audited as %+v", ev)
	}

	// Activating again is a no-op: no new revision, nothing audited.
	n := len(f.events(t))
	again, err := f.svc.SetStatus(ctx, sue, "deploy", api.StatusChange{Status: api.StatusActive}, nil, meta)
	if err != nil || again.Revision != 2 || len(f.events(t)) != n {
		t.Fatalf("re-activation: revision %d, %v, %d new events; want a silent no-op", again.Revision, err, len(f.events(t))-n)
	}

	// Once activated, the devops admin has lost the connection to security: a change is only a
	// proposal (nothing live moves), and its status and existence are out of reach.
	proposed, isProposal, err := f.svc.Update(ctx, dana, "deploy", []byte(`{"github":{"repository":"octo-org/other"}}`), nil, meta)
	if err != nil || !isProposal || proposed.Proposal == nil || proposed.Proposal.ProposedBy != "dana" ||
		proposed.Spec.GitHub.Repository != active.Spec.GitHub.Repository || proposed.Revision != active.Revision+1 {
		t.Fatalf("devops change of an activated connection: %+v, proposal %v, %v; want a proposal and the live spec untouched", proposed, isProposal, err)
	}
	if ev := f.last(t); ev.Action != api.ActionConnectionPropose || ev.Actor != "dana" || ev.Outcome != api.OutcomeSuccess {
		t.Fatalf("proposal audited as %+v", ev)
	}
	_, err = f.svc.SetStatus(ctx, dana, "deploy", api.StatusChange{Status: api.StatusInactive}, nil, meta)
	wantKind(t, err, connection.KindForbidden)
	err = f.svc.Delete(ctx, dana, "deploy", nil, meta)
	if de := wantKind(t, err, connection.KindForbidden); de.Type != api.ProblemOwnedBySecurity {
		t.Errorf("devops delete of an activated connection refused with type %q, want %q", de.Type, api.ProblemOwnedBySecurity)
	}
}

func TestDeleteRemovesTheConnectionAndAuditsIt(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.activate(t, f.create(t, "deploy"))

	err := f.svc.Delete(ctx, sam, "deploy", nil, meta)
	wantKind(t, err, connection.KindConflict) // active: deactivate first
	wantRefusalAudited(t, f.last(t), sam, api.ActionConnectionDelete, "deploy")

	if _, err := f.svc.SetStatus(ctx, sam, "deploy", api.StatusChange{Status: api.StatusInactive}, nil, meta); err != nil {
		t.Fatal(err)
	}
	rev := c.Revision + 1
	if err := f.svc.Delete(ctx, sam, c.ID, &rev, meta); err != nil {
		t.Fatal(err)
	}
	ev := f.last(t)
	if ev.Action != api.ActionConnectionDelete || ev.Outcome != api.OutcomeSuccess || ev.ConnectionID != c.ID || ev.ConnectionName != "deploy" || ev.Detail["status"] != api.StatusInactive {
		t.Fatalf("delete audited as %+v", ev)
	}
	if _, err := f.svc.Get(ctx, ada, "deploy"); !errors.Is(err, admin.ErrNotFound) {
		t.Fatalf("Get after delete: %v, want ErrNotFound", err)
	}
}

func TestTestEvaluatesATokenInAnyStatusAndAuditsIt(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.create(t, "deploy") // a draft: the test endpoint does not care about status
	good, err := f.issuer.Mint("github", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := f.issuer.Mint("github", map[string]any{"repository": "evil-org/octo-repo"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		token string
		want  bool
	}{{good, true}, {other, false}} {
		res, err := f.svc.Test(ctx, dave, "deploy", tc.token, false, meta)
		if err != nil {
			t.Fatal(err)
		}
		if res.WouldIssue != tc.want || len(res.Checks) == 0 {
			t.Fatalf("would_issue = %v with %d checks, want %v", res.WouldIssue, len(res.Checks), tc.want)
		}
		ev := f.last(t)
		if ev.Action != api.ActionConnectionTest || ev.Outcome != api.OutcomeSuccess || ev.Actor != "dave" || ev.ConnectionID != c.ID || ev.Detail["would_issue"] != tc.want {
			t.Fatalf("test audited as %+v", ev)
		}
	}

	_, err = f.svc.Test(ctx, ada, "deploy", good, false, meta)
	wantKind(t, err, connection.KindForbidden)
	wantRefusalAudited(t, f.last(t), ada, api.ActionConnectionTest, "deploy")
}

func TestListAuditShowsADevopsAdminOnlyTheirOwnActions(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.create(t, "alpha") // by dana
	if _, err := f.svc.Create(ctx, dave, f.input("beta"), meta); err != nil {
		t.Fatal(err)
	}
	actors := func(a admin.Actor) map[string]int {
		evs, next, err := f.svc.ListAudit(ctx, a, connection.AuditFilter{})
		if err != nil || next != "" {
			t.Fatalf("ListAudit as %s: next %q, %v", a.Name, next, err)
		}
		seen := map[string]int{}
		for _, ev := range evs {
			seen[ev.Actor]++
		}
		return seen
	}
	if got := actors(dana); len(got) != 1 || got["dana"] != 1 {
		t.Errorf("dana sees the actions of %v, want only her own", got)
	}
	// The filter is the role's, not the caller's: a devops admin cannot ask for someone else's.
	if evs, _, _ := f.svc.ListAudit(ctx, dave, connection.AuditFilter{Actor: "dana"}); len(evs) != 1 || evs[0].Actor != "dave" {
		t.Errorf("dave asking for dana's actions got %+v, want only his own", evs)
	}
	for _, a := range []admin.Actor{sam, ada} {
		if got := actors(a); got["dana"] != 1 || got["dave"] != 1 {
			t.Errorf("%s sees the actions of %v, want everyone's", a.Name, got)
		}
	}
	if evs, _, err := f.svc.ListAudit(ctx, sam, connection.AuditFilter{}); err != nil || evs == nil {
		t.Errorf("ListAudit returned %v, %v; want a list, never nil", evs, err)
	}
}

func TestListPagesByName(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, name := range []string{"charlie", "alpha", "bravo"} {
		f.create(t, name)
	}
	page, next, err := f.svc.List(ctx, ada, connection.Filter{Limit: 2})
	if err != nil || len(page) != 2 || page[0].Spec.Name != "alpha" || page[1].Spec.Name != "bravo" || next == "" {
		t.Fatalf("first page = %d connections, next %q, %v; want alpha, bravo and a cursor", len(page), next, err)
	}
	page, next, err = f.svc.List(ctx, ada, connection.Filter{Limit: 2, Cursor: next})
	if err != nil || len(page) != 1 || page[0].Spec.Name != "charlie" || next != "" {
		t.Fatalf("second page = %d connections, next %q, %v; want charlie alone", len(page), next, err)
	}
}

// failingRecorder is an audit trail that cannot be written.
type failingRecorder struct{}

func (failingRecorder) Record(context.Context, api.AuditEvent) error {
	return errors.New("audit store unreachable")
}

// A refusal is not turned into a server error when the audit trail is down (the refusal already
// failed closed), but a test whose audit event cannot be recorded returns no result.
func TestAuditOutage(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.create(t, "deploy")
	f.svc.Audit = failingRecorder{}

	_, err := f.svc.Create(ctx, sam, f.input("x"), meta)
	wantKind(t, err, connection.KindForbidden)

	tok, err := f.issuer.Mint("github", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.svc.Test(ctx, dana, "deploy", tok, false, meta)
	if err == nil || res != nil || connection.KindOf(err) != 0 {
		t.Fatalf("Test with the audit trail down = %+v, %v; want no result and an internal error", res, err)
	}
}
