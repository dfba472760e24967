package provider

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/helpers/validatordiag"
	"github.com/hashicorp/terraform-plugin-framework-validators/objectvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/resourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/inlinejwks"
)

// Plan-time checks of the static field rules of CONTRACT.md §1 that no validator of
// terraform-plugin-framework-validators expresses: the token TTL's total bounds and which operand
// each condition operator takes. The bounds and operator names come from package api, so the
// server and the provider share one definition.

// tokenTTLBounds checks that token_ttl totals between api.MinTokenTTLSeconds and
// api.MaxTokenTTLSeconds.
type tokenTTLBounds struct{}

var _ validator.Object = tokenTTLBounds{}

func (tokenTTLBounds) Description(context.Context) string {
	return fmt.Sprintf("token_ttl must total between %d seconds and %d hours", api.MinTokenTTLSeconds, api.MaxTokenTTLSeconds/3600)
}

func (v tokenTTLBounds) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v tokenTTLBounds) ValidateObject(_ context.Context, req validator.ObjectRequest, resp *validator.ObjectResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	// Read the attributes directly: As would convert the object into a struct by reflection.
	attrs := req.ConfigValue.Attributes()
	amount, okAmount := attrs["amount"].(types.Int64)
	unit, okUnit := attrs["unit"].(types.String)
	if !okAmount || !okUnit { // shapes are checked by the framework
		return
	}
	if amount.IsNull() || amount.IsUnknown() || unit.IsNull() || unit.IsUnknown() {
		return
	}
	if msg := ttlOutOfBounds(amount.ValueInt64(), unit.ValueString()); msg != "" {
		resp.Diagnostics.AddAttributeError(req.Path, "Token TTL out of range", msg)
	}
}

// ttlOutOfBounds explains why amount unit is outside the allowed total, or returns "". An unknown
// unit is left to the unit's own validator.
func ttlOutOfBounds(amount int64, unit string) string {
	if api.TTLUnitSeconds(unit) == 0 || amount < 1 || api.TTLInRange(amount, unit) {
		return ""
	}
	return fmt.Sprintf("token_ttl must total between %d seconds and %d hours; %d %s is out of range. "+
		"Access tokens should live long enough for one CI job and no longer.",
		api.MinTokenTTLSeconds, api.MaxTokenTTLSeconds/3600, amount, unit)
}

// conditionOperands checks that each condition gives the operand its operator takes: value for
// equals, starts_with, not_equals and glob, values for one_of, nothing for exists; and that a glob
// pattern follows api.GlobPatternProblem, the rule the server applies.
type conditionOperands struct{}

var _ validator.Object = conditionOperands{}

func (conditionOperands) Description(context.Context) string {
	return "equals, starts_with, not_equals and glob take value (glob: a pattern that is not only wildcards), one_of takes values, exists takes neither"
}

func (v conditionOperands) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v conditionOperands) ValidateObject(_ context.Context, req validator.ObjectRequest, resp *validator.ObjectResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	attrs := req.ConfigValue.Attributes()
	operator, okOperator := attrs["operator"].(types.String)
	value, okValue := attrs["value"].(types.String)
	values, okValues := attrs["values"].(types.List)
	if !okOperator || !okValue || !okValues {
		return
	}
	if operator.IsNull() || operator.IsUnknown() {
		return
	}
	for _, p := range conditionOperandProblems(operator.ValueString(), value, values) {
		resp.Diagnostics.AddAttributeError(req.Path.AtName(p.attribute), "Invalid condition", p.detail)
	}
}

type operandProblem struct {
	attribute string // "value" or "values"
	detail    string
}

// conditionOperandProblems lists what is wrong with the operands of one condition. Unknown values
// are given the benefit of the doubt.
func conditionOperandProblems(operator string, value types.String, values types.List) []operandProblem {
	hasValue := !value.IsNull()
	hasValues := !values.IsNull()
	var out []operandProblem
	switch operator {
	case api.OpEquals, api.OpStartsWith, api.OpNotEquals, api.OpGlob:
		switch {
		case !hasValue:
			out = append(out, operandProblem{"value", fmt.Sprintf("operator %q needs value = \"...\".", operator)})
		case value.IsUnknown():
		case operator == api.OpStartsWith && value.ValueString() == "":
			out = append(out, operandProblem{"value", "starts_with needs a non-empty value: every string starts with \"\". " +
				"Use operator = \"exists\" to require the claim."})
		case operator == api.OpGlob && api.GlobPatternProblem(value.ValueString()) != "":
			out = append(out, operandProblem{"value", "The glob pattern " + api.GlobPatternProblem(value.ValueString()) + "."})
		}
		if hasValues {
			out = append(out, operandProblem{"values", fmt.Sprintf("values is only for operator %q; operator %q takes value.", api.OpOneOf, operator)})
		}
	case api.OpExists:
		if hasValue {
			out = append(out, operandProblem{"value", "operator \"exists\" takes no value: remove it."})
		}
		if hasValues {
			out = append(out, operandProblem{"values", "operator \"exists\" takes no values: remove them."})
		}
	case api.OpOneOf:
		if hasValue {
			out = append(out, operandProblem{"value", "operator \"one_of\" takes values = [\"...\", ...], not value."})
		}
		if !hasValues {
			out = append(out, operandProblem{"values", fmt.Sprintf("operator \"one_of\" needs values: a list of 1 to %d strings.", api.MaxOneOfValues)})
		}
	}
	return out
}

// operatorList is the operator names for descriptions.
func operatorList() string { return "`" + strings.Join(api.Operators, "`, `") + "`" }

// fingerprintRegexp is the shape of a connection fingerprint (CONTRACT.md §1).
var fingerprintRegexp = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// The two validators below do what resourcevalidator.Conflicting and objectvalidator.AlsoRequires
// do for the preset blocks, with the same descriptions and diagnostics, without their cost: those
// find each path expression by walking the whole configuration with a schema lookup per value
// (tfsdk.Config.PathMatches), for every resource of every plan. The blocks are top-level and their
// inputs direct children, so a direct lookup finds the same values. BenchmarkPresetValidators runs
// each beside the library validator it replaces (figures in BENCHMARKS.md, "Fast paths and their
// benchmarks"); TestAtMostOnePresetSaysWhatResourcevalidatorConflictingSays and
// TestPresetBlocksRequireTheirInputsAsObjectvalidatorAlsoRequiresDoes check that they agree.

// atMostOnePreset refuses a configuration with more than one preset block; unknown blocks are
// given the benefit of the doubt.
type atMostOnePreset struct{}

var (
	_ resource.ConfigValidator = atMostOnePreset{}

	// presetsConflicting is the library validator atMostOnePreset stands for: its description
	// words atMostOnePreset's diagnostic.
	presetsConflicting = resourcevalidator.Conflicting(
		path.MatchRoot(api.ProviderGitHub), path.MatchRoot(api.ProviderGitLab),
		path.MatchRoot(api.ProviderCircleCI), path.MatchRoot(api.ProviderGoogleCloud))
)

func (atMostOnePreset) Description(ctx context.Context) string {
	return presetsConflicting.Description(ctx)
}

func (atMostOnePreset) MarkdownDescription(ctx context.Context) string {
	return presetsConflicting.MarkdownDescription(ctx)
}

func (atMostOnePreset) ValidateResource(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var set []string
	for _, name := range presetBlocks {
		if v, ok := topLevel(req.Config.Raw, name); ok && !v.IsNull() && v.IsKnown() {
			set = append(set, name)
		}
	}
	if len(set) > 1 {
		resp.Diagnostics.Append(validatordiag.InvalidAttributeCombinationDiagnostic(path.Root(set[0]), presetsConflicting.Description(ctx)))
	}
}

// topLevel is the value of a top-level attribute or block in a raw object value.
func topLevel(obj tftypes.Value, name string) (tftypes.Value, bool) {
	if obj.IsNull() || !obj.IsKnown() {
		return tftypes.Value{}, false
	}
	v, err := obj.ApplyTerraform5AttributePathStep(tftypes.AttributeName(name))
	if err != nil {
		return tftypes.Value{}, false
	}
	tv, ok := v.(tftypes.Value)
	return tv, ok
}

// blockRequires makes the named inputs required whenever the block it validates is present.
type blockRequires struct {
	names []string
	// library is objectvalidator.AlsoRequires over the same inputs, for the description.
	library validator.Object
}

var _ validator.Object = blockRequires{}

// requiresSettings makes the named inputs required whenever the preset block is present.
func requiresSettings(names ...string) []validator.Object {
	var ps []path.Expression
	for _, n := range names {
		ps = append(ps, path.MatchRelative().AtName(n))
	}
	return []validator.Object{blockRequires{names: names, library: objectvalidator.AlsoRequires(ps...)}}
}

func (v blockRequires) Description(ctx context.Context) string { return v.library.Description(ctx) }

func (v blockRequires) MarkdownDescription(ctx context.Context) string {
	return v.library.MarkdownDescription(ctx)
}

func (v blockRequires) ValidateObject(_ context.Context, req validator.ObjectRequest, resp *validator.ObjectResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	attrs := req.ConfigValue.Attributes()
	for _, name := range v.names {
		a, ok := attrs[name]
		if !ok {
			continue
		}
		if a.IsUnknown() {
			return // decided once every input is known
		}
		if a.IsNull() {
			resp.Diagnostics.Append(validatordiag.InvalidAttributeCombinationDiagnostic(req.Path,
				fmt.Sprintf("Attribute %q must be specified when %q is specified", req.Path.AtName(name), req.Path)))
		}
	}
}

// decimalID is the plan-time check of a preset's numeric id (github.owner_id, ...): the rule is
// api.DecimalIDPattern, which the server applies too.
func decimalID(what string) validator.String {
	return stringvalidator.RegexMatches(decimalIDRegexp,
		fmt.Sprintf("must be %s, a decimal number written as a string (for example \"65\"): ids stay with what they name, names can be registered again", what))
}

var decimalIDRegexp = regexp.MustCompile(api.DecimalIDPattern)

// hostShape checks at plan time that a preset's host (github.host, gitlab.domain) is a bare host
// name with an optional port, by api.HostProblem, the rule the server applies. Whether the host
// may be reached is left to the server.
type hostShape struct{}

var _ validator.String = hostShape{}

func (hostShape) Description(context.Context) string {
	return "must be a lowercase host name with an optional port, without scheme, path or credentials"
}

func (v hostShape) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (hostShape) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() || req.ConfigValue.ValueString() == "" {
		return // "" is refused by the length validator
	}
	if msg := api.HostProblem(req.ConfigValue.ValueString()); msg != "" {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid host", req.Path.String()+" "+msg+".")
	}
}

// issuerURLShape checks at plan time what the server's issuer_url rule needs of the URL's shape:
// an absolute http(s) URL with a host, without credentials, query or fragment (an issuer
// identifier has none, and it is compared byte for byte with the discovery document's issuer and
// the tokens' iss). Whether http is allowed (only with --allow-insecure-jwks) and whether the
// address may be reached are the server's to decide: a plan cannot know its flags.
type issuerURLShape struct{}

var _ validator.String = issuerURLShape{}

func (issuerURLShape) Description(context.Context) string {
	return "must be an https URL with a host and no credentials, query or fragment"
}

func (v issuerURLShape) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (issuerURLShape) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() || req.ConfigValue.ValueString() == "" {
		return
	}
	if msg := issuerURLProblem(req.ConfigValue.ValueString()); msg != "" {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid issuer_url", req.Path.String()+" "+msg+".")
	}
}

func issuerURLProblem(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Sprintf("is not a valid URL: %v", err)
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Sprintf("must be an https URL such as https://issuer.example.com; got %q", raw)
	case u.Host == "" || u.Hostname() == "":
		return "must name a host"
	case u.User != nil:
		return "must not carry user credentials"
	case strings.ContainsAny(raw, "?#"):
		return "must not have a query or fragment: an issuer identifier has none, and it is compared byte for byte " +
			"with the discovery document's issuer and the tokens' iss"
	}
	return ""
}

// inlineJWKS checks the jwks attribute at plan time with inlinejwks.Thumbprints, the rule the
// server applies: a JWKS document of valid public keys, at most api.MaxInlineJWKSBytes.
type inlineJWKS struct{}

var _ validator.String = inlineJWKS{}

func (inlineJWKS) Description(context.Context) string {
	return fmt.Sprintf("must be a JWKS document of public keys only, at most %d bytes", api.MaxInlineJWKSBytes)
}

func (v inlineJWKS) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (inlineJWKS) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() || req.ConfigValue.ValueString() == "" {
		return
	}
	if _, err := inlinejwks.Thumbprints(req.ConfigValue.ValueString()); err != nil {
		// The error never repeats a key's members: at most its index, kid and a member's name.
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid inline JWKS", req.Path.String()+" "+err.Error()+".")
	}
}

// claimReference checks a claim reference (a claim_mappings source) with api.ClaimReferenceProblem,
// the rule the server applies: a claim name, or a valid RFC 6901 JSON pointer when it starts with "/".
type claimReference struct{}

var _ validator.String = claimReference{}

func (claimReference) Description(context.Context) string {
	return "must be a claim name, or an RFC 6901 JSON pointer when it starts with \"/\""
}

func (v claimReference) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (claimReference) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if msg := api.ClaimReferenceProblem(req.ConfigValue.ValueString()); msg != "" {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid claim reference", req.Path.String()+": the source claim "+msg+".")
	}
}

var claimMappingNameRegexp = regexp.MustCompile(api.ClaimMappingNamePattern)

// trimmed refuses a string that starts or ends with white space (token_audience entries), as the
// server does: an aud compared byte for byte would never match what a resource server expects.
type trimmed struct{}

var _ validator.String = trimmed{}

func (trimmed) Description(context.Context) string { return "must not start or end with white space" }

func (v trimmed) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (trimmed) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if v := req.ConfigValue.ValueString(); strings.TrimSpace(v) != v {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid value", fmt.Sprintf("%s must not start or end with white space; got %q.", req.Path, v))
	}
}
