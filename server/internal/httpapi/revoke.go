package httpapi

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/broker"
)

// revoke is POST /v1/revoke (RFC 7009; CONTRACT.md §3). The credential is either the access token
// being revoked (a CI job giving its token back) or a security admin's API key; the broker decides
// who may revoke what. Whatever the token was, a permitted request answers 200 with no body
// (RFC 7009 §2.2), so the answer tells nothing about the token.
func (h *handlers) revoke(c *gin.Context) {
	cred := bearer(c)
	var by broker.Revoker
	switch {
	case cred == "":
		c.Header("WWW-Authenticate", `Bearer realm="trustgate"`)
		problem(c, http.StatusUnauthorized, "missing credential: send Authorization: Bearer <the access token to revoke>, or a security admin's API key")
		return
	case isAPIKey(cred):
		h.authPrincipal(c)
		if c.IsAborted() {
			return
		}
		by = broker.Revoker{Principal: c.GetString(ctxPrincipalName), Role: c.GetString(ctxPrincipalRole)}
	default:
		by = broker.Revoker{Token: cred}
	}
	req, ok := revokeRequest(c)
	if !ok {
		return
	}
	err := h.Broker.Revoke(c.Request.Context(), req.Token, by, metaOf(c))
	switch {
	case errors.Is(err, broker.ErrBadCredential):
		c.Header("WWW-Authenticate", `Bearer realm="trustgate", error="invalid_token"`)
		problem(c, http.StatusUnauthorized, "the access token sent as the credential is not valid (expired, revoked long ago, signed by a withdrawn key, or not issued by this server): there is nothing left for it to revoke")
	case err != nil:
		h.fail(c, err)
	default:
		c.Header("Cache-Control", "no-store")
		c.Status(http.StatusOK)
	}
}

// revokeRequest reads token= (and the ignored token_type_hint) from a form (RFC 7009) or JSON
// body. It answers 400 itself when there is no token.
func revokeRequest(c *gin.Context) (api.RevokeRequest, bool) {
	var req api.RevokeRequest
	mt, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
	switch mt {
	case "application/x-www-form-urlencoded":
		if err := c.Request.ParseForm(); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				problem(c, http.StatusRequestEntityTooLarge, "the request body is larger than 1 MiB")
			} else {
				problem(c, http.StatusBadRequest, "the form body could not be parsed")
			}
			return req, false
		}
		f := c.Request.PostForm
		if len(f["token"]) > 1 {
			problem(c, http.StatusBadRequest, "token is repeated: send it once")
			return req, false
		}
		req = api.RevokeRequest{Token: f.Get("token"), TokenTypeHint: f.Get("token_type_hint")}
	case "application/json":
		dec := json.NewDecoder(c.Request.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil || dec.More() {
			problem(c, http.StatusBadRequest, "the JSON body must be one object with token (and optionally token_type_hint)")
			return req, false
		}
	default:
		problem(c, http.StatusBadRequest, "send token=<access token> as application/x-www-form-urlencoded (RFC 7009) or as JSON")
		return req, false
	}
	if req.Token == "" {
		problem(c, http.StatusBadRequest, "token is missing: send token=<the access token to revoke>")
		return req, false
	}
	return req, true
}
