package ciclient

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// fakeJWT returns a string shaped like a JWT (three base64url parts) whose payload names tag, so
// tests can tell which source a token came from.
func fakeJWT(tag string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"ES256","kid":"k1"}`)) + "." +
		enc.EncodeToString([]byte(`{"sub":"`+tag+`"}`)) + "." +
		enc.EncodeToString([]byte("signature-"+tag))
}

// tokenEndpoint is a stand-in for POST /v1/token that answers like CONTRACT.md §4. Unless a test sets
// respond, it grants accepted tokens and refuses others with invalid_grant.
type tokenEndpoint struct {
	t        *testing.T
	srv      *httptest.Server
	accepted map[string]bool // subject tokens it grants

	mu       sync.Mutex
	requests []api.TokenRequest
	// respond, when set, answers the n-th request (0-based) instead of the default behaviour.
	respond func(n int, w http.ResponseWriter, req api.TokenRequest) bool
}

const issuedAccessToken = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ3b3JrbG9hZCJ9.c2lnbmVk"

func newTokenEndpoint(t *testing.T, accepted ...string) *tokenEndpoint {
	t.Helper()
	te := &tokenEndpoint{t: t, accepted: map[string]bool{}}
	for _, a := range accepted {
		te.accepted[a] = true
	}
	te.srv = httptest.NewServer(http.HandlerFunc(te.serve))
	t.Cleanup(te.srv.Close)
	return te
}

func (te *tokenEndpoint) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/token" {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Authorization") != "" {
		te.t.Errorf("token request carried an Authorization header; the CI token must be the only credential")
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		te.oauthError(w, http.StatusBadRequest, api.ErrInvalidRequest, "content type "+ct)
		return
	}
	if err := r.ParseForm(); err != nil {
		te.oauthError(w, http.StatusBadRequest, api.ErrInvalidRequest, "malformed form")
		return
	}
	req := api.TokenRequest{
		GrantType:        r.PostForm.Get("grant_type"),
		SubjectToken:     r.PostForm.Get("subject_token"),
		SubjectTokenType: r.PostForm.Get("subject_token_type"),
		Connection:       r.PostForm.Get("connection"),
		Audience:         r.PostForm.Get("audience"),
	}
	if _, sent := r.PostForm["audience"]; sent && req.Audience == "" {
		te.t.Errorf("an empty audience parameter was sent; leave it out")
	}
	te.mu.Lock()
	n := len(te.requests)
	te.requests = append(te.requests, req)
	respond := te.respond
	te.mu.Unlock()
	if respond != nil && respond(n, w, req) {
		return
	}
	switch {
	case req.GrantType != api.GrantTypeTokenExchange:
		te.oauthError(w, http.StatusBadRequest, api.ErrUnsupportedGrantType, "grant_type must be token-exchange")
	case req.SubjectTokenType != api.TokenTypeJWT && req.SubjectTokenType != api.TokenTypeIDToken:
		te.oauthError(w, http.StatusBadRequest, api.ErrInvalidRequest, "subject_token_type")
	case req.Connection != "deploy":
		te.oauthError(w, http.StatusBadRequest, api.ErrInvalidTarget, "no active connection named "+req.Connection+" (request req-1)")
	case !te.accepted[req.SubjectToken]:
		te.oauthError(w, http.StatusBadRequest, api.ErrInvalidGrant, "condition check failed (request req-2)")
	default:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(api.TokenResponse{
			AccessToken: issuedAccessToken, IssuedTokenType: api.TokenTypeJWT, TokenType: "Bearer", ExpiresIn: 1800,
		})
	}
}

func (te *tokenEndpoint) oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(api.OAuthError{Error: code, ErrorDescription: desc})
}

func (te *tokenEndpoint) received() []api.TokenRequest {
	te.mu.Lock()
	defer te.mu.Unlock()
	return append([]api.TokenRequest(nil), te.requests...)
}

// result is what one run of the command produced.
type result struct {
	stdout, stderr string
	err            error
}

// runCLI runs RunCLI with exactly the environment in env (nothing is read from the process).
func runCLI(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	getenv := func(k string) string { return env[k] }
	err := RunCLI(context.Background(), args, getenv, &stdout, &stderr)
	return result{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// noMetadata is a GCE_METADATA_HOST where nothing listens, so tests never reach a real one: port 0,
// which no server can listen on, so connecting is refused (unlike a port freed by a closed test
// server, which another process may take meanwhile).
func noMetadata(t *testing.T) string {
	t.Helper()
	return "127.0.0.1:0"
}

// assertNoSecret fails when the CI token shows up in anything the command printed.
func assertNoSecret(t *testing.T, r result, secret string) {
	t.Helper()
	if secret == "" {
		return
	}
	if strings.Contains(r.stderr, secret) || strings.Contains(r.stdout, secret) {
		t.Errorf("the CI token was printed; stdout=%q stderr=%q", r.stdout, r.stderr)
	}
	if r.err != nil && strings.Contains(r.err.Error(), secret) {
		t.Errorf("the CI token is in the returned error: %v", r.err)
	}
}
