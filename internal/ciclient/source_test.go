package ciclient

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// actionsEndpoint is a stand-in for GitHub's Actions ID-token endpoint: it demands the request
// bearer and an audience parameter, keeps the query it was given (api-version), and answers
// {"value": <token>} with a token that records the audience it was minted for.
type actionsEndpoint struct {
	srv        *httptest.Server
	bearer     string
	calls      atomic.Int32
	audiences  chan string
	failStatus int // answer every request with this status instead
}

func newActionsEndpoint(t *testing.T) *actionsEndpoint {
	t.Helper()
	a := &actionsEndpoint{bearer: "runtime-request-token", audiences: make(chan string, 4)}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.calls.Add(1)
		if a.failStatus != 0 {
			w.WriteHeader(a.failStatus)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+a.bearer {
			t.Errorf("Actions endpoint: Authorization = %q, want the request token as bearer", r.Header.Get("Authorization"))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.URL.Query().Get("api-version") != "2.0" {
			t.Errorf("Actions endpoint: the query of ACTIONS_ID_TOKEN_REQUEST_URL was lost: %q", r.URL.RawQuery)
		}
		aud := r.URL.Query().Get("audience")
		if aud == "" {
			t.Errorf("Actions endpoint: no audience parameter in %q", r.URL.RawQuery)
		}
		a.audiences <- aud
		_ = json.NewEncoder(w).Encode(map[string]string{"value": fakeJWT("github:" + aud)})
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *actionsEndpoint) env() map[string]string {
	return map[string]string{
		"GITHUB_ACTIONS":                 "true",
		"ACTIONS_ID_TOKEN_REQUEST_URL":   a.srv.URL + "/token?api-version=2.0",
		"ACTIONS_ID_TOKEN_REQUEST_TOKEN": a.bearer,
	}
}

// metadataServer is a stand-in for the Google metadata server: it demands Metadata-Flavor: Google
// and format=full, and answers with a token that records the audience it was minted for.
type metadataServer struct {
	srv        *httptest.Server
	failStatus int
}

func newMetadataServer(t *testing.T) *metadataServer {
	t.Helper()
	m := &metadataServer{}
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Metadata-Flavor", "Google")
		if r.Header.Get("Metadata-Flavor") != "Google" {
			t.Errorf("metadata server: request %s without Metadata-Flavor: Google", r.URL.Path)
			w.WriteHeader(http.StatusForbidden)
			return
		}
		switch r.URL.Path {
		case "/":
			_, _ = w.Write([]byte("computeMetadata/\n"))
		case metadataIdentityPath:
			if m.failStatus != 0 {
				w.WriteHeader(m.failStatus)
				return
			}
			q := r.URL.Query()
			if q.Get("format") != "full" {
				t.Errorf("metadata server: format = %q, want full", q.Get("format"))
			}
			if q.Get("audience") == "" {
				t.Errorf("metadata server: no audience")
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			_, _ = w.Write([]byte(fakeJWT("google:" + q.Get("audience"))))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(m.srv.Close)
	return m
}

func (m *metadataServer) host() string { return strings.TrimPrefix(m.srv.URL, "http://") }

func TestEachSourceDeliversItsTokenToTheExchange(t *testing.T) {
	tokenPath := filepath.Join(t.TempDir(), "ci.jwt")
	if err := os.WriteFile(tokenPath, []byte(fakeJWT("file")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	actions := newActionsEndpoint(t)
	meta := newMetadataServer(t)

	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		wantCI string // the subject token the server must receive
	}{
		{
			name:   "github requests the given audience",
			env:    actions.env(),
			args:   []string{"--from", "github", "--audience", "https://tg.example.com"},
			wantCI: fakeJWT("github:https://tg.example.com"),
		},
		{
			name:   "github audience from TRUSTGATE_AUDIENCE",
			env:    merge(actions.env(), map[string]string{"TRUSTGATE_AUDIENCE": "aud-from-env"}),
			args:   []string{"--from", "github"},
			wantCI: fakeJWT("github:aud-from-env"),
		},
		{
			name:   "github audience defaults to the server URL",
			env:    actions.env(),
			args:   []string{"--from", "github"},
			wantCI: "", // filled in below: depends on the token endpoint's URL
		},
		{
			name:   "gitlab reads TRUSTGATE_ID_TOKEN",
			env:    map[string]string{"GITLAB_CI": "true", "TRUSTGATE_ID_TOKEN": fakeJWT("gitlab")},
			args:   []string{"--from", "gitlab"},
			wantCI: fakeJWT("gitlab"),
		},
		{
			name:   "gitlab reads the id_tokens variable named by --token-env",
			env:    map[string]string{"TRUSTGATE_ID_TOKEN": fakeJWT("wrong"), "DEPLOY_ID_TOKEN": fakeJWT("gitlab-custom")},
			args:   []string{"--from", "gitlab", "--token-env", "DEPLOY_ID_TOKEN"},
			wantCI: fakeJWT("gitlab-custom"),
		},
		{
			name:   "circleci reads CIRCLE_OIDC_TOKEN_V2",
			env:    map[string]string{"CIRCLE_OIDC_TOKEN": fakeJWT("v1"), "CIRCLE_OIDC_TOKEN_V2": fakeJWT("circleci")},
			args:   []string{"--from", "circleci"},
			wantCI: fakeJWT("circleci"),
		},
		{
			name:   "google asks the metadata server for the audience",
			env:    map[string]string{"GCE_METADATA_HOST": meta.host()},
			args:   []string{"--from", "google", "--audience", "trustgate-client-id"},
			wantCI: fakeJWT("google:trustgate-client-id"),
		},
		{
			name:   "token file, surrounding whitespace trimmed",
			env:    map[string]string{"GITHUB_ACTIONS": "true"},
			args:   []string{"--token-file", tokenPath},
			wantCI: fakeJWT("file"),
		},
		{
			name:   "token env",
			env:    map[string]string{"MY_JWT": " " + fakeJWT("env") + "\n"},
			args:   []string{"--token-env", "MY_JWT"},
			wantCI: fakeJWT("env"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			te := newTokenEndpoint(t)
			want := tt.wantCI
			if want == "" {
				want = fakeJWT("github:" + te.srv.URL)
			}
			te.accepted[want] = true
			args := append([]string{"--server", te.srv.URL + "/", "--connection", "deploy"}, tt.args...)
			r := runCLI(t, tt.env, args...)
			if r.err != nil {
				t.Fatalf("exchange failed: %v\nstderr: %s", r.err, r.stderr)
			}
			if r.stdout != issuedAccessToken+"\n" {
				t.Errorf("stdout = %q, want the access token and a newline", r.stdout)
			}
			got := te.received()
			if len(got) != 1 {
				t.Fatalf("token endpoint got %d requests, want 1", len(got))
			}
			if got[0].SubjectToken != want || got[0].Connection != "deploy" {
				t.Errorf("token endpoint got connection %q and a different subject token than the source's", got[0].Connection)
			}
			assertNoSecret(t, r, want)
		})
	}
}

func TestAutoDetectionOrder(t *testing.T) {
	actions := newActionsEndpoint(t)
	meta := newMetadataServer(t)
	gitlab := map[string]string{"GITLAB_CI": "true", "TRUSTGATE_ID_TOKEN": fakeJWT("gitlab")}
	circle := map[string]string{"CIRCLECI": "true", "CIRCLE_OIDC_TOKEN_V2": fakeJWT("circleci")}
	onGoogle := map[string]string{"GCE_METADATA_HOST": meta.host()}

	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		want     string
		detected string
	}{
		{"github before everything", merge(actions.env(), gitlab, circle, onGoogle), []string{"--from", "auto", "--audience", "a"}, fakeJWT("github:a"), "GitHub Actions"},
		{"gitlab before circleci and google", merge(gitlab, circle, onGoogle), []string{"--from", "auto"}, fakeJWT("gitlab"), "GitLab CI"},
		{"circleci before google", merge(circle, onGoogle), []string{"--from", "auto"}, fakeJWT("circleci"), "CircleCI"},
		{"google metadata server last", onGoogle, []string{"--from", "auto", "--audience", "a"}, fakeJWT("google:a"), "Google metadata server"},
		{"no source flag means auto", circle, nil, fakeJWT("circleci"), "CircleCI"},
		{"GITHUB_ACTIONS must be exactly true", merge(map[string]string{"GITHUB_ACTIONS": "false"}, circle), nil, fakeJWT("circleci"), "CircleCI"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			te := newTokenEndpoint(t, tt.want)
			env := tt.env
			if env["GCE_METADATA_HOST"] == "" {
				env = merge(env, map[string]string{"GCE_METADATA_HOST": noMetadata(t)})
			}
			r := runCLI(t, env, append([]string{"--server", te.srv.URL, "--connection", "deploy"}, tt.args...)...)
			if r.err != nil {
				t.Fatalf("exchange failed: %v\nstderr: %s", r.err, r.stderr)
			}
			if !strings.Contains(r.stderr, "detected "+tt.detected) && !strings.Contains(r.stderr, "detected a "+tt.detected) {
				t.Errorf("stderr = %q, want it to say it detected %s", r.stderr, tt.detected)
			}
			if got := te.received(); len(got) != 1 || got[0].SubjectToken != tt.want {
				t.Errorf("the exchanged token is not the one from %s", tt.detected)
			}
		})
	}
}

func TestAutoDetectionWithNothingFoundSaysWhatItLookedFor(t *testing.T) {
	notGoogle := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("some other web server"))
	}))
	defer notGoogle.Close()

	for name, host := range map[string]string{
		"nothing listening":           noMetadata(t),
		"a server that is not Google": strings.TrimPrefix(notGoogle.URL, "http://"),
	} {
		t.Run(name, func(t *testing.T) {
			te := newTokenEndpoint(t)
			r := runCLI(t, map[string]string{"GCE_METADATA_HOST": host}, "--server", te.srv.URL, "--connection", "deploy")
			if r.err == nil {
				t.Fatal("want an error when no CI token source is found")
			}
			for _, want := range []string{"GITHUB_ACTIONS=true", "GITLAB_CI=true", "CIRCLECI=true", "metadata server at http://" + host, "--token-file"} {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr does not mention %q:\n%s", want, r.stderr)
				}
			}
			if n := len(te.received()); n != 0 {
				t.Errorf("token endpoint got %d requests, want none", n)
			}
		})
	}
}

func TestSourceFailuresSayWhatToDoNext(t *testing.T) {
	forbidden := newActionsEndpoint(t)
	forbidden.failStatus = http.StatusForbidden
	noSA := newMetadataServer(t)
	noSA.failStatus = http.StatusNotFound
	badFile := filepath.Join(t.TempDir(), "not-a-jwt")
	if err := os.WriteFile(badFile, []byte("super-secret-but-not-a-jwt"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		want   []string
		secret string
	}{
		{
			name: "github without id-token permission",
			env:  map[string]string{"GITHUB_ACTIONS": "true"},
			args: []string{"--from", "github"},
			want: []string{"ACTIONS_ID_TOKEN_REQUEST_URL", "add `permissions: id-token: write`"},
		},
		{
			name: "github endpoint refuses the request token",
			env:  forbidden.env(),
			args: []string{"--from", "github"},
			want: []string{"403", "permissions: id-token: write"},
		},
		{
			name: "gitlab without id_tokens",
			env:  map[string]string{"GITLAB_CI": "true"},
			args: []string{"--from", "gitlab"},
			want: []string{"TRUSTGATE_ID_TOKEN is not set", "id_tokens:", "aud:"},
		},
		{
			name: "gitlab custom variable missing",
			env:  map[string]string{"GITLAB_CI": "true"},
			args: []string{"--from", "gitlab", "--token-env", "DEPLOY_ID_TOKEN"},
			want: []string{"DEPLOY_ID_TOKEN is not set", "id_tokens:"},
		},
		{
			name: "circleci without token",
			env:  map[string]string{"CIRCLECI": "true"},
			args: []string{"--from", "circleci"},
			want: []string{"CIRCLE_OIDC_TOKEN_V2 is not set", "context"},
		},
		{
			name: "google without a service account",
			env:  map[string]string{"GCE_METADATA_HOST": noSA.host()},
			args: []string{"--from", "google"},
			want: []string{"404", "attach a service account"},
		},
		{
			name: "google off Google Cloud",
			env:  map[string]string{"GCE_METADATA_HOST": noMetadata(t)},
			args: []string{"--from", "google"},
			want: []string{"could not reach the Google metadata server", "GCE_METADATA_HOST"},
		},
		{
			name:   "token env that is not a JWT is not quoted",
			env:    map[string]string{"MY_JWT": "super-secret-but-not-a-jwt"},
			args:   []string{"--token-env", "MY_JWT"},
			want:   []string{"MY_JWT is not a JWT"},
			secret: "super-secret-but-not-a-jwt",
		},
		{
			name:   "token file that is not a JWT is not quoted",
			args:   []string{"--token-file", badFile},
			want:   []string{"is not a JWT"},
			secret: "super-secret-but-not-a-jwt",
		},
		{
			name: "missing token file",
			args: []string{"--token-file", filepath.Join(t.TempDir(), "absent")},
			want: []string{"cannot read the CI token"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			te := newTokenEndpoint(t)
			r := runCLI(t, tt.env, append([]string{"--server", te.srv.URL, "--connection", "deploy"}, tt.args...)...)
			if r.err == nil {
				t.Fatalf("want an error; stdout=%q", r.stdout)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not say %q:\n%s", w, r.stderr)
				}
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing on failure", r.stdout)
			}
			if n := len(te.received()); n != 0 {
				t.Errorf("token endpoint got %d requests, want none", n)
			}
			assertNoSecret(t, r, tt.secret)
		})
	}
}

func TestGitHubEndpointIsRetriedOnceAfterA5xx(t *testing.T) {
	actions := newActionsEndpoint(t)
	actions.failStatus = http.StatusBadGateway
	te := newTokenEndpoint(t)
	r := runCLI(t, actions.env(), "--server", te.srv.URL, "--connection", "deploy", "--from", "github")
	if r.err == nil {
		t.Fatal("want an error when the Actions endpoint keeps failing")
	}
	if got := actions.calls.Load(); got != 2 {
		t.Errorf("Actions endpoint called %d times, want 2 (one retry)", got)
	}
	if !strings.Contains(r.stderr, "502") {
		t.Errorf("stderr does not give the status: %s", r.stderr)
	}
}

func TestAudienceIsNotedAsIgnoredWhereTheCISystemFixesIt(t *testing.T) {
	te := newTokenEndpoint(t, fakeJWT("circleci"))
	r := runCLI(t, map[string]string{"CIRCLE_OIDC_TOKEN_V2": fakeJWT("circleci")},
		"--server", te.srv.URL, "--connection", "deploy", "--from", "circleci", "--audience", "x")
	if r.err != nil {
		t.Fatalf("exchange failed: %v", r.err)
	}
	if !strings.Contains(r.stderr, "--audience has no effect with --from circleci") {
		t.Errorf("stderr = %q, want a note that --audience is ignored", r.stderr)
	}
}

func TestCheckToken(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"jwt", fakeJWT("x"), true},
		{"jwt with newline", fakeJWT("x") + "\r\n", true},
		{"unsigned-looking but shaped", "eyJh.eyJz.", true},
		{"empty", "  ", false},
		{"two parts", "eyJh.eyJz", false},
		{"four parts", "a.b.c.d", false},
		{"empty payload", "eyJh..c2ln", false},
		{"not base64url", "eyJh.ey Jz.c2ln", false},
		{"padding", "eyJh.eyJz.c2ln==", false},
		{"huge", strings.Repeat("a", maxTokenBytes) + ".b.c", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := checkToken(tt.in, "test")
			if (err == nil) != tt.ok {
				t.Errorf("checkToken ok = %v, want %v (err %v)", err == nil, tt.ok, err)
			}
			if err != nil && len(tt.in) > 4 && strings.Contains(err.Error(), strings.TrimSpace(tt.in)) {
				t.Errorf("error quotes the token: %v", err)
			}
		})
	}
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
