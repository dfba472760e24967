package provider

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/objectvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// The provider's fast paths beside what they replace: the preset-block validators
// (validators.go) and the raw-tftypes reads of the plan code (presetType, and ModifyPlan's
// comparison of planned and prior values). Each benchmark runs the fast path and the framework
// code it stands for on the same realistic connection; each test checks that both give the same
// answer. BENCHMARKS.md ("Fast paths and their benchmarks") has the figures.

// connectionValues is a realistic trustgate_workload_connection after an apply: a github preset,
// three conditions, seven effective conditions, two claim mappings, two token audiences, single
// use, activated. state is what Terraform stores, config
// what the user wrote (computed attributes null), and refreshPlan what the framework plans when
// nothing changed.
type connectionValues struct {
	schema      schema.Schema
	config      tfsdk.Config
	state       tfsdk.State
	refreshPlan tfsdk.Plan
	stateModel  connectionModel
}

func realisticConnection(tb testing.TB) connectionValues {
	tb.Helper()
	ctx := context.Background()
	var sr resource.SchemaResponse
	NewWorkloadConnectionResource().Schema(ctx, resource.SchemaRequest{}, &sr)
	v := func(s string) *string { return &s }
	activated := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	conn := &api.Connection{
		ID: "0193a4f2-7c1e-7b3a-9d4e-5f6a7b8c9d0e", Name: "github-deploy", Description: "deploys acme/app from main",
		ProviderType: api.ProviderGitHub,
		GitHub:       &api.GitHubSettings{OwnerID: "61234567", Owner: "acme", Repository: "acme/app"},
		JWKSURL:      "https://token.actions.githubusercontent.com/.well-known/jwks",
		TokenTTL:     api.TokenTTL{Amount: 30, Unit: api.UnitMinutes}, IdentityClaim: "sub",
		Conditions: []api.Condition{
			{Claim: "ref", Operator: api.OpEquals, Value: v("refs/heads/main")},
			{Claim: "environment", Operator: api.OpOneOf, Values: []string{"prod", "staging"}},
			{Claim: "workflow_ref", Operator: api.OpStartsWith, Value: v("acme/app/.github/workflows/deploy.yml@")},
		},
		EffectiveConditions: []api.Condition{
			{Claim: "iss", Operator: api.OpEquals, Value: v("https://token.actions.githubusercontent.com")},
			{Claim: "aud", Operator: api.OpEquals, Value: v("https://github.com/acme")},
			{Claim: "repository_owner_id", Operator: api.OpEquals, Value: v("61234567")},
			{Claim: "repository_owner", Operator: api.OpEquals, Value: v("acme")},
			{Claim: "repository", Operator: api.OpEquals, Value: v("acme/app")},
			{Claim: "ref", Operator: api.OpEquals, Value: v("refs/heads/main")},
			{Claim: "environment", Operator: api.OpOneOf, Values: []string{"prod", "staging"}},
		},
		Status: api.StatusActive, Revision: 3, Fingerprint: "sha256:" + strings.Repeat("0123456789abcdef", 4),
		CreatedBy: "platform-ci", ActivatedBy: "alice", ActivatedAt: &activated, ConfigChangedBy: "platform-ci",
		ClaimMappings: map[string]string{"repository": "repository", "environment": "environment"},
		TokenAudience: []string{"https://deploy.acme.example", "https://registry.acme.example"},
		SingleUse:     true,
	}
	var m connectionModel
	noDiagErrors(tb, m.extract(ctx, conn))
	c := m
	c.ID, c.ProviderType, c.JWKSURL = types.StringNull(), types.StringNull(), types.StringNull()
	c.EffectiveConditions = types.ListNull(types.ObjectType{AttrTypes: conditionAttrTypes})
	c.Status, c.Revision, c.Fingerprint = types.StringNull(), types.Int64Null(), types.StringNull()
	c.CreatedBy, c.ActivatedBy, c.ActivatedAt = types.StringNull(), types.StringNull(), types.StringNull()
	c.ConfigChangedBy, c.LiveFingerprint, c.ProposalPending = types.StringNull(), types.StringNull(), types.BoolNull()

	cv := connectionValues{schema: sr.Schema, stateModel: m}
	cv.state = tfsdk.State{Schema: sr.Schema}
	noDiagErrors(tb, cv.state.Set(ctx, &m))
	cfgPlan := tfsdk.Plan{Schema: sr.Schema}
	noDiagErrors(tb, cfgPlan.Set(ctx, &c))
	cv.config = tfsdk.Config{Schema: sr.Schema, Raw: cfgPlan.Raw}
	cv.refreshPlan = tfsdk.Plan{Schema: sr.Schema, Raw: cv.state.Raw.Copy()}
	return cv
}

func noDiagErrors(tb testing.TB, d diag.Diagnostics) {
	tb.Helper()
	if d.HasError() {
		tb.Fatal(d)
	}
}

// presetTypeByGetAttribute is what presetType replaced: each preset block converted with
// GetAttribute into a types.Object.
func presetTypeByGetAttribute(ctx context.Context, cfg tfsdk.Config) (string, bool, diag.Diagnostics) {
	present := map[string]bool{}
	for _, name := range presetBlocks {
		var block types.Object
		if d := cfg.GetAttribute(ctx, path.Root(name), &block); d.HasError() {
			return "", false, d
		}
		if block.IsUnknown() {
			return "", false, nil
		}
		present[name] = !block.IsNull()
	}
	return providerTypeOf(present[api.ProviderGitHub], present[api.ProviderGitLab], present[api.ProviderCircleCI], present[api.ProviderGoogleCloud]), true, nil
}

// TestPresetTypeReadsWhatGetAttributeReads runs presetType and the GetAttribute reading it
// replaced on every combination of absent, present and unknown preset blocks.
func TestPresetTypeReadsWhatGetAttributeReads(t *testing.T) {
	ctx := context.Background()
	inputs := map[string]map[string]tftypes.Value{
		api.ProviderGitHub: {"owner": str("acme")}, api.ProviderGitLab: {"domain": str("gitlab.com")},
		api.ProviderCircleCI: {"organization_id": str("o")}, api.ProviderGoogleCloud: {"client_id": str("c")},
	}
	combinations := 1
	for range presetBlocks {
		combinations *= 3
	}
	for n := 0; n < combinations; n++ {
		blocks := map[string]map[string]tftypes.Value{}
		var desc []string
		for i, k := 0, n; i < len(presetBlocks); i, k = i+1, k/3 {
			name := presetBlocks[i]
			switch k % 3 {
			case 1:
				blocks[name] = inputs[name]
				desc = append(desc, name)
			case 2:
				blocks[name] = nil // unknown
				desc = append(desc, name+"(unknown)")
			}
		}
		cfg := connectionConfig(t, blocks)
		wantType, wantKnown, d := presetTypeByGetAttribute(ctx, cfg)
		if d.HasError() {
			t.Fatal(d)
		}
		gotType, gotKnown := presetType(cfg.Raw)
		if gotType != wantType || gotKnown != wantKnown {
			t.Errorf("blocks %v: presetType = %q, %v; GetAttribute reads %q, %v", desc, gotType, gotKnown, wantType, wantKnown)
		}
	}
}

func BenchmarkPresetType(b *testing.B) {
	ctx := context.Background()
	cv := realisticConnection(b)
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if pt, known := presetType(cv.config.Raw); !known || pt != api.ProviderGitHub {
				b.Fatal(pt, known)
			}
		}
	})
	b.Run("GetAttribute", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if pt, known, _ := presetTypeByGetAttribute(ctx, cv.config); !known || pt != api.ProviderGitHub {
				b.Fatal(pt, known)
			}
		}
	})
}

// derivedFromState are the attributes ModifyPlan carries over from state when only name or
// description change.
var derivedFromState = []string{"jwks_url", "fingerprint", "effective_conditions"}

// writeStateValues is what ModifyPlan did before it compared raw values: read each derived
// attribute from state and write it into the plan, whether or not the plan already had it.
func writeStateValues(ctx context.Context, state tfsdk.State, plan *tfsdk.Plan) diag.Diagnostics {
	var diags diag.Diagnostics
	for _, name := range derivedFromState {
		var v attr.Value
		if name == "effective_conditions" {
			var l types.List
			diags.Append(state.GetAttribute(ctx, path.Root(name), &l)...)
			v = l
		} else {
			var s types.String
			diags.Append(state.GetAttribute(ctx, path.Root(name), &s)...)
			v = s
		}
		diags.Append(plan.SetAttribute(ctx, path.Root(name), v)...)
	}
	return diags
}

// describePlan is what the framework plans for a new description: the new description, and every
// computed attribute without UseStateForUnknown unknown. (The connection is active, so it cannot
// be renamed, and the description change is a proposal.)
func describePlan(tb testing.TB, cv connectionValues) tfsdk.Plan {
	tb.Helper()
	ctx := context.Background()
	m := cv.stateModel
	m.Description = types.StringValue("deploys acme/app from main and release")
	m.JWKSURL, m.Fingerprint = types.StringUnknown(), types.StringUnknown()
	m.EffectiveConditions = types.ListUnknown(types.ObjectType{AttrTypes: conditionAttrTypes})
	m.Revision = types.Int64Unknown()
	m.LiveFingerprint, m.ConfigChangedBy, m.ProposalPending = types.StringUnknown(), types.StringUnknown(), types.BoolUnknown()
	p := tfsdk.Plan{Schema: cv.schema}
	noDiagErrors(tb, p.Set(ctx, &m))
	return p
}

// TestModifyPlanPlansWhatWritingTheStateValuesPlans: comparing raw values first (and skipping the
// write when the plan already holds the state's value) plans the same as always writing them, on
// a refresh (nothing changed) and on a new description (the derived values come back from state;
// change control plans what stays live and the proposal).
func TestModifyPlanPlansWhatWritingTheStateValuesPlans(t *testing.T) {
	ctx := context.Background()
	cv := realisticConnection(t)
	for name, plan := range map[string]tfsdk.Plan{"refresh": cv.refreshPlan, "description": describePlan(t, cv)} {
		t.Run(name, func(t *testing.T) {
			req := resource.ModifyPlanRequest{Config: cv.config, State: cv.state, Plan: plan}
			resp := &resource.ModifyPlanResponse{Plan: tfsdk.Plan{Schema: cv.schema, Raw: plan.Raw.Copy()}}
			(&workloadConnectionResource{}).ModifyPlan(ctx, req, resp)
			noDiagErrors(t, resp.Diagnostics)
			want := tfsdk.Plan{Schema: cv.schema, Raw: plan.Raw.Copy()}
			noDiagErrors(t, writeStateValues(ctx, cv.state, &want))
			if name == "description" {
				// The connection is active with nothing pending: what is live stays, and the
				// change becomes a proposal.
				noDiagErrors(t, want.SetAttribute(ctx, path.Root("live_fingerprint"), cv.stateModel.LiveFingerprint))
				noDiagErrors(t, want.SetAttribute(ctx, path.Root("config_changed_by"), cv.stateModel.ConfigChangedBy))
				noDiagErrors(t, want.SetAttribute(ctx, path.Root("proposal_pending"), types.BoolValue(true)))
			}
			if !resp.Plan.Raw.Equal(want.Raw) {
				diffs, _ := resp.Plan.Raw.Diff(want.Raw)
				t.Fatalf("ModifyPlan planned differently from writing the state's values: %v", diffs)
			}
			for _, a := range derivedFromState {
				got, _ := topLevel(resp.Plan.Raw, a)
				st, _ := topLevel(cv.state.Raw, a)
				if !got.Equal(st) {
					t.Errorf("%s planned %v, want the state's %v", a, got, st)
				}
			}
		})
	}
}

// BenchmarkModifyPlanRefresh is the plan of a connection with nothing to change (every resource
// of a plan after apply): ModifyPlan as it is, and the two ways of handling the derived
// attributes — the raw comparison it does, and the read-from-state-and-SetAttribute it replaced.
func BenchmarkModifyPlanRefresh(b *testing.B) {
	ctx := context.Background()
	cv := realisticConnection(b)
	r := &workloadConnectionResource{}
	req := resource.ModifyPlanRequest{Config: cv.config, State: cv.state, Plan: cv.refreshPlan}
	b.Run("ModifyPlan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			resp := &resource.ModifyPlanResponse{Plan: cv.refreshPlan}
			r.ModifyPlan(ctx, req, resp)
		}
	})
	b.Run("raw-compare", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, name := range derivedFromState {
				pv, _ := topLevel(cv.refreshPlan.Raw, name)
				sv, _ := topLevel(cv.state.Raw, name)
				if !pv.Equal(sv) {
					b.Fatal(name)
				}
			}
		}
	})
	b.Run("GetAttribute+SetAttribute", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			plan := cv.refreshPlan
			if d := writeStateValues(ctx, cv.state, &plan); d.HasError() {
				b.Fatal(d)
			}
		}
	})
}

// BenchmarkPresetValidators runs the two preset-block validators of validators.go and the library
// validators they stand for (TestAtMostOnePresetSaysWhatResourcevalidatorConflictingSays and
// TestPresetBlocksRequireTheirInputsAsObjectvalidatorAlsoRequiresDoes check they agree) on a
// realistic configuration. The library validators find their paths by walking every value of
// the configuration, so their cost grows with it; the clones look the blocks up directly.
func BenchmarkPresetValidators(b *testing.B) {
	ctx := context.Background()
	cv := realisticConnection(b)
	b.Run("atMostOnePreset", func(b *testing.B) {
		req := resource.ValidateConfigRequest{Config: cv.config}
		b.ReportAllocs()
		for b.Loop() {
			var resp resource.ValidateConfigResponse
			atMostOnePreset{}.ValidateResource(ctx, req, &resp)
		}
	})
	b.Run("resourcevalidator.Conflicting", func(b *testing.B) {
		req := resource.ValidateConfigRequest{Config: cv.config}
		b.ReportAllocs()
		for b.Loop() {
			var resp resource.ValidateConfigResponse
			presetsConflicting.ValidateResource(ctx, req, &resp)
		}
	})
	var github types.Object
	noDiagErrors(b, cv.config.GetAttribute(ctx, path.Root(api.ProviderGitHub), &github))
	req := validator.ObjectRequest{Path: path.Root(api.ProviderGitHub), PathExpression: path.MatchRoot(api.ProviderGitHub), ConfigValue: github, Config: cv.config}
	b.Run("blockRequires", func(b *testing.B) {
		ours := requiresSettings("owner_id")[0]
		b.ReportAllocs()
		for b.Loop() {
			var resp validator.ObjectResponse
			ours.ValidateObject(ctx, req, &resp)
		}
	})
	b.Run("objectvalidator.AlsoRequires", func(b *testing.B) {
		library := objectvalidator.AlsoRequires(path.MatchRelative().AtName("owner_id"))
		b.ReportAllocs()
		for b.Loop() {
			var resp validator.ObjectResponse
			library.ValidateObject(ctx, req, &resp)
		}
	})
}
