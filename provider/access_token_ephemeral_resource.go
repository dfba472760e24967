package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
)

var _ ephemeral.EphemeralResourceWithConfigure = &accessTokenEphemeralResource{}

// NewAccessTokenEphemeralResource is the trustgate_access_token ephemeral resource.
func NewAccessTokenEphemeralResource() ephemeral.EphemeralResource {
	return &accessTokenEphemeralResource{now: time.Now}
}

type accessTokenEphemeralResource struct {
	client *apiclient.Client
	now    func() time.Time
}

type accessTokenModel struct {
	ConnectionName types.String `tfsdk:"connection_name"`
	SubjectToken   types.String `tfsdk:"subject_token"`
	Audience       types.String `tfsdk:"audience"`
	AccessToken    types.String `tfsdk:"access_token"`
	TokenType      types.String `tfsdk:"token_type"`
	ExpiresAt      types.String `tfsdk:"expires_at"`
}

func (e *accessTokenEphemeralResource) Metadata(_ context.Context, req ephemeral.MetadataRequest, resp *ephemeral.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_access_token"
}

func (e *accessTokenEphemeralResource) Configure(_ context.Context, req ephemeral.ConfigureRequest, resp *ephemeral.ConfigureResponse) {
	e.client = clientFrom(req.ProviderData, false, &resp.Diagnostics)
}

func (e *accessTokenEphemeralResource) Schema(_ context.Context, _ ephemeral.SchemaRequest, resp *ephemeral.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Exchanges the CI job's OIDC token for a short-lived Trustgate access token (RFC 8693), " +
			"for Terraform runs in CI that need a token. Ephemeral: the token is never written to the plan or the " +
			"state. Needs Terraform 1.10 or later; the provider needs no API key for it.",
		Attributes: map[string]schema.Attribute{
			"connection_name": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "Name of an `active` workload connection.",
				Validators:          []validator.String{stringvalidator.RegexMatches(nameRegexp, "must be a workload connection name")},
			},
			"subject_token": schema.StringAttribute{
				Required:            true,
				Sensitive:           true,
				MarkdownDescription: "The CI system's OIDC JWT (for example GitHub's ID token or GitLab's `id_tokens` variable).",
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"audience": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "The audience (`aud`) to ask for, the RFC 8693 `audience` parameter: one of the " +
					"connection's `token_audience` (or the server's public URL when it has none); the token's `aud` is then " +
					"this value alone. Any other value is refused (`invalid_target`). Without it `aud` is the whole " +
					"`token_audience` list, or the public URL.",
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"access_token": schema.StringAttribute{
				Computed: true, Sensitive: true,
				MarkdownDescription: "The Trustgate access token (a JWT signed by the server).",
			},
			"token_type": schema.StringAttribute{
				Computed: true, MarkdownDescription: "`Bearer`.",
			},
			"expires_at": schema.StringAttribute{
				Computed: true, MarkdownDescription: "When the access token expires (RFC 3339).",
			},
		},
	}
}

func (e *accessTokenEphemeralResource) Open(ctx context.Context, req ephemeral.OpenRequest, resp *ephemeral.OpenResponse) {
	var m accessTokenModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	before := e.now()
	tok, err := e.client.Exchange(ctx, api.TokenRequest{
		Connection: m.ConnectionName.ValueString(), SubjectToken: m.SubjectToken.ValueString(), Audience: m.Audience.ValueString(),
	})
	if err != nil {
		var oe *apiclient.OAuthError
		if errors.As(err, &oe) {
			resp.Diagnostics.AddError("Trustgate refused the token exchange",
				fmt.Sprintf("%s\n\n%s", oe.Error(), exchangeHint(oe.Err.Error)))
			return
		}
		addAPIError(&resp.Diagnostics, "exchange a token", err)
		return
	}
	m.AccessToken = types.StringValue(tok.AccessToken)
	m.TokenType = types.StringValue(tok.TokenType)
	m.ExpiresAt = types.StringValue(before.Add(time.Duration(tok.ExpiresIn) * time.Second).UTC().Format(time.RFC3339))
	resp.Diagnostics.Append(resp.Result.Set(ctx, &m)...)
}

// exchangeHint says what to do about an OAuth error code (CONTRACT.md §4).
func exchangeHint(code string) string {
	switch code {
	case "invalid_target":
		return "The connection does not exist or is not active, or audience is not one of its token_audience: check " +
			"connection_name and audience, and ask the security team to activate the connection."
	case "invalid_grant":
		return "The CI token does not meet the connection's checks. A devops or security admin can see which check " +
			"failed, with expected and actual values, in the audit log or with the connection's test endpoint."
	case "invalid_request":
		return "The request was malformed: check that subject_token is the raw JWT."
	}
	return "See the Trustgate server's audit log for details."
}
