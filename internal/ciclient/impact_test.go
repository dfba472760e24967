package ciclient_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/ciclient"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
)

// reviewed starts a server with an active connection granting the main and dev branches, on which
// main, dev (granted) and a feature branch (refused) have been seen, and returns the server and a
// file holding a patch that narrows the connection to main.
func reviewed(t *testing.T) (*testkit.Server, string) {
	t.Helper()
	s := testkit.Start(t)
	iss := ciissuer.Start(t, devissuer.Options{})
	in := testkit.GenericInput("deploy", iss.URL, iss.JWKSURL, s.URL)
	base := in.Conditions
	in.Conditions = append(base, api.Condition{Claim: "ref", Operator: api.OpOneOf, Values: []string{"refs/heads/main", "refs/heads/dev"}})
	conn := s.CreateActive(t, in)
	for _, c := range []map[string]any{
		{"sub": "repo:app:main", "ref": "refs/heads/main"},
		{"sub": "repo:app:dev", "ref": "refs/heads/dev"},
		{"sub": "repo:app:feature", "ref": "refs/heads/feature"},
	} {
		c["aud"] = s.URL
		s.Exchange(conn.Name, iss.MustMint(t, "generic", c)).Answered(t)
	}
	if err := s.App.Sightings.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	main := "refs/heads/main"
	patch, err := json.Marshal(map[string]any{"conditions": append(base, api.Condition{Claim: "ref", Operator: api.OpEquals, Value: &main})})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "narrow.json")
	if err := os.WriteFile(path, patch, 0o600); err != nil {
		t.Fatal(err)
	}
	return s, path
}

type impactRun struct {
	stdout, stderr string
	err            error
}

func runImpact(t *testing.T, env map[string]string, stdin string, args ...string) impactRun {
	t.Helper()
	var out, errOut bytes.Buffer
	err := ciclient.RunImpactCLI(t.Context(), args, func(k string) string { return env[k] }, strings.NewReader(stdin), &out, &errOut)
	return impactRun{stdout: out.String(), stderr: errOut.String(), err: err}
}

func TestImpactCLIPrintsTheReportAsATable(t *testing.T) {
	s, patch := reviewed(t)
	env := map[string]string{ciclient.EnvAPIKey: s.AuditorKey}
	r := runImpact(t, env, "", "--server", s.URL, "--connection", "deploy", "--patch", patch)
	if r.err != nil {
		t.Fatalf("trustgate impact failed: %v\n%s", r.err, r.stderr)
	}
	for _, want := range []string{
		"Impact of the change in " + patch + " on connection deploy: 3 workloads seen in the last 720h",
		"Newly refused: 1",
		"IDENTITY", "LAST SEEN", "EXCHANGES", "FAILING CHECK",
		"repo:app:dev", "condition: ref equals",
		"Newly admitted: 0",
		"Still granted: 1",
		"Still refused: 1",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the table lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "repo:app:main") || strings.Contains(r.stdout, "Caveats") {
		t.Errorf("the table names an unaffected workload or a caveat:\n%s", r.stdout)
	}
	// The row of the refused workload carries its last time seen and its count.
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.Contains(line, "repo:app:dev") {
			fields := strings.Fields(line)
			if len(fields) < 3 || fields[2] != "1" {
				t.Errorf("row %q: want identity, last seen, 1 exchange, failing check", line)
			}
			if _, err := time.Parse(time.RFC3339, fields[1]); err != nil {
				t.Errorf("row %q: the last seen column is not a time: %v", line, err)
			}
		}
	}
}

func TestImpactCLIPrintsJSONFromStdinAndThePendingProposal(t *testing.T) {
	s, patch := reviewed(t)
	body, err := os.ReadFile(patch)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{ciclient.EnvAPIKey: s.DevOpsKey, ciclient.EnvServer: s.URL}
	r := runImpact(t, env, string(body), "--connection", "deploy", "--patch", "-", "--output", "json", "--window", "24h")
	if r.err != nil {
		t.Fatalf("trustgate impact failed: %v\n%s", r.err, r.stderr)
	}
	var rep api.ImpactReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("--output json is not the report: %v\n%s", err, r.stdout)
	}
	if rep.Window != "24h" || rep.Sightings != 3 || rep.NewlyRefusedTotal != 1 || len(rep.NewlyRefused) != 1 || rep.NewlyRefused[0].Identity != "repo:app:dev" {
		t.Errorf("report %+v", rep)
	}

	// No proposal yet: the server's 404, said on stderr, and a failure.
	r = runImpact(t, env, "", "--connection", "deploy", "--proposal")
	var reported *ciclient.ReportedError
	if !errors.As(r.err, &reported) || !strings.Contains(r.stderr, "no pending proposal") {
		t.Fatalf("--proposal without one: err %v, stderr %q; want the server's 404 explained", r.err, r.stderr)
	}
	if _, err := s.DevOps.PatchConnection(t.Context(), "deploy", json.RawMessage(body), 0); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"--proposal"}, {"--patch", "-"}} {
		r = runImpact(t, env, "{}", append([]string{"--connection", "deploy"}, args...)...)
		if r.err != nil || !strings.Contains(r.stdout, "Impact of the pending proposal on connection deploy") || !strings.Contains(r.stdout, "repo:app:dev") {
			t.Errorf("%v: err %v\n%s%s", args, r.err, r.stdout, r.stderr)
		}
	}
}

func TestImpactCLIRefusesMistakesBeforeCallingTheServer(t *testing.T) {
	for _, c := range []struct {
		name  string
		env   map[string]string
		stdin string
		args  []string
		want  string
	}{
		{"no change named", map[string]string{ciclient.EnvAPIKey: "k"}, "", []string{"--server", "http://127.0.0.1:1", "--connection", "c"}, "--patch FILE"},
		{"both", map[string]string{ciclient.EnvAPIKey: "k"}, "", []string{"--server", "http://127.0.0.1:1", "--connection", "c", "--patch", "-", "--proposal"}, "not both"},
		{"no key", nil, "", []string{"--server", "http://127.0.0.1:1", "--connection", "c", "--proposal"}, ciclient.EnvAPIKey},
		{"not an object", map[string]string{ciclient.EnvAPIKey: "k"}, `["x"]`, []string{"--server", "http://127.0.0.1:1", "--connection", "c", "--patch", "-"}, "not a JSON object"},
		{"bad output", map[string]string{ciclient.EnvAPIKey: "k"}, "", []string{"--server", "http://127.0.0.1:1", "--connection", "c", "--proposal", "--output", "yaml"}, "table, json"},
	} {
		r := runImpact(t, c.env, c.stdin, c.args...)
		if r.err == nil || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: err %v, stderr %q; want a failure naming %q", c.name, r.err, r.stderr, c.want)
		}
	}
}
