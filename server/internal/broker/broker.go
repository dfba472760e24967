// Package broker trades CI JWTs for Trustgate access tokens (CONTRACT.md §4), tells whom an access
// token names (Workload: introspection and whoami) and revokes access tokens (RFC 7009,
// revocation.go). It joins the connection catalog (which connection, is it active), the JWT
// verifier (is the JWT good and does it meet the conditions), the signing key ring (mint, verify),
// the revoked tokens and the audit trail (a granted exchange is durable before the token leaves).
// It knows nothing of HTTP.
//
// # The boundary
//
// broker declares the interfaces it needs and nothing more: Source, what the Catalog reads
// (*store.Store implements it), RevocationStore, where revocations are kept (*store.Store through
// server/app's adapter), and Recorder, the durable audit trail (*audit.Writer implements it).
// server/app wires the concrete types in; broker never imports the store. An exchange reads no
// database: it looks its connection up in the Catalog's in-memory snapshot, and its one interface
// call is Recorder.Record. Workload reads no database either: revoked tokens are held in memory
// (Revocations) and refreshed by polling.
package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/audit"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/jwtverify"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/sightings"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/signing"
)

// Recorder records an audit event durably: when Record returns nil the event is committed.
// RecordOnce records a single-use exchange's event together with its record, or, when the record
// exists already (on any replica), refused instead and answers audit.ErrReplay. *audit.Writer
// implements it.
type Recorder interface {
	Record(ctx context.Context, ev api.AuditEvent) error
	RecordOnce(ctx context.Context, ev api.AuditEvent, rec connection.SingleUse, refused api.AuditEvent) error
}

// Broker runs token exchanges.
type Broker struct {
	Catalog  *Catalog
	Verifier *jwtverify.Verifier
	Keys     *signing.KeyRing
	Audit    Recorder
	// Revocations are the revoked tokens Workload refuses, and where Revoke stores one.
	Revocations *Revocations
	// PublicURL is the issuer and audience of access tokens.
	PublicURL string
	Now       func() time.Time
	// Sightings records the workloads whose tokens passed the signature and time checks
	// (CONTRACT.md §3, workload sightings); nil records none.
	Sightings *sightings.Recorder
}

// Admit, when given to Exchange, is asked once the outcome is known and before anything is
// recorded or issued (the HTTP layer's per-connection rate limits): connectionID is "" for a name
// that is unknown or not active, granted says whether the token passed every check. Its error
// ends the exchange and is returned as is.
type Admit func(connectionID string, granted bool) error

func (a Admit) admit(connectionID string, granted bool) error {
	if a == nil {
		return nil
	}
	return a(connectionID, granted)
}

// Refusal is a failed exchange in RFC 6749 §5.2 terms. Description names the kind of check that
// failed and never the expected values (those are in the audit event and the test endpoint).
type Refusal struct {
	Code        string
	Description string
	// Internal is true when the server, not the request, is at fault (the audit store is down):
	// the HTTP layer answers 503 rather than 400.
	Internal bool
}

func (r *Refusal) Error() string { return r.Code + ": " + r.Description }

func (b *Broker) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

// Exchange validates req and, if every rule holds, returns a signed access token.
func (b *Broker) Exchange(ctx context.Context, req api.TokenRequest, m audit.Meta, admit Admit) (*api.TokenResponse, error) {
	refuse := func(code, desc string) *Refusal {
		return &Refusal{Code: code, Description: fmt.Sprintf("%s (request %s)", desc, m.RequestID)}
	}
	switch {
	case req.GrantType == "":
		return nil, refuse(api.ErrInvalidRequest, "grant_type is missing: use "+api.GrantTypeTokenExchange)
	case req.GrantType != api.GrantTypeTokenExchange:
		return nil, refuse(api.ErrUnsupportedGrantType, "only the token-exchange grant is supported: use grant_type="+api.GrantTypeTokenExchange)
	case req.SubjectToken == "":
		return nil, refuse(api.ErrInvalidRequest, "subject_token is missing: pass the CI system's OIDC JWT")
	case req.SubjectTokenType != api.TokenTypeJWT && req.SubjectTokenType != api.TokenTypeIDToken:
		return nil, refuse(api.ErrInvalidRequest, "subject_token_type must be "+api.TokenTypeJWT+" or "+api.TokenTypeIDToken)
	case req.Connection == "":
		return nil, refuse(api.ErrInvalidRequest, "connection is missing: name the workload connection to exchange through")
	}

	ev := api.AuditEvent{Actor: "anonymous", Action: api.ActionTokenExchange, ConnectionName: req.Connection,
		Outcome: api.OutcomeDenied, RequestID: m.RequestID, RemoteAddr: m.RemoteAddr}
	entry := b.Catalog.ByName(req.Connection)
	if entry == nil || !entry.Active() {
		reason := "unknown connection"
		if entry != nil {
			ev.ConnectionID = entry.Conn.ID
			reason = "connection is " + entry.Conn.Status + ", not active"
		}
		ev.Reason = reason
		if err := admit.admit("", false); err != nil {
			return nil, err
		}
		if err := b.Audit.Record(ctx, ev); err != nil {
			return nil, auditDown(m)
		}
		// Unknown and not-active read the same from outside so names cannot be probed by status.
		return nil, refuse(api.ErrInvalidTarget, "no active workload connection with this name")
	}
	ev.ConnectionID = entry.Conn.ID

	res := b.Verifier.Verify(ctx, req.SubjectToken, entry.Policy)
	if err := admit.admit(entry.Conn.ID, res.OK); err != nil {
		return nil, err
	}
	b.Sightings.Saw(entry.Conn.ID, res)
	if !res.OK {
		ev.Reason = res.FailedKind
		ev.Detail = failedCheckDetail(res)
		if res.Subject != "" {
			ev.Actor = res.Subject
		}
		if err := b.Audit.Record(ctx, ev); err != nil {
			return nil, auditDown(m)
		}
		return nil, refuse(api.ErrInvalidGrant, fmt.Sprintf("the subject token was refused: %s check failed; a security or DevOps admin can see which in the audit log or with the test endpoint", res.FailedKind))
	}

	spec := &entry.Conn.Spec
	ev.Actor = res.Subject
	aud, ok := connection.IssuedAudience(*spec, b.PublicURL, req.Audience)
	if !ok {
		// A good token asking for an audience this connection does not issue (RFC 8693 §2.2.2).
		ev.Reason = "audience"
		ev.Detail = map[string]any{"check": "audience", "expected": connection.AllowedAudiences(*spec, b.PublicURL),
			"actual": req.Audience, "detail": "the requested audience is not one of the connection's token_audience", "kind": "audience"}
		if err := b.Audit.Record(ctx, ev); err != nil {
			return nil, auditDown(m)
		}
		return nil, refuse(api.ErrInvalidTarget, "the requested audience is not one this connection issues tokens for: ask for one of its token_audience entries, or omit audience")
	}

	now := b.now()
	ttl := TTL(spec.TokenTTL)
	claims := signing.AccessClaims{
		Issuer: b.PublicURL, Audience: aud, Subject: res.Subject,
		IssuedAt: now, NotBefore: now, Expiry: now.Add(ttl),
		Connection: spec.Name, ConnectionID: entry.Conn.ID, SourceIssuer: res.SourceIssuer,
		ID: uuid.NewString(), Claims: connection.MappedClaims(res.Claims, spec.ClaimMappings),
	}
	token, err := b.Keys.Mint(claims)
	if err != nil {
		return nil, &Refusal{Code: "server_error", Description: "could not sign the access token (request " + m.RequestID + ")", Internal: true}
	}
	refused := ev // the denied event, as it stands before the grant is written into ev
	ev.Outcome = api.OutcomeGranted
	ev.Detail = map[string]any{"jti": claims.ID, "sub": res.Subject, "expires_at": claims.Expiry.UTC().Format(time.RFC3339), "source_iss": res.SourceIssuer}
	if len(spec.TokenAudience) > 0 {
		ev.Detail["aud"] = aud
	}
	// Durable before the token leaves: if the audit store cannot take it, nobody gets the token.
	if !spec.SingleUse {
		if err := b.Audit.Record(ctx, ev); err != nil {
			return nil, auditDown(m)
		}
	} else if err := b.recordOnce(ctx, ev, refused, entry, req.SubjectToken, res); errors.Is(err, audit.ErrReplay) {
		return nil, refuse(api.ErrInvalidGrant, "the subject token was refused: "+KindReplay+" check failed: this connection is single_use and the token was exchanged before; get a fresh token from the CI system")
	} else if err != nil {
		return nil, auditDown(m)
	}
	return &api.TokenResponse{AccessToken: token, IssuedTokenType: api.TokenTypeJWT, TokenType: "Bearer", ExpiresIn: int64(ttl / time.Second)}, nil
}

// KindReplay is the failure kind of a single-use CI token presented again (CONTRACT.md §4).
const KindReplay = "replay"

// recordOnce records a single_use connection's granted exchange with the token's single-use
// record (CONTRACT.md §1), in the audit batch's transaction: when the record exists already the
// exchange is a replay, audited as denied with refused's fields, and the answer is
// audit.ErrReplay.
func (b *Broker) recordOnce(ctx context.Context, granted, refused api.AuditEvent, entry *Entry, token string, res *jwtverify.Result) error {
	rec := connection.SingleUse{
		ConnectionID: entry.Conn.ID,
		TokenKey:     connection.SingleUseKey(res.Claims, token),
		// Verified tokens always have exp; the record outlives the token's last valid second.
		Until: res.Expiry.Add(connection.SingleUseLinger),
	}
	refused.Reason = KindReplay
	refused.Detail = map[string]any{"check": "single_use", "kind": KindReplay, "expected": "the first exchange of this CI token",
		"actual": "exchanged before", "detail": "the connection is single_use and this token (by iss and jti, or its hash) was exchanged through it before",
		"jti": res.Claims["jti"]}
	return b.Audit.RecordOnce(ctx, granted, rec, refused)
}

func auditDown(m audit.Meta) *Refusal {
	return &Refusal{Code: "temporarily_unavailable", Description: "the audit log cannot be written right now, so no token is issued; retry shortly (request " + m.RequestID + ")", Internal: true}
}

// failedCheckDetail puts the failing check, with expected and actual values, into the audit event.
func failedCheckDetail(res *jwtverify.Result) map[string]any {
	for _, c := range res.Checks {
		if !c.Passed {
			return map[string]any{"check": c.Name, "expected": c.Expected, "actual": c.Actual, "detail": c.Detail, "kind": res.FailedKind}
		}
	}
	return map[string]any{"kind": res.FailedKind}
}

// TTL converts a connection's token TTL into a duration.
// Normalised specs always carry a TTL; nil falls back to the default of one hour.
func TTL(t *api.TokenTTL) time.Duration {
	if t == nil {
		return time.Hour
	}
	return time.Duration(t.Amount*api.TTLUnitSeconds(t.Unit)) * time.Second
}

// Test evaluates a CI token against a connection in any status and issues nothing.
func (b *Broker) Test(ctx context.Context, e *Entry, token string) *api.TestResult {
	res := b.Verifier.Verify(ctx, token, e.Policy)
	claims := res.Claims
	if claims == nil {
		claims = map[string]any{}
	}
	return &api.TestResult{WouldIssue: res.OK, Claims: claims, Checks: res.Checks}
}

// ErrRetired means an access token was issued before its connection's latest deactivation: it
// never becomes valid again, also after a reactivation (CONTRACT.md §1).
var ErrRetired = errors.New("the access token was issued before its connection was last deactivated")

// ErrInactive means an access token is well signed but its connection no longer issues tokens.
var ErrInactive = errors.New("the access token's connection is no longer active")

// ErrRevoked means the access token was revoked (POST /v1/revoke).
var ErrRevoked = errors.New("the access token was revoked")

// ErrAudience means an access token's aud is not one its connection allows (any more).
var ErrAudience = errors.New("the access token's audience is not one its connection issues tokens for")

// Workload validates an access token issued by this server and reports whom it names, or an error
// when it is expired, not ours, signed by a withdrawn key (signing.ErrWithdrawn), revoked, its
// connection is no longer active, or its aud is not one its connection allows: whatever aud it was
// issued for, the token is "issued by this server for a connection that allows this aud". It reads
// no database.
func (b *Broker) Workload(token string) (*signing.AccessClaims, error) {
	claims, err := b.Keys.Verify(token, b.now())
	if err != nil {
		return nil, err
	}
	if claims.Issuer != b.PublicURL {
		return nil, errors.New("the access token was issued by another server")
	}
	if b.Revocations != nil && b.Revocations.Revoked(claims.ID) {
		return nil, ErrRevoked
	}
	e := b.Catalog.ByID(claims.ConnectionID)
	if e == nil || !e.Active() {
		return nil, ErrInactive
	}
	if e.Conn.RetiredToken(claims.IssuedAt) {
		return nil, ErrRetired
	}
	if !connection.AudienceAllowed(e.Conn.Spec, b.PublicURL, claims.Audience) {
		return nil, ErrAudience
	}
	return claims, nil
}
