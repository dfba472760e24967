package provider

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
)

// planDiagnostics records what the provider answered Terraform's PlanResourceChange calls, so
// that an acceptance test can read the warnings of a real `terraform plan` (terraform-plugin-testing
// hands plan checks the plan's JSON, which has no diagnostics).
type planDiagnostics struct {
	mu   sync.Mutex
	last map[string][]*tfprotov6.Diagnostic // by resource type: its latest PlanResourceChange's
}

// factories serves the provider as providerFactories does, with every PlanResourceChange recorded.
func (p *planDiagnostics) factories() map[string]func() (tfprotov6.ProviderServer, error) {
	return map[string]func() (tfprotov6.ProviderServer, error){
		"trustgate": func() (tfprotov6.ProviderServer, error) {
			s, err := newTestProviderServer()
			return recordingServer{ProviderServer: s, rec: p}, err
		},
	}
}

type recordingServer struct {
	tfprotov6.ProviderServer
	rec *planDiagnostics
}

func (s recordingServer) PlanResourceChange(ctx context.Context, req *tfprotov6.PlanResourceChangeRequest) (*tfprotov6.PlanResourceChangeResponse, error) {
	resp, err := s.ProviderServer.PlanResourceChange(ctx, req)
	if resp != nil {
		s.rec.mu.Lock()
		if s.rec.last == nil {
			s.rec.last = map[string][]*tfprotov6.Diagnostic{}
		}
		s.rec.last[req.TypeName] = resp.Diagnostics
		s.rec.mu.Unlock()
	}
	return resp, err
}

// expectWarning is a plan check on the diagnostics of the plan just made: the latest plan of
// resource type typeName returned exactly one warning whose summary matches summary, no error, and
// the warning's detail matches every pattern of detail and none of absent.
func (p *planDiagnostics) expectWarning(typeName string, summary *regexp.Regexp, detail []*regexp.Regexp, absent ...*regexp.Regexp) plancheck.PlanCheck {
	return planCheckFunc(func() error {
		p.mu.Lock()
		diags := p.last[typeName]
		p.mu.Unlock()
		var found []*tfprotov6.Diagnostic
		for _, d := range diags {
			if d.Severity == tfprotov6.DiagnosticSeverityError {
				return fmt.Errorf("the plan of %s returned an error: %s: %s", typeName, d.Summary, d.Detail)
			}
			if summary.MatchString(d.Summary) {
				found = append(found, d)
			}
		}
		if len(found) != 1 {
			return fmt.Errorf("the plan of %s returned %d warnings matching %q, want 1; it returned: %s", typeName, len(found), summary, describeDiags(diags))
		}
		for _, re := range detail {
			if !re.MatchString(found[0].Detail) {
				return fmt.Errorf("the warning %q does not say %q:\n%s", found[0].Summary, re, found[0].Detail)
			}
		}
		for _, re := range absent {
			if re.MatchString(found[0].Detail) {
				return fmt.Errorf("the warning %q says %q, which it should not:\n%s", found[0].Summary, re, found[0].Detail)
			}
		}
		return nil
	})
}

// expectNoImpactWarning checks that the latest plan of typeName said nothing about impact.
func (p *planDiagnostics) expectNoImpactWarning(typeName string) plancheck.PlanCheck {
	return planCheckFunc(func() error {
		p.mu.Lock()
		diags := p.last[typeName]
		p.mu.Unlock()
		for _, d := range diags {
			if strings.HasPrefix(d.Summary, "Impact") {
				return fmt.Errorf("the plan of %s warned about impact: %s", typeName, describeDiags(diags))
			}
		}
		return nil
	})
}

func describeDiags(diags []*tfprotov6.Diagnostic) string {
	if len(diags) == 0 {
		return "no diagnostics"
	}
	var b strings.Builder
	for _, d := range diags {
		fmt.Fprintf(&b, "\n[%s] %s\n%s\n", d.Severity, d.Summary, d.Detail)
	}
	return b.String()
}

type planCheckFunc func() error

func (f planCheckFunc) CheckPlan(_ context.Context, _ plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	resp.Error = f()
}

// impactGate stands between Terraform and the server: it counts impact requests, and while broken
// it drops them (the connection closes without an answer, as when a proxy or the network fails),
// while every other request goes through.
type impactGate struct {
	proxy  *httputil.ReverseProxy
	broken atomic.Bool
	calls  atomic.Int64
}

func startImpactGate(t *testing.T, s *testkit.Server) (*impactGate, string) {
	t.Helper()
	target, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	g := &impactGate{proxy: httputil.NewSingleHostReverseProxy(target)}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return g, srv.URL
}

func (g *impactGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/impact") {
		g.calls.Add(1)
		if g.broken.Load() {
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					_ = conn.Close()
					return
				}
			}
			http.Error(w, "impact dropped by the test", http.StatusBadGateway)
			return
		}
	}
	g.proxy.ServeHTTP(w, r)
}

// impactWorkloads are the CI jobs of the impact tests: one GitHub repository deploying from
// main, from a release branch, and a feature branch the connection refuses.
var impactWorkloads = map[string]string{
	"repo:octo-org/octo-repo:ref:refs/heads/main":      "refs/heads/main",
	"repo:octo-org/octo-repo:ref:refs/heads/release":   "refs/heads/release",
	"repo:octo-org/octo-repo:ref:refs/heads/feature-x": "refs/heads/feature-x",
}

// exchangeAsWorkloads makes real exchanges through connection name with tokens of the test's
// issuer, one per workload (main and release are granted under the ref condition main or release,
// feature-x is refused by it), and flushes the sightings recorder so that the evidence is stored
// now rather than at its next tick.
func exchangeAsWorkloads(t *testing.T, s *testkit.Server, iss *ciissuer.Issuer, name string) {
	t.Helper()
	for sub, ref := range impactWorkloads {
		tok := iss.MustMint(t, "github", map[string]any{"aud": s.URL, "ref": ref, "sub": sub})
		r := s.Exchange(name, tok).Answered(t)
		granted := ref != "refs/heads/feature-x"
		if (r.Status == http.StatusOK) != granted {
			t.Fatalf("exchange as %s: %s, want granted %v", sub, r, granted)
		}
	}
	if err := s.App.Sightings.Flush(t.Context()); err != nil {
		t.Fatalf("flushing the sightings: %v", err)
	}
	seen, err := s.Auditor.ListSightings(t.Context(), name, apiclient.SightingOptions{Limit: 100})
	if err != nil || len(seen.Items) != len(impactWorkloads) {
		t.Fatalf("sightings after the exchanges: %v %+v, want %d", err, seen, len(impactWorkloads))
	}
}

// impactConnectionConfig is the platform team's GitHub connection with one condition on ref.
func impactConnectionConfig(endpoint, key, name, jwksURL, refCondition string) string {
	return fmt.Sprintf(`
provider "trustgate" {
  endpoint = %q
  api_key  = %q
}

resource "trustgate_workload_connection" "test" {
  name        = %q
  description = "deploys octo-org/octo-repo"
  jwks_url    = %q

  github {
    owner_id   = "65"
    repository = "octo-org/octo-repo"
  }
  condition {
    claim    = "ref"
%s
  }
}
`, endpoint, key, name, jwksURL, refCondition)
}

const (
	refMainOrRelease = `    operator = "one_of"
    values   = ["refs/heads/main", "refs/heads/release"]`
	refReleaseOnly = `    operator = "equals"
    value    = "refs/heads/release"`
	refFromData = `    operator = "equals"
    value    = terraform_data.ref.output`
)

// TestAccConnectionPlanWarnsWhichWorkloadsAChangeRefuses is CONTRACT.md §6 *Impact at plan time*
// through real `terraform plan`s: on an activated connection that two workloads use (and a third
// is refused by), a plan that tightens the ref condition warns that it would refuse the main
// branch's workload and names nobody else; a plan with nothing to change, and one that changes only
// the description, do not ask the server; when the impact request fails the plan still succeeds
// and says the impact is unknown and why; a condition whose value is known only after apply gives
// "impact unknown until apply" rather than a guess.
func TestAccConnectionPlanWarnsWhichWorkloadsAChangeRefuses(t *testing.T) {
	s := accServer(t)
	iss := ciissuer.Start(t, devissuer.Options{})
	gate, endpoint := startImpactGate(t, s)
	rec := &planDiagnostics{}
	const name = "acc-impact"
	cfg := func(ref string) string {
		return impactConnectionConfig(endpoint, s.DevOpsKey, name, iss.JWKSURL, ref)
	}
	warning := func(summary string, detail []string, absent ...string) plancheck.PlanCheck {
		var d, a []*regexp.Regexp
		for _, p := range detail {
			d = append(d, regexp.MustCompile(p))
		}
		for _, p := range absent {
			a = append(a, regexp.MustCompile(p))
		}
		return rec.expectWarning("trustgate_workload_connection", regexp.MustCompile(summary), d, a...)
	}
	noCalls := func(what string) resource.TestCheckFunc {
		return func(*terraform.State) error {
			if n := gate.calls.Load(); n != 0 {
				return fmt.Errorf("%s asked the server for %d impact reports, want none", what, n)
			}
			return nil
		}
	}
	planOnly := func(pre func(), ref string, checks ...plancheck.PlanCheck) resource.TestStep {
		return resource.TestStep{
			PreConfig: pre, Config: cfg(ref), PlanOnly: true, ExpectNonEmptyPlan: true,
			ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPreRefresh: append([]plancheck.PlanCheck{
				plancheck.ExpectResourceAction(connAddr, plancheck.ResourceActionUpdate),
			}, checks...)},
		}
	}
	main, release, feature := `"repo:octo-org/octo-repo:ref:refs/heads/main"`, `"repo:octo-org/octo-repo:ref:refs/heads/release"`, `feature-x`

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: rec.factories(),
		Steps: []resource.TestStep{
			{
				// A draft: changing it is not a change of anything live, so no impact is asked.
				Config: cfg(refMainOrRelease),
				Check:  noCalls("creating the connection"),
			},
			{
				// The security team activates it (through the API here), and CI jobs use it.
				PreConfig: func() {
					c := mustGet(t, s, name)
					if _, err := s.Security.SetStatus(t.Context(), name, api.StatusChange{Status: api.StatusActive, ApprovedFingerprint: c.Fingerprint}, 0); err != nil {
						t.Fatalf("activating: %v", err)
					}
					exchangeAsWorkloads(t, s, iss, name)
				},
				// A plan with nothing to change (the refresh sees the activation) asks nothing.
				Config: cfg(refMainOrRelease),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(), rec.expectNoImpactWarning("trustgate_workload_connection"),
				}},
				Check: noCalls("an empty plan"),
			},
			{
				// A new description: a proposal, but one that changes nobody's outcome, so it is
				// not asked about either.
				Config:   strings.Replace(cfg(refMainOrRelease), "deploys octo-org/octo-repo", "deploys octo-org/octo-repo (release too)", 1),
				PlanOnly: true, ExpectNonEmptyPlan: true,
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPreRefresh: []plancheck.PlanCheck{
					rec.expectNoImpactWarning("trustgate_workload_connection"),
					planCheckFunc(func() error { return noCalls("a description change")(nil) }),
				}},
			},
			// The platform team tightens the ref condition to the release branch: the plan names
			// the main branch's workload, the only one it would refuse, and the check it would fail.
			planOnly(nil, refReleaseOnly, warning(`^Impact on "acc-impact": 1 workload seen in the last 720h would be refused$`,
				[]string{
					`against the 3 workloads seen on workload connection "acc-impact" in the last 720h`,
					`Newly refused: 1 \(granted now; the check each would fail\)\n  - ` + regexp.QuoteMeta(main) + `: last seen \S+Z, 1 exchange, condition: ref equals\n`,
					`\nNewly admitted: none\n`,
					`Unchanged: 1 still granted, 1 still refused\.`,
					"trustgate impact --connection acc-impact --patch FILE",
				}, regexp.QuoteMeta(release), feature)),
			// The server cannot answer: the plan still succeeds, with one warning that says why.
			planOnly(func() { gate.broken.Store(true) }, refReleaseOnly,
				warning(`^Impact unknown: the server cannot be reached$`, []string{
					`which workloads the planned configuration of workload connection "acc-impact" would newly refuse or admit`,
					`POST /v1/workload-connections/[0-9a-f-]+/impact failed`,
				})),
			{
				// A condition value known only after apply: the plan says so instead of guessing.
				PreConfig: func() { gate.broken.Store(false) },
				Config:    cfg(refFromData) + "\nresource \"terraform_data\" \"ref\" {\n  input = \"refs/heads/release\"\n}\n",
				PlanOnly:  true, ExpectNonEmptyPlan: true,
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPreRefresh: []plancheck.PlanCheck{
					warning(`^Impact unknown until apply$`, []string{`condition depend on values known only after apply`}),
				}},
			},
			{
				// The platform team hands the active connection over (it cannot delete it).
				Config: fmt.Sprintf("provider \"trustgate\" {\n  endpoint = %q\n  api_key  = %q\n}\n", endpoint, s.DevOpsKey) +
					"removed {\n  from = trustgate_workload_connection.test\n  lifecycle {\n    destroy = false\n  }\n}\n",
			},
		},
	})
}

// TestAccActivationPlanWarnsWhatApprovingTheProposalRefuses: the security team's plan that would
// approve a pending proposal (a tightened ref condition the platform team proposed) warns which
// workload approving it would refuse; the plan that only refreshes (approved_fingerprint still the
// live one) does not ask; the apply approves it and the refused workload is refused.
func TestAccActivationPlanWarnsWhatApprovingTheProposalRefuses(t *testing.T) {
	s := accServer(t)
	iss := ciissuer.Start(t, devissuer.Options{})
	gate, endpoint := startImpactGate(t, s)
	rec := &planDiagnostics{}
	const name = "acc-impact-approve"
	in := genericGitHubInput(name, iss.JWKSURL)
	c, err := s.DevOps.CreateConnection(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	approved := c.Fingerprint
	securityConfig := fmt.Sprintf("provider \"trustgate\" {\n  endpoint = %q\n  api_key  = %q\n}\n", endpoint, s.SecurityKey) +
		"variable \"approved\" {\n  type = string\n}\n" +
		fmt.Sprintf("resource \"trustgate_workload_connection_activation\" \"test\" {\n  connection_name = %q\n  approved_fingerprint = var.approved\n}\n", name)
	vars := config.Variables{"approved": lazyString{&approved}}
	var proposal string

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: rec.factories(),
		Steps: []resource.TestStep{
			{Config: securityConfig, ConfigVariables: vars, Check: expectStatus(t, s, name, api.StatusActive)},
			{
				// CI jobs use the connection, then the platform team proposes release only.
				PreConfig: func() {
					exchangeAsWorkloads(t, s, iss, name)
					p, err := s.DevOps.PatchConnection(t.Context(), name, map[string]any{"conditions": []api.Condition{
						{Claim: "ref", Operator: api.OpEquals, Value: strptr("refs/heads/release")},
					}}, 0)
					if err != nil || p.Proposal == nil {
						t.Fatalf("proposing: %v %+v", err, p)
					}
					proposal = p.Proposal.Fingerprint
				},
				// approved_fingerprint still names the live configuration: nothing is approved,
				// nothing is asked.
				Config: securityConfig, ConfigVariables: vars,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(), rec.expectNoImpactWarning("trustgate_workload_connection_activation"),
				}},
				Check: func(*terraform.State) error {
					if n := gate.calls.Load(); n != 0 {
						return fmt.Errorf("a plan that approves nothing asked for %d impact reports", n)
					}
					return nil
				},
			},
			{
				// The plan that approves it shows whom the approval would refuse.
				PreConfig: func() { approved = proposal },
				Config:    securityConfig, ConfigVariables: vars,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(actAddr, plancheck.ResourceActionUpdate),
					rec.expectWarning("trustgate_workload_connection_activation",
						regexp.MustCompile(`^Impact on "acc-impact-approve": 1 workload seen in the last 720h would be refused$`),
						[]*regexp.Regexp{
							regexp.MustCompile(`evaluated approving the proposal sha256:[0-9a-f]{64} against the 3 workloads`),
							regexp.MustCompile(`Newly refused: 1 \(granted now; the check each would fail\)\n  - "repo:octo-org/octo-repo:ref:refs/heads/main": last seen \S+Z, 1 exchange, condition: ref equals\n`),
							regexp.MustCompile(`trustgate impact --connection acc-impact-approve --proposal`),
						}, regexp.MustCompile(`refs/heads/release"`)),
				}},
				Check: func(*terraform.State) error {
					tok := iss.MustMint(t, "github", map[string]any{"aud": s.URL, "ref": "refs/heads/main", "sub": "repo:octo-org/octo-repo:ref:refs/heads/main"})
					if r := s.Exchange(name, tok).Answered(t); r.Status == http.StatusOK {
						return fmt.Errorf("after the approval the main branch still gets a token: %s", r)
					}
					return nil
				},
			},
		},
	})
}

// genericGitHubInput is a GitHub connection of the test issuer's repository (ids as its tokens
// carry them) whose ref condition admits main and release.
func genericGitHubInput(name, jwksURL string) api.ConnectionInput {
	return api.ConnectionInput{
		Name: name, ProviderType: api.ProviderGitHub, JWKSURL: jwksURL,
		GitHub:     &api.GitHubSettings{OwnerID: "65", Repository: "octo-org/octo-repo"},
		Conditions: []api.Condition{{Claim: "ref", Operator: api.OpOneOf, Values: []string{"refs/heads/main", "refs/heads/release"}}},
	}
}
