package jwtverify

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
)

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
	if why := connection.JWKSAddrRefusal(ip); why != "" {
		return fmt.Errorf("%w: %s is a %s (allow with --allow-insecure-jwks)", ErrAddressRefused, ip, why)
	}
	return nil
}
