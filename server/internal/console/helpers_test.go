package console_test

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
)

// client is a browser without a browser: a cookie jar and plain HTTP against a test server's
// console, following no redirects so that tests see them.
type client struct {
	t    *testing.T
	base string
	http *http.Client
}

func newClient(t *testing.T, s *testkit.Server) *client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, base: s.URL, http: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page is an answer of the console, read whole.
type page struct {
	Status int
	Header http.Header
	Body   string
}

func (c *client) do(req *http.Request) page {
	c.t.Helper()
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return page{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

func (c *client) get(path string) page {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.base+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.do(req)
}

// post sends a form, with extra headers (such as a browser's Sec-Fetch-Site).
func (c *client) post(path string, form url.Values, header ...string) page {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return c.do(req)
}

// signIn signs in with key through the sign-in form and fails the test unless it worked.
func (c *client) signIn(key string) {
	c.t.Helper()
	if p := c.trySignIn(key); p.Status != http.StatusSeeOther || p.Header.Get("Location") != "/ui/" {
		c.t.Fatalf("sign-in answered %d (Location %q), want 303 to /ui/:\n%s", p.Status, p.Header.Get("Location"), problemOf(p))
	}
}

// trySignIn submits the sign-in form with key as a browser would (the form's CSRF token first).
func (c *client) trySignIn(key string) page {
	c.t.Helper()
	form := c.get("/ui/sign-in")
	if form.Status != http.StatusOK {
		c.t.Fatalf("GET /ui/sign-in answered %d", form.Status)
	}
	return c.post("/ui/sign-in", url.Values{"csrf": {formValue(c.t, form, "csrf")}, "next": {"/ui/"}, "key": {key}})
}

// cookie is the value of the named cookie the jar holds for the console.
func (c *client) cookie(name string) string {
	u, _ := url.Parse(c.base + "/ui/")
	for _, ck := range c.http.Jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([a-z]+)" value="([^"]*)">`)

// formValue is the value of the first hidden input called name on the page.
func formValue(t *testing.T, p page, name string) string {
	t.Helper()
	for _, m := range hiddenInput.FindAllStringSubmatch(p.Body, -1) {
		if m[1] == name {
			return html.UnescapeString(m[2])
		}
	}
	t.Fatalf("the page has no hidden input %q:\n%s", name, testkit.Truncate(p.Body, 3000))
	return ""
}

// confirmForm is the form of an action's confirmation page, as the page fills it in.
func (c *client) confirmForm(path string) url.Values {
	c.t.Helper()
	p := c.get(path)
	if p.Status != http.StatusOK {
		c.t.Fatalf("GET %s answered %d: %s", path, p.Status, problemOf(p))
	}
	return url.Values{"csrf": {formValue(c.t, p, "csrf")}, "revision": {formValue(c.t, p, "revision")},
		"fingerprint": {formValue(c.t, p, "fingerprint")}}
}

var problemPara = regexp.MustCompile(`(?s)<p class="problem" role="alert">(.*?)</p>`)

// problemOf is the refusal a page shows, as text ("" when none).
func problemOf(p page) string {
	m := problemPara.FindStringSubmatch(p.Body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

func ptr[T any](v T) *T { return &v }
