package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework-validators/objectvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/resourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

func TestTokenTTLBoundsAcceptsSixtySecondsToTwentyFourHours(t *testing.T) {
	tests := []struct {
		amount int64
		unit   string
		ok     bool
	}{
		{60, api.UnitSeconds, true},
		{59, api.UnitSeconds, false},
		{1, api.UnitMinutes, true},
		{1440, api.UnitMinutes, true},
		{1441, api.UnitMinutes, false},
		{24, api.UnitHours, true},
		{25, api.UnitHours, false},
		{1 << 62, api.UnitHours, false}, // no overflow into the allowed range
		{1, "fortnights", true},         // left to the unit's OneOf validator
		{0, api.UnitHours, true},        // left to amount's AtLeast validator
	}
	for _, tt := range tests {
		obj := types.ObjectValueMust(tokenTTLAttrTypes, map[string]attr.Value{
			"amount": types.Int64Value(tt.amount), "unit": types.StringValue(tt.unit),
		})
		resp := &validator.ObjectResponse{}
		tokenTTLBounds{}.ValidateObject(context.Background(), validator.ObjectRequest{Path: path.Root("token_ttl"), ConfigValue: obj}, resp)
		if got := !resp.Diagnostics.HasError(); got != tt.ok {
			t.Errorf("%d %s: accepted = %v, want %v (%v)", tt.amount, tt.unit, got, tt.ok, resp.Diagnostics)
		}
	}
}

func TestTokenTTLBoundsSkipsUnknownValues(t *testing.T) {
	obj := types.ObjectValueMust(tokenTTLAttrTypes, map[string]attr.Value{
		"amount": types.Int64Unknown(), "unit": types.StringValue(api.UnitHours),
	})
	resp := &validator.ObjectResponse{}
	tokenTTLBounds{}.ValidateObject(context.Background(), validator.ObjectRequest{Path: path.Root("token_ttl"), ConfigValue: obj}, resp)
	if resp.Diagnostics.HasError() {
		t.Errorf("an unknown amount must not be refused at plan time: %v", resp.Diagnostics)
	}
}

func TestConditionOperandsFollowTheOperator(t *testing.T) {
	some := types.ListValueMust(types.StringType, []attr.Value{types.StringValue("a")})
	none := types.ListNull(types.StringType)
	tests := []struct {
		name      string
		operator  string
		value     types.String
		values    types.List
		wantAttrs []string
	}{
		{"equals with value", api.OpEquals, types.StringValue("x"), none, nil},
		{"equals with empty value", api.OpEquals, types.StringValue(""), none, nil},
		{"equals without value", api.OpEquals, types.StringNull(), none, []string{"value"}},
		{"equals with values", api.OpEquals, types.StringValue("x"), some, []string{"values"}},
		{"starts_with empty", api.OpStartsWith, types.StringValue(""), none, []string{"value"}},
		{"starts_with unknown", api.OpStartsWith, types.StringUnknown(), none, nil},
		{"exists bare", api.OpExists, types.StringNull(), none, nil},
		{"exists with value", api.OpExists, types.StringValue("x"), none, []string{"value"}},
		{"exists with values", api.OpExists, types.StringNull(), some, []string{"values"}},
		{"one_of with values", api.OpOneOf, types.StringNull(), some, nil},
		{"one_of with value", api.OpOneOf, types.StringValue("x"), none, []string{"value", "values"}},
		{"one_of unknown values", api.OpOneOf, types.StringNull(), types.ListUnknown(types.StringType), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := types.ObjectValueMust(conditionAttrTypes, map[string]attr.Value{
				"claim": types.StringValue("c"), "operator": types.StringValue(tt.operator), "value": tt.value, "values": tt.values,
			})
			resp := &validator.ObjectResponse{}
			p := path.Root("condition").AtListIndex(0)
			conditionOperands{}.ValidateObject(context.Background(), validator.ObjectRequest{Path: p, ConfigValue: obj}, resp)
			var got []string
			for _, d := range resp.Diagnostics.Errors() {
				dp, ok := d.(interface{ Path() path.Path })
				if !ok {
					t.Fatalf("diagnostic without an attribute path: %v", d)
				}
				got = append(got, strings.TrimPrefix(dp.Path().String(), "condition[0]."))
			}
			if strings.Join(got, ",") != strings.Join(tt.wantAttrs, ",") {
				t.Errorf("errors on %v, want %v (%v)", got, tt.wantAttrs, resp.Diagnostics)
			}
		})
	}
}

// connectionConfig is a trustgate_workload_connection configuration with every attribute null
// except the given preset blocks; a block's inputs not given are null too.
func connectionConfig(t *testing.T, blocks map[string]map[string]tftypes.Value) tfsdk.Config {
	t.Helper()
	ctx := context.Background()
	var sr resource.SchemaResponse
	NewWorkloadConnectionResource().Schema(ctx, resource.SchemaRequest{}, &sr)
	typ, ok := sr.Schema.Type().TerraformType(ctx).(tftypes.Object)
	if !ok {
		t.Fatal("the resource schema is not an object")
	}
	vals := map[string]tftypes.Value{}
	for name, at := range typ.AttributeTypes {
		inputs, present := blocks[name]
		if !present {
			vals[name] = tftypes.NewValue(at, nil)
			continue
		}
		if inputs == nil {
			vals[name] = tftypes.NewValue(at, tftypes.UnknownValue)
			continue
		}
		bt := at.(tftypes.Object)
		bv := map[string]tftypes.Value{}
		for in, it := range bt.AttributeTypes {
			if v, ok := inputs[in]; ok {
				bv[in] = v
			} else {
				bv[in] = tftypes.NewValue(it, nil)
			}
		}
		vals[name] = tftypes.NewValue(bt, bv)
	}
	return tfsdk.Config{Schema: sr.Schema, Raw: tftypes.NewValue(typ, vals)}
}

func str(s string) tftypes.Value { return tftypes.NewValue(tftypes.String, s) }

var unknownStr = tftypes.NewValue(tftypes.String, tftypes.UnknownValue)

func TestAtMostOnePresetSaysWhatResourcevalidatorConflictingSays(t *testing.T) {
	ctx := context.Background()
	library := resourcevalidator.Conflicting(
		path.MatchRoot(api.ProviderGitHub), path.MatchRoot(api.ProviderGitLab),
		path.MatchRoot(api.ProviderCircleCI), path.MatchRoot(api.ProviderGoogleCloud))
	gh := map[string]tftypes.Value{"owner": str("acme")}
	gl := map[string]tftypes.Value{"domain": str("gitlab.com")}
	cc := map[string]tftypes.Value{"organization_id": str("o")}
	gc := map[string]tftypes.Value{"client_id": str("c")}
	tests := []struct {
		name    string
		blocks  map[string]map[string]tftypes.Value
		refused bool
	}{
		{"generic", nil, false},
		{"github", map[string]map[string]tftypes.Value{"github": gh}, false},
		{"github and gitlab", map[string]map[string]tftypes.Value{"github": gh, "gitlab": gl}, true},
		{"gitlab and google_cloud", map[string]map[string]tftypes.Value{"gitlab": gl, "google_cloud": gc}, true},
		{"all four", map[string]map[string]tftypes.Value{"github": gh, "gitlab": gl, "circleci": cc, "google_cloud": gc}, true},
		{"circleci and an unknown github", map[string]map[string]tftypes.Value{"github": nil, "circleci": cc}, false},
		{"an empty github block and circleci", map[string]map[string]tftypes.Value{"github": {}, "circleci": cc}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := resource.ValidateConfigRequest{Config: connectionConfig(t, tt.blocks)}
			var want, got resource.ValidateConfigResponse
			library.ValidateResource(ctx, req, &want)
			atMostOnePreset{}.ValidateResource(ctx, req, &got)
			if !got.Diagnostics.Equal(want.Diagnostics) {
				t.Errorf("diagnostics\n%v\nwant (resourcevalidator.Conflicting)\n%v", got.Diagnostics, want.Diagnostics)
			}
			if got.Diagnostics.HasError() != tt.refused {
				t.Errorf("refused = %v, want %v: %v", got.Diagnostics.HasError(), tt.refused, got.Diagnostics)
			}
		})
	}
	if d, w := (atMostOnePreset{}).Description(ctx), library.Description(ctx); d != w {
		t.Errorf("description %q, want %q", d, w)
	}
}

func TestPresetBlocksRequireTheirInputsAsObjectvalidatorAlsoRequiresDoes(t *testing.T) {
	ctx := context.Background()
	var sr resource.SchemaResponse
	NewWorkloadConnectionResource().Schema(ctx, resource.SchemaRequest{}, &sr)
	required := map[string]string{"github": "owner_id", "gitlab": "domain", "circleci": "organization_id", "google_cloud": "client_id"}
	for block, input := range required {
		library := objectvalidator.AlsoRequires(path.MatchRelative().AtName(input))
		b, ok := sr.Schema.Blocks[block].(schema.SingleNestedBlock)
		if !ok || len(b.Validators) != 1 {
			t.Fatalf("%s: want a single nested block with one validator", block)
		}
		ours := b.Validators[0]
		if d, w := ours.Description(ctx), library.Description(ctx); d != w {
			t.Errorf("%s: description %q, want %q", block, d, w)
		}
		for _, tt := range []struct {
			name    string
			inputs  map[string]tftypes.Value
			refused bool
		}{
			{"absent", nil, false},
			{"with " + input, map[string]tftypes.Value{input: str("x")}, false},
			{"without " + input, map[string]tftypes.Value{}, true},
			{"with an unknown " + input, map[string]tftypes.Value{input: unknownStr}, false},
		} {
			t.Run(block+" "+tt.name, func(t *testing.T) {
				blocks := map[string]map[string]tftypes.Value{}
				if tt.inputs != nil {
					blocks[block] = tt.inputs
				}
				cfg := connectionConfig(t, blocks)
				var obj types.Object
				if d := cfg.GetAttribute(ctx, path.Root(block), &obj); d.HasError() {
					t.Fatal(d)
				}
				req := validator.ObjectRequest{Path: path.Root(block), PathExpression: path.MatchRoot(block), ConfigValue: obj, Config: cfg}
				var want, got validator.ObjectResponse
				library.ValidateObject(ctx, req, &want)
				ours.ValidateObject(ctx, req, &got)
				if !got.Diagnostics.Equal(want.Diagnostics) {
					t.Errorf("diagnostics\n%v\nwant (objectvalidator.AlsoRequires)\n%v", got.Diagnostics, want.Diagnostics)
				}
				if got.Diagnostics.HasError() != tt.refused {
					t.Errorf("refused = %v, want %v: %v", got.Diagnostics.HasError(), tt.refused, got.Diagnostics)
				}
			})
		}
	}
}
