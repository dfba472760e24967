package console

import (
	"bytes"
	"io/fs"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/console/session"
)

// hostile is text an attacker controls that reaches the pages: a connection's description, a
// claim value in a condition, a connection name in a refused request's audit event, a workload's
// identity claim.
const hostile = `<script>alert("x")</script><img src=x onerror=alert(1)>"'&`

func renderPage(t *testing.T, name string, p page) *html.Node {
	t.Helper()
	pages, err := parsePages()
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := fs.Sub(staticFS, "static")
	as, err := loadAssets(sub)
	if err != nil {
		t.Fatal(err)
	}
	p.base().Assets = as
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		t.Fatalf("rendering %s: %v", name, err)
	}
	doc, err := html.Parse(&buf)
	if err != nil {
		t.Fatalf("the %s page is not HTML: %v", name, err)
	}
	return doc
}

// walk calls f on every element.
func walk(n *html.Node, f func(*html.Node)) {
	if n.Type == html.ElementNode {
		f(n)
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

func text(n *html.Node) string {
	var b strings.Builder
	var f func(*html.Node)
	f = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			f(c)
		}
	}
	f(n)
	return b.String()
}

// assertOnlyOwnScript fails unless the page's one script element is the console's own file and no
// element carries an event-handler attribute or inline style: hostile text stayed text.
func assertOnlyOwnScript(t *testing.T, doc *html.Node) {
	t.Helper()
	var scripts []string
	walk(doc, func(n *html.Node) {
		if n.Data == "script" {
			scripts = append(scripts, attr(n, "src"))
		}
		if n.Data == "img" {
			t.Errorf("an <img> element made it into the page: %v", n.Attr)
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(a.Key, "on") || a.Key == "style" {
				t.Errorf("<%s> has attribute %s=%q", n.Data, a.Key, a.Val)
			}
		}
	})
	if len(scripts) != 1 || !strings.HasPrefix(scripts[0], "/ui/static/console.js?v=") {
		t.Errorf("script elements %q, want exactly the console's own script", scripts)
	}
}

func TestConnectionPageShowsHostileTextAsText(t *testing.T) {
	t.Parallel()
	scriptValue := "<script>"
	spec := api.ConnectionInput{Name: "app", Description: hostile, ProviderType: api.ProviderGeneric,
		JWKSURL: "https://issuer.example/jwks",
		Conditions: []api.Condition{
			{Claim: "iss", Operator: api.OpEquals, Value: ptr("https://issuer.example")},
			{Claim: "aud", Operator: api.OpEquals, Value: ptr("trustgate")},
			{Claim: "ref", Operator: api.OpEquals, Value: &scriptValue},
			{Claim: hostile, Operator: api.OpOneOf, Values: []string{hostile, "main"}},
		}}
	c := &connection.Connection{ID: "4f1c2d9e-0000-4000-8000-000000000001", Spec: spec, Status: api.StatusDraft,
		Revision: 3, CreatedBy: "devops", CreatedAt: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	opts := connection.Options{DefaultAudience: "https://trustgate.example"}
	view := connection.ToAPI(c, opts)
	r := connection.Resolve(spec, opts)
	p := &connectionPage{layout: layout{Title: spec.Name, User: &session.Session{Principal: "security", Role: api.RoleSecurityAdmin}},
		C: view, Conditions: conditionRows(spec, r.EffectiveConditions), Settings: settingFields(view, r),
		Chart:      buildChart(nil, time.Now()),
		Trail:      auditRows([]api.AuditEvent{{Time: time.Now(), Action: api.ActionConnectionUpdate, Outcome: api.OutcomeDenied, ConnectionName: hostile, Reason: hostile, Detail: map[string]any{"x": hostile}}}),
		Activation: activationBlock(spec.Name, view.Fingerprint, false),
		Impact:     &api.ImpactReport{Window: "720h", NewlyRefused: []api.ImpactWorkload{{Identity: hostile, FailingCheck: hostile}}},
		Sightings:  []api.Sighting{{Identity: hostile, Outcome: api.OutcomeGranted}},
	}
	doc := renderPage(t, "connection", p)
	assertOnlyOwnScript(t, doc)

	var description string
	var values []string
	walk(doc, func(n *html.Node) {
		switch {
		case attr(n, "class") == "description":
			description = text(n)
		case n.Data == "td" && attr(n, "data-label") == "Value":
			values = append(values, text(n))
		}
	})
	if description != hostile {
		t.Errorf("description shows as %q, want the text %q", description, hostile)
	}
	want := []string{"https://issuer.example", "trustgate", "<script>", hostile + ", main"}
	if strings.Join(values, "|") != strings.Join(want, "|") {
		t.Errorf("condition values show as %q, want %q", values, want)
	}
}

func TestAuditPageShowsHostileTextAsText(t *testing.T) {
	t.Parallel()
	// A refused request for a connection that does not exist is audited under the name the caller
	// sent: anything at all.
	ev := api.AuditEvent{Time: time.Now(), Action: api.ActionConnectionStatus, Outcome: api.OutcomeDenied,
		ConnectionName: hostile, Actor: hostile, Reason: hostile, RequestID: hostile, Detail: map[string]any{hostile: hostile}}
	p := &auditPage{layout: layout{Title: "Audit log", User: &session.Session{Principal: "auditor", Role: api.RoleAuditor}},
		Connection: hostile, Events: auditRows([]api.AuditEvent{ev}), Actions: auditActions, Outcomes: auditOutcomes}
	doc := renderPage(t, "audit", p)
	assertOnlyOwnScript(t, doc)
	var cells []string
	var filterValue string
	walk(doc, func(n *html.Node) {
		if n.Data == "td" && (attr(n, "data-label") == "Connection" || attr(n, "data-label") == "Actor") {
			cells = append(cells, text(n))
		}
		if n.Data == "input" && attr(n, "name") == "connection" {
			filterValue = attr(n, "value")
		}
	})
	if len(cells) != 2 || cells[0] != hostile || cells[1] != hostile {
		t.Errorf("connection and actor cells show as %q, want the text %q twice", cells, hostile)
	}
	if filterValue != hostile {
		t.Errorf("the filter input's value is %q, want %q", filterValue, hostile)
	}
}

func TestEveryPageRendersEmpty(t *testing.T) {
	t.Parallel()
	user := &session.Session{Principal: "auditor", Role: api.RoleAuditor}
	for name, p := range map[string]page{
		"sign-in":     &signInPage{},
		"connections": &connectionsPage{layout: layout{User: user}},
		"connection":  &connectionPage{layout: layout{User: user}, Chart: buildChart(nil, time.Now())},
		"confirm":     &confirmPage{layout: layout{User: user}},
		"audit":       &auditPage{layout: layout{User: user}},
		"message":     &messagePage{},
	} {
		doc := renderPage(t, name, p)
		assertOnlyOwnScript(t, doc)
		// Every input is labelled (CONTRACT.md §7: keyboard-usable, every input labelled).
		labels := map[string]bool{}
		walk(doc, func(n *html.Node) {
			if n.Data == "label" {
				labels[attr(n, "for")] = true
			}
		})
		walk(doc, func(n *html.Node) {
			if (n.Data == "input" && attr(n, "type") != "hidden") || n.Data == "select" {
				if id := attr(n, "id"); id == "" || !labels[id] {
					t.Errorf("%s page: <%s name=%q> has no label", name, n.Data, attr(n, "name"))
				}
			}
		})
	}
}

func TestConfigDiff(t *testing.T) {
	t.Parallel()
	opts := connection.Options{DefaultAudience: "https://trustgate.example"}
	live := api.ConnectionInput{Name: "deploy", ProviderType: api.ProviderGitHub,
		GitHub:     &api.GitHubSettings{Owner: "acme", OwnerID: "42", Repository: "acme/app"},
		TokenTTL:   &api.TokenTTL{Amount: 1, Unit: api.UnitHours},
		Conditions: []api.Condition{{Claim: "ref", Operator: api.OpEquals, Value: ptr("refs/heads/main")}}}
	proposed := live
	proposed.GitHub = &api.GitHubSettings{Owner: "acme", OwnerID: "42", Repository: "acme/app", Environment: "prod"}
	proposed.TokenTTL = &api.TokenTTL{Amount: 30, Unit: api.UnitMinutes}
	proposed.Conditions = []api.Condition{
		{Claim: "ref", Operator: api.OpEquals, Value: ptr("refs/heads/main")},
		{Claim: "workflow", Operator: api.OpEquals, Value: ptr("deploy")},
	}
	settings, conds := configDiff(live, proposed, opts)

	changes := map[string]diffRow{}
	for _, r := range settings {
		if r.Change != "" {
			changes[r.Field] = r
		}
	}
	if r := changes["token_ttl"]; r.Change != "changed" || r.Live != "1 hours" || r.Proposed != "30 minutes" {
		t.Errorf("token_ttl row = %+v, want changed from 1 hours to 30 minutes", r)
	}
	if r := changes["github.environment"]; r.Change != "added" || r.Proposed != "prod" {
		t.Errorf("github.environment row = %+v, want added prod", r)
	}
	if len(changes) != 2 {
		t.Errorf("changed settings %v, want token_ttl and github.environment only", changes)
	}
	// The environment is a preset condition too: it and the new user condition are the only
	// added lines; every other condition is unchanged and side by side.
	var added []string
	for _, r := range conds {
		switch r.Change {
		case "":
			if r.Live != r.Proposed {
				t.Errorf("unchanged condition row with different sides: %+v", r)
			}
		case "added":
			added = append(added, r.Proposed)
		default:
			t.Errorf("unexpected %s condition row: %+v", r.Change, r)
		}
	}
	want := []string{`environment equals "prod"  (preset)`, `workflow equals "deploy"  (user)`}
	if strings.Join(added, "|") != strings.Join(want, "|") {
		t.Errorf("added conditions %q, want %q", added, want)
	}
}

func TestLCSDiffPairsAReplacedLine(t *testing.T) {
	t.Parallel()
	rows := lcsDiff([]string{"a", "b", "c"}, []string{"a", "x", "c", "d"})
	got := make([]string, len(rows))
	for i, r := range rows {
		got[i] = r.Change + ":" + r.Live + ">" + r.Proposed
	}
	want := []string{":a>a", "changed:b>x", ":c>c", "added:>d"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("rows %q, want %q", got, want)
	}
}

func TestChartCountsHourByHour(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 3, 14, 25, 0, 0, time.UTC)
	hour := func(ago int) time.Time { return now.Truncate(time.Hour).Add(-time.Duration(ago) * time.Hour) }
	ch := buildChart([]connection.ExchangeCount{
		{Outcome: api.OutcomeGranted, Hour: hour(0), Count: 7},
		{Outcome: api.OutcomeDenied, Hour: hour(0), Count: 3},
		{Outcome: api.OutcomeGranted, Hour: hour(30), Count: 1},
		{Outcome: api.OutcomeGranted, Hour: hour(chartHours), Count: 1000}, // before the window
	}, now)
	if ch.Granted != 8 || ch.Denied != 3 {
		t.Errorf("totals %d granted, %d denied; want 8 and 3", ch.Granted, ch.Denied)
	}
	if len(ch.Bars) != 2 {
		t.Fatalf("%d bars, want 2 (one per hour with exchanges)", len(ch.Bars))
	}
	last := ch.Bars[1]
	if last.X != chartLeft+(chartHours-1)*chartBarW {
		t.Errorf("the current hour's bar is at x=%d, want the last slot", last.X)
	}
	// The y axis tops at 10 (the nice ceiling of 7+3): the bar fills the plot.
	if last.GrantedH+last.DeniedH != chartPlotH || last.DeniedY != chartTop {
		t.Errorf("the peak bar is %d+%d high from y=%d, want the full %d from %d", last.GrantedH, last.DeniedH, last.DeniedY, chartPlotH, chartTop)
	}
	if ch.Bars[0].GrantedH < 1 {
		t.Errorf("a single exchange is invisible (height %d)", ch.Bars[0].GrantedH)
	}
	if !strings.Contains(last.Title, "Thu 3 Dec 14:00 UTC: 7 granted, 3 denied") {
		t.Errorf("bar title %q", last.Title)
	}
	var days int64
	for _, d := range ch.PerDay {
		days += d.Granted + d.Denied
	}
	if days != 11 || len(ch.PerDay) != 8 {
		t.Errorf("per-day table holds %d exchanges over %d days, want 11 over 8 (two partial days)", days, len(ch.PerDay))
	}
	if len(ch.Days) != 7 {
		t.Errorf("%d day ticks, want 7 midnights", len(ch.Days))
	}
}

func TestActivationBlock(t *testing.T) {
	t.Parallel()
	got := activationBlock("9-lives", "sha256:ab", true)
	for _, want := range []string{
		`resource "trustgate_workload_connection_activation" "connection_9_lives" {`,
		`  connection_name      = "9-lives"`,
		`  approved_fingerprint = "sha256:ab"`,
		"# approved_fingerprint is the pending proposal's",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("activation block lacks %q:\n%s", want, got)
		}
	}
}

func TestSafeNextStaysInTheConsole(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/ui/connections/app?done=x": "/ui/connections/app?done=x",
		"/ui/audit":                  "/ui/audit",
		"":                           "/ui/",
		"https://evil.example/ui/":   "/ui/",
		"//evil.example/ui/":         "/ui/",
		"/ui/\\evil":                 "/ui/",
		"/uix":                       "/ui/",
		"/v1/workload-connections":   "/ui/",
		"/ui/sign-in?next=/ui/":      "/ui/",
		"/ui/../v1/x":                "/ui/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLimiterRefusesAfterRepeatedFailures(t *testing.T) {
	t.Parallel()
	l := newLimiter(3, 10*time.Second, 2)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for range 3 {
		if d := l.wait("192.0.2.1", now); d != 0 {
			t.Fatalf("refused after fewer than 3 failures (wait %s)", d)
		}
		l.fail("192.0.2.1", now)
	}
	if d := l.wait("192.0.2.1", now); d != 10*time.Second {
		t.Errorf("after 3 failures: wait %s, want 10s", d)
	}
	if d := l.wait("192.0.2.2", now); d != 0 {
		t.Errorf("another address must not wait (%s)", d)
	}
	if d := l.wait("192.0.2.1", now.Add(10*time.Second)); d != 0 {
		t.Errorf("after the refill: wait %s, want 0", d)
	}
	// IPv6 addresses of one /64 share a bucket.
	for range 3 {
		l.fail("2001:db8::1", now)
	}
	if d := l.wait("2001:db8::ffff", now); d == 0 {
		t.Errorf("another address of the same /64 was not limited")
	}
	// The table is bounded: a third client while two buckets are still draining shares the
	// overflow bucket instead of resetting one of theirs.
	l.fail("198.51.100.7", now)
	if d := l.wait("192.0.2.1", now); d == 0 {
		t.Errorf("a full table forgot a draining bucket")
	}
}

func ptr[T any](v T) *T { return &v }
