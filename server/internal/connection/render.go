package connection

import (
	"maps"
	"slices"

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
		IssuerURL:           spec.IssuerURL,
		JWKS:                spec.JWKS,
		ClaimMappings:       maps.Clone(spec.ClaimMappings),
		TokenAudience:       slices.Clone(spec.TokenAudience),
		SingleUse:           spec.SingleUse,
		Status:              c.Status,
		Revision:            c.Revision,
		Fingerprint:         r.Fingerprint,
		CreatedBy:           c.CreatedBy,
		UpdatedBy:           c.UpdatedBy,
		ActivatedBy:         c.ActivatedBy,
		ConfigChangedBy:     c.ConfigChangedBy,
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
	if p := c.Proposal; p != nil {
		pr := Resolve(p.Spec, opts)
		out.Proposal = &api.Proposal{
			Fingerprint: pr.Fingerprint, ProposedBy: p.ProposedBy, ProposedAt: p.ProposedAt,
			Config: cloneSpec(p.Spec), EffectiveConditions: pr.EffectiveConditions, JWKSURL: pr.JWKSURL,
		}
		if out.Proposal.EffectiveConditions == nil {
			out.Proposal.EffectiveConditions = []api.Condition{}
		}
	}
	return out
}

// cloneSpec copies a spec so that the copy shares no memory with the original.
func cloneSpec(s api.ConnectionInput) api.ConnectionInput {
	out := s
	out.Conditions = nil
	for _, c := range s.Conditions {
		out.Conditions = append(out.Conditions, cloneCondition(c))
	}
	if s.GitHub != nil {
		g := *s.GitHub
		out.GitHub = &g
	}
	if s.GitLab != nil {
		g := *s.GitLab
		out.GitLab = &g
	}
	if s.CircleCI != nil {
		g := *s.CircleCI
		out.CircleCI = &g
	}
	if s.GoogleCloud != nil {
		g := *s.GoogleCloud
		out.GoogleCloud = &g
	}
	if s.TokenTTL != nil {
		t := *s.TokenTTL
		out.TokenTTL = &t
	}
	out.ClaimMappings = maps.Clone(s.ClaimMappings)
	out.TokenAudience = slices.Clone(s.TokenAudience)
	return out
}
