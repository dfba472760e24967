package testkit

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// trustgateBinary is the path RunWithTrustgate built.
var trustgateBinary string

// RunWithTrustgate is the TestMain of a package whose tests run the real trustgate binary: it
// builds the binary once, runs the tests and removes it. Use it as
// `func TestMain(m *testing.M) { os.Exit(testkit.RunWithTrustgate(m)) }`.
func RunWithTrustgate(m *testing.M) int {
	dir, err := os.MkdirTemp("", "trustgate-testkit-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "testkit: a directory for the trustgate binary:", err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	path := filepath.Join(dir, "trustgate")
	build := exec.Command("go", "build", "-o", path, "github.com/trustgate/terraform-provider-trustgate/server/cmd/trustgate")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "testkit: building the trustgate binary:", err)
		return 1
	}
	trustgateBinary = path
	return m.Run()
}

// trustgatePath is the path of the binary RunWithTrustgate built.
func trustgatePath(t testing.TB) string {
	t.Helper()
	if trustgateBinary == "" {
		t.Fatal("no trustgate binary: the package's TestMain must call testkit.RunWithTrustgate")
	}
	return trustgateBinary
}

// RunTrustgate runs `trustgate args…` in dir ("": the test's working directory) to its end and
// returns what it printed.
func RunTrustgate(t testing.TB, dir string, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(trustgatePath(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// ServeOptions configure a `trustgate serve` process.
type ServeOptions struct {
	Name string   // names the process in failure messages (default "trustgate")
	Args []string // flags after `trustgate serve`
	Env  []string // KEY=VALUE added to the test's environment
	Dir  string   // working directory (default: a fresh temporary directory)
}

// Proc is a `trustgate serve` process. Its Endpoint is known once it listens.
type Proc struct {
	Endpoint
	Name string

	t         testing.TB
	cmd       *exec.Cmd
	logPath   string // its standard error
	mu        sync.Mutex
	stdout    []string // lines so far
	listening chan string
	exited    chan struct{}
	exitErr   error // set before exited is closed
	killed    atomic.Bool
}

// Serve starts `trustgate serve` and waits until it listens and answers /healthz. It stops the
// process (SIGTERM) when the test ends.
func Serve(t testing.TB, o ServeOptions) *Proc {
	t.Helper()
	p := Launch(t, o)
	p.WaitListening(t)
	return p
}

// Launch starts `trustgate serve` without waiting for it (WaitListening does), for replicas that
// must start at the same moment. It listens on 127.0.0.1:0 unless the options name a listen
// address (--listen or TRUSTGATE_LISTEN); the address it got is read back from its
// "trustgate listening on http://ADDR" line.
func Launch(t testing.TB, o ServeOptions) *Proc {
	t.Helper()
	if o.Name == "" {
		o.Name = "trustgate"
	}
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	args := append([]string{"serve"}, o.Args...)
	if !namesListen(o) {
		args = append(args, "--listen", "127.0.0.1:0")
	}
	p := &Proc{Name: o.Name, t: t, listening: make(chan string, 1), exited: make(chan struct{})}
	p.PublicURL = publicURLOf(o)
	p.cmd = exec.Command(trustgatePath(t), args...)
	p.cmd.Dir = o.Dir
	p.cmd.Env = append(os.Environ(), o.Env...)
	logFile, err := os.CreateTemp(t.TempDir(), "trustgate-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = logFile.Close() }() // the process has its own descriptor
	p.logPath, p.cmd.Stderr = logFile.Name(), logFile
	pipe, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", p.Name, err)
	}
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			p.mu.Lock()
			p.stdout = append(p.stdout, sc.Text())
			p.mu.Unlock()
			if u, ok := strings.CutPrefix(sc.Text(), "trustgate listening on "); ok {
				select {
				case p.listening <- u:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, pipe)
		p.exitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.Stop)
	return p
}

func namesListen(o ServeOptions) bool {
	for _, a := range o.Args {
		if a == "--listen" || a == "-listen" || strings.HasPrefix(a, "--listen=") || strings.HasPrefix(a, "-listen=") {
			return true
		}
	}
	for _, e := range o.Env {
		if strings.HasPrefix(e, "TRUSTGATE_LISTEN=") {
			return true
		}
	}
	return false
}

// publicURLOf is the --public-url (or TRUSTGATE_PUBLIC_URL) the options give, "" for the default.
func publicURLOf(o ServeOptions) string {
	for i, a := range o.Args {
		if v, ok := strings.CutPrefix(a, "--public-url="); ok {
			return v
		}
		if a == "--public-url" && i+1 < len(o.Args) {
			return o.Args[i+1]
		}
	}
	for _, e := range o.Env {
		if v, ok := strings.CutPrefix(e, "TRUSTGATE_PUBLIC_URL="); ok {
			return v
		}
	}
	return ""
}

// WaitListening waits for the process's listening line, then until it answers /healthz.
func (p *Proc) WaitListening(t testing.TB) {
	t.Helper()
	select {
	case u := <-p.listening:
		p.URL = u
	case <-p.exited:
		t.Fatalf("%s exited before listening (%v):\n%s", p.Name, p.exitErr, p.Stderr())
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not start listening within 60 s:\n%s", p.Name, p.Stderr())
	}
	if p.PublicURL == "" {
		p.PublicURL = p.URL
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := p.httpClient().Get(p.URL + "/healthz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer /healthz: %v\n%s", p.Name, err, p.Stderr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stdout is everything the process printed on its standard output so far.
func (p *Proc) Stdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.stdout) == 0 {
		return ""
	}
	return strings.Join(p.stdout, "\n") + "\n"
}

// Stderr is the last 4000 bytes of its log (standard error).
func (p *Proc) Stderr() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Signal sends sig to the process.
func (p *Proc) Signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to %s: %v", sig, p.Name, err)
	}
}

// Wait waits up to timeout for the process to exit and returns its exit error; exited is false
// when it is still running.
func (p *Proc) Wait(timeout time.Duration) (err error, exited bool) {
	select {
	case <-p.exited:
		return p.exitErr, true
	case <-time.After(timeout):
		return nil, false
	}
}

// Terminate sends SIGTERM and waits up to 20 s for the exit, failing the test if the process
// keeps running; it returns the exit error (nil for a clean exit).
func (p *Proc) Terminate(t testing.TB) error {
	t.Helper()
	p.Signal(t, syscall.SIGTERM)
	err, exited := p.Wait(20 * time.Second)
	if !exited {
		t.Fatalf("%s did not exit within 20 s of SIGTERM", p.Name)
	}
	return err
}

// Kill9 ends the process with SIGKILL: no graceful shutdown, no flush.
func (p *Proc) Kill9(t testing.TB) {
	t.Helper()
	p.killed.Store(true)
	p.Signal(t, syscall.SIGKILL)
	<-p.exited
}

// Killed reports whether Kill9 was called.
func (p *Proc) Killed() bool { return p.killed.Load() }

// Stop ends the process gracefully (SIGTERM), escalating to SIGKILL after 20 s, and shows its log
// when the test failed. It runs when the test ends; calling it earlier is fine.
func (p *Proc) Stop() {
	select {
	case <-p.exited:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.exited
		}
	}
	if p.t.Failed() {
		p.t.Logf("log of %s:\n%s", p.Name, p.Stderr())
	}
}
