package provider

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
)

// Diagnostics are written as: a summary that says what failed, then the server's own words, then
// what to do next. Every error from the API goes through addAPIError so that one status code
// always reads the same way.

// clientFrom turns the provider's configure data into a client. needKey is false only for the
// ephemeral access token, which talks to the unauthenticated token endpoint.
func clientFrom(data any, needKey bool, diags *diag.Diagnostics) *apiclient.Client {
	if data == nil { // the provider is not configured yet (validation)
		return nil
	}
	pd, ok := data.(*providerData)
	if !ok {
		diags.AddError("Unexpected provider data",
			fmt.Sprintf("Expected *providerData, got %T. This is a bug in the Trustgate provider: please report it.", data))
		return nil
	}
	if needKey && !pd.hasAPIKey {
		diags.AddError("Missing Trustgate API key",
			"This resource or data source calls the Trustgate admin API, which needs an API key. Set api_key in the "+
				"provider block (from a sensitive variable) or the "+EnvAPIKey+" environment variable: a devops_admin "+
				"key to manage connections, a security_admin key to activate them. Create one with "+
				"`trustgate keys create --name NAME --role ROLE`.")
		return nil
	}
	return pd.client
}

// addAPIError adds the diagnostic for err, an error of an API call described by action
// ("create workload connection \"x\"").
func addAPIError(diags *diag.Diagnostics, action string, err error) {
	summary, detail := explainAPIError(action, err)
	diags.AddError(summary, detail)
}

// explainAPIError is the summary and detail for the common status codes.
func explainAPIError(action string, err error) (string, string) {
	var apiErr *apiclient.Error
	if !errors.As(err, &apiErr) {
		return "Cannot " + action, err.Error() +
			"\n\nCheck that the provider's endpoint is right and that the Trustgate server is reachable from here."
	}
	server := "Trustgate said: " + apiErr.Error()
	switch apiErr.StatusCode {
	case http.StatusUnauthorized:
		return "Trustgate rejected the API key",
			server + "\n\nThe api_key (or " + EnvAPIKey + ") is missing, mistyped or revoked. Check it against " +
				"`trustgate keys list` on the server and create a new one with `trustgate keys create` if needed."
	case http.StatusForbidden:
		return "Trustgate refused to " + action,
			server + "\n\nThe API key's role does not allow this. Connections are created by devops_admin keys, " +
				"changed by devops_admin or security_admin keys (after their first activation as proposals), activated " +
				"and approved by security_admin keys, and read by every role."
	case http.StatusNotFound:
		return "Cannot " + action + ": not found", server
	case http.StatusPreconditionFailed:
		return "The connection changed on the server while Terraform was working on it",
			server + "\n\nSomeone else changed it after Terraform last read it (its revision moved on). Run " +
				"`terraform plan` again to see the current state, then apply."
	case http.StatusConflict:
		return "Cannot " + action + ": conflict", server
	case http.StatusUnprocessableEntity:
		return "Trustgate refused the configuration", server
	}
	return "Cannot " + action, server
}

// addValidationErrors puts each field error of a 422 answer on the matching attribute and returns
// true, or returns false when err is not a 422 with field errors.
func addValidationErrors(diags *diag.Diagnostics, err error) bool {
	var apiErr *apiclient.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnprocessableEntity || len(apiErr.Problem.Errors) == 0 {
		return false
	}
	for _, fe := range apiErr.Problem.Errors {
		p, ok := attributePath(fe.Field)
		detail := fe.Detail
		if pd := apiErr.Problem.Detail; pd != "" && !strings.Contains(detail, pd) && !strings.Contains(pd, detail) {
			detail += "\n\n(" + pd + ")"
		}
		if ok {
			diags.AddAttributeError(p, "Invalid workload connection: "+fe.Field, detail)
		} else {
			diags.AddError("Invalid workload connection: "+fe.Field, detail)
		}
	}
	return true
}

// apiFieldToAttribute maps the top-level names of the API (CONTRACT.md §1) to the resource's names.
var apiFieldToAttribute = map[string]string{
	"name":           "name",
	"description":    "description",
	"github":         "github",
	"gitlab":         "gitlab",
	"circleci":       "circleci",
	"google_cloud":   "google_cloud",
	"jwks_url":       "jwks_url",
	"token_ttl":      "token_ttl",
	"identity_claim": "identity_claim",
	"conditions":     "condition",
	"issuer_url":     "issuer_url",
	"jwks":           "jwks",
	"claim_mappings": "claim_mappings",
	"token_audience": "token_audience",
	"single_use":     "single_use",
}

// attributePath turns an API field path such as `github.owner`, `token_ttl.amount` or
// `conditions[2].values` into the resource attribute path. ok is false for fields the resource
// does not have (then the error goes on the resource as a whole).
func attributePath(field string) (path.Path, bool) {
	if name, ok := strings.CutPrefix(field, "claim_mappings."); ok && name != "" {
		// A map entry: the rest is the key, dots and brackets included (an invalid name is reported too).
		return path.Root("claim_mappings").AtMapKey(name), true
	}
	parts := strings.Split(field, ".")
	var p path.Path
	for i, part := range parts {
		name, indexes, ok := splitIndexes(part)
		if !ok || name == "" {
			return path.Empty(), false
		}
		if i == 0 {
			attr, known := apiFieldToAttribute[name]
			if !known {
				return path.Empty(), false
			}
			p = path.Root(attr)
		} else {
			p = p.AtName(name)
		}
		for _, ix := range indexes {
			p = p.AtListIndex(ix)
		}
	}
	return p, true
}

// splitIndexes splits `conditions[2]` into "conditions" and [2].
func splitIndexes(s string) (string, []int, bool) {
	open := strings.IndexByte(s, '[')
	if open < 0 {
		return s, nil, true
	}
	name, rest := s[:open], s[open:]
	var idx []int
	for rest != "" {
		end := strings.IndexByte(rest, ']')
		if rest[0] != '[' || end < 0 {
			return "", nil, false
		}
		n, err := strconv.Atoi(rest[1:end])
		if err != nil || n < 0 {
			return "", nil, false
		}
		idx = append(idx, n)
		rest = rest[end+1:]
	}
	return name, idx, true
}

// ownershipSummary is the summary of the refusal a devops_admin gets once a connection has been
// activated; tests and users search for it.
const ownershipSummary = "A security admin owns this workload connection now"

func ownershipDetail(name string, apiErr error) string {
	return "Trustgate said: " + apiErr.Error() + "\n\n" +
		"The connection \"" + name + "\" has been activated, and from its first activation on a security admin owns " +
		"it (split duty): the platform team changes its configuration only through proposals, which an apply of this " +
		"resource stores and a security admin approves, and only security_admin keys may deactivate or delete it. " +
		"Nothing was changed. To retire the connection, ask the security team to destroy its " +
		"trustgate_workload_connection_activation with on_destroy = \"delete\" (or to deactivate and delete it), " +
		"then remove this resource from your configuration with a `removed` block."
}

// addChangeControlOutcome tells what an update of an activated connection did under change
// control: the stored proposal and what the security team approves, or the discarded proposal
// when the configuration went back to the live one. A draft's update needs no word.
func addChangeControlOutcome(diags *diag.Diagnostics, conn *api.Connection, wasPending bool) {
	switch {
	case conn.Status == api.StatusDraft:
	case conn.Proposal != nil:
		diags.AddWarning("Change stored as a proposal: "+conn.Proposal.Fingerprint,
			fmt.Sprintf("Workload connection %q is active or has been, so this change waits for approval and Trustgate "+
				"keeps enforcing the live configuration (live_fingerprint %s). Ask the security team to review the "+
				"proposal and approve it with approved_fingerprint = %q in their "+
				"trustgate_workload_connection_activation; a security admin other than its author (%s) must apply it.",
				conn.Name, conn.Fingerprint, conn.Proposal.Fingerprint, conn.Proposal.ProposedBy))
	case wasPending:
		diags.AddWarning("Pending proposal discarded",
			fmt.Sprintf("The configuration of workload connection %q equals the live one again, so Trustgate discarded "+
				"the pending proposal. Nothing waits for approval; live_fingerprint is %s.", conn.Name, conn.Fingerprint))
	}
}

// activationError explains a refused status change.
func activationError(diags *diag.Diagnostics, action string, conn *api.Connection, approved string, err error) {
	var apiErr *apiclient.Error
	if errors.As(err, &apiErr) {
		switch apiErr.Problem.Type {
		case api.ProblemFourEyes:
			diags.AddError("Trustgate refused to "+action+": four eyes",
				"Trustgate said: "+apiErr.Error()+"\n\n"+
					"The principal who created the connection or last changed its configuration may not activate it. "+
					"Apply this with the API key of another security admin. Nothing was changed.")
			return
		case api.ProblemFingerprintMismatch:
			current := "a different one"
			if conn != nil {
				current = conn.Fingerprint
			}
			diags.AddAttributeError(path.Root("approved_fingerprint"), "The connection is not the one that was approved",
				"Trustgate said: "+apiErr.Error()+"\n\n"+
					"approved_fingerprint is "+approved+" but the connection's configuration now has fingerprint "+
					current+": it changed after it was reviewed, and nothing was changed on the server. "+
					"Review the current configuration (data source trustgate_workload_connection, or the platform "+
					"team's plan), then set approved_fingerprint to the new fingerprint if you approve it.")
			return
		}
	}
	addAPIError(diags, action, err)
}

// approvalError explains a refused approval of conn's pending proposal (conn as read just before).
func approvalError(diags *diag.Diagnostics, conn *api.Connection, approved string, err error) {
	var apiErr *apiclient.Error
	if errors.As(err, &apiErr) && conn.Proposal != nil {
		p := conn.Proposal
		switch apiErr.Problem.Type {
		case api.ProblemFourEyes:
			diags.AddError("Trustgate refused to approve the proposal: four eyes",
				"Trustgate said: "+apiErr.Error()+"\n\n"+
					fmt.Sprintf("%s wrote the change proposed to workload connection %q, and the author of a change may "+
						"not approve it. Apply this with the API key of another security admin. Nothing was changed: "+
						"the connection still enforces %s and the proposal is still pending.", p.ProposedBy, conn.Name, conn.Fingerprint))
			return
		case api.ProblemFingerprintMismatch:
			diags.AddAttributeError(path.Root("approved_fingerprint"), "The pending proposal is not the one that was approved",
				"Trustgate said: "+apiErr.Error()+"\n\n"+
					fmt.Sprintf("approved_fingerprint is %s, but the proposal pending on workload connection %q has "+
						"fingerprint %s (proposed by %s) and the live configuration %s: the proposal changed after it "+
						"was reviewed, and nothing was changed on the server. Review the pending proposal (the platform "+
						"team's plan, or the proposal attribute of data source trustgate_workload_connection), then set "+
						"approved_fingerprint to %s to approve it, or to %s to keep the live configuration.",
						approved, conn.Name, p.Fingerprint, p.ProposedBy, conn.Fingerprint, p.Fingerprint, conn.Fingerprint))
			return
		}
	}
	addAPIError(diags, fmt.Sprintf("approve the proposal on workload connection %q", conn.Name), err)
}
