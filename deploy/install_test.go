// Package deploy holds the tests of what users install Trustgate with: the release install script
// of the CI examples here, the Helm chart in helm/ (its own package).
package deploy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const script = "../examples/ci/install-trustgate.sh"

// release is a fake GitHub release: file name -> contents, served under /v<version>/.
type release map[string][]byte

func (r release) serve(t *testing.T, version string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		name, ok := strings.CutPrefix(req.URL.Path, "/v"+version+"/")
		body, found := r[name]
		if !ok || !found {
			http.NotFound(w, req)
			return
		}
		_, _ = w.Write(body) // a failed write shows up as the installer's download error
	}))
	t.Cleanup(srv.Close)
	return srv
}

// serverArchive is a trustgate_<v>_<os>_<arch>.tar.gz as GoReleaser writes it, with a stand-in
// binary that answers `trustgate version`.
func serverArchive(t *testing.T, version string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range map[string]string{
		"README.md": "# Trustgate\n",
		"trustgate": "#!/bin/sh\n[ \"$1\" = version ] && echo " + version + "\n",
	} {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	gz.Close()
	return buf.Bytes()
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

type run struct {
	stderr string
	err    error
	bin    string
}

func install(t *testing.T, releasesURL, version string) run {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("sh", script)
	cmd.Env = append(os.Environ(), "TRUSTGATE_RELEASES_URL="+releasesURL, "INSTALL_DIR="+dir, "HOME="+t.TempDir())
	if version != "" {
		cmd.Env = append(cmd.Env, "TRUSTGATE_VERSION="+version)
	} else {
		cmd.Env = append(cmd.Env, "TRUSTGATE_VERSION=")
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	return run{stderr: stderr.String(), err: err, bin: filepath.Join(dir, "trustgate")}
}

func TestInstallScriptInstallsAVerifiedRelease(t *testing.T) {
	for _, tool := range []string{"sh", "curl", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the install script needs %s, which is not on PATH", tool)
		}
	}
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skipf("releases of the server exist for linux and darwin, not %s", runtime.GOOS)
	}
	const version = "1.4.2"
	archive := fmt.Sprintf("trustgate_%s_%s_%s.tar.gz", version, runtime.GOOS, runtime.GOARCH)
	sums := "terraform-provider-trustgate_" + version + "_SHA256SUMS"
	good := serverArchive(t, version)
	other := serverArchive(t, "6.6.6")
	listing := func(sum string) []byte {
		return fmt.Appendf(nil, "%s  terraform-provider-trustgate_%s_linux_amd64.zip\n%s  %s\n%s  terraform-provider-trustgate_%s_manifest.json\n",
			sha([]byte("zip")), version, sum, archive, sha([]byte("manifest")), version)
	}

	t.Run("matching checksum installs the binary", func(t *testing.T) {
		srv := release{archive: good, sums: listing(sha(good))}.serve(t, version)
		r := install(t, srv.URL, "v"+version) // a leading v is accepted
		if r.err != nil {
			t.Fatalf("install failed: %v\n%s", r.err, r.stderr)
		}
		out, err := exec.Command(r.bin, "version").Output()
		if err != nil || strings.TrimSpace(string(out)) != version {
			t.Fatalf("installed binary says %q (%v), want %s", out, err, version)
		}
		if !strings.Contains(r.stderr, "installed trustgate "+version) {
			t.Errorf("stderr %q does not say what was installed", r.stderr)
		}
	})

	refusals := []struct {
		name    string
		release release
		version string
		want    string
	}{
		{"archive swapped on the server", release{archive: other, sums: listing(sha(good))}, version, "does not match the SHA-256"},
		{"archive missing from the checksums", release{archive: good, sums: listing(sha(good))[:0]}, version, "is not listed in " + sums},
		{"no such release", release{}, version, "404"},
		{"no version", release{archive: good, sums: listing(sha(good))}, "", "set TRUSTGATE_VERSION"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			srv := tc.release.serve(t, version)
			r := install(t, srv.URL, tc.version)
			if r.err == nil {
				t.Fatalf("install succeeded, want a refusal mentioning %q", tc.want)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr %q, want it to mention %q", r.stderr, tc.want)
			}
			if _, err := os.Stat(r.bin); !os.IsNotExist(err) {
				t.Errorf("a refused install left %s behind (%v)", r.bin, err)
			}
		})
	}
}
