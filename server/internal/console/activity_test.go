package console_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
)

// appendAudit writes events into the server's audit trail as they would have been written at
// their times: exchanges cannot be made in the past, and the counts and the chart are about the
// past days.
func appendAudit(t *testing.T, s *testkit.Server, evs ...api.AuditEvent) {
	t.Helper()
	if err := s.App.Store.AppendAudit(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
}

func exchanges(c *api.Connection, outcome string, at time.Time, n int) []api.AuditEvent {
	evs := make([]api.AuditEvent, n)
	for i := range evs {
		evs[i] = api.AuditEvent{Time: at.Add(time.Duration(i) * time.Second), Actor: "repo:octo-org/octo-repo:environment:prod",
			Action: api.ActionTokenExchange, ConnectionID: c.ID, ConnectionName: c.Name, Outcome: outcome}
		if outcome == api.OutcomeDenied {
			evs[i].Reason = "condition"
		}
	}
	return evs
}

var rowCells = regexp.MustCompile(`(?s)<td data-label="(Last exchange|Granted 24 h|Denied 24 h)"[^>]*>(.*?)</td>`)

func TestCountsAndTheChartComeFromTheAuditLog(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	clock := ciissuer.NewClock(now)
	s := testkit.Start(t, testkit.WithClock(clock.Now))
	app := s.CreateActive(t, testkit.GitHubInput("app", jwksURL))
	quiet := s.CreateActive(t, testkit.GitHubInput("quiet", jwksURL))
	// Oldest first, as the server appends them.
	appendAudit(t, s, exchanges(quiet, api.OutcomeDenied, now.Add(-10*24*time.Hour), 1)...)
	appendAudit(t, s, exchanges(app, api.OutcomeGranted, now.Add(-8*24*time.Hour), 50)...) // too old for either
	appendAudit(t, s, exchanges(app, api.OutcomeGranted, now.Add(-30*time.Hour), 4)...)    // in the chart, not in 24 h
	appendAudit(t, s, exchanges(app, api.OutcomeGranted, now.Add(-3*time.Hour), 3)...)
	appendAudit(t, s, exchanges(app, api.OutcomeDenied, now.Add(-2*time.Hour), 2)...)

	c := newClient(t, s)
	c.signIn(s.AuditorKey)
	list := c.get("/ui/")
	cells := map[string][]string{}
	for _, m := range rowCells.FindAllStringSubmatch(list.Body, -1) {
		text := regexp.MustCompile(`<[^>]+>`).ReplaceAllString(m[2], "")
		cells[m[1]] = append(cells[m[1]], strings.TrimSpace(text))
	}
	// Rows are ordered by name: app, quiet.
	want := map[string][]string{"Last exchange": {"1 h ago", "10 days ago"}, "Granted 24 h": {"3", "0"}, "Denied 24 h": {"2", "0"}}
	for k, v := range want {
		if strings.Join(cells[k], "|") != strings.Join(v, "|") {
			t.Errorf("%s column %q, want %q", k, cells[k], v)
		}
	}

	p := c.get("/ui/connections/app")
	if !strings.Contains(p.Body, "7 granted and 2 denied in the last 7 days") {
		t.Errorf("the connection page does not count 7 granted and 2 denied over 7 days")
	}
	bars := strings.Count(p.Body, `class="bar-granted"`)
	denied := strings.Count(p.Body, `class="bar-denied"`)
	if bars != 2 || denied != 1 {
		t.Errorf("the chart has %d granted and %d denied bars, want 2 and 1 (three hours with exchanges)", bars, denied)
	}
	hour := now.Add(-3 * time.Hour).Truncate(time.Hour).Format("Mon 2 Jan 15:00 UTC")
	if !strings.Contains(p.Body, hour+": 3 granted, 0 denied") {
		t.Errorf("no bar titled %q", hour+": 3 granted, 0 denied")
	}
}

func TestAuditLogFiltersAndPages(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	s := testkit.Start(t)
	app := s.CreateActive(t, testkit.GitHubInput("app", jwksURL))
	// 60 exchanges a minute apart, every third denied, the newest a minute ago.
	var evs []api.AuditEvent
	for i := range 60 {
		ev := exchanges(app, api.OutcomeGranted, now.Add(-time.Duration(60-i)*time.Minute), 1)[0]
		ev.RequestID = fmt.Sprintf("req-%02d", i)
		if i%3 == 0 {
			ev.Outcome = api.OutcomeDenied
		}
		evs = append(evs, ev)
	}
	appendAudit(t, s, evs...)

	c := newClient(t, s)
	c.signIn(s.AuditorKey)
	ids := regexp.MustCompile(`request (req-\d\d)`)
	read := func(p page) []string {
		var out []string
		for _, m := range ids.FindAllStringSubmatch(p.Body, -1) {
			out = append(out, m[1])
		}
		return out
	}
	first := c.get("/ui/audit?" + url.Values{"connection": {"app"}, "action": {api.ActionTokenExchange}}.Encode())
	got := read(first)
	if len(got) != 50 || got[0] != "req-59" || got[49] != "req-10" {
		t.Fatalf("first page: %d events %v, want 50 from req-59 to req-10 (newest first)", len(got), got)
	}
	next := regexp.MustCompile(`<a href="([^"]+)">Older events</a>`).FindStringSubmatch(first.Body)
	if next == nil {
		t.Fatal("no link to older events")
	}
	second := read(c.get(strings.ReplaceAll(next[1], "&amp;", "&")))
	if len(second) != 10 || second[0] != "req-09" || second[9] != "req-00" {
		t.Errorf("second page %v, want req-09 … req-00", second)
	}

	denied := read(c.get("/ui/audit?" + url.Values{"connection": {"app"}, "outcome": {api.OutcomeDenied}}.Encode()))
	if len(denied) != 20 || denied[0] != "req-57" {
		t.Errorf("denied only: %d events starting %v, want 20 from req-57", len(denied), denied[:min(1, len(denied))])
	}
	window := read(c.get("/ui/audit?" + url.Values{"action": {api.ActionTokenExchange},
		"since":  {now.Add(-10 * time.Minute).Format("2006-01-02T15:04:05")},
		"before": {now.Add(-5 * time.Minute).Format("2006-01-02T15:04:05")}}.Encode()))
	if strings.Join(window, " ") != "req-54 req-53 req-52 req-51 req-50" {
		t.Errorf("from 10 to 5 minutes ago: %v, want req-54 … req-50", window)
	}

	// A devops admin sees their own actions only, as through the API.
	d := newClient(t, s)
	d.signIn(s.DevOpsKey)
	own := d.get("/ui/audit")
	if strings.Contains(own.Body, "token.exchange</code>") || !strings.Contains(own.Body, "connection.create") ||
		!strings.Contains(own.Body, "you see your own actions only") {
		t.Errorf("a devops admin's audit page shows others' events or does not say it is filtered")
	}
	if p := d.get("/ui/audit?outcome=denied"); p.Status != http.StatusOK || len(read(p)) != 0 {
		t.Errorf("a devops admin sees %d denied exchanges", len(read(p)))
	}
}
