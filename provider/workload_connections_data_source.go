package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
)

var _ datasource.DataSourceWithConfigure = &connectionsDataSource{}

// NewWorkloadConnectionsDataSource is the trustgate_workload_connections data source.
func NewWorkloadConnectionsDataSource() datasource.DataSource { return &connectionsDataSource{} }

type connectionsDataSource struct {
	client *apiclient.Client
}

type connectionsDataModel struct {
	Status       types.String          `tfsdk:"status"`
	ProviderType types.String          `tfsdk:"provider_type"`
	NamePrefix   types.String          `tfsdk:"name_prefix"`
	Connections  []connectionDataModel `tfsdk:"connections"`
}

func (d *connectionsDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_workload_connections"
}

func (d *connectionsDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.client = clientFrom(req.ProviderData, true, &resp.Diagnostics)
}

func (d *connectionsDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Lists workload connections, optionally filtered, with every field of each.",
		Attributes: map[string]schema.Attribute{
			"status": schema.StringAttribute{
				Optional: true, MarkdownDescription: "Only connections in this status: `draft`, `active` or `inactive`.",
				Validators: []validator.String{stringvalidator.OneOf(api.Statuses...)},
			},
			"provider_type": schema.StringAttribute{
				Optional: true, MarkdownDescription: "Only connections of this type: `generic`, `github`, `gitlab`, `circleci` or `google_cloud`.",
				Validators: []validator.String{stringvalidator.OneOf(api.ProviderTypes...)},
			},
			"name_prefix": schema.StringAttribute{
				Optional: true, MarkdownDescription: "Only connections whose name starts with this prefix.",
			},
			"connections": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The matching connections, ordered by the server.",
				NestedObject:        schema.NestedAttributeObject{Attributes: connectionDataAttributes()},
			},
		},
	}
}

func (d *connectionsDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m connectionsDataModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	all, err := d.client.ListAllConnections(ctx, apiclient.ListOptions{
		Status:       m.Status.ValueString(),
		ProviderType: m.ProviderType.ValueString(),
		NamePrefix:   m.NamePrefix.ValueString(),
	})
	if err != nil {
		addAPIError(&resp.Diagnostics, "list workload connections", err)
		return
	}
	m.Connections = make([]connectionDataModel, 0, len(all))
	for i := range all {
		c, diags := connectionData(ctx, &all[i])
		resp.Diagnostics.Append(diags...)
		m.Connections = append(m.Connections, c)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
}
