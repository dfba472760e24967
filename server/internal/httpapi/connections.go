package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
)

func (h *handlers) writeConnection(c *gin.Context, status int, conn *connection.Connection) {
	c.Header("ETag", strconv.Quote(strconv.FormatInt(conn.Revision, 10)))
	c.JSON(status, connection.ToAPI(conn, h.Opts))
}

// ifMatch parses If-Match: `"3"`, `3` or `*` (any revision). A malformed value cannot match.
func ifMatch(c *gin.Context) (*int64, bool) {
	v := strings.TrimSpace(c.GetHeader("If-Match"))
	if v == "" || v == "*" {
		return nil, true
	}
	n, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(v, "W/"), `"`), 10, 64)
	if err != nil {
		problem(c, http.StatusPreconditionFailed, `If-Match must be the revision in quotes, as sent in the ETag header (e.g. "3")`)
		return nil, false
	}
	return &n, true
}

func (h *handlers) createConnection(c *gin.Context) {
	body, ok := readBody(c, "application/json")
	if !ok {
		return
	}
	in, err := connection.DecodeInput(body)
	if err != nil {
		h.fail(c, err)
		return
	}
	conn, err := h.Admin.Create(c.Request.Context(), actorOf(c), in, metaOf(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.Header("Location", "/v1/workload-connections/"+conn.ID)
	h.writeConnection(c, http.StatusCreated, conn)
}

func (h *handlers) getConnection(c *gin.Context) {
	conn, err := h.Admin.Get(c.Request.Context(), actorOf(c), c.Param("ref"))
	if err != nil {
		h.fail(c, err)
		return
	}
	h.writeConnection(c, http.StatusOK, conn)
}

func parseLimit(c *gin.Context) (int, bool) {
	v := c.Query("limit")
	if v == "" {
		return 0, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 500 {
		problem(c, http.StatusUnprocessableEntity, "limit must be a whole number from 1 to 500",
			api.FieldError{Field: "limit", Detail: "must be 1–500"})
		return 0, false
	}
	return n, true
}

func oneOf(v string, allowed []string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

func (h *handlers) listConnections(c *gin.Context) {
	limit, ok := parseLimit(c)
	if !ok {
		return
	}
	f := connection.Filter{Status: c.Query("status"), ProviderType: c.Query("provider_type"),
		NamePrefix: c.Query("name_prefix"), Limit: limit, Cursor: c.Query("cursor")}
	if f.Status != "" && !oneOf(f.Status, api.Statuses) {
		problem(c, http.StatusUnprocessableEntity, "status must be one of "+strings.Join(api.Statuses, ", "),
			api.FieldError{Field: "status", Detail: "unknown status"})
		return
	}
	if f.ProviderType != "" && !oneOf(f.ProviderType, api.ProviderTypes) {
		problem(c, http.StatusUnprocessableEntity, "provider_type must be one of "+strings.Join(api.ProviderTypes, ", "),
			api.FieldError{Field: "provider_type", Detail: "unknown provider type"})
		return
	}
	conns, next, err := h.Admin.List(c.Request.Context(), actorOf(c), f)
	if err != nil {
		h.fail(c, err)
		return
	}
	out := api.ConnectionList{Items: make([]api.Connection, 0, len(conns)), NextCursor: next}
	for i := range conns {
		out.Items = append(out.Items, connection.ToAPI(&conns[i], h.Opts))
	}
	c.JSON(http.StatusOK, out)
}

func (h *handlers) patchConnection(c *gin.Context) {
	im, ok := ifMatch(c)
	if !ok {
		return
	}
	body, ok := readBody(c, "application/merge-patch+json", "application/json")
	if !ok {
		return
	}
	conn, proposed, err := h.Admin.Update(c.Request.Context(), actorOf(c), c.Param("ref"), body, im, metaOf(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	status := http.StatusOK
	if proposed {
		status = http.StatusAccepted // stored as a proposal; nothing live changed
	}
	h.writeConnection(c, status, conn)
}

func (h *handlers) approveProposal(c *gin.Context) {
	im, ok := ifMatch(c)
	if !ok {
		return
	}
	body, ok := readBody(c, "application/json")
	if !ok {
		return
	}
	var req api.ProposalApproval
	if !decodeStrict(c, body, &req) {
		return
	}
	conn, err := h.Admin.ApproveProposal(c.Request.Context(), actorOf(c), c.Param("ref"), req, im, metaOf(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	h.writeConnection(c, http.StatusOK, conn)
}

func (h *handlers) discardProposal(c *gin.Context) {
	im, ok := ifMatch(c)
	if !ok {
		return
	}
	if err := h.Admin.DiscardProposal(c.Request.Context(), actorOf(c), c.Param("ref"), im, metaOf(c)); err != nil {
		h.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (h *handlers) deleteConnection(c *gin.Context) {
	im, ok := ifMatch(c)
	if !ok {
		return
	}
	if err := h.Admin.Delete(c.Request.Context(), actorOf(c), c.Param("ref"), im, metaOf(c)); err != nil {
		h.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (h *handlers) setStatus(c *gin.Context) {
	im, ok := ifMatch(c)
	if !ok {
		return
	}
	body, ok := readBody(c, "application/json")
	if !ok {
		return
	}
	var req api.StatusChange
	if !decodeStrict(c, body, &req) {
		return
	}
	conn, err := h.Admin.SetStatus(c.Request.Context(), actorOf(c), c.Param("ref"), req, im, metaOf(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	h.writeConnection(c, http.StatusOK, conn)
}

func (h *handlers) testToken(c *gin.Context) {
	a := actorOf(c)
	body, ok := readBody(c, "application/json")
	if !ok {
		return
	}
	var req api.TestRequest
	if !decodeStrict(c, body, &req) {
		return
	}
	if req.Token == "" {
		problem(c, http.StatusUnprocessableEntity, "token is required: paste the CI system's OIDC JWT",
			api.FieldError{Field: "token", Detail: "required"})
		return
	}
	var proposal bool
	switch cfg := c.Query("config"); cfg {
	case "", "live":
	case "proposal":
		proposal = true
	default:
		problem(c, http.StatusUnprocessableEntity, "config must be \"proposal\" (test the pending proposal) or left out (test the live configuration)",
			api.FieldError{Field: "config", Detail: "unknown value"})
		return
	}
	res, err := h.Admin.Test(c.Request.Context(), a, c.Param("ref"), req.Token, proposal, metaOf(c))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

func (h *handlers) listAudit(c *gin.Context) {
	limit, ok := parseLimit(c)
	if !ok {
		return
	}
	f := connection.AuditFilter{Connection: c.Query("connection"), Action: c.Query("action"), Limit: limit, Cursor: c.Query("cursor")}
	if s := c.Query("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			problem(c, http.StatusUnprocessableEntity, "since must be an RFC 3339 time such as 2026-01-02T15:04:05Z",
				api.FieldError{Field: "since", Detail: "not RFC 3339"})
			return
		}
		f.Since = t
	}
	evs, next, err := h.Admin.ListAudit(c.Request.Context(), actorOf(c), f)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, api.AuditEventList{Items: evs, NextCursor: next})
}
