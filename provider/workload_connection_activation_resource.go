package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
)

// on_destroy values.
const (
	onDestroyDeactivate = "deactivate"
	onDestroyDelete     = "delete"
)

var (
	_ resource.ResourceWithConfigure   = &activationResource{}
	_ resource.ResourceWithImportState = &activationResource{}
	_ resource.ResourceWithModifyPlan  = &activationResource{}
)

// NewWorkloadConnectionActivationResource is trustgate_workload_connection_activation.
func NewWorkloadConnectionActivationResource() resource.Resource { return &activationResource{} }

type activationResource struct {
	client *apiclient.Client
}

type activationModel struct {
	ConnectionName      types.String `tfsdk:"connection_name"`
	Active              types.Bool   `tfsdk:"active"`
	ApprovedFingerprint types.String `tfsdk:"approved_fingerprint"`
	OnDestroy           types.String `tfsdk:"on_destroy"`
	ConnectionID        types.String `tfsdk:"connection_id"`
	Status              types.String `tfsdk:"status"`
	Fingerprint         types.String `tfsdk:"fingerprint"`
	ActivatedBy         types.String `tfsdk:"activated_by"`
	ActivatedAt         types.String `tfsdk:"activated_at"`
	ProposalFingerprint types.String `tfsdk:"proposal_fingerprint"`
}

func (r *activationResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_workload_connection_activation"
}

func (r *activationResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.client = clientFrom(req.ProviderData, true, &resp.Diagnostics)
}

func (r *activationResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	keep := []planmodifier.String{stringplanmodifier.UseStateForUnknown()}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Activates (or deactivates) a workload connection, and approves changes proposed to it. " +
			"Applied by the security team with a `security_admin` key, normally in its own workspace, after reviewing " +
			"the connection the platform team drafted. Trustgate enforces four eyes: the principal who created the " +
			"connection or last changed its configuration cannot activate it, and the author of a proposal cannot " +
			"approve it. Once the connection is activated, the platform team's changes wait as a proposal, shown in " +
			"`proposal_fingerprint`; setting `approved_fingerprint` to it approves the proposal. Status changes made " +
			"elsewhere show up as a diff on `active`.",
		Attributes: map[string]schema.Attribute{
			"connection_name": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "Name of the workload connection. Changing it replaces this resource.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators:          []validator.String{stringvalidator.RegexMatches(nameRegexp, "must be a workload connection name")},
			},
			"active": schema.BoolAttribute{
				Optional:            true,
				Computed:            true,
				Default:             booldefault.StaticBool(true),
				MarkdownDescription: "Whether the connection should be `active` (default) or not. `false` deactivates an active connection; a draft stays a draft.",
			},
			"approved_fingerprint": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "The fingerprint the security team reviewed. When it names the connection's " +
					"pending proposal (`proposal_fingerprint`), the apply approves that proposal, which then becomes the " +
					"live configuration, and sets the status as `active` asks. Otherwise it must be the live " +
					"configuration's fingerprint, and a pending proposal is left alone. Anything else is refused and " +
					"nothing changes: the configuration changed after it was reviewed.",
				Validators: []validator.String{stringvalidator.RegexMatches(fingerprintRegexp, "must look like sha256:<64 hex digits>")},
			},
			"on_destroy": schema.StringAttribute{
				Optional:            true,
				Computed:            true,
				Default:             stringdefault.StaticString(onDestroyDeactivate),
				MarkdownDescription: "What destroying this resource does: `deactivate` (default) leaves an inactive connection, `delete` deactivates and deletes it.",
				Validators:          []validator.String{stringvalidator.OneOf(onDestroyDeactivate, onDestroyDelete)},
			},
			"connection_id": schema.StringAttribute{
				Computed: true, PlanModifiers: keep,
				MarkdownDescription: "Id of the connection.",
			},
			"status": schema.StringAttribute{
				Computed: true, PlanModifiers: keep,
				MarkdownDescription: "Current status: `draft`, `active` or `inactive`.",
			},
			"fingerprint": schema.StringAttribute{
				Computed: true, PlanModifiers: keep,
				MarkdownDescription: "Fingerprint of the configuration Trustgate enforces (the live one; a pending proposal's is `proposal_fingerprint`).",
			},
			"activated_by": schema.StringAttribute{
				Computed: true, PlanModifiers: keep,
				MarkdownDescription: "Name of the key that last activated the connection.",
			},
			"activated_at": schema.StringAttribute{
				Computed: true, PlanModifiers: keep,
				MarkdownDescription: "When the connection was last activated (RFC 3339).",
			},
			"proposal_fingerprint": schema.StringAttribute{
				Computed: true,
				MarkdownDescription: "Fingerprint of the change waiting for approval on the connection, `\"\"` when " +
					"nothing is pending. Refreshed on every plan: when the platform team proposes a change, it shows " +
					"here (and a warning says so) while the plan stays empty; review the proposal and set " +
					"`approved_fingerprint` to this value to approve it.",
			},
		},
	}
}

// ModifyPlan plans what an update changes: a change of `active` makes the status, activation and
// fingerprint unknown; an approved_fingerprint that names the pending proposal approves it, so the
// plan shows the proposal's fingerprint becoming the connection's and nothing left pending, and
// a warning shows the workloads the approval would newly refuse or admit (CONTRACT.md §6).
func (r *activationResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	if req.State.Raw.IsNull() {
		r.planCreateImpact(ctx, req, resp)
		return
	}
	var planned, prior activationModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &planned)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &prior)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if !planned.Active.Equal(prior.Active) {
		for _, name := range []string{"status", "activated_by", "activated_at", "fingerprint"} {
			resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root(name), types.StringUnknown())...)
		}
	}
	if approvesProposal(planned.ApprovedFingerprint, prior.Fingerprint.ValueString(), prior.ProposalFingerprint.ValueString()) {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("fingerprint"), planned.ApprovedFingerprint)...)
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("proposal_fingerprint"), types.StringValue(""))...)
		approvalImpact(ctx, r.client, prior.ConnectionID.ValueString(), prior.ConnectionName.ValueString(),
			planned.ApprovedFingerprint.ValueString(), &resp.Diagnostics)
		return
	}
	if planned.ApprovedFingerprint.IsUnknown() && prior.ProposalFingerprint.ValueString() != "" {
		addImpactUnknownUntilApply(&resp.Diagnostics, path.Root("approved_fingerprint"),
			fmt.Sprintf("approving the pending proposal of workload connection %q", prior.ConnectionName.ValueString()),
			[]string{"approved_fingerprint"})
	}
	author, d := req.Private.GetKey(ctx, proposalPrivateKey)
	resp.Diagnostics.Append(d...)
	addReviewWarnings(&resp.Diagnostics, planned, prior, proposalAuthorFrom(author))
}

// planCreateImpact warns, when this resource is created for a connection that already has a pending
// proposal (a security workspace set up again, or taking over) and approved_fingerprint names it,
// what approving it would do, as an update's plan does. Anything the read cannot tell is left to
// Create, which reports it.
func (r *activationResource) planCreateImpact(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	var planned activationModel
	if d := req.Plan.Get(ctx, &planned); d.HasError() || r.client == nil || planned.ApprovedFingerprint.IsNull() ||
		planned.ConnectionName.IsUnknown() {
		return
	}
	conn, err := r.client.GetConnection(ctx, planned.ConnectionName.ValueString())
	if err != nil || conn.Proposal == nil {
		return
	}
	if planned.ApprovedFingerprint.IsUnknown() {
		addImpactUnknownUntilApply(&resp.Diagnostics, path.Root("approved_fingerprint"),
			fmt.Sprintf("approving the pending proposal of workload connection %q", conn.Name), []string{"approved_fingerprint"})
		return
	}
	if approvesProposal(planned.ApprovedFingerprint, conn.Fingerprint, conn.Proposal.Fingerprint) {
		approvalImpact(ctx, r.client, conn.ID, conn.Name, conn.Proposal.Fingerprint, &resp.Diagnostics)
	}
}

// approvesProposal reports whether approved names a pending proposal (fingerprint proposal, ""
// when none) rather than the live configuration (fingerprint live). When the two are equal (a
// proposal that changes only the description), approved names the live configuration: an
// approval is never implied.
func approvesProposal(approved types.String, live, proposal string) bool {
	return !approved.IsNull() && !approved.IsUnknown() && proposal != "" &&
		approved.ValueString() == proposal && approved.ValueString() != live
}

func (r *activationResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var m activationModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	conn, err := r.client.GetConnection(ctx, m.ConnectionName.ValueString())
	if apiclient.IsNotFound(err) {
		resp.Diagnostics.AddAttributeError(path.Root("connection_name"), "Workload connection not found",
			fmt.Sprintf("There is no workload connection named %q. The platform team creates it (resource "+
				"trustgate_workload_connection) before the security team activates it: check the name, and apply the "+
				"platform workspace first.", m.ConnectionName.ValueString()))
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, fmt.Sprintf("read workload connection %q", m.ConnectionName.ValueString()), err)
		return
	}
	conn = r.apply(ctx, conn, m, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	m.extract(conn)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, proposalPrivateKey, proposalPrivateValue(conn.Proposal))...)
}

// apply brings the connection to what m asks: first the pending proposal approved when
// approved_fingerprint is not the live fingerprint (the server checks that it is exactly the
// proposal's, 409, and that the caller did not write it, 403), then the status `active` asks for.
// Without approved_fingerprint, or with the live one, a pending proposal is left alone.
func (r *activationResource) apply(ctx context.Context, conn *api.Connection, m activationModel, diags *diag.Diagnostics) *api.Connection {
	if approved := m.ApprovedFingerprint.ValueString(); conn.Proposal != nil && approved != "" && approved != conn.Fingerprint {
		// No If-Match: the fingerprint pins what was reviewed, and its refusal says more than a 412.
		out, err := r.client.ApproveProposal(ctx, conn.ID, approved, 0)
		if err != nil {
			approvalError(diags, conn, approved, err)
			return nil
		}
		conn = out
	}
	return r.applyStatus(ctx, conn, m, diags)
}

// applyStatus brings the connection to the status `active` asks for. A draft asked to be inactive
// stays a draft: it has never issued a token, and the server refuses draft → inactive.
func (r *activationResource) applyStatus(ctx context.Context, conn *api.Connection, m activationModel, diags *diag.Diagnostics) *api.Connection {
	want := api.StatusActive
	if !m.Active.ValueBool() {
		if conn.Status != api.StatusActive {
			return conn
		}
		want = api.StatusInactive
	}
	verb := "activate"
	if want == api.StatusInactive {
		verb = "deactivate"
	}
	approved := m.ApprovedFingerprint.ValueString()
	out, err := r.client.SetStatus(ctx, conn.ID, api.StatusChange{Status: want, ApprovedFingerprint: approved}, 0)
	if err != nil {
		activationError(diags, fmt.Sprintf("%s workload connection %q", verb, conn.Name), conn, approved, err)
		return nil
	}
	return out
}

func (r *activationResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var m activationModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ref := m.ConnectionID.ValueString()
	if ref == "" { // import
		ref = m.ConnectionName.ValueString()
	}
	conn, err := r.client.GetConnection(ctx, ref)
	if apiclient.IsNotFound(err) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, fmt.Sprintf("read workload connection %q", m.ConnectionName.ValueString()), err)
		return
	}
	m.extract(conn)
	m.Active = types.BoolValue(conn.Status == api.StatusActive)
	if m.OnDestroy.IsNull() {
		m.OnDestroy = types.StringValue(onDestroyDeactivate)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, proposalPrivateKey, proposalPrivateValue(conn.Proposal))...)
}

func (r *activationResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var m, state activationModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &m)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	conn, err := r.client.GetConnection(ctx, state.ConnectionID.ValueString())
	if err != nil {
		addAPIError(&resp.Diagnostics, fmt.Sprintf("read workload connection %q", state.ConnectionName.ValueString()), err)
		return
	}
	if !m.Active.Equal(state.Active) || !m.ApprovedFingerprint.Equal(state.ApprovedFingerprint) {
		conn = r.apply(ctx, conn, m, &resp.Diagnostics)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	m.extract(conn)
	resp.Diagnostics.Append(resp.State.Set(ctx, &m)...)
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, proposalPrivateKey, proposalPrivateValue(conn.Proposal))...)
}

func (r *activationResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var m activationModel
	resp.Diagnostics.Append(req.State.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	conn, err := r.client.GetConnection(ctx, m.ConnectionID.ValueString())
	if apiclient.IsNotFound(err) {
		return
	}
	if err != nil {
		addAPIError(&resp.Diagnostics, fmt.Sprintf("read workload connection %q", m.ConnectionName.ValueString()), err)
		return
	}
	if conn.Status == api.StatusActive {
		if _, err := r.client.SetStatus(ctx, conn.ID, api.StatusChange{Status: api.StatusInactive}, 0); err != nil {
			activationError(&resp.Diagnostics, fmt.Sprintf("deactivate workload connection %q", conn.Name), conn, "", err)
			return
		}
	}
	if m.OnDestroy.ValueString() != onDestroyDelete {
		return
	}
	if err := r.client.DeleteConnection(ctx, conn.ID, 0); err != nil && !apiclient.IsNotFound(err) {
		addAPIError(&resp.Diagnostics, fmt.Sprintf("delete workload connection %q", conn.Name), err)
	}
}

// ImportState takes the connection name.
func (r *activationResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	resource.ImportStatePassthroughID(ctx, path.Root("connection_name"), req, resp)
}

// extract copies the server's view; active is the configured wish and is only overwritten by Read.
func (m *activationModel) extract(c *api.Connection) {
	m.ConnectionName = types.StringValue(c.Name)
	m.ConnectionID = types.StringValue(c.ID)
	m.Status = types.StringValue(c.Status)
	m.Fingerprint = types.StringValue(c.Fingerprint)
	m.ActivatedBy = stringOrNull(c.ActivatedBy)
	m.ActivatedAt = timeOrNull(c.ActivatedAt)
	m.ProposalFingerprint = types.StringValue("")
	if c.Proposal != nil {
		m.ProposalFingerprint = types.StringValue(c.Proposal.Fingerprint)
	}
}

// addReviewWarnings tells the security workspace at plan time what waits for it (prior is the
// refreshed state, planned what the configuration asks): a proposal that this plan does not
// approve, or an active connection whose live configuration is no longer the approved one.
func addReviewWarnings(diags *diag.Diagnostics, planned, prior activationModel, author proposalAuthor) {
	name, live, proposal := prior.ConnectionName.ValueString(), prior.Fingerprint.ValueString(), prior.ProposalFingerprint.ValueString()
	approved := planned.ApprovedFingerprint
	if proposal != "" {
		who := "Someone"
		if author.By != "" {
			who = fmt.Sprintf("%s (at %s)", author.By, author.At)
		}
		how := fmt.Sprintf("To approve it, set approved_fingerprint = %q and apply with the key of a security admin "+
			"who did not write it; to keep the live configuration, leave approved_fingerprint as it is.", proposal)
		if proposal == live {
			how = "It changes only the description, so its fingerprint is the live one and approved_fingerprint cannot " +
				"tell them apart: approve it through the API (POST /v1/workload-connections/" + name +
				"/proposal/approve), or leave it pending."
		}
		diags.AddAttributeWarning(path.Root("proposal_fingerprint"), "A proposed change waits for review",
			fmt.Sprintf("%s proposed a change to workload connection %q (fingerprint %s); Trustgate still enforces the "+
				"live configuration (fingerprint %s). Review the proposal: the proposal attribute of data source "+
				"trustgate_workload_connection, or the platform team's plan. %s", who, name, proposal, live, how))
	}
	if approved.Equal(prior.ApprovedFingerprint) && approved.ValueString() != "" && prior.Status.ValueString() == api.StatusActive &&
		approved.ValueString() != live && approved.ValueString() != proposal {
		diags.AddAttributeWarning(path.Root("approved_fingerprint"), "The active connection is no longer the approved one",
			fmt.Sprintf("Connection %q is active with fingerprint %s, but approved_fingerprint is %s: its configuration "+
				"changed after this activation was approved (a proposal was approved elsewhere). Review the connection, "+
				"then set approved_fingerprint to its current fingerprint (or deactivate it with active = false).",
				name, live, approved.ValueString()))
	}
}

// proposalPrivateKey is the private-state key holding who proposed the pending change and when,
// for the plan-time warning (the state shows only the proposal's fingerprint).
const proposalPrivateKey = "proposal_author"

type proposalAuthor struct {
	By string `json:"by,omitempty"`
	At string `json:"at,omitempty"`
}

func proposalPrivateValue(p *api.Proposal) []byte {
	var a proposalAuthor
	if p != nil {
		a = proposalAuthor{By: p.ProposedBy, At: p.ProposedAt.UTC().Format(time.RFC3339)}
	}
	b, _ := json.Marshal(a)
	return b
}

func proposalAuthorFrom(b []byte) proposalAuthor {
	var a proposalAuthor
	_ = json.Unmarshal(b, &a) // absent (a state written by an older provider): no name
	return a
}
