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
			server + "\n\nThe API key's role does not allow this. Connections are created and changed by devops_admin " +
				"keys while they are drafts, activated by security_admin keys, and read by every role."
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
}

// attributePath turns an API field path such as `github.owner`, `token_ttl.amount` or
// `conditions[2].values` into the resource attribute path. ok is false for fields the resource
// does not have (then the error goes on the resource as a whole).
func attributePath(field string) (path.Path, bool) {
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
		"The connection \"" + name + "\" has been activated, and from its first activation on only security_admin " +
		"keys may change or delete it (split duty: the platform team drafts, the security team owns what runs). " +
		"Nothing was changed. Either revert this configuration to what the server has (the next plan is then empty), " +
		"or ask the security team to make the change with their key, or to deactivate and delete the connection " +
		"so that you can create a new draft under another name."
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
