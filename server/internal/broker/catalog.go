package broker

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/jwtverify"
)

// Source is what the Catalog reads: the change counter and the connections. *store.Store
// implements it.
type Source interface {
	// ChangeCounter is a number that grows with every connection change.
	ChangeCounter(ctx context.Context) (int64, error)
	// ConnectionRevisions is the revision of every connection by id.
	ConnectionRevisions(ctx context.Context) (map[string]int64, error)
	// ConnectionsByID returns the connections with these ids; ids that do not exist are left out.
	ConnectionsByID(ctx context.Context, ids []string) ([]connection.Connection, error)
}

// Entry is one connection as the hot path needs it, resolved once per change rather than per request.
type Entry struct {
	Conn     connection.Connection
	Resolved connection.Resolved
	Policy   jwtverify.Policy
	// proposalSources are the JWKS cache entries of the pending proposal's key source (none when
	// there is no proposal): in use too, so that the JWKS cache keeps them for the proposal's tests.
	proposalSources []string
}

// NewEntry resolves a connection for evaluation. An inline JWKS is parsed here, once per change
// of the connection, never per exchange.
func NewEntry(conn connection.Connection, opts connection.Options) *Entry {
	r := connection.Resolve(conn.Spec, opts)
	e := &Entry{Conn: conn, Resolved: r, Policy: policyOf(r, conn.Spec, true)}
	if p := conn.Proposal; p != nil {
		e.proposalSources = policyOf(connection.Resolve(p.Spec, opts), p.Spec, false).Sources()
	}
	return e
}

// policyOf is what the verifier needs of a resolved spec; parseInline false leaves inline keys
// unparsed (a proposal's key sources only).
func policyOf(r connection.Resolved, spec api.ConnectionInput, parseInline bool) jwtverify.Policy {
	p := jwtverify.Policy{JWKSURL: r.JWKSURL, IssuerURL: r.IssuerURL, Conditions: r.EffectiveConditions, IdentityClaim: spec.IdentityClaim}
	if r.InlineJWKS != "" && parseInline {
		p.Inline = jwtverify.ParseInlineKeys(r.InlineJWKS)
	}
	return p
}

// Active reports whether the connection may issue tokens.
func (e *Entry) Active() bool { return e.Conn.Status == api.StatusActive }

type snapshot struct {
	byName map[string]*Entry
	byID   map[string]*Entry
	seq    int64
}

// Catalog is this replica's read model of every connection, so that an exchange costs no database
// read. It is rebuilt whenever the Source's change counter moves: at once after a change made through
// this replica (Refresh), and by polling for changes made through other replicas (Run), which is what
// bounds how late a deactivation reaches every replica (CONTRACT.md §4: within 1 second).
type Catalog struct {
	src  Source
	opts connection.Options
	snap atomic.Pointer[snapshot]
	mu   sync.Mutex // serialises rebuilds
	// healthy is false while the last poll failed; exchanges keep using the last good snapshot.
	healthy atomic.Bool
	// jwks, when set, is told after every rebuild which JWKS URLs the connections use, so that
	// it forgets the others (CONTRACT.md §4). Guarded by mu.
	jwks *jwtverify.JWKSCache
}

// PruneJWKS makes every rebuild of the catalog drop from cache the JWKS URLs that no connection
// (in any status, drafts included, so the test endpoint's URLs count while their draft exists)
// uses any more.
func (c *Catalog) PruneJWKS(cache *jwtverify.JWKSCache) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.jwks = cache
	cache.Retain(c.snap.Load().jwksURLs())
}

// jwksURLs are the JWKS cache entries in use: every connection's and pending proposal's JWKS URL
// or discovery document (whose discovered jwks_uri JWKSCache.Retain keeps with it).
func (s *snapshot) jwksURLs() map[string]struct{} {
	urls := make(map[string]struct{}, len(s.byID))
	for _, e := range s.byID {
		for _, u := range e.Policy.Sources() {
			urls[u] = struct{}{}
		}
		for _, u := range e.proposalSources {
			urls[u] = struct{}{}
		}
	}
	return urls
}

// NewCatalog loads every connection once.
func NewCatalog(ctx context.Context, src Source, opts connection.Options) (*Catalog, error) {
	c := &Catalog{src: src, opts: opts}
	c.snap.Store(&snapshot{byName: map[string]*Entry{}, byID: map[string]*Entry{}, seq: -1})
	if err := c.Refresh(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// ByName returns the entry for a connection name, or nil.
func (c *Catalog) ByName(name string) *Entry { return c.snap.Load().byName[name] }

// ByID returns the entry for a connection id, or nil.
func (c *Catalog) ByID(id string) *Entry { return c.snap.Load().byID[id] }

// Refresh rebuilds the catalog if the store changed since the last build.
func (c *Catalog) Refresh(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	seq, err := c.src.ChangeCounter(ctx)
	if err != nil {
		c.healthy.Store(false)
		return err
	}
	if seq == c.snap.Load().seq {
		c.healthy.Store(true)
		return nil
	}
	// Compare revisions first and read only the rows that moved: every change bumps its
	// connection's revision, so an unchanged revision means an unchanged row, and its resolved
	// entry is kept. (A refresh after one change in a 500-connection apply reads two columns of
	// every row and one whole row, not 500 whole rows.)
	revs, err := c.src.ConnectionRevisions(ctx)
	if err != nil {
		c.healthy.Store(false)
		return err
	}
	prev := c.snap.Load()
	next := &snapshot{byName: make(map[string]*Entry, len(revs)), byID: make(map[string]*Entry, len(revs)), seq: seq}
	var moved []string
	for id, rev := range revs {
		if e := prev.byID[id]; e != nil && e.Conn.Revision == rev {
			next.byID[id] = e
		} else {
			moved = append(moved, id)
		}
	}
	changed, err := c.src.ConnectionsByID(ctx, moved)
	if err != nil {
		c.healthy.Store(false)
		return err
	}
	// A row changed (or deleted) after its revision was read comes back newer (or not at all):
	// the newer row is used, the deleted one left out, and the change counter, read before
	// either, makes the next refresh look again.
	for i := range changed {
		next.byID[changed[i].ID] = NewEntry(changed[i], c.opts)
	}
	for _, e := range next.byID {
		next.byName[e.Conn.Spec.Name] = e
	}
	c.snap.Store(next)
	c.healthy.Store(true)
	if c.jwks != nil {
		c.jwks.Retain(next.jwksURLs())
	}
	return nil
}

// Run polls for changes made through other replicas until ctx ends.
func (c *Catalog) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.Refresh(ctx); err != nil && ctx.Err() == nil {
				slog.WarnContext(ctx, "connection catalog refresh failed; keeping the last snapshot", "error", err)
			}
		}
	}
}
