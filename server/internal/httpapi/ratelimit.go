package httpapi

import (
	"container/list"
	"hash/maphash"
	"net/netip"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

// RateLimiter limits token exchanges (CONTRACT.md §4) with token buckets, each dimension at its own
// rate and all with the same burst. A zero rate disables that dimension.
//
// Per client: one bucket per IPv4 address or IPv6 /64 (one subscriber's allocation: a per-address
// bucket would give an IPv6 caller 2^64 of them), taken before the body is read. The table is
// bounded (ClientTableSize): a new client takes the place of the least recently used bucket only
// when that bucket is idle (full again, so forgetting it changes nothing); when no bucket is idle,
// the newcomer shares its shard's overflow bucket. Filling the table therefore never resets anyone's
// limit, and memory stays bounded.
//
// Per connection, charged once the broker knows the outcome (Admit):
//   - an active connection has two buckets: one for requests whose token passed every check and
//     one for the others. A caller whose tokens fail (a forged signature, or a valid token of
//     another repository on a shared issuer) drains only the second, so it cannot exhaust the
//     budget of the CI jobs whose tokens pass, while the refused traffic (and the audit rows it
//     writes) stays bounded per connection. The signature check runs before either bucket is
//     charged; its CPU cost is bounded per client.
//   - names that are unknown or not active share one bucket, so a made-up name and a draft's or an
//     inactive connection's name are limited alike and answered alike (invalid_target): 429s do
//     not reveal which names exist. (An active connection is told apart by invalid_grant anyway,
//     as CONTRACT.md §4 specifies.) Buckets exist for real connections only, plus that one.
type RateLimiter struct {
	perConnection rate.Limit
	perClient     rate.Limit
	burst         int
	now           func() time.Time

	seed    maphash.Seed
	clients [clientShards]clientShard

	connMu    sync.Mutex
	conns     map[string]*connBuckets // by connection id; guarded by connMu
	pruneAt   int                     // guarded by connMu: len(conns) that triggers a prune
	notActive *rate.Limiter
}

// ClientTableSize bounds the per-client buckets (about 200 bytes each).
const ClientTableSize = 100_000

// clientShards split the client table (and its lock) so that concurrent exchanges from different
// clients rarely wait on each other.
const clientShards = 64

type clientShard struct {
	mu       sync.Mutex
	byKey    map[clientKey]*list.Element // values are *clientBucket
	lru      list.List                   // most recently used at the front
	overflow *rate.Limiter               // shared by newcomers while no bucket is idle
	capacity int
}

// clientKey is an IPv4 address or an IPv6 /64 prefix, as 16 bytes.
type clientKey [16]byte

type clientBucket struct {
	key clientKey
	lim *rate.Limiter
}

type connBuckets struct {
	granted, refused *rate.Limiter
}

// NewRateLimiter returns a limiter allowing perConnection and perClient requests per second with
// the given burst.
func NewRateLimiter(perConnection, perClient float64, burst int) *RateLimiter {
	return newRateLimiter(perConnection, perClient, burst, time.Now, ClientTableSize)
}

func newRateLimiter(perConnection, perClient float64, burst int, now func() time.Time, tableSize int) *RateLimiter {
	if burst < 1 {
		burst = 1
	}
	l := &RateLimiter{perConnection: rate.Limit(perConnection), perClient: rate.Limit(perClient), burst: burst, now: now,
		seed: maphash.MakeSeed(), conns: map[string]*connBuckets{}, pruneAt: 64,
		notActive: rate.NewLimiter(rate.Limit(perConnection), burst)}
	for i := range l.clients {
		l.clients[i] = clientShard{byKey: map[clientKey]*list.Element{}, capacity: max(1, tableSize/clientShards),
			overflow: rate.NewLimiter(rate.Limit(perClient), burst)}
	}
	return l
}

// clientKeyOf is the bucket key of a client address: the address for IPv4 (and IPv4-mapped IPv6),
// the /64 prefix for IPv6. Text that is not an address (never produced by gin) shares one key.
func clientKeyOf(ip string) clientKey {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return clientKey{}
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		a = netip.PrefixFrom(a, 64).Masked().Addr()
	}
	return a.As16()
}

// allowClient takes one request from the client's bucket.
func (l *RateLimiter) allowClient(ip string, now time.Time) (bool, time.Duration) {
	if l.perClient <= 0 {
		return true, 0
	}
	key := clientKeyOf(ip)
	return take(l.clients[shardIndex(l, key)].bucket(key, l, now), now)
}

func shardIndex(l *RateLimiter, key clientKey) uint64 {
	return maphash.Comparable(l.seed, key) % clientShards
}

// bucket returns key's bucket, making room for it as the type's comment says.
func (s *clientShard) bucket(key clientKey, l *RateLimiter, now time.Time) *rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.byKey[key]; ok {
		s.lru.MoveToFront(el)
		return el.Value.(*clientBucket).lim
	}
	if s.lru.Len() < s.capacity {
		b := &clientBucket{key: key, lim: rate.NewLimiter(l.perClient, l.burst)}
		s.byKey[key] = s.lru.PushFront(b)
		return b.lim
	}
	el := s.lru.Back()
	b := el.Value.(*clientBucket)
	if b.lim.TokensAt(now) < float64(l.burst) {
		// No idle bucket to forget: the newcomer shares the overflow bucket rather than reset
		// someone's limit.
		return s.overflow
	}
	// An idle bucket is full, exactly as a new one: it is handed over as it is.
	delete(s.byKey, b.key)
	b.key = key
	s.byKey[key] = el
	s.lru.MoveToFront(el)
	return b.lim
}

// allowConnection charges a token request to its connection once the outcome is known:
// connectionID is "" for a name that is unknown or not active; granted says whether the token
// passed every check. active reports whether a connection id is still an active connection (it
// prunes the buckets of deleted or deactivated connections).
func (l *RateLimiter) allowConnection(connectionID string, granted bool, now time.Time, active func(id string) bool) (bool, time.Duration) {
	if l.perConnection <= 0 {
		return true, 0
	}
	if connectionID == "" {
		return take(l.notActive, now)
	}
	l.connMu.Lock()
	b := l.conns[connectionID]
	if b == nil {
		if len(l.conns) >= l.pruneAt {
			for id := range l.conns {
				if !active(id) {
					delete(l.conns, id)
				}
			}
			l.pruneAt = max(64, 2*len(l.conns))
		}
		b = &connBuckets{granted: rate.NewLimiter(l.perConnection, l.burst), refused: rate.NewLimiter(l.perConnection, l.burst)}
		l.conns[connectionID] = b
	}
	l.connMu.Unlock()
	if granted {
		return take(b.granted, now)
	}
	return take(b.refused, now)
}

// take removes one token from lim, or says how long until one is available.
func take(lim *rate.Limiter, now time.Time) (bool, time.Duration) {
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// limitToken applies the per-client limit before the body is read. The per-connection limits need
// the outcome of the exchange, so the broker asks for them (admitExchange).
func (h *handlers) limitToken(c *gin.Context) {
	if h.Limiter == nil {
		c.Next()
		return
	}
	if ok, d := h.Limiter.allowClient(c.ClientIP(), h.Limiter.now()); !ok {
		h.tooMany(c, d)
		return
	}
	c.Next()
}

// rateLimited is admitExchange's refusal; the token handler answers it with 429.
type rateLimited struct{ retry time.Duration }

func (e *rateLimited) Error() string { return "rate limited" }

// admitExchange is the broker's per-connection admission hook (broker.Meta.Admit).
func (h *handlers) admitExchange(connectionID string, granted bool) error {
	ok, d := h.Limiter.allowConnection(connectionID, granted, h.Limiter.now(), func(id string) bool {
		e := h.Broker.Catalog.ByID(id)
		return e != nil && e.Active()
	})
	if !ok {
		return &rateLimited{retry: d}
	}
	return nil
}

func (h *handlers) tooMany(c *gin.Context, d time.Duration) {
	c.Header("Retry-After", retryAfter(d))
	h.metrics.exchanges.WithLabelValues("rate_limited").Inc()
	oauthError(c, 429, "slow_down", "too many token requests; retry after "+retryAfter(d)+" s (request "+requestIDOf(c)+")")
}
