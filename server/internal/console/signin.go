package console

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/trustgate/terraform-provider-trustgate/server/internal/console/session"
)

const (
	// sessionCookie holds the session token; signInCookie the sign-in form's CSRF nonce.
	sessionCookie = "trustgate_session"
	signInCookie  = "trustgate_signin"
	cookiePath    = Prefix + "/"

	ctxSession = "trustgate.console.session"
	ctxToken   = "trustgate.console.token"
)

// setCookie sets one of the console's cookies: HttpOnly, SameSite=Strict, Secure on https, for
// the console's paths only. maxAge < 0 deletes it.
func (h *Console) setCookie(c *gin.Context, name, value string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{Name: name, Value: value, Path: cookiePath, MaxAge: maxAge,
		HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteStrictMode})
}

// requireSession lets the request through with a live session (and, for a POST, the session's
// CSRF token); otherwise a GET goes to the sign-in page and comes back afterwards, and a POST is
// refused. A session whose key has been revoked is no longer found, so it ends here.
func (h *Console) requireSession(c *gin.Context) {
	token, _ := c.Cookie(sessionCookie)
	sess, err := h.Sessions.Resume(c.Request.Context(), token)
	if err != nil {
		if !errors.Is(err, session.ErrNoSession) {
			h.failErr(c, err)
			return
		}
		if token != "" {
			h.setCookie(c, sessionCookie, "", -1)
		}
		if c.Request.Method == http.MethodGet {
			redirect(c, Prefix+"/sign-in?next="+url.QueryEscape(c.Request.URL.RequestURI()))
			return
		}
		h.fail(c, http.StatusUnauthorized, "Your session has ended, so nothing was done: sign in again.")
		return
	}
	c.Set(ctxSession, sess)
	c.Set(ctxToken, token)
	if c.Request.Method == http.MethodPost && !session.ValidCSRF(token, c.Request.PostForm.Get("csrf")) {
		h.fail(c, http.StatusForbidden, "This form is out of date or was not sent by this console, so nothing was done: reload the page and try again.")
		return
	}
	c.Next()
}

// sessionOf is the signed-in session of a request that passed requireSession.
func sessionOf(c *gin.Context) *session.Session {
	s, _ := c.Get(ctxSession)
	return s.(*session.Session)
}

type signInPage struct {
	layout
	Next string
}

// signInPage shows the sign-in form, or goes on if the browser is signed in already. The form's
// CSRF token is bound to a nonce cookie: there is no session yet, and without it a page elsewhere
// could sign a visitor in with the attacker's key.
func (h *Console) signInPage(c *gin.Context) {
	next := safeNext(c.Query("next"))
	if token, err := c.Cookie(sessionCookie); err == nil {
		if _, err := h.Sessions.Resume(c.Request.Context(), token); err == nil {
			redirect(c, next)
			return
		}
	}
	p := &signInPage{layout: layout{Title: "Sign in"}, Next: next}
	if c.Query("signed_out") != "" {
		p.Notice = "You have signed out."
	}
	h.renderSignIn(c, http.StatusOK, p)
}

// renderSignIn renders the sign-in form with a CSRF token bound to the nonce cookie, which it
// sets when the browser has none yet.
func (h *Console) renderSignIn(c *gin.Context, status int, p *signInPage) {
	nonce, err := c.Cookie(signInCookie)
	if err != nil || !session.WellFormed(nonce) {
		if nonce, err = session.NewNonce(); err != nil {
			h.failErr(c, err)
			return
		}
		h.setCookie(c, signInCookie, nonce, int(session.Lifetime.Seconds()))
	}
	p.CSRF = session.CSRFToken(nonce)
	h.render(c, status, "sign-in", p)
}

// signIn trades an API key for a session. Every wrong key gets the same answer (401 and the same
// words); a client with too many recent failures is refused (429) before its key is looked at.
func (h *Console) signIn(c *gin.Context) {
	p := &signInPage{layout: layout{Title: "Sign in"}, Next: safeNext(c.Request.PostForm.Get("next"))}
	nonce, _ := c.Cookie(signInCookie)
	if !session.ValidCSRF(nonce, c.Request.PostForm.Get("csrf")) {
		p.Problem = "The sign-in form had expired or did not come from this console. Try again."
		h.renderSignIn(c, http.StatusForbidden, p)
		return
	}
	now := h.now()
	if d := h.limiter.wait(c.ClientIP(), now); d > 0 {
		h.Logger.Warn("console sign-in refused: too many failures from this address", "request_id", requestID(c), "remote_addr", c.ClientIP())
		secs := int(math.Ceil(d.Seconds()))
		c.Header("Retry-After", strconv.Itoa(secs))
		p.Problem = fmt.Sprintf("Too many failed sign-ins from your address. Wait %d seconds, then try again.", secs)
		h.renderSignIn(c, http.StatusTooManyRequests, p)
		return
	}
	token, sess, err := h.Sessions.SignIn(c.Request.Context(), strings.TrimSpace(c.Request.PostForm.Get("key")))
	if errors.Is(err, session.ErrBadKey) {
		h.limiter.fail(c.ClientIP(), now)
		h.Logger.Info("console sign-in refused: unknown or revoked API key", "request_id", requestID(c), "remote_addr", c.ClientIP())
		p.Problem = "This API key was not accepted. Check that you pasted the whole key (it starts with tg_), or ask an operator for a new one."
		h.renderSignIn(c, http.StatusUnauthorized, p)
		return
	}
	if err != nil {
		h.failErr(c, err)
		return
	}
	if old, err := c.Cookie(sessionCookie); err == nil {
		// A browser signing in again leaves no second session of its own behind.
		_ = h.Sessions.SignOut(c.Request.Context(), old)
	}
	h.Logger.Info("console sign-in", "request_id", requestID(c), "remote_addr", c.ClientIP(), "principal", sess.Principal)
	h.setCookie(c, sessionCookie, token, int(session.Lifetime.Seconds()))
	h.setCookie(c, signInCookie, "", -1)
	redirect(c, p.Next)
}

// signOut ends the session on the server, so the cookie is worthless even if it was copied.
func (h *Console) signOut(c *gin.Context) {
	token := c.GetString(ctxToken)
	if err := h.Sessions.SignOut(c.Request.Context(), token); err != nil {
		h.failErr(c, err)
		return
	}
	h.setCookie(c, sessionCookie, "", -1)
	redirect(c, Prefix+"/sign-in?signed_out=1")
}

// safeNext is where to go after signing in: a console path given by the sign-in link, or the
// connections page. Anything that could leave the console (another host, a scheme, //host,
// backslashes, dot segments) is ignored.
func safeNext(next string) string {
	home := Prefix + "/"
	if !strings.HasPrefix(next, home) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return home
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, home) ||
		strings.HasPrefix(u.Path, Prefix+"/sign-") || strings.Contains(u.Path+"/", "/../") || strings.Contains(u.Path+"/", "/./") {
		return home
	}
	return u.RequestURI()
}
