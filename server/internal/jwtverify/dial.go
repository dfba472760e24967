package jwtverify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"

	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
)

// addrRefusal is the dialer's refusal of one resolved address. Its text never names the address:
// fetchFailure puts the host name the URL gave in front of it.
type addrRefusal struct{ why string }

func (e *addrRefusal) Error() string { return "resolves to a " + e.why }
func (e *addrRefusal) Unwrap() error { return ErrAddressRefused }

// publicOnlyControl is a net.Dialer Control function: it runs after DNS resolution, on the address
// actually being connected to, so a name that resolves (or re-resolves, DNS rebinding) to an
// internal address is refused.
func publicOnlyControl(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return &addrRefusal{why: "malformed address"}
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return &addrRefusal{why: "malformed address"}
	}
	if why := connection.JWKSAddrRefusal(ip); why != "" {
		return &addrRefusal{why: why}
	}
	return nil
}

// fetchFailure turns an error of the HTTP client into the text users see in the test endpoint's
// report and in audit events. The transport's own texts name the resolved address ("dial tcp
// 10.1.2.3:443: connect: connection refused") and the DNS server's; CONTRACT.md §4 says an answer
// never shows the address a name resolved to, so the text is rebuilt from the kind of failure and
// the host name of the URL (the one being fetched, or the redirect target).
func fetchFailure(err error) error {
	host := "the JWKS host"
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil && u.Hostname() != "" {
			host = u.Hostname()
		}
	}
	var (
		refused  *addrRefusal
		dnsErr   *net.DNSError
		opErr    *net.OpError
		hostErr  x509.HostnameError
		authErr  x509.UnknownAuthorityError
		certErr  x509.CertificateInvalidError
		recErr   tls.RecordHeaderError
		alertErr tls.AlertError
	)
	switch {
	case errors.As(err, &refused):
		return fmt.Errorf("%w: %w: %s %s (allow with --allow-insecure-jwks)", ErrFetch, ErrAddressRefused, host, refused)
	case ue != nil && errors.Is(err, ErrInsecureURL):
		// A redirect to a URL the cache refuses; the text names the URL, which the JWKS host chose.
		return fmt.Errorf("%w: redirect refused: %w", ErrFetch, ue.Err)
	case errors.As(err, &dnsErr):
		switch {
		case dnsErr.IsNotFound:
			return fmt.Errorf("%w: %s does not resolve (no such host)", ErrFetch, host)
		case dnsErr.IsTimeout:
			return fmt.Errorf("%w: resolving %s timed out", ErrFetch, host)
		}
		return fmt.Errorf("%w: %s could not be resolved", ErrFetch, host)
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return fmt.Errorf("%w: %s did not answer within the timeout", ErrFetch, host)
	case errors.As(err, &hostErr):
		return fmt.Errorf("%w: the TLS certificate of %s is not valid for that name", ErrFetch, host)
	case errors.As(err, &authErr):
		return fmt.Errorf("%w: the TLS certificate of %s is signed by an unknown authority", ErrFetch, host)
	case errors.As(err, &certErr):
		return fmt.Errorf("%w: the TLS certificate of %s is invalid (expired or not yet valid?)", ErrFetch, host)
	case errors.As(err, &recErr), errors.As(err, &alertErr):
		return fmt.Errorf("%w: the TLS handshake with %s failed (does it serve https?)", ErrFetch, host)
	case errors.As(err, &opErr) && opErr.Op == "dial":
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			return fmt.Errorf("%w: %s refused the connection", ErrFetch, host)
		case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
			return fmt.Errorf("%w: %s is unreachable", ErrFetch, host)
		}
		return fmt.Errorf("%w: could not connect to %s", ErrFetch, host)
	case errors.Is(err, syscall.ECONNRESET):
		return fmt.Errorf("%w: %s reset the connection", ErrFetch, host)
	case errors.Is(err, errTooManyRedirects):
		return fmt.Errorf("%w: %s redirected more than 3 times", ErrFetch, host)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: %s closed the connection without an answer", ErrFetch, host)
	case strings.Contains(err.Error(), "HTTP response to HTTPS client"):
		return fmt.Errorf("%w: %s answered plain HTTP on an https URL", ErrFetch, host)
	}
	// Anything else: the transport's text may name an address, so only the host is reported.
	return fmt.Errorf("%w: the request to %s failed", ErrFetch, host)
}

// errTooManyRedirects is the client's redirect policy refusing a fourth redirect.
var errTooManyRedirects = errors.New("jwks: too many redirects")

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
