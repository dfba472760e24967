package provider

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
)

// impactReport is a report of total newly refused and admitted workloads, of which the server
// names at most 100 (as it does).
func impactReport(refused, admitted int) *api.ImpactReport {
	seen := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	list := func(n int, prefix string) []api.ImpactWorkload {
		out := []api.ImpactWorkload{}
		for i := range min(n, 100) {
			out = append(out, api.ImpactWorkload{Identity: fmt.Sprintf("%s-%03d", prefix, i), LastSeen: seen.Add(-time.Duration(i) * time.Hour),
				Exchanges: int64(i + 1), FailingCheck: "condition: ref equals"})
		}
		return out
	}
	return &api.ImpactReport{Window: "720h", Sightings: refused + admitted + 7, StillGranted: 5, StillRefused: 2,
		NewlyRefused: list(refused, "refused"), NewlyRefusedTotal: refused,
		NewlyAdmitted: list(admitted, "admitted"), NewlyAdmittedTotal: admitted}
}

func onlyWarning(t *testing.T, d diag.Diagnostics) diag.Diagnostic {
	t.Helper()
	if d.HasError() || len(d) != 1 || d[0].Severity() != diag.SeverityWarning {
		t.Fatalf("want exactly one warning, got %v", d)
	}
	return d[0]
}

// The warning names at most ten workloads of each kind, newest first as the server lists them,
// and counts the rest; its summary says how many change outcome and in which window.
func TestImpactWarningNamesTenWorkloadsThenCountsTheRest(t *testing.T) {
	for _, tc := range []struct {
		refused, admitted int
		summary           string
		named, notNamed   []string
		more              []string
	}{
		{130, 0, `Impact on "deploy": 130 workloads seen in the last 720h would be refused`,
			[]string{"refused-000", "refused-009"}, []string{"refused-010", "refused-099"}, []string{"  - and 120 more\n"}},
		{1, 12, `Impact on "deploy": 1 workload newly refused, 12 workloads newly admitted`,
			[]string{"refused-000", "admitted-000", "admitted-009"}, []string{"admitted-010"}, []string{"  - and 2 more\n"}},
		{0, 1, `Impact on "deploy": 1 workload seen in the last 720h would be newly admitted`,
			[]string{"admitted-000"}, nil, nil},
		{10, 0, `Impact on "deploy": 10 workloads seen in the last 720h would be refused`,
			[]string{"refused-009"}, nil, nil},
		{0, 0, `Impact on "deploy": no workload seen in the last 720h changes outcome`, nil, []string{"refused-", "admitted-"}, nil},
	} {
		var d diag.Diagnostics
		addImpactWarning(&d, path.Empty(), "deploy", "this change", impactReport(tc.refused, tc.admitted), "`trustgate impact`")
		w := onlyWarning(t, d)
		if w.Summary() != tc.summary {
			t.Errorf("%d refused, %d admitted: summary %q, want %q", tc.refused, tc.admitted, w.Summary(), tc.summary)
		}
		detail := w.Detail()
		for _, n := range tc.named {
			if !strings.Contains(detail, fmt.Sprintf("%q: last seen", n)) {
				t.Errorf("%d refused, %d admitted: %s is not named:\n%s", tc.refused, tc.admitted, n, detail)
			}
		}
		for _, n := range tc.notNamed {
			if strings.Contains(detail, n) {
				t.Errorf("%d refused, %d admitted: %s is named, want only the first ten:\n%s", tc.refused, tc.admitted, n, detail)
			}
		}
		for _, m := range tc.more {
			if !strings.Contains(detail, m) {
				t.Errorf("%d refused, %d admitted: no %q:\n%s", tc.refused, tc.admitted, m, detail)
			}
		}
		if tc.more == nil && strings.Contains(detail, "more\n") {
			t.Errorf("%d refused, %d admitted: counts more than it names:\n%s", tc.refused, tc.admitted, detail)
		}
		sections := []string{"\nNewly refused: none\n", "\nNewly admitted: none\n"}
		if tc.refused > 0 {
			sections[0] = fmt.Sprintf("\nNewly refused: %d (granted now; the check each would fail)\n  - ", tc.refused)
		}
		if tc.admitted > 0 {
			sections[1] = fmt.Sprintf("\nNewly admitted: %d (refused now; the check each fails now)\n  - ", tc.admitted)
		}
		for _, want := range []string{
			sections[0], sections[1],
			fmt.Sprintf("against the %d workloads seen on workload connection \"deploy\" in the last 720h", tc.refused+tc.admitted+7),
			"Unchanged: 5 still granted, 2 still refused.",
		} {
			if !strings.Contains(detail, want) {
				t.Errorf("%d refused, %d admitted: no %q:\n%s", tc.refused, tc.admitted, want, detail)
			}
		}
	}
}

// Each named workload shows when it was last seen, how often, and the check that decides; the
// report's caveats follow.
func TestImpactWarningShowsEachWorkloadAndTheCaveats(t *testing.T) {
	rep := impactReport(1, 0)
	rep.NewlyRefused[0].Exchanges = 42
	rep.Caveats = []string{"token_ttl changes from 1h to 30m: issued tokens live shorter", "no workload was seen"}
	var d diag.Diagnostics
	addImpactWarning(&d, path.Root("approved_fingerprint"), "deploy", "approving the proposal sha256:ab", rep, "`trustgate impact --connection deploy --proposal`")
	w := onlyWarning(t, d)
	if wp, ok := w.(diag.DiagnosticWithPath); !ok || !wp.Path().Equal(path.Root("approved_fingerprint")) {
		t.Errorf("the warning is not on approved_fingerprint: %v", w)
	}
	for _, want := range []string{
		"Trustgate evaluated approving the proposal sha256:ab against",
		"\n  - \"refused-000\": last seen 2026-12-01T09:30:00Z, 42 exchanges, condition: ref equals\n",
		"\nWhat past exchanges cannot tell:\n  - token_ttl changes from 1h to 30m: issued tokens live shorter\n  - no workload was seen\n",
		"`trustgate impact --connection deploy --proposal`",
		"the plan goes on either way",
	} {
		if !strings.Contains(w.Detail(), want) {
			t.Errorf("no %q in:\n%s", want, w.Detail())
		}
	}
}

// Identities come from the workloads' tokens: one that carries a newline, a terminal escape or a
// right-to-left override cannot write lines or colours into the reviewer's plan.
func TestImpactWarningQuotesIdentitiesChosenByWorkloads(t *testing.T) {
	rep := impactReport(1, 0)
	rep.NewlyRefused[0].Identity = "repo:evil\n  - \"repo:acme/app\": fine\x1b[2K\u202e"
	rep.NewlyRefused[0].FailingCheck = "condition: ref\x1b[31m equals"
	rep.Caveats = []string{"rules on ref\u202e are not judged"}
	var d diag.Diagnostics
	addImpactWarning(&d, path.Empty(), "deploy", "this change", rep, "`trustgate impact`")
	detail := onlyWarning(t, d).Detail()
	if strings.ContainsAny(detail, "\x1b\u202e") || strings.Contains(detail, "\n  - \"repo:acme/app\"") {
		t.Fatalf("a workload's identity wrote into the warning:\n%s", detail)
	}
	if !strings.Contains(detail, `"repo:evil\n  - \"repo:acme/app\": fine\x1b[2K\u202e": last seen`) ||
		!strings.Contains(detail, `condition: ref\x1b[31m equals`) || !strings.Contains(detail, `rules on ref\u202e are not judged`) {
		t.Fatalf("the identity or check is not shown escaped:\n%s", detail)
	}
}

// When the server cannot answer, the warning says why and what to do; it is never an error.
func TestImpactUnknownSaysWhy(t *testing.T) {
	closed := closedAddress(t)
	client, err := apiclient.New("http://"+closed, "key")
	if err != nil {
		t.Fatal(err)
	}
	_, unreachable := client.Impact(t.Context(), "deploy", map[string]any{}, apiclient.ImpactOptions{})
	if unreachable == nil {
		t.Fatal("an impact request to a closed port succeeded")
	}
	problem := func(status int, detail string) error {
		return &apiclient.Error{StatusCode: status, Problem: api.Problem{Detail: detail, RequestID: "req-1"}}
	}
	for _, tc := range []struct {
		err     error
		summary string
		detail  []string
	}{
		{unreachable, "Impact unknown: the server cannot be reached", []string{"reachable from here", "connect"}},
		{fmt.Errorf("post: %w", context.DeadlineExceeded), "Impact unknown: the server did not answer in time", []string{"GET /readyz"}},
		{problem(http.StatusForbidden, "no"), "Impact unknown: the API key may not read it", []string{"trustgate: 403 no (request req-1)", "trustgate keys list"}},
		{problem(http.StatusUnauthorized, "bad key"), "Impact unknown: the API key may not read it", []string{"401 bad key"}},
		{problem(http.StatusNotFound, "no pending proposal"), "Impact unknown: the server has no report for it", []string{"no pending proposal", "upgrade the server"}},
		{problem(http.StatusUnprocessableEntity, "conditions: on gitlab.com set group"), "Impact unknown: Trustgate refused the planned configuration",
			[]string{"set group", "The apply will be refused for the same reason"}},
		{problem(http.StatusInternalServerError, "boom"), "Impact unknown: the server answered 500", []string{"request req-1", "server's logs"}},
	} {
		var d diag.Diagnostics
		addImpactUnknown(&d, path.Empty(), `the planned configuration of workload connection "deploy"`, tc.err)
		w := onlyWarning(t, d)
		if w.Summary() != tc.summary {
			t.Errorf("%v: summary %q, want %q", tc.err, w.Summary(), tc.summary)
		}
		for _, want := range append(tc.detail, `which workloads the planned configuration of workload connection "deploy" would newly refuse or admit`) {
			if !strings.Contains(w.Detail(), want) {
				t.Errorf("%v: no %q in:\n%s", tc.err, want, w.Detail())
			}
		}
	}
}

func closedAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// changedConditionPlan is what Terraform plans when the ref condition of the realistic connection
// changes to value (an unknown value: known only after apply): the new condition, and every
// computed attribute without UseStateForUnknown unknown. It returns the configuration and the plan.
func changedConditionPlan(t *testing.T, cv connectionValues, value types.String) (tfsdk.Config, tfsdk.Plan) {
	t.Helper()
	ctx := context.Background()
	m := cv.stateModel
	m.Conditions = append([]conditionModel(nil), m.Conditions...)
	m.Conditions[0].Value = value
	c := m
	c.ID, c.ProviderType, c.JWKSURL = types.StringNull(), types.StringNull(), types.StringNull()
	c.EffectiveConditions = types.ListNull(types.ObjectType{AttrTypes: conditionAttrTypes})
	c.Status, c.Revision, c.Fingerprint = types.StringNull(), types.Int64Null(), types.StringNull()
	c.CreatedBy, c.ActivatedBy, c.ActivatedAt = types.StringNull(), types.StringNull(), types.StringNull()
	c.ConfigChangedBy, c.LiveFingerprint, c.ProposalPending = types.StringNull(), types.StringNull(), types.BoolNull()
	cfg := tfsdk.Plan{Schema: cv.schema}
	noDiagErrors(t, cfg.Set(ctx, &c))

	m.JWKSURL, m.Fingerprint = types.StringUnknown(), types.StringUnknown()
	m.EffectiveConditions = types.ListUnknown(types.ObjectType{AttrTypes: conditionAttrTypes})
	m.Revision = types.Int64Unknown()
	m.LiveFingerprint, m.ConfigChangedBy, m.ProposalPending = types.StringUnknown(), types.StringUnknown(), types.BoolUnknown()
	p := tfsdk.Plan{Schema: cv.schema}
	noDiagErrors(t, p.Set(ctx, &m))
	return tfsdk.Config{Schema: cv.schema, Raw: cfg.Raw}, p
}

// ModifyPlan of an active connection against a server that cannot be reached: a plan with nothing
// to change and a new description never ask (no warning about impact); a changed condition warns
// that the impact is unknown and why, and the plan has no error; a condition known only after
// apply says "impact unknown until apply" without asking.
func TestModifyPlanAsksForImpactOnlyWhenWhoGetsATokenChanges(t *testing.T) {
	ctx := context.Background()
	cv := realisticConnection(t)
	client, err := apiclient.New("http://"+closedAddress(t), "key")
	if err != nil {
		t.Fatal(err)
	}
	r := &workloadConnectionResource{client: client}
	release := types.StringValue("refs/heads/release")
	changedCfg, changed := changedConditionPlan(t, cv, release)
	unknownCfg, unknown := changedConditionPlan(t, cv, types.StringUnknown())
	for _, tc := range []struct {
		name   string
		config tfsdk.Config
		plan   tfsdk.Plan
		want   *regexp.Regexp // the impact warning's summary; nil: none
	}{
		{"refresh", cv.config, cv.refreshPlan, nil},
		{"description", cv.config, describePlan(t, cv), nil},
		{"condition", changedCfg, changed, regexp.MustCompile(`^Impact unknown: the server cannot be reached$`)},
		{"unknown condition", unknownCfg, unknown, regexp.MustCompile(`^Impact unknown until apply$`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := resource.ModifyPlanRequest{Config: tc.config, State: cv.state, Plan: tc.plan}
			resp := &resource.ModifyPlanResponse{Plan: tfsdk.Plan{Schema: cv.schema, Raw: tc.plan.Raw.Copy()}}
			r.ModifyPlan(ctx, req, resp)
			noDiagErrors(t, resp.Diagnostics)
			var impact []diag.Diagnostic
			for _, d := range resp.Diagnostics {
				if strings.HasPrefix(d.Summary(), "Impact") {
					impact = append(impact, d)
				}
			}
			switch {
			case tc.want == nil && len(impact) > 0:
				t.Fatalf("warned about impact: %v", impact)
			case tc.want != nil && (len(impact) != 1 || !tc.want.MatchString(impact[0].Summary())):
				t.Fatalf("impact warnings %v, want one matching %q", impact, tc.want)
			}
			if tc.name == "unknown condition" && !strings.Contains(impact[0].Detail(), "condition depend on values known only after apply") {
				t.Errorf("the warning does not name the unknown input: %s", impact[0].Detail())
			}
		})
	}
}

// unknownInputs names what is not known yet, leaving out name and description.
func TestUnknownInputsNamesTheUnknownAttributes(t *testing.T) {
	obj := tftypes.Object{AttributeTypes: map[string]tftypes.Type{
		"name": tftypes.String, "description": tftypes.String, "jwks_url": tftypes.String,
		"condition": tftypes.List{ElementType: tftypes.String}, "identity_claim": tftypes.String,
	}}
	v := tftypes.NewValue(obj, map[string]tftypes.Value{
		"name":           tftypes.NewValue(tftypes.String, tftypes.UnknownValue),
		"description":    tftypes.NewValue(tftypes.String, tftypes.UnknownValue),
		"jwks_url":       tftypes.NewValue(tftypes.String, tftypes.UnknownValue),
		"condition":      tftypes.NewValue(tftypes.List{ElementType: tftypes.String}, []tftypes.Value{tftypes.NewValue(tftypes.String, tftypes.UnknownValue)}),
		"identity_claim": tftypes.NewValue(tftypes.String, "sub"),
	})
	if got := strings.Join(unknownInputs(v), ","); got != "condition,jwks_url" {
		t.Errorf("unknownInputs = %q, want condition,jwks_url", got)
	}
	if got := unknownInputs(tftypes.NewValue(obj, tftypes.UnknownValue)); len(got) != 1 {
		t.Errorf("an unknown configuration: %q", got)
	}
}

// activationPlan is the activation resource's state (active, fingerprint live, with proposal
// pending when proposal is not "") and the plan that sets approved_fingerprint to approved.
func activationPlan(t *testing.T, proposal string, approved types.String) (tfsdk.State, tfsdk.Plan, tfsdk.Config) {
	t.Helper()
	ctx := context.Background()
	var sr resource.SchemaResponse
	NewWorkloadConnectionActivationResource().Schema(ctx, resource.SchemaRequest{}, &sr)
	live := "sha256:" + strings.Repeat("1", 64)
	prior := activationModel{
		ConnectionName: types.StringValue("deploy"), Active: types.BoolValue(true), ApprovedFingerprint: types.StringValue(live),
		OnDestroy: types.StringValue(onDestroyDeactivate), ConnectionID: types.StringValue("0193a4f2-7c1e-7b3a-9d4e-5f6a7b8c9d0e"),
		Status: types.StringValue(api.StatusActive), Fingerprint: types.StringValue(live), ActivatedBy: types.StringValue("security"),
		ActivatedAt: types.StringValue("2026-12-01T09:00:00Z"), ProposalFingerprint: types.StringValue(proposal),
	}
	state := tfsdk.State{Schema: sr.Schema}
	noDiagErrors(t, state.Set(ctx, &prior))
	planned := prior
	planned.ApprovedFingerprint = approved
	plan := tfsdk.Plan{Schema: sr.Schema}
	noDiagErrors(t, plan.Set(ctx, &planned))
	return state, plan, tfsdk.Config{Schema: sr.Schema, Raw: plan.Raw.Copy()}
}

// The activation resource asks about the pending proposal only when its plan would approve it;
// an approved_fingerprint known only after apply says "impact unknown until apply"; a server that
// cannot answer gives "impact unknown", on approved_fingerprint, never an error.
func TestActivationModifyPlanAsksForImpactOnlyWhenItApproves(t *testing.T) {
	ctx := context.Background()
	client, err := apiclient.New("http://"+closedAddress(t), "key")
	if err != nil {
		t.Fatal(err)
	}
	r := &activationResource{client: client}
	live, proposal := "sha256:"+strings.Repeat("1", 64), "sha256:"+strings.Repeat("2", 64)
	for _, tc := range []struct {
		name     string
		proposal string
		approved types.String
		want     string // the impact warning's summary; "": none
	}{
		{"nothing pending", "", types.StringValue(live), ""},
		{"pending, approving the live one", proposal, types.StringValue(live), ""},
		{"approving the proposal", proposal, types.StringValue(proposal), "Impact unknown: the server cannot be reached"},
		{"approved known after apply", proposal, types.StringUnknown(), "Impact unknown until apply"},
		{"nothing pending, known after apply", "", types.StringUnknown(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state, plan, cfg := activationPlan(t, tc.proposal, tc.approved)
			req := resource.ModifyPlanRequest{Config: cfg, State: state, Plan: plan}
			resp := &resource.ModifyPlanResponse{Plan: tfsdk.Plan{Schema: plan.Schema, Raw: plan.Raw.Copy()}}
			r.ModifyPlan(ctx, req, resp)
			noDiagErrors(t, resp.Diagnostics)
			var impact []diag.Diagnostic
			for _, d := range resp.Diagnostics {
				if strings.HasPrefix(d.Summary(), "Impact") {
					impact = append(impact, d)
				}
			}
			if tc.want == "" {
				if len(impact) > 0 {
					t.Fatalf("warned about impact: %v", impact)
				}
				return
			}
			if len(impact) != 1 || impact[0].Summary() != tc.want {
				t.Fatalf("impact warnings %v, want one %q", impact, tc.want)
			}
			if wp, ok := impact[0].(diag.DiagnosticWithPath); !ok || !wp.Path().Equal(path.Root("approved_fingerprint")) {
				t.Errorf("the warning is not on approved_fingerprint: %v", impact[0])
			}
			if !strings.Contains(impact[0].Detail(), `pending proposal`) && !strings.Contains(impact[0].Detail(), proposal) {
				t.Errorf("the warning does not say which proposal: %s", impact[0].Detail())
			}
		})
	}
}
