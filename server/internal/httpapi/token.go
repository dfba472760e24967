package httpapi

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/broker"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/signing"
)

// oauthError writes an RFC 6749 §5.2 error.
func oauthError(c *gin.Context, status int, code, desc string) {
	c.Header("Cache-Control", "no-store")
	c.JSON(status, api.OAuthError{Error: code, ErrorDescription: desc})
	c.Abort()
}

// token is POST /v1/token (RFC 8693).
func (h *handlers) token(c *gin.Context) {
	var req api.TokenRequest
	mt, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
	switch mt {
	case "application/x-www-form-urlencoded":
		if err := c.Request.ParseForm(); err != nil {
			status, desc := http.StatusBadRequest, "the form body could not be parsed"
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				status, desc = http.StatusRequestEntityTooLarge, "the request body is larger than 1 MiB"
			}
			oauthError(c, status, api.ErrInvalidRequest, desc+" (request "+requestIDOf(c)+")")
			return
		}
		f := c.Request.PostForm
		// RFC 6749 §3.2: parameters must not be repeated. Refusing them also means no proxy in
		// front can read a different value than the one this server acts on.
		for _, k := range []string{"grant_type", "subject_token", "subject_token_type", "connection", "audience"} {
			if len(f[k]) > 1 {
				oauthError(c, http.StatusBadRequest, api.ErrInvalidRequest, k+" is repeated: send each parameter once (request "+requestIDOf(c)+")")
				return
			}
		}
		req = api.TokenRequest{GrantType: f.Get("grant_type"), SubjectToken: f.Get("subject_token"),
			SubjectTokenType: f.Get("subject_token_type"), Connection: f.Get("connection"), Audience: f.Get("audience")}
	case "application/json":
		dec := json.NewDecoder(c.Request.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || dec.More() {
			oauthError(c, http.StatusBadRequest, api.ErrInvalidRequest,
				"the JSON body must be one object with only grant_type, subject_token, subject_token_type, connection and audience, all strings (request "+requestIDOf(c)+")")
			return
		}
	default:
		oauthError(c, http.StatusBadRequest, api.ErrInvalidRequest,
			"send the request as application/x-www-form-urlencoded (RFC 8693) or application/json (request "+requestIDOf(c)+")")
		return
	}
	var admit broker.Admit
	if h.Limiter != nil {
		admit = h.admit
	}
	resp, err := h.Broker.Exchange(c.Request.Context(), req, metaOf(c), admit)
	if err != nil {
		var limited *rateLimited
		if errors.As(err, &limited) {
			h.tooMany(c, limited.retry)
			return
		}
		var r *broker.Refusal
		if errors.As(err, &r) {
			status := http.StatusBadRequest
			if r.Internal {
				status = http.StatusServiceUnavailable
			}
			h.metrics.exchanges.WithLabelValues("denied").Inc()
			oauthError(c, status, r.Code, r.Description)
			return
		}
		h.metrics.exchanges.WithLabelValues("error").Inc()
		oauthError(c, http.StatusInternalServerError, "server_error", "internal error (request "+requestIDOf(c)+")")
		return
	}
	h.metrics.exchanges.WithLabelValues("granted").Inc()
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, resp)
}

// introspect is POST /v1/introspect (RFC 7662), for any API key.
func (h *handlers) introspect(c *gin.Context) {
	token := ""
	mt, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
	switch mt {
	case "application/x-www-form-urlencoded":
		if err := c.Request.ParseForm(); err == nil {
			token = c.Request.PostForm.Get("token")
		}
	case "application/json":
		var body struct {
			Token string `json:"token"`
		}
		if json.NewDecoder(c.Request.Body).Decode(&body) == nil {
			token = body.Token
		}
	}
	if token == "" {
		problem(c, http.StatusBadRequest, "send token=<access token> as a form (RFC 7662) or JSON body")
		return
	}
	claims, err := h.Broker.Workload(token)
	if err != nil {
		c.JSON(http.StatusOK, api.Introspection{Active: false})
		return
	}
	c.JSON(http.StatusOK, api.Introspection{Active: true, Sub: claims.Subject, Iss: claims.Issuer, Aud: claims.Audience,
		Exp: claims.Expiry.Unix(), Iat: claims.IssuedAt.Unix(), Jti: claims.ID, TokenType: "Bearer",
		Connection: claims.Connection, ConnectionID: claims.ConnectionID, Claims: claims.Claims})
}

// whoami answers for an API key or an access token.
func (h *handlers) whoami(c *gin.Context) {
	tok := bearer(c)
	if tok == "" || isAPIKey(tok) {
		h.authPrincipal(c)
		if c.IsAborted() {
			return
		}
		c.JSON(http.StatusOK, api.Whoami{Kind: "principal", Name: c.GetString(ctxPrincipalName), Role: c.GetString(ctxPrincipalRole)})
		return
	}
	claims, err := h.Broker.Workload(tok)
	if err != nil {
		c.Header("WWW-Authenticate", `Bearer realm="trustgate", error="invalid_token"`)
		detail := "the access token is expired, not issued by this server, or invalid: exchange a fresh CI token"
		switch {
		case errors.Is(err, broker.ErrInactive):
			detail = "the access token's workload connection is no longer active"
		case errors.Is(err, broker.ErrRetired):
			detail = "the access token was issued before its workload connection was last deactivated, so it is retired for good: exchange a fresh CI token"
		case errors.Is(err, broker.ErrRevoked):
			detail = "the access token was revoked: exchange a fresh CI token"
		case errors.Is(err, signing.ErrWithdrawn):
			detail = "the access token was signed by a key withdrawn after a compromise: exchange a fresh CI token"
		case errors.Is(err, broker.ErrAudience):
			detail = "the access token's audience is no longer one its workload connection issues tokens for (its token_audience changed): exchange a fresh CI token"
		}
		problem(c, http.StatusUnauthorized, detail)
		return
	}
	exp := claims.Expiry.UTC()
	c.JSON(http.StatusOK, api.Whoami{Kind: "workload", Sub: claims.Subject, Connection: claims.Connection,
		ConnectionID: claims.ConnectionID, ExpiresAt: &exp, Claims: claims.Claims})
}

func (h *handlers) jwks(c *gin.Context) {
	c.Header("Cache-Control", "public, max-age=300")
	c.Data(http.StatusOK, "application/json", h.Keys.JWKS())
}

func (h *handlers) openidConfiguration(c *gin.Context) {
	base := strings.TrimRight(h.PublicURL, "/")
	c.Header("Cache-Control", "public, max-age=3600")
	c.JSON(http.StatusOK, gin.H{
		"issuer":                                base,
		"jwks_uri":                              base + "/.well-known/jwks.json",
		"token_endpoint":                        base + "/v1/token",
		"introspection_endpoint":                base + "/v1/introspect",
		"revocation_endpoint":                   base + "/v1/revoke",
		"grant_types_supported":                 []string{api.GrantTypeTokenExchange},
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"token_endpoint_auth_methods_supported": []string{"none"},
		"response_types_supported":              []string{"token"},
		"subject_types_supported":               []string{"public"},
	})
}

// retryAfter formats a Retry-After header value in whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	s := int(d.Seconds() + 0.999)
	if s < 1 {
		s = 1
	}
	return strconv.Itoa(s)
}
