package connection

import (
	"github.com/trustgate/terraform-provider-trustgate/api"
)

// ToAPI renders a stored connection for the API: the effective jwks_url with
// jwks_url_overridden, effective_conditions, the fingerprint, and lists that are never nil (an
// empty conditions list encodes as [], not null). The result shares no memory with c.
func ToAPI(c *Connection, opts Options) api.Connection {
	spec := c.Spec
	r := Resolve(spec, opts)
	out := api.Connection{
		ID:                  c.ID,
		Name:                spec.Name,
		Description:         spec.Description,
		ProviderType:        effectiveProviderType(spec),
		JWKSURL:             r.JWKSURL,
		JWKSURLOverridden:   spec.JWKSURL != "",
		TokenTTL:            DefaultTokenTTL(),
		IdentityClaim:       orDefault(spec.IdentityClaim, api.DefaultIdentity),
		Conditions:          make([]api.Condition, 0, len(spec.Conditions)),
		EffectiveConditions: r.EffectiveConditions,
		Status:              c.Status,
		Revision:            c.Revision,
		Fingerprint:         r.Fingerprint,
		CreatedBy:           c.CreatedBy,
		UpdatedBy:           c.UpdatedBy,
		ActivatedBy:         c.ActivatedBy,
		CreatedAt:           c.CreatedAt,
		UpdatedAt:           c.UpdatedAt,
	}
	if spec.TokenTTL != nil {
		out.TokenTTL = *spec.TokenTTL
	}
	for _, cond := range spec.Conditions {
		out.Conditions = append(out.Conditions, cloneCondition(cond))
	}
	if out.EffectiveConditions == nil {
		out.EffectiveConditions = []api.Condition{}
	}
	if spec.GitHub != nil {
		g := *spec.GitHub
		out.GitHub = &g
	}
	if spec.GitLab != nil {
		g := *spec.GitLab
		out.GitLab = &g
	}
	if spec.CircleCI != nil {
		g := *spec.CircleCI
		out.CircleCI = &g
	}
	if spec.GoogleCloud != nil {
		g := *spec.GoogleCloud
		out.GoogleCloud = &g
	}
	if c.ActivatedAt != nil {
		t := *c.ActivatedAt
		out.ActivatedAt = &t
	}
	return out
}
