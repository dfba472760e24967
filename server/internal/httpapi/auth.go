package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/trustgate/terraform-provider-trustgate/server/internal/admin"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/audit"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/principal"
)

const (
	ctxPrincipalName = "trustgate.principal"
	ctxPrincipalRole = "trustgate.role"
)

func bearer(c *gin.Context) string {
	h := c.GetHeader("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// isAPIKey tells API keys (tg_…) from access tokens (JWTs) without parsing either.
func isAPIKey(s string) bool { return principal.LooksLikeKey(s) }

// authPrincipal requires an API key and puts its principal on the context.
func (h *handlers) authPrincipal(c *gin.Context) {
	key := bearer(c)
	if key == "" {
		c.Header("WWW-Authenticate", `Bearer realm="trustgate"`)
		problem(c, http.StatusUnauthorized, "missing API key: send Authorization: Bearer <api key> (create one with `trustgate keys create`)")
		return
	}
	if !isAPIKey(key) {
		c.Header("WWW-Authenticate", `Bearer realm="trustgate", error="invalid_token"`)
		problem(c, http.StatusUnauthorized, "this endpoint needs an API key, not an access token")
		return
	}
	p, err := h.Principals.Authenticate(c.Request.Context(), key)
	if err != nil {
		if errors.Is(err, principal.ErrUnknownKey) {
			c.Header("WWW-Authenticate", `Bearer realm="trustgate", error="invalid_token"`)
			problem(c, http.StatusUnauthorized, "unknown or revoked API key: check the key, or ask an operator for a new one")
			return
		}
		h.fail(c, err)
		return
	}
	c.Set(ctxPrincipalName, p.Name)
	c.Set(ctxPrincipalRole, p.Role)
	c.Next()
}

func actorOf(c *gin.Context) admin.Actor {
	return admin.Actor{Name: c.GetString(ctxPrincipalName), Role: c.GetString(ctxPrincipalRole)}
}

// metaOf is what the audit trail records about the request.
func metaOf(c *gin.Context) audit.Meta {
	return audit.Meta{RequestID: requestIDOf(c), RemoteAddr: c.ClientIP()}
}
