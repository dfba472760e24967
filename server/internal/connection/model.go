package connection

import (
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// Connection is a workload connection as the store keeps it.
//
// Spec is the user's configuration, normalised by Normalize: ProviderType is always set, TokenTTL
// is never nil, IdentityClaim is never empty, and Spec.JWKSURL holds only a user override (empty
// means "derived from the preset"). Everything derived (effective JWKS URL, effective conditions,
// fingerprint) is computed from Spec by Resolve and never stored as a source of truth.
type Connection struct {
	ID       string
	Spec     api.ConnectionInput
	Status   string
	Revision int64

	// EverActivated is set the first time the status becomes active and never cleared: from then on
	// the DevOps admin has lost admin rights to the connection for good.
	EverActivated bool

	CreatedBy string
	UpdatedBy string
	// ConfigChangedBy is the principal who last changed a field the fingerprint covers (a
	// description-only change or a rename leaves it alone; an approved proposal sets its author).
	// Together with CreatedBy it decides the four-eyes rule of activation.
	ConfigChangedBy string
	ActivatedBy     string

	CreatedAt   time.Time
	UpdatedAt   time.Time
	ActivatedAt *time.Time
	// DeactivatedAt is the time of the latest deactivation (nil if never): every access token
	// issued up to then is retired for good, also after a reactivation (CONTRACT.md §1).
	DeactivatedAt *time.Time

	// Proposal is the change waiting for approval on an activated connection, or nil.
	Proposal *Proposal
}

// Proposal is a configuration proposed for an activated connection (CONTRACT.md §1, change
// control). Spec is normalised like a live spec; nothing about it is live until approved.
type Proposal struct {
	Spec       api.ConnectionInput
	ProposedBy string
	ProposedAt time.Time
}

// Config is the configuration a change-control decision is about: the pending proposal when there
// is one and proposal is true, else the live spec. ok is false when a proposal was asked for and
// there is none.
func (c *Connection) Config(proposal bool) (spec api.ConnectionInput, ok bool) {
	if !proposal {
		return c.Spec, true
	}
	if c.Proposal == nil {
		return api.ConnectionInput{}, false
	}
	return c.Proposal.Spec, true
}

// RetiredToken reports whether an access token of this connection issued at iat (seconds) is
// retired: issued at or before the latest deactivation. The comparison is in whole seconds, as iat
// is, and fails closed: a token issued in the same second as a deactivation is retired too.
func (c *Connection) RetiredToken(iat time.Time) bool {
	return c.DeactivatedAt != nil && iat.Unix() <= c.DeactivatedAt.Unix()
}
