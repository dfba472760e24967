package connection

import "github.com/trustgate/terraform-provider-trustgate/api"

// CheckIdentity is the name of the last check of a decision: the identity claim names a workload.
const CheckIdentity = "identity"

// Decision is what a connection's rules say about the claims of a token whose signature and time
// checks have passed.
type Decision struct {
	// OK is true when every effective condition holds and the identity claim names a workload.
	OK bool
	// FailedCheck is the name of the first check that failed ("" when OK).
	FailedCheck string
	// Identity is the identity claim's value, the issued token's sub ("" when it is unusable).
	Identity string
}

// defaultIdentityExpected is the identity check's Expected for the default identity claim, boxed
// once: a string stored in an `any` costs an allocation every time.
var defaultIdentityExpected any = "claim " + api.DefaultIdentity + " resolves to a non-empty string"

// Decide applies a connection's rules to the claims of a verified token: every effective condition
// in order (conds, as Resolve returns them), then the identity claim. It is the one place that
// decides who gets a token: the exchange reaches it through jwtverify's Verifier, and the impact
// report (package sightings) calls it with a proposed configuration's conditions and the claims
// of the workloads seen, so the report cannot drift from what an exchange would do.
//
// It appends one check per condition and one identity check to checks and returns the extended
// slice (callers reuse a buffer). Every check runs, so a report shows each failing condition; the
// first failure names the decision.
func Decide(checks []api.Check, claims map[string]any, conds []api.Condition, identityClaim string) ([]api.Check, Decision) {
	// One token: naming each check here costs what preparing Rules would, without the slice.
	return Rules{conds: conds, identityClaim: identityClaim}.Decide(checks, claims)
}

// Rules are a connection's effective conditions and identity claim, with what their checks say
// whatever the token computed once: Decide with Rules is Decide, without the per-token cost of
// naming each check (the impact report decides up to 10,000 claim sets under one set of Rules).
type Rules struct {
	conds            []api.Condition
	heads            []checkHead
	identityClaim    string
	identityExpected any
}

// PrepareRules prepares conds (as Resolve returns them) and identityClaim ("" is sub) for Decide.
func PrepareRules(conds []api.Condition, identityClaim string) Rules {
	r := Rules{conds: conds, heads: make([]checkHead, len(conds)), identityClaim: identityClaim,
		identityExpected: defaultIdentityExpected}
	for i, c := range conds {
		r.heads[i] = headOf(c)
	}
	if r.identityClaim == "" {
		r.identityClaim = api.DefaultIdentity
	}
	if r.identityClaim != api.DefaultIdentity {
		r.identityExpected = "claim " + r.identityClaim + " resolves to a non-empty string"
	}
	return r
}

// Decide is the package-level Decide under r.
func (r Rules) Decide(checks []api.Check, claims map[string]any) ([]api.Check, Decision) {
	var d Decision
	for i, c := range r.conds {
		var h checkHead
		if r.heads != nil {
			h = r.heads[i]
		} else {
			h = headOf(c)
		}
		check := evaluateCondition(claims, c, h)
		if !check.Passed && d.FailedCheck == "" {
			d.FailedCheck = check.Name
		}
		checks = append(checks, check)
	}
	identityClaim, expected := r.identityClaim, r.identityExpected
	if expected == nil { // not prepared
		if identityClaim == "" {
			identityClaim = api.DefaultIdentity
		}
		expected = defaultIdentityExpected
		if identityClaim != api.DefaultIdentity {
			expected = "claim " + identityClaim + " resolves to a non-empty string"
		}
	}
	if sub, err := IdentityValue(claims, identityClaim); err != nil {
		checks = append(checks, api.Check{Name: CheckIdentity, Expected: expected, Detail: err.Error()})
		if d.FailedCheck == "" {
			d.FailedCheck = CheckIdentity
		}
	} else {
		d.Identity = sub
		checks = append(checks, api.Check{Name: CheckIdentity, Passed: true, Expected: expected, Actual: sub})
	}
	d.OK = d.FailedCheck == ""
	return checks, d
}
