package ciclient

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
)

func runRevoke(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := RunRevokeCLI(context.Background(), args, func(k string) string { return env[k] }, &stdout, &stderr)
	return result{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// TestRevokeAgainstTheServer runs `trustgate revoke` against a real server: a valid token is
// revoked; an expired one needs no revocation and is not an error; a token the server did not
// issue is a failure that says what to check. The token is never printed.
func TestRevokeAgainstTheServer(t *testing.T) {
	// The server and the CI issuer start an hour in the past, so that a token they issue first has
	// expired by the time the clock is moved to now.
	clock := ciissuer.NewClock(time.Now().Add(-time.Hour))
	s := testkit.Start(t, testkit.WithClock(clock.Now))
	iss := ciissuer.Start(t, devissuer.Options{Now: clock.Now})
	in := testkit.GenericInput("ci", iss.URL, iss.JWKSURL, s.URL)
	in.TokenTTL = &api.TokenTTL{Amount: 1, Unit: api.UnitMinutes}
	s.CreateActive(t, in)
	grant := func() string {
		return testkit.MustGrant(t, s.Exchange("ci", iss.MustMint(t, "generic", map[string]any{"aud": s.URL})), time.Minute)
	}
	expired := grant()
	clock.Advance(time.Hour)
	valid := grant()
	foreign := iss.MustMint(t, "generic", map[string]any{"aud": s.URL}) // a CI token: not the server's

	r := runRevoke(t, map[string]string{EnvAccessToken: valid, EnvServer: s.URL})
	if r.err != nil || r.stdout != "access token revoked\n" {
		t.Fatalf("revoking a valid token: %v\nstdout %q\nstderr %q", r.err, r.stdout, r.stderr)
	}
	assertNoSecret(t, r, valid)
	_, payload, _ := testkit.Segments(t, valid)
	if jti, _ := payload["jti"].(string); !s.App.Revocations.Revoked(jti) {
		t.Error("the server does not hold the token as revoked")
	}

	r = runRevoke(t, map[string]string{"TOK": expired}, "--server", s.URL, "--token-env", "TOK")
	if r.err != nil || !strings.Contains(r.stdout, "nothing to revoke") {
		t.Errorf("revoking an expired token: %v\nstdout %q\nstderr %q; want success saying there is nothing to revoke", r.err, r.stdout, r.stderr)
	}
	assertNoSecret(t, r, expired)

	r = runRevoke(t, map[string]string{"TOK": foreign}, "--server", s.URL, "--token-env", "TOK")
	if r.err == nil || !strings.Contains(r.stderr, "401") || !strings.Contains(r.stderr, "the server that issued it") {
		t.Errorf("revoking another server's token: %v\nstderr %q; want a failure saying what to check", r.err, r.stderr)
	}
	assertNoSecret(t, r, foreign)
}

func TestRevokeRetriesOnceOnAServerError(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/revoke" || r.Header.Get("Authorization") != "Bearer "+fakeJWT("t") || r.FormValue("token") != fakeJWT("t") {
			t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		}
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
	}))
	t.Cleanup(srv.Close)
	r := runRevoke(t, map[string]string{EnvAccessToken: fakeJWT("t")}, "--server", srv.URL)
	if r.err != nil || calls.Load() != 2 || !strings.Contains(r.stderr, "retrying once") {
		t.Errorf("after a 503: %v, %d calls, stderr %q; want one retry and success", r.err, calls.Load(), r.stderr)
	}
}

func TestRevokeCommandLine(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		args []string
		want string
	}{
		"no server":        {map[string]string{EnvAccessToken: fakeJWT("t")}, nil, "no server"},
		"two sources":      {nil, []string{"--server", "http://x", "--token-env", "A", "--token-file", "f"}, "one source"},
		"default unset":    {nil, []string{"--server", "http://x"}, EnvAccessToken + " is not set"},
		"not a JWT":        {map[string]string{"A": "tg_apikey"}, []string{"--server", "http://x", "--token-env", "A"}, "not an access token"},
		"stray argument":   {nil, []string{"--server", "http://x", "extra"}, "unexpected argument"},
		"missing file":     {nil, []string{"--server", "http://x", "--token-file", "/nonexistent/token"}, "cannot read the access token"},
		"negative timeout": {nil, []string{"--server", "http://x", "--timeout", "-1s"}, "--timeout"},
	} {
		t.Run(name, func(t *testing.T) {
			r := runRevoke(t, tc.env, tc.args...)
			if r.err == nil || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("err %v, stderr %q; want a failure saying %q", r.err, r.stderr, tc.want)
			}
		})
	}
	r := runRevoke(t, nil, "--help")
	if r.err != nil || !strings.Contains(r.stdout, "Usage: trustgate revoke") {
		t.Errorf("--help: %v %q", r.err, r.stdout)
	}
}
