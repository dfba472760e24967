package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
)

func TestUnknownConnectionIs404ForEveryAction(t *testing.T) {
	e := start(t)
	for _, ref := range []string{"no-such-connection", "0f8fad5b-d9cb-469f-a165-70867728950e", "a%2Fb", "%2e%2e", "UPPER"} {
		for _, tc := range []struct {
			method, suffix, key string
			body                any
		}{
			{http.MethodGet, "", e.AuditorKey, nil},
			{http.MethodPatch, "", e.SecurityKey, map[string]any{"description": "x"}},
			{http.MethodDelete, "", e.SecurityKey, nil},
			{http.MethodPut, "/status", e.SecurityKey, api.StatusChange{Status: api.StatusActive}},
			{http.MethodPost, "/test", e.DevOpsKey, api.TestRequest{Token: "a.b.c"}},
		} {
			t.Run(tc.method+" "+ref+tc.suffix, func(t *testing.T) {
				r := e.Do(t, testkit.Request{Method: tc.method, Path: "/v1/workload-connections/" + ref + tc.suffix, Key: tc.key, Body: tc.body})
				r.Problem(t, http.StatusNotFound)
			})
		}
	}
}

func TestMalformedPatchBodiesAre422(t *testing.T) {
	e := start(t)
	c := e.create(t, githubInput("patch-bodies"))
	for _, tc := range []struct{ name, body, field string }{
		{"empty", "", ""},
		{"null", "null", ""},
		{"array", `[{"op":"replace","path":"/description","value":"x"}]`, ""},
		{"string", `"description"`, ""},
		{"truncated", `{"description":`, ""},
		{"two objects", `{"description":"a"}{"description":"b"}`, ""},
		{"name removed", `{"name":null}`, "name"},
		{"owner_id removed", `{"github":{"owner_id":null}}`, "github.owner_id"},
		{"wrong type in a preset", `{"github":{"owner":7}}`, "github.owner"},
		{"two presets", `{"gitlab":{"domain":"gitlab.com","group":"acme"}}`, "provider_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.Do(t, testkit.Request{Method: http.MethodPatch, Path: "/v1/workload-connections/" + c.ID, Key: e.DevOpsKey,
				ContentType: "application/merge-patch+json", Body: tc.body})
			p := r.Problem(t, http.StatusUnprocessableEntity)
			if tc.field != "" {
				wantFields(t, p, tc.field)
			}
			e.wantUnchanged(t, c)
		})
	}

	// Swapping the preset in one patch (old block null, new block given) changes the type.
	got, err := e.DevOps.PatchConnection(ctx, c.ID, map[string]any{"github": nil,
		"gitlab": map[string]any{"domain": "gitlab.com", "group": "acme"}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.ProviderType != api.ProviderGitLab || got.GitHub != nil || got.JWKSURL != "https://gitlab.com/oauth/discovery/keys" {
		t.Errorf("after swapping presets: %s github=%v jwks %s", got.ProviderType, got.GitHub, got.JWKSURL)
	}
}

func TestTestEndpointNeedsAToken(t *testing.T) {
	e := start(t)
	c := e.create(t, githubInput("needs-token"))
	for _, body := range []string{`{}`, `{"token":""}`} {
		r := e.Do(t, testkit.Request{Method: http.MethodPost, Path: "/v1/workload-connections/" + c.ID + "/test", Key: e.DevOpsKey, Body: body})
		wantFields(t, r.Problem(t, http.StatusUnprocessableEntity), "token")
	}
	res, err := e.Security.TestToken(ctx, c.Name, "not-a-jwt")
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, c := range res.Checks {
		if !c.Passed {
			failed++
		}
	}
	if res.WouldIssue || failed == 0 {
		t.Errorf("a malformed token: %+v", res)
	}
	e.wantUnchanged(t, c)
}

// A name may look like a UUID. Such a name must not let one connection's audit trail show up
// under another connection's id.
func TestAuditFilterByIDNeverShowsAnotherConnectionsEvents(t *testing.T) {
	e := start(t)
	a := e.create(t, githubInput("victim"))
	r := e.Do(t, testkit.Request{Method: http.MethodPost, Path: "/v1/workload-connections", Key: e.DevOpsKey, Body: githubInput(a.ID)})
	if r.Status == http.StatusUnprocessableEntity {
		return // a UUID-shaped name is refused: no confusion possible
	}
	r.WantStatus(t, http.StatusCreated)
	if got := e.get(t, a.ID); got.ID != a.ID {
		t.Errorf("GET by id returned %s (named %s), want %s", got.ID, got.Name, a.ID)
	}
	for _, ev := range testkit.AuditEvents(t, e.Security, apiclient.AuditOptions{Connection: a.ID}) {
		if ev.ConnectionID != a.ID {
			t.Errorf("audit events of connection %s include an event of connection %s (named %q): %s %s",
				a.ID, ev.ConnectionID, ev.ConnectionName, ev.Action, ev.Actor)
		}
	}
}
