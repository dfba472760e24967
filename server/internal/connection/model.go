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
	// ConfigChangedBy is the principal who last changed the configuration (Spec), as opposed to the
	// status. Together with CreatedBy it decides the four-eyes rule.
	ConfigChangedBy string
	ActivatedBy     string

	CreatedAt   time.Time
	UpdatedAt   time.Time
	ActivatedAt *time.Time
}
