package httpapi_test

import (
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
)

func TestEveryResponseCarriesXRequestID(t *testing.T) {
	e := start(t)
	c := e.create(t, githubInput("rid"))
	for _, tc := range []struct {
		name   string
		r      testkit.Request
		status int
	}{
		{"healthz", testkit.Request{Method: http.MethodGet, Path: "/healthz"}, 200},
		{"readyz", testkit.Request{Method: http.MethodGet, Path: "/readyz"}, 200},
		{"metrics", testkit.Request{Method: http.MethodGet, Path: "/metrics"}, 200},
		{"jwks", testkit.Request{Method: http.MethodGet, Path: "/.well-known/jwks.json"}, 200},
		{"whoami", testkit.Request{Method: http.MethodGet, Path: "/v1/whoami", Key: e.AuditorKey}, 200},
		{"list", testkit.Request{Method: http.MethodGet, Path: "/v1/workload-connections", Key: e.AuditorKey}, 200},
		{"create", testkit.Request{Method: http.MethodPost, Path: "/v1/workload-connections", Key: e.DevOpsKey, Body: githubInput("rid-2")}, 201},
		{"delete", testkit.Request{Method: http.MethodDelete, Path: "/v1/workload-connections/rid-2", Key: e.DevOpsKey}, 204},
		{"401", testkit.Request{Method: http.MethodGet, Path: "/v1/workload-connections"}, 401},
		{"403", testkit.Request{Method: http.MethodDelete, Path: "/v1/workload-connections/" + c.ID, Key: e.AuditorKey}, 403},
		{"404 route", testkit.Request{Method: http.MethodGet, Path: "/nope"}, 404},
		{"405", testkit.Request{Method: http.MethodPost, Path: "/healthz"}, 405},
		{"413", testkit.Request{Method: http.MethodPost, Path: "/v1/workload-connections", Key: e.DevOpsKey, Body: strings.Repeat(" ", 1<<20+1)}, 413},
		{"415", testkit.Request{Method: http.MethodPost, Path: "/v1/workload-connections", Key: e.DevOpsKey, Body: "{}", ContentType: "text/plain"}, 415},
		{"422", testkit.Request{Method: http.MethodPost, Path: "/v1/workload-connections", Key: e.DevOpsKey, Body: "{}"}, 422},
		{"token endpoint error", testkit.Request{Method: http.MethodPost, Path: "/v1/token", Body: "grant_type=x", ContentType: "application/x-www-form-urlencoded"}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.Do(t, tc.r).WantStatus(t, tc.status)
			if id := r.Header.Get("X-Request-Id"); id == "" {
				t.Error("no X-Request-Id")
			}
		})
	}

	// Generated ids are unique.
	a := e.Do(t, testkit.Request{Method: http.MethodGet, Path: "/healthz"}).Header.Get("X-Request-Id")
	b := e.Do(t, testkit.Request{Method: http.MethodGet, Path: "/healthz"}).Header.Get("X-Request-Id")
	if a == b {
		t.Errorf("two requests got the same id %q", a)
	}
}

func TestCallerXRequestIDIsEchoedWhenSafeAndReplacedWhenNot(t *testing.T) {
	e := start(t)
	for _, id := range []string{"abc", "req-2026-01-02T03:04:05.678Z", "0f8fad5b-d9cb-469f-a165-70867728950e", "a_b.c:d-e", strings.Repeat("x", 128)} {
		t.Run("safe "+id[:min(len(id), 20)], func(t *testing.T) {
			r := e.Do(t, testkit.Request{Method: http.MethodGet, Path: "/healthz", Header: http.Header{"X-Request-Id": {id}}})
			if got := r.Header.Get("X-Request-Id"); got != id {
				t.Errorf("X-Request-Id %q, want the caller's %q", got, id)
			}
		})
	}
	uuidish := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	for _, id := range []string{"two words", "<script>alert(1)</script>", `a"b`, "a;b=c", "new\tline", strings.Repeat("x", 129), "ü-nicode", "%0d%0aSet-Cookie:x"} {
		t.Run("unsafe "+id[:min(len(id), 20)], func(t *testing.T) {
			r := e.Do(t, testkit.Request{Method: http.MethodGet, Path: "/v1/workload-connections/nope", Key: e.AuditorKey,
				Header: http.Header{"X-Request-Id": {id}}})
			got := r.Header.Get("X-Request-Id")
			if got == id || !uuidish.MatchString(got) {
				t.Errorf("unsafe id %q answered with X-Request-Id %q, want a fresh generated id", id, got)
			}
			if p := r.Problem(t, http.StatusNotFound); p.RequestID != got || strings.Contains(string(r.Body), "script") {
				t.Errorf("problem request_id %q, header %q, body %s", p.RequestID, got, r.Body)
			}
		})
	}

	// The audit event of a change carries the request id of the request that caused it.
	r := e.Do(t, testkit.Request{Method: http.MethodPost, Path: "/v1/workload-connections", Key: e.DevOpsKey, Body: githubInput("traced"),
		Header: http.Header{"X-Request-Id": {"trace-me-1"}}})
	r.WantStatus(t, http.StatusCreated)
	evs := e.auditOf(t, "traced")
	if len(evs) != 1 || evs[0].RequestID != "trace-me-1" || evs[0].Action != api.ActionConnectionCreate || evs[0].RemoteAddr == "" {
		t.Errorf("audit of the create: %+v", evs)
	}
}

func TestWhoami(t *testing.T) {
	e := start(t)
	for _, tc := range []struct{ key, name, role string }{
		{e.DevOpsKey, "devops", api.RoleDevOpsAdmin},
		{e.SecurityKey, "security", api.RoleSecurityAdmin},
		{e.AuditorKey, "auditor", api.RoleAuditor},
	} {
		t.Run(tc.role, func(t *testing.T) {
			w, err := e.Client(t, tc.key).Whoami(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*w, api.Whoami{Kind: "principal", Name: tc.name, Role: tc.role}) {
				t.Errorf("whoami %+v", *w)
			}
		})
	}

	revoked := e.NewKey(t, "leaver", api.RoleSecurityAdmin)
	if w, err := e.Client(t, revoked).Whoami(ctx); err != nil || w.Name != "leaver" {
		t.Fatalf("before revocation: %v %+v", err, w)
	}
	if err := e.App.Store.RevokePrincipal(ctx, "leaver"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, auth string }{
		{"no Authorization header", ""},
		{"empty bearer", "Bearer "},
		{"basic auth", "Basic ZGV2b3BzOnNlY3JldA=="},
		{"unknown API key", "Bearer tg_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"key of another shape", "Bearer " + strings.TrimPrefix(e.DevOpsKey, "tg_")},
		{"key with a changed letter", "Bearer " + flipLast(e.DevOpsKey)},
		{"garbage JWT", "Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"},
		{"revoked key", "Bearer " + revoked},
	} {
		t.Run("401 "+tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.auth != "" {
				h.Set("Authorization", tc.auth)
			}
			for _, path := range []string{"/v1/whoami", "/v1/workload-connections", "/v1/audit-events"} {
				r := e.Do(t, testkit.Request{Method: http.MethodGet, Path: path, Header: h})
				r.Problem(t, http.StatusUnauthorized)
				if r.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("%s: 401 without WWW-Authenticate", path)
				}
			}
		})
	}
	// The revoked key cannot change anything either.
	r := e.Do(t, testkit.Request{Method: http.MethodPut, Path: "/v1/workload-connections/x/status", Key: revoked, Body: api.StatusChange{Status: api.StatusActive}})
	r.Problem(t, http.StatusUnauthorized)
}

func TestHealthReadyAndMetrics(t *testing.T) {
	e := start(t)
	var body map[string]any
	e.Do(t, testkit.Request{Method: http.MethodGet, Path: "/healthz"}).WantStatus(t, 200).Decode(t, &body)
	if body["status"] != "ok" {
		t.Errorf("healthz %v", body)
	}
	e.Do(t, testkit.Request{Method: http.MethodGet, Path: "/readyz"}).WantStatus(t, 200).Decode(t, &body)
	if body["status"] != "ready" {
		t.Errorf("readyz %v", body)
	}
	e.Do(t, testkit.Request{Method: http.MethodGet, Path: "/v1/workload-connections", Key: e.AuditorKey}).WantStatus(t, 200)
	m := e.Do(t, testkit.Request{Method: http.MethodGet, Path: "/metrics"}).WantStatus(t, 200)
	for _, want := range []string{
		"trustgate_http_requests_total",
		`trustgate_http_requests_total{code="200",method="GET",route="/v1/workload-connections"}`,
		"trustgate_http_request_duration_seconds",
	} {
		if !strings.Contains(string(m.Body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Raw paths (which may hold connection names) are not metric labels.
	e.Do(t, testkit.Request{Method: http.MethodGet, Path: "/v1/workload-connections/secret-name", Key: e.AuditorKey})
	m = e.Do(t, testkit.Request{Method: http.MethodGet, Path: "/metrics"})
	if strings.Contains(string(m.Body), "secret-name") {
		t.Error("/metrics labels a raw path")
	}
}

func TestReadyzIs503WhenTheDatabaseIsUnreachable(t *testing.T) {
	s := testkit.Start(t)
	if err := s.App.Store.Close(); err != nil {
		t.Fatal(err)
	}
	s.Do(t, testkit.Request{Method: http.MethodGet, Path: "/readyz"}).Problem(t, http.StatusServiceUnavailable)
	s.Do(t, testkit.Request{Method: http.MethodGet, Path: "/healthz"}).WantStatus(t, http.StatusOK)
}

// flipLast changes the last character of a key.
func flipLast(k string) string {
	last := "A"
	if strings.HasSuffix(k, "A") {
		last = "B"
	}
	return k[:len(k)-1] + last
}
