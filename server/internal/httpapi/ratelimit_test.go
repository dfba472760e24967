package httpapi

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
)

// newTestLimiter is a limiter on an injected clock (the test kit's): no test here depends on how
// fast it runs.
func newTestLimiter(perConnection, perClient float64, burst, table int) (*RateLimiter, *ciissuer.Clock) {
	c := ciissuer.NewClock(time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	return newRateLimiter(perConnection, perClient, burst, c.Now, table), c
}

// drain takes n requests for ip and reports how many were allowed.
func drain(l *RateLimiter, ip string, n int, now time.Time) int {
	ok := 0
	for range n {
		if allowed, _ := l.allowClient(ip, now); allowed {
			ok++
		}
	}
	return ok
}

func allActive(string) bool { return true }

// Issue 12, finding 8b: 100,000 distinct client addresses (the table's size, and more) neither
// reset the bucket of a client that is being limited nor touch any connection's buckets. Before,
// the 100,000th new address emptied the whole table, the per-connection buckets included.
func TestFillingTheClientTableResetsNobodysLimit(t *testing.T) {
	l, clock := newTestLimiter(1, 1, 5, ClientTableSize)
	now := clock.Now()
	if got := drain(l, "198.51.100.7", 10, now); got != 5 {
		t.Fatalf("victim: %d of 10 allowed, want the burst of 5", got)
	}
	for range 5 {
		l.allowConnection("conn-1", true, now, allActive)
	}
	if ok, _ := l.allowConnection("conn-1", true, now, allActive); ok {
		t.Fatal("the connection's granted bucket should be empty")
	}

	// The attack: 150,000 fresh addresses within the same second.
	for i := range 150_000 {
		l.allowClient(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String(), now)
	}

	if ok, d := l.allowClient("198.51.100.7", now); ok || d <= 0 {
		t.Fatalf("the limited client was let through after the table filled (ok %v, retry %s)", ok, d)
	}
	if ok, _ := l.allowConnection("conn-1", true, now, allActive); ok {
		t.Fatal("the connection's bucket was reset by the client flood")
	}
	entries := 0
	for i := range l.clients {
		entries += l.clients[i].lru.Len()
		if n := len(l.clients[i].byKey); n != l.clients[i].lru.Len() || n > l.clients[i].capacity {
			t.Fatalf("shard %d: %d keys, %d list entries, capacity %d", i, n, l.clients[i].lru.Len(), l.clients[i].capacity)
		}
	}
	if entries > ClientTableSize {
		t.Fatalf("%d client buckets, over the bound %d", entries, ClientTableSize)
	}
}

// Once buckets are idle (full again) the least recently used make room for newcomers, who then get
// buckets of their own; until then newcomers share the shard's overflow bucket.
func TestClientTableEvictsOnlyIdleBuckets(t *testing.T) {
	l, clock := newTestLimiter(0, 1, 2, clientShards) // one bucket per shard
	// Three addresses that land in one shard.
	var same []string
	var shard *clientShard
	// 64 shards: about 3 × 64 addresses are needed; a /16 leaves no chance of running out (the
	// shard seed is random per limiter, so a fixed small range could come up short).
	for i := 0; len(same) < 3; i++ {
		if i > 0xffff {
			t.Fatal("no three addresses of 10.0.0.0/16 share a shard")
		}
		ip := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}).String()
		s := &l.clients[shardIndex(l, clientKeyOf(ip))]
		if shard == nil {
			shard = s
		}
		if s == shard {
			same = append(same, ip)
		}
	}
	a, b, c := same[0], same[1], same[2]
	now := clock.Now()
	if got := drain(l, a, 3, now); got != 2 {
		t.Fatalf("a: %d allowed, want 2", got)
	}
	// a's bucket is not idle: b shares the overflow bucket (burst 2), and so does c.
	if got := drain(l, b, 1, now) + drain(l, c, 2, now); got != 2 {
		t.Fatalf("newcomers b and c got %d requests through the overflow bucket, want its burst of 2", got)
	}
	if got := drain(l, a, 1, now); got != 0 {
		t.Fatal("a's limit was reset by newcomers")
	}
	// Two seconds later a's bucket is full again: b takes its place with a bucket of its own.
	clock.Advance(2 * time.Second)
	now = clock.Now()
	if got := drain(l, b, 3, now); got != 2 {
		t.Fatalf("b after a went idle: %d allowed, want its own burst of 2", got)
	}
	if _, ok := shard.byKey[clientKeyOf(b)]; !ok || shard.lru.Len() != 1 {
		t.Fatal("b did not take over the idle bucket")
	}
}

// Issue 12, finding 8c: IPv6 clients are limited per /64; IPv4 (and IPv4-mapped IPv6) per address.
func TestClientKeyIsTheIPv4AddressOrTheIPv6Slash64(t *testing.T) {
	same := [][2]string{
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"},
		{"2001:db8:1:2::1", "2001:db8:1:2:abcd:1234:5678:9abc"},
		{"fe80::1%eth0", "fe80::2"},
		{"198.51.100.7", "::ffff:198.51.100.7"},
	}
	for _, p := range same {
		if clientKeyOf(p[0]) != clientKeyOf(p[1]) {
			t.Errorf("%s and %s must share a bucket", p[0], p[1])
		}
	}
	differ := [][2]string{
		{"2001:db8:1:2::1", "2001:db8:1:3::1"},
		{"198.51.100.7", "198.51.100.8"},
		{"198.51.100.7", "::c633:6407"},
	}
	for _, p := range differ {
		if clientKeyOf(p[0]) == clientKeyOf(p[1]) {
			t.Errorf("%s and %s must have different buckets", p[0], p[1])
		}
	}
}

// Issue 12, findings 8a and 8d at the limiter: refused requests drain their own bucket, names that
// are unknown or not active share one, and none of them creates a bucket of its own.
func TestConnectionBucketsSeparateGrantedFromRefusedAndShareOneForUnknownNames(t *testing.T) {
	l, clock := newTestLimiter(1, 0, 3, ClientTableSize)
	now := clock.Now()
	for range 10 {
		l.allowConnection("conn-1", false, now, allActive)
		l.allowConnection("", false, now, allActive)
	}
	for i := range 3 {
		if ok, _ := l.allowConnection("conn-1", true, now, allActive); !ok {
			t.Fatalf("granted request %d refused after a flood of refused ones", i+1)
		}
	}
	if ok, _ := l.allowConnection("conn-1", true, now, allActive); ok {
		t.Fatal("the granted bucket has a burst of 3")
	}
	if ok, d := l.allowConnection("", false, now, allActive); ok || d != time.Second {
		t.Fatalf("unknown names: ok %v retry %s, want the shared bucket empty for 1 s", ok, d)
	}
	if len(l.conns) != 1 {
		t.Fatalf("%d connection buckets, want 1 (unknown names share one)", len(l.conns))
	}
	// Refill follows the injected clock.
	clock.Advance(time.Second)
	if ok, _ := l.allowConnection("conn-1", true, clock.Now(), allActive); !ok {
		t.Fatal("one token is back after one second")
	}
}

// Buckets of connections that are gone or no longer active are dropped: the table is bounded by the
// real connections.
func TestConnectionBucketsOfDeletedConnectionsArePruned(t *testing.T) {
	l, clock := newTestLimiter(1, 0, 3, ClientTableSize)
	now := clock.Now()
	alive := map[string]bool{}
	for i := range 1000 {
		id := fmt.Sprintf("conn-%d", i)
		alive = map[string]bool{id: true} // only the newest still exists
		l.allowConnection(id, true, now, func(id string) bool { return alive[id] })
	}
	if n := len(l.conns); n > 64 {
		t.Fatalf("%d connection buckets for 1 live connection, want them pruned", n)
	}
}

// BenchmarkRateLimiter is the limiter's share of one exchange: the client bucket (1,024 clients
// rotating) and the connection's granted bucket.
func BenchmarkRateLimiter(b *testing.B) {
	l := NewRateLimiter(1e9, 1e9, 20)
	ips := make([]string, 1024)
	for i := range ips {
		ips[i] = netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}).String()
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		now := l.now()
		l.allowClient(ips[i&1023], now)
		l.allowConnection("7f0c1e9a-3c55-4a51-9d4e-0a3f6f3d2b11", true, now, allActive)
		i++
	}
}
