package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
)

// These tests drive the real binary, the way an operator does: `make run` (serve --dev) and
// `trustgate keys …` on the same database while the server runs.

func TestMain(m *testing.M) { os.Exit(testkit.RunWithTrustgate(m)) }

// serve starts `trustgate serve args…` in dir (on 127.0.0.1:0 unless args or env name an address)
// and waits until it listens.
func serve(t *testing.T, dir string, env []string, args ...string) *testkit.Proc {
	t.Helper()
	return testkit.Serve(t, testkit.ServeOptions{Dir: dir, Env: env, Args: args})
}

// keysCLI runs `trustgate keys args…` in dir: what it printed on stdout, or on stderr when it failed.
func keysCLI(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	stdout, stderr, err := testkit.RunTrustgate(t, dir, nil, append([]string{"keys"}, args...)...)
	if err != nil {
		return stderr, err
	}
	return stdout, nil
}

func whoami(t *testing.T, p *testkit.Proc, key string) (*api.Whoami, error) {
	t.Helper()
	return p.Client(t, key).Whoami(t.Context())
}

var devKeyLine = regexp.MustCompile(`TRUSTGATE_(DEVOPS|SECURITY)_KEY=(\S+)`)

func TestDevServePrintsWorkingKeysOnceAndKeysCreateWorksAgainstIt(t *testing.T) {
	dir := t.TempDir()
	p := serve(t, dir, nil, "--dev")

	keys := map[string]string{}
	for _, m := range devKeyLine.FindAllStringSubmatch(p.Stdout(), -1) {
		keys[m[1]] = m[2]
	}
	if len(keys) != 2 {
		t.Fatalf("serve --dev printed %d bootstrap keys, want 2:\n%s", len(keys), p.Stdout())
	}
	for kind, role := range map[string]string{"DEVOPS": api.RoleDevOpsAdmin, "SECURITY": api.RoleSecurityAdmin} {
		who, err := whoami(t, p, keys[kind])
		if err != nil || who.Role != role {
			t.Fatalf("the printed %s key: whoami = %+v, %v; want role %s", kind, who, err, role)
		}
	}
	if want := "review console: " + p.URL + "/ui/ (sign in with an API key: TRUSTGATE_SECURITY_KEY above"; !strings.Contains(p.Stdout(), want) {
		t.Errorf("serve --dev does not print the console's address and which key signs in (%q):\n%s", want, p.Stdout())
	}
	for _, f := range []string{"trustgate.db", "trustgate.kek"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("serve --dev should create %s in the working directory: %v", f, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "trustgate.kek")); err == nil && fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("trustgate.kek is readable by others: %v", fi.Mode())
	}

	// keys create on the same database while the server runs prints the key alone, and it works.
	out, err := keysCLI(t, dir, "create", "--name", "alice", "--role", api.RoleAuditor)
	if err != nil {
		t.Fatalf("keys create: %v: %s", err, out)
	}
	key := strings.TrimSpace(out)
	if strings.Count(out, "\n") != 1 || !strings.HasPrefix(key, "tg_") {
		t.Fatalf("keys create should print the key alone on one line, got %q", out)
	}
	if who, err := whoami(t, p, key); err != nil || who.Name != "alice" || who.Role != api.RoleAuditor {
		t.Fatalf("the created key: whoami = %+v, %v", who, err)
	}
	if out, err := keysCLI(t, dir, "create", "--name", "alice", "--role", api.RoleAuditor); err == nil || !strings.Contains(out, "already exists") {
		t.Errorf("a second key named alice: %v %q, want a refusal saying it exists", err, out)
	}
	if out, err := keysCLI(t, dir, "create", "--name", "bob", "--role", "root"); err == nil || !strings.Contains(out, api.RoleDevOpsAdmin) {
		t.Errorf("an unknown role: %v %q, want a refusal listing the roles", err, out)
	}
	list, err := keysCLI(t, dir, "list")
	if err != nil || !strings.Contains(list, "alice") || !strings.Contains(list, "devops") || strings.Contains(list, "tg_") {
		t.Fatalf("keys list = %q, %v; want names and roles, never keys", list, err)
	}
	if out, err := keysCLI(t, dir, "revoke", "alice"); err != nil {
		t.Fatalf("keys revoke: %v %s", err, out)
	}
	if _, err := whoami(t, p, key); apiclient.StatusCode(err) != http.StatusUnauthorized {
		t.Fatalf("a revoked key: %v, want 401", err)
	}

	// A restart on the same database keeps the keys and prints none.
	if err := p.Terminate(t); err != nil {
		t.Fatalf("SIGTERM: trustgate serve exited with %v, want a clean exit", err)
	}
	again := serve(t, dir, nil, "--dev")
	if devKeyLine.MatchString(again.Stdout()) {
		t.Errorf("a restart printed bootstrap keys again:\n%s", again.Stdout())
	}
	if _, err := whoami(t, again, keys["SECURITY"]); err != nil {
		t.Errorf("the bootstrap key after a restart: %v", err)
	}
}

func TestServeWithoutKEKOutsideDevSaysHowToMakeOne(t *testing.T) {
	stdout, stderr, err := testkit.RunTrustgate(t, t.TempDir(), []string{"TRUSTGATE_KEK="},
		"serve", "--listen", "127.0.0.1:0", "--database", "sqlite://"+filepath.Join(t.TempDir(), "x.db"))
	if out := stdout + stderr; err == nil || !strings.Contains(out, "openssl rand -base64 32") {
		t.Fatalf("serve without a KEK: %v %q; want a failure that says how to make a key", err, out)
	}
}

// The --listen flag wins over TRUSTGATE_LISTEN, which wins over the default. Each server listens on
// port 0 of a loopback address of its own (127.0.0.1 or 127.0.0.2), so the address it got says
// which setting it used.
func TestFlagsWinOverEnvironment(t *testing.T) {
	const fromEnv, fromFlag = "127.0.0.2", "127.0.0.1"
	p := serve(t, t.TempDir(), []string{"TRUSTGATE_LISTEN=" + fromEnv + ":0"}, "--dev", "--listen", fromFlag+":0")
	if !strings.HasPrefix(p.URL, "http://"+fromFlag+":") {
		t.Fatalf("listening on %s, want the flag's %s", p.URL, fromFlag)
	}
	q := serve(t, t.TempDir(), []string{"TRUSTGATE_LISTEN=" + fromEnv + ":0", "TRUSTGATE_PUBLIC_URL=https://tg.example.com"}, "--dev")
	if !strings.HasPrefix(q.URL, "http://"+fromEnv+":") {
		t.Fatalf("listening on %s, want TRUSTGATE_LISTEN's %s", q.URL, fromEnv)
	}
	doc := q.Do(t, testkit.Request{Method: http.MethodGet, Path: "/.well-known/openid-configuration"}).WantStatus(t, http.StatusOK).Body
	if !strings.Contains(string(doc), `"issuer":"https://tg.example.com"`) {
		t.Errorf("TRUSTGATE_PUBLIC_URL not used as the issuer: %s", doc)
	}
}

// SIGTERM lets in-flight requests finish: a JWKS fetch in progress when the signal arrives still
// gets its answer, and the process exits cleanly. The JWKS endpoint holds its answer until the
// server has stopped accepting connections (shutdown has begun), so nothing depends on timing.
func TestSIGTERMDrainsInFlightRequests(t *testing.T) {
	p := serve(t, t.TempDir(), nil, "--dev")
	key := devKeyLine.FindAllStringSubmatch(p.Stdout(), -1)[0][2]

	entered, release := make(chan struct{}), make(chan struct{})
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"keys":[]}`))
	}))
	t.Cleanup(jwks.Close)
	var releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(letGo) // before jwks.Close, which waits for the handler

	c := p.Client(t, key)
	ctx := context.Background()
	if _, err := c.CreateConnection(ctx, testkit.GenericInput("drain", "x", jwks.URL+"/jwks", "x")); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		res *api.TestResult
		err error
	}
	got := make(chan answer, 1)
	go func() {
		res, err := c.TestToken(ctx, "drain", "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsifQ.eyJpc3MiOiJ4In0.c2ln")
		got <- answer{res, err}
	}()
	<-entered // the request is in flight, waiting on the JWKS
	p.Signal(t, syscall.SIGTERM)
	waitRefusingConnections(t, strings.TrimPrefix(p.URL, "http://"))
	letGo()
	a := <-got
	if a.err != nil || a.res == nil || a.res.WouldIssue {
		t.Fatalf("the in-flight request during shutdown: %+v, %v; want its answer (would_issue false)", a.res, a.err)
	}
	err, exited := p.Wait(20 * time.Second)
	if !exited {
		t.Fatal("the server did not exit within 20s of SIGTERM")
	}
	if err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

// waitRefusingConnections waits until nothing accepts connections at addr any more.
func waitRefusingConnections(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		_ = conn.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections 20 s after SIGTERM", addr)
		}
	}
}

// The server collects garbage less often than Go's default unless the operator says otherwise:
// GOGC in the environment wins. /metrics shows the setting in force (go_gc_gogc_percent).
func TestServeGCTargetDefaultsTo400AndGOGCWins(t *testing.T) {
	if v, ok := os.LookupEnv("GOGC"); ok {
		_ = os.Unsetenv("GOGC")
		t.Cleanup(func() { _ = os.Setenv("GOGC", v) })
	}
	gogc := func(p *testkit.Proc) string {
		t.Helper()
		metrics := p.Do(t, testkit.Request{Method: http.MethodGet, Path: "/metrics"}).WantStatus(t, http.StatusOK).Body
		m := regexp.MustCompile(`(?m)^go_gc_gogc_percent (\S+)$`).FindSubmatch(metrics)
		if m == nil {
			t.Fatalf("/metrics has no go_gc_gogc_percent:\n%s", metrics)
		}
		return string(m[1])
	}
	if got := gogc(serve(t, t.TempDir(), nil, "--dev")); got != "400" {
		t.Errorf("GC target without GOGC = %s, want 400", got)
	}
	if got := gogc(serve(t, t.TempDir(), []string{"GOGC=150"}, "--dev")); got != "150" {
		t.Errorf("GC target with GOGC=150 = %s, want 150", got)
	}
}
