package jwtverify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
)

// OIDC discovery (CONTRACT.md §1 issuer_url): a connection's keys are at the jwks_uri of its
// issuer's discovery document, <issuer_url>/.well-known/openid-configuration. The document is a
// cache entry like a JWKS (same fetch rules, max-age clamp, bounds, stale-on-failure, shared
// in-flight fetches), under DiscoveryKey(issuer) rather than its URL so that it never shares an
// entry with a JWKS URL that happens to be spelled the same. It is refreshed together with the
// JWKS when a token names an unknown kid (the issuer may have moved its keys), at most once per
// cool-down.

// ErrDiscovery is wrapped by the refusal of a discovery document that cannot vouch for keys.
var ErrDiscovery = errors.New("discovery: document refused")

// discoveryPrefix starts the cache key of a discovery document. No JWKS URL starts with it (they
// start with a scheme), so the two kinds of entry never collide.
const discoveryPrefix = "discovery "

// DiscoveryKey is the cache key (and Policy.Sources entry) of issuer's discovery document.
func DiscoveryKey(issuer string) string { return discoveryPrefix + issuer }

// DiscoveryURL is where issuer's discovery document is (OpenID Connect Discovery §4: a
// terminating "/" of the issuer is removed before the well-known path is appended).
func DiscoveryURL(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
}

// discoveryRefusal is a discovery document that was fetched but cannot be used. Said is the
// issuer the document named ("" when it named none), for the test endpoint's report.
type discoveryRefusal struct {
	said, why string
}

func (e *discoveryRefusal) Error() string { return e.why }
func (e *discoveryRefusal) Unwrap() error { return ErrDiscovery }

// fetchDiscovery fetches and checks issuer's discovery document: its issuer must equal issuer
// byte for byte (a document that names another issuer cannot vouch for keys of this one), and
// its jwks_uri must be a URL the cache may fetch (the JWKS URL rules: https unless AllowInsecure,
// no credentials, and no literal internal address; a name that resolves to one is refused when
// the keys are fetched).
func (c *JWKSCache) fetchDiscovery(ctx context.Context, issuer string) (*KeySet, error) {
	body, header, err := c.get(ctx, DiscoveryURL(issuer), "application/json", "the discovery document")
	if err != nil {
		return nil, err
	}
	var doc struct {
		Issuer  *string `json:"issuer"`
		JWKSURI *string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, &discoveryRefusal{why: fmt.Sprintf("%v: the discovery document is not a JSON object with string members issuer and jwks_uri: %v", ErrDiscovery, err)}
	}
	if doc.Issuer == nil {
		return nil, &discoveryRefusal{why: fmt.Sprintf("%v: the discovery document names no issuer", ErrDiscovery)}
	}
	if *doc.Issuer != issuer {
		return nil, &discoveryRefusal{said: *doc.Issuer, why: fmt.Sprintf("%v: the discovery document names the issuer %q, not %q: it cannot vouch for keys of this issuer (check issuer_url, trailing slash included)", ErrDiscovery, truncateText(*doc.Issuer, 200), issuer)}
	}
	if doc.JWKSURI == nil || *doc.JWKSURI == "" {
		return nil, &discoveryRefusal{said: *doc.Issuer, why: fmt.Sprintf("%v: the discovery document has no jwks_uri", ErrDiscovery)}
	}
	if why := c.jwksURIRefusal(*doc.JWKSURI); why != "" {
		return nil, &discoveryRefusal{said: *doc.Issuer, why: fmt.Sprintf("%v: its jwks_uri is refused: %s", ErrDiscovery, why)}
	}
	now := c.opts.Now()
	set := &KeySet{
		URL:       DiscoveryURL(issuer),
		Issuer:    *doc.Issuer,
		JWKSURI:   *doc.JWKSURI,
		FetchedAt: now,
		ExpiresAt: now.Add(maxAge(header.Get("Cache-Control"))),
	}
	set.issuerValue, set.discoveryDetail = set.Issuer, "jwks_uri "+set.JWKSURI
	set.size = set.footprint()
	return set, nil
}

// discoveryDoc returns issuer's discovery document, fetching it when it is not cached or due for
// a refresh (Keys for a DiscoveryKey, without building the key on the hot path).
func (c *JWKSCache) discoveryDoc(ctx context.Context, issuer string) (*KeySet, error) {
	if v, ok := c.hotDiscovery.Load(issuer); ok {
		e := v.(*cacheEntry)
		if set := e.set.Load(); set != nil {
			if now := c.opts.Now(); now.Before(set.ExpiresAt) {
				e.touch(now)
				return set, nil
			}
		}
	}
	return c.refresh(ctx, DiscoveryKey(issuer))
}

// jwksURIRefusal says why a discovery document's jwks_uri may not be fetched, or "". Literal
// internal addresses are refused here, with a reason that does not repeat the address; names are
// checked on every connection by the dialer.
func (c *JWKSCache) jwksURIRefusal(raw string) string {
	if len(raw) > 2048 {
		return "it is longer than 2048 bytes"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "it is not a URL"
	}
	if err := checkURL(u, c.opts.AllowInsecure); err != nil {
		return strings.TrimPrefix(err.Error(), "jwks: ")
	}
	if c.opts.AllowInsecure {
		return ""
	}
	if ip, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil {
		if why := connection.JWKSAddrRefusal(ip); why != "" {
			return "it names a " + why + " (allow with --allow-insecure-jwks)"
		}
	}
	return ""
}

// lookupDiscovered returns the key kid from the JWKS that doc (issuer's discovery document)
// points at. On an unknown kid the document is refreshed first (it may point elsewhere now), then
// the JWKS, each at most once per cool-down.
func (c *JWKSCache) lookupDiscovered(ctx context.Context, issuer string, doc *KeySet, kid string) (JWK, error) {
	if set, err := c.Keys(ctx, doc.JWKSURI); err == nil {
		if k, ok := set.lookup(kid); ok {
			return k, nil
		}
	}
	if fresh, err := c.refresh(ctx, DiscoveryKey(issuer)); err == nil {
		doc = fresh
	}
	return c.lookup(ctx, doc.JWKSURI, kid)
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
