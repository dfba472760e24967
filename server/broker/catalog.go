package broker

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/server/api"
	"github.com/trustgate/terraform-provider-trustgate/server/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/exchange"
	"github.com/trustgate/terraform-provider-trustgate/server/store"
)

// Entry is one connection as the hot path needs it, resolved once per change rather than per request.
type Entry struct {
	Conn     connection.Connection
	Resolved connection.Resolved
	Policy   exchange.Policy
}

// NewEntry resolves a connection for evaluation.
func NewEntry(conn connection.Connection, opts connection.Options) *Entry {
	r := connection.Resolve(conn.Spec, opts)
	return &Entry{Conn: conn, Resolved: r, Policy: exchange.Policy{
		JWKSURL: r.JWKSURL, Conditions: r.EffectiveConditions, IdentityClaim: conn.Spec.IdentityClaim,
	}}
}

// Active reports whether the connection may issue tokens.
func (e *Entry) Active() bool { return e.Conn.Status == api.StatusActive }

type snapshot struct {
	byName map[string]*Entry
	byID   map[string]*Entry
	seq    int64
}

// Catalog is this replica's read model of every connection, so that an exchange costs no database
// read. It is rebuilt whenever the store's change counter moves: at once after a change made through
// this replica (Refresh), and by polling for changes made through other replicas (Run), which is what
// bounds how late a deactivation reaches every replica (SPEC §4: within 1 second).
type Catalog struct {
	store *store.Store
	opts  connection.Options
	snap  atomic.Pointer[snapshot]
	mu    sync.Mutex // serialises rebuilds
	// healthy is false while the last poll failed; exchanges keep using the last good snapshot.
	healthy atomic.Bool
}

// NewCatalog loads every connection once.
func NewCatalog(ctx context.Context, st *store.Store, opts connection.Options) (*Catalog, error) {
	c := &Catalog{store: st, opts: opts}
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
	seq, err := c.store.ChangeCounter(ctx)
	if err != nil {
		c.healthy.Store(false)
		return err
	}
	if seq == c.snap.Load().seq {
		c.healthy.Store(true)
		return nil
	}
	all, err := c.store.AllConnections(ctx)
	if err != nil {
		c.healthy.Store(false)
		return err
	}
	prev := c.snap.Load()
	next := &snapshot{byName: make(map[string]*Entry, len(all)), byID: make(map[string]*Entry, len(all)), seq: seq}
	for i := range all {
		// A connection whose revision did not move keeps its resolved entry: every change bumps
		// the revision, so only changed connections are resolved again.
		e := prev.byID[all[i].ID]
		if e == nil || e.Conn.Revision != all[i].Revision {
			e = NewEntry(all[i], c.opts)
		}
		next.byName[all[i].Spec.Name] = e
		next.byID[all[i].ID] = e
	}
	c.snap.Store(next)
	c.healthy.Store(true)
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
