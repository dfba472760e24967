package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/testdb"
)

// The browser test drives Debian's Chromium, headless, through the console as a security team
// would use it. Environment:
//   - TRUSTGATE_CHROMIUM: the browser binary (default /usr/bin/chromium, else chromium on PATH);
//   - TRUSTGATE_REQUIRE_CHROMIUM=1 (.ci/run sets it): a missing browser fails the test instead of
//     skipping it;
//   - TRUSTGATE_SCREENSHOT_DIR: where the screenshots go (default testdata/screenshots/<database>
//     in this package, which git ignores). The test log names the directory.
const (
	envChromium        = "TRUSTGATE_CHROMIUM"
	envRequireChromium = "TRUSTGATE_REQUIRE_CHROMIUM"
	envScreenshots     = "TRUSTGATE_SCREENSHOT_DIR"
)

func chromiumPath(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv(envChromium), "/usr/bin/chromium"}
	if p, err := exec.LookPath("chromium"); err == nil {
		candidates = append(candidates, p)
	}
	for _, p := range candidates {
		if p == "" {
			continue
		}
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	msg := "no Chromium found (looked at $" + envChromium + ", /usr/bin/chromium and PATH): install Debian's with " +
		"`apt-get update && apt-get install -y chromium` to run the browser test of the review console"
	if os.Getenv(envRequireChromium) != "" {
		t.Fatal(msg + " (" + envRequireChromium + " is set, so this is a failure)")
	}
	t.Skip(msg)
	return ""
}

func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(envScreenshots)
	if dir == "" {
		dir = filepath.Join("testdata", "screenshots", strings.ToLower(testdb.Backend()))
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots of every page go to %s", abs)
	return abs
}

// tab is one browser tab on the console, with what it saw: every request's URL, and every error
// the page logged (a blocked inline script or style shows there as a CSP violation).
type tab struct {
	t      *testing.T
	ctx    context.Context
	base   string
	shots  string
	mu     sync.Mutex
	urls   []string
	errors []string
	// refusals are pages the test expects to be refused (the browser logs their status as an error).
	refusals []string
}

func newTab(t *testing.T, base string) *tab {
	t.Helper()
	path := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium's sandbox refuses to run as root
	}
	// A bound against a hung browser, not a timing assertion.
	root, cancelRoot := context.WithTimeout(context.Background(), 5*time.Minute)
	alloc, cancelAlloc := chromedp.NewExecAllocator(root, opts...)
	tb := &tab{t: t, base: base, shots: screenshotDir(t)}
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithListener(tb.listen))
	t.Cleanup(func() { cancel(); cancelAlloc(); cancelRoot() })
	tb.ctx = ctx
	tb.do(chromedp.EmulateViewport(1280, 900))
	u, _ := url.Parse(base)
	// The test reads back what the copy button wrote.
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
			Permission: &browser.PermissionDescriptor{Name: name}, Setting: browser.PermissionSettingGranted,
			Origin: u.Scheme + "://" + u.Host,
		}); err != nil {
			t.Fatalf("granting %s: %v", name, err)
		}
	}
	return tb
}

func (tb *tab) listen(ev any) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		tb.urls = append(tb.urls, ev.Request.URL)
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError {
			tb.errors = append(tb.errors, fmt.Sprintf("%s: %s (%s)", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
		}
	case *runtime.EventExceptionThrown:
		tb.errors = append(tb.errors, "exception: "+ev.ExceptionDetails.Text)
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning {
			tb.errors = append(tb.errors, fmt.Sprintf("console.%s", ev.Type))
		}
	}
}

func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, actions...); err != nil {
		tb.t.Fatalf("browser: %v", err)
	}
}

// open navigates to a console path and returns the HTTP status of the page.
func (tb *tab) open(path string) int64 {
	tb.t.Helper()
	resp, err := chromedp.Run(tb.ctx, chromedp.NavigateResponse(tb.base+path))
	if err != nil {
		tb.t.Fatalf("opening %s: %v", path, err)
	}
	return resp.Status
}

// follow clicks what sel finds and waits for the page it leads to; it returns that page's status.
func (tb *tab) follow(sel string) int64 {
	tb.t.Helper()
	resp, err := chromedp.RunResponse(tb.ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		tb.t.Fatalf("clicking %s: %v", sel, err)
	}
	return resp.Status
}

func (tb *tab) text(sel string) string {
	tb.t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		tb.t.Fatalf("reading %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func eval[T any](tb *tab, js string, opts ...chromedp.EvaluateOption) T {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[T](js, opts...))
	if err != nil {
		tb.t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

func (tb *tab) location() string {
	tb.t.Helper()
	loc, err := chromedp.Run(tb.ctx, chromedp.Location())
	if err != nil {
		tb.t.Fatal(err)
	}
	return strings.TrimPrefix(loc, tb.base)
}

// look checks the page as it is at laptop width and at a phone's 390 px, and keeps a screenshot of
// each: nothing may make the page scroll sideways on the phone.
func (tb *tab) look(name string) {
	tb.t.Helper()
	for _, v := range []struct {
		suffix        string
		width, height int64
		mobile        bool
	}{{"", 1280, 900, false}, {"-390px", 390, 844, true}} {
		if v.mobile {
			tb.do(chromedp.EmulateViewport(v.width, v.height, chromedp.EmulateMobile))
		} else {
			tb.do(chromedp.EmulateViewport(v.width, v.height))
		}
		if v.mobile {
			widths := eval[[]int](tb, `[document.documentElement.scrollWidth, document.documentElement.clientWidth, window.innerWidth]`)
			if widths[0] > widths[1] {
				tb.t.Errorf("%s at 390 px scrolls sideways: the page is %d px wide in a %d px viewport", name, widths[0], widths[1])
			}
		}
		// No focus ring in the pictures (the keyboard test leaves one on the skip link).
		eval[chromedp.Void](tb, `document.activeElement && document.activeElement.blur()`)
		shot, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
		if err != nil {
			tb.t.Fatalf("screenshot of %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(tb.shots, name+v.suffix+".png"), shot, 0o644); err != nil {
			tb.t.Fatal(err)
		}
	}
	tb.do(chromedp.EmulateViewport(1280, 900))
}

// viewportShot keeps a screenshot of the top of the page in a viewport of the given size.
func (tb *tab) viewportShot(name string, width, height int64) {
	tb.t.Helper()
	tb.do(chromedp.EmulateViewport(width, height))
	shot, err := chromedp.Run(tb.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.t.Fatalf("screenshot of %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(tb.shots, name+".png"), shot, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.do(chromedp.EmulateViewport(1280, 900))
}

// signIn signs in with the keyboard: the key field has the focus, Enter submits.
func (tb *tab) signIn(key string) {
	tb.t.Helper()
	if st := tb.open("/ui/sign-in"); st != http.StatusOK {
		tb.t.Fatalf("the sign-in page answered %d", st)
	}
	// The browser runs autofocus when it next renders, after the load: give a busy machine time.
	focused := eval[string](tb, `document.activeElement.id`)
	for deadline := time.Now().Add(10 * time.Second); focused != "key" && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		focused = eval[string](tb, `document.activeElement.id`)
	}
	if focused != "key" {
		tb.t.Errorf("the sign-in page opens with the focus on %q, want the key field", focused)
	}
	resp, err := chromedp.RunResponse(tb.ctx, chromedp.SendKeys(chromedp.ID("key"), key+"\n"))
	if err != nil {
		tb.t.Fatalf("signing in: %v", err)
	}
	if resp.Status != http.StatusOK || tb.location() != "/ui/" {
		tb.t.Fatalf("after signing in: %d at %s", resp.Status, tb.location())
	}
}

func (tb *tab) signOut() {
	tb.t.Helper()
	if st := tb.follow(".whoami button"); st != http.StatusOK || !strings.HasPrefix(tb.location(), "/ui/sign-in") {
		tb.t.Fatalf("after signing out: %d at %s", st, tb.location())
	}
}

// checkOrigin fails the test if the browser sent any request outside the server's origin, and
// if any page logged an error (a CSP violation, a failed load, an exception).
func (tb *tab) checkOrigin() {
	tb.t.Helper()
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var css bool
	for _, u := range tb.urls {
		// Chromium's own icons (the date picker's) are data: URLs: they never leave the browser.
		if strings.HasPrefix(u, "data:") {
			continue
		}
		if !strings.HasPrefix(u, tb.base+"/") {
			tb.t.Errorf("a request left the server's origin: %s", u)
		}
		css = css || strings.HasPrefix(u, tb.base+"/ui/static/console.css")
	}
	if !css || len(tb.urls) < 10 {
		tb.t.Errorf("the network listener saw %d requests and no style sheet: it is not listening", len(tb.urls))
	}
	for _, e := range tb.errors {
		if slices.ContainsFunc(tb.refusals, func(r string) bool { return strings.HasSuffix(e, "("+tb.base+r+")") }) {
			continue
		}
		tb.t.Errorf("the page logged an error: %s", e)
	}
	tb.t.Logf("the browser made %d requests, all to %s", len(tb.urls), tb.base)
}

// conditionRow is a row of the effective-conditions table as the browser shows it.
type conditionRow struct {
	Claim, Operator, Value, Origin string
}

const readConditions = `Array.from(document.querySelectorAll("table.conditions tbody tr")).map(tr => {
  const td = tr.querySelectorAll("td");
  return {Claim: td[0].innerText.trim(), Operator: td[1].innerText.trim(), Value: td[2].innerText.trim(), Origin: td[3].innerText.trim()};
})`

func TestReviewInABrowser(t *testing.T) {
	t.Parallel()
	s := testkit.Start(t)
	tb := newTab(t, s.URL)
	iss := ciissuer.Start(t, devissuer.Options{})
	second := s.NewKey(t, "security-2", api.RoleSecurityAdmin)

	// The platform team's connections: a draft waiting for activation, an active one that CI
	// jobs use, and a change to it that a security admin proposed.
	draftIn := testkit.GitHubInput("github-deploy", iss.JWKSURL)
	draftIn.Description = "Deploys octo-org/octo-repo from main to production."
	draftIn.Conditions = []api.Condition{{Claim: "workflow", Operator: api.OpEquals, Value: ptr("example-workflow")}}
	draft := s.CreateDraft(t, draftIn)
	liveIn := testkit.GitHubInput("payments-release", iss.JWKSURL)
	liveIn.Description = "Release pipeline of the payments service."
	liveIn.TokenTTL = &api.TokenTTL{Amount: 15, Unit: api.UnitMinutes}
	live := s.CreateActive(t, liveIn)
	otherIn := testkit.GenericInput("build-cache", iss.URL, iss.JWKSURL, s.URL)
	otherIn.Description = "Read access to the build cache for every repository of octo-org."
	s.CreateActive(t, otherIn)

	// A week of exchanges on payments-release, for its chart (written to the audit log as they
	// would have been: the past cannot be exchanged in), then real ones through /v1/token.
	now := time.Now().UTC()
	var history []api.AuditEvent
	for h := 7 * 24; h > 0; h-- {
		at := now.Add(-time.Duration(h) * time.Hour)
		n := 1 + (h*7)%5
		if at.Weekday() == time.Saturday || at.Weekday() == time.Sunday || at.Hour() < 7 || at.Hour() > 19 {
			n = h % 2
		}
		history = append(history, exchanges(live, api.OutcomeGranted, at, n)...)
		if h%9 == 0 {
			history = append(history, exchanges(live, api.OutcomeDenied, at.Add(time.Minute), 1+h%3)...)
		}
	}
	appendAudit(t, s, history...)
	good := map[string]any{"aud": s.URL}
	for range 3 {
		testkit.MustGrant(t, s.Exchange("payments-release", iss.MustMint(t, "github", good)), 15*time.Minute)
	}
	testkit.MustRefuse(t, s.Exchange("payments-release", iss.MustMint(t, "github", map[string]any{"aud": s.URL, "repository_owner_id": "66"})),
		api.ErrInvalidGrant, "")
	live, err := s.Security.PatchConnection(t.Context(), "payments-release", map[string]any{
		"description": "Release pipeline of the payments service (release branches only).",
		"conditions":  []map[string]any{{"claim": "ref", "operator": "glob", "value": "refs/heads/release/*"}},
	}, live.Revision)
	if err != nil {
		t.Fatal(err)
	}

	// Signed out, every page leads to the sign-in form.
	if st := tb.open("/ui/connections/github-deploy"); st != http.StatusOK || !strings.HasPrefix(tb.location(), "/ui/sign-in") {
		t.Fatalf("signed out, a connection page answered %d at %s, want the sign-in page", st, tb.location())
	}
	tb.look("01-sign-in")
	tb.signIn(s.SecurityKey)
	// The keyboard reaches the skip link first.
	tb.do(chromedp.KeyEvent("\t"))
	if got := eval[string](tb, `document.activeElement.textContent`); got != "Skip to content" {
		t.Errorf("the first Tab focuses %q, want the skip link", got)
	}
	if waiting := tb.text("#waiting-h"); !strings.HasPrefix(waiting, "Waiting for a security admin") {
		t.Errorf("a security admin's list does not start with what waits for them: %q", waiting)
	}
	tb.look("02-connections")

	// Find the draft with the name filter.
	tb.do(chromedp.SendKeys(chromedp.ID("f-name"), "github"))
	tb.follow(".filters button[type=submit]")
	names := eval[[]string](tb, `Array.from(document.querySelectorAll("a.conn-name")).map(a => a.textContent)`)
	if !slices.Equal(names, []string{"github-deploy"}) {
		t.Fatalf("filtering by \"github\" lists %q", names)
	}
	tb.follow("a.conn-name")

	// Read what it trusts: the same conditions and fingerprint as the API, each with its origin.
	rows := eval[[]conditionRow](tb, readConditions)
	var want []conditionRow
	for i, c := range draft.EffectiveConditions {
		origin := "preset"
		if i >= len(draft.EffectiveConditions)-len(draft.Conditions) {
			origin = "user"
		}
		want = append(want, conditionRow{c.Claim, c.Operator, *c.Value, origin})
	}
	if !slices.Equal(rows, want) {
		t.Errorf("the conditions table reads\n%+v\nwant\n%+v", rows, want)
	}
	if fp := tb.text("#fingerprint"); fp != draft.Fingerprint {
		t.Errorf("the page shows fingerprint %s, the API %s", fp, draft.Fingerprint)
	}
	tb.do(chromedp.Click(chromedp.CSS(`button[data-copy="fingerprint"]`), chromedp.NodeVisible))
	if copied := eval[string](tb, `navigator.clipboard.readText()`, chromedp.EvalAwaitPromise); copied != draft.Fingerprint {
		t.Errorf("the copy button copied %q, want the fingerprint", copied)
	}
	if block := tb.text("#activation"); !strings.Contains(block, `approved_fingerprint = "`+draft.Fingerprint+`"`) {
		t.Errorf("the activation block does not carry the fingerprint:\n%s", block)
	}
	tb.look("03-connection-draft")

	// Activate it, through the confirmation page that repeats the fingerprint.
	tb.follow(`a[href$="/activate"]`)
	if fp := tb.text("#confirm-fingerprint"); fp != draft.Fingerprint {
		t.Errorf("the confirmation repeats %s, want %s", fp, draft.Fingerprint)
	}
	tb.look("04-confirm-activate")
	if st := tb.follow("#confirm"); st != http.StatusOK || !strings.Contains(tb.text(".notice"), "The connection is active") {
		t.Fatalf("after confirming: %d, notice %q", st, tb.text(".notice"))
	}
	if got := status(t, s, "github-deploy"); got.Status != api.StatusActive || got.ActivatedBy != "security" {
		t.Errorf("the API says %s, activated by %q", got.Status, got.ActivatedBy)
	}

	// The proposal on payments-release is this admin's own: approving it is refused (four eyes).
	tb.open("/ui/connections/payments-release")
	tb.follow(`a[href$="/approve"]`)
	tb.refusals = append(tb.refusals, "/ui/connections/payments-release/approve")
	if st := tb.follow("#confirm"); st != http.StatusForbidden || !strings.Contains(tb.text(".problem"), "four eyes") {
		t.Errorf("approving one's own proposal: %d, %q; want 403 and the four-eyes reason", st, tb.text(".problem"))
	}
	tb.look("05-refused-own-proposal")
	tb.signOut()

	// A second security admin reviews it: the diff, the chart, the activation block with the
	// proposal's fingerprint; then approves.
	tb.signIn(second)
	tb.open("/ui/connections/payments-release")
	changed := eval[[]string](tb, `Array.from(document.querySelectorAll("table.diff tr.change th")).map(th => th.innerText.trim())`)
	if !slices.Contains(changed, "description changed") || !slices.Contains(changed, "condition added") {
		t.Errorf("the diff marks %q, want the description changed and the condition added", changed)
	}
	if bars := eval[int](tb, `document.querySelectorAll("svg rect.bar-granted").length`); bars < 50 {
		t.Errorf("the chart draws %d hours with granted exchanges, want the week's", bars)
	}
	if block := tb.text("#activation"); !strings.Contains(block, `approved_fingerprint = "`+live.Proposal.Fingerprint+`"`) {
		t.Errorf("with a pending proposal, the activation block does not approve the proposal's fingerprint:\n%s", block)
	}
	tb.look("06-connection-proposal")
	tb.viewportShot("readme-connection", 1280, 1500) // the README's picture: the top of this page
	tb.follow(`a[href$="/approve"]`)
	if fp := tb.text("#confirm-fingerprint"); fp != live.Proposal.Fingerprint {
		t.Errorf("the approval repeats %s, want the proposal's %s", fp, live.Proposal.Fingerprint)
	}
	if st := tb.follow("#confirm"); st != http.StatusOK || !strings.Contains(tb.text(".notice"), "approved") {
		t.Fatalf("approving as a second security admin: %d, %q", st, tb.text(".notice"))
	}
	if got := status(t, s, "payments-release"); got.Proposal != nil || got.Fingerprint != live.Proposal.Fingerprint {
		t.Errorf("after approval the API says proposal %v, fingerprint %s", got.Proposal != nil, got.Fingerprint)
	}

	// Deactivate it.
	tb.follow(`a[href$="/deactivate"]`)
	tb.look("07-confirm-deactivate")
	if st := tb.follow("#confirm"); st != http.StatusOK || !strings.Contains(tb.text(".notice"), "inactive") {
		t.Fatalf("deactivating: %d", st)
	}
	if got := status(t, s, "payments-release"); got.Status != api.StatusInactive {
		t.Errorf("after deactivation the API says %s", got.Status)
	}

	// The audit log has it all, filterable.
	tb.follow(`nav.nav a[href="/ui/audit"]`)
	tb.do(chromedp.SetValue(chromedp.ID("f-outcome"), api.OutcomeDenied))
	tb.follow(".filters button[type=submit]")
	outcomes := eval[[]string](tb, `Array.from(document.querySelectorAll("table.audit td[data-label=Outcome]")).map(td => td.innerText.trim())`)
	if len(outcomes) == 0 || slices.ContainsFunc(outcomes, func(o string) bool { return o != api.OutcomeDenied }) {
		t.Errorf("filtered by denied, the audit log lists %q", outcomes)
	}
	tb.look("08-audit")
	tb.signOut()
	tb.checkOrigin()
}
