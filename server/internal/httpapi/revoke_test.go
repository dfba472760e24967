package httpapi_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/signing"
)

// accessToken signs an access token for c with the server's own key ring, issued at iat for ttl.
func (e *env) accessToken(t testing.TB, c *api.Connection, sub string, iat time.Time, ttl time.Duration) string {
	t.Helper()
	tok, err := e.App.Keys.Mint(signing.AccessClaims{Subject: sub, IssuedAt: iat, NotBefore: iat, Expiry: iat.Add(ttl),
		Connection: c.Name, ConnectionID: c.ID, SourceIssuer: "https://issuer.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func revokeForm(token string) string { return url.Values{"token": {token}}.Encode() }

const formType = "application/x-www-form-urlencoded"

// TestRevokeEndpoint is CONTRACT.md §3's POST /v1/revoke as status codes: a token revokes itself,
// a security admin revokes any; 200 whatever the token was; 401 for a missing or invalid
// credential, 403 for the other roles or another token; 400 for a request without a token.
func TestRevokeEndpoint(t *testing.T) {
	e := start(t)
	conn := e.inStatus(t, "revoked-here", api.StatusActive)
	now := time.Now()
	fresh := func(sub string) string { return e.accessToken(t, conn, sub, now, time.Hour) }
	expired := e.accessToken(t, conn, "workload:old", now.Add(-2*time.Hour), time.Hour)
	victim, other, selfRevoked, bySecurity := fresh("workload:victim"), fresh("workload:other"), fresh("workload:self"), fresh("workload:sec")

	version := func() int64 {
		v, err := e.App.Store.RevocationsVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	whoamiStatus := func(tok string) int {
		_, err := e.Client(t, tok).Whoami(ctx)
		return apiStatus(err)
	}
	before := version()

	refusals := []struct {
		name        string
		credential  string
		body        string
		contentType string
		want        int
	}{
		{"no credential", "", revokeForm(victim), formType, 401},
		{"a credential that is no token", "not-a-token", revokeForm(victim), formType, 401},
		{"an expired token revoking itself", expired, revokeForm(expired), formType, 401},
		{"an unknown API key", "tg_unknown_0000000000000000000000000000000000000000", revokeForm(victim), formType, 401},
		{"a devops admin", e.DevOpsKey, revokeForm(victim), formType, 403},
		{"an auditor", e.AuditorKey, revokeForm(victim), formType, 403},
		{"a token revoking another", other, revokeForm(victim), formType, 403},
		{"no token", e.SecurityKey, "token_type_hint=access_token", formType, 400},
		{"a repeated token", e.SecurityKey, revokeForm(victim) + "&token=x", formType, 400},
		{"an unknown JSON field", e.SecurityKey, `{"token":"` + victim + `","tokn":"x"}`, "application/json", 400},
		{"neither form nor JSON", e.SecurityKey, victim, "text/plain", 400},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			e.Do(t, testkit.Request{Method: http.MethodPost, Path: "/v1/revoke", Key: tc.credential, Body: tc.body, ContentType: tc.contentType}).Problem(t, tc.want)
		})
	}
	if v := version(); v != before {
		t.Fatalf("refused revocations moved the revocation counter from %d to %d", before, v)
	}
	if s := whoamiStatus(victim); s != 0 {
		t.Fatalf("after refused revocations the victim's whoami answers %d, want 200", s)
	}

	// RFC 7009 §2.2: whatever a security admin sends as the token, the answer is 200; garbage,
	// an expired token and a foreign one change nothing.
	for name, tok := range map[string]string{"garbage": "a.b.c", "an expired token": expired, "not even a JWT": "hello"} {
		r := e.Do(t, testkit.Request{Method: http.MethodPost, Path: "/v1/revoke", Key: e.SecurityKey, Body: revokeForm(tok), ContentType: formType})
		if r.Status != http.StatusOK || len(r.Body) != 0 {
			t.Errorf("revoking %s: %d %q, want 200 with no body", name, r.Status, r.Body)
		}
	}
	if v := version(); v != before {
		t.Fatalf("revoking tokens that are not valid stored something (counter %d → %d)", before, v)
	}

	// A token revokes itself (form, as trustgate revoke sends it), and again (idempotent).
	for range 2 {
		e.Do(t, testkit.Request{Method: http.MethodPost, Path: "/v1/revoke", Key: selfRevoked, Body: revokeForm(selfRevoked), ContentType: formType}).WantStatus(t, http.StatusOK)
	}
	// A security admin revokes another's (JSON).
	e.Do(t, testkit.Request{Method: http.MethodPost, Path: "/v1/revoke", Key: e.SecurityKey, Body: api.RevokeRequest{Token: bySecurity}}).WantStatus(t, http.StatusOK)
	if v := version(); v != before+2 {
		t.Errorf("revocation counter %d, want %d (two tokens revoked)", v, before+2)
	}
	for name, tok := range map[string]string{"self": selfRevoked, "by security": bySecurity} {
		r := e.Do(t, testkit.Request{Method: http.MethodGet, Path: "/v1/whoami", Key: tok})
		if p := r.Problem(t, http.StatusUnauthorized); !strings.Contains(p.Detail, "revoked") {
			t.Errorf("%s: whoami says %q, want it to say the token was revoked", name, p.Detail)
		}
		if in, err := e.Auditor.Introspect(ctx, tok); err != nil || in.Active {
			t.Errorf("%s: introspection %+v, %v; want active false", name, in, err)
		}
	}
	if s := whoamiStatus(victim); s != 0 {
		t.Errorf("the victim's token stopped working (%d) though only others were revoked", s)
	}

	// Every permitted request and every refusal by role is audited.
	evs := testkit.AuditEvents(t, e.Auditor, apiclient.AuditOptions{Action: api.ActionTokenRevoke})
	count := map[string]int{}
	for _, ev := range evs {
		count[ev.Actor+" "+ev.Outcome+" "+ev.Reason]++
	}
	for _, want := range []string{"workload:self success revoked", "workload:self success already revoked", "security success revoked",
		"workload:other denied an access token may revoke only itself"} {
		if count[want] != 1 {
			t.Errorf("audit has %d events %q, want 1; all: %v", count[want], want, count)
		}
	}
	denied := 0
	for _, ev := range evs {
		if (ev.Actor == "devops" || ev.Actor == "auditor") && ev.Outcome == api.OutcomeDenied {
			denied++
		}
	}
	if denied != 2 {
		t.Errorf("%d denied revocations by devops and auditor audited, want 2", denied)
	}

	var disco map[string]any
	e.Do(t, testkit.Request{Method: http.MethodGet, Path: "/.well-known/openid-configuration"}).Decode(t, &disco)
	if disco["revocation_endpoint"] != e.URL+"/v1/revoke" {
		t.Errorf("discovery revocation_endpoint = %v", disco["revocation_endpoint"])
	}
}
