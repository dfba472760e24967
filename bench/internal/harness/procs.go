package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// proc is a child process (trustgate serve, dev-issuer) whose stderr goes to a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan error
}

// startProc runs bin args with env added, and waits (up to 60 s) for a stdout line matching ready;
// it returns the first submatch of that line.
func startProc(ctx context.Context, name, bin string, args, env []string, logDir string, ready *regexp.Regexp) (*proc, string, error) {
	logPath := filepath.Join(logDir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, "", fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan error, 1)}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if m := ready.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- m[len(m)-1]
				sent = true
			}
		}
		_, _ = io.Copy(logf, out)
		p.done <- cmd.Wait()
		logf.Close()
	}()
	select {
	case m := <-found:
		return p, m, nil
	case err := <-p.done:
		p.done <- err
		return nil, "", fmt.Errorf("%s exited before it was ready (%v); its log: %s\n%s", name, err, logPath, tail(logPath))
	case <-time.After(60 * time.Second):
		_ = p.stop()
		return nil, "", fmt.Errorf("%s was not ready after 60 s; its log: %s\n%s", name, logPath, tail(logPath))
	case <-ctx.Done():
		_ = p.stop()
		return nil, "", ctx.Err()
	}
}

// stop asks the process to finish (SIGTERM: trustgate flushes its audit writer) and kills it after
// 30 s. It returns the process's exit error, if any besides the signal.
func (p *proc) stop() error {
	if p == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		var ee *exec.ExitError
		if errors.As(err, &ee) && !ee.Exited() {
			return nil // ended by the signal
		}
		return err
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		return fmt.Errorf("%s did not stop within 30 s after SIGTERM; killed", p.name)
	}
}

// tail returns the last lines of a log file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

// runCmd runs bin args to completion and returns its trimmed stdout.
func runCmd(ctx context.Context, bin string, args, env []string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}
