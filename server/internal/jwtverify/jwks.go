// Package jwtverify validates the OIDC JWTs that CI systems issue (CONTRACT.md §4): a per-URL JWKS cache
// with safe fetching, and a Verifier that runs every check of a token in order and reports each one
// (for the test endpoint) together with the kind of the first failure (for the token endpoint).
package jwtverify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"golang.org/x/sync/singleflight"
)

// JWKS cache defaults (CONTRACT.md §4).
const (
	DefaultJWKSTimeout     = 5 * time.Second
	DefaultJWKSMaxBytes    = 1 << 20
	DefaultJWKSMaxAge      = time.Hour
	MinJWKSMaxAge          = 5 * time.Minute
	MaxJWKSMaxAge          = 24 * time.Hour
	DefaultRefreshCooldown = 30 * time.Second
	// MaxStale is how long cached keys keep serving after the last successful fetch when
	// refreshes fail.
	MaxStale = 24 * time.Hour
	// MinRSABits and MaxRSABits bound the RSA moduli accepted from a JWKS. The upper bound keeps a
	// hostile JWKS from making each verification expensive: RSA verification time grows with the
	// square of the modulus size, and a 97,600-bit modulus (which still fits a 16 KiB token) costs
	// a quarter of a second of CPU per token.
	MinRSABits = 2048
	MaxRSABits = 8192
	// MaxCachedURLs and MaxCachedBytes bound the cache (CONTRACT.md §4): past either, the least
	// recently used URLs are forgotten. Bytes are the estimated memory the parsed key sets hold.
	MaxCachedURLs  = 1000
	MaxCachedBytes = 16 << 20
)

// Errors returned by the cache. Wrapped errors carry the details.
var (
	ErrUnknownKID     = errors.New("jwks: no usable key with this kid")
	ErrFetch          = errors.New("jwks: fetch failed")
	ErrInsecureURL    = errors.New("jwks: URL must be https")
	ErrAddressRefused = errors.New("jwks: refusing to connect")
)

// JWKSOptions configure a JWKSCache. The zero value is the production configuration.
type JWKSOptions struct {
	// AllowInsecure allows http URLs and loopback, private and link-local addresses
	// (--allow-insecure-jwks, for tests and demos).
	AllowInsecure bool
	// Timeout of one fetch, including redirects (default 5 s).
	Timeout time.Duration
	// MaxBytes caps the response body (default 1 MiB).
	MaxBytes int64
	// RefreshCooldown is the minimum time between two fetch attempts for one URL (default 30 s).
	RefreshCooldown time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// MaxURLs and MaxCacheBytes bound the cache (default MaxCachedURLs and MaxCachedBytes).
	MaxURLs       int
	MaxCacheBytes int64
}

// JWK is one usable public key of a JWKS.
type JWK struct {
	KID string
	// Alg is the key's `alg` member, empty when the JWKS does not pin one.
	Alg string
	Key crypto.PublicKey
	// desc is describeKey's text, computed once when the JWKS is parsed.
	desc string
}

// KeySet is the cached state of one JWKS URL.
type KeySet struct {
	URL  string
	Keys []JWK
	// Ignored lists the keys that were refused, with the reason (e.g. RSA keys under 2048 bits).
	Ignored []IgnoredKey
	// FetchedAt is the time of the last successful fetch; ExpiresAt when it is due for a refresh.
	FetchedAt time.Time
	ExpiresAt time.Time
	// LastError is the error of the last fetch attempt when it failed after FetchedAt.
	LastError string
	// Issuer and JWKSURI are set, and Keys empty, when the entry is an issuer's OIDC discovery
	// document (see DiscoveryKey): what it says its issuer is, and where its keys are.
	Issuer  string
	JWKSURI string
	// issuerValue and discoveryDetail are the discovery check's values, boxed once per fetch.
	issuerValue     any
	discoveryDetail string
	// size is the estimated memory the set holds, for the cache's byte bound.
	size int64
}

// IgnoredKey is a key of a JWKS that cannot be used to verify tokens.
type IgnoredKey struct {
	KID    string
	Reason string
}

func (s *KeySet) lookup(kid string) (JWK, bool) {
	if kid == "" {
		// A token without kid is accepted only when the choice is unambiguous.
		if len(s.Keys) == 1 {
			return s.Keys[0], true
		}
		return JWK{}, false
	}
	for _, k := range s.Keys {
		if k.KID == kid {
			return k, true
		}
	}
	return JWK{}, false
}

func (s *KeySet) ignoredReason(kid string) string {
	for _, k := range s.Ignored {
		if k.KID == kid {
			return k.Reason
		}
	}
	return ""
}

// cacheEntry is the state of one URL. set and used are read without the cache's lock on the hot
// path; the other fields are guarded by JWKSCache.mu.
type cacheEntry struct {
	set  atomic.Pointer[KeySet] // nil until the first successful fetch
	used atomic.Int64           // the clock's UnixNano at the last lookup, for LRU eviction

	lastAttempt time.Time
	lastErr     error
	size        int64 // what this entry counts in JWKSCache.bytes
}

// touchEvery is the resolution of the LRU clock: a lookup writes the entry's last-use time only
// when it moved by more than this, so concurrent exchanges on one URL do not all write the same
// cache line.
const touchEvery = int64(time.Millisecond)

func (e *cacheEntry) touch(now time.Time) {
	if n := now.UnixNano(); n-e.used.Load() > touchEvery {
		e.used.Store(n)
	}
}

// JWKSStats are counters and sizes for metrics.
type JWKSStats struct {
	Fetches     int64 // HTTP fetch attempts
	FetchErrors int64 // failed fetch attempts
	StaleServed int64 // lookups answered from keys past their max-age because a refresh failed
	Evictions   int64 // URLs forgotten because the cache was full or no connection uses them
	URLs        int   // URLs cached now (with keys or with a failed first fetch)
	Bytes       int64 // estimated bytes of key material cached now
}

// JWKSCache fetches and caches JWK sets per URL (CONTRACT.md §4). It is safe for concurrent use.
//
// It is bounded: at most MaxURLs URLs and MaxCacheBytes bytes of parsed keys, the least recently
// used URLs going first, and Retain drops the URLs no connection uses any more. Dropping a URL only
// costs a fetch the next time it is used.
type JWKSCache struct {
	opts   JWKSOptions
	client *http.Client

	mu      sync.Mutex
	entries map[string]*cacheEntry // guarded by mu
	bytes   int64                  // guarded by mu: the sum of the entries' sizes
	group   singleflight.Group
	// hot mirrors entries (jwksURL → *cacheEntry), written under mu, so that the hot path (a
	// cached, fresh key set) reads it without taking mu. hotDiscovery holds the discovery
	// documents' entries again by issuer (DiscoveryKey without its prefix), so that their hot
	// path does not build the key.
	hot          sync.Map
	hotDiscovery sync.Map

	fetches, fetchErrors, staleServed, evictions atomic.Int64
}

// NewJWKSCache returns an empty cache.
func NewJWKSCache(opts JWKSOptions) *JWKSCache {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultJWKSTimeout
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultJWKSMaxBytes
	}
	if opts.RefreshCooldown <= 0 {
		opts.RefreshCooldown = DefaultRefreshCooldown
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxURLs <= 0 {
		opts.MaxURLs = MaxCachedURLs
	}
	if opts.MaxCacheBytes <= 0 {
		opts.MaxCacheBytes = MaxCachedBytes
	}
	dialer := &net.Dialer{Timeout: opts.Timeout}
	if !opts.AllowInsecure {
		dialer.Control = publicOnlyControl
	}
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would hide the real destination from the address check
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          32,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   opts.Timeout,
		ResponseHeaderTimeout: opts.Timeout,
	}
	client := &http.Client{
		Transport: transport,
		Timeout:   opts.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errTooManyRedirects
			}
			return checkURL(req.URL, opts.AllowInsecure)
		},
	}
	return &JWKSCache{opts: opts, client: client, entries: map[string]*cacheEntry{}}
}

// Stats returns the counters since the cache was created and its current size.
func (c *JWKSCache) Stats() JWKSStats {
	c.mu.Lock()
	urls, bytes := len(c.entries), c.bytes
	c.mu.Unlock()
	return JWKSStats{Fetches: c.fetches.Load(), FetchErrors: c.fetchErrors.Load(), StaleServed: c.staleServed.Load(),
		Evictions: c.evictions.Load(), URLs: urls, Bytes: bytes}
}

// Retain forgets every cached URL that inUse does not hold. The connection catalog calls it with
// the key sources of every connection it knows (any status; Policy.Sources: JWKS URLs and
// DiscoveryKeys) whenever it changes, so a URL an admin tried once and changed again does not
// stay in memory. The jwks_uri of every retained discovery document is in use too.
func (c *JWKSCache) Retain(inUse map[string]struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	discovered := map[string]struct{}{}
	for u, e := range c.entries {
		if _, ok := inUse[u]; !ok || !strings.HasPrefix(u, discoveryPrefix) {
			continue
		}
		if set := e.set.Load(); set != nil && set.JWKSURI != "" {
			discovered[set.JWKSURI] = struct{}{}
		}
	}
	for u := range c.entries {
		_, used := inUse[u]
		_, found := discovered[u]
		if !used && !found {
			c.removeLocked(u)
		}
	}
}

// insertLocked adds a new entry for jwksURL, evicting the least recently used ones past MaxURLs.
func (c *JWKSCache) insertLocked(jwksURL string, e *cacheEntry) {
	for len(c.entries) >= c.opts.MaxURLs && c.evictOneLocked(e) {
	}
	c.entries[jwksURL] = e
	c.hot.Store(jwksURL, e)
	if issuer, ok := strings.CutPrefix(jwksURL, discoveryPrefix); ok {
		c.hotDiscovery.Store(issuer, e)
	}
}

// resizeLocked records e's new size (if e is still cached) and evicts other entries, least
// recently used first, until the cache is within MaxCacheBytes again.
func (c *JWKSCache) resizeLocked(jwksURL string, e *cacheEntry, size int64) {
	if c.entries[jwksURL] != e {
		return // forgotten while its fetch ran: it is garbage once its callers have their answer
	}
	c.bytes += size - e.size
	e.size = size
	for c.bytes > c.opts.MaxCacheBytes && c.evictOneLocked(e) {
	}
}

// evictOneLocked removes the least recently used entry other than keep, reporting whether there
// was one. A linear scan: it runs only when a new URL or a larger key set arrives past a bound,
// and the cache holds at most MaxURLs entries.
func (c *JWKSCache) evictOneLocked(keep *cacheEntry) bool {
	oldest, oldestUsed := "", int64(0)
	for u, e := range c.entries {
		if e == keep {
			continue
		}
		if used := e.used.Load(); oldest == "" || used < oldestUsed {
			oldest, oldestUsed = u, used
		}
	}
	if oldest == "" {
		return false
	}
	c.removeLocked(oldest)
	return true
}

func (c *JWKSCache) removeLocked(jwksURL string) {
	e := c.entries[jwksURL]
	if e == nil {
		return
	}
	c.bytes -= e.size
	delete(c.entries, jwksURL)
	c.hot.Delete(jwksURL)
	if issuer, ok := strings.CutPrefix(jwksURL, discoveryPrefix); ok {
		c.hotDiscovery.Delete(issuer)
	}
	c.evictions.Add(1)
}

// CheckURL says whether rawURL may be used as a JWKS URL under opts (scheme only: addresses are
// checked when connecting).
func CheckURL(rawURL string, allowInsecure bool) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("jwks: invalid URL: %w", err)
	}
	return checkURL(u, allowInsecure)
}

func checkURL(u *url.URL, allowInsecure bool) error {
	switch u.Scheme {
	case "https":
	case "http":
		if !allowInsecure {
			return fmt.Errorf("%w (got %q; allow http with --allow-insecure-jwks)", ErrInsecureURL, u.Redacted())
		}
	default:
		return fmt.Errorf("%w (got scheme %q)", ErrInsecureURL, u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("jwks: URL %q has no host", u.Redacted())
	}
	if u.User != nil {
		return fmt.Errorf("jwks: URL must not contain credentials")
	}
	return nil
}

// Keys returns the key set of url, fetching it when it is not cached or due for a refresh.
// When a refresh fails, the previous keys are returned for up to 24 h after their last successful
// fetch.
func (c *JWKSCache) Keys(ctx context.Context, jwksURL string) (*KeySet, error) {
	if v, ok := c.hot.Load(jwksURL); ok {
		e := v.(*cacheEntry)
		if set := e.set.Load(); set != nil {
			if now := c.opts.Now(); now.Before(set.ExpiresAt) {
				e.touch(now)
				return set, nil
			}
		}
	}
	return c.refresh(ctx, jwksURL)
}

// Key returns the public key with the given kid. An unknown kid triggers one refresh (at most one
// fetch per URL per cool-down, shared by concurrent callers); if the kid is still unknown the
// answer is ErrUnknownKID.
func (c *JWKSCache) Key(ctx context.Context, jwksURL, kid string) (crypto.PublicKey, error) {
	k, err := c.lookup(ctx, jwksURL, kid)
	if err != nil {
		return nil, err
	}
	return k.Key, nil
}

func (c *JWKSCache) lookup(ctx context.Context, jwksURL, kid string) (JWK, error) {
	set, err := c.Keys(ctx, jwksURL)
	if err != nil {
		return JWK{}, err
	}
	if k, ok := set.lookup(kid); ok {
		return k, nil
	}
	// Unknown kid: the issuer may have rotated. refresh honours the cool-down.
	set, err = c.refresh(ctx, jwksURL)
	if err != nil {
		return JWK{}, err
	}
	return set.find(kid)
}

// find returns the key with kid, or an ErrUnknownKID that says why there is none.
func (s *KeySet) find(kid string) (JWK, error) {
	if k, ok := s.lookup(kid); ok {
		return k, nil
	}
	if why := s.ignoredReason(kid); why != "" {
		return JWK{}, fmt.Errorf("%w: key %q was refused: %s", ErrUnknownKID, kid, why)
	}
	if kid == "" {
		return JWK{}, fmt.Errorf("%w: the token has no kid and the JWKS has %d usable keys", ErrUnknownKID, len(s.Keys))
	}
	return JWK{}, fmt.Errorf("%w: %q is not among the %d keys of the JWKS", ErrUnknownKID, kid, len(s.Keys))
}

// refresh fetches jwksURL unless a fetch was attempted within the cool-down, sharing one fetch
// between concurrent callers. It returns the freshest usable key set.
func (c *JWKSCache) refresh(ctx context.Context, jwksURL string) (*KeySet, error) {
	ch := c.group.DoChan(jwksURL, func() (any, error) {
		return c.refreshOnce(ctx, jwksURL)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*KeySet), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *JWKSCache) refreshOnce(ctx context.Context, jwksURL string) (*KeySet, error) {
	now := c.opts.Now()
	c.mu.Lock()
	e := c.entries[jwksURL]
	if e == nil {
		e = &cacheEntry{}
		c.insertLocked(jwksURL, e)
	}
	e.touch(now)
	prev, lastAttempt, lastErr := e.set.Load(), e.lastAttempt, e.lastErr
	c.mu.Unlock()

	if !lastAttempt.IsZero() && now.Sub(lastAttempt) < c.opts.RefreshCooldown {
		// Within the cool-down: answer from what we have.
		return c.serveCached(prev, lastErr, now)
	}

	// The fetch outlives a cancelled caller: other callers may be waiting on it.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.Timeout)
	defer cancel()
	set, err := c.fetch(fctx, jwksURL)
	now = c.opts.Now()

	c.mu.Lock()
	e.lastAttempt = now
	if err != nil {
		e.lastErr = err
		if cur := e.set.Load(); cur != nil {
			updated := *cur
			updated.LastError = err.Error()
			e.set.Store(&updated)
		}
		prev = e.set.Load()
	} else {
		e.lastErr = nil
		e.set.Store(set)
		c.resizeLocked(jwksURL, e, set.size)
	}
	c.mu.Unlock()

	if err != nil {
		return c.serveCached(prev, err, now)
	}
	return set, nil
}

// serveCached answers from previously fetched keys when they are still within MaxStale.
func (c *JWKSCache) serveCached(set *KeySet, lastErr error, now time.Time) (*KeySet, error) {
	if set == nil {
		if lastErr == nil {
			lastErr = fmt.Errorf("%w: no keys fetched yet", ErrFetch)
		}
		return nil, lastErr
	}
	if now.Sub(set.FetchedAt) > MaxStale {
		return nil, fmt.Errorf("%w: cached keys are older than %s and the refresh failed: %v", ErrFetch, MaxStale, lastErr)
	}
	if !now.Before(set.ExpiresAt) {
		c.staleServed.Add(1)
	}
	return set, nil
}

// fetch fetches what a cache key names: a JWKS URL, or (DiscoveryKey) an issuer's OIDC discovery
// document.
func (c *JWKSCache) fetch(ctx context.Context, key string) (set *KeySet, err error) {
	c.fetches.Add(1)
	defer func() {
		if err != nil {
			c.fetchErrors.Add(1)
		}
	}()
	if issuer, ok := strings.CutPrefix(key, discoveryPrefix); ok {
		return c.fetchDiscovery(ctx, issuer)
	}
	body, header, err := c.get(ctx, key, "application/json, application/jwk-set+json", "JWKS")
	if err != nil {
		return nil, err
	}
	keys, ignored, err := ParseJWKS(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFetch, err)
	}
	now := c.opts.Now()
	set = &KeySet{
		URL:       key,
		Keys:      keys,
		Ignored:   ignored,
		FetchedAt: now,
		ExpiresAt: now.Add(maxAge(header.Get("Cache-Control"))),
	}
	set.size = set.footprint()
	return set, nil
}

// get fetches rawURL under the cache's rules (URL checked, dialer refusing internal addresses
// unless AllowInsecure, timeout, redirects checked, body capped) and returns its body. what names
// the document in errors.
func (c *JWKSCache) get(ctx context.Context, rawURL, accept, what string) ([]byte, http.Header, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: invalid URL: %v", ErrFetch, err)
	}
	if err := checkURL(u, c.opts.AllowInsecure); err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrFetch, err)
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", "trustgate-jwks")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, nil, fetchFailure(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, nil, fmt.Errorf("%w: %s answered %d", ErrFetch, u.Redacted(), resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.opts.MaxBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: reading body: %v", ErrFetch, err)
	}
	if int64(len(body)) > c.opts.MaxBytes {
		return nil, nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrFetch, what, c.opts.MaxBytes)
	}
	return body, resp.Header, nil
}

// footprint estimates the memory a key set holds: its strings, the keys' numbers and a fixed
// overhead per key. It is what the cache's byte bound counts.
func (s *KeySet) footprint() int64 {
	const perItem = 96 // slice element, interface, key struct and allocation headers
	n := int64(len(s.URL) + len(s.LastError) + len(s.Issuer) + len(s.JWKSURI) + perItem)
	for _, k := range s.Keys {
		n += int64(len(k.KID)+len(k.Alg)+len(k.desc)) + perItem
		switch key := k.Key.(type) {
		case *rsa.PublicKey:
			n += int64(len(key.N.Bits())) * 8
		case *ecdsa.PublicKey:
			n += 2 * int64(key.Curve.Params().BitSize+7) / 8
		case ed25519.PublicKey:
			n += int64(len(key))
		}
	}
	for _, ig := range s.Ignored {
		n += int64(len(ig.KID)+len(ig.Reason)) + perItem
	}
	return n
}

// maxAge reads max-age from a Cache-Control header, clamped to [5 min, 24 h], 1 h without one.
func maxAge(cacheControl string) time.Duration {
	for _, directive := range strings.Split(cacheControl, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(directive), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "max-age") {
			continue
		}
		secs, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(value), `"`), 10, 64)
		if err != nil || secs < 0 {
			break
		}
		d := time.Duration(min(secs, int64(MaxJWKSMaxAge/time.Second))) * time.Second
		return min(max(d, MinJWKSMaxAge), MaxJWKSMaxAge)
	}
	return DefaultJWKSMaxAge
}

// ParseJWKS parses a JWK set document into usable public keys. Keys that cannot verify tokens
// (symmetric, encryption-only, unsupported curves, RSA under 2048 bits, malformed) are returned in
// ignored with the reason. A document without any usable key is an error. Certificate members
// (x5u, x5c) are ignored: nothing is ever fetched from a key.
func ParseJWKS(body []byte) (keys []JWK, ignored []IgnoredKey, err error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, nil, fmt.Errorf("JWKS is not valid JSON: %v", err)
	}
	refused := 0
	ignore := func(ig IgnoredKey) {
		// A hostile JWKS of a million tiny bogus keys would otherwise hold a reason for each
		// (far more memory than its 1 MiB): the first few reasons are enough to explain it.
		if refused++; len(ignored) < maxIgnoredKeys {
			ignored = append(ignored, ig)
		}
	}
	for i, raw := range doc.Keys {
		var m jwkset.JWKMarshal
		if err := json.Unmarshal(raw, &m); err != nil {
			ignore(IgnoredKey{Reason: fmt.Sprintf("key %d: invalid JSON: %v", i, err)})
			continue
		}
		k, why := parseJWK(m)
		if why != "" {
			ignore(IgnoredKey{KID: m.KID, Reason: why})
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		reasons := make([]string, 0, len(ignored)+1)
		for _, ig := range ignored {
			reasons = append(reasons, fmt.Sprintf("%q: %s", ig.KID, ig.Reason))
		}
		if more := refused - len(ignored); more > 0 {
			reasons = append(reasons, fmt.Sprintf("%d more", more))
		}
		return nil, ignored, fmt.Errorf("JWKS has no usable key (%d keys; %s)", len(doc.Keys), strings.Join(reasons, "; "))
	}
	return keys, ignored, nil
}

// maxIgnoredKeys bounds the refused keys ParseJWKS reports (and the cache keeps) per JWKS.
const maxIgnoredKeys = 16

func parseJWK(m jwkset.JWKMarshal) (JWK, string) {
	if m.USE != "" && m.USE != jwkset.UseSig {
		return JWK{}, fmt.Sprintf("use %q is not sig", m.USE)
	}
	switch m.KTY {
	case jwkset.KtyRSA, jwkset.KtyEC, jwkset.KtyOKP:
	default:
		return JWK{}, fmt.Sprintf("key type %q cannot verify signatures", m.KTY)
	}
	if m.KTY == jwkset.KtyRSA {
		// Measured before the library parses the number, so an oversized modulus costs nothing.
		if n, ok := base64Bits(m.N); ok && n > MaxRSABits {
			return JWK{}, fmt.Sprintf("RSA key has %d bits, at most %d allowed", n, MaxRSABits)
		}
	}
	// Public members only; certificates are never used or fetched.
	pub := jwkset.JWKMarshal{KTY: m.KTY, USE: m.USE, KEYOPS: m.KEYOPS, ALG: m.ALG, KID: m.KID, CRV: m.CRV, X: m.X, Y: m.Y, N: m.N, E: m.E}
	j, err := jwkset.NewJWKFromMarshal(pub, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
	if err != nil {
		return JWK{}, "invalid key: " + err.Error()
	}
	switch key := j.Key().(type) {
	case *rsa.PublicKey:
		if n := key.N.BitLen(); n < MinRSABits {
			return JWK{}, fmt.Sprintf("RSA key has %d bits, at least %d required", n, MinRSABits)
		} else if n > MaxRSABits {
			return JWK{}, fmt.Sprintf("RSA key has %d bits, at most %d allowed", n, MaxRSABits)
		}
		if key.E < 3 || key.E%2 == 0 {
			return JWK{}, "RSA key has an invalid public exponent"
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return JWK{}, fmt.Sprintf("unsupported key %T", key)
	}
	k := JWK{KID: m.KID, Alg: string(m.ALG), Key: j.Key()}
	k.desc = describeKey(k)
	return k, ""
}

// base64Bits is the bit length of the big-endian number a base64url member (padded or not)
// encodes, or false when it is not base64url (the library then says why).
func base64Bits(member string) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(member, "="))
	if err != nil {
		return 0, false
	}
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, true
	}
	return (len(b)-1)*8 + bits.Len8(b[0]), true
}
