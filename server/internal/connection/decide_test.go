package connection

import (
	"encoding/json"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

func TestDecideRunsEveryConditionInOrderThenTheIdentity(t *testing.T) {
	main, dev := "refs/heads/main", "acme"
	conds := []api.Condition{
		{Claim: "ref", Operator: api.OpEquals, Value: &main},
		{Claim: "repository_owner", Operator: api.OpEquals, Value: &dev},
		{Claim: "environment", Operator: api.OpExists},
	}
	claims := map[string]any{"sub": "repo:acme/app", "ref": "refs/heads/dev", "repository_owner": "other", "run": json.Number("7")}
	buf := make([]api.Check, 0, 8)
	checks, d := Decide(buf, claims, conds, "")
	if d.OK || d.FailedCheck != "condition: ref equals" || d.Identity != "repo:acme/app" {
		t.Errorf("decision %+v: want refused by the first condition, identity still resolved", d)
	}
	names := []string{}
	for _, c := range checks {
		names = append(names, c.Name)
	}
	want := []string{"condition: ref equals", "condition: repository_owner equals", "condition: environment exists", CheckIdentity}
	if len(names) != len(want) {
		t.Fatalf("checks %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Errorf("check %d is %q, want %q", i, names[i], want[i])
		}
	}
	if &checks[0] != &buf[:1][0] {
		t.Errorf("Decide did not append to the buffer it was given")
	}

	claims["ref"], claims["repository_owner"], claims["environment"] = main, "acme", "prod"
	if _, d := Decide(nil, claims, conds, ""); !d.OK || d.FailedCheck != "" {
		t.Errorf("every rule holds: decision %+v", d)
	}
	_, d = Decide(nil, claims, conds, "run")
	if !d.OK || d.Identity != "7" {
		t.Errorf("a number identity claim: decision %+v, want OK naming 7", d)
	}
	checks, d = Decide(nil, claims, conds, "missing")
	if d.OK || d.FailedCheck != CheckIdentity || checks[len(checks)-1].Passed || checks[len(checks)-1].Detail == "" {
		t.Errorf("an unusable identity claim: decision %+v, last check %+v; want refused on identity with a reason", d, checks[len(checks)-1])
	}
}
