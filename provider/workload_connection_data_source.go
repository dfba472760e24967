package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-validators/datasourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
)

var (
	_ datasource.DataSourceWithConfigure        = &connectionDataSource{}
	_ datasource.DataSourceWithConfigValidators = &connectionDataSource{}
)

// NewWorkloadConnectionDataSource is the trustgate_workload_connection data source.
func NewWorkloadConnectionDataSource() datasource.DataSource { return &connectionDataSource{} }

type connectionDataSource struct {
	client *apiclient.Client
}

// connectionDataModel is every field of a connection, read-only.
type connectionDataModel struct {
	ID                  types.String      `tfsdk:"id"`
	Name                types.String      `tfsdk:"name"`
	Description         types.String      `tfsdk:"description"`
	ProviderType        types.String      `tfsdk:"provider_type"`
	GitHub              *githubModel      `tfsdk:"github"`
	GitLab              *gitlabModel      `tfsdk:"gitlab"`
	CircleCI            *circleciModel    `tfsdk:"circleci"`
	GoogleCloud         *googleCloudModel `tfsdk:"google_cloud"`
	JWKSURL             types.String      `tfsdk:"jwks_url"`
	JWKSURLOverridden   types.Bool        `tfsdk:"jwks_url_overridden"`
	TokenTTL            *tokenTTLModel    `tfsdk:"token_ttl"`
	IdentityClaim       types.String      `tfsdk:"identity_claim"`
	Conditions          types.List        `tfsdk:"conditions"`
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
	UpdatedBy           types.String      `tfsdk:"updated_by"`
	ActivatedBy         types.String      `tfsdk:"activated_by"`
	CreatedAt           types.String      `tfsdk:"created_at"`
	UpdatedAt           types.String      `tfsdk:"updated_at"`
	ActivatedAt         types.String      `tfsdk:"activated_at"`
	ConfigChangedBy     types.String      `tfsdk:"config_changed_by"`
	Proposal            *proposalModel    `tfsdk:"proposal"`
}

// proposalModel is a connection's pending proposal, as the API gives it (CONTRACT.md §1).
type proposalModel struct {
	Fingerprint         types.String         `tfsdk:"fingerprint"`
	ProposedBy          types.String         `tfsdk:"proposed_by"`
	ProposedAt          types.String         `tfsdk:"proposed_at"`
	JWKSURL             types.String         `tfsdk:"jwks_url"`
	EffectiveConditions types.List           `tfsdk:"effective_conditions"`
	Config              *proposalConfigModel `tfsdk:"config"`
}

// proposalConfigModel is the configuration a proposal would make live, as in a create body.
type proposalConfigModel struct {
	Name          types.String      `tfsdk:"name"`
	Description   types.String      `tfsdk:"description"`
	ProviderType  types.String      `tfsdk:"provider_type"`
	GitHub        *githubModel      `tfsdk:"github"`
	GitLab        *gitlabModel      `tfsdk:"gitlab"`
	CircleCI      *circleciModel    `tfsdk:"circleci"`
	GoogleCloud   *googleCloudModel `tfsdk:"google_cloud"`
	JWKSURL       types.String      `tfsdk:"jwks_url"`
	TokenTTL      *tokenTTLModel    `tfsdk:"token_ttl"`
	IdentityClaim types.String      `tfsdk:"identity_claim"`
	Conditions    types.List        `tfsdk:"conditions"`
	IssuerURL     types.String      `tfsdk:"issuer_url"`
	JWKS          types.String      `tfsdk:"jwks"`
	ClaimMappings types.Map         `tfsdk:"claim_mappings"`
	TokenAudience types.List        `tfsdk:"token_audience"`
	SingleUse     types.Bool        `tfsdk:"single_use"`
}

// connectionData converts an API connection for the data sources.
func connectionData(ctx context.Context, c *api.Connection) (connectionDataModel, diag.Diagnostics) {
	var diags diag.Diagnostics
	m := connectionDataModel{
		ID:                types.StringValue(c.ID),
		Name:              types.StringValue(c.Name),
		Description:       types.StringValue(c.Description),
		ProviderType:      types.StringValue(c.ProviderType),
		JWKSURL:           stringOrNull(c.JWKSURL),
		JWKSURLOverridden: types.BoolValue(c.JWKSURLOverridden),
		TokenTTL:          &tokenTTLModel{Amount: types.Int64Value(c.TokenTTL.Amount), Unit: types.StringValue(c.TokenTTL.Unit)},
		IdentityClaim:     types.StringValue(c.IdentityClaim),
		Status:            types.StringValue(c.Status),
		Revision:          types.Int64Value(c.Revision),
		Fingerprint:       types.StringValue(c.Fingerprint),
		CreatedBy:         types.StringValue(c.CreatedBy),
		UpdatedBy:         stringOrNull(c.UpdatedBy),
		ActivatedBy:       stringOrNull(c.ActivatedBy),
		CreatedAt:         timeOrNull(&c.CreatedAt),
		UpdatedAt:         timeOrNull(&c.UpdatedAt),
		ActivatedAt:       timeOrNull(c.ActivatedAt),
		ConfigChangedBy:   stringOrNull(c.ConfigChangedBy),
		IssuerURL:         stringOrNull(c.IssuerURL),
		JWKS:              stringOrNull(c.JWKS),
		SingleUse:         types.BoolValue(c.SingleUse),
	}
	m.GitHub, m.GitLab, m.CircleCI, m.GoogleCloud = presetModels(c)
	var d diag.Diagnostics
	m.ClaimMappings, m.TokenAudience, d = tokenShape(ctx, c.ClaimMappings, c.TokenAudience)
	diags.Append(d...)
	m.Conditions, d = conditionList(ctx, c.Conditions)
	diags.Append(d...)
	m.EffectiveConditions, d = conditionList(ctx, c.EffectiveConditions)
	diags.Append(d...)
	if c.Proposal != nil {
		m.Proposal, d = proposalData(ctx, c.Proposal)
		diags.Append(d...)
	}
	return m, diags
}

// proposalData converts a pending proposal for the data sources.
func proposalData(ctx context.Context, p *api.Proposal) (*proposalModel, diag.Diagnostics) {
	cfg := p.Config
	out := &proposalModel{
		Fingerprint: types.StringValue(p.Fingerprint),
		ProposedBy:  types.StringValue(p.ProposedBy),
		ProposedAt:  timeOrNull(&p.ProposedAt),
		JWKSURL:     stringOrNull(p.JWKSURL),
		Config: &proposalConfigModel{
			Name: types.StringValue(cfg.Name), Description: types.StringValue(cfg.Description),
			ProviderType: types.StringValue(cfg.ProviderType), JWKSURL: stringOrNull(cfg.JWKSURL),
			IdentityClaim: types.StringValue(cfg.IdentityClaim),
			IssuerURL:     stringOrNull(cfg.IssuerURL), JWKS: stringOrNull(cfg.JWKS), SingleUse: types.BoolValue(cfg.SingleUse),
		},
	}
	// The presets convert as a connection's do.
	out.Config.GitHub, out.Config.GitLab, out.Config.CircleCI, out.Config.GoogleCloud =
		presetModels(&api.Connection{GitHub: cfg.GitHub, GitLab: cfg.GitLab, CircleCI: cfg.CircleCI, GoogleCloud: cfg.GoogleCloud})
	if t := cfg.TokenTTL; t != nil {
		out.Config.TokenTTL = &tokenTTLModel{Amount: types.Int64Value(t.Amount), Unit: types.StringValue(t.Unit)}
	}
	var diags, d diag.Diagnostics
	out.Config.Conditions, diags = conditionList(ctx, cfg.Conditions)
	out.EffectiveConditions, d = conditionList(ctx, p.EffectiveConditions)
	diags.Append(d...)
	out.Config.ClaimMappings, out.Config.TokenAudience, d = tokenShape(ctx, cfg.ClaimMappings, cfg.TokenAudience)
	diags.Append(d...)
	return out, diags
}

// connectionDataAttributes is the read-only schema of a connection, shared by both data sources.
func connectionDataAttributes() map[string]schema.Attribute {
	str := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, MarkdownDescription: desc}
	}
	conds := func(desc string) schema.ListNestedAttribute {
		return schema.ListNestedAttribute{Computed: true, MarkdownDescription: desc,
			NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
				"claim":    str("Claim name or JSON pointer."),
				"operator": str("One of " + operatorList() + "."),
				"value":    str("Expected value (`equals`, `starts_with`, `not_equals`) or pattern (`glob`)."),
				"values":   schema.ListAttribute{Computed: true, ElementType: types.StringType, MarkdownDescription: "Allowed values (`one_of`)."},
			}}}
	}
	preset := func(desc string, fields ...string) schema.SingleNestedAttribute {
		attrs := map[string]schema.Attribute{}
		for _, f := range fields {
			attrs[f] = str("Preset input `" + f + "`.")
		}
		return schema.SingleNestedAttribute{Computed: true, MarkdownDescription: desc, Attributes: attrs}
	}
	// The configuration fields, shared by a connection and its pending proposal.
	config := map[string]schema.Attribute{
		"name":          str("Name of the connection."),
		"description":   str("Free-text description."),
		"provider_type": str("`generic`, `github`, `gitlab`, `circleci` or `google_cloud`."),
		"github": preset("GitHub Actions preset settings; null for other types.",
			"owner_id", "owner", "repository_id", "repository", "ref", "environment", "enterprise_slug", "host", "audience"),
		"gitlab":       preset("GitLab CI preset settings; null for other types.", "domain", "group", "project_path", "project_id", "audience"),
		"circleci":     preset("CircleCI preset settings; null for other types.", "organization_id", "project_id"),
		"google_cloud": preset("Google Cloud preset settings; null for other types.", "client_id", "email", "account_id"),
		"token_ttl": schema.SingleNestedAttribute{Computed: true, MarkdownDescription: "Lifetime of issued access tokens.",
			Attributes: map[string]schema.Attribute{
				"amount": schema.Int64Attribute{Computed: true, MarkdownDescription: "Number of units."},
				"unit":   str("`seconds`, `minutes` or `hours`."),
			}},
		"identity_claim": str("Claim that names the workload in issued tokens."),
		"conditions":     conds("The user's conditions."),
		"issuer_url":     str("Issuer whose OIDC discovery document names the JWKS URL (generic connections); null when not used."),
		"jwks":           str("Inline JWKS document (public keys only); null when not used."),
		"claim_mappings": schema.MapAttribute{Computed: true, ElementType: types.StringType,
			MarkdownDescription: "Access-token claim name → source claim (name or JSON pointer), copied into the issued token's `claims` object; null when none."},
		"token_audience": schema.ListAttribute{Computed: true, ElementType: types.StringType,
			MarkdownDescription: "The audiences issued tokens may carry (all of them when an exchange asks for none); null for the server's public URL alone."},
		"single_use": schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether each CI token is exchanged at most once."},
	}
	proposalConfig := map[string]schema.Attribute{
		"jwks_url": str("The `jwks_url` override; null when the preset derives it (the proposal's `jwks_url` is the effective one)."),
	}
	attrs := map[string]schema.Attribute{
		"id":                   str("Id (UUID) of the connection."),
		"jwks_url":             str("Effective JWKS URL (the override, or the one the preset derives); null when the keys come from `issuer_url` or `jwks`."),
		"jwks_url_overridden":  schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether `jwks_url` was set explicitly."},
		"effective_conditions": conds("The preset's conditions followed by the user's, in evaluation order."),
		"status":               str("`draft`, `active` or `inactive`."),
		"revision":             schema.Int64Attribute{Computed: true, MarkdownDescription: "Revision, incremented on every change."},
		"fingerprint":          str("`sha256:<hex>` over everything that decides who gets a token: what a security admin approves."),
		"created_by":           str("Key that created the connection."),
		"updated_by":           str("Key that last changed the connection."),
		"activated_by":         str("Key that last activated the connection."),
		"created_at":           str("Creation time (RFC 3339)."),
		"updated_at":           str("Last change (RFC 3339)."),
		"activated_at":         str("Last activation (RFC 3339)."),
		"config_changed_by": str("Key that last changed the live configuration's rules (description changes do not count); " +
			"four eyes is judged against it."),
	}
	for k, v := range config {
		attrs[k] = v
		proposalConfig[k] = v
	}
	attrs["proposal"] = schema.SingleNestedAttribute{Computed: true,
		MarkdownDescription: "The change waiting for a security admin's approval on an activated connection; null when " +
			"nothing is pending. Approve it by setting `approved_fingerprint` of " +
			"`trustgate_workload_connection_activation` to its `fingerprint`.",
		Attributes: map[string]schema.Attribute{
			"fingerprint":          str("Fingerprint of the proposed configuration: what a security admin approves."),
			"proposed_by":          str("Key that proposed the change; it may not approve it."),
			"proposed_at":          str("When the change was proposed (RFC 3339)."),
			"jwks_url":             str("Effective JWKS URL of the proposed configuration."),
			"effective_conditions": conds("The conditions the proposed configuration would evaluate, in order."),
			"config": schema.SingleNestedAttribute{Computed: true, Attributes: proposalConfig,
				MarkdownDescription: "The proposed configuration, as in a create request."},
		},
	}
	return attrs
}

func (d *connectionDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_workload_connection"
}

func (d *connectionDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.client = clientFrom(req.ProviderData, true, &resp.Diagnostics)
}

func (d *connectionDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	attrs := connectionDataAttributes()
	attrs["id"] = schema.StringAttribute{Optional: true, Computed: true,
		MarkdownDescription: "Id of the connection to read. Exactly one of `id` and `name`."}
	attrs["name"] = schema.StringAttribute{Optional: true, Computed: true,
		MarkdownDescription: "Name of the connection to read. Exactly one of `id` and `name`."}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads one workload connection by `name` or `id`, with every field. The security team " +
			"uses it to review a connection, and its `fingerprint`, before activating it.",
		Attributes: attrs,
	}
}

func (d *connectionDataSource) ConfigValidators(context.Context) []datasource.ConfigValidator {
	return []datasource.ConfigValidator{datasourcevalidator.ExactlyOneOf(path.MatchRoot("id"), path.MatchRoot("name"))}
}

func (d *connectionDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var cfg connectionDataModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ref := cfg.Name.ValueString()
	if !cfg.ID.IsNull() {
		ref = cfg.ID.ValueString()
	}
	conn, err := d.client.GetConnection(ctx, ref)
	if err != nil {
		addAPIError(&resp.Diagnostics, fmt.Sprintf("read workload connection %q", ref), err)
		return
	}
	m, diags := connectionData(ctx, conn)
	resp.Diagnostics.Append(diags...)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
