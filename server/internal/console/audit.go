package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
)

const auditPageSize = 50

// auditActions are the actions the audit page filters by (CONTRACT.md §3).
var auditActions = []string{
	api.ActionConnectionCreate, api.ActionConnectionUpdate, api.ActionConnectionPropose,
	api.ActionConnectionApprove, api.ActionConnectionDiscard, api.ActionConnectionStatus,
	api.ActionConnectionDelete, api.ActionConnectionTest, api.ActionTokenExchange,
	api.ActionTokenRevoke, api.ActionKeyRotate, api.ActionAuditCheckpoint,
}

var auditOutcomes = []string{api.OutcomeSuccess, api.OutcomeDenied, api.OutcomeGranted}

type auditPage struct {
	layout
	Connection, Action, Outcome, Since, Before string
	Actions, Outcomes                          []string
	Events                                     []auditRow
	NextURL, FirstURL                          string
	// OwnOnly: a devops admin sees only their own actions.
	OwnOnly bool
}

// timeInputLayouts are what the time filters accept: a datetime-local input's value (minutes or
// seconds, read as UTC) or RFC 3339.
var timeInputLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339Nano}

func parseTimeInput(s string) (time.Time, bool) {
	for _, l := range timeInputLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// audit shows the audit log, newest first, filtered and paginated through the same use case as
// GET /v1/audit-events (a devops admin sees only their own actions there too).
func (h *Console) audit(c *gin.Context) {
	a := actorOf(sessionOf(c))
	p := &auditPage{layout: layout{Title: "Audit log", Nav: "audit"},
		Connection: strings.TrimSpace(c.Query("connection")), Action: c.Query("action"), Outcome: c.Query("outcome"),
		Since: c.Query("since"), Before: c.Query("before"), Actions: auditActions, Outcomes: auditOutcomes,
		OwnOnly: connection.AuditActorFilter(a.Role, a.Name) != ""}
	f := connection.AuditFilter{Connection: p.Connection, Action: p.Action, Outcome: p.Outcome,
		Limit: auditPageSize, Cursor: c.Query("cursor")}
	var problems []string
	if p.Action != "" && !slices.Contains(auditActions, p.Action) {
		problems = append(problems, "Pick an action from the list.")
	}
	if p.Outcome != "" && !slices.Contains(auditOutcomes, p.Outcome) {
		problems = append(problems, "Pick an outcome from the list.")
	}
	for _, tf := range []struct {
		in   string
		into *time.Time
		name string
	}{{p.Since, &f.Since, "From"}, {p.Before, &f.Before, "Before"}} {
		if tf.in == "" {
			continue
		}
		t, ok := parseTimeInput(tf.in)
		if !ok {
			problems = append(problems, tf.name+" must be a date and time such as 2026-12-03T14:30 (UTC).")
			continue
		}
		*tf.into = t
	}
	if len(problems) > 0 {
		p.Problem = strings.Join(problems, " ")
		h.render(c, http.StatusUnprocessableEntity, "audit", p)
		return
	}
	evs, next, err := h.Admin.ListAudit(c.Request.Context(), a, f)
	if err != nil {
		h.failErr(c, err)
		return
	}
	p.Events = auditRows(evs)
	q := url.Values{}
	for k, v := range map[string]string{"connection": p.Connection, "action": p.Action, "outcome": p.Outcome,
		"since": p.Since, "before": p.Before} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if c.Query("cursor") != "" {
		p.FirstURL = Prefix + "/audit?" + q.Encode()
	}
	if next != "" {
		q.Set("cursor", next)
		p.NextURL = Prefix + "/audit?" + q.Encode()
	}
	h.render(c, http.StatusOK, "audit", p)
}

// auditRows prepares audit events for a table.
func auditRows(evs []api.AuditEvent) []auditRow {
	rows := make([]auditRow, 0, len(evs))
	for _, ev := range evs {
		r := auditRow{Time: ev.Time.UTC().Format("2006-01-02 15:04:05 UTC"), TimeISO: ev.Time.UTC().Format(time.RFC3339), Action: ev.Action,
			Outcome: ev.Outcome, Connection: ev.ConnectionName, Actor: ev.Actor, Reason: ev.Reason,
			RequestID: ev.RequestID, RemoteAddr: ev.RemoteAddr}
		if ev.ConnectionID != "" {
			r.ConnectionLink = connPath(ev.ConnectionID)
		}
		if len(ev.Detail) > 0 {
			b, err := json.MarshalIndent(ev.Detail, "", "  ")
			if err == nil {
				r.Detail = string(b)
			}
		}
		rows = append(rows, r)
	}
	return rows
}
