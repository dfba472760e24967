// Package httpapi is the HTTP transport of Trustgate: the gin router, middleware (request ids,
// logging, metrics, body limits, authentication) and handlers. Handlers translate between HTTP and
// the use cases; they never decide a rule of CONTRACT.md §1 or §4 themselves.
//
// # The boundary
//
// httpapi talks to the use cases only — admin.Service (connections, audit trail), broker.Broker
// (token exchange, introspection), principal.Service (API-key authentication) — and never to the
// store: it does not import it. Errors come back as *connection.Error, whose Kind picks the status
// (problem.go), or as the broker's and principal's own errors; anything else is an internal
// failure. The database appears here only as a Pinger, for /readyz and to tell an outage (503)
// from a bug (500).
package httpapi

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/trustgate/terraform-provider-trustgate/server/internal/admin"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/broker"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/principal"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/signing"
)

// MaxBodyBytes caps every request body (CONTRACT.md §3: larger bodies get 413).
const MaxBodyBytes = 1 << 20

// Pinger checks that the database answers (*store.Store implements it).
type Pinger interface {
	Ping(ctx context.Context) error
}

// Deps is everything the router needs.
type Deps struct {
	// DB is pinged by /readyz, and after an internal error to tell an outage from a bug.
	DB         Pinger
	Admin      *admin.Service
	Broker     *broker.Broker
	Principals *principal.Service
	// Keys is the access-token signing key ring whose public keys /.well-known/jwks.json serves.
	Keys      *signing.KeyRing
	Opts      connection.Options
	PublicURL string
	Logger    *slog.Logger
	// Registry receives the HTTP metrics; /metrics serves it. A fresh registry per router keeps
	// several in-process servers (tests) apart.
	Registry *prometheus.Registry
	// Limiter, when set, rate-limits the token endpoint.
	Limiter *RateLimiter
	// TrustedProxies are the addresses or CIDRs of reverse proxies whose X-Forwarded-For /
	// X-Real-IP headers name the client. Empty: no proxy is trusted and the client address is the
	// socket's peer, so a client cannot pick its own address for the rate limiter or the audit log.
	TrustedProxies []string
	// Console, when set, serves the review console under /ui/ (CONTRACT.md §7) behind the same
	// request ids, logging, metrics and body limit as the API (*console.Console).
	Console interface{ Register(gin.IRouter) }
}

type handlers struct {
	Deps
	metrics *metrics
	// admit is admitExchange as a value made once (a method value per request would allocate).
	admit func(connectionID string, granted bool) error
}

// NewRouter builds the gin engine with every route of CONTRACT.md §3–§4.
func NewRouter(d Deps) *gin.Engine {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	h := &handlers{Deps: d, metrics: newMetrics(d.Registry)}
	h.admit = h.admitExchange
	if d.Broker != nil && d.Broker.Verifier != nil {
		registerJWKSMetrics(d.Registry, d.Broker.Verifier.Cache())
	}

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	// Route on the escaped path so that an encoded slash in {ref} stays inside its segment (a
	// %2F never reaches another route), and never redirect: every answer is the API's own.
	r.UseRawPath = true
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	// gin trusts forwarding headers from every peer by default; trust only configured proxies.
	if err := r.SetTrustedProxies(d.TrustedProxies); err != nil {
		d.Logger.Error("invalid trusted proxies; trusting none", "error", err)
		_ = r.SetTrustedProxies(nil)
	}
	r.ContextWithFallback = true
	// Middleware first: gin applies r.Use only to routes registered after it.
	r.Use(h.requestID, h.recover, h.logAndMeasure, h.limitBody)
	r.NoRoute(func(c *gin.Context) {
		problem(c, http.StatusNotFound, "no such endpoint: see the API reference in docs/")
	})
	r.NoMethod(func(c *gin.Context) {
		problem(c, http.StatusMethodNotAllowed, "this endpoint does not accept "+c.Request.Method)
	})

	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/readyz", h.readyz)
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{})))
	r.GET("/.well-known/jwks.json", h.jwks)
	r.GET("/.well-known/openid-configuration", h.openidConfiguration)

	r.POST("/v1/token", h.limitToken, h.token)
	r.POST("/v1/introspect", h.authPrincipal, h.introspect)
	r.GET("/v1/whoami", h.whoami)
	r.POST("/v1/revoke", h.revoke)

	v1 := r.Group("/v1", h.authPrincipal, h.rejectUnstorable)
	v1.POST("/workload-connections", h.createConnection)
	v1.GET("/workload-connections", h.listConnections)
	v1.GET("/workload-connections/:ref", h.getConnection)
	v1.PATCH("/workload-connections/:ref", h.patchConnection)
	v1.DELETE("/workload-connections/:ref", h.deleteConnection)
	v1.PUT("/workload-connections/:ref/status", h.setStatus)
	v1.POST("/workload-connections/:ref/proposal/approve", h.approveProposal)
	v1.DELETE("/workload-connections/:ref/proposal", h.discardProposal)
	v1.POST("/workload-connections/:ref/test", h.testToken)
	v1.POST("/workload-connections/:ref/impact", h.impact)
	v1.GET("/workload-connections/:ref/sightings", h.listSightings)
	v1.GET("/audit-events", h.listAudit)

	if d.Console != nil {
		d.Console.Register(r)
	}
	return r
}

func (h *handlers) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), readyTimeout)
	defer cancel()
	if err := h.DB.Ping(ctx); err != nil {
		// The cause goes to the log, not to this unauthenticated answer (it may name hosts).
		h.Logger.Warn("readiness check failed", "request_id", requestIDOf(c), "error", err)
		problem(c, http.StatusServiceUnavailable, "the database is not reachable; the server log says why")
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}
