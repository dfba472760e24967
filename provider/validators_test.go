package provider

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
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
		{"not_equals with value", api.OpNotEquals, types.StringValue("refs/heads/main"), none, nil},
		{"not_equals with empty value", api.OpNotEquals, types.StringValue(""), none, nil},
		{"not_equals without value", api.OpNotEquals, types.StringNull(), none, []string{"value"}},
		{"not_equals with values", api.OpNotEquals, types.StringValue("x"), some, []string{"values"}},
		{"glob pattern", api.OpGlob, types.StringValue("refs/heads/release/*"), none, nil},
		{"glob with a fixed part", api.OpGlob, types.StringValue("**/main"), none, nil},
		{"glob only a star", api.OpGlob, types.StringValue("*"), none, []string{"value"}},
		{"glob only wildcards", api.OpGlob, types.StringValue("***"), none, []string{"value"}},
		{"glob empty", api.OpGlob, types.StringValue(""), none, []string{"value"}},
		{"glob too long", api.OpGlob, types.StringValue("refs/" + strings.Repeat("x", api.MaxGlobPatternLen)), none, []string{"value"}},
		{"glob unknown", api.OpGlob, types.StringUnknown(), none, nil},
		{"glob without value", api.OpGlob, types.StringNull(), none, []string{"value"}},
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

// The plan-time checks of the issue 13 attributes: each accepts what the server accepts at the
// same rule, and refuses with an error on the attribute.
func TestStringValidatorsOfTheKeySourcesAndTokenShape(t *testing.T) {
	ctx := context.Background()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk := func(k any) string {
		b, err := json.Marshal(map[string]any{"keys": []any{jose.JSONWebKey{Key: k, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	var members map[string]any
	if err := json.Unmarshal([]byte(jwk(priv)), &struct{ Keys []any }{Keys: []any{&members}}); err != nil {
		t.Fatal(err)
	}
	privateD, _ := members["d"].(string)
	if len(privateD) < 16 {
		t.Fatalf("the private JWK has no d: %v", members)
	}
	tests := []struct {
		name  string
		v     validator.String
		value string
		ok    bool
		says  string
	}{
		{"issuer https", issuerURLShape{}, "https://gitlab.acme.example", true, ""},
		{"issuer with a path and trailing slash", issuerURLShape{}, "https://auth.acme.example/realms/ci/", true, ""},
		{"issuer http (the server decides, by --allow-insecure-jwks)", issuerURLShape{}, "http://127.0.0.1:8080", true, ""},
		{"issuer without scheme", issuerURLShape{}, "gitlab.acme.example", false, "https URL"},
		{"issuer ftp", issuerURLShape{}, "ftp://acme.example", false, "https URL"},
		{"issuer with a query", issuerURLShape{}, "https://acme.example/?tenant=1", false, "query"},
		{"issuer with a fragment", issuerURLShape{}, "https://acme.example/#x", false, "fragment"},
		{"issuer with credentials", issuerURLShape{}, "https://u:p@acme.example", false, "credentials"},
		{"issuer without host", issuerURLShape{}, "https:///path", false, "host"},
		{"jwks public key", inlineJWKS{}, jwk(&priv.PublicKey), true, ""},
		{"jwks private key", inlineJWKS{}, jwk(priv), false, `private member "d"`},
		{"jwks symmetric key", inlineJWKS{}, `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`, false, `private member "k"`},
		{"jwks no keys", inlineJWKS{}, `{"keys":[]}`, false, "has no keys"},
		{"jwks not JSON", inlineJWKS{}, `keys`, false, "not a JWKS document"},
		{"jwks too large", inlineJWKS{}, `{"keys":[],"pad":"` + strings.Repeat("x", api.MaxInlineJWKSBytes) + `"}`, false, "at most 65536"},
		{"claim name", claimReference{}, "repository", true, ""},
		{"claim with dots", claimReference{}, "oidc.circleci.com/project-id", true, ""},
		{"claim pointer", claimReference{}, "/google/compute_engine/project_id", true, ""},
		{"claim pointer escapes", claimReference{}, "/a~1b/c~0d", true, ""},
		{"claim bad pointer", claimReference{}, "/a~2b", false, "RFC 6901"},
		{"claim empty", claimReference{}, "", false, "is required"},
		{"audience", trimmed{}, "https://api.acme.example", true, ""},
		{"audience with a space", trimmed{}, "https://api.acme.example ", false, "white space"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &validator.StringResponse{}
			tt.v.ValidateString(ctx, validator.StringRequest{Path: path.Root("x"), ConfigValue: types.StringValue(tt.value)}, resp)
			if got := !resp.Diagnostics.HasError(); got != tt.ok {
				t.Fatalf("accepted = %v, want %v (%v)", got, tt.ok, resp.Diagnostics)
			}
			if !tt.ok && !strings.Contains(resp.Diagnostics.Errors()[0].Detail(), tt.says) {
				t.Errorf("error %q does not say %q", resp.Diagnostics.Errors()[0].Detail(), tt.says)
			}
			if !tt.ok && strings.Contains(resp.Diagnostics.Errors()[0].Detail(), privateD[:16]) {
				t.Errorf("the error repeats key material: %q", resp.Diagnostics.Errors()[0].Detail())
			}
			// Unknown and null values wait for the apply.
			for _, v := range []types.String{types.StringUnknown(), types.StringNull()} {
				resp := &validator.StringResponse{}
				tt.v.ValidateString(ctx, validator.StringRequest{Path: path.Root("x"), ConfigValue: v}, resp)
				if resp.Diagnostics.HasError() {
					t.Errorf("%v refused: %v", v, resp.Diagnostics)
				}
			}
		})
	}
}
