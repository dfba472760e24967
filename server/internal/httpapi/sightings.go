package httpapi

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// listSightings answers GET /v1/workload-connections/{ref}/sightings: the workloads seen on the
// connection, newest first, paginated.
func (h *handlers) listSightings(c *gin.Context) {
	limit, ok := parseLimit(c)
	if !ok {
		return
	}
	items, next, err := h.Admin.ListSightings(c.Request.Context(), actorOf(c), c.Param("ref"), limit, c.Query("cursor"))
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, api.SightingList{Items: items, NextCursor: next})
}

// impact answers POST /v1/workload-connections/{ref}/impact: what a merge patch on the live
// configuration (or `{}`: the pending proposal) would change for the workloads seen in ?window.
func (h *handlers) impact(c *gin.Context) {
	var window time.Duration
	if v := c.Query("window"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			problem(c, http.StatusUnprocessableEntity, "window must be a positive duration such as 720h or 168h",
				api.FieldError{Field: "window", Detail: "not a positive duration"})
			return
		}
		window = d
	}
	body, ok := readBody(c, "application/json", "application/merge-patch+json")
	if !ok {
		return
	}
	rep, err := h.Admin.Impact(c.Request.Context(), actorOf(c), c.Param("ref"), body, window)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, rep)
}
