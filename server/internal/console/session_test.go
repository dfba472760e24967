package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
	"github.com/trustgate/terraform-provider-trustgate/server/app"
)

// setCookie finds the named cookie among an answer's Set-Cookie headers.
func setCookie(t *testing.T, p page, name string) *http.Cookie {
	t.Helper()
	for _, line := range p.Header.Values("Set-Cookie") {
		ck, err := http.ParseSetCookie(line)
		if err == nil && ck.Name == name {
			return ck
		}
	}
	t.Fatalf("no %s cookie set; Set-Cookie: %q", name, p.Header.Values("Set-Cookie"))
	return nil
}

func TestSignInRefusesEveryWrongKeyWithTheSameWords(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	revoked := s.NewKey(t, "gone", api.RoleSecurityAdmin)
	if err := s.App.Principals.Revoke(context.Background(), "gone"); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, s)
	var first string
	for name, key := range map[string]string{
		"unknown":   "tg_" + strings.Repeat("A", 43),
		"malformed": "hunter2",
		"revoked":   revoked,
		"empty":     "",
	} {
		p := c.trySignIn(key)
		if p.Status != http.StatusUnauthorized {
			t.Errorf("%s key: status %d, want 401", name, p.Status)
		}
		msg := problemOf(p)
		if first == "" {
			first = msg
		}
		if msg == "" || msg != first {
			t.Errorf("%s key refused with %q, want the same words as every wrong key (%q)", name, msg, first)
		}
		if key != "" && strings.Contains(p.Body, key) {
			t.Errorf("the page after a refused %s key shows the key", name)
		}
		if c.cookie("trustgate_session") != "" {
			t.Fatalf("a %s key got a session cookie", name)
		}
	}

	p := c.trySignIn(s.SecurityKey)
	if p.Status != http.StatusSeeOther {
		t.Fatalf("the right key: status %d, want 303: %s", p.Status, problemOf(p))
	}
	ck := setCookie(t, p, "trustgate_session")
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure || ck.MaxAge != 12*3600 || ck.Path != "/ui/" {
		t.Errorf("session cookie %q: want HttpOnly, SameSite=Strict, not Secure on http, Max-Age 12 h, Path /ui/", p.Header.Values("Set-Cookie"))
	}
	home := c.get("/ui/")
	if home.Status != http.StatusOK || !strings.Contains(home.Body, "security") || !strings.Contains(home.Body, "Sign out") {
		t.Errorf("after sign-in /ui/ answered %d without the principal and a sign-out button", home.Status)
	}
}

func TestSessionCookieIsSecureWhenThePublicURLIsHTTPS(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t, testkit.WithConfig(func(c *app.Config) { c.PublicURL = "https://trustgate.example" }))
	c := newClient(t, s)
	form := c.get("/ui/sign-in")
	nonce := setCookie(t, form, "trustgate_signin")
	if !nonce.Secure {
		t.Errorf("the sign-in nonce cookie is not Secure on an https server")
	}
	// The jar keeps Secure cookies off plain http, so send the nonce by hand.
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/ui/sign-in", strings.NewReader(url.Values{
		"csrf": {formValue(t, form, "csrf")}, "key": {s.AuditorKey}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "trustgate_signin", Value: nonce.Value})
	p := c.do(req)
	if p.Status != http.StatusSeeOther {
		t.Fatalf("sign-in answered %d: %s", p.Status, problemOf(p))
	}
	if ck := setCookie(t, p, "trustgate_session"); !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
		t.Errorf("session cookie %q, want Secure, HttpOnly, SameSite=Strict", p.Header.Values("Set-Cookie"))
	}
}

func TestFailedSignInsAreRateLimitedPerClient(t *testing.T) {
	t.Parallel()
	clock := ciissuer.NewClock(time.Now())
	// The test's own address is a trusted proxy, so X-Forwarded-For can play a second client.
	s := testkit.Start(t, testkit.WithClock(clock.Now),
		testkit.WithConfig(func(c *app.Config) { c.TrustedProxies = []string{"127.0.0.1", "::1"} }))
	c := newClient(t, s)
	for i := range 5 {
		if p := c.trySignIn("tg_wrong"); p.Status != http.StatusUnauthorized {
			t.Fatalf("failure %d: status %d, want 401", i+1, p.Status)
		}
	}
	p := c.trySignIn(s.SecurityKey)
	if p.Status != http.StatusTooManyRequests || p.Header.Get("Retry-After") != "20" {
		t.Fatalf("after 5 failures the right key got %d (Retry-After %q), want 429 and 20 s", p.Status, p.Header.Get("Retry-After"))
	}
	if !strings.Contains(problemOf(p), "Wait 20 seconds") {
		t.Errorf("the refusal %q does not say how long to wait", problemOf(p))
	}

	other := newClient(t, s)
	form := other.get("/ui/sign-in")
	if p := other.post("/ui/sign-in", url.Values{"csrf": {formValue(t, form, "csrf")}, "key": {s.SecurityKey}},
		"X-Forwarded-For", "192.0.2.44"); p.Status != http.StatusSeeOther {
		t.Errorf("another client address was refused too: %d %s", p.Status, problemOf(p))
	}

	clock.Advance(20 * time.Second)
	c.signIn(s.SecurityKey)
}

func TestSessionsEnd(t *testing.T) {
	t.Parallel()
	clock := ciissuer.NewClock(time.Now())
	s := testkit.Start(t, testkit.WithClock(clock.Now))
	goesToSignIn := func(c *client, why string) {
		t.Helper()
		p := c.get("/ui/")
		if p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Header.Get("Location"), "/ui/sign-in") {
			t.Errorf("%s: /ui/ answered %d (Location %q), want 303 to the sign-in page", why, p.Status, p.Header.Get("Location"))
		}
	}

	t.Run("sign-out", func(t *testing.T) {
		c := newClient(t, s)
		c.signIn(s.SecurityKey)
		token := c.cookie("trustgate_session")
		home := c.get("/ui/")
		p := c.post("/ui/sign-out", url.Values{"csrf": {formValue(t, home, "csrf")}})
		if p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/ui/sign-in?signed_out=1" {
			t.Fatalf("sign-out answered %d to %q", p.Status, p.Header.Get("Location"))
		}
		goesToSignIn(c, "after sign-out")
		// The old cookie, kept by someone, is worthless: the session is gone on the server.
		replay := newClient(t, s)
		u, _ := url.Parse(s.URL + "/ui/")
		replay.http.Jar.SetCookies(u, []*http.Cookie{{Name: "trustgate_session", Value: token, Path: "/ui/"}})
		goesToSignIn(replay, "the signed-out cookie replayed")
	})

	t.Run("key revocation", func(t *testing.T) {
		key := s.NewKey(t, "alice", api.RoleSecurityAdmin)
		c := newClient(t, s)
		c.signIn(key)
		if p := c.get("/ui/"); p.Status != http.StatusOK {
			t.Fatalf("/ui/ answered %d", p.Status)
		}
		if err := s.App.Principals.Revoke(context.Background(), "alice"); err != nil {
			t.Fatal(err)
		}
		goesToSignIn(c, "after the key was revoked")
		// A POST of a revoked principal is refused, not redirected.
		if p := c.post("/ui/sign-out", url.Values{"csrf": {"x"}}); p.Status != http.StatusUnauthorized {
			t.Errorf("a POST after revocation answered %d, want 401", p.Status)
		}
	})

	t.Run("12 hours", func(t *testing.T) {
		c := newClient(t, s)
		c.signIn(s.AuditorKey)
		clock.Advance(12*time.Hour - time.Minute)
		if p := c.get("/ui/audit"); p.Status != http.StatusOK {
			t.Fatalf("a session of 11 h 59 min answered %d, want 200", p.Status)
		}
		clock.Advance(time.Minute)
		goesToSignIn(c, "after 12 hours")
	})
}

func TestASessionIsKnownToEveryReplica(t *testing.T) {
	t.Parallel()
	one := testkit.Start(t)
	two := testkit.StartOn(t, one.DSN, testkit.WithConfig(func(c *app.Config) {
		c.KEK, c.Audience = one.App.Config.KEK, one.App.Config.Audience
	}))
	c := newClient(t, one)
	c.signIn(one.SecurityKey)
	token := c.cookie("trustgate_session")

	other := newClient(t, two)
	u, _ := url.Parse(two.URL + "/ui/")
	other.http.Jar.SetCookies(u, []*http.Cookie{{Name: "trustgate_session", Value: token, Path: "/ui/"}})
	home := other.get("/ui/")
	if home.Status != http.StatusOK {
		t.Fatalf("the second replica answered %d to a session of the first, want 200", home.Status)
	}
	if p := other.post("/ui/sign-out", url.Values{"csrf": {formValue(t, home, "csrf")}}); p.Status != http.StatusSeeOther {
		t.Fatalf("sign-out on the second replica answered %d", p.Status)
	}
	if p := c.get("/ui/"); p.Status != http.StatusSeeOther {
		t.Errorf("the first replica still accepts a session signed out on the second (%d)", p.Status)
	}
}

func TestEveryAnswerCarriesTheSecurityHeaders(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	in := newClient(t, s)
	in.signIn(s.SecurityKey)
	out := newClient(t, s)
	for _, tc := range []struct {
		c    *client
		path string
	}{
		{out, "/ui"}, {out, "/ui/"}, {out, "/ui/sign-in"}, {out, "/ui/static/console.css"}, {out, "/ui/static/console.js"},
		{out, "/ui/static/nope.js"}, {in, "/ui/"}, {in, "/ui/audit"}, {in, "/ui/connections/nope"}, {in, "/ui/?name=%ff"},
	} {
		p := tc.c.get(tc.path)
		for h, want := range map[string]string{
			"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
			"X-Frame-Options":         "DENY",
			"Referrer-Policy":         "no-referrer",
			"X-Content-Type-Options":  "nosniff",
		} {
			if got := p.Header.Get(h); got != want {
				t.Errorf("GET %s (%d): %s = %q, want %q", tc.path, p.Status, h, got, want)
			}
		}
		if strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") && p.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s: a page with Cache-Control %q, want no-store", tc.path, p.Header.Get("Cache-Control"))
		}
		if strings.Contains(p.Body, "<script>") || strings.Contains(p.Body, "style=") {
			t.Errorf("GET %s: inline script or style in the page", tc.path)
		}
	}
}

func TestUnusableInputIsAnsweredNotStored(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	c := newClient(t, s)
	c.signIn(s.AuditorKey)
	for path, want := range map[string]int{
		"/ui/?name=%ff":                    http.StatusBadRequest,
		"/ui/?name=a%00b":                  http.StatusBadRequest,
		"/ui/audit?connection=%c3%28":      http.StatusBadRequest,
		"/ui/connections/%ff":              http.StatusBadRequest,
		"/ui/?status=deleted":              http.StatusUnprocessableEntity,
		"/ui/audit?since=yesterday":        http.StatusUnprocessableEntity,
		"/ui/audit?outcome=maybe":          http.StatusUnprocessableEntity,
		"/ui/?cursor=garbage":              http.StatusUnprocessableEntity,
		"/ui/connections/no-such-thing":    http.StatusNotFound,
		"/ui/connections/x/launch":         http.StatusNotFound,
		"/ui/audit?since=2026-12-03T14:30": http.StatusOK,
	} {
		p := c.get(path)
		if p.Status != want {
			t.Errorf("GET %s answered %d, want %d: %s", path, p.Status, want, problemOf(p))
		}
		if want != http.StatusOK && problemOf(p) == "" {
			t.Errorf("GET %s: the page does not say what is wrong", path)
		}
	}
}
