package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/admin"
)

const readyTimeout = 2 * time.Second

// A caller-supplied X-Request-Id is kept only when it is short and plain, so it can be logged and
// echoed without letting anyone inject header or log syntax.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

const ctxRequestID = "trustgate.request_id"

func (h *handlers) requestID(c *gin.Context) {
	id := c.GetHeader("X-Request-Id")
	if !requestIDPattern.MatchString(id) {
		id = uuid.NewString()
	}
	c.Set(ctxRequestID, id)
	c.Header("X-Request-Id", id)
	c.Next()
}

func requestIDOf(c *gin.Context) string { return c.GetString(ctxRequestID) }

func (h *handlers) recover(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v)
			}
			h.Logger.Error("panic serving request", "request_id", requestIDOf(c), "panic", v, "stack", string(debug.Stack()))
			problem(c, http.StatusInternalServerError, "internal error; the server log has the details under this request id")
			c.Abort()
		}
	}()
	c.Next()
}

func (h *handlers) logAndMeasure(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	status := c.Writer.Status()
	elapsed := time.Since(start)
	h.metrics.requests.WithLabelValues(c.Request.Method, route, strconv.Itoa(status)).Inc()
	h.metrics.duration.WithLabelValues(c.Request.Method, route).Observe(elapsed.Seconds())
	// The token endpoint is the hot path; successful exchanges are logged at debug level only.
	level := slog.LevelInfo
	if route == "/v1/token" && status == http.StatusOK {
		level = slog.LevelDebug
	}
	// Never log headers, query strings or bodies: they may hold tokens or keys.
	h.Logger.Log(c.Request.Context(), level, "request",
		"request_id", requestIDOf(c), "method", c.Request.Method, "route", route,
		"status", status, "duration_ms", float64(elapsed.Microseconds())/1000, "remote_addr", c.ClientIP(),
		"principal", c.GetString(ctxPrincipalName))
}

func (h *handlers) limitBody(c *gin.Context) {
	if c.Request.Body != nil {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, MaxBodyBytes)
	}
	c.Next()
}

// storable reports whether s can be stored and compared as text by every supported database:
// valid UTF-8 without NUL (PostgreSQL refuses both, which would surface as a 500).
func storable(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// rejectUnstorable refuses a {ref} or a query parameter that no stored name, id or value can
// contain: the ref is answered 404 (no such connection), the parameter 422, before the database
// sees either.
func (h *handlers) rejectUnstorable(c *gin.Context) {
	if ref := c.Param("ref"); ref != "" && !storable(ref) {
		h.fail(c, admin.ErrNotFound)
		return
	}
	for name, values := range c.Request.URL.Query() {
		for _, v := range values {
			if !storable(name) || !storable(v) {
				field := name
				if !storable(field) {
					field = "query"
				}
				problem(c, http.StatusUnprocessableEntity, "query parameters must be valid UTF-8 without NUL bytes",
					api.FieldError{Field: field, Detail: "not valid UTF-8 text"})
				return
			}
		}
	}
	c.Next()
}
