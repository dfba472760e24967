package provider

import (
	"context"
	"fmt"
	"regexp"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/objectdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
)

var (
	_            resource.ResourceWithConfigure        = &workloadConnectionResource{}
	_            resource.ResourceWithImportState      = &workloadConnectionResource{}
	_            resource.ResourceWithModifyPlan       = &workloadConnectionResource{}
	_            resource.ResourceWithValidateConfig   = &workloadConnectionResource{}
	_            resource.ResourceWithConfigValidators = &workloadConnectionResource{}
	presetBlocks                                       = []string{api.ProviderGitHub, api.ProviderGitLab, api.ProviderCircleCI, api.ProviderGoogleCloud}
)

// NewWorkloadConnectionResource is trustgate_workload_connection.
func NewWorkloadConnectionResource() resource.Resource { return &workloadConnectionResource{} }

type workloadConnectionResource struct {
	client *apiclient.Client
}

func (r *workloadConnectionResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_workload_connection"
}

func (r *workloadConnectionResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = clientFrom(req.ProviderData, true, &resp.Diagnostics)
}

// optionalSetting is an optional preset input; "" is refused so that "not set" has one spelling.
// more are further plan-time checks of its shape.
func optionalSetting(desc string, more ...validator.String) schema.StringAttribute {
	return schema.StringAttribute{
		Optional:            true,
		MarkdownDescription: desc,
		Validators:          append([]validator.String{stringvalidator.LengthAtLeast(1)}, more...),
	}
}

// requiredSetting is an input the preset needs. Terraform would demand a Required attribute even
// when its block is absent, so it is Optional and the block's validator (requiresSettings) demands it.
func requiredSetting(desc string, more ...validator.String) schema.StringAttribute {
	return optionalSetting("**Required** in the block. "+desc, more...)
}

var nameRegexp = regexp.MustCompile(api.NamePattern)

func (r *workloadConnectionResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A workload connection: the trust anchor between Trustgate and one CI identity provider, with " +
			"the conditions a CI job's OIDC token must meet to get a Trustgate access token. Managed by the platform " +
			"team with a `devops_admin` key. It is created as a `draft`; a security admin activates it with " +
			"`trustgate_workload_connection_activation` in another workspace. Once activated, an apply of a changed " +
			"configuration does not change what Trustgate enforces: it stores a *proposal* that a security admin who did " +
			"not write it approves by its fingerprint. While a proposal is pending, the configuration attributes, " +
			"`fingerprint`, `effective_conditions` and `jwks_url` describe the proposal, `live_fingerprint` what is " +
			"enforced, and `proposal_pending` is true.\n\nAt most one preset block (`github`, `gitlab`, `circleci`, " +
			"`google_cloud`) may be set; " +
			"none means a generic connection, which needs a key source (`jwks_url`, `issuer_url` or `jwks`) and " +
			"conditions on `iss` and `aud` (`issuer_url` pins `iss` itself).",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "Server-assigned UUID of the connection.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "Unique, URL-friendly name: 1–63 lowercase letters, digits and hyphens, starting and " +
					"ending with a letter or digit. CI jobs name it in the token exchange. It can be changed only while " +
					"the connection is a draft.",
				Validators: []validator.String{stringvalidator.RegexMatches(nameRegexp,
					"must be 1–63 lowercase letters, digits and hyphens, starting and ending with a letter or digit")},
			},
			"description": schema.StringAttribute{
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString(""),
				MarkdownDescription: fmt.Sprintf("Free text, at most %d characters.", api.MaxDescriptionLen),
				Validators:          []validator.String{stringvalidator.LengthAtMost(api.MaxDescriptionLen)},
			},
			"provider_type": schema.StringAttribute{
				Computed:      true,
				PlanModifiers: []planmodifier.String{providerTypeFromPreset{}},
				MarkdownDescription: "The provider type the preset block selects: `github`, `gitlab`, `circleci`, " +
					"`google_cloud`, or `generic` when no preset block is set.",
			},
			"jwks_url": schema.StringAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "Where the CI system's token-signing keys are published. Required without a preset " +
					"block unless `issuer_url` or `jwks` gives the keys; derived from the preset otherwise, and may be " +
					"overridden. Must be `https` unless the server runs with `--allow-insecure-jwks`. Null when the keys " +
					"come from `issuer_url` or `jwks`.",
			},
			"token_ttl": schema.SingleNestedAttribute{
				Optional: true,
				Computed: true,
				MarkdownDescription: "Lifetime of the access tokens this connection issues, stored exactly as written. " +
					"Between 60 seconds and 24 hours in total; defaults to `{ amount = 1, unit = \"hours\" }`.",
				Default: objectdefault.StaticValue(types.ObjectValueMust(tokenTTLAttrTypes, map[string]attr.Value{
					"amount": types.Int64Value(1),
					"unit":   types.StringValue(api.UnitHours),
				})),
				Validators: []validator.Object{tokenTTLBounds{}},
				Attributes: map[string]schema.Attribute{
					"amount": schema.Int64Attribute{
						Required:            true,
						MarkdownDescription: "Number of units, at least 1.",
						Validators:          []validator.Int64{int64validator.AtLeast(1)},
					},
					"unit": schema.StringAttribute{
						Required:            true,
						MarkdownDescription: "`seconds`, `minutes` or `hours`.",
						Validators:          []validator.String{stringvalidator.OneOf(api.TTLUnits...)},
					},
				},
			},
			"identity_claim": schema.StringAttribute{
				Optional: true,
				Computed: true,
				Default:  stringdefault.StaticString(api.DefaultIdentity),
				MarkdownDescription: "The claim of the CI token that becomes the `sub` of the issued access token. " +
					"Defaults to `sub`. A name starting with `/` is an RFC 6901 JSON pointer.",
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"issuer_url": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Generic connections only, instead of `jwks_url`: the issuer, whose OIDC discovery " +
					"document (`<issuer_url>/.well-known/openid-configuration`) names the JWKS URL. Trustgate requires the " +
					"document's `issuer` to equal `issuer_url` byte for byte, and adds the condition `iss` equals " +
					"`issuer_url` (first in `effective_conditions`). `https` unless the server runs with " +
					"`--allow-insecure-jwks`; no query or fragment. At most one of `jwks_url`, `issuer_url`, `jwks`.",
				Validators: []validator.String{
					stringvalidator.LengthAtLeast(1),
					issuerURLShape{},
					stringvalidator.ConflictsWith(path.MatchRoot("jwks_url"), path.MatchRoot("jwks")),
				},
			},
			"jwks": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: fmt.Sprintf("The issuer's signing keys inline, as a JWKS JSON document "+
					"(`{\"keys\": [...]}`, at most %d KiB, public keys only: a key with private members is refused), for "+
					"issuers Trustgate cannot reach, such as a GitHub Enterprise Server or a self-managed GitLab behind a "+
					"firewall. With a preset it replaces the derived JWKS URL. The fingerprint covers the keys' RFC 7638 "+
					"thumbprints, so reordering keys or adding metadata changes nothing. Use `file()` or `jsonencode()`. "+
					"At most one of `jwks_url`, `issuer_url`, `jwks`.", api.MaxInlineJWKSBytes>>10),
				Validators: []validator.String{
					stringvalidator.LengthAtLeast(1),
					inlineJWKS{},
					stringvalidator.ConflictsWith(path.MatchRoot("jwks_url"), path.MatchRoot("issuer_url")),
				},
			},
			"claim_mappings": schema.MapAttribute{
				Optional:    true,
				ElementType: types.StringType,
				MarkdownDescription: fmt.Sprintf("Claims of the CI token copied into the access token, for downstream "+
					"authorization: access-token claim name (lowercase letters, digits and underscores, starting with a "+
					"letter) → source claim (a name, or an RFC 6901 JSON pointer starting with `/`). The access token "+
					"carries them in one object claim `claims`; a string, number, boolean or array is copied as is, a "+
					"missing claim is left out, an object is never copied. 1 to %d entries.", api.MaxClaimMappings),
				Validators: []validator.Map{
					mapvalidator.SizeBetween(1, api.MaxClaimMappings),
					mapvalidator.KeysAre(stringvalidator.RegexMatches(claimMappingNameRegexp,
						"must be an access-token claim name: lowercase letters, digits and underscores, starting with a letter, at most 64")),
					mapvalidator.ValueStringsAre(claimReference{}),
				},
			},
			"token_audience": schema.ListAttribute{
				Optional:    true,
				ElementType: types.StringType,
				MarkdownDescription: fmt.Sprintf("The audiences (`aud`) of the access tokens this connection issues; "+
					"without it, the server's public URL. An exchange may ask for one of them with the RFC 8693 `audience` "+
					"parameter (`trustgate exchange --token-audience`, or `audience` of the `trustgate_access_token` "+
					"ephemeral resource) and gets a token for that audience alone; any value not listed is refused "+
					"(`invalid_target`). Without the parameter the token's `aud` is the whole list. 1 to %d distinct "+
					"strings.", api.MaxTokenAudiences),
				Validators: []validator.List{
					listvalidator.SizeBetween(1, api.MaxTokenAudiences),
					listvalidator.UniqueValues(),
					listvalidator.ValueStringsAre(stringvalidator.LengthBetween(1, api.MaxClaimReferenceLen), trimmed{}),
				},
			},
			"single_use": schema.BoolAttribute{
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
				MarkdownDescription: "When true, each CI token (by `iss` and `jti`, or by the SHA-256 of the whole token " +
					"when it has no `jti`) is exchanged at most once through this connection, on every server replica " +
					"together; a second attempt is refused (`invalid_grant`, kind `replay`). Defaults to `false`.",
			},
			"effective_conditions": schema.ListNestedAttribute{
				Computed: true,
				MarkdownDescription: "The conditions Trustgate evaluates, in order: the preset's (issuer, audience, " +
					"scope) followed by the `condition` blocks.",
				NestedObject: schema.NestedAttributeObject{Attributes: conditionComputedAttributes()},
			},
			"status": schema.StringAttribute{
				Computed:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
				MarkdownDescription: "`draft`, `active` or `inactive`. Changed only by a security admin, through " +
					"`trustgate_workload_connection_activation`.",
			},
			"revision": schema.Int64Attribute{
				Computed:            true,
				MarkdownDescription: "Incremented on every change; updates send it as `If-Match`.",
			},
			"fingerprint": schema.StringAttribute{
				Computed: true,
				MarkdownDescription: "`sha256:<hex>` over everything that decides who gets a token (type, preset " +
					"settings, key source, TTL, identity claim, effective conditions, claim mappings, token audiences, " +
					"single use) of the configuration this resource " +
					"describes: the pending proposal's when `proposal_pending`, else the live one. Security admins approve it.",
			},
			"created_by": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "Name of the API key that created the connection.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"activated_by": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "Name of the security admin key that last activated the connection; null if never activated.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"activated_at": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "When the connection was last activated (RFC 3339); null if never activated.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"config_changed_by": schema.StringAttribute{
				Computed: true,
				MarkdownDescription: "Name of the API key that last changed the live configuration's rules (a description " +
					"change does not count; after an approval, the proposal's author). Four eyes is judged against it: " +
					"that principal may not activate the connection.",
			},
			"live_fingerprint": schema.StringAttribute{
				Computed: true,
				MarkdownDescription: "Fingerprint of the configuration Trustgate enforces now. Equal to `fingerprint` " +
					"unless a proposal is pending, in which case `fingerprint` is the proposal's.",
			},
			"proposal_pending": schema.BoolAttribute{
				Computed: true,
				MarkdownDescription: "Whether a change to this activated connection waits for a security admin's approval. " +
					"The security team approves it by setting `approved_fingerprint` of " +
					"`trustgate_workload_connection_activation` to `fingerprint`.",
			},
		},
		Blocks: map[string]schema.Block{
			"github": schema.SingleNestedBlock{
				Validators: requiresSettings("owner_id"),
				MarkdownDescription: "GitHub Actions preset: pins the issuer `https://token.actions.githubusercontent.com` " +
					"(or the enterprise issuer), the audience and the owner's numeric id, then adds a condition per " +
					"other input. Ids are pinned before names because a deleted account's name can be registered " +
					"again by someone else; an id never comes back.",
				Attributes: map[string]schema.Attribute{
					"owner_id": requiredSetting("Numeric id of the user or organisation owning the repositories "+
						"(`repository_owner_id`), e.g. from `gh api orgs/<owner> --jq .id`.", decimalID("the owner's numeric id")),
					"owner": optionalSetting("User or organisation name (`repository_owner`), pinned in addition to `owner_id`."),
					"repository_id": optionalSetting("Numeric id of the repository (`repository_id`), e.g. from "+
						"`gh api repos/<owner>/<name> --jq .id`.", decimalID("the repository's numeric id")),
					"repository":      optionalSetting("Repository as `owner/name` (`repository`)."),
					"ref":             optionalSetting("Git ref, e.g. `refs/heads/main` (`ref`)."),
					"environment":     optionalSetting("GitHub deployment environment (`environment`)."),
					"enterprise_slug": optionalSetting("GitHub Enterprise Cloud slug: the issuer becomes `https://token.actions.githubusercontent.com/<slug>`."),
					"host": optionalSetting("GitHub Enterprise Server host name (with an optional port): the issuer becomes "+
						"`https://<host>/_services/token`. Not with `enterprise_slug`.", hostShape{}),
					"audience": optionalSetting("Expected `aud`; defaults to the server's default audience."),
				},
			},
			"gitlab": schema.SingleNestedBlock{
				Validators: requiresSettings("domain"),
				MarkdownDescription: "GitLab CI preset: pins the issuer `https://<domain>` and the audience. On " +
					"`gitlab.com` at least one of `group`, `project_path`, `project_id` is required.",
				Attributes: map[string]schema.Attribute{
					"domain":       requiredSetting("GitLab host, e.g. `gitlab.com`.", hostShape{}),
					"group":        optionalSetting("Top-level group or subgroup path: `project_path` must start with `<group>/`."),
					"project_path": optionalSetting("Exact project path (`project_path`)."),
					"project_id":   optionalSetting("Numeric project id (`project_id`).", decimalID("the project's numeric id")),
					"audience":     optionalSetting("Expected `aud`; defaults to the server's default audience."),
				},
			},
			"circleci": schema.SingleNestedBlock{
				Validators: requiresSettings("organization_id"),
				MarkdownDescription: "CircleCI preset: pins the issuer `https://oidc.circleci.com/org/<organization_id>` " +
					"and the audience `<organization_id>`.",
				Attributes: map[string]schema.Attribute{
					"organization_id": requiredSetting("CircleCI organization id (a UUID)."),
					"project_id":      optionalSetting("CircleCI project id (`oidc.circleci.com/project-id`)."),
				},
			},
			"google_cloud": schema.SingleNestedBlock{
				Validators: requiresSettings("client_id"),
				MarkdownDescription: "Google Cloud preset: pins the issuer `https://accounts.google.com` and the audience " +
					"`<client_id>`. At least one of `email`, `account_id` is required, because Google's issuer is shared " +
					"by every Google customer.",
				Attributes: map[string]schema.Attribute{
					"client_id":  requiredSetting("Audience the Google ID token is minted for."),
					"email":      optionalSetting("Service account email (`email`, with `email_verified` = true)."),
					"account_id": optionalSetting("Service account unique id (`sub`).", decimalID("the service account's numeric unique id")),
				},
			},
			"condition": schema.ListNestedBlock{
				MarkdownDescription: "A claim the CI token must carry. All conditions must hold. Repeat the block for " +
					"several conditions; use `one_of` to accept alternatives.",
				NestedObject: schema.NestedBlockObject{
					Validators: []validator.Object{conditionOperands{}},
					Attributes: map[string]schema.Attribute{
						"claim": schema.StringAttribute{
							Required: true,
							MarkdownDescription: "Claim name, taken literally (dots and slashes included), or an RFC 6901 " +
								"JSON pointer when it starts with `/`.",
							Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
						},
						"operator": schema.StringAttribute{
							Required:            true,
							MarkdownDescription: "One of " + operatorList() + ".",
							Validators:          []validator.String{stringvalidator.OneOf(api.Operators...)},
						},
						"value": schema.StringAttribute{
							Optional: true,
							MarkdownDescription: "Expected value, for `equals`, `starts_with` and `not_equals`; the pattern, for " +
								"`glob`: `*` matches any run of characters except `/`, `**` any run including `/`, `?` one " +
								"character except `/`, every other character itself, and the whole claim must match " +
								"(`refs/heads/release/*`). A pattern of only wildcards is refused: use `exists`.",
						},
						"values": schema.ListAttribute{
							Optional:            true,
							ElementType:         types.StringType,
							MarkdownDescription: fmt.Sprintf("Allowed values, for `one_of` (1 to %d).", api.MaxOneOfValues),
							Validators:          []validator.List{listvalidator.SizeBetween(1, api.MaxOneOfValues)},
						},
					},
				},
			},
		},
	}
}

// conditionComputedAttributes is the read-only condition object (effective conditions, data sources).
func conditionComputedAttributes() map[string]schema.Attribute {
	return map[string]schema.Attribute{
		"claim":    schema.StringAttribute{Computed: true, MarkdownDescription: "Claim name or JSON pointer."},
		"operator": schema.StringAttribute{Computed: true, MarkdownDescription: "One of " + operatorList() + "."},
		"value":    schema.StringAttribute{Computed: true, MarkdownDescription: "Expected value (`equals`, `starts_with`, `not_equals`) or pattern (`glob`)."},
		"values":   schema.ListAttribute{Computed: true, ElementType: types.StringType, MarkdownDescription: "Allowed values (`one_of`)."},
	}
}

func (r *workloadConnectionResource) ConfigValidators(context.Context) []resource.ConfigValidator {
	return []resource.ConfigValidator{atMostOnePreset{}}
}

// ValidateConfig checks the key source at plan time: a generic connection (no preset block) needs
// one of jwks_url, issuer_url and jwks, and issuer_url is for generic connections only. (That at
// most one is set is the attributes' ConflictsWith.)
func (r *workloadConnectionResource) ValidateConfig(_ context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	pt, known := presetType(req.Config.Raw)
	if !known {
		return // decided once every preset block is known
	}
	// Raw reads, as presetType's: this runs for every resource of every plan. Unknown counts as set.
	set := func(name string) bool { v, ok := topLevel(req.Config.Raw, name); return ok && !v.IsNull() }
	jwksURL, issuerURL, jwks := set("jwks_url"), set("issuer_url"), set("jwks")
	if pt != api.ProviderGeneric && issuerURL {
		resp.Diagnostics.AddAttributeError(path.Root("issuer_url"), "issuer_url is for generic connections only",
			fmt.Sprintf("The %s preset already knows its issuer and where its keys are published, so issuer_url "+
				"(OIDC discovery) does not apply: remove it, or give the keys inline with jwks if Trustgate cannot "+
				"reach them.", pt))
	}
	if pt != api.ProviderGeneric || jwksURL || issuerURL || jwks {
		return // a preset derives the JWKS URL, or the configuration names a key source
	}
	resp.Diagnostics.AddAttributeError(path.Root("jwks_url"), "Missing jwks_url for a generic connection",
		"Without a preset block (github, gitlab, circleci or google_cloud) the connection is generic, and Trustgate "+
			"cannot know where the signing keys are: set jwks_url to the issuer's JWKS URL (or issuer_url for OIDC "+
			"discovery, or jwks to give the keys inline), and add condition blocks pinning iss and aud (equals or one_of).")
}

// fingerprintInputs are the configuration attributes the server's fingerprint, effective
// conditions and derived JWKS URL depend on (CONTRACT.md §1: not name, not description).
var fingerprintInputs = []string{"github", "gitlab", "circleci", "google_cloud", "token_ttl", "identity_claim", "condition",
	"issuer_url", "jwks", "claim_mappings", "token_audience", "single_use"}

// ModifyPlan refines what the framework plans for an update (provider_type is planned by
// providerTypeFromPreset): the attributes the server derives from the configuration
// (planDerived), then what change control does with the update (planChangeControl).
func (r *workloadConnectionResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	// Last, whichever way ModifyPlan returns: the impact warning of an update (impact.go).
	defer r.planImpact(ctx, req, resp)
	if req.Plan.Raw.IsNull() || req.State.Raw.IsNull() { // destroy or create
		return
	}
	if _, known := presetType(req.Plan.Raw); !known {
		return
	}
	r.planDerived(ctx, req, resp)
	if !resp.Diagnostics.HasError() {
		r.planChangeControl(ctx, req, resp)
	}
}

// planDerived refines what the framework plans for the server-derived attributes. The framework
// marks every computed attribute unknown as soon as any configuration changes; here, when only
// name or description change, fingerprint, effective_conditions and jwks_url keep their values, so
// a reviewer sees at plan time that who gets a token is unchanged. Removing a jwks_url override
// plans a change, which an optional+computed attribute would otherwise hide by keeping the old value.
func (r *workloadConnectionResource) planDerived(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	var cfgJWKS, stateJWKS types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("jwks_url"), &cfgJWKS)...)
	resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("jwks_url"), &stateJWKS)...)
	overridden, d := req.Private.GetKey(ctx, jwksPrivateKey)
	resp.Diagnostics.Append(d...)
	if resp.Diagnostics.HasError() {
		return
	}
	wasOverridden := string(overridden) == "true"

	if cfgJWKS.IsNull() && wasOverridden {
		// The override was removed: the server derives the URL again.
		r.planDerivedUnknown(ctx, resp)
		return
	}
	jwksUnchanged := (cfgJWKS.IsNull() && !wasOverridden) || (!cfgJWKS.IsUnknown() && cfgJWKS.Equal(stateJWKS))
	if !jwksUnchanged || !sameValues(req.Plan.Raw, req.State.Raw, fingerprintInputs) {
		return // the framework already planned them unknown
	}
	for _, name := range []string{"jwks_url", "fingerprint", "effective_conditions"} {
		if pv, ok := topLevel(req.Plan.Raw, name); ok {
			if sv, ok := topLevel(req.State.Raw, name); ok && pv.Equal(sv) {
				// Nothing changed (a refresh): SetAttribute would rewrite the whole plan for nothing
				// (BenchmarkModifyPlanRefresh; TestModifyPlanPlansWhatWritingTheStateValuesPlans).
				continue
			}
		}
		var v attr.Value
		switch name {
		case "effective_conditions":
			var l types.List
			resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root(name), &l)...)
			v = l
		default:
			var sv types.String
			resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root(name), &sv)...)
			v = sv
		}
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root(name), v)...)
	}
}

// planChangeControl plans what an update does under change control (CONTRACT.md §1, §6). A draft
// changes in place: live_fingerprint follows fingerprint and nothing is proposed. Once activated
// (the status never returns to draft), what is live stays as it is (live_fingerprint,
// config_changed_by) and the apply stores a proposal, which a warning explains; a rename, which
// the server refuses outside draft, is refused here before anything is sent.
func (r *workloadConnectionResource) planChangeControl(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if rev, ok := topLevel(resp.Plan.Raw, "revision"); ok && rev.IsKnown() {
		// Nothing to apply (a refresh): the framework marks revision, computed without a plan
		// modifier, unknown as soon as anything changes. Comparing the whole plan with the state
		// would cost every unchanged resource of a large plan more than the rest of ModifyPlan.
		return
	}
	// What planChangeControl reads from the prior (refreshed) state.
	var prior struct {
		Name, Status, Fingerprint, LiveFingerprint, ConfigChangedBy types.String
		ProposalPending                                             types.Bool
	}
	for name, target := range map[string]any{
		"name": &prior.Name, "status": &prior.Status, "fingerprint": &prior.Fingerprint,
		"live_fingerprint": &prior.LiveFingerprint, "config_changed_by": &prior.ConfigChangedBy,
		"proposal_pending": &prior.ProposalPending,
	} {
		resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root(name), target)...)
	}
	var plannedName, plannedFingerprint types.String
	resp.Diagnostics.Append(resp.Plan.GetAttribute(ctx, path.Root("name"), &plannedName)...)
	resp.Diagnostics.Append(resp.Plan.GetAttribute(ctx, path.Root("fingerprint"), &plannedFingerprint)...)
	if resp.Diagnostics.HasError() {
		return
	}
	set := func(name string, v attr.Value) {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root(name), v)...)
	}
	if prior.Status.ValueString() == api.StatusDraft {
		set("live_fingerprint", plannedFingerprint)
		set("proposal_pending", types.BoolValue(false))
		if plannedFingerprint.Equal(prior.Fingerprint) { // a new name or description: not a rule change
			set("config_changed_by", prior.ConfigChangedBy)
		}
		return
	}
	if !plannedName.IsUnknown() && !plannedName.Equal(prior.Name) {
		resp.Diagnostics.AddAttributeError(path.Root("name"), "An activated workload connection cannot be renamed",
			fmt.Sprintf("Workload connection %q has been activated, and CI jobs name it in their token exchange, so "+
				"Trustgate allows renaming only while a connection is a draft. Nothing was sent to the server. Keep the "+
				"name %q, or create a new connection under the new name (a new resource) and have the security team "+
				"activate it and retire this one.", prior.Name.ValueString(), prior.Name.ValueString()))
		return
	}
	set("live_fingerprint", prior.LiveFingerprint)
	set("config_changed_by", prior.ConfigChangedBy)
	if !prior.ProposalPending.ValueBool() {
		// With nothing pending the state is the live configuration, so a change is a proposal.
		set("proposal_pending", types.BoolValue(true))
	}
	resp.Diagnostics.AddWarning("This apply proposes a change: Trustgate keeps enforcing the live configuration",
		fmt.Sprintf("Workload connection %q has been activated, so applying this stores the change as a proposal "+
			"(proposal_pending = true) and Trustgate keeps enforcing the live configuration (live_fingerprint %s) "+
			"until a security admin who did not write the proposal approves it: in the security workspace, "+
			"approved_fingerprint of trustgate_workload_connection_activation set to the proposal's fingerprint, which "+
			"this resource's fingerprint shows after the apply. A configuration equal to the live one discards a "+
			"pending proposal instead.", prior.Name.ValueString(), prior.LiveFingerprint.ValueString()))
}

// providerTypeFromPreset plans provider_type from the preset block, so that the plan shows it.
type providerTypeFromPreset struct{}

var _ planmodifier.String = providerTypeFromPreset{}

func (providerTypeFromPreset) Description(context.Context) string {
	return "provider_type follows the preset block: github, gitlab, circleci, google_cloud, or generic without one"
}

func (m providerTypeFromPreset) MarkdownDescription(ctx context.Context) string {
	return m.Description(ctx)
}

func (providerTypeFromPreset) PlanModifyString(_ context.Context, req planmodifier.StringRequest, resp *planmodifier.StringResponse) {
	if pt, known := presetType(req.Plan.Raw); known {
		resp.PlanValue = types.StringValue(pt)
	}
}

// presetType is the provider type the preset blocks of a configuration or plan select; known is
// false while a block is unknown (or there is no value). It reads the raw value directly rather
// than converting each whole block with GetAttribute, which every resource of every plan would pay:
// BenchmarkPresetType runs both, TestPresetTypeReadsWhatGetAttributeReads checks they agree.
func presetType(obj tftypes.Value) (pt string, known bool) {
	present := map[string]bool{}
	for _, name := range presetBlocks {
		v, ok := topLevel(obj, name)
		if !ok || !v.IsKnown() {
			return "", false
		}
		present[name] = !v.IsNull()
	}
	return providerTypeOf(present[api.ProviderGitHub], present[api.ProviderGitLab], present[api.ProviderCircleCI], present[api.ProviderGoogleCloud]), true
}

// planDerivedUnknown marks everything the server derives from the configuration as unknown.
func (r *workloadConnectionResource) planDerivedUnknown(ctx context.Context, resp *resource.ModifyPlanResponse) {
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("jwks_url"), types.StringUnknown())...)
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("revision"), types.Int64Unknown())...)
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("fingerprint"), types.StringUnknown())...)
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("effective_conditions"),
		types.ListUnknown(types.ObjectType{AttrTypes: conditionAttrTypes}))...)
}

// sameValues reports whether the named top-level attributes are equal in two object values.
func sameValues(a, b tftypes.Value, names []string) bool {
	for _, n := range names {
		av, errA := a.ApplyTerraform5AttributePathStep(tftypes.AttributeName(n))
		bv, errB := b.ApplyTerraform5AttributePathStep(tftypes.AttributeName(n))
		if errA != nil || errB != nil {
			return false
		}
		at, okA := av.(tftypes.Value)
		bt, okB := bv.(tftypes.Value)
		if !okA || !okB || !at.Equal(bt) {
			return false
		}
	}
	return true
}

// planned reads the plan and the configured jwks_url and builds the API input.
func plannedInput(ctx context.Context, plan, config interface {
	Get(context.Context, any) diag.Diagnostics
	GetAttribute(context.Context, path.Path, any) diag.Diagnostics
}, m *connectionModel) (api.ConnectionInput, diag.Diagnostics) {
	var diags diag.Diagnostics
	diags.Append(plan.Get(ctx, m)...)
	var jwks types.String
	diags.Append(config.GetAttribute(ctx, path.Root("jwks_url"), &jwks)...)
	if diags.HasError() {
		return api.ConnectionInput{}, diags
	}
	in, d := fromModel(ctx, *m, jwks)
	diags.Append(d...)
	return in, diags
}

func (r *workloadConnectionResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m connectionModel
	in, diags := plannedInput(ctx, req.Plan, req.Config, &m)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	conn, err := r.client.CreateConnection(ctx, in)
	if err != nil {
		r.writeError(&resp.Diagnostics, fmt.Sprintf("create workload connection %q", in.Name), err, nil)
		return
	}
	r.saveState(ctx, conn, &m, &resp.State, resp.Private, &resp.Diagnostics)
}

func (r *workloadConnectionResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m connectionModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	conn, err := r.client.GetConnection(ctx, m.ID.ValueString())
	if apiclient.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, fmt.Sprintf("read workload connection %q", m.ID.ValueString()), err)
		return
	}
	r.saveState(ctx, conn, &m, &resp.State, resp.Private, &resp.Diagnostics)
}

func (r *workloadConnectionResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var m, state connectionModel
	in, diags := plannedInput(ctx, req.Plan, req.Config, &m)
	resp.Diagnostics.Append(diags...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	conn, err := r.client.PatchConnection(ctx, state.ID.ValueString(), mergePatch(in, mappingNames(state.ClaimMappings)), state.Revision.ValueInt64())
	if err != nil {
		r.writeError(&resp.Diagnostics, fmt.Sprintf("update workload connection %q", state.Name.ValueString()), err, &state)
		return
	}
	r.saveState(ctx, conn, &m, &resp.State, resp.Private, &resp.Diagnostics)
	addChangeControlOutcome(&resp.Diagnostics, conn, state.ProposalPending.ValueBool())
}

func (r *workloadConnectionResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state connectionModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	err := r.client.DeleteConnection(ctx, state.ID.ValueString(), state.Revision.ValueInt64())
	if err != nil && !apiclient.IsNotFound(err) {
		r.writeError(&resp.Diagnostics, fmt.Sprintf("delete workload connection %q", state.Name.ValueString()), err, &state)
	}
}

// ImportState accepts the connection's id or its name; Read resolves either.
func (r *workloadConnectionResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}

// privateSetter is the part of *privatestate.ProviderData the CRUD responses share.
type privateSetter interface {
	SetKey(context.Context, string, []byte) diag.Diagnostics
}

type stateSetter interface {
	Set(context.Context, any) diag.Diagnostics
}

func (r *workloadConnectionResource) saveState(ctx context.Context, conn *api.Connection, m *connectionModel, state stateSetter, private privateSetter, diags *diag.Diagnostics) {
	diags.Append(m.extract(ctx, conn)...)
	if diags.HasError() {
		return
	}
	diags.Append(state.Set(ctx, m)...)
	diags.Append(private.SetKey(ctx, jwksPrivateKey, jwksPrivateValue(described(conn).JWKSURLOverridden))...)
}

// writeError explains a refused create, update or delete: field errors land on their attributes,
// and a devops admin refused after activation learns who owns the connection now.
func (r *workloadConnectionResource) writeError(diags *diag.Diagnostics, action string, err error, state *connectionModel) {
	if addValidationErrors(diags, err) {
		return
	}
	if apiclient.ProblemType(err) == api.ProblemOwnedBySecurity && state != nil {
		diags.AddError(ownershipSummary, ownershipDetail(state.Name.ValueString(), err))
		return
	}
	addAPIError(diags, action, err)
}
