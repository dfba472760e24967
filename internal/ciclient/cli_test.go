package ciclient

import (
	"encoding/json"
	"errors"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

func TestOutputModes(t *testing.T) {
	ci := fakeJWT("env")
	env := map[string]string{"CI_JWT": ci}
	te := newTokenEndpoint(t, ci)
	base := []string{"--server", te.srv.URL, "--connection", "deploy", "--token-env", "CI_JWT"}

	t.Run("token is the default: the access token and a newline", func(t *testing.T) {
		r := runCLI(t, env, base...)
		if r.err != nil || r.stdout != issuedAccessToken+"\n" {
			t.Fatalf("stdout = %q, err = %v", r.stdout, r.err)
		}
	})
	t.Run("json is the whole token response", func(t *testing.T) {
		r := runCLI(t, env, append(base, "--output", "json")...)
		if r.err != nil {
			t.Fatal(r.err)
		}
		var got api.TokenResponse
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("stdout is not JSON: %v\n%s", err, r.stdout)
		}
		want := api.TokenResponse{AccessToken: issuedAccessToken, IssuedTokenType: api.TokenTypeJWT, TokenType: "Bearer", ExpiresIn: 1800}
		if got != want {
			t.Errorf("json output = %+v, want %+v", got, want)
		}
	})
	t.Run("env is export lines a shell can eval", func(t *testing.T) {
		r := runCLI(t, env, append(base, "--output=env")...)
		if r.err != nil {
			t.Fatal(r.err)
		}
		want := "export TRUSTGATE_ACCESS_TOKEN='" + issuedAccessToken + "'\nexport TRUSTGATE_ACCESS_TOKEN_EXPIRES_IN='1800'\n"
		if r.stdout != want {
			t.Errorf("stdout = %q, want %q", r.stdout, want)
		}
		sh, err := exec.LookPath("sh")
		if err != nil {
			t.Logf("no sh on PATH (%v): the eval check is not run", err)
			return
		}
		out, err := exec.Command(sh, "-c", r.stdout+`printf '%s|%s' "$TRUSTGATE_ACCESS_TOKEN" "$TRUSTGATE_ACCESS_TOKEN_EXPIRES_IN"`).Output()
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != issuedAccessToken+"|1800" {
			t.Errorf("after eval: %q", out)
		}
	})
}

func TestShellQuoteSurvivesTheShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skipf("no sh on PATH (%v)", err)
	}
	for _, s := range []string{"plain", "", "it's", "''", `$HOME "x" \n`, "a b\tc", "`id`", "$(id)"} {
		out, err := exec.Command(sh, "-c", "printf '%s' "+shellQuote(s)).Output()
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if string(out) != s {
			t.Errorf("shellQuote(%q) came back from sh as %q", s, out)
		}
	}
}

func TestRefusedExchangePrintsTheServersReason(t *testing.T) {
	ci := fakeJWT("refused")
	tests := []struct {
		name       string
		connection string
		args       []string
		want       []string
	}{
		{
			name:       "invalid_grant",
			connection: "deploy",
			want:       []string{"invalid_grant", "condition check failed (request req-2)", "audit log"},
		},
		{
			name:       "invalid_grant from github hints at --audience",
			connection: "deploy",
			args:       []string{"--from", "github"},
			want:       []string{"condition check failed (request req-2)", "--audience"},
		},
		{
			name:       "invalid_target",
			connection: "nope",
			want:       []string{"invalid_target", "no active connection named nope (request req-1)", "activated"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			te := newTokenEndpoint(t) // accepts nothing
			env := map[string]string{"CI_JWT": ci}
			args := []string{"--server", te.srv.URL, "--connection", tt.connection, "--token-env", "CI_JWT"}
			if len(tt.args) > 0 {
				actions := newActionsEndpoint(t)
				env = actions.env()
				args = append([]string{"--server", te.srv.URL, "--connection", tt.connection}, tt.args...)
			}
			r := runCLI(t, env, args...)
			if r.err == nil {
				t.Fatal("want an error for a refused exchange")
			}
			var reported *ReportedError
			if !errors.As(r.err, &reported) {
				t.Errorf("error %T is not a *ReportedError", r.err)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not say %q:\n%s", w, r.stderr)
				}
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
			if n := len(te.received()); n != 1 {
				t.Errorf("token endpoint got %d requests, want 1 (a 400 is not retried)", n)
			}
			assertNoSecret(t, r, ci)
			for _, req := range te.received() {
				assertNoSecret(t, r, req.SubjectToken)
			}
		})
	}
}

func TestExchangeRetriesOnce(t *testing.T) {
	ci := fakeJWT("retry")
	unavailable := func(status int, retryAfter string) func(int, http.ResponseWriter, api.TokenRequest) bool {
		return func(n int, w http.ResponseWriter, _ api.TokenRequest) bool {
			if n > 0 {
				return false // the default: grant
			}
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(api.OAuthError{Error: "temporarily_unavailable", ErrorDescription: "busy"})
			return true
		}
	}
	always := func(status int, retryAfter string) func(int, http.ResponseWriter, api.TokenRequest) bool {
		f := unavailable(status, retryAfter)
		return func(_ int, w http.ResponseWriter, r api.TokenRequest) bool { return f(0, w, r) }
	}

	tests := []struct {
		name      string
		respond   func(int, http.ResponseWriter, api.TokenRequest) bool
		wantOK    bool
		wantCalls int
		minWait   time.Duration
		want      string
	}{
		{"503 then success", unavailable(http.StatusServiceUnavailable, ""), true, 2, defaultRetryDelay, "retrying once"},
		{"429 honours Retry-After", unavailable(http.StatusTooManyRequests, "2"), true, 2, 2 * time.Second, "retrying once in 2s"},
		{"500 twice gives up after one retry", always(http.StatusInternalServerError, ""), false, 2, defaultRetryDelay, "busy"},
		{"Retry-After beyond the bound is not waited for", always(http.StatusTooManyRequests, "3600"), false, 1, 0, "run it again later"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			te := newTokenEndpoint(t, ci)
			te.respond = tt.respond
			start := time.Now()
			r := runCLI(t, map[string]string{"CI_JWT": ci}, "--server", te.srv.URL, "--connection", "deploy", "--token-env", "CI_JWT")
			elapsed := time.Since(start)
			if (r.err == nil) != tt.wantOK {
				t.Fatalf("err = %v, want ok=%v\nstderr: %s", r.err, tt.wantOK, r.stderr)
			}
			if n := len(te.received()); n != tt.wantCalls {
				t.Errorf("token endpoint got %d requests, want %d", n, tt.wantCalls)
			}
			if elapsed < tt.minWait {
				t.Errorf("retried after %s, want at least %s", elapsed, tt.minWait)
			}
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr does not say %q:\n%s", tt.want, r.stderr)
			}
			if tt.wantOK && r.stdout != issuedAccessToken+"\n" {
				t.Errorf("stdout = %q", r.stdout)
			}
		})
	}
}

func TestUnreachableServerIsRetriedThenExplained(t *testing.T) {
	ci := fakeJWT("x")
	r := runCLI(t, map[string]string{"CI_JWT": ci}, "--server", "http://"+noMetadata(t), "--connection", "deploy", "--token-env", "CI_JWT")
	if r.err == nil {
		t.Fatal("want an error when the server is unreachable")
	}
	for _, w := range []string{"could not reach the server; retrying once", "reachable from this job"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr does not say %q:\n%s", w, r.stderr)
		}
	}
	assertNoSecret(t, r, ci)
}

func TestCommandLine(t *testing.T) {
	ci := fakeJWT("flags")
	te := newTokenEndpoint(t, ci)

	t.Run("server and connection from the environment", func(t *testing.T) {
		r := runCLI(t, map[string]string{"TRUSTGATE_SERVER": te.srv.URL, "TRUSTGATE_CONNECTION": "deploy", "CI_JWT": ci}, "--token-env", "CI_JWT")
		if r.err != nil {
			t.Fatalf("%v\n%s", r.err, r.stderr)
		}
	})
	t.Run("flags win over the environment", func(t *testing.T) {
		r := runCLI(t, map[string]string{"TRUSTGATE_SERVER": "http://127.0.0.1:1", "TRUSTGATE_CONNECTION": "other", "CI_JWT": ci},
			"--server", te.srv.URL, "--connection", "deploy", "--token-env", "CI_JWT")
		if r.err != nil {
			t.Fatalf("%v\n%s", r.err, r.stderr)
		}
	})
	t.Run("help goes to stdout and succeeds", func(t *testing.T) {
		r := runCLI(t, nil, "--help")
		if r.err != nil || !strings.Contains(r.stdout, "Usage: trustgate exchange") || !strings.Contains(r.stdout, "--from") {
			t.Errorf("err = %v, stdout = %q", r.err, r.stdout)
		}
	})

	env := map[string]string{"CI_JWT": ci}
	srv := []string{"--server", te.srv.URL}
	errCases := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no server", env, []string{"--connection", "deploy", "--token-env", "CI_JWT"}, "TRUSTGATE_SERVER"},
		{"no connection", env, append(srv, "--token-env", "CI_JWT"), "TRUSTGATE_CONNECTION"},
		{"server is not a URL", env, []string{"--server", "trustgate.example.com", "--connection", "deploy", "--token-env", "CI_JWT"}, "not an http(s) URL"},
		{"two sources", env, append(srv, "--connection", "deploy", "--token-env", "CI_JWT", "--token-file", "x"), "give one source"},
		{"token-env with a from other than gitlab", env, append(srv, "--connection", "deploy", "--token-env", "CI_JWT", "--from", "github"), "give one source"},
		{"unknown from", env, append(srv, "--connection", "deploy", "--from", "jenkins"), `--from "jenkins" is not one of`},
		{"unknown output", env, append(srv, "--connection", "deploy", "--token-env", "CI_JWT", "--output", "yaml"), `--output "yaml" is not one of`},
		{"positional argument", env, append(srv, "--connection", "deploy", "--token-env", "CI_JWT", "deploy"), "unexpected argument"},
		{"unknown flag", env, append(srv, "--connection", "deploy", "--token", "x"), "flag provided but not defined: -token"},
	}
	for _, tt := range errCases {
		t.Run(tt.name, func(t *testing.T) {
			before := len(te.received())
			r := runCLI(t, tt.env, tt.args...)
			if r.err == nil {
				t.Fatal("want an error")
			}
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr does not say %q:\n%s", tt.want, r.stderr)
			}
			if strings.Count(r.stderr, r.err.Error()) > 1 {
				t.Errorf("the error is printed more than once:\n%s", r.stderr)
			}
			if n := len(te.received()) - before; n != 0 {
				t.Errorf("a usage error still sent %d exchange requests", n)
			}
		})
	}
}

func TestPlainHTTPToARemoteServerIsWarnedAbout(t *testing.T) {
	var warned strings.Builder
	warnPlainHTTP("http://trustgate.example.com", &warned)
	if !strings.Contains(warned.String(), "plain http") {
		t.Errorf("no warning for a remote http server: %q", warned.String())
	}
	for _, quiet := range []string{"https://trustgate.example.com", "http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"} {
		var b strings.Builder
		warnPlainHTTP(quiet, &b)
		if b.Len() != 0 {
			t.Errorf("warned for %s: %q", quiet, b.String())
		}
	}
}

// --token-audience (or TRUSTGATE_TOKEN_AUDIENCE) is the RFC 8693 audience parameter; --audience
// stays the CI token's audience and never reaches the token endpoint.
func TestTokenAudienceIsSentAsTheAudienceParameter(t *testing.T) {
	ci := fakeJWT("ok")
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"flag", []string{"--token-audience", "https://deploy.example"}, nil, "https://deploy.example"},
		{"environment", nil, map[string]string{EnvTokenAudience: "https://artifacts.example"}, "https://artifacts.example"},
		{"flag over environment", []string{"--token-audience", "a"}, map[string]string{EnvTokenAudience: "b"}, "a"},
		{"none", nil, nil, ""},
		{"--audience is the CI token's", []string{"--audience", "https://ci-audience.example"}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			te := newTokenEndpoint(t, ci)
			env := map[string]string{"CI_JWT": ci}
			for k, v := range tt.env {
				env[k] = v
			}
			args := append([]string{"--server", te.srv.URL, "--connection", "deploy", "--token-env", "CI_JWT"}, tt.args...)
			if r := runCLI(t, env, args...); r.err != nil {
				t.Fatalf("exchange failed: %v\n%s", r.err, r.stderr)
			}
			got := te.received()
			if len(got) != 1 || got[0].Audience != tt.want {
				t.Fatalf("requests %+v; want one with audience %q", got, tt.want)
			}
		})
	}

	t.Run("an audience the connection refuses is explained", func(t *testing.T) {
		te := newTokenEndpoint(t, ci)
		te.respond = func(_ int, w http.ResponseWriter, req api.TokenRequest) bool {
			te.oauthError(w, http.StatusBadRequest, api.ErrInvalidTarget, "the requested audience is not one this connection issues tokens for (request req-3)")
			return true
		}
		r := runCLI(t, map[string]string{"CI_JWT": ci}, "--server", te.srv.URL, "--connection", "deploy", "--token-env", "CI_JWT", "--token-audience", "https://nope.example")
		if r.err == nil || !strings.Contains(r.stderr, "(request req-3)") || !strings.Contains(r.stderr, `"https://nope.example" is one of the connection's token_audience`) {
			t.Fatalf("err %v, stderr:\n%s", r.err, r.stderr)
		}
	})
}
