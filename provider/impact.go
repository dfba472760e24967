package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
)

// Impact at plan time (CONTRACT.md §6): a plan that changes who gets a token from an activated
// connection asks the server's impact endpoint (CONTRACT.md §3) which of the workloads seen in the
// last 30 days the change would newly refuse or newly admit, and shows the answer as a warning. It
// is evidence for the reviewer, never a reason to stop: every outcome is a warning, and a server
// that cannot answer gets "impact unknown" with the reason. The server decides with the exchange's
// own evaluation, so the provider only asks and formats.

const (
	// impactNamed is how many workloads of each list the warning names; the rest are counted.
	impactNamed = 10
	// impactTimeout bounds the call: the refresh has just reached the server, so a slow answer
	// means trouble, and a plan must not hang on evidence.
	impactTimeout = 15 * time.Second
)

// planImpact adds the impact warning to the plan of an update of a workload connection. It runs
// after the rest of ModifyPlan (deferred), so it sees the plan as ModifyPlan leaves it: the
// planned fingerprint is unknown exactly when the update changes what decides who gets a token
// (planDerived keeps it for a name or description change), so a refresh, or any plan with nothing
// to change, costs one raw lookup and no server call. A draft has never been activated, so nobody
// has exchanged a token through it and there is nothing to report.
func (r *workloadConnectionResource) planImpact(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if resp.Diagnostics.HasError() || req.Plan.Raw.IsNull() || req.State.Raw.IsNull() {
		return
	}
	if fp, ok := topLevel(resp.Plan.Raw, "fingerprint"); !ok || fp.IsKnown() {
		return
	}
	id, name, status := stateString(req.State.Raw, "id"), stateString(req.State.Raw, "name"), stateString(req.State.Raw, "status")
	if status == api.StatusDraft || id == "" {
		return
	}
	subject := fmt.Sprintf("the planned configuration of workload connection %q", name)
	if unknown := unknownInputs(req.Config.Raw); len(unknown) > 0 {
		addImpactUnknownUntilApply(&resp.Diagnostics, path.Empty(), subject, unknown)
		return
	}
	if r.client == nil {
		addImpactUnknown(&resp.Diagnostics, path.Empty(), subject, errors.New("the provider is not configured"))
		return
	}
	var m connectionModel
	in, d := plannedInput(ctx, resp.Plan, req.Config, &m)
	if d.HasError() {
		// The apply would stop on the same error; the plan stays a plan.
		addImpactUnknown(&resp.Diagnostics, path.Empty(), subject, fmt.Errorf("the planned configuration cannot be read: %s", firstError(d)))
		return
	}
	// The whole planned configuration as a merge patch on the live one (as Update sends it), so
	// the report compares what is enforced now with what this plan asks for, whether or not a
	// proposal is pending.
	ctx, cancel := context.WithTimeout(ctx, impactTimeout)
	defer cancel()
	var prior types.Map
	req.State.GetAttribute(ctx, path.Root("claim_mappings"), &prior) // unreadable: no prior names
	rep, err := r.client.Impact(ctx, id, mergePatch(in, mappingNames(prior)), apiclient.ImpactOptions{})
	if err != nil {
		addImpactUnknown(&resp.Diagnostics, path.Empty(), subject, err)
		return
	}
	addImpactWarning(&resp.Diagnostics, path.Empty(), name, "this change", rep,
		"`trustgate impact --connection "+name+" --patch FILE`, with the change as a JSON merge patch")
}

// approvalImpact adds the impact warning to a plan of the activation resource that approves the
// pending proposal of connection ref (named name): the server evaluates that proposal against the
// live configuration (an empty body asks for the pending proposal).
func approvalImpact(ctx context.Context, client *apiclient.Client, ref, name, proposal string, diags *diag.Diagnostics) {
	at := path.Root("approved_fingerprint")
	subject := fmt.Sprintf("approving the proposal %s of workload connection %q", proposal, name)
	if client == nil {
		addImpactUnknown(diags, at, subject, errors.New("the provider is not configured"))
		return
	}
	ctx, cancel := context.WithTimeout(ctx, impactTimeout)
	defer cancel()
	rep, err := client.Impact(ctx, ref, nil, apiclient.ImpactOptions{})
	if err != nil {
		addImpactUnknown(diags, at, subject, err)
		return
	}
	addImpactWarning(diags, at, name, "approving the proposal "+proposal, rep, "`trustgate impact --connection "+name+" --proposal`")
}

// addImpactWarning writes the report as a reviewer reads a plan: the summary says how many
// workloads change outcome, the detail names at most impactNamed of each kind (newest first, as
// the server lists them) with when they were last seen, how often, and the check that decides,
// then what stays as it is and what the report cannot tell.
func addImpactWarning(diags *diag.Diagnostics, at path.Path, name, change string, rep *api.ImpactReport, cli string) {
	var summary string
	switch {
	case rep.NewlyRefusedTotal > 0 && rep.NewlyAdmittedTotal > 0:
		summary = fmt.Sprintf("Impact on %q: %s newly refused, %s newly admitted", name,
			workloads(rep.NewlyRefusedTotal), workloads(rep.NewlyAdmittedTotal))
	case rep.NewlyRefusedTotal > 0:
		summary = fmt.Sprintf("Impact on %q: %s seen in the last %s would be refused", name, workloads(rep.NewlyRefusedTotal), rep.Window)
	case rep.NewlyAdmittedTotal > 0:
		summary = fmt.Sprintf("Impact on %q: %s seen in the last %s would be newly admitted", name, workloads(rep.NewlyAdmittedTotal), rep.Window)
	default:
		summary = fmt.Sprintf("Impact on %q: no workload seen in the last %s changes outcome", name, rep.Window)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Trustgate evaluated %s against the %s seen on workload connection %q in the last %s, "+
		"with the same rules as the token exchange, and compared it with the live configuration.\n",
		change, workloads(rep.Sightings), name, rep.Window)
	impactSection(&b, "Newly refused", "granted now; the check each would fail", rep.NewlyRefused, rep.NewlyRefusedTotal)
	impactSection(&b, "Newly admitted", "refused now; the check each fails now", rep.NewlyAdmitted, rep.NewlyAdmittedTotal)
	fmt.Fprintf(&b, "\nUnchanged: %d still granted, %d still refused.\n", rep.StillGranted, rep.StillRefused)
	if len(rep.Caveats) > 0 {
		b.WriteString("\nWhat past exchanges cannot tell:\n")
		for _, c := range rep.Caveats {
			fmt.Fprintf(&b, "  - %s\n", oneLine(c))
		}
	}
	b.WriteString("\nThis is evidence from past exchanges, not a check: the plan goes on either way. The same report " +
		"outside Terraform: " + cli + ".")
	diags.AddAttributeWarning(at, summary, b.String())
}

// impactSection lists at most impactNamed workloads and counts the rest.
func impactSection(b *strings.Builder, title, legend string, ws []api.ImpactWorkload, total int) {
	if total == 0 {
		fmt.Fprintf(b, "\n%s: none\n", title)
		return
	}
	fmt.Fprintf(b, "\n%s: %d (%s)\n", title, total, legend)
	named := ws[:min(len(ws), impactNamed)]
	for _, w := range named {
		// The identity comes from the workloads' tokens: quoted, so that no claim value can write
		// lines or terminal escapes into a reviewer's plan.
		fmt.Fprintf(b, "  - %q: last seen %s, %s, %s\n", w.Identity, w.LastSeen.UTC().Format(time.RFC3339),
			plural(w.Exchanges, "exchange"), oneLine(w.FailingCheck))
	}
	if more := total - len(named); more > 0 {
		fmt.Fprintf(b, "  - and %d more\n", more)
	}
}

// addImpactUnknown says that the impact could not be told, and why; never an error.
func addImpactUnknown(diags *diag.Diagnostics, at path.Path, subject string, err error) {
	reason, next := impactUnknownReason(err)
	diags.AddAttributeWarning(at, "Impact unknown: "+reason,
		fmt.Sprintf("Trustgate could not say which workloads %s would newly refuse or admit: %s.\n\n%s\n\n"+
			"The plan goes on without this evidence: review the change against the connection's sightings "+
			"(GET /v1/workload-connections/{ref}/sightings) or with `trustgate impact`.", subject, oneLine(err.Error()), next))
}

// impactUnknownReason is a short reason for the summary and what to do about it.
func impactUnknownReason(err error) (reason, next string) {
	var apiErr *apiclient.Error
	if !errors.As(err, &apiErr) {
		if errors.Is(err, context.DeadlineExceeded) {
			return "the server did not answer in time", "Check the server's health (GET /readyz) and plan again."
		}
		return "the server cannot be reached", "Check that the provider's endpoint is right and that the Trustgate server is reachable from here, then plan again."
	}
	switch apiErr.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return "the API key may not read it", "Every role (devops_admin, security_admin, auditor) may read impact reports: check the api_key against `trustgate keys list`."
	case http.StatusNotFound:
		return "the server has no report for it", "The connection or its pending proposal is gone, or the server predates impact reports (Trustgate v2): refresh and plan again, or upgrade the server."
	case http.StatusUnprocessableEntity:
		return "Trustgate refused the planned configuration", "The apply will be refused for the same reason: fix the configuration first."
	}
	return fmt.Sprintf("the server answered %d", apiErr.StatusCode), "Check the server's logs for the request id above, and plan again."
}

// addImpactUnknownUntilApply says that the impact depends on values Terraform knows only after
// apply: guessing them would show evidence about a configuration nobody wrote.
func addImpactUnknownUntilApply(diags *diag.Diagnostics, at path.Path, subject string, unknown []string) {
	diags.AddAttributeWarning(at, "Impact unknown until apply",
		fmt.Sprintf("Trustgate cannot yet say which workloads %s would newly refuse or admit: %s depend on values "+
			"known only after apply. Once they are known (after applying what they come from), plan again to see the "+
			"impact; until then, review the change against the connection's sightings.", subject, strings.Join(unknown, ", ")))
}

// unknownInputs names the configured attributes, other than name and description (which decide
// nothing about who gets a token), whose values are not known yet.
func unknownInputs(config tftypes.Value) []string {
	var attrs map[string]tftypes.Value
	if config.IsNull() || !config.IsKnown() || config.As(&attrs) != nil {
		return []string{"the configuration"}
	}
	var out []string
	for name, v := range attrs {
		if name != "name" && name != "description" && !v.IsFullyKnown() {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// stateString reads a top-level string attribute of a raw state ("" when null or unknown).
func stateString(obj tftypes.Value, name string) string {
	v, ok := topLevel(obj, name)
	if !ok || !v.IsKnown() || v.IsNull() {
		return ""
	}
	var s string
	if v.As(&s) != nil {
		return ""
	}
	return s
}

func firstError(d diag.Diagnostics) string {
	for _, e := range d.Errors() {
		return e.Summary() + ": " + e.Detail()
	}
	return "unknown error"
}

func workloads(n int) string { return plural(int64(n), "workload") }

func plural(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// oneLine keeps server text on one line with control and format characters (newlines, terminal
// escapes, bidirectional overrides) escaped as Go escapes them: it may carry claim names and
// values, which workloads and configuration authors choose, into the reviewer's terminal.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return !strconv.IsPrint(r) }) {
		return s
	}
	q := fmt.Sprintf("%q", s)
	return q[1 : len(q)-1]
}
