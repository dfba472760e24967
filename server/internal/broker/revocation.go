package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/audit"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/signing"
)

// Token revocation (RFC 7009, CONTRACT.md §3 POST /v1/revoke).
//
// A revocation is stored (jti, connection id, the token's expiry) in the database, where every
// replica finds it: each keeps the revoked jtis of unexpired tokens in memory and reads the new
// ones when the store's revocation counter moves (Revocations.Refresh, on the catalog's poll: at
// most a second), so checking a token costs a map lookup and no database read. Records are dropped
// from memory and from the database once their token has expired (at the next purge, within a
// minute): an expired token is refused for its expiry anyway.
//
// Choices the contract leaves open: the credential "the access token itself" must be a token this
// server would still verify (our key, not expired): an expired one gets 401, and `trustgate
// revoke` reports that as nothing to revoke. A revoked token may revoke itself again (200, so a
// retried revocation succeeds). Every request that passes authentication and role is audited as
// token.revoke — also when there was nothing to revoke, with the reason — and a refused role is
// audited as denied.

// Revocation is a revoked access token, kept until the token expires. Seq numbers revocations in
// the order the store committed them.
type Revocation struct {
	JTI          string
	ConnectionID string
	ExpiresAt    time.Time
	RevokedAt    time.Time
	Seq          int64
}

// RevocationStore keeps revocations (*store.Store, through server/app's adapter). RevokeToken
// stores r and ev in one transaction and reports false, storing nothing, when the jti is already
// revoked. RevocationsVersion is the seq of the latest revocation; every revocation numbered up to
// a version that has been read is committed.
type RevocationStore interface {
	RevokeToken(ctx context.Context, r Revocation, ev *api.AuditEvent) (bool, error)
	RevocationsVersion(ctx context.Context) (int64, error)
	RevocationsSince(ctx context.Context, seq int64, now time.Time) ([]Revocation, error)
	PurgeRevocations(ctx context.Context, now time.Time, limit int) (int64, error)
}

// purgeEvery is how often a replica drops expired revocations (from memory, and up to
// purgeBatch of them from the database).
const (
	purgeEvery = time.Minute
	purgeBatch = 1000
)

// Revocations is this replica's set of revoked, unexpired tokens.
type Revocations struct {
	src RevocationStore
	now func() time.Time

	mu    sync.RWMutex
	byJTI map[string]time.Time // jti → the token's expiry

	refresh   sync.Mutex // serialises Refresh; guards seq and lastPurge
	seq       int64
	lastPurge time.Time
}

// NewRevocations loads the revocations of unexpired tokens. now is the server's clock (nil:
// time.Now).
func NewRevocations(ctx context.Context, src RevocationStore, now func() time.Time) (*Revocations, error) {
	if now == nil {
		now = time.Now
	}
	r := &Revocations{src: src, now: now, byJTI: map[string]time.Time{}, seq: -1}
	if err := r.Refresh(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// Revoked reports whether the token with this jti has been revoked.
func (r *Revocations) Revoked(jti string) bool {
	r.mu.RLock()
	_, ok := r.byJTI[jti]
	r.mu.RUnlock()
	return ok
}

// Refresh reads the revocations committed since the last refresh, and once a minute drops expired
// ones. An idle refresh is one read of the counter.
func (r *Revocations) Refresh(ctx context.Context) error {
	r.refresh.Lock()
	defer r.refresh.Unlock()
	now := r.now()
	v, err := r.src.RevocationsVersion(ctx)
	if err != nil {
		return fmt.Errorf("reading the revocation counter: %w", err)
	}
	if v != r.seq {
		since := max(r.seq, 0)
		if v < r.seq { // the database was replaced underneath: start over
			since = 0
		}
		rows, err := r.src.RevocationsSince(ctx, since, now)
		if err != nil {
			return fmt.Errorf("reading revocations: %w", err)
		}
		r.mu.Lock()
		if since == 0 {
			clear(r.byJTI)
		}
		for _, row := range rows {
			r.byJTI[row.JTI] = row.ExpiresAt
			v = max(v, row.Seq)
		}
		r.mu.Unlock()
		r.seq = v
	}
	if now.Sub(r.lastPurge) >= purgeEvery || now.Before(r.lastPurge) {
		r.lastPurge = now
		r.mu.Lock()
		for jti, exp := range r.byJTI {
			if !now.Before(exp) {
				delete(r.byJTI, jti)
			}
		}
		r.mu.Unlock()
		// Every replica purges; the deletes are idempotent and small.
		if _, err := r.src.PurgeRevocations(ctx, now, purgeBatch); err != nil {
			return fmt.Errorf("dropping expired revocations: %w", err)
		}
	}
	return nil
}

// Run refreshes every interval until ctx ends.
func (r *Revocations) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.Refresh(ctx); err != nil && ctx.Err() == nil {
				slog.WarnContext(ctx, "revocation refresh failed; keeping the last set", "error", err)
			}
		}
	}
}

// Revoker is who asks for a revocation: the access token itself (Token, the bearer credential),
// or a principal authenticated by an API key (Principal, Role).
type Revoker struct {
	Token     string
	Principal string
	Role      string
}

// ErrBadCredential means the access token presented as the credential is not valid (expired,
// not ours, withdrawn, malformed): there is nothing it may revoke (401).
var ErrBadCredential = errors.New("the access token is not valid: expired, not issued by this server, or signed by a withdrawn key")

// Revoke revokes an access token (RFC 7009). A token may revoke itself; a security admin may
// revoke any. Whatever the token is — valid, already revoked, expired, garbage — the answer is the
// same success (RFC 7009 §2.2), and every request that passes authorisation is audited. Errors:
// ErrBadCredential (401), a *connection.Error of KindForbidden (403; audited), or a store error.
func (b *Broker) Revoke(ctx context.Context, token string, by Revoker, m audit.Meta) error {
	if b.Revocations == nil {
		return errors.New("broker: no revocation store configured")
	}
	now := b.now()
	ev := api.AuditEvent{Action: api.ActionTokenRevoke, Outcome: api.OutcomeSuccess, RequestID: m.RequestID, RemoteAddr: m.RemoteAddr}
	var claims *signing.AccessClaims
	if by.Token != "" {
		c, err := b.Keys.Verify(by.Token, now)
		if err != nil {
			return ErrBadCredential
		}
		ev.Actor, ev.ConnectionID, ev.ConnectionName = c.Subject, c.ConnectionID, c.Connection
		if token != by.Token {
			ev.Outcome, ev.Reason = api.OutcomeDenied, "an access token may revoke only itself"
			if err := b.Audit.Record(ctx, ev); err != nil {
				return err
			}
			return connection.Forbidden("an access token may revoke only itself: send the same token as the credential and as token=, or ask a security admin")
		}
		claims = c
	} else {
		ev.Actor = by.Principal
		if err := connection.Authorize(by.Role, connection.ActionRevokeToken, nil); err != nil {
			ev.Outcome, ev.Reason = api.OutcomeDenied, err.Error()
			if aerr := b.Audit.Record(ctx, ev); aerr != nil {
				return aerr
			}
			return err
		}
		c, err := b.Keys.Verify(token, now)
		if err != nil {
			// RFC 7009 §2.2: an invalid token is not an error. Nothing is stored.
			ev.Reason = "nothing to revoke: not a valid access token of this server (" + err.Error() + ")"
			return b.Audit.Record(ctx, ev)
		}
		claims = c
		ev.ConnectionID, ev.ConnectionName = c.ConnectionID, c.Connection
	}
	ev.Detail = map[string]any{"jti": claims.ID, "sub": claims.Subject, "expires_at": claims.Expiry.UTC().Format(time.RFC3339)}
	ev.Reason = "revoked"
	stored, err := b.Revocations.src.RevokeToken(ctx, Revocation{JTI: claims.ID, ConnectionID: claims.ConnectionID,
		ExpiresAt: claims.Expiry, RevokedAt: now}, &ev)
	if err != nil {
		return err
	}
	if !stored {
		ev.Reason = "already revoked"
		if err := b.Audit.Record(ctx, ev); err != nil {
			return err
		}
	}
	// This replica knows at once; the others at their next poll.
	return b.Revocations.Refresh(ctx)
}
