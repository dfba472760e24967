package connection

import (
	"net/netip"
	"strings"
	"testing"
)

// TestJWKSAddrRefusalCoversEveryIPv6FormOfAnInternalAddress is the address table of CONTRACT.md §4
// (v2): every IPv4 and IPv6 form that reaches loopback, private, link-local or reserved space is
// refused with its reason, and public addresses (including a public IPv4 behind the well-known
// NAT64 prefix) are allowed. The JWKS dialer and Normalize both use this one function.
func TestJWKSAddrRefusalCoversEveryIPv6FormOfAnInternalAddress(t *testing.T) {
	refused := []struct{ addr, why string }{
		// IPv4.
		{"127.0.0.1", "loopback"}, {"127.255.255.254", "loopback"}, {"10.1.2.3", "private"},
		{"172.16.0.1", "private"}, {"192.168.1.1", "private"}, {"169.254.169.254", "link-local"},
		{"0.0.0.0", "unspecified"}, {"0.1.2.3", "reserved"}, {"100.64.0.1", "carrier-grade NAT"},
		{"192.0.0.8", "reserved"}, {"198.18.0.1", "reserved"}, {"224.0.0.1", "link-local"}, {"239.1.2.3", "multicast"},
		{"240.0.0.1", "reserved"}, {"255.255.255.255", "reserved"},
		// IPv6 native.
		{"::1", "loopback"}, {"::", "unspecified"}, {"fe80::1", "link-local"}, {"febf::1", "link-local"},
		{"fc00::1", "private"}, {"fd12:3456::1", "private"}, {"fec0::1", "site-local"},
		{"feff::1", "site-local"}, {"ff02::1", "link-local"}, {"ff05::2", "multicast"}, {"100::1", "discard-only"},
		// IPv4-mapped: judged as the IPv4 address.
		{"::ffff:127.0.0.1", "loopback"}, {"::ffff:10.0.0.1", "private"}, {"::ffff:169.254.169.254", "link-local"},
		// IPv4-compatible (::/96), refused whole, public embedded address included.
		{"::127.0.0.1", "IPv4-compatible"}, {"::10.0.0.1", "IPv4-compatible"}, {"::8.8.8.8", "IPv4-compatible"},
		// SIIT IPv4-translated.
		{"::ffff:0:127.0.0.1", "IPv4-translated"}, {"::ffff:0:8.8.8.8", "IPv4-translated"},
		// NAT64 well-known prefix: the embedded IPv4 address is checked.
		{"64:ff9b::127.0.0.1", "loopback address behind NAT64"}, {"64:ff9b::10.0.0.1", "private address behind NAT64"},
		{"64:ff9b::a9fe:a9fe", "link-local address behind NAT64"}, {"64:ff9b::192.168.0.1", "private"},
		{"64:ff9b::100.64.0.1", "carrier-grade NAT address behind NAT64"}, {"64:ff9b::0.0.0.0", "behind NAT64"},
		// NAT64 local-use prefix, refused whole.
		{"64:ff9b:1::a00:1", "local-use NAT64"}, {"64:ff9b:1:ffff::808:808", "local-use NAT64"},
		// 6to4, refused whole (the embedded IPv4 is only the site's router).
		{"2002:7f00:1::1", "6to4"}, {"2002:a00:1::1", "6to4"}, {"2002:808:808::1", "6to4"},
		// Teredo.
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"},
	}
	for _, tc := range refused {
		why := JWKSAddrRefusal(netip.MustParseAddr(tc.addr))
		if why == "" || !strings.Contains(why, tc.why) {
			t.Errorf("JWKSAddrRefusal(%s) = %q, want a refusal mentioning %q", tc.addr, why, tc.why)
		}
		if !BlockedJWKSAddr(netip.MustParseAddr(tc.addr)) {
			t.Errorf("BlockedJWKSAddr(%s) = false, want true", tc.addr)
		}
	}
	allowed := []string{"8.8.8.8", "140.82.112.3", "172.32.0.1", "192.169.0.1", "100.128.0.1", "223.255.255.255",
		"2606:4700:4700::1111", "2a00:1450:4001::200e", "::ffff:8.8.8.8", "64:ff9b::8.8.8.8", "64:ff9b::8c52:7003",
		"2003::1", "2001:1::1", "fe00::1"}
	for _, s := range allowed {
		if why := JWKSAddrRefusal(netip.MustParseAddr(s)); why != "" {
			t.Errorf("JWKSAddrRefusal(%s) = %q, want it allowed (a public address)", s, why)
		}
	}
	if JWKSAddrRefusal(netip.Addr{}) == "" {
		t.Error("the zero Addr must be refused")
	}
}
