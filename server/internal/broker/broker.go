// Package broker trades CI JWTs for Trustgate access tokens (CONTRACT.md §4). It joins the connection
// catalog (which connection, is it active), the JWT verifier (is the JWT good and does it meet
// the conditions), the signing key ring (mint) and the audit trail (a granted exchange is durable
// before the token leaves). It knows nothing of HTTP.
//
// # The boundary
//
// broker declares the two interfaces it needs and nothing more: Source, what the Catalog reads
// (*store.Store implements it), and Recorder, the durable audit trail (*audit.Writer implements
// it). server/app wires the concrete types in; broker never imports the store. An exchange reads
// no database: it looks its connection up in the Catalog's in-memory snapshot, and its one
// interface call is Recorder.Record.
package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/audit"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/jwtverify"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/sightings"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/signing"
)

// Recorder records an audit event durably: when Record returns nil the event is committed.
// *audit.Writer implements it.
type Recorder interface {
	Record(ctx context.Context, ev api.AuditEvent) error
}

// Broker runs token exchanges.
type Broker struct {
	Catalog  *Catalog
	Verifier *jwtverify.Verifier
	Keys     *signing.KeyRing
	Audit    Recorder
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

	now := b.now()
	ttl := TTL(entry.Conn.Spec.TokenTTL)
	claims := signing.AccessClaims{
		Issuer: b.PublicURL, Audience: b.PublicURL, Subject: res.Subject,
		IssuedAt: now, NotBefore: now, Expiry: now.Add(ttl),
		Connection: entry.Conn.Spec.Name, ConnectionID: entry.Conn.ID, SourceIssuer: res.SourceIssuer,
		ID: uuid.NewString(),
	}
	token, err := b.Keys.Mint(claims)
	if err != nil {
		return nil, &Refusal{Code: "server_error", Description: "could not sign the access token (request " + m.RequestID + ")", Internal: true}
	}
	ev.Actor = res.Subject
	ev.Outcome = api.OutcomeGranted
	ev.Detail = map[string]any{"jti": claims.ID, "sub": res.Subject, "expires_at": claims.Expiry.UTC().Format(time.RFC3339), "source_iss": res.SourceIssuer}
	// Durable before the token leaves: if the audit store cannot take it, nobody gets the token.
	if err := b.Audit.Record(ctx, ev); err != nil {
		return nil, auditDown(m)
	}
	return &api.TokenResponse{AccessToken: token, IssuedTokenType: api.TokenTypeJWT, TokenType: "Bearer", ExpiresIn: int64(ttl / time.Second)}, nil
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

// Workload validates an access token issued by this server and reports whom it names, or an error
// when it is expired, not ours, or its connection is no longer active.
func (b *Broker) Workload(token string) (*signing.AccessClaims, error) {
	claims, err := b.Keys.Verify(token, b.now())
	if err != nil {
		return nil, err
	}
	if claims.Issuer != b.PublicURL {
		return nil, errors.New("the access token was issued by another server")
	}
	e := b.Catalog.ByID(claims.ConnectionID)
	if e == nil || !e.Active() {
		return nil, ErrInactive
	}
	if e.Conn.RetiredToken(claims.IssuedAt) {
		return nil, ErrRetired
	}
	return claims, nil
}
