package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/trustgate/terraform-provider-trustgate/server/api"
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
