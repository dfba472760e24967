package exchange

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// blockedPrefixes are address ranges a JWKS fetch may not reach unless insecure JWKS URLs are
// allowed: besides what netip classifies as loopback, private, link-local, multicast or
// unspecified, the "this network" block, carrier-grade NAT and the limited broadcast address.
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("255.255.255.255/32"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
}

// refusedAddress says why ip may not be dialled for a JWKS fetch, or "" when it may.
func refusedAddress(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid():
		return "not an IP address"
	case ip.IsLoopback():
		return "loopback address"
	case ip.IsPrivate():
		return "private address"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		return "link-local address"
	case ip.IsUnspecified():
		return "unspecified address"
	case ip.IsMulticast(), ip.IsInterfaceLocalMulticast():
		return "multicast address"
	}
	for _, p := range blockedPrefixes {
		if p.Contains(ip) {
			return "reserved address"
		}
	}
	return ""
}

// publicOnlyControl is a net.Dialer Control function: it runs after DNS resolution, on the address
// actually being connected to, so a name that resolves (or re-resolves, DNS rebinding) to an
// internal address is refused.
func publicOnlyControl(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("jwks: refusing to dial %q: %w", address, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("jwks: refusing to dial %q: not an IP address", address)
	}
	if why := refusedAddress(ip); why != "" {
		return fmt.Errorf("%w: %s is a %s (allow with --allow-insecure-jwks)", ErrAddressRefused, ip, why)
	}
	return nil
}
