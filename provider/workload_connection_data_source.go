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
}

// connectionData converts an API connection for the data sources.
func connectionData(ctx context.Context, c *api.Connection) (connectionDataModel, diag.Diagnostics) {
	var diags diag.Diagnostics
	m := connectionDataModel{
		ID:                types.StringValue(c.ID),
		Name:              types.StringValue(c.Name),
		Description:       types.StringValue(c.Description),
		ProviderType:      types.StringValue(c.ProviderType),
		JWKSURL:           types.StringValue(c.JWKSURL),
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
	}
	m.GitHub, m.GitLab, m.CircleCI, m.GoogleCloud = presetModels(c)
	var d diag.Diagnostics
	m.Conditions, d = conditionList(ctx, c.Conditions)
	diags.Append(d...)
	m.EffectiveConditions, d = conditionList(ctx, c.EffectiveConditions)
	diags.Append(d...)
	return m, diags
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
				"value":    str("Expected value (`equals`, `starts_with`)."),
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
	return map[string]schema.Attribute{
		"id":            str("Id (UUID) of the connection."),
		"name":          str("Name of the connection."),
		"description":   str("Free-text description."),
		"provider_type": str("`generic`, `github`, `gitlab`, `circleci` or `google_cloud`."),
		"github": preset("GitHub Actions preset settings; null for other types.",
			"owner", "owner_id", "repository", "ref", "environment", "enterprise_slug", "audience"),
		"gitlab":              preset("GitLab CI preset settings; null for other types.", "domain", "group", "project_path", "project_id", "audience"),
		"circleci":            preset("CircleCI preset settings; null for other types.", "organization_id", "project_id"),
		"google_cloud":        preset("Google Cloud preset settings; null for other types.", "client_id", "email", "account_id"),
		"jwks_url":            str("Effective JWKS URL (the override, or the one the preset derives)."),
		"jwks_url_overridden": schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether `jwks_url` was set explicitly."},
		"token_ttl": schema.SingleNestedAttribute{Computed: true, MarkdownDescription: "Lifetime of issued access tokens.",
			Attributes: map[string]schema.Attribute{
				"amount": schema.Int64Attribute{Computed: true, MarkdownDescription: "Number of units."},
				"unit":   str("`seconds`, `minutes` or `hours`."),
			}},
		"identity_claim":       str("Claim that names the workload in issued tokens."),
		"conditions":           conds("The user's conditions."),
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
	}
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
