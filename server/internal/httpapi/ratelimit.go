package httpapi

import (
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

// RateLimiter limits token exchanges per connection name and per client address, each with its own
// token bucket. A zero rate disables that dimension.
type RateLimiter struct {
	perConnection rate.Limit
	perClient     rate.Limit
	burst         int

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

// NewRateLimiter returns a limiter allowing perConnection and perClient requests per second with
// the given burst.
func NewRateLimiter(perConnection, perClient float64, burst int) *RateLimiter {
	if burst < 1 {
		burst = 1
	}
	return &RateLimiter{perConnection: rate.Limit(perConnection), perClient: rate.Limit(perClient), burst: burst,
		buckets: map[string]*rate.Limiter{}}
}

// bucketLimit bounds memory: past it, idle buckets are forgotten (a fresh bucket is full, which errs
// towards letting requests through, never towards refusing a real client).
const bucketLimit = 100000

func (l *RateLimiter) allow(key string, r rate.Limit, now time.Time) (bool, time.Duration) {
	if r <= 0 {
		return true, 0
	}
	l.mu.Lock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= bucketLimit {
			l.buckets = map[string]*rate.Limiter{}
		}
		b = rate.NewLimiter(r, l.burst)
		l.buckets[key] = b
	}
	l.mu.Unlock()
	res := b.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// limitToken applies the per-client-address limit before the body is read. The per-connection
// limit needs the connection name, which may arrive form-encoded or as JSON, so the token handler
// applies it after parsing the request (limitConnection).
func (h *handlers) limitToken(c *gin.Context) {
	if h.Limiter == nil {
		c.Next()
		return
	}
	if ok, d := h.Limiter.allow("client:"+c.ClientIP(), h.Limiter.perClient, time.Now()); !ok {
		h.tooMany(c, d)
		return
	}
	c.Next()
}

// limitConnection applies the per-connection limit to a parsed token request. It answers 429
// itself and returns false when the connection is over its limit.
func (h *handlers) limitConnection(c *gin.Context, name string) bool {
	// Only real connections get a bucket: names an anonymous caller makes up would otherwise fill
	// the limiter's table (and, past its bound, reset everyone's buckets).
	if h.Limiter == nil || name == "" || h.Broker.Catalog.ByName(name) == nil {
		return true
	}
	if ok, d := h.Limiter.allow("connection:"+name, h.Limiter.perConnection, time.Now()); !ok {
		h.tooMany(c, d)
		return false
	}
	return true
}

func (h *handlers) tooMany(c *gin.Context, d time.Duration) {
	c.Header("Retry-After", retryAfter(d))
	h.metrics.exchanges.WithLabelValues("rate_limited").Inc()
	oauthError(c, 429, "slow_down", "too many token requests; retry after "+retryAfter(d)+" s (request "+requestIDOf(c)+")")
}
