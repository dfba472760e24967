// Package provider is the Trustgate Terraform provider: the platform team's
// trustgate_workload_connection, the security team's trustgate_workload_connection_activation,
// the trustgate_workload_connection(s) data sources and the trustgate_access_token ephemeral
// resource (CONTRACT.md §6). Every call to the server goes through api/apiclient.
package provider

import (
	"context"
	"os"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
)

// Address is the provider's registry address.
const Address = "registry.terraform.io/trustgate/trustgate"

// Environment variables read when the provider block leaves a setting out.
const (
	EnvEndpoint = "TRUSTGATE_ENDPOINT"
	EnvAPIKey   = "TRUSTGATE_API_KEY"
)

var (
	_ provider.Provider                       = &trustgateProvider{}
	_ provider.ProviderWithEphemeralResources = &trustgateProvider{}
)

type trustgateProvider struct {
	version string
}

// New returns the provider factory for providerserver.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &trustgateProvider{version: version} }
}

type providerModel struct {
	Endpoint types.String `tfsdk:"endpoint"`
	APIKey   types.String `tfsdk:"api_key"`
}

// providerData is what Configure hands to every resource, data source and ephemeral resource.
type providerData struct {
	client    *apiclient.Client
	hasAPIKey bool
}

func (p *trustgateProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "trustgate"
	resp.Version = p.version
}

func (p *trustgateProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		Description: "Manage Trustgate workload connections (platform team), activate them (security team) " +
			"and exchange CI tokens for Trustgate access tokens.",
		Attributes: map[string]schema.Attribute{
			"endpoint": schema.StringAttribute{
				Optional: true,
				Description: "URL of the Trustgate server, e.g. `https://trustgate.example.com`. " +
					"Defaults to the `" + EnvEndpoint + "` environment variable.",
			},
			"api_key": schema.StringAttribute{
				Optional:  true,
				Sensitive: true,
				Description: "Trustgate API key: a `devops_admin` key for the platform workspace, a `security_admin` key " +
					"for the security workspace. Defaults to the `" + EnvAPIKey + "` environment variable. " +
					"Not needed when the configuration only uses the `trustgate_access_token` ephemeral resource.",
			},
		},
	}
}

func (p *trustgateProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if cfg.Endpoint.IsUnknown() {
		resp.Diagnostics.AddAttributeError(path.Root("endpoint"), "Unknown Trustgate endpoint",
			"The provider's endpoint depends on a value that is only known after apply. "+
				"Set it to a literal, a variable, or the "+EnvEndpoint+" environment variable.")
	}
	if cfg.APIKey.IsUnknown() {
		resp.Diagnostics.AddAttributeError(path.Root("api_key"), "Unknown Trustgate API key",
			"The provider's api_key depends on a value that is only known after apply. "+
				"Set it from a variable or the "+EnvAPIKey+" environment variable.")
	}
	if resp.Diagnostics.HasError() {
		return
	}

	endpoint := os.Getenv(EnvEndpoint)
	if !cfg.Endpoint.IsNull() {
		endpoint = cfg.Endpoint.ValueString()
	}
	apiKey := os.Getenv(EnvAPIKey)
	if !cfg.APIKey.IsNull() {
		apiKey = cfg.APIKey.ValueString()
	}
	if endpoint == "" {
		resp.Diagnostics.AddAttributeError(path.Root("endpoint"), "Missing Trustgate endpoint",
			"The provider does not know which Trustgate server to talk to. Set endpoint in the provider block "+
				"(endpoint = \"https://trustgate.example.com\") or the "+EnvEndpoint+" environment variable.")
		return
	}
	client, err := apiclient.New(endpoint, apiKey, apiclient.WithUserAgent("terraform-provider-trustgate/"+p.version))
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("endpoint"), "Invalid Trustgate endpoint", err.Error())
		return
	}
	data := &providerData{client: client, hasAPIKey: apiKey != ""}
	resp.ResourceData = data
	resp.DataSourceData = data
	resp.EphemeralResourceData = data
}

func (p *trustgateProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		NewWorkloadConnectionResource,
		NewWorkloadConnectionActivationResource,
	}
}

func (p *trustgateProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		NewWorkloadConnectionDataSource,
		NewWorkloadConnectionsDataSource,
	}
}

func (p *trustgateProvider) EphemeralResources(context.Context) []func() ephemeral.EphemeralResource {
	return []func() ephemeral.EphemeralResource{
		NewAccessTokenEphemeralResource,
	}
}
