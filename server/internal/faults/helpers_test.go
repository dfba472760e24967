package faults_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/testdb"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
)

// binPath is the trustgate binary built once by TestMain.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "trustgate-faults-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults: temp dir:", err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "trustgate")
	start := time.Now()
	build := exec.Command("go", "build", "-o", binPath, "github.com/trustgate/terraform-provider-trustgate/server/cmd/trustgate")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "faults: building the trustgate binary:", err)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "faults: built %s in %s\n", binPath, time.Since(start).Round(time.Millisecond))
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// publicURL is the one public URL that replicas share behind their (imaginary) load balancer.
const publicURL = "https://trustgate.faults.test"

// audience is the aud of the CI tokens the test issuer mints.
const audience = "https://trustgate.faults.test/ci"

// ---------------------------------------------------------------------------------------------
// Databases

// requirePostgres returns the DSN of a fresh PostgreSQL database, or skips the test (saying why)
// when TRUSTGATE_TEST_POSTGRES_URL is not set. With TRUSTGATE_REQUIRE_POSTGRES set it fails instead.
func requirePostgres(t *testing.T) string {
	t.Helper()
	if testdb.PostgresURL() == "" {
		if os.Getenv("TRUSTGATE_REQUIRE_POSTGRES") != "" {
			t.Fatalf("%s is not set but TRUSTGATE_REQUIRE_POSTGRES is: run through scripts/faults.sh", testdb.EnvPostgresURL)
		}
		t.Skipf("needs PostgreSQL: set %s (scripts/faults.sh does)", testdb.EnvPostgresURL)
	}
	return testdb.DSN(t)
}

func sqliteDSN(t *testing.T) string {
	return "sqlite://" + filepath.Join(t.TempDir(), "trustgate.db")
}

// deployment is one database with its key-encryption key and API keys: what the servers of one
// installation share.
type deployment struct {
	DSN     string
	KEKFile string
	dir     string

	mu                        sync.Mutex
	devops, security, auditor string
}

func newDeployment(t *testing.T, dsn string) *deployment {
	t.Helper()
	dir := t.TempDir()
	kek := make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	kekFile := filepath.Join(dir, "kek")
	if err := os.WriteFile(kekFile, []byte(base64.StdEncoding.EncodeToString(kek)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &deployment{DSN: dsn, KEKFile: kekFile, dir: dir}
}

// ensureKeys creates the three principals with `trustgate keys create` (once).
func (d *deployment) ensureKeys(t *testing.T) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.devops != "" {
		return
	}
	d.devops = d.createKey(t, "devops", api.RoleDevOpsAdmin)
	d.security = d.createKey(t, "security", api.RoleSecurityAdmin)
	d.auditor = d.createKey(t, "auditor", api.RoleAuditor)
}

func (d *deployment) createKey(t *testing.T, name, role string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(binPath, "keys", "create", "--name", name, "--role", role, "--database", d.DSN)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("trustgate keys create --name %s: %v\n%s", name, err, stderr.String())
	}
	key := strings.TrimSpace(stdout.String())
	if !strings.HasPrefix(key, "tg_") {
		t.Fatalf("trustgate keys create printed something that is not an API key (%d bytes)", len(key))
	}
	return key
}

// ---------------------------------------------------------------------------------------------
// trustgate serve processes

// server is one `trustgate serve` process.
type server struct {
	t       *testing.T
	name    string
	d       *deployment
	extra   []string
	listen  string
	cmd     *exec.Cmd
	URL     string
	logPath string
	exited  chan struct{}
	urlCh   chan string
	killed  atomic.Bool
}

type serverOpt func(*server)

// withFlags adds flags to `trustgate serve`.
func withFlags(f ...string) serverOpt { return func(s *server) { s.extra = append(s.extra, f...) } }

// startServer starts `trustgate serve` on d and waits until it answers /healthz.
func startServer(t *testing.T, name string, d *deployment, opts ...serverOpt) *server {
	t.Helper()
	s := launch(t, name, d, opts...)
	s.waitListening(t)
	return s
}

// launch starts the process without waiting (for replicas that must start at the same moment).
func launch(t *testing.T, name string, d *deployment, opts ...serverOpt) *server {
	t.Helper()
	s := &server{t: t, name: name, d: d, listen: "127.0.0.1:0", exited: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	logf, err := os.CreateTemp(d.dir, name+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	s.logPath = logf.Name()
	args := append([]string{"serve", "--listen", s.listen, "--database", d.DSN, "--kek-file", d.KEKFile,
		"--public-url", publicURL, "--allow-insecure-jwks", "--log-level", "warn"}, s.extra...)
	s.cmd = exec.Command(binPath, args...)
	s.cmd.Stderr = logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "trustgate listening on "); ok {
				select {
				case urls <- u:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		_ = s.cmd.Wait()
		_ = logf.Close()
		close(s.exited)
	}()
	s.urlCh = urls
	t.Cleanup(s.stop)
	return s
}

func (s *server) waitListening(t *testing.T) {
	t.Helper()
	select {
	case u := <-s.urlCh:
		s.URL = u
	case <-s.exited:
		t.Fatalf("%s exited before listening:\n%s", s.name, s.logTail())
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not start listening within 60 s:\n%s", s.name, s.logTail())
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/healthz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer /healthz: %v\n%s", s.name, err, s.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill9 ends the process with SIGKILL: no graceful shutdown, no flush.
func (s *server) kill9(t *testing.T) {
	t.Helper()
	s.killed.Store(true)
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %s: %v", s.name, err)
	}
	<-s.exited
}

// stop ends the process gracefully (SIGTERM), escalating to SIGKILL after 20 s.
func (s *server) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.exited
	}
	if s.t.Failed() {
		s.t.Logf("log of %s:\n%s", s.name, s.logTail())
	}
}

func (s *server) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func (s *server) client(t *testing.T, key string) *apiclient.Client {
	t.Helper()
	c, err := apiclient.New(s.URL, key, apiclient.WithHTTPClient(&http.Client{Timeout: 30 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (s *server) devops(t *testing.T) *apiclient.Client {
	s.d.ensureKeys(t)
	return s.client(t, s.d.devops)
}

func (s *server) security(t *testing.T) *apiclient.Client {
	s.d.ensureKeys(t)
	return s.client(t, s.d.security)
}

func (s *server) auditor(t *testing.T) *apiclient.Client {
	s.d.ensureKeys(t)
	return s.client(t, s.d.auditor)
}

// jwks fetches /.well-known/jwks.json.
func (s *server) jwks(t *testing.T) []byte {
	t.Helper()
	resp, err := http.Get(s.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatalf("GET %s JWKS: %v", s.name, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s JWKS: %d %v", s.name, resp.StatusCode, err)
	}
	return b
}

// kids lists the key ids of a JWKS.
func kids(t *testing.T, jwks []byte) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatalf("JWKS is not JSON: %v", err)
	}
	out := []string{}
	for _, k := range set.Keys {
		out = append(out, k.Kid)
	}
	sort.Strings(out)
	return out
}

// verifyAccessToken checks an access token's signature against a JWKS, and its issuer and
// audience, and returns its claims.
func verifyAccessToken(t *testing.T, jwks []byte, token string) jwt.MapClaims {
	t.Helper()
	kf, err := keyfunc.NewJWKSetJSON(jwks)
	if err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(token, claims, kf.Keyfunc, jwt.WithValidMethods([]string{"ES256"}),
		jwt.WithIssuer(publicURL), jwt.WithAudience(publicURL), jwt.WithExpirationRequired()); err != nil {
		t.Fatalf("access token does not verify with the JWKS: %v", err)
	}
	return claims
}

// unverifiedPart decodes the header (0) or payload (1) of a JWT without checking it.
func unverifiedPart(t *testing.T, token string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS compact token (%d parts)", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatalf("JWT part %d: %v", i, err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("JWT part %d: %v", i, err)
	}
	return m
}

// ---------------------------------------------------------------------------------------------
// A CI issuer whose JWKS endpoint can break

type jwksMode int32

const (
	jwksOK   jwksMode = iota
	jwksGone          // 503 on every request
	jwksSlow          // sleeps 10 s before answering
)

// ciIssuer is a dev issuer (in this process) serving its JWKS over loopback HTTP.
type ciIssuer struct {
	*devissuer.Issuer
	URL     string
	JWKSURL string
	srv     *httptest.Server
	mode    atomic.Int32
	hits    atomic.Int64
	done    chan struct{}
}

func startIssuer(t *testing.T) *ciIssuer {
	t.Helper()
	di, err := devissuer.New(devissuer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	i := &ciIssuer{Issuer: di, done: make(chan struct{})}
	h := di.Handler()
	i.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i.hits.Add(1)
		switch jwksMode(i.mode.Load()) {
		case jwksGone:
			http.Error(w, "gone", http.StatusServiceUnavailable)
			return
		case jwksSlow:
			select {
			case <-time.After(10 * time.Second):
			case <-r.Context().Done():
				return
			case <-i.done:
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		close(i.done)
		i.srv.Close()
	})
	i.URL = i.srv.URL
	i.JWKSURL = i.srv.URL + "/.well-known/jwks.json"
	di.SetIssuer(i.URL)
	return i
}

func (i *ciIssuer) setMode(m jwksMode) { i.mode.Store(int32(m)) }

// token mints a generic CI token that the connections of this package accept.
func (i *ciIssuer) token(t *testing.T) string {
	t.Helper()
	tok, err := i.Mint("generic", map[string]any{"iss": i.URL, "aud": audience, "sub": "repo:acme/app:ref:refs/heads/main"}, 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// connectionInput is a generic connection pinned to the issuer and audience.
func (i *ciIssuer) connectionInput(name string) api.ConnectionInput {
	iss, aud := i.URL, audience
	return api.ConnectionInput{
		Name: name, ProviderType: api.ProviderGeneric, JWKSURL: i.JWKSURL,
		Conditions: []api.Condition{
			{Claim: "iss", Operator: api.OpEquals, Value: &iss},
			{Claim: "aud", Operator: api.OpEquals, Value: &aud},
		},
	}
}

// ---------------------------------------------------------------------------------------------
// Admin helpers

func ctxT(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// createActive creates a connection through s as DevOps and activates it as Security.
func createActive(t *testing.T, s *server, in api.ConnectionInput) *api.Connection {
	t.Helper()
	c, err := s.devops(t).CreateConnection(ctxT(t), in)
	if err != nil {
		t.Fatalf("creating %s: %v", in.Name, err)
	}
	return setStatus(t, s, c, api.StatusActive)
}

func setStatus(t *testing.T, s *server, c *api.Connection, status string) *api.Connection {
	t.Helper()
	out, err := s.security(t).SetStatus(ctxT(t), c.Name, api.StatusChange{Status: status, ApprovedFingerprint: c.Fingerprint}, 0)
	if err != nil {
		t.Fatalf("setting %s to %s: %v", c.Name, status, err)
	}
	if out.Status != status {
		t.Fatalf("%s is %s after the change, want %s", c.Name, out.Status, status)
	}
	return out
}

// exchangeResult is the raw answer of POST /v1/token.
type exchangeResult struct {
	Status     int
	Err        error // transport error
	Body       []byte
	Token      string
	OAuthError string
	RetryAfter string
	Elapsed    time.Duration
}

var tokenClient = &http.Client{Timeout: 30 * time.Second}

// exchange posts an RFC 8693 form to base/v1/token.
func exchange(base, connection, subjectToken string, header http.Header) exchangeResult {
	form := url.Values{
		"grant_type":         {api.GrantTypeTokenExchange},
		"subject_token":      {subjectToken},
		"subject_token_type": {api.TokenTypeJWT},
		"connection":         {connection},
	}
	return postToken(tokenClient, base, "application/x-www-form-urlencoded", []byte(form.Encode()), header)
}

func postToken(hc *http.Client, base, contentType string, body []byte, header http.Header) exchangeResult {
	start := time.Now()
	req, err := http.NewRequest(http.MethodPost, base+"/v1/token", bytes.NewReader(body))
	if err != nil {
		return exchangeResult{Err: err}
	}
	req.Header.Set("Content-Type", contentType)
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := hc.Do(req)
	if err != nil {
		return exchangeResult{Err: err, Elapsed: time.Since(start)}
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	r := exchangeResult{Status: resp.StatusCode, Body: b, Err: err, RetryAfter: resp.Header.Get("Retry-After"), Elapsed: time.Since(start)}
	if err != nil {
		return r
	}
	if resp.StatusCode == http.StatusOK {
		var ok api.TokenResponse
		if json.Unmarshal(b, &ok) == nil {
			r.Token = ok.AccessToken
		}
	} else {
		var e api.OAuthError
		if json.Unmarshal(b, &e) == nil {
			r.OAuthError = e.Error
		}
	}
	return r
}

func (r exchangeResult) String() string {
	if r.Err != nil {
		return "transport error: " + r.Err.Error()
	}
	if r.Token != "" {
		return fmt.Sprintf("%d with an access token (not shown)", r.Status) // never log a token
	}
	return fmt.Sprintf("%d %s", r.Status, bytes.TrimSpace(r.Body))
}

// allAuditEvents pages through every audit event the client may read.
func allAuditEvents(t *testing.T, c *apiclient.Client, o apiclient.AuditOptions) []api.AuditEvent {
	t.Helper()
	o.Limit = 500
	var out []api.AuditEvent
	for {
		page, err := c.ListAuditEvents(ctxT(t), o)
		if err != nil {
			t.Fatalf("listing audit events: %v", err)
		}
		out = append(out, page.Items...)
		if page.NextCursor == "" {
			return out
		}
		o.Cursor = page.NextCursor
	}
}

// rawRequest sends one admin request with full control over path, headers and body.
type rawResponse struct {
	Status  int
	Header  http.Header
	Body    []byte
	Problem api.Problem
	// IsProblem is true when the answer is application/problem+json whose status matches.
	IsProblem bool
}

// noRedirects shows redirects as they are instead of following them.
var noRedirects = &http.Client{Timeout: 30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func rawDo(t *testing.T, method, rawURL, key, contentType string, body []byte, header http.Header) rawResponse {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, rawURL, rd)
	if err != nil {
		t.Fatalf("building %s %s: %v", method, rawURL, err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	r := rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		if err := json.Unmarshal(b, &r.Problem); err == nil && r.Problem.Status == resp.StatusCode &&
			r.Problem.Type != "" && r.Problem.Title != "" && r.Problem.Detail != "" {
			r.IsProblem = true
		}
	}
	return r
}

// waitFor polls cond every 10 ms until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// summary prints a FAULTS: line that scripts/faults.sh collects.
func summary(t *testing.T, format string, args ...any) {
	t.Helper()
	line := "FAULTS: " + fmt.Sprintf(format, args...)
	t.Log(line)
	fmt.Println(line)
}
