package console

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Failed sign-ins per client address: a burst of signInBurst, then one more every signInRefill.
// API keys are 256 random bits, so guessing is hopeless anyway; the limit keeps a script from
// turning the sign-in form into a load on the database and a flood in the audit of failures.
const (
	signInBurst  = 5
	signInRefill = 20 * time.Second
	// limiterTable bounds the addresses remembered (about 100 bytes each).
	limiterTable = 10_000
)

// limiter counts failed sign-ins per client: an IPv4 address, or an IPv6 /64 (one subscriber's
// allocation, so that an IPv6 caller cannot pick a fresh address per attempt). Only failures take
// from the bucket; a client whose bucket is empty is refused before its key is even checked. The
// table is bounded: when it is full, buckets that have refilled (and so say nothing) are
// forgotten, and if none has, newcomers share one overflow bucket rather than reset anyone's.
// Each replica counts its own failures.
type limiter struct {
	mu       sync.Mutex
	burst    int
	every    rate.Limit
	byClient map[netip.Addr]*rate.Limiter
	overflow *rate.Limiter
	max      int
}

func newLimiter(burst int, refill time.Duration, max int) *limiter {
	every := rate.Every(refill)
	return &limiter{burst: burst, every: every, byClient: map[netip.Addr]*rate.Limiter{},
		overflow: rate.NewLimiter(every, burst), max: max}
}

// clientOf is the bucket key of a client address.
func clientOf(ip string) netip.Addr {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Addr{}
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		a = netip.PrefixFrom(a, 64).Masked().Addr()
	}
	return a
}

// wait is how long the client must wait before its next attempt (0: it may try now).
func (l *limiter) wait(ip string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucket(clientOf(ip), now, false)
	if b == nil {
		return 0
	}
	tokens := b.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) / float64(l.every) * float64(time.Second))
}

// fail counts a failed sign-in of the client.
func (l *limiter) fail(ip string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bucket(clientOf(ip), now, true).AllowN(now, 1)
}

// bucket is the client's bucket; nil when it has none and create is false. A client without a
// bucket of its own while the table is full shares the overflow bucket.
func (l *limiter) bucket(key netip.Addr, now time.Time, create bool) *rate.Limiter {
	if b, ok := l.byClient[key]; ok {
		return b
	}
	if len(l.byClient) >= l.max {
		for k, old := range l.byClient {
			if old.TokensAt(now) >= float64(l.burst) {
				delete(l.byClient, k)
			}
		}
	}
	if len(l.byClient) >= l.max {
		return l.overflow
	}
	if !create {
		return nil
	}
	b := rate.NewLimiter(l.every, l.burst)
	l.byClient[key] = b
	return b
}
