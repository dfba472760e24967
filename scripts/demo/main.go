// Command demo runs the whole Trustgate story end to end on the embedded default (make demo):
// a dev server and a dev OIDC issuer on loopback, the platform team's Terraform (devops key), a
// test of the draft, the security team's Terraform (security key), a CI exchange with
// `trustgate exchange`, whoami with the access token, and one refused exchange with its audit
// event; then change control: the platform team changes the active connection (its plan shows a
// proposal), the security team approves the proposal by fingerprint, and a CI job's exchange
// follows the new rule; last, evidence for a change: a plan that tightens the rule warns which
// workload seen by the server it would refuse. It stops everything it started and exits non-zero
// on any failure.
//
// The provider version comes from the Makefile (`make demo` passes -version $(VERSION)), the same
// one `make build` put into the binary's name.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
)

const connectionName = "github-deploy"

// The GitHub ids of examples/quickstart/platform (owner_id, repository_id): the dev issuer's tokens
// carry them as repository_owner_id and repository_id, as GitHub's do.
const (
	ownerID      = "61234567"
	repositoryID = "812345678"
)

// The platform team's change in step 9: deployments from the release branch too. The demo makes
// it in its copy of examples/quickstart/platform, as the team would in its workspace.
const (
	mainOnly = `  condition {
    claim    = "ref"
    operator = "equals"
    value    = "refs/heads/main"
  }`
	mainOrRelease = `  condition {
    claim    = "ref"
    operator = "one_of"
    values   = ["refs/heads/main", "refs/heads/release"]
  }`
	// The change of step 12: deployments from the release branch only.
	releaseOnly = `  condition {
    claim    = "ref"
    operator = "equals"
    value    = "refs/heads/release"
  }`
)

func main() {
	version := flag.String("version", "", "provider version that `make build` built (bin/terraform-provider-trustgate_vVERSION); make demo passes the Makefile's VERSION")
	keep := flag.Bool("keep-serving", false, "after the story, keep the server running (to look around the review console) until Ctrl-C; make demo KEEP=1 sets it")
	flag.Parse()
	start := time.Now()
	if err := run(*version, *keep); err != nil {
		fmt.Fprintf(os.Stderr, "\nDEMO FAILED: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("\nDemo finished in %.1fs. Everything it started has been stopped.\n", time.Since(start).Seconds())
}

type demo struct {
	root, bin, work string
	procs           []*exec.Cmd
	env             []string
}

func step(n int, title string)    { fmt.Printf("\n\033[1mStep %d. %s\033[0m\n", n, title) }
func say(format string, a ...any) { fmt.Printf("   "+format+"\n", a...) }

func run(version string, keep bool) error {
	if version == "" {
		return errors.New("no provider version: run `make demo`, which passes -version from the Makefile's VERSION")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	d := &demo{root: root, bin: filepath.Join(root, "bin")}
	if d.work, err = os.MkdirTemp("", "trustgate-demo-"); err != nil {
		return err
	}
	defer os.RemoveAll(d.work)
	defer d.stopAll()
	for _, b := range []string{"trustgate", "terraform-provider-trustgate_v" + version} {
		if _, err := os.Stat(filepath.Join(d.bin, b)); err != nil {
			return fmt.Errorf("%s is missing: run `make demo` (it builds first)", filepath.Join("bin", b))
		}
	}
	if _, err := exec.LookPath("terraform"); err != nil {
		return errors.New("terraform is not on PATH: install Terraform >= 1.10")
	}

	step(1, "Start the Trustgate server with --dev (SQLite file, generated keys) on loopback")
	port, err := freePort()
	if err != nil {
		return err
	}
	server := fmt.Sprintf("http://127.0.0.1:%d", port)
	out, err := d.startAndRead(ctx, filepath.Join(d.work, "server"), "trustgate listening",
		filepath.Join(d.bin, "trustgate"), "serve", "--dev", "--listen", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return err
	}
	devopsKey := grab(out, `TRUSTGATE_DEVOPS_KEY=(\S+)`)
	securityKey := grab(out, `TRUSTGATE_SECURITY_KEY=(\S+)`)
	if devopsKey == "" || securityKey == "" {
		return fmt.Errorf("the dev server did not print its bootstrap keys; it said:\n%s", out)
	}
	say("server %s is up; it printed a devops_admin key and a security_admin key, once", server)

	step(2, "Start a local OIDC issuer that mints GitHub-Actions-shaped tokens (stands in for GitHub)")
	iport, err := freePort()
	if err != nil {
		return err
	}
	issuer := fmt.Sprintf("http://127.0.0.1:%d", iport)
	if _, err := d.startAndRead(ctx, filepath.Join(d.work, "issuer"), issuer,
		filepath.Join(d.bin, "trustgate"), "dev-issuer", "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", iport)); err != nil {
		return err
	}
	say("issuer %s serves its keys at %s/.well-known/jwks.json", issuer, issuer)

	if err := d.terraformConfig(); err != nil {
		return err
	}
	step(3, "Platform team: terraform apply examples/quickstart/platform with the devops key")
	platform, err := d.workspace("platform")
	if err != nil {
		return err
	}
	tfvars := []string{"-var", "endpoint=" + server, "-var", "api_key=" + devopsKey, "-var", "jwks_url=" + issuer + "/.well-known/jwks.json"}
	if _, err := d.terraform(ctx, platform, append([]string{"apply", "-auto-approve", "-input=false"}, tfvars...)...); err != nil {
		return err
	}
	fingerprint, err := d.terraform(ctx, platform, "output", "-raw", "fingerprint")
	if err != nil {
		return err
	}
	devops, _ := apiclient.New(server, devopsKey)
	conn, err := devops.GetConnection(ctx, connectionName)
	if err != nil {
		return err
	}
	say("connection %q is a %s; fingerprint %s", conn.Name, conn.Status, fingerprint)
	say("effective conditions (preset first, then ours):")
	for _, c := range conn.EffectiveConditions {
		say("  - %s %s %s", c.Claim, c.Operator, operand(c.Value, c.Values))
	}

	step(4, "Platform team tests the draft with a sample CI token (nothing is issued)")
	good := map[string]any{"repository": "acme/app", "repository_id": repositoryID, "repository_owner": "acme",
		"repository_owner_id": ownerID, "ref": "refs/heads/main", "aud": server, "sub": "repo:acme/app:ref:refs/heads/main"}
	token, err := mint(ctx, issuer, good)
	if err != nil {
		return err
	}
	res, err := devops.TestToken(ctx, connectionName, token)
	if err != nil {
		return err
	}
	for _, c := range res.Checks {
		mark := "pass"
		if !c.Passed {
			mark = "FAIL"
		}
		say("  [%s] %-40s %s", mark, c.Name, c.Detail)
	}
	say("would issue: %v", res.WouldIssue)
	if !res.WouldIssue {
		return errors.New("the sample token should pass every check")
	}
	if _, err := devops.ExchangeToken(ctx, connectionName, token); err == nil {
		return errors.New("a draft connection issued a token")
	}
	say("an exchange against the draft is refused, as it should be: drafts can only be tested")

	step(5, "Security team: terraform apply examples/quickstart/security with the security key and the approved fingerprint")
	security, err := d.workspace("security")
	if err != nil {
		return err
	}
	if _, err := d.terraform(ctx, security, "apply", "-auto-approve", "-input=false",
		"-var", "endpoint="+server, "-var", "api_key="+securityKey, "-var", "approved_fingerprint="+fingerprint); err != nil {
		return err
	}
	conn, err = devops.GetConnection(ctx, connectionName)
	if err != nil {
		return err
	}
	say("connection %q is now %s (activated by %s)", conn.Name, conn.Status, conn.ActivatedBy)
	if _, err := d.terraform(ctx, platform, append([]string{"plan", "-detailed-exitcode", "-input=false"}, tfvars...)...); err != nil {
		return fmt.Errorf("the platform plan after activation should be empty: %w", err)
	}
	say("the platform team's next plan is empty; from now on its changes are proposals a security admin approves")

	step(6, "CI job: mint a GitHub-shaped token and exchange it with `trustgate exchange`")
	ciToken, err := mint(ctx, issuer, good)
	if err != nil {
		return err
	}
	access, stderr, err := d.exchange(ctx, server, ciToken)
	if err != nil {
		return fmt.Errorf("exchange failed: %v: %s", err, stderr)
	}
	say("got an access token (%d bytes, ES256 JWT signed by Trustgate)", len(access))

	step(7, "Call whoami with the access token")
	workload, _ := apiclient.New(server, access)
	who, err := workload.Whoami(ctx)
	if err != nil {
		return err
	}
	say("kind=%s sub=%s connection=%s expires_at=%s", who.Kind, who.Sub, who.Connection, who.ExpiresAt.Format(time.RFC3339))

	step(8, "A token from another repository of the same owner is refused; the audit log says why")
	bad := map[string]any{"repository": "acme/infra", "repository_id": "812345700", "repository_owner": "acme",
		"repository_owner_id": ownerID, "ref": "refs/heads/main", "aud": server}
	badToken, err := mint(ctx, issuer, bad)
	if err != nil {
		return err
	}
	if _, stderr, err := d.exchange(ctx, server, badToken); err == nil {
		return errors.New("the token from acme/infra was accepted")
	} else {
		say("trustgate exchange exited non-zero and said: %s", strings.TrimSpace(firstLine(stderr)))
	}
	sec, _ := apiclient.New(server, securityKey)
	evs, err := sec.ListAuditEvents(ctx, apiclient.AuditOptions{Connection: connectionName, Action: "token.exchange", Limit: 2})
	if err != nil {
		return err
	}
	for _, ev := range evs.Items {
		detail, _ := json.Marshal(ev.Detail)
		say("audit %s %s outcome=%s reason=%q detail=%s", ev.Time.Format(time.TimeOnly), ev.Action, ev.Outcome, ev.Reason, detail)
	}
	if len(evs.Items) < 2 || evs.Items[0].Outcome != "denied" || evs.Items[1].Outcome != "granted" {
		return errors.New("expected the denied and the granted exchange in the audit log")
	}

	if err := d.changeControl(ctx, platform, security, server, issuer, securityKey, fingerprint, tfvars, good); err != nil {
		return err
	}
	if err := d.impact(ctx, platform, server, securityKey, tfvars); err != nil {
		return err
	}
	say("the review console shows all of this at %s/ui/ until the demo stops: sign in with the security key", server)
	say("  %s  (a demo key of this throwaway server; make run prints the keys of a server of your own)", securityKey)
	if keep {
		say("the server keeps running for the console (make demo KEEP=1): press Ctrl-C to stop it")
		stop, cancelSignal := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		<-stop.Done()
		cancelSignal()
	} else {
		say("(make demo KEEP=1 keeps it running until Ctrl-C, to look around)")
	}
	step(13, "Stop the server and the issuer")
	return nil
}

// impact is the evidence for a change (CONTRACT.md §6, impact at plan time): the server has seen
// CI jobs on main and on the release branch; a plan that allows the release branch only warns
// that the main branch's workload would be refused. The demo stops at the plan, as a reviewer
// would.
func (d *demo) impact(ctx context.Context, platform, server, securityKey string, tfvars []string) error {
	step(12, "Platform team: allow the release branch only; the plan warns whom that would lock out")
	// The server records sightings in memory and writes them every few seconds: wait until the
	// main branch's exchange of step 6 is stored (it usually is by now).
	sec, _ := apiclient.New(server, securityKey)
	const mainWorkload = "repo:acme/app:ref:refs/heads/main"
	deadline := time.Now().Add(20 * time.Second)
	for {
		seen, err := sec.ListSightings(ctx, connectionName, apiclient.SightingOptions{Limit: 10})
		if err != nil {
			return err
		}
		if slices.ContainsFunc(seen.Items, func(s api.Sighting) bool { return s.Identity == mainWorkload && s.Outcome == "granted" }) {
			say("the server has seen these workloads on %q (GET /v1/workload-connections/%s/sightings):", connectionName, connectionName)
			for _, s := range seen.Items {
				say("  - %-45s %-7s %d exchange(s), last seen %s", s.Identity, s.Outcome, s.Exchanges, s.LastSeen.Format(time.TimeOnly))
			}
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the main branch's exchange was not recorded as a sighting within 20s; sightings: %+v", seen.Items)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	mainTF := filepath.Join(platform, "main.tf")
	b, err := os.ReadFile(mainTF)
	if err != nil {
		return err
	}
	if !bytes.Contains(b, []byte(mainOrRelease)) {
		return fmt.Errorf("the platform workspace no longer has the ref condition of step 9:\n%s", mainOrRelease)
	}
	if err := os.WriteFile(mainTF, bytes.Replace(b, []byte(mainOrRelease), []byte(releaseOnly), 1), 0o600); err != nil {
		return err
	}
	say("in main.tf, the ref condition becomes: operator = \"equals\", value = \"refs/heads/release\"")
	plan, err := d.terraform(ctx, platform, append([]string{"plan", "-input=false"}, tfvars...)...)
	if err != nil {
		return err
	}
	warning := warningBlock(plan, "Warning: Impact")
	if len(warning) == 0 || !strings.Contains(strings.Join(warning, "\n"), `"`+mainWorkload+`"`) {
		return fmt.Errorf("the plan does not warn that %s would be refused:\n%s", mainWorkload, plan)
	}
	say("terraform plan (platform workspace) warns, before anything is applied:")
	for _, l := range warning {
		say("  | %s", l)
	}
	say("the platform team keeps main (or talks to its owners) before proposing this: nothing was applied")
	return nil
}

// changeControl is the second half of the story (CONTRACT.md §1, change control): the platform team
// changes the active connection, which stores a proposal while the live rule stays; the security
// team sees it, approves it by fingerprint; CI jobs on the release branch then get tokens.
func (d *demo) changeControl(ctx context.Context, platform, security, server, issuer, securityKey, liveFingerprint string,
	tfvars []string, good map[string]any) error {
	step(9, "Platform team: allow deployments from the release branch too; the plan shows a proposal")
	mainTF := filepath.Join(platform, "main.tf")
	b, err := os.ReadFile(mainTF)
	if err != nil {
		return err
	}
	if !bytes.Contains(b, []byte(mainOnly)) {
		return fmt.Errorf("examples/quickstart/platform/main.tf no longer has the ref condition the demo changes:\n%s", mainOnly)
	}
	if err := os.WriteFile(mainTF, bytes.Replace(b, []byte(mainOnly), []byte(mainOrRelease), 1), 0o600); err != nil {
		return err
	}
	say("in main.tf, the ref condition becomes: operator = \"one_of\", values = [\"refs/heads/main\", \"refs/heads/release\"]")
	plan, err := d.terraform(ctx, platform, append([]string{"plan", "-input=false"}, tfvars...)...)
	if err != nil {
		return err
	}
	say("terraform plan (platform workspace):")
	for _, l := range planLines(plan) {
		say("  | %s", l)
	}
	if !strings.Contains(plan, "proposal_pending") || !strings.Contains(plan, "This apply proposes a change") {
		return errors.New("the platform plan does not show that the change becomes a proposal")
	}
	if _, err := d.terraform(ctx, platform, append([]string{"apply", "-auto-approve", "-input=false"}, tfvars...)...); err != nil {
		return err
	}
	proposal, err := d.terraform(ctx, platform, "output", "-raw", "fingerprint")
	if err != nil {
		return err
	}
	live, err := d.terraform(ctx, platform, "output", "-raw", "live_fingerprint")
	if err != nil {
		return err
	}
	pending, err := d.terraform(ctx, platform, "output", "-raw", "proposal_pending")
	if err != nil {
		return err
	}
	say("applied: fingerprint %s (the proposal), live_fingerprint %s, proposal_pending %s", proposal, live, pending)
	if live != liveFingerprint || proposal == liveFingerprint || pending != "true" {
		return fmt.Errorf("after the apply: fingerprint %s, live_fingerprint %s (want %s), proposal_pending %s", proposal, live, liveFingerprint, pending)
	}
	if plan, err := d.terraform(ctx, platform, append([]string{"plan", "-detailed-exitcode", "-input=false"}, tfvars...)...); err != nil {
		return fmt.Errorf("the platform plan after proposing should be empty: %w", err)
	} else if strings.Contains(plan, "proposes a change") {
		return fmt.Errorf("the empty platform plan still warns about a proposal:\n%s", plan)
	}
	say("the platform team's next plan is empty: its state describes the proposal")
	release := map[string]any{}
	for k, v := range good {
		release[k] = v
	}
	release["ref"], release["sub"] = "refs/heads/release", "repo:acme/app:ref:refs/heads/release"
	releaseToken, err := mint(ctx, issuer, release)
	if err != nil {
		return err
	}
	if _, stderr, err := d.exchange(ctx, server, releaseToken); err == nil {
		return errors.New("a CI job on the release branch got a token before the proposal was approved")
	} else {
		say("a CI job on refs/heads/release is still refused (the live rule): %s", strings.TrimSpace(firstLine(stderr)))
	}

	step(10, "Security team: the proposal shows up; review it and approve it by its fingerprint")
	secvars := []string{"-var", "endpoint=" + server, "-var", "api_key=" + securityKey}
	plan, err = d.terraform(ctx, security, append([]string{"plan", "-input=false", "-var", "approved_fingerprint=" + liveFingerprint}, secvars...)...)
	if err != nil {
		return err
	}
	if strings.Contains(plan, "Plan:") || !strings.Contains(plan, "A proposed change waits for review") {
		return fmt.Errorf("the security plan should change nothing and warn about the proposal:\n%s", plan)
	}
	say("terraform plan (security workspace, approved_fingerprint still the live one): no changes to resources, and")
	say("  | %s", warningLine(plan, `proposal_fingerprint = "" ->`))
	say("  | %s", warningLine(plan, "Warning: A proposed change"))
	sec, _ := apiclient.New(server, securityKey)
	conn, err := sec.GetConnection(ctx, connectionName)
	if err != nil {
		return err
	}
	if conn.Proposal == nil || conn.Proposal.Fingerprint != proposal {
		return fmt.Errorf("the server's pending proposal is %+v, want fingerprint %s", conn.Proposal, proposal)
	}
	say("the proposal's effective conditions (what approving it would enforce):")
	for _, c := range conn.Proposal.EffectiveConditions {
		say("  - %s %s %s", c.Claim, c.Operator, operand(c.Value, c.Values))
	}
	approve := append([]string{"-input=false", "-var", "approved_fingerprint=" + proposal}, secvars...)
	plan, err = d.terraform(ctx, security, append([]string{"plan"}, approve...)...)
	if err != nil {
		return err
	}
	say("terraform plan with approved_fingerprint = the proposal's (security workspace):")
	for _, l := range planLines(plan) {
		say("  | %s", l)
	}
	if _, err := d.terraform(ctx, security, append([]string{"apply", "-auto-approve"}, approve...)...); err != nil {
		return err
	}
	conn, err = sec.GetConnection(ctx, connectionName)
	if err != nil {
		return err
	}
	if conn.Fingerprint != proposal || conn.Proposal != nil || conn.Status != "active" {
		return fmt.Errorf("after the approval: live %s (want %s), proposal %+v, status %s", conn.Fingerprint, proposal, conn.Proposal, conn.Status)
	}
	say("approved: connection %q enforces %s now (config_changed_by %s, still %s)", conn.Name, conn.Fingerprint, conn.ConfigChangedBy, conn.Status)

	step(11, "CI job on the release branch: its exchange follows the new rule; both plans are empty")
	releaseToken, err = mint(ctx, issuer, release)
	if err != nil {
		return err
	}
	access, stderr, err := d.exchange(ctx, server, releaseToken)
	if err != nil {
		return fmt.Errorf("the release branch's exchange failed after the approval: %v: %s", err, stderr)
	}
	say("a CI job on refs/heads/release got an access token (%d bytes)", len(access))
	for _, ws := range []struct {
		name, dir string
		args      []string
	}{{"platform", platform, append([]string{"plan", "-input=false"}, tfvars...)}, {"security", security, append([]string{"plan"}, approve...)}} {
		plan, err := d.terraform(ctx, ws.dir, ws.args...)
		if err != nil {
			return err
		}
		if strings.Contains(plan, "Plan:") || strings.Contains(plan, "Warning: A proposed change") {
			return fmt.Errorf("the %s plan after the approval should change nothing:\n%s", ws.name, plan)
		}
		outputs := "its outputs are up to date"
		if l := warningLine(plan, "live_fingerprint = "); strings.Contains(plan, "Changes to Outputs") && l != "" {
			outputs = "only its outputs follow the server: " + l
		}
		say("terraform plan (%s workspace): no changes to resources; %s", ws.name, outputs)
	}
	return nil
}

// planLines is the part of a plan that a reviewer reads: the resource changes (a list of effective
// conditions in one line), the summary line and the provider's warnings.
func planLines(plan string) []string {
	var out []string
	in, list, items := false, "", 0
	for _, l := range strings.Split(plan, "\n") {
		t := strings.TrimRight(l, " ")
		trimmed := strings.TrimSpace(t)
		switch {
		case list != "" && strings.HasPrefix(trimmed, "]"):
			out = append(out, fmt.Sprintf("%s %d conditions %s", list, items, trimmed))
			list, items = "", 0
		case list != "":
			if strings.HasPrefix(trimmed, "},") {
				items++
			}
		case strings.HasPrefix(trimmed, "# trustgate_"):
			in = true
			out = append(out, t)
		case strings.HasPrefix(t, "Plan:"):
			in = false
			out = append(out, t)
		case strings.Contains(t, "Warning:") && !strings.Contains(t, "development overrides"):
			out = append(out, strings.TrimSpace(strings.TrimLeft(t, "│╷╵ ")))
		case in && strings.HasSuffix(t, "effective_conditions = ["):
			list = t
		case in && t != "":
			out = append(out, t)
		}
	}
	return out
}

// warningBlock is the diagnostic of plan (written with -no-color, so without a box) whose first
// line contains title: up to the next diagnostic, without trailing blank lines.
func warningBlock(plan, title string) []string {
	var out []string
	for _, l := range strings.Split(plan, "\n") {
		l = strings.TrimRight(l, " ")
		switch {
		case len(out) == 0 && !strings.Contains(l, title):
		case len(out) > 0 && (strings.HasPrefix(l, "Warning:") || strings.HasPrefix(l, "Error:") || strings.HasPrefix(l, "─")):
			return trimBlank(out)
		default:
			out = append(out, l)
		}
	}
	return trimBlank(out)
}

func trimBlank(lines []string) []string {
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// warningLine is the first line of plan that contains s, trimmed of the diagnostic box.
func warningLine(plan, s string) string {
	for _, l := range strings.Split(plan, "\n") {
		if strings.Contains(l, s) {
			return strings.TrimSpace(strings.TrimLeft(l, "│╷╵ "))
		}
	}
	return ""
}

func operand(v *string, vs []string) string {
	if v != nil {
		return fmt.Sprintf("%q", *v)
	}
	if vs != nil {
		return fmt.Sprintf("%q", vs)
	}
	return ""
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func grab(s, pattern string) string {
	m := regexp.MustCompile(pattern).FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	return m[1]
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startAndRead starts a long-running process in dir and returns its stdout up to the line
// containing ready.
func (d *demo) startAndRead(ctx context.Context, dir, ready string, name string, args ...string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	logf, err := os.Create(filepath.Join(dir, "stderr.log"))
	if err != nil {
		return "", err
	}
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	d.procs = append(d.procs, cmd)
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var got strings.Builder
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				logs, _ := os.ReadFile(logf.Name())
				return "", fmt.Errorf("%s exited early:\n%s%s", filepath.Base(name), got.String(), logs)
			}
			got.WriteString(l + "\n")
			if strings.Contains(l, ready) {
				go func() {
					for range lines {
					}
				}()
				return got.String(), nil
			}
		case <-timeout:
			return "", fmt.Errorf("%s did not become ready in 30s", filepath.Base(name))
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

func (d *demo) stopAll() {
	for i := len(d.procs) - 1; i >= 0; i-- {
		p := d.procs[i]
		if p.Process != nil {
			_ = p.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { _ = p.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = p.Process.Kill()
			}
		}
	}
}

// terraformConfig writes a CLI config whose dev_overrides point the provider address at bin/, so
// Terraform uses the locally built provider with no registry download and no `terraform init`.
func (d *demo) terraformConfig() error {
	cfg := filepath.Join(d.work, "terraformrc")
	body := fmt.Sprintf("provider_installation {\n  dev_overrides {\n    \"trustgate/trustgate\" = %q\n  }\n  direct {}\n}\n", d.bin)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		return err
	}
	d.env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+cfg, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1")
	return nil
}

// workspace copies examples/quickstart/NAME into the demo's temporary directory, so that each team
// has its own working directory and state, and the repository stays clean.
func (d *demo) workspace(name string) (string, error) {
	src := filepath.Join(d.root, "examples", "quickstart", name)
	dst := filepath.Join(d.work, name)
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(src, "main.tf"))
	if err != nil {
		return "", err
	}
	return dst, os.WriteFile(filepath.Join(dst, "main.tf"), b, 0o600)
}

func (d *demo) terraform(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "terraform", append([]string{"-chdir=" + dir}, append(args[:1:1], append([]string{"-no-color"}, args[1:]...)...)...)...)
	cmd.Env = d.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return "", fmt.Errorf("terraform %s in %s: %v\n%s%s", args[0], dir, err, stdout.String(), stderr.String())
	}
	return strings.TrimSpace(stdout.String()), nil
}

func (d *demo) exchange(ctx context.Context, server, token string) (string, string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(d.bin, "trustgate"), "exchange", "--server", server,
		"--connection", connectionName, "--token-env", "DEMO_CI_TOKEN")
	cmd.Env = append(os.Environ(), "DEMO_CI_TOKEN="+token)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return strings.TrimSpace(stdout.String()), stderr.String(), err
}

// mint asks the dev issuer for a GitHub-shaped token with the given claims.
func mint(ctx context.Context, issuer string, claims map[string]any) (string, error) {
	body, _ := json.Marshal(map[string]any{"shape": "github", "claims": claims, "ttl_seconds": 600})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, issuer+"/mint", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("dev issuer mint: %d %s", resp.StatusCode, b)
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return "", err
	}
	return out.Token, nil
}
