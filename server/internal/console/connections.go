package console

import (
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/admin"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/console/session"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/httpapi"
)

const (
	listPageSize    = 100
	trailPageSize   = 10
	sightingsOnPage = 20
	countWindow     = 24 * time.Hour
)

func actorOf(s *session.Session) admin.Actor { return admin.Actor{Name: s.Principal, Role: s.Role} }

// connRow is one connection in the list.
type connRow struct {
	Name, Description, Status, Provider string
	Link                                string
	ProposedBy                          string // the pending proposal's author, "" when none
	LastExchange, LastExchangeAt        string
	Granted, Denied                     int64
}

type connectionsPage struct {
	layout
	Status, Provider, Name string
	Statuses, Providers    []string
	// Waiting are the drafts and pending proposals, shown first to a security admin (who acts
	// on them); empty for other roles, who see them among Rows.
	Waiting  []connRow
	Rows     []connRow
	Filtered bool
	NextURL  string
	FirstURL string
}

// connections lists the connections with their activity over the last 24 hours.
func (h *Console) connections(c *gin.Context) {
	sess := sessionOf(c)
	a := actorOf(sess)
	p := &connectionsPage{layout: layout{Title: "Connections", Nav: "connections"},
		Status: c.Query("status"), Provider: c.Query("provider"), Name: c.Query("name"),
		Statuses: api.Statuses, Providers: api.ProviderTypes}
	if p.Status != "" && !slices.Contains(api.Statuses, p.Status) || p.Provider != "" && !slices.Contains(api.ProviderTypes, p.Provider) {
		h.fail(c, http.StatusUnprocessableEntity, "Pick a status and a provider type from the lists.")
		return
	}
	p.Filtered = p.Status != "" || p.Provider != "" || p.Name != ""
	ctx := c.Request.Context()
	conns, next, err := h.Admin.List(ctx, a, connection.Filter{Status: p.Status, ProviderType: p.Provider,
		NamePrefix: p.Name, Limit: listPageSize, Cursor: c.Query("cursor")})
	if err != nil {
		h.failErr(c, err)
		return
	}
	now := h.now()
	counts, err := h.Admin.ExchangeActivity(ctx, a, connection.ActivityQuery{Since: now.Add(-countWindow)})
	if err != nil {
		h.failErr(c, err)
		return
	}
	ids := make([]string, len(conns))
	for i := range conns {
		ids[i] = conns[i].ID
	}
	last, err := h.Admin.LastExchanges(ctx, a, ids)
	if err != nil {
		h.failErr(c, err)
		return
	}
	type tally struct{ granted, denied int64 }
	byConn := map[string]tally{}
	for _, n := range counts {
		t := byConn[n.ConnectionID]
		if n.Outcome == api.OutcomeGranted {
			t.granted += n.Count
		} else {
			t.denied += n.Count
		}
		byConn[n.ConnectionID] = t
	}
	for i := range conns {
		cn := &conns[i]
		row := connRow{Name: cn.Spec.Name, Description: cn.Spec.Description, Status: cn.Status,
			Provider: cn.Spec.ProviderType, Link: connPath(cn.Spec.Name),
			Granted: byConn[cn.ID].granted, Denied: byConn[cn.ID].denied}
		if cn.Proposal != nil {
			row.ProposedBy = cn.Proposal.ProposedBy
		}
		if t, ok := last[cn.ID]; ok {
			row.LastExchange, row.LastExchangeAt = ago(t, now), formatTime(t)
		} else {
			row.LastExchange = "never"
		}
		if sess.Role == api.RoleSecurityAdmin && (cn.Status == api.StatusDraft || cn.Proposal != nil) {
			p.Waiting = append(p.Waiting, row)
		} else {
			p.Rows = append(p.Rows, row)
		}
	}
	q := url.Values{}
	for k, v := range map[string]string{"status": p.Status, "provider": p.Provider, "name": p.Name} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if c.Query("cursor") != "" {
		p.FirstURL = Prefix + "/?" + q.Encode()
	}
	if next != "" {
		q.Set("cursor", next)
		p.NextURL = Prefix + "/?" + q.Encode()
	}
	h.render(c, http.StatusOK, "connections", p)
}

// actionLink is an action a page offers, leading to its confirmation page.
type actionLink struct {
	Label string
	URL   string
	// Danger marks actions that stop something (deactivate, discard).
	Danger bool
}

type proposalView struct {
	Fingerprint string
	ProposedBy  string
	ProposedAt  string
	// Changed are the settings the proposal changes, Unchanged the others (folded away on the
	// page); Conditions are all effective conditions, side by side.
	Changed    []diffRow
	Unchanged  []diffRow
	Conditions []diffRow
}

type auditRow struct {
	Time, TimeISO, Action, Outcome, Connection, ConnectionLink, Actor, Reason, Detail, RequestID, RemoteAddr string
}

type connectionPage struct {
	layout
	C            api.Connection
	Conditions   []condRow
	Settings     []field
	Created      string
	Activated    string
	LastExchange string
	Proposal     *proposalView
	Chart        chart
	Trail        []auditRow
	TrailURL     string
	// TrailOwnOnly: a devops admin's trail holds only their own actions.
	TrailOwnOnly bool
	Activation   string
	Actions      []actionLink
	// Impact and Sightings come from the sightings use cases; the notes say why a section is
	// empty.
	Impact        *api.ImpactReport
	ImpactNote    string
	Sightings     []api.Sighting
	SightingsNote string
}

// done are the notices shown after an action, by its name in ?done=.
var done = map[string]string{
	"activate":   "The connection is active: CI jobs whose tokens meet its conditions get access tokens now.",
	"deactivate": "The connection is inactive: exchanges are refused, and every access token it issued so far is retired for good.",
	"approve":    "The proposal is approved: it is the live configuration now.",
	"discard":    "The proposal is discarded: the live configuration is unchanged.",
}

// connection shows one connection: what it trusts, what a proposal would change, its activity and
// trail, and the actions the principal may take.
func (h *Console) connection(c *gin.Context) {
	sess := sessionOf(c)
	a := actorOf(sess)
	ctx := c.Request.Context()
	cn, err := h.Admin.Get(ctx, a, c.Param("ref"))
	if err != nil {
		h.failErr(c, err)
		return
	}
	now := h.now()
	view := connection.ToAPI(cn, h.Opts)
	r := connection.Resolve(cn.Spec, h.Opts)
	p := &connectionPage{layout: layout{Title: cn.Spec.Name, Nav: "connections", Notice: done[c.Query("done")]},
		C: view, Conditions: conditionRows(cn.Spec, r.EffectiveConditions), Settings: settingFields(view, r),
		Created:    formatTime(cn.CreatedAt),
		Activation: activationBlock(cn.Spec.Name, view.Fingerprint, false)}
	if cn.ActivatedAt != nil {
		p.Activated = formatTime(*cn.ActivatedAt)
	}
	if pr := view.Proposal; pr != nil {
		settings, conds := configDiff(cn.Spec, cn.Proposal.Spec, h.Opts)
		p.Proposal = &proposalView{Fingerprint: pr.Fingerprint, ProposedBy: pr.ProposedBy,
			ProposedAt: formatTime(pr.ProposedAt), Conditions: conds}
		for _, r := range settings {
			if r.Change == "" {
				p.Proposal.Unchanged = append(p.Proposal.Unchanged, r)
			} else {
				p.Proposal.Changed = append(p.Proposal.Changed, r)
			}
		}
		p.Activation = activationBlock(cn.Spec.Name, pr.Fingerprint, true)
	}
	for _, act := range actionOrder {
		if actions[act].offered(cn, a) {
			p.Actions = append(p.Actions, actionLink{Label: actions[act].label, URL: connPath(cn.Spec.Name) + "/" + act,
				Danger: actions[act].danger})
		}
	}

	hourly, err := h.Admin.ExchangeActivity(ctx, a, connection.ActivityQuery{ConnectionID: cn.ID,
		Since: now.Truncate(time.Hour).Add(-(chartHours - 1) * time.Hour), Hourly: true})
	if err != nil {
		h.failErr(c, err)
		return
	}
	p.Chart = buildChart(hourly, now)
	last, err := h.Admin.LastExchanges(ctx, a, []string{cn.ID})
	if err != nil {
		h.failErr(c, err)
		return
	}
	p.LastExchange = "never"
	if t, ok := last[cn.ID]; ok {
		p.LastExchange = ago(t, now) + " (" + formatTime(t) + ")"
	}

	evs, _, err := h.Admin.ListAudit(ctx, a, connection.AuditFilter{Connection: cn.ID, Limit: trailPageSize})
	if err != nil {
		h.failErr(c, err)
		return
	}
	p.Trail = auditRows(evs)
	p.TrailURL = Prefix + "/audit?" + url.Values{"connection": {cn.Spec.Name}}.Encode()
	p.TrailOwnOnly = connection.AuditActorFilter(a.Role, a.Name) != ""

	h.insights(c, a, cn, p)
	h.render(c, http.StatusOK, "connection", p)
}

// insights fills in the impact of a pending proposal (over the default window) and the workloads
// seen (CONTRACT.md §3), through the same use cases as POST …/impact and GET …/sightings. A
// failure to load them is a note on the page, not a failed page: the rest is what a reviewer
// needs first.
func (h *Console) insights(c *gin.Context, a admin.Actor, cn *connection.Connection, p *connectionPage) {
	ctx := c.Request.Context()
	if cn.Proposal != nil {
		impact, err := h.Admin.Impact(ctx, a, cn.ID, []byte(`{}`), 0) // {}: the pending proposal
		if err != nil {
			h.Logger.Warn("console: loading the impact of a proposal", "request_id", requestID(c), "error", err)
			p.ImpactNote = "The impact could not be computed: " + err.Error()
		} else {
			p.Impact = impact
		}
	}
	items, _, err := h.Admin.ListSightings(ctx, a, cn.ID, sightingsOnPage, "")
	switch {
	case err != nil:
		h.Logger.Warn("console: loading sightings", "request_id", requestID(c), "error", err)
		p.SightingsNote = "The workloads seen could not be loaded: " + err.Error()
	case len(items) == 0:
		p.SightingsNote = "No workload has presented a valid token to this connection yet."
	default:
		p.Sightings = items
	}
}

// action is one of the four things a security admin does on a console page. Each goes through a
// confirmation page that repeats the fingerprint being approved, and then through the same use
// case as the API.
type action struct {
	label  string
	danger bool
	// proposal: the action is about the pending proposal, whose fingerprint the page repeats.
	proposal bool
	// applies says whether the connection's state allows the action at all.
	applies func(c *connection.Connection) bool
	// permit asks the domain's permission rules whether a may take the action on c (nil: yes).
	permit func(c *connection.Connection, a admin.Actor) error
	// explain says what the action does, on its confirmation page.
	explain string
}

// offered says whether a page offers the action to a. It only hides buttons: the use case
// decides again on the POST.
func (act action) offered(c *connection.Connection, a admin.Actor) bool {
	return act.applies(c) && act.permit(c, a) == nil
}

var actionOrder = []string{"activate", "approve", "discard", "deactivate"}

func mayChangeStatus(c *connection.Connection, a admin.Actor) error {
	return connection.Authorize(a.Role, connection.ActionSetStatus, c)
}

var actions = map[string]action{
	"activate": {label: "Activate", explain: "From now on, CI jobs whose tokens meet the conditions below get access tokens. " +
		"You approve exactly this fingerprint: if the configuration changed since this page was shown, nothing happens.",
		applies: func(c *connection.Connection) bool { return c.Status != api.StatusActive },
		permit:  mayChangeStatus},
	"deactivate": {label: "Deactivate", danger: true, explain: "Exchanges are refused at once on every replica, and every access token this " +
		"connection issued so far stops working for good, also after a later reactivation.",
		applies: func(c *connection.Connection) bool { return c.Status == api.StatusActive },
		permit:  mayChangeStatus},
	"approve": {label: "Approve proposal", proposal: true, explain: "The proposed configuration becomes the live one at once, on every replica; " +
		"the status stays as it is. You approve exactly this fingerprint: if the proposal changed since this page was shown, nothing happens.",
		applies: func(c *connection.Connection) bool { return c.Proposal != nil },
		permit: func(c *connection.Connection, a admin.Actor) error {
			return connection.Authorize(a.Role, connection.ActionApprove, c)
		}},
	"discard": {label: "Discard proposal", danger: true, proposal: true, explain: "The proposal is dropped; the live configuration stays as it is.",
		applies: func(c *connection.Connection) bool { return c.Proposal != nil },
		permit: func(c *connection.Connection, a admin.Actor) error {
			if err := connection.Authorize(a.Role, connection.ActionDiscard, c); err != nil {
				return err
			}
			return connection.CheckDiscard(c, a.Role, a.Name)
		}},
}

type confirmPage struct {
	layout
	Action      string
	Label       string
	Danger      bool
	Explain     string
	Name        string
	Link        string
	Status      string
	Fingerprint string
	Revision    int64
	ProposedBy  string
	Conditions  []condRow
}

// confirmPageOf describes action on cn: the fingerprint and conditions of what is being approved
// (the live configuration, or the proposal's), and the revision the form sends as If-Match.
func (h *Console) confirmPageOf(slug string, act action, cn *connection.Connection) *confirmPage {
	spec := cn.Spec
	p := &confirmPage{layout: layout{Title: act.label + " " + cn.Spec.Name, Nav: "connections"}, Action: slug, Label: act.label,
		Danger: act.danger, Explain: act.explain, Name: cn.Spec.Name, Link: connPath(cn.Spec.Name), Status: cn.Status,
		Revision: cn.Revision}
	if act.proposal && cn.Proposal != nil {
		spec = cn.Proposal.Spec
		p.ProposedBy = cn.Proposal.ProposedBy
	}
	r := connection.Resolve(spec, h.Opts)
	p.Fingerprint, p.Conditions = r.Fingerprint, conditionRows(spec, r.EffectiveConditions)
	return p
}

// confirm shows an action's confirmation page where the connection page offers the action;
// otherwise it says why not (in the domain's words when the role is what forbids it).
func (h *Console) confirm(c *gin.Context) {
	slug := c.Param("action")
	act, ok := actions[slug]
	if !ok {
		h.fail(c, http.StatusNotFound, "There is no such page.")
		return
	}
	a := actorOf(sessionOf(c))
	cn, err := h.Admin.Get(c.Request.Context(), a, c.Param("ref"))
	if err != nil {
		h.failErr(c, err)
		return
	}
	if err := act.permit(cn, a); err != nil {
		h.failErr(c, err) // the role's refusal, in the domain's words
		return
	}
	if !act.applies(cn) {
		h.fail(c, http.StatusConflict, "This action does not apply to "+cn.Spec.Name+" as it is now: go back to the connection.")
		return
	}
	h.render(c, http.StatusOK, "confirm", h.confirmPageOf(slug, act, cn))
}

var fingerprintPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// act carries out a confirmed action through the admin use case, with the fingerprint and the
// revision the confirmation page showed (fingerprint pinning and If-Match). A refusal — four
// eyes, a changed configuration, a role that may not — shows the confirmation page again with
// the use case's reason and the API's status code.
func (h *Console) act(c *gin.Context) {
	slug := c.Param("action")
	act, ok := actions[slug]
	if !ok {
		h.fail(c, http.StatusNotFound, "There is no such action.")
		return
	}
	a := actorOf(sessionOf(c))
	ref := c.Param("ref")
	rev, err := strconv.ParseInt(c.Request.PostForm.Get("revision"), 10, 64)
	fp := c.Request.PostForm.Get("fingerprint")
	if err != nil || !fingerprintPattern.MatchString(fp) {
		h.fail(c, http.StatusUnprocessableEntity, "The form is incomplete, so nothing was done: go back to the connection and try again.")
		return
	}
	ctx, m := c.Request.Context(), metaOf(c)
	switch slug {
	case "activate":
		_, err = h.Admin.SetStatus(ctx, a, ref, api.StatusChange{Status: api.StatusActive, ApprovedFingerprint: fp}, &rev, m)
	case "deactivate":
		_, err = h.Admin.SetStatus(ctx, a, ref, api.StatusChange{Status: api.StatusInactive, ApprovedFingerprint: fp}, &rev, m)
	case "approve":
		_, err = h.Admin.ApproveProposal(ctx, a, ref, api.ProposalApproval{ApprovedFingerprint: fp}, &rev, m)
	case "discard":
		// The proposal's fingerprint is on the page for the reviewer; the revision pins it here
		// (a replaced proposal has moved the revision on, so the discard fails with 412).
		err = h.Admin.DiscardProposal(ctx, a, ref, &rev, m)
	}
	if err == nil {
		redirect(c, connPath(ref)+"?done="+slug)
		return
	}
	var de *connection.Error
	if !errors.As(err, &de) {
		h.failErr(c, err)
		return
	}
	// Refused. Where the action is still one this principal is offered (four eyes, a changed
	// configuration), the confirmation page comes back with the reason and what is current now,
	// to review again; otherwise (a role that may not, a forged form) the reason alone.
	cn, gerr := h.Admin.Get(ctx, a, ref)
	if gerr != nil || !act.offered(cn, a) {
		h.fail(c, httpapi.KindStatus(de.Kind), "Refused: "+de.Error())
		return
	}
	p := h.confirmPageOf(slug, act, cn)
	p.Problem = "Refused: " + de.Error()
	h.render(c, httpapi.KindStatus(de.Kind), "confirm", p)
}
