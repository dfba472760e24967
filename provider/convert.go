package provider

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// This file is the one place where Terraform values and API values meet: fromModel builds the
// api.ConnectionInput of a resource model, mergePatch turns it into the PATCH body, and extract
// copies an api.Connection back into a model. CRUD methods stay short because of it.

type githubModel struct {
	OwnerID        types.String `tfsdk:"owner_id"`
	Owner          types.String `tfsdk:"owner"`
	RepositoryID   types.String `tfsdk:"repository_id"`
	Repository     types.String `tfsdk:"repository"`
	Ref            types.String `tfsdk:"ref"`
	Environment    types.String `tfsdk:"environment"`
	EnterpriseSlug types.String `tfsdk:"enterprise_slug"`
	Host           types.String `tfsdk:"host"`
	Audience       types.String `tfsdk:"audience"`
}

type gitlabModel struct {
	Domain      types.String `tfsdk:"domain"`
	Group       types.String `tfsdk:"group"`
	ProjectPath types.String `tfsdk:"project_path"`
	ProjectID   types.String `tfsdk:"project_id"`
	Audience    types.String `tfsdk:"audience"`
}

type circleciModel struct {
	OrganizationID types.String `tfsdk:"organization_id"`
	ProjectID      types.String `tfsdk:"project_id"`
}

type googleCloudModel struct {
	ClientID  types.String `tfsdk:"client_id"`
	Email     types.String `tfsdk:"email"`
	AccountID types.String `tfsdk:"account_id"`
}

type tokenTTLModel struct {
	Amount types.Int64  `tfsdk:"amount"`
	Unit   types.String `tfsdk:"unit"`
}

type conditionModel struct {
	Claim    types.String `tfsdk:"claim"`
	Operator types.String `tfsdk:"operator"`
	Value    types.String `tfsdk:"value"`
	Values   types.List   `tfsdk:"values"`
}

// conditionAttrTypes is the object type of one condition (user or effective).
var conditionAttrTypes = map[string]attr.Type{
	"claim":    types.StringType,
	"operator": types.StringType,
	"value":    types.StringType,
	"values":   types.ListType{ElemType: types.StringType},
}

var tokenTTLAttrTypes = map[string]attr.Type{
	"amount": types.Int64Type,
	"unit":   types.StringType,
}

// connectionModel is trustgate_workload_connection.
type connectionModel struct {
	ID                  types.String      `tfsdk:"id"`
	Name                types.String      `tfsdk:"name"`
	Description         types.String      `tfsdk:"description"`
	ProviderType        types.String      `tfsdk:"provider_type"`
	GitHub              *githubModel      `tfsdk:"github"`
	GitLab              *gitlabModel      `tfsdk:"gitlab"`
	CircleCI            *circleciModel    `tfsdk:"circleci"`
	GoogleCloud         *googleCloudModel `tfsdk:"google_cloud"`
	JWKSURL             types.String      `tfsdk:"jwks_url"`
	TokenTTL            *tokenTTLModel    `tfsdk:"token_ttl"`
	IdentityClaim       types.String      `tfsdk:"identity_claim"`
	Conditions          []conditionModel  `tfsdk:"condition"`
	IssuerURL           types.String      `tfsdk:"issuer_url"`
	JWKS                types.String      `tfsdk:"jwks"`
	ClaimMappings       types.Map         `tfsdk:"claim_mappings"`
	TokenAudience       types.List        `tfsdk:"token_audience"`
	SingleUse           types.Bool        `tfsdk:"single_use"`
	EffectiveConditions types.List        `tfsdk:"effective_conditions"`
	Status              types.String      `tfsdk:"status"`
	Revision            types.Int64       `tfsdk:"revision"`
	Fingerprint         types.String      `tfsdk:"fingerprint"`
	CreatedBy           types.String      `tfsdk:"created_by"`
	ActivatedBy         types.String      `tfsdk:"activated_by"`
	ActivatedAt         types.String      `tfsdk:"activated_at"`
	ConfigChangedBy     types.String      `tfsdk:"config_changed_by"`
	LiveFingerprint     types.String      `tfsdk:"live_fingerprint"`
	ProposalPending     types.Bool        `tfsdk:"proposal_pending"`
}

// providerTypeOf names the provider type that the preset blocks select: generic when none is set.
func providerTypeOf(github, gitlab, circleci, googleCloud bool) string {
	switch {
	case github:
		return api.ProviderGitHub
	case gitlab:
		return api.ProviderGitLab
	case circleci:
		return api.ProviderCircleCI
	case googleCloud:
		return api.ProviderGoogleCloud
	}
	return api.ProviderGeneric
}

// fromModel builds the API input of a planned connection. jwksOverride is the configured
// jwks_url (null when the preset should derive it): the planned value may be the derived one.
func fromModel(ctx context.Context, m connectionModel, jwksOverride types.String) (api.ConnectionInput, diag.Diagnostics) {
	var diags diag.Diagnostics
	in := api.ConnectionInput{
		Name:          m.Name.ValueString(),
		Description:   m.Description.ValueString(),
		ProviderType:  providerTypeOf(m.GitHub != nil, m.GitLab != nil, m.CircleCI != nil, m.GoogleCloud != nil),
		JWKSURL:       jwksOverride.ValueString(),
		IdentityClaim: m.IdentityClaim.ValueString(),
		Conditions:    []api.Condition{},
		IssuerURL:     m.IssuerURL.ValueString(),
		JWKS:          m.JWKS.ValueString(),
		SingleUse:     m.SingleUse.ValueBool(),
	}
	if !m.ClaimMappings.IsNull() && !m.ClaimMappings.IsUnknown() {
		diags.Append(m.ClaimMappings.ElementsAs(ctx, &in.ClaimMappings, false)...)
	}
	if !m.TokenAudience.IsNull() && !m.TokenAudience.IsUnknown() {
		diags.Append(m.TokenAudience.ElementsAs(ctx, &in.TokenAudience, false)...)
	}
	if g := m.GitHub; g != nil {
		in.GitHub = &api.GitHubSettings{
			OwnerID: g.OwnerID.ValueString(), Owner: g.Owner.ValueString(),
			RepositoryID: g.RepositoryID.ValueString(), Repository: g.Repository.ValueString(),
			Ref: g.Ref.ValueString(), Environment: g.Environment.ValueString(),
			EnterpriseSlug: g.EnterpriseSlug.ValueString(), Host: g.Host.ValueString(), Audience: g.Audience.ValueString(),
		}
	}
	if g := m.GitLab; g != nil {
		in.GitLab = &api.GitLabSettings{
			Domain: g.Domain.ValueString(), Group: g.Group.ValueString(), ProjectPath: g.ProjectPath.ValueString(),
			ProjectID: g.ProjectID.ValueString(), Audience: g.Audience.ValueString(),
		}
	}
	if c := m.CircleCI; c != nil {
		in.CircleCI = &api.CircleCISettings{OrganizationID: c.OrganizationID.ValueString(), ProjectID: c.ProjectID.ValueString()}
	}
	if g := m.GoogleCloud; g != nil {
		in.GoogleCloud = &api.GoogleCloudSettings{
			ClientID: g.ClientID.ValueString(), Email: g.Email.ValueString(), AccountID: g.AccountID.ValueString(),
		}
	}
	if t := m.TokenTTL; t != nil {
		in.TokenTTL = &api.TokenTTL{Amount: t.Amount.ValueInt64(), Unit: t.Unit.ValueString()}
	}
	for _, c := range m.Conditions {
		cond := api.Condition{Claim: c.Claim.ValueString(), Operator: c.Operator.ValueString()}
		if !c.Value.IsNull() && !c.Value.IsUnknown() {
			v := c.Value.ValueString()
			cond.Value = &v
		}
		if !c.Values.IsNull() && !c.Values.IsUnknown() {
			diags.Append(c.Values.ElementsAs(ctx, &cond.Values, false)...)
		}
		in.Conditions = append(in.Conditions, cond)
	}
	return in, diags
}

// mergePatch is the PATCH body that makes the server's connection equal to in: every field the
// configuration leaves out is an explicit JSON null, inside the preset object too, because a JSON
// merge patch (RFC 7396) keeps whatever the body does not mention. For the same reason a
// claim_mappings entry that priorMappings (the state's, which the patch applies to: the update
// sends the state's revision as If-Match) has and in has not is sent as null: the patch merges
// objects key by key.
func mergePatch(in api.ConnectionInput, priorMappings []string) map[string]any {
	p := map[string]any{
		"name":           in.Name,
		"description":    in.Description,
		"provider_type":  in.ProviderType,
		"github":         nullableObject(in.GitHub),
		"gitlab":         nullableObject(in.GitLab),
		"circleci":       nullableObject(in.CircleCI),
		"google_cloud":   nullableObject(in.GoogleCloud),
		"jwks_url":       nil,
		"token_ttl":      nil,
		"identity_claim": nil,
		"conditions":     in.Conditions,
		"issuer_url":     nil,
		"jwks":           nil,
		"claim_mappings": nil,
		"token_audience": nil,
		"single_use":     in.SingleUse,
	}
	if in.IssuerURL != "" {
		p["issuer_url"] = in.IssuerURL
	}
	if in.JWKS != "" {
		p["jwks"] = in.JWKS
	}
	if len(in.ClaimMappings) > 0 {
		mappings := make(map[string]any, len(in.ClaimMappings)+len(priorMappings))
		for _, name := range priorMappings {
			mappings[name] = nil
		}
		for name, source := range in.ClaimMappings {
			mappings[name] = source
		}
		p["claim_mappings"] = mappings
	}
	if len(in.TokenAudience) > 0 {
		p["token_audience"] = in.TokenAudience
	}
	if in.JWKSURL != "" {
		p["jwks_url"] = in.JWKSURL
	}
	if in.TokenTTL != nil {
		p["token_ttl"] = map[string]any{"amount": in.TokenTTL.Amount, "unit": in.TokenTTL.Unit}
	}
	if in.IdentityClaim != "" {
		p["identity_claim"] = in.IdentityClaim
	}
	if in.Conditions == nil {
		p["conditions"] = []api.Condition{}
	}
	return p
}

// nullableObject turns a pointer to a settings struct of string fields into a map with one entry
// per JSON field, empty strings as null; a nil pointer is null.
func nullableObject(v any) any {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return nil
	}
	rv = rv.Elem()
	out := map[string]any{}
	for i := 0; i < rv.NumField(); i++ {
		name, _, _ := strings.Cut(rv.Type().Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		if s := rv.Field(i).String(); s != "" {
			out[name] = s
		} else {
			out[name] = nil
		}
	}
	return out
}

// extract copies what the server answered into the resource model. The configuration attributes,
// fingerprint, effective_conditions and jwks_url describe the pending proposal when there is one
// (described); live_fingerprint, status, revision and the principals describe what is live.
func (m *connectionModel) extract(ctx context.Context, live *api.Connection) diag.Diagnostics {
	var diags diag.Diagnostics
	c := described(live)
	m.ID = types.StringValue(c.ID)
	m.Name = types.StringValue(c.Name)
	m.Description = types.StringValue(c.Description)
	m.ProviderType = types.StringValue(c.ProviderType)
	m.GitHub, m.GitLab, m.CircleCI, m.GoogleCloud = presetModels(c)
	// No JWKS URL when the keys come from OIDC discovery (issuer_url) or are given inline (jwks).
	m.JWKSURL = stringOrNull(c.JWKSURL)
	m.TokenTTL = &tokenTTLModel{Amount: types.Int64Value(c.TokenTTL.Amount), Unit: types.StringValue(c.TokenTTL.Unit)}
	m.IdentityClaim = types.StringValue(c.IdentityClaim)
	m.Conditions, diags = conditionModels(ctx, c.Conditions)
	m.IssuerURL = stringOrNull(c.IssuerURL)
	m.JWKS = stringOrNull(c.JWKS)
	var d diag.Diagnostics
	m.ClaimMappings, m.TokenAudience, d = tokenShape(ctx, c.ClaimMappings, c.TokenAudience)
	diags.Append(d...)
	m.SingleUse = types.BoolValue(c.SingleUse)
	m.EffectiveConditions, d = conditionList(ctx, c.EffectiveConditions)
	diags.Append(d...)
	m.Status = types.StringValue(live.Status)
	m.Revision = types.Int64Value(live.Revision)
	m.Fingerprint = types.StringValue(c.Fingerprint)
	m.CreatedBy = types.StringValue(live.CreatedBy)
	m.ActivatedBy = stringOrNull(live.ActivatedBy)
	m.ActivatedAt = timeOrNull(live.ActivatedAt)
	m.ConfigChangedBy = stringOrNull(live.ConfigChangedBy)
	m.LiveFingerprint = types.StringValue(live.Fingerprint)
	m.ProposalPending = types.BoolValue(live.Proposal != nil)
	return diags
}

// described is the connection as the platform workspace's resource describes it (CONTRACT.md §6,
// change control): while a proposal is pending, its configuration, effective conditions, JWKS URL
// and fingerprint stand in for the live ones, because that is what the workspace's last apply
// asked for; the plan stays empty until someone else changes the proposal or discards it. Status,
// revision and the principals stay live. Without a proposal it is the connection itself.
func described(live *api.Connection) *api.Connection {
	p := live.Proposal
	if p == nil {
		return live
	}
	c := *live
	cfg := p.Config
	c.Name, c.Description = cfg.Name, cfg.Description
	c.ProviderType = cfg.ProviderType
	if c.ProviderType == "" {
		c.ProviderType = providerTypeOf(cfg.GitHub != nil, cfg.GitLab != nil, cfg.CircleCI != nil, cfg.GoogleCloud != nil)
	}
	c.GitHub, c.GitLab, c.CircleCI, c.GoogleCloud = cfg.GitHub, cfg.GitLab, cfg.CircleCI, cfg.GoogleCloud
	c.JWKSURL, c.JWKSURLOverridden = p.JWKSURL, cfg.JWKSURL != ""
	if cfg.TokenTTL != nil {
		c.TokenTTL = *cfg.TokenTTL
	}
	c.IdentityClaim = cfg.IdentityClaim
	if c.IdentityClaim == "" {
		c.IdentityClaim = api.DefaultIdentity
	}
	c.Conditions = cfg.Conditions
	c.EffectiveConditions = p.EffectiveConditions
	c.IssuerURL, c.JWKS, c.ClaimMappings, c.TokenAudience, c.SingleUse = cfg.IssuerURL, cfg.JWKS, cfg.ClaimMappings, cfg.TokenAudience, cfg.SingleUse
	c.Fingerprint = p.Fingerprint
	return &c
}

func presetModels(c *api.Connection) (*githubModel, *gitlabModel, *circleciModel, *googleCloudModel) {
	var gh *githubModel
	var gl *gitlabModel
	var cc *circleciModel
	var gc *googleCloudModel
	if g := c.GitHub; g != nil {
		gh = &githubModel{
			OwnerID: types.StringValue(g.OwnerID), Owner: stringOrNull(g.Owner),
			RepositoryID: stringOrNull(g.RepositoryID), Repository: stringOrNull(g.Repository),
			Ref: stringOrNull(g.Ref), Environment: stringOrNull(g.Environment),
			EnterpriseSlug: stringOrNull(g.EnterpriseSlug), Host: stringOrNull(g.Host), Audience: stringOrNull(g.Audience),
		}
	}
	if g := c.GitLab; g != nil {
		gl = &gitlabModel{
			Domain: types.StringValue(g.Domain), Group: stringOrNull(g.Group), ProjectPath: stringOrNull(g.ProjectPath),
			ProjectID: stringOrNull(g.ProjectID), Audience: stringOrNull(g.Audience),
		}
	}
	if x := c.CircleCI; x != nil {
		cc = &circleciModel{OrganizationID: types.StringValue(x.OrganizationID), ProjectID: stringOrNull(x.ProjectID)}
	}
	if g := c.GoogleCloud; g != nil {
		gc = &googleCloudModel{ClientID: types.StringValue(g.ClientID), Email: stringOrNull(g.Email), AccountID: stringOrNull(g.AccountID)}
	}
	return gh, gl, cc, gc
}

// tokenShape converts claim_mappings and token_audience; none is null (the server stores an empty
// map or list as none, and the resource's validators refuse an empty one, so null is how a
// configuration says it).
func tokenShape(ctx context.Context, mappings map[string]string, audience []string) (types.Map, types.List, diag.Diagnostics) {
	var diags diag.Diagnostics
	m, l := types.MapNull(types.StringType), types.ListNull(types.StringType)
	if len(mappings) > 0 {
		var d diag.Diagnostics
		m, d = types.MapValueFrom(ctx, types.StringType, mappings)
		diags.Append(d...)
	}
	if len(audience) > 0 {
		var d diag.Diagnostics
		l, d = types.ListValueFrom(ctx, types.StringType, audience)
		diags.Append(d...)
	}
	return m, l, diags
}

// mappingNames are the claim names of a claim_mappings value (none when null or unknown).
func mappingNames(m types.Map) []string {
	if m.IsNull() || m.IsUnknown() {
		return nil
	}
	names := make([]string, 0, len(m.Elements()))
	for name := range m.Elements() {
		names = append(names, name)
	}
	return names
}

// conditionModels converts API conditions; never nil, because an absent block list is empty.
func conditionModels(ctx context.Context, in []api.Condition) ([]conditionModel, diag.Diagnostics) {
	var diags diag.Diagnostics
	out := make([]conditionModel, 0, len(in))
	for _, c := range in {
		m := conditionModel{
			Claim:    types.StringValue(c.Claim),
			Operator: types.StringValue(c.Operator),
			Value:    types.StringNull(),
			Values:   types.ListNull(types.StringType),
		}
		if c.Value != nil {
			m.Value = types.StringValue(*c.Value)
		}
		if c.Values != nil {
			var d diag.Diagnostics
			m.Values, d = types.ListValueFrom(ctx, types.StringType, c.Values)
			diags.Append(d...)
		}
		out = append(out, m)
	}
	return out, diags
}

// conditionList is a list value of condition objects (effective_conditions, data sources).
func conditionList(ctx context.Context, in []api.Condition) (types.List, diag.Diagnostics) {
	models, diags := conditionModels(ctx, in)
	l, d := types.ListValueFrom(ctx, types.ObjectType{AttrTypes: conditionAttrTypes}, models)
	diags.Append(d...)
	return l, diags
}

func stringOrNull(s string) types.String {
	if s == "" {
		return types.StringNull()
	}
	return types.StringValue(s)
}

func timeOrNull(t *time.Time) types.String {
	if t == nil || t.IsZero() {
		return types.StringNull()
	}
	return types.StringValue(t.UTC().Format(time.RFC3339))
}

// jwksPrivateKey is the private-state key remembering whether jwks_url was user-given, so that
// removing the override from the configuration plans a change (an optional+computed attribute
// would otherwise keep the old value silently).
const jwksPrivateKey = "jwks_url_overridden"

func jwksPrivateValue(overridden bool) []byte {
	b, _ := json.Marshal(overridden)
	return b
}
