package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
)

func TestTenancyRulesAre422NamingTheField(t *testing.T) {
	e := start(t)
	for _, tc := range []struct {
		name string
		in   api.ConnectionInput
		// fields: one of them must be named in errors; mention: the detail must mention each.
		fields  []string
		mention []string
	}{
		{
			name:    "gitlab.com without group, project_path or project_id",
			in:      api.ConnectionInput{Name: "t-gitlab", GitLab: &api.GitLabSettings{Domain: "gitlab.com"}},
			fields:  []string{"gitlab", "gitlab.group", "gitlab.project_path", "gitlab.project_id"},
			mention: []string{"gitlab.group", "gitlab.project_path", "gitlab.project_id"},
		},
		{
			name:    "google_cloud without email or account_id",
			in:      api.ConnectionInput{Name: "t-google", GoogleCloud: &api.GoogleCloudSettings{ClientID: "my-client"}},
			fields:  []string{"google_cloud", "google_cloud.email", "google_cloud.account_id"},
			mention: []string{"google_cloud.email", "google_cloud.account_id"},
		},
		{
			name: "generic without iss or aud",
			in: api.ConnectionInput{Name: "t-generic-none", JWKSURL: "https://issuer.example.com/jwks",
				Conditions: []api.Condition{eq("sub", "x")}},
			fields: []string{"conditions"}, mention: []string{"iss", "aud"},
		},
		{
			name: "generic without aud",
			in: api.ConnectionInput{Name: "t-generic-aud", JWKSURL: "https://issuer.example.com/jwks",
				Conditions: []api.Condition{eq("iss", "https://issuer.example.com")}},
			fields: []string{"conditions"}, mention: []string{"aud"},
		},
		{
			name: "generic with iss only starts_with and aud exists",
			in: api.ConnectionInput{Name: "t-generic-weak", JWKSURL: "https://issuer.example.com/jwks",
				Conditions: []api.Condition{{Claim: "iss", Operator: api.OpStartsWith, Value: ptr("https://")}, {Claim: "aud", Operator: api.OpExists}}},
			fields: []string{"conditions"}, mention: []string{"iss", "aud"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.Do(t, testkit.Request{Method: http.MethodPost, Path: "/v1/workload-connections", Key: e.DevOpsKey, Body: tc.in})
			p := r.Problem(t, http.StatusUnprocessableEntity)
			named := false
			for _, f := range fieldNames(p) {
				for _, want := range tc.fields {
					if f == want {
						named = true
					}
				}
			}
			if !named {
				t.Errorf("422 errors name %v, want one of %v", fieldNames(p), tc.fields)
			}
			for _, m := range tc.mention {
				if !strings.Contains(p.Detail, m) {
					t.Errorf("detail %q does not mention %s", p.Detail, m)
				}
			}
			if _, err := e.Auditor.GetConnection(ctx, tc.in.Name); apiStatus(err) != http.StatusNotFound {
				t.Errorf("refused connection exists: %v", err)
			}
		})
	}

	// Each rule is satisfied by any one of its inputs, and a self-hosted GitLab needs no scope.
	for _, in := range []api.ConnectionInput{
		{Name: "ok-gitlab-group", GitLab: &api.GitLabSettings{Domain: "gitlab.com", Group: "acme"}},
		{Name: "ok-gitlab-path", GitLab: &api.GitLabSettings{Domain: "gitlab.com", ProjectPath: "acme/app"}},
		{Name: "ok-gitlab-id", GitLab: &api.GitLabSettings{Domain: "gitlab.com", ProjectID: "42"}},
		{Name: "ok-gitlab-self-hosted", GitLab: &api.GitLabSettings{Domain: "gitlab.acme.example"}},
		{Name: "ok-google-email", GoogleCloud: &api.GoogleCloudSettings{ClientID: "c", Email: "ci@p.iam.gserviceaccount.com"}},
		{Name: "ok-google-account", GoogleCloud: &api.GoogleCloudSettings{ClientID: "c", AccountID: "1234567890"}},
		{Name: "ok-generic-one-of", JWKSURL: "https://i.example.com/jwks", Conditions: []api.Condition{
			{Claim: "iss", Operator: api.OpOneOf, Values: []string{"https://i.example.com"}}, eq("/aud", "x")}},
	} {
		if _, err := e.DevOps.CreateConnection(ctx, in); err != nil {
			t.Errorf("%s: %v", in.Name, err)
		}
	}

	// Tenancy is enforced on update too: removing the only scope of a gitlab.com connection.
	c := e.get(t, "ok-gitlab-group")
	_, err := e.DevOps.PatchConnection(ctx, c.ID, map[string]any{"gitlab": map[string]any{"group": nil}}, 0)
	apiProblem(t, err, http.StatusUnprocessableEntity)
	e.wantUnchanged(t, c)
}

func TestPresetsDeriveEffectiveConditionsAndJWKSURL(t *testing.T) {
	e := start(t)
	aud := e.URL // the test server's default audience is its public URL
	userCond := eq("job_workflow_ref", "acme/app/.github/workflows/deploy.yml@refs/heads/main")
	for _, tc := range []struct {
		name     string
		in       api.ConnectionInput
		typ      string
		jwks     string
		effector []api.Condition
	}{
		{
			name: "github", typ: api.ProviderGitHub,
			in: api.ConnectionInput{GitHub: &api.GitHubSettings{Owner: "acme", OwnerID: "65", Repository: "acme/app",
				Ref: "refs/heads/main", Environment: "prod"}, Conditions: []api.Condition{userCond}},
			jwks: "https://token.actions.githubusercontent.com/.well-known/jwks",
			effector: []api.Condition{eq("iss", "https://token.actions.githubusercontent.com"), eq("aud", aud),
				eq("repository_owner_id", "65"), eq("repository_owner", "acme"), eq("repository", "acme/app"),
				eq("ref", "refs/heads/main"), eq("environment", "prod"), userCond},
		},
		{
			name: "github minimal", typ: api.ProviderGitHub,
			in:   api.ConnectionInput{GitHub: &api.GitHubSettings{OwnerID: "65"}},
			jwks: "https://token.actions.githubusercontent.com/.well-known/jwks",
			effector: []api.Condition{eq("iss", "https://token.actions.githubusercontent.com"), eq("aud", aud),
				eq("repository_owner_id", "65")},
		},
		{
			name: "github enterprise with audience", typ: api.ProviderGitHub,
			in:   api.ConnectionInput{GitHub: &api.GitHubSettings{OwnerID: "65", Owner: "acme", EnterpriseSlug: "acme-corp", Audience: "trustgate-prod"}},
			jwks: "https://token.actions.githubusercontent.com/acme-corp/.well-known/jwks",
			effector: []api.Condition{eq("iss", "https://token.actions.githubusercontent.com/acme-corp"), eq("aud", "trustgate-prod"),
				eq("repository_owner_id", "65"), eq("repository_owner", "acme")},
		},
		{
			name: "gitlab group", typ: api.ProviderGitLab,
			in:   api.ConnectionInput{GitLab: &api.GitLabSettings{Domain: "gitlab.com", Group: "acme"}},
			jwks: "https://gitlab.com/oauth/discovery/keys",
			effector: []api.Condition{eq("iss", "https://gitlab.com"), eq("aud", aud),
				{Claim: "project_path", Operator: api.OpStartsWith, Value: ptr("acme/")}},
		},
		{
			name: "gitlab self-hosted with every input", typ: api.ProviderGitLab,
			in: api.ConnectionInput{GitLab: &api.GitLabSettings{Domain: "gitlab.acme.example", Group: "platform",
				ProjectPath: "platform/infra", ProjectID: "20", Audience: "tg"}},
			jwks: "https://gitlab.acme.example/oauth/discovery/keys",
			effector: []api.Condition{eq("iss", "https://gitlab.acme.example"), eq("aud", "tg"),
				{Claim: "project_path", Operator: api.OpStartsWith, Value: ptr("platform/")},
				eq("project_path", "platform/infra"), eq("project_id", "20")},
		},
		{
			name: "circleci", typ: api.ProviderCircleCI,
			in: api.ConnectionInput{CircleCI: &api.CircleCISettings{OrganizationID: "c0ffee00-1111-2222-3333-444455556666",
				ProjectID: "aaaa0000-1111-2222-3333-444455556666"}},
			jwks: "https://oidc.circleci.com/org/c0ffee00-1111-2222-3333-444455556666/.well-known/jwks-pub.json",
			effector: []api.Condition{eq("iss", "https://oidc.circleci.com/org/c0ffee00-1111-2222-3333-444455556666"),
				eq("aud", "c0ffee00-1111-2222-3333-444455556666"),
				eq("oidc.circleci.com/project-id", "aaaa0000-1111-2222-3333-444455556666")},
		},
		{
			name: "google_cloud", typ: api.ProviderGoogleCloud,
			in: api.ConnectionInput{GoogleCloud: &api.GoogleCloudSettings{ClientID: "trustgate-client",
				Email: "deployer@acme.iam.gserviceaccount.com", AccountID: "110000000000000000001"}},
			jwks: "https://www.googleapis.com/oauth2/v3/certs",
			effector: []api.Condition{eq("iss", "https://accounts.google.com"), eq("aud", "trustgate-client"),
				eq("email", "deployer@acme.iam.gserviceaccount.com"), eq("email_verified", "true"), eq("sub", "110000000000000000001")},
		},
		{
			name: "generic", typ: api.ProviderGeneric,
			in:       genericInput(""),
			jwks:     "https://issuer.example.com/jwks",
			effector: []api.Condition{eq("iss", "https://issuer.example.com"), eq("aud", "trustgate")},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.Name = "preset-" + strings.ReplaceAll(strings.ReplaceAll(tc.name, " ", "-"), "_", "-")
			c, err := e.DevOps.CreateConnection(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			for _, got := range []*api.Connection{c, e.get(t, c.ID)} { // as created and as read back
				if got.ProviderType != tc.typ {
					t.Errorf("provider_type %q, want %q", got.ProviderType, tc.typ)
				}
				if got.JWKSURL != tc.jwks || got.JWKSURLOverridden != (tc.typ == api.ProviderGeneric) {
					t.Errorf("jwks_url %q (overridden %v), want %q", got.JWKSURL, got.JWKSURLOverridden, tc.jwks)
				}
				if !reflect.DeepEqual(got.EffectiveConditions, tc.effector) {
					g, _ := json.Marshal(got.EffectiveConditions)
					w, _ := json.Marshal(tc.effector)
					t.Errorf("effective_conditions\n got %s\nwant %s", g, w)
				}
				if !strings.HasPrefix(got.Fingerprint, "sha256:") || len(got.Fingerprint) != len("sha256:")+64 {
					t.Errorf("fingerprint %q", got.Fingerprint)
				}
			}
		})
	}
}

func TestJWKSURLOverrideAndItsRemovalWithMergePatchNull(t *testing.T) {
	e := start(t)
	derived := "https://token.actions.githubusercontent.com/.well-known/jwks"
	plain := e.create(t, githubInput("plain"))
	in := githubInput("override")
	in.JWKSURL = "https://keys.acme.example/jwks"
	c := e.create(t, in)
	if c.JWKSURL != in.JWKSURL || !c.JWKSURLOverridden {
		t.Errorf("jwks_url %q overridden %v, want the override", c.JWKSURL, c.JWKSURLOverridden)
	}
	if c.Fingerprint == plain.Fingerprint {
		t.Error("the jwks_url override does not change the fingerprint")
	}
	if !reflect.DeepEqual(c.EffectiveConditions, plain.EffectiveConditions) {
		t.Error("the jwks_url override changed the effective conditions")
	}

	r := e.Do(t, testkit.Request{Method: http.MethodPatch, Path: "/v1/workload-connections/" + c.ID, Key: e.DevOpsKey,
		ContentType: "application/merge-patch+json", Body: `{"jwks_url": null}`})
	var got api.Connection
	r.WantStatus(t, http.StatusOK).Decode(t, &got)
	if got.JWKSURL != derived || got.JWKSURLOverridden {
		t.Errorf("after null: jwks_url %q overridden %v, want the derived %s", got.JWKSURL, got.JWKSURLOverridden, derived)
	}
	if got.Revision != c.Revision+1 || got.Fingerprint != plain.Fingerprint {
		t.Errorf("after null: revision %d fingerprint %s, want %d and the plain connection's %s", got.Revision, got.Fingerprint, c.Revision+1, plain.Fingerprint)
	}
	// Setting it again, then null with application/json (also accepted for merge patches).
	if _, err := e.DevOps.PatchConnection(ctx, c.ID, map[string]any{"jwks_url": "https://keys2.acme.example/jwks"}, 0); err != nil {
		t.Fatal(err)
	}
	r = e.Do(t, testkit.Request{Method: http.MethodPatch, Path: "/v1/workload-connections/" + c.ID, Key: e.DevOpsKey, Body: `{"jwks_url": null}`})
	r.WantStatus(t, http.StatusOK).Decode(t, &got)
	if got.JWKSURL != derived || got.JWKSURLOverridden {
		t.Errorf("after null as application/json: jwks_url %q", got.JWKSURL)
	}
	// A generic connection has nothing to derive: removing its jwks_url is a 422 on jwks_url.
	g := e.create(t, genericInput("generic-jwks"))
	_, err := e.DevOps.PatchConnection(ctx, g.ID, map[string]any{"jwks_url": nil}, 0)
	wantFields(t, apiProblem(t, err, http.StatusUnprocessableEntity), "jwks_url")
	e.wantUnchanged(t, g)
}

func TestValidation422NamesEveryBadField(t *testing.T) {
	e := start(t)
	body := map[string]any{
		"name":        "Bad_Name",
		"description": strings.Repeat("x", 1025),
		"github":      map[string]any{"owner_id": "", "repository": "not-a-slash", "ref": "main"},
		"token_ttl":   map[string]any{"amount": 0, "unit": "days"},
		"conditions": []any{
			map[string]any{"claim": "sub", "operator": "regex", "value": ".*"},
			map[string]any{"claim": "", "operator": "equals", "value": "x"},
			map[string]any{"claim": "env", "operator": "one_of"},
			map[string]any{"claim": "ref", "operator": "exists", "value": "x"},
		},
		"jwks_url": "ftp://keys.example.com/jwks",
	}
	r := e.Do(t, testkit.Request{Method: http.MethodPost, Path: "/v1/workload-connections", Key: e.DevOpsKey, Body: body})
	p := r.Problem(t, http.StatusUnprocessableEntity)
	wantFields(t, p, "name", "description", "github.owner_id", "github.ref", "token_ttl.amount", "token_ttl.unit",
		"conditions[0].operator", "conditions[1].claim", "conditions[2].values", "conditions[3].value", "jwks_url")
	for _, fe := range p.Errors {
		if fe.Detail == "" {
			t.Errorf("field %s has no detail", fe.Field)
		}
	}

	// Wrong JSON types are 422 naming the field too.
	r = e.Do(t, testkit.Request{Method: http.MethodPost, Path: "/v1/workload-connections", Key: e.DevOpsKey,
		Body: `{"name": 7, "token_ttl": {"amount": "1", "unit": "hours"}, "conditions": {"claim": "x"}}`})
	wantFields(t, r.Problem(t, http.StatusUnprocessableEntity), "name", "token_ttl.amount", "conditions")

	// The same rules on PATCH, and nothing changes.
	c := e.create(t, githubInput("valid"))
	r = e.Do(t, testkit.Request{Method: http.MethodPatch, Path: "/v1/workload-connections/" + c.ID, Key: e.DevOpsKey,
		ContentType: "application/merge-patch+json",
		Body:        map[string]any{"name": "-bad-", "token_ttl": map[string]any{"amount": 25, "unit": "hours"}, "github": map[string]any{"owner_id": "abc"}}})
	wantFields(t, r.Problem(t, http.StatusUnprocessableEntity), "name", "token_ttl", "github.owner_id")
	e.wantUnchanged(t, c)

	// A status body with an unknown status.
	r = e.Do(t, testkit.Request{Method: http.MethodPut, Path: "/v1/workload-connections/" + c.ID + "/status", Key: e.SecurityKey,
		Body: api.StatusChange{Status: "enabled"}})
	wantFields(t, r.Problem(t, http.StatusUnprocessableEntity), "status")
	r = e.Do(t, testkit.Request{Method: http.MethodPut, Path: "/v1/workload-connections/" + c.ID + "/status", Key: e.SecurityKey,
		Body: api.StatusChange{Status: api.StatusDraft}})
	wantFields(t, r.Problem(t, http.StatusUnprocessableEntity), "status")
	e.wantUnchanged(t, c)
}

func TestUnknownJSONFieldsAre422(t *testing.T) {
	e := start(t)
	c := e.create(t, githubInput("strict"))
	path := "/v1/workload-connections/" + c.ID
	for _, tc := range []struct {
		name, method, path, key, body, field string
	}{
		{"create top level", http.MethodPost, "/v1/workload-connections", e.DevOpsKey,
			`{"name":"x1","github":{"owner":"acme"},"condition":[]}`, "condition"},
		{"create nested in a preset", http.MethodPost, "/v1/workload-connections", e.DevOpsKey,
			`{"name":"x2","github":{"owner":"acme","repo":"acme/app"}}`, "github.repo"},
		{"create read-only field", http.MethodPost, "/v1/workload-connections", e.DevOpsKey,
			`{"name":"x3","github":{"owner":"acme"},"status":"active"}`, "status"},
		{"create nested in a condition", http.MethodPost, "/v1/workload-connections", e.DevOpsKey,
			`{"name":"x4","github":{"owner":"acme"},"conditions":[{"claim":"a","operator":"exists","negate":true}]}`, "conditions[0].negate"},
		{"create wrong case", http.MethodPost, "/v1/workload-connections", e.DevOpsKey,
			`{"Name":"x5","github":{"owner":"acme"}}`, "Name"},
		{"patch", http.MethodPatch, path, e.DevOpsKey, `{"descriptionn":"x"}`, "descriptionn"},
		{"patch read-only field", http.MethodPatch, path, e.DevOpsKey, `{"revision":9}`, "revision"},
		{"status", http.MethodPut, path + "/status", e.SecurityKey, `{"status":"active","force":true}`, "force"},
		{"test", http.MethodPost, path + "/test", e.DevOpsKey, `{"token":"a.b.c","verbose":true}`, "verbose"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.Do(t, testkit.Request{Method: tc.method, Path: tc.path, Key: tc.key, Body: tc.body})
			wantFields(t, r.Problem(t, http.StatusUnprocessableEntity), tc.field)
			e.wantUnchanged(t, c)
		})
	}
	all, err := e.Auditor.ListAllConnections(ctx, apiclient.ListOptions{})
	if err != nil || len(all) != 1 {
		t.Errorf("%d connections exist after refused creates (%v), want 1", len(all), err)
	}
}

func TestBodyOver1MiBIs413(t *testing.T) {
	e := start(t)
	c := e.create(t, githubInput("big"))
	huge := func() []byte {
		var b bytes.Buffer
		b.WriteString(`{"name":"huge","github":{"owner":"acme"},"description":"`)
		b.WriteString(strings.Repeat("x", 1<<20))
		b.WriteString(`"}`)
		return b.Bytes()
	}()
	path := "/v1/workload-connections/" + c.ID
	for _, tc := range []struct {
		name, method, path, key, ct string
	}{
		{"create", http.MethodPost, "/v1/workload-connections", e.DevOpsKey, ""},
		{"patch", http.MethodPatch, path, e.DevOpsKey, "application/merge-patch+json"},
		{"status", http.MethodPut, path + "/status", e.SecurityKey, ""},
		{"test", http.MethodPost, path + "/test", e.DevOpsKey, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.Do(t, testkit.Request{Method: tc.method, Path: tc.path, Key: tc.key, Body: huge, ContentType: tc.ct})
			r.Problem(t, http.StatusRequestEntityTooLarge)
			e.wantUnchanged(t, c)
		})
	}
	// Just under the limit is not refused for its size (it is a valid create).
	var b bytes.Buffer
	b.WriteString(`{"name":"almost","github":{"owner_id":"65"},"description":"d"`)
	b.WriteString(strings.Repeat(" ", 1<<20-b.Len()-1))
	b.WriteString(`}`)
	if b.Len() != 1<<20 {
		t.Fatalf("body is %d bytes", b.Len())
	}
	e.Do(t, testkit.Request{Method: http.MethodPost, Path: "/v1/workload-connections", Key: e.DevOpsKey, Body: b.Bytes()}).WantStatus(t, http.StatusCreated)
}

func TestWrongContentTypeIs415(t *testing.T) {
	e := start(t)
	c := e.create(t, githubInput("typed"))
	path := "/v1/workload-connections/" + c.ID
	create := `{"name":"typed-2","github":{"owner_id":"65"}}`
	for _, tc := range []struct {
		name, method, path, key, ct, body string
	}{
		{"create as text/plain", http.MethodPost, "/v1/workload-connections", e.DevOpsKey, "text/plain", create},
		{"create as form", http.MethodPost, "/v1/workload-connections", e.DevOpsKey, "application/x-www-form-urlencoded", create},
		{"create without content type", http.MethodPost, "/v1/workload-connections", e.DevOpsKey, "-", create},
		{"create as merge patch", http.MethodPost, "/v1/workload-connections", e.DevOpsKey, "application/merge-patch+json", create},
		{"patch as text/plain", http.MethodPatch, path, e.DevOpsKey, "text/plain", `{"description":"x"}`},
		{"patch as json-patch", http.MethodPatch, path, e.DevOpsKey, "application/json-patch+json", `[{"op":"replace","path":"/description","value":"x"}]`},
		{"status as form", http.MethodPut, path + "/status", e.SecurityKey, "application/x-www-form-urlencoded", "status=active"},
		{"test as text/plain", http.MethodPost, path + "/test", e.DevOpsKey, "text/plain", `{"token":"a.b.c"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.Do(t, testkit.Request{Method: tc.method, Path: tc.path, Key: tc.key, Body: tc.body, ContentType: tc.ct})
			r.Problem(t, http.StatusUnsupportedMediaType)
			e.wantUnchanged(t, c)
		})
	}
	// Parameters such as charset are fine.
	e.Do(t, testkit.Request{Method: http.MethodPost, Path: "/v1/workload-connections", Key: e.DevOpsKey, Body: create,
		ContentType: "application/json; charset=utf-8"}).WantStatus(t, http.StatusCreated)
}

func TestProblemJSONShapeForEveryErrorKind(t *testing.T) {
	e := start(t)
	c := e.inStatus(t, "shape", api.StatusActive)
	path := "/v1/workload-connections/" + c.ID
	for _, tc := range []struct {
		name   string
		r      testkit.Request
		status int
	}{
		{"401 no key", testkit.Request{Method: http.MethodGet, Path: "/v1/workload-connections"}, 401},
		{"403 role", testkit.Request{Method: http.MethodPost, Path: "/v1/workload-connections", Key: e.AuditorKey, Body: githubInput("x")}, 403},
		{"404 connection", testkit.Request{Method: http.MethodGet, Path: "/v1/workload-connections/nope", Key: e.AuditorKey}, 404},
		{"404 route", testkit.Request{Method: http.MethodGet, Path: "/v1/nothing-here", Key: e.AuditorKey}, 404},
		{"405 method", testkit.Request{Method: http.MethodPut, Path: "/v1/workload-connections", Key: e.DevOpsKey, Body: "{}"}, 405},
		{"409 conflict", testkit.Request{Method: http.MethodDelete, Path: path, Key: e.SecurityKey}, 409},
		{"412 precondition", testkit.Request{Method: http.MethodPatch, Path: path, Key: e.SecurityKey, Body: `{"description":"x"}`, Header: http.Header{"If-Match": {`"99"`}}}, 412},
		{"413 too large", testkit.Request{Method: http.MethodPost, Path: "/v1/workload-connections", Key: e.DevOpsKey, Body: strings.Repeat(" ", 1<<20+1)}, 413},
		{"415 media type", testkit.Request{Method: http.MethodPost, Path: "/v1/workload-connections", Key: e.DevOpsKey, Body: "{}", ContentType: "text/plain"}, 415},
		{"422 validation", testkit.Request{Method: http.MethodPost, Path: "/v1/workload-connections", Key: e.DevOpsKey, Body: `{"name":"Bad"}`}, 422},
		{"422 malformed JSON", testkit.Request{Method: http.MethodPost, Path: "/v1/workload-connections", Key: e.DevOpsKey, Body: `{"name":`}, 422},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.Do(t, tc.r)
			p := r.Problem(t, tc.status)
			if p.RequestID == "" {
				t.Error("problem has no request_id")
			}
			if p.Title != http.StatusText(tc.status) {
				t.Errorf("title %q, want %q", p.Title, http.StatusText(tc.status))
			}
			if tc.status == 422 && p.Detail == "" {
				t.Error("422 without detail")
			}
			if tc.status == 401 && r.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}
