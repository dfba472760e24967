package main

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
	"github.com/trustgate/terraform-provider-trustgate/internal/devissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/ciissuer"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit/testdb"
)

// The key lifecycle commands against the real binary, on the database the test kit picks, while
// a server runs on it: `kek rotate` then restarts with the new KEK alone, the old one, and both;
// `keys rotate-signing` planned and --compromised; `trustgate revoke`.

// kekFile writes a fresh base64 KEK to a file and returns its path.
func kekFile(t *testing.T) string {
	t.Helper()
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "kek")
	if err := os.WriteFile(p, []byte(base64.StdEncoding.EncodeToString(raw)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// cli runs `trustgate args…` and returns stdout, failing the test (with stderr) if it fails.
func cli(t *testing.T, env []string, args ...string) string {
	t.Helper()
	stdout, stderr, err := testkit.RunTrustgate(t, "", env, args...)
	if err != nil {
		t.Fatalf("trustgate %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return stdout
}

// kids are the kids the server publishes, in its JWKS order.
func kids(t *testing.T, p *testkit.Proc) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	p.Do(t, testkit.Request{Method: http.MethodGet, Path: "/.well-known/jwks.json"}).WantStatus(t, http.StatusOK).Decode(t, &set)
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.Kid)
	}
	return out
}

// eventually waits, up to 30 s, for a server to pick up what a command changed in the database
// (its next poll). Nothing is measured: server/internal/faults measures how fast.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not pick up within 30 s: %s", what)
		}
	}
}

// refusesToStart launches `trustgate serve args…` and returns its log once it has exited, failing
// the test if it serves instead.
func refusesToStart(t *testing.T, args ...string) string {
	t.Helper()
	p := testkit.Launch(t, testkit.ServeOptions{Name: "refusing", Args: args})
	err, exited := p.Wait(60 * time.Second)
	if !exited {
		t.Fatalf("trustgate serve %s is still running after 60 s; want a refusal to start", strings.Join(args, " "))
	}
	if err == nil {
		t.Fatalf("trustgate serve %s exited cleanly; want a failure", strings.Join(args, " "))
	}
	return p.Stderr()
}

func TestKEKRotateThenRestartWithOnlyTheNewKEK(t *testing.T) {
	db := testdb.DSN(t)
	oldKEK, newKEK := kekFile(t), kekFile(t)
	oldID := strings.TrimSpace(cli(t, nil, "kek", "id", "--kek-file", oldKEK))
	newID := strings.TrimSpace(cli(t, []string{"TRUSTGATE_KEK=" + readFile(t, newKEK)}, "kek", "id"))
	if !strings.HasPrefix(oldID, "kek-") || oldID == newID {
		t.Fatalf("kek id printed %q and %q", oldID, newID)
	}
	p := serve(t, "", nil, "--database", db, "--kek-file", oldKEK)
	before := kids(t, p)

	// kek rotate while the server runs: it keeps serving with the keys it has opened.
	out := cli(t, nil, "kek", "rotate", "--database", db, "--kek-file", oldKEK, "--new-kek-file", newKEK)
	if !strings.Contains(out, "re-sealed 1 signing key(s) under "+newID) {
		t.Fatalf("kek rotate printed %q", out)
	}
	if got := kids(t, p); !slices.Equal(got, before) {
		t.Fatalf("after kek rotate the running server publishes %v, want %v", got, before)
	}
	if err := p.Terminate(t); err != nil {
		t.Fatal(err)
	}

	// The old KEK alone no longer opens the keys: the server refuses to start and names the KEK.
	log := refusesToStart(t, "--database", db, "--kek-file", oldKEK)
	for _, want := range []string{newID, oldID, "TRUSTGATE_KEK"} {
		if !strings.Contains(log, want) {
			t.Errorf("the refusal does not mention %q:\n%s", want, log)
		}
	}
	// The new one alone does, and so do both (the rolling restart); the signing key is the same.
	for _, args := range [][]string{
		{"--database", db, "--kek-file", newKEK},
		{"--database", db, "--kek-file", newKEK, "--kek-previous-file", oldKEK},
	} {
		q := serve(t, "", nil, args...)
		if got := kids(t, q); !slices.Equal(got, before) {
			t.Errorf("serve %v publishes %v, want %v", args, got, before)
		}
		if err := q.Terminate(t); err != nil {
			t.Fatal(err)
		}
	}
	// kek rotate with a KEK that opens nothing changes nothing and says which one it needs.
	stdout, stderr, err := testkit.RunTrustgate(t, "", []string{"TRUSTGATE_KEK=" + readFile(t, oldKEK), "TRUSTGATE_NEW_KEK=" + readFile(t, kekFile(t))},
		"kek", "rotate", "--database", db)
	if err == nil || !strings.Contains(stderr, newID) {
		t.Errorf("kek rotate with the old KEK: %v %q %q; want a refusal naming %s", err, stdout, stderr, newID)
	}
	serve(t, "", nil, "--database", db, "--kek-file", newKEK)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestRotateSigningWhileServing(t *testing.T) {
	db := testdb.DSN(t)
	kek := kekFile(t)
	p := serve(t, "", nil, "--database", db, "--kek-file", kek)
	k1 := kids(t, p)
	if len(k1) != 1 {
		t.Fatalf("a fresh server publishes %v, want one key", k1)
	}

	// Planned: published now (the running server picks it up at its next poll), signing in an hour.
	out := cli(t, nil, "keys", "rotate-signing", "--database", db, "--kek-file", kek, "--actor", "ops")
	if !strings.Contains(out, "is published now and signs from") || !strings.Contains(out, k1[0]) {
		t.Fatalf("rotate-signing printed %q", out)
	}
	eventually(t, "the next key in the JWKS", func() bool { return len(kids(t, p)) == 2 })
	published := kids(t, p)

	// A wrong KEK is refused before anything is written.
	if _, stderr, err := testkit.RunTrustgate(t, "", nil, "keys", "rotate-signing", "--compromised", "--database", db, "--kek-file", kekFile(t)); err == nil || !strings.Contains(stderr, "TRUSTGATE_KEK") {
		t.Fatalf("rotate-signing with another KEK: %v %s", err, stderr)
	}

	// Compromised: every published key goes at once, a new one signs.
	out = cli(t, []string{"TRUSTGATE_KEK=" + readFile(t, kek)}, "keys", "rotate-signing", "--compromised", "--database", db, "--actor", "oncall")
	if !strings.Contains(out, "withdrew 2 key(s)") {
		t.Fatalf("rotate-signing --compromised printed %q", out)
	}
	eventually(t, "the withdrawal", func() bool {
		got := kids(t, p)
		return len(got) == 1 && !slices.Contains(published, got[0])
	})

	sec := strings.TrimSpace(cli(t, nil, "keys", "create", "--database", db, "--name", "sec", "--role", api.RoleSecurityAdmin))
	evs := testkit.AuditEvents(t, p.Client(t, sec), apiclient.AuditOptions{Action: api.ActionKeyRotate})
	if len(evs) != 2 || evs[0].Actor != "oncall" || evs[0].Detail["mode"] != "compromised" || evs[1].Actor != "ops" || evs[1].Detail["mode"] != "planned" {
		t.Errorf("key.rotate events %+v, want ops's planned rotation then oncall's compromise", evs)
	}
	// The commands' key.rotate events are in hash chains of their own, beside the server's: the
	// audit log still verifies (an event outside every chain would be reported as inserted).
	out, stderr, err := testkit.RunTrustgate(t, "", nil, "audit", "verify", "--database", db, "--jwks", p.URL+"/.well-known/jwks.json")
	if err != nil || !strings.Contains(out, "0 unchained") {
		t.Errorf("audit verify after the key commands: %v\n%s%s", err, out, stderr)
	}
}

func TestRevokeCLIGivesTheTokenBack(t *testing.T) {
	db := testdb.DSN(t)
	kek := kekFile(t)
	p := serve(t, "", nil, "--database", db, "--kek-file", kek, "--allow-insecure-jwks")
	iss := ciissuer.Start(t, devissuer.Options{})
	devops := strings.TrimSpace(cli(t, nil, "keys", "create", "--database", db, "--name", "dev", "--role", api.RoleDevOpsAdmin))
	sec := strings.TrimSpace(cli(t, nil, "keys", "create", "--database", db, "--name", "sec", "--role", api.RoleSecurityAdmin))
	testkit.NewAdmins(t, p.URL, devops, sec, "").CreateActive(t, testkit.GenericInput("ci", iss.URL, iss.JWKSURL, p.URL))
	grant := func() string {
		return testkit.MustGrant(t, p.Exchange("ci", iss.MustMint(t, "generic", map[string]any{"aud": p.URL})), time.Hour)
	}
	whoami := func(tok string) int {
		_, err := p.Client(t, tok).Whoami(t.Context())
		return apiclient.StatusCode(err)
	}

	byEnv, byDefault, byFile := grant(), grant(), grant()
	tokFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokFile, []byte(byFile+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, run := range []struct {
		tok  string
		env  []string
		args []string
	}{
		{byEnv, []string{"MY_TOKEN=" + byEnv}, []string{"--server", p.URL, "--token-env", "MY_TOKEN"}},
		{byDefault, []string{"TRUSTGATE_ACCESS_TOKEN=" + byDefault, "TRUSTGATE_SERVER=" + p.URL}, nil},
		{byFile, nil, []string{"--server", p.URL, "--token-file", tokFile}},
	} {
		stdout, stderr, err := testkit.RunTrustgate(t, "", run.env, append([]string{"revoke"}, run.args...)...)
		if err != nil || !strings.Contains(stdout, "access token revoked") {
			t.Fatalf("trustgate revoke %v: %v\n%s%s", run.args, err, stdout, stderr)
		}
		if strings.Contains(stdout+stderr, run.tok) {
			t.Error("trustgate revoke printed the access token")
		}
		if got := whoami(run.tok); got != http.StatusUnauthorized {
			t.Errorf("whoami with the revoked token: %d, want 401", got)
		}
	}
	// A token that is not this server's: a clear failure, non-zero exit.
	stdout, stderr, err := testkit.RunTrustgate(t, "", []string{"T=" + iss.MustMint(t, "generic", nil)}, "revoke", "--server", p.URL, "--token-env", "T")
	if err == nil || !strings.Contains(stderr, "401") {
		t.Errorf("revoking a CI token: %v %q %q; want a failure", err, stdout, stderr)
	}
}
