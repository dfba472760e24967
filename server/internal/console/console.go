// Package console is the review console (CONTRACT.md §7): server-rendered HTML pages under /ui/
// where security admins see what a workload connection trusts and what a proposal would change,
// activate, deactivate, approve and discard, and where auditors read the audit log.
//
// It is a second transport next to the admin API, not a second implementation: every read and
// every action goes through the same use cases (admin.Service for connections, the audit trail and
// exchange counts; session.Service for sign-in), so four eyes, fingerprint pinning, If-Match and
// the audit events are the API's. What the console decides itself is only how things look: which
// buttons a role is offered is asked of the domain (connection.Authorize), and a POST that a role
// may not make reaches the use case anyway and is refused there, with the API's reason.
//
// # Security of the pages
//
//   - Sign-in with an API key (a form POST) starts a server-side session (session package): the
//     cookie is HttpOnly, SameSite=Strict, Secure when the public URL is https, and lasts 12 h.
//   - Every POST carries a CSRF token bound to the session (or, for the sign-in form, to a nonce
//     cookie) and compared in constant time; a cross-site POST (Sec-Fetch-Site) is refused first.
//   - Every answer carries a Content-Security-Policy that allows only this server's own script and
//     style files (no inline script or style anywhere), X-Frame-Options: DENY and
//     Referrer-Policy: no-referrer, and pages are never cached.
//   - Failed sign-ins are limited per client address (limiter.go); every wrong key gets the same
//     words.
//   - Templates are html/template: claim values, descriptions and audit reasons are text, never
//     markup.
package console

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/trustgate/terraform-provider-trustgate/server/internal/admin"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/audit"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/console/session"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/httpapi"
)

// Prefix is where the console is mounted.
const Prefix = "/ui"

// Deps is what the console needs.
type Deps struct {
	Admin    *admin.Service
	Sessions *session.Service
	Opts     connection.Options
	// PublicURL decides the session cookie's Secure attribute (https) and is shown in the
	// activation block's comments.
	PublicURL string
	// Now is the clock of relative times, charts and the sign-in limiter (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// Console serves the pages. Make one with New and mount it with Register.
type Console struct {
	Deps
	pages   map[string]*template.Template
	assets  assets
	secure  bool
	limiter *limiter
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// New parses the templates and prepares the static files.
func New(d Deps) (*Console, error) {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Admin == nil || d.Sessions == nil {
		return nil, errors.New("console: Admin and Sessions are required")
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	as, err := loadAssets(sub)
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(d.PublicURL)
	return &Console{Deps: d, pages: pages, assets: as, secure: u != nil && u.Scheme == "https",
		limiter: newLimiter(signInBurst, signInRefill, limiterTable)}, nil
}

// Register mounts the console's routes on r under Prefix. Every answer gets the security headers;
// pages behind sign-in get the session (and, for POST, the CSRF check) first.
func (h *Console) Register(r gin.IRouter) {
	r.GET(Prefix, h.headers, func(c *gin.Context) { redirect(c, Prefix+"/") })
	g := r.Group(Prefix, h.headers, h.cleanInput)
	g.GET("/static/:file", h.static)
	g.GET("/sign-in", h.signInPage)
	g.POST("/sign-in", h.sameOrigin, h.signIn)

	in := g.Group("", h.sameOrigin, h.requireSession)
	in.POST("/sign-out", h.signOut)
	in.GET("/", h.connections)
	in.GET("/connections/:ref", h.connection)
	in.GET("/connections/:ref/:action", h.confirm)
	in.POST("/connections/:ref/:action", h.act)
	in.GET("/audit", h.audit)
}

// contentSecurityPolicy allows this server's own files and nothing else: no inline script, no
// inline style, no other origin, no framing, and forms may post only here.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// headers sets the security headers of every console answer, redirects and errors included.
func (h *Console) headers(c *gin.Context) {
	hd := c.Writer.Header()
	hd.Set("Content-Security-Policy", contentSecurityPolicy)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
	c.Next()
}

// cleanInput refuses a query, form value or {ref} that is not text a database can hold (invalid
// UTF-8, NUL), or that is absurdly long, before any use case sees it.
func (h *Console) cleanInput(c *gin.Context) {
	bad := func() {
		h.fail(c, http.StatusBadRequest, "The address or the form holds text that is not valid: remove the unusual characters and try again.")
	}
	if ref := c.Param("ref"); !textOK(ref, 256) {
		bad()
		return
	}
	for k, vs := range c.Request.URL.Query() {
		for _, v := range vs {
			if !textOK(k, 64) || !textOK(v, 1024) {
				bad()
				return
			}
		}
	}
	if c.Request.Method == http.MethodPost {
		if err := c.Request.ParseForm(); err != nil {
			bad()
			return
		}
		for k, vs := range c.Request.PostForm {
			for _, v := range vs {
				if !textOK(k, 64) || !textOK(v, 1024) {
					bad()
					return
				}
			}
		}
	}
	c.Next()
}

func textOK(s string, maxLen int) bool {
	return len(s) <= maxLen && utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// sameOrigin refuses a POST that the browser says comes from another site (Fetch Metadata),
// before the CSRF token is even looked at. Browsers that send no Sec-Fetch-Site still meet the
// token check.
func (h *Console) sameOrigin(c *gin.Context) {
	if c.Request.Method == http.MethodPost {
		if site := c.GetHeader("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
			h.fail(c, http.StatusForbidden, "This form was sent from another site, so it was refused. Open the console itself and try again.")
			return
		}
	}
	c.Next()
}

// layout is what every page shows around its content.
type layout struct {
	Title   string
	Nav     string // "connections" or "audit": the current section
	User    *session.Session
	CSRF    string
	Notice  string // a confirmation
	Problem string // why something was refused or failed
	Assets  assets
}

// page is implemented by every page's data (through the embedded layout).
type page interface{ base() *layout }

func (l *layout) base() *layout { return l }

// render executes the named page into a buffer (so that a template error never sends half a page)
// and writes it with status.
func (h *Console) render(c *gin.Context, status int, name string, p page) {
	l := p.base()
	l.Assets = h.assets
	if s, ok := c.Get(ctxSession); ok {
		l.User = s.(*session.Session)
		l.CSRF = session.CSRFToken(c.GetString(ctxToken))
	}
	t, ok := h.pages[name]
	if !ok {
		h.Logger.Error("console: no such page template", "page", name)
		c.String(http.StatusInternalServerError, "internal error")
		c.Abort()
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		h.Logger.Error("console: rendering a page", "page", name, "request_id", requestID(c), "error", err)
		c.String(http.StatusInternalServerError, "internal error; the server log has the details under request id "+requestID(c))
		c.Abort()
		return
	}
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
	c.Abort()
}

// messagePage is a page that only says something (an error, mostly).
type messagePage struct {
	layout
	Heading string
	Back    string // a link to go on from here
}

// fail answers status with a page that says msg.
func (h *Console) fail(c *gin.Context, status int, msg string) {
	h.render(c, status, "message", &messagePage{layout: layout{Title: http.StatusText(status), Problem: msg},
		Heading: http.StatusText(status), Back: Prefix + "/"})
}

// failErr answers a use case's error: a domain refusal by its kind, with its own words (the
// API's reason), anything else as an internal error whose details go to the log only.
func (h *Console) failErr(c *gin.Context, err error) {
	var de *connection.Error
	if errors.As(err, &de) {
		h.fail(c, httpapi.KindStatus(de.Kind), de.Error())
		return
	}
	h.Logger.Error("console: internal error", "request_id", requestID(c), "error", err)
	h.fail(c, http.StatusInternalServerError, "Something went wrong on the server, and nothing was changed. The server log has the details under request id "+requestID(c)+".")
}

// requestID is the request's X-Request-Id, which the router's middleware has set on the answer.
func requestID(c *gin.Context) string { return c.Writer.Header().Get("X-Request-Id") }

// metaOf is what the audit trail records about a console request: the same as for the API.
func metaOf(c *gin.Context) audit.Meta {
	return audit.Meta{RequestID: requestID(c), RemoteAddr: c.ClientIP()}
}

// redirect answers 303 See Other: after a POST the browser follows with a GET.
func redirect(c *gin.Context, to string) {
	c.Redirect(http.StatusSeeOther, to)
	c.Abort()
}

// connPath is the console path of a connection page (names are URL-safe, ids too, but escape
// anyway).
func connPath(ref string) string { return Prefix + "/connections/" + url.PathEscape(ref) }

// now is the console's clock in UTC.
func (h *Console) now() time.Time { return h.Now().UTC() }

// formatTime is how the console shows an absolute time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// ago is a time relative to now, in words.
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%d days ago", int(d/(24*time.Hour)))
}
