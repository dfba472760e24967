package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
)

// These tests drive the real binary, the way an operator does: `make run` (serve --dev) and
// `trustgate keys …` on the same database while the server runs.

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "trustgate-cmd-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "trustgate")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building trustgate: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type proc struct {
	cmd    *exec.Cmd
	url    string
	stdout *bytes.Buffer
	done   chan error
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// serve starts `trustgate serve args…` in dir and waits for its "listening" line.
func serve(t *testing.T, dir string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, stdout: &bytes.Buffer{}, done: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			p.stdout.WriteString(sc.Text() + "\n")
			if u, ok := strings.CutPrefix(sc.Text(), "trustgate listening on "); ok {
				ready <- u
			}
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done //nolint:errcheck // killed on purpose: its exit status says nothing
	})
	select {
	case p.url = <-ready:
		return p
	case err := <-p.done:
		p.done <- err
		t.Fatalf("trustgate serve exited before listening: %v\n%s", err, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("trustgate serve did not listen within 30s\n%s", stderr.String())
	}
	return nil
}

func keysCLI(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"keys"}, args...)...)
	cmd.Dir = dir
	cmd.Env = os.Environ()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stderr.String(), err
	}
	return stdout.String(), nil
}

func whoami(t *testing.T, url, key string) (*api.Whoami, error) {
	t.Helper()
	c, err := apiclient.New(url, key)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Whoami(ctx)
}

var devKeyLine = regexp.MustCompile(`TRUSTGATE_(DEVOPS|SECURITY)_KEY=(\S+)`)

func TestDevServePrintsWorkingKeysOnceAndKeysCreateWorksAgainstIt(t *testing.T) {
	dir := t.TempDir()
	p := serve(t, dir, nil, "--dev", "--listen", freeAddr(t))

	keys := map[string]string{}
	for _, m := range devKeyLine.FindAllStringSubmatch(p.stdout.String(), -1) {
		keys[m[1]] = m[2]
	}
	if len(keys) != 2 {
		t.Fatalf("serve --dev printed %d bootstrap keys, want 2:\n%s", len(keys), p.stdout)
	}
	for kind, role := range map[string]string{"DEVOPS": api.RoleDevOpsAdmin, "SECURITY": api.RoleSecurityAdmin} {
		who, err := whoami(t, p.url, keys[kind])
		if err != nil || who.Role != role {
			t.Fatalf("the printed %s key: whoami = %+v, %v; want role %s", kind, who, err, role)
		}
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
	if who, err := whoami(t, p.url, key); err != nil || who.Name != "alice" || who.Role != api.RoleAuditor {
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
	if _, err := whoami(t, p.url, key); apiclient.StatusCode(err) != http.StatusUnauthorized {
		t.Fatalf("a revoked key: %v, want 401", err)
	}

	// A restart on the same database keeps the keys and prints none.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-p.done; err != nil {
		t.Fatalf("SIGTERM: trustgate serve exited with %v, want a clean exit", err)
	}
	p.done <- nil
	again := serve(t, dir, nil, "--dev", "--listen", freeAddr(t))
	if devKeyLine.MatchString(again.stdout.String()) {
		t.Errorf("a restart printed bootstrap keys again:\n%s", again.stdout)
	}
	if _, err := whoami(t, again.url, keys["SECURITY"]); err != nil {
		t.Errorf("the bootstrap key after a restart: %v", err)
	}
}

func TestServeWithoutKEKOutsideDevSaysHowToMakeOne(t *testing.T) {
	cmd := exec.Command(bin, "serve", "--listen", freeAddr(t), "--database", "sqlite://"+filepath.Join(t.TempDir(), "x.db"))
	cmd.Env = append(os.Environ(), "TRUSTGATE_KEK=")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "openssl rand -base64 32") {
		t.Fatalf("serve without a KEK: %v %q; want a failure that says how to make a key", err, out)
	}
}

func TestFlagsWinOverEnvironment(t *testing.T) {
	dir := t.TempDir()
	envAddr, flagAddr := freeAddr(t), freeAddr(t)
	p := serve(t, dir, []string{"TRUSTGATE_LISTEN=" + envAddr}, "--dev", "--listen", flagAddr)
	if p.url != "http://"+flagAddr {
		t.Fatalf("listening on %s, want the flag's %s", p.url, flagAddr)
	}
	q := serve(t, t.TempDir(), []string{"TRUSTGATE_LISTEN=" + envAddr, "TRUSTGATE_PUBLIC_URL=https://tg.example.com"}, "--dev")
	if q.url != "http://"+envAddr {
		t.Fatalf("listening on %s, want TRUSTGATE_LISTEN's %s", q.url, envAddr)
	}
	resp, err := http.Get(q.url + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	if !strings.Contains(b.String(), `"issuer":"https://tg.example.com"`) {
		t.Errorf("TRUSTGATE_PUBLIC_URL not used as the issuer: %s", b.String())
	}
}

// SIGTERM lets in-flight requests finish: a slow JWKS fetch in progress when the signal arrives
// still gets its answer, and the process exits cleanly.
func TestSIGTERMDrainsInFlightRequests(t *testing.T) {
	dir := t.TempDir()
	p := serve(t, dir, nil, "--dev", "--listen", freeAddr(t))
	key := devKeyLine.FindAllStringSubmatch(p.stdout.String(), -1)[0][2]

	slow := make(chan struct{})
	jwks := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(slow)
		time.Sleep(1500 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"keys":[]}`))
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = jwks.Serve(ln) }()
	t.Cleanup(func() { _ = jwks.Close() })

	c, _ := apiclient.New(p.url, key)
	ctx := context.Background()
	val := "x"
	if _, err := c.CreateConnection(ctx, api.ConnectionInput{Name: "drain", JWKSURL: "http://" + ln.Addr().String() + "/jwks",
		Conditions: []api.Condition{{Claim: "iss", Operator: api.OpEquals, Value: &val}, {Claim: "aud", Operator: api.OpEquals, Value: &val}}}); err != nil {
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
	<-slow // the request is in flight, waiting on the JWKS
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	a := <-got
	if a.err != nil || a.res == nil || a.res.WouldIssue {
		t.Fatalf("the in-flight request during shutdown: %+v, %v; want its answer (would_issue false)", a.res, a.err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the server did not exit within 20s of SIGTERM")
	}
}

// The server collects garbage less often than Go's default unless the operator says otherwise:
// GOGC in the environment wins. /metrics shows the setting in force (go_gc_gogc_percent).
func TestServeGCTargetDefaultsTo400AndGOGCWins(t *testing.T) {
	if v, ok := os.LookupEnv("GOGC"); ok {
		_ = os.Unsetenv("GOGC")
		t.Cleanup(func() { _ = os.Setenv("GOGC", v) })
	}
	gogc := func(p *proc) string {
		t.Helper()
		resp, err := http.Get(p.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		m := regexp.MustCompile(`(?m)^go_gc_gogc_percent (\S+)$`).FindStringSubmatch(b.String())
		if m == nil {
			t.Fatalf("/metrics has no go_gc_gogc_percent:\n%s", b.String())
		}
		return m[1]
	}
	if got := gogc(serve(t, t.TempDir(), nil, "--dev", "--listen", freeAddr(t))); got != "400" {
		t.Errorf("GC target without GOGC = %s, want 400", got)
	}
	if got := gogc(serve(t, t.TempDir(), []string{"GOGC=150"}, "--dev", "--listen", freeAddr(t))); got != "150" {
		t.Errorf("GC target with GOGC=150 = %s, want 150", got)
	}
}
