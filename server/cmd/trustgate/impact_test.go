package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
)

// TestSightingsSurviveShutdownAndTrustgateImpactReportsThem: an exchange served just before
// SIGTERM is flushed as a sighting on the way out (the background flush runs every few seconds,
// so only the shutdown flush can have written it), and `trustgate impact` on the restarted server
// reports the workload a narrowing change would refuse.
func TestSightingsSurviveShutdownAndTrustgateImpactReportsThem(t *testing.T) {
	dir := t.TempDir()
	p := serve(t, dir, nil, "--dev")
	keys := map[string]string{}
	for _, m := range devKeyLine.FindAllStringSubmatch(p.Stdout(), -1) {
		keys[m[1]] = m[2]
	}
	iss := ciissuer.Start(t, devissuer.Options{})
	in := testkit.GenericInput("deploy", iss.URL, iss.JWKSURL, p.PublicURL)
	conn, err := p.Client(t, keys["DEVOPS"]).CreateConnection(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Client(t, keys["SECURITY"]).SetStatus(t.Context(), conn.Name,
		api.StatusChange{Status: api.StatusActive, ApprovedFingerprint: conn.Fingerprint}, 0); err != nil {
		t.Fatal(err)
	}
	tok := iss.MustMint(t, "generic", map[string]any{"aud": p.PublicURL, "sub": "repo:app:dev", "ref": "refs/heads/dev"})
	testkit.MustGrant(t, p.Exchange(conn.Name, tok), time.Hour)
	p.Signal(t, syscall.SIGTERM)
	if err, exited := p.Wait(20 * time.Second); !exited || err != nil {
		t.Fatalf("serve after SIGTERM: exited %v, %v", exited, err)
	}

	q := serve(t, dir, nil, "--dev")
	main := "refs/heads/main"
	patch, _ := json.Marshal(map[string]any{"conditions": append(in.Conditions, api.Condition{Claim: "ref", Operator: api.OpEquals, Value: &main})})
	file := filepath.Join(t.TempDir(), "narrow.json")
	if err := os.WriteFile(file, patch, 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := testkit.RunTrustgate(t, dir, []string{"TRUSTGATE_API_KEY=" + keys["SECURITY"]},
		"impact", "--server", q.URL, "--connection", "deploy", "--patch", file)
	if err != nil {
		t.Fatalf("trustgate impact: %v\n%s", err, stderr)
	}
	for _, want := range []string{"1 workloads seen", "Newly refused: 1", "repo:app:dev", "condition: ref equals"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("trustgate impact printed no %q:\n%s", want, stdout)
		}
	}
}

func TestServeRefusesASightingsRetentionBelowOneSecond(t *testing.T) {
	stdout, stderr, err := testkit.RunTrustgate(t, t.TempDir(), []string{"TRUSTGATE_SIGHTINGS_RETENTION=0s"},
		"serve", "--dev", "--listen", "127.0.0.1:0")
	if out := stdout + stderr; err == nil || !strings.Contains(out, "--sightings-retention") {
		t.Fatalf("serve with a zero retention: %v %q; want a refusal naming --sightings-retention", err, out)
	}
}

// TestServeSightingsSwitch: recording is on unless --sightings=false or TRUSTGATE_SIGHTINGS=false
// turns it off, and a value that is not a boolean is refused.
func TestServeSightingsSwitch(t *testing.T) {
	t.Setenv("TRUSTGATE_KEK", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	for _, tc := range []struct {
		env  string
		args []string
		want bool
	}{
		{"", nil, true},
		{"", []string{"--sightings=false"}, false},
		{"false", nil, false},
		{"false", []string{"--sightings=true"}, true},
	} {
		t.Setenv("TRUSTGATE_SIGHTINGS", tc.env)
		if tc.env == "" {
			os.Unsetenv("TRUSTGATE_SIGHTINGS")
		}
		c, err := parseServeConfig(tc.args, io.Discard)
		if err != nil {
			t.Fatalf("TRUSTGATE_SIGHTINGS=%q %v: %v", tc.env, tc.args, err)
		}
		if c.sightings != tc.want {
			t.Errorf("TRUSTGATE_SIGHTINGS=%q %v: recording %v, want %v", tc.env, tc.args, c.sightings, tc.want)
		}
	}
	t.Setenv("TRUSTGATE_SIGHTINGS", "sometimes")
	// The refusal names the variable and the flag whose values it takes.
	if _, err := parseServeConfig(nil, io.Discard); err == nil || !strings.Contains(err.Error(), "TRUSTGATE_SIGHTINGS") || !strings.Contains(err.Error(), "--sightings") {
		t.Errorf("TRUSTGATE_SIGHTINGS=sometimes: %v, want a refusal naming the variable", err)
	}
}
