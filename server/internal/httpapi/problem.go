package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
)

// problem writes an RFC 9457 problem+json answer whose type follows from the status code.
func problem(c *gin.Context, status int, detail string, fields ...api.FieldError) {
	typedProblem(c, status, "", detail, fields...)
}

// typedProblem writes a problem with a specific type (api.Problem*), or the status code's when empty.
func typedProblem(c *gin.Context, status int, problemType, detail string, fields ...api.FieldError) {
	if problemType == "" {
		problemType = api.ProblemTypeBase + strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "-")
	}
	p := api.Problem{
		Type:      problemType,
		Title:     http.StatusText(status),
		Status:    status,
		Detail:    detail,
		RequestID: requestIDOf(c),
		Errors:    fields,
	}
	b, _ := json.Marshal(p)
	c.Data(status, "application/problem+json", b)
	c.Abort()
}

// fail translates a use case's error into a problem answer. A domain refusal answers by its Kind
// (the use cases have already turned what the store reports into one); anything else is the
// server's fault: 503 when the database does not answer, 500 otherwise.
func (h *handlers) fail(c *gin.Context, err error) {
	var de *connection.Error
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &de):
		typedProblem(c, KindStatus(de.Kind), de.Type, de.Detail, de.Fields...)
	case errors.As(err, &mbe):
		problem(c, http.StatusRequestEntityTooLarge, "the request body is larger than 1 MiB")
	default:
		ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
		defer cancel()
		if pingErr := h.DB.Ping(ctx); pingErr != nil {
			h.Logger.Error("database unavailable", "request_id", requestIDOf(c), "error", err)
			problem(c, http.StatusServiceUnavailable, "the database is unavailable, nothing was changed; retry shortly")
			return
		}
		h.Logger.Error("internal error", "request_id", requestIDOf(c), "error", err)
		problem(c, http.StatusInternalServerError, "internal error; the server log has the details under this request id")
	}
}

// KindStatus is the HTTP status of a domain refusal: the API's, and the review console's so that
// a refusal reads the same in both.
func KindStatus(k connection.Kind) int {
	switch k {
	case connection.KindValidation:
		return http.StatusUnprocessableEntity
	case connection.KindForbidden:
		return http.StatusForbidden
	case connection.KindConflict:
		return http.StatusConflict
	case connection.KindPrecondition:
		return http.StatusPreconditionFailed
	case connection.KindNotFound:
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

// readBody reads a JSON request body after checking its media type. It answers the problem itself
// and returns ok=false when the body cannot be used.
func readBody(c *gin.Context, allowed ...string) ([]byte, bool) {
	mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil {
		mt = ""
	}
	okType := false
	for _, a := range allowed {
		if mt == a {
			okType = true
		}
	}
	if !okType {
		problem(c, http.StatusUnsupportedMediaType, "send the body as "+strings.Join(allowed, " or "))
		return nil, false
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			problem(c, http.StatusRequestEntityTooLarge, "the request body is larger than 1 MiB")
			return nil, false
		}
		problem(c, http.StatusBadRequest, "could not read the request body")
		return nil, false
	}
	return body, true
}

// decodeStrict decodes a small JSON body, refusing unknown fields (CONTRACT.md §3: 422).
func decodeStrict(c *gin.Context, body []byte, into any) bool {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		field := ""
		msg := err.Error()
		if strings.HasPrefix(msg, "json: unknown field ") {
			field = strings.Trim(strings.TrimPrefix(msg, "json: unknown field "), `"`)
			problem(c, http.StatusUnprocessableEntity, "unknown field "+field+": remove it",
				api.FieldError{Field: field, Detail: "unknown field"})
			return false
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			problem(c, http.StatusUnprocessableEntity, "field "+te.Field+" has the wrong type: expected "+te.Type.String(),
				api.FieldError{Field: te.Field, Detail: "wrong type, expected " + te.Type.String()})
			return false
		}
		problem(c, http.StatusUnprocessableEntity, "the body is not valid JSON: "+msg)
		return false
	}
	if dec.More() {
		problem(c, http.StatusUnprocessableEntity, "the body holds more than one JSON value")
		return false
	}
	return true
}
