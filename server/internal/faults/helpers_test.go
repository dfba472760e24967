package faults_test

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
)

// EnvFaults switches this package's tests on. They run real processes for minutes and measure
// wall-clock behaviour, which a shared machine's scheduling disturbs, so they belong to
// `make test-faults` (scripts/faults.sh sets it), not to `make test`.
const EnvFaults = "TRUSTGATE_FAULTS"

func TestMain(m *testing.M) {
	if os.Getenv(EnvFaults) == "" {
		fmt.Printf("faults: every test of this package skipped: they measure real processes under faults; run them with make test-faults (or set %s=1)\n", EnvFaults)
		os.Exit(0)
	}
	os.Exit(testkit.RunWithTrustgate(m))
}

// publicURL is the one public URL that replicas share behind their (imaginary) load balancer.
const publicURL = "https://trustgate.faults.test"

// audience is the aud of the CI tokens the test issuer mints.
const audience = "https://trustgate.faults.test/ci"

// deployment is one database with its key-encryption key and API keys: what the servers of one
// installation share.
type deployment struct {
	DSN     string
	KEKFile string

	mu                        sync.Mutex
	devops, security, auditor string
}

func newDeployment(t *testing.T, dsn string) *deployment {
	t.Helper()
	kek := make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	kekFile := filepath.Join(t.TempDir(), "kek")
	if err := os.WriteFile(kekFile, []byte(base64.StdEncoding.EncodeToString(kek)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &deployment{DSN: dsn, KEKFile: kekFile}
}

// ensureKeys creates the three principals with `trustgate keys create` (once, when first needed:
// replicas that must start on an empty database start before).
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
	stdout, stderr, err := testkit.RunTrustgate(t, "", nil, "keys", "create", "--name", name, "--role", role, "--database", d.DSN)
	if err != nil {
		t.Fatalf("trustgate keys create --name %s: %v\n%s", name, err, stderr)
	}
	key := strings.TrimSpace(stdout)
	if !strings.HasPrefix(key, "tg_") {
		t.Fatalf("trustgate keys create printed something that is not an API key (%d bytes)", len(key))
	}
	return key
}

// server is one `trustgate serve` process of a deployment.
type server struct {
	*testkit.Proc
	d *deployment
}

// startServer starts `trustgate serve` on d with the extra flags and waits until it answers.
func startServer(t *testing.T, name string, d *deployment, flags ...string) *server {
	t.Helper()
	s := launch(t, name, d, flags...)
	s.WaitListening(t)
	return s
}

// launch starts the process without waiting (for replicas that must start at the same moment).
func launch(t *testing.T, name string, d *deployment, flags ...string) *server {
	t.Helper()
	args := append([]string{"--database", d.DSN, "--kek-file", d.KEKFile, "--public-url", publicURL,
		"--allow-insecure-jwks", "--log-level", "warn"}, flags...)
	return &server{Proc: testkit.Launch(t, testkit.ServeOptions{Name: name, Args: args}), d: d}
}

// admins are the deployment's principals' clients of this server.
func (s *server) admins(t *testing.T) testkit.Admins {
	t.Helper()
	s.d.ensureKeys(t)
	return testkit.NewAdmins(t, s.URL, s.d.devops, s.d.security, s.d.auditor)
}

// connectionInput is a generic connection trusting iss for the audience of this package's tokens.
func connectionInput(iss *ciissuer.Issuer, name string) api.ConnectionInput {
	return testkit.GenericInput(name, iss.URL, iss.JWKSURL, audience)
}

// ciToken mints a generic CI token of iss that connectionInput's connections accept.
func ciToken(t *testing.T, iss *ciissuer.Issuer) string {
	t.Helper()
	return iss.MustMintWith(t, devissuer.MintOptions{Shape: "generic", TTL: 30 * time.Minute,
		Claims: map[string]any{"iss": iss.URL, "aud": audience, "sub": "repo:acme/app:ref:refs/heads/main"}})
}

// startIssuer is a CI issuer with a fresh key.
func startIssuer(t *testing.T) *ciissuer.Issuer { return ciissuer.Start(t, devissuer.Options{}) }

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
