package devissuer

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

var fixedNow = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func newTestIssuer(t *testing.T, opts Options) *Issuer {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return fixedNow }
	}
	iss, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

func decodeClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %d segments", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func decodeHeader(t *testing.T, tok string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// jsonType names the JSON type of a decoded value, so shapes can be compared type for type.
func jsonType(v any) string {
	switch x := v.(type) {
	case map[string]any:
		keys := slices.Sorted(maps.Keys(x))
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + ":" + jsonType(x[k])
		}
		return "{" + strings.Join(parts, ",") + "}"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = jsonType(e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	default:
		return fmt.Sprintf("%T", v)
	}
}

func TestMintShapesMatchTheFixturesClaimForClaim(t *testing.T) {
	fixtures := map[string]string{
		"github":   "github-actions.json",
		"gitlab":   "gitlab-ci.json",
		"circleci": "circleci.json",
		"google":   "google-cloud.json",
	}
	iss := newTestIssuer(t, Options{})
	for shape, file := range fixtures {
		t.Run(shape, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("shapes", shape+".json"))
			if err != nil {
				t.Fatal(err)
			}
			if shared, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "fixtures", "claims", file)); err == nil && !bytes.Equal(shared, b) {
				t.Errorf("shapes/%s.json differs from the shared fixture %s: copy it again", shape, file)
			}
			d := json.NewDecoder(bytes.NewReader(b))
			d.UseNumber()
			var want map[string]any
			if err := d.Decode(&want); err != nil {
				t.Fatal(err)
			}
			tok, err := iss.Mint(shape, nil, 5*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			got := decodeClaims(t, tok)

			if jsonType(got) != jsonType(want) {
				t.Fatalf("shape differs from fixture:\n got %s\nwant %s", jsonType(got), jsonType(want))
			}
			for k, v := range want {
				switch k {
				case "iat", "nbf", "exp", "jti":
					continue
				}
				if !reflect.DeepEqual(got[k], v) {
					t.Errorf("claim %s = %v, want the fixture's %v", k, got[k], v)
				}
			}
			if got["iat"] != json.Number(fmt.Sprint(fixedNow.Unix())) || got["exp"] != json.Number(fmt.Sprint(fixedNow.Add(5*time.Minute).Unix())) {
				t.Errorf("iat/exp = %v/%v, want fresh times", got["iat"], got["exp"])
			}
			if _, hadNbf := want["nbf"]; hadNbf && got["nbf"] != got["iat"] {
				t.Errorf("nbf = %v, want iat", got["nbf"])
			}
			if jti, ok := want["jti"]; ok && got["jti"] == jti {
				t.Error("jti must be fresh")
			}
		})
	}
}

func TestMintOverridesTopLevelNestedAndDeletes(t *testing.T) {
	iss := newTestIssuer(t, Options{})
	tok, err := iss.Mint("google", map[string]any{
		"/google/compute_engine/project_id": "other-project",
		"/google/compute_engine/zone":       nil,
		"/new/nested/claim":                 json.Number("7"),
		"email_verified":                    false,
		"azp":                               nil,
		"aud":                               []any{"a", "b"},
		"/a~1b":                             "slash",
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := decodeClaims(t, tok)
	ce := got["google"].(map[string]any)["compute_engine"].(map[string]any)
	if ce["project_id"] != "other-project" || ce["instance_name"] != "ci-runner-1" {
		t.Errorf("nested override: %v", ce)
	}
	if _, ok := ce["zone"]; ok {
		t.Error("/google/compute_engine/zone must be deleted")
	}
	if _, ok := got["azp"]; ok {
		t.Error("azp must be deleted")
	}
	if got["new"].(map[string]any)["nested"].(map[string]any)["claim"] != json.Number("7") {
		t.Errorf("new nested claim: %v", got["new"])
	}
	if got["email_verified"] != false || !reflect.DeepEqual(got["aud"], []any{"a", "b"}) || got["a/b"] != "slash" {
		t.Errorf("overrides: %v %v %v", got["email_verified"], got["aud"], got["a/b"])
	}
	if got["exp"] != json.Number(fmt.Sprint(fixedNow.Add(DefaultTTL).Unix())) {
		t.Errorf("default TTL: exp = %v", got["exp"])
	}

	tok, err = iss.Mint("circleci", map[string]any{"oidc.circleci.com/project-id": "p-2"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if c := decodeClaims(t, tok); c["oidc.circleci.com/project-id"] != "p-2" {
		t.Errorf("a name with dots and slashes is literal: %v", c)
	}

	if _, err := iss.Mint("google", map[string]any{"/email/x": "y"}, 0); err == nil {
		t.Error("a pointer through a string must fail")
	}
	if _, err := iss.Mint("travis", nil, 0); err == nil || !strings.Contains(err.Error(), "github, gitlab") {
		t.Errorf("unknown shape: %v", err)
	}
}

func TestGenericShapeUsesTheIssuerURL(t *testing.T) {
	iss := newTestIssuer(t, Options{Issuer: "http://127.0.0.1:9000/"})
	if c := decodeClaims(t, mustMint(t, iss, "generic", nil)); c["iss"] != "http://127.0.0.1:9000" {
		t.Fatalf("iss = %v", c["iss"])
	}
	if c := decodeClaims(t, mustMint(t, iss, "github", nil)); c["iss"] != "https://token.actions.githubusercontent.com" {
		t.Fatalf("github shape keeps its issuer, got %v", c["iss"])
	}
}

func mustMint(t *testing.T, iss *Issuer, shape string, claims map[string]any) string {
	t.Helper()
	tok, err := iss.Mint(shape, claims, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestKeyFileIsSharedBetweenProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "issuer.pem")
	a := newTestIssuer(t, Options{KeyFile: path})
	b := newTestIssuer(t, Options{KeyFile: path})
	if a.KID() != b.KID() {
		t.Fatalf("kids differ: %q %q", a.KID(), b.KID())
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v (%v), want 0600", st.Mode(), err)
	}
	ja, _ := a.JWKS()
	jb, _ := b.JWKS()
	if !bytes.Equal(ja, jb) {
		t.Fatal("JWKS differ between processes sharing a key file")
	}

	ecPath := filepath.Join(t.TempDir(), "ec.pem")
	newTestIssuer(t, Options{KeyFile: ecPath, Alg: "ES256"})
	if c := newTestIssuer(t, Options{KeyFile: ecPath}); decodeHeader(t, mustMint(t, c, "generic", nil))["alg"] != "ES256" {
		t.Fatal("the alg of a loaded key file must follow the key type")
	}
}

func TestRotatePublishesBothKeysAndSignsWithTheNewOne(t *testing.T) {
	iss := newTestIssuer(t, Options{})
	old := iss.KID()
	kid, err := iss.Rotate()
	if err != nil || kid == old || iss.KID() != kid {
		t.Fatalf("Rotate = %q, %v (old %q)", kid, err, old)
	}
	if h := decodeHeader(t, mustMint(t, iss, "github", nil)); h["kid"] != kid {
		t.Fatalf("header kid = %v, want %q", h["kid"], kid)
	}
	jwks, _ := iss.JWKS()
	if kids := jwksKIDs(t, jwks); len(kids) != 2 || !slices.Contains(kids, old) || !slices.Contains(kids, kid) {
		t.Fatalf("JWKS kids = %v, want %q and %q", kids, old, kid)
	}
	if err := iss.RemoveKey(old); err != nil {
		t.Fatal(err)
	}
	if err := iss.RemoveKey(kid); err == nil {
		t.Fatal("removing the current key must fail")
	}
}

func TestKeyOptionsForAttackTests(t *testing.T) {
	weak := newTestIssuer(t, Options{RSABits: 1024, KID: "weak"})
	jwks, _ := weak.JWKS()
	var set struct {
		Keys []struct {
			N string `json:"n"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("RSA-1024 issuer JWKS: %s (%v)", jwks, err)
	}
	if n, err := base64.RawURLEncoding.DecodeString(set.Keys[0].N); err != nil || len(n)*8 != 1024 {
		t.Fatalf("RSA-1024 issuer publishes a %d-bit modulus (%v)", len(n)*8, err)
	}
	for _, alg := range []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"} {
		iss := newTestIssuer(t, Options{Alg: alg})
		if h := decodeHeader(t, mustMint(t, iss, "generic", nil)); h["alg"] != alg {
			t.Errorf("alg %s: header %v", alg, h)
		}
	}
	if _, err := New(Options{Alg: "HS256"}); err == nil {
		t.Error("HS256 must be refused: the dev issuer publishes its keys")
	}
}

func TestHandlerServesDiscoveryJWKSAndMintedTokensVerify(t *testing.T) {
	iss := newTestIssuer(t, Options{Now: time.Now})
	srv := httptest.NewServer(iss.Handler())
	defer srv.Close()
	iss.SetIssuer(srv.URL)

	var disc map[string]any
	getJSON(t, srv.URL+"/.well-known/openid-configuration", &disc)
	if disc["issuer"] != srv.URL || disc["jwks_uri"] != srv.URL+"/.well-known/jwks.json" {
		t.Fatalf("discovery = %v", disc)
	}

	body := `{"shape":"github","claims":{"repository":"acme/app","run_number":42,"/job/name":"deploy"},"ttl_seconds":120}`
	resp, err := http.Post(srv.URL+"/mint", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out MintResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("mint: %d %v", resp.StatusCode, err)
	}
	claims := decodeClaims(t, out.Token)
	if claims["run_number"] != json.Number("42") || claims["job"].(map[string]any)["name"] != "deploy" {
		t.Fatalf("claims = %v", claims)
	}

	// Verified with an independent JOSE library against the served JWKS (the server's own
	// verifier is tested against the dev issuer in server/internal/jwtverify).
	kf, err := keyfunc.NewDefaultCtx(context.Background(), []string{srv.URL + "/.well-known/jwks.json"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwt.Parse(out.Token, kf.Keyfunc); err != nil {
		t.Fatalf("the minted token does not verify against the served JWKS: %v", err)
	}

	for _, bad := range []string{`{"shape":"nope"}`, `{"shape":"github","unknown":1}`, `not json`} {
		resp, err := http.Post(srv.URL+"/mint", "application/json", strings.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", bad, resp.StatusCode)
		}
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// jwksKIDs lists the kids of a JWKS document.
func jwksKIDs(t *testing.T, jwks []byte) []string {
	t.Helper()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KID)
	}
	return kids
}

// syncBuffer is a bytes.Buffer safe to read while serve writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunCLIServeThenMintPrintsTheTokenAlone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- RunCLI(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--key-file", filepath.Join(t.TempDir(), "k.pem")}, &out, &errOut)
	}()
	var url string
	for deadline := time.Now().Add(10 * time.Second); url == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		url = strings.TrimSpace(out.String())
	}
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("serve printed %q (stderr %q)", url, errOut.String())
	}

	var tok, mintErr bytes.Buffer
	err := RunCLI(ctx, []string{"mint", "--url", url, "--shape", "google",
		"--claim", "run_number=42", "--claim", "flag=true", "--claim", "list=[\"a\",1]",
		"--claim", "repository=acme/app", "--claim-string", "actor_id=12",
		"--claim", "/google/compute_engine/project_id=other", "--claim", "azp=null", "--ttl", "2m"}, &tok, &mintErr)
	if err != nil {
		t.Fatalf("mint: %v (%s)", err, mintErr.String())
	}
	if strings.Count(tok.String(), "\n") != 1 || strings.Count(tok.String(), ".") != 2 {
		t.Fatalf("mint must print the token alone, got %q", tok.String())
	}
	c := decodeClaims(t, strings.TrimSpace(tok.String()))
	want := map[string]any{"run_number": json.Number("42"), "flag": true, "list": []any{"a", json.Number("1")},
		"repository": "acme/app", "actor_id": "12"}
	for k, v := range want {
		if !reflect.DeepEqual(c[k], v) {
			t.Errorf("claim %s = %#v, want %#v", k, c[k], v)
		}
	}
	if c["google"].(map[string]any)["compute_engine"].(map[string]any)["project_id"] != "other" {
		t.Errorf("pointer claim: %v", c["google"])
	}
	if _, ok := c["azp"]; ok {
		t.Error("azp=null must delete the claim")
	}
	exp, _ := c["exp"].(json.Number).Int64()
	iat, _ := c["iat"].(json.Number).Int64()
	if exp-iat != 120 {
		t.Errorf("ttl: exp-iat = %d, want 120", exp-iat)
	}

	err = RunCLI(ctx, []string{"mint", "--url", url, "--shape", "nope"}, &tok, &mintErr)
	if err == nil || !strings.Contains(err.Error(), "unknown shape") {
		t.Errorf("bad shape: %v", err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v after ctx was cancelled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop when ctx was cancelled")
	}
}

func TestRunCLIRefusesBadInvocations(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{nil, {"frobnicate"}, {"mint", "--claim", "novalue"}, {"serve", "extra"}} {
		var out, errOut bytes.Buffer
		if err := RunCLI(ctx, args, &out, &errOut); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}

func TestParseClaimValue(t *testing.T) {
	cases := []struct {
		in    string
		force bool
		want  any
	}{
		{"42", false, json.Number("42")},
		{"4.50", false, json.Number("4.50")},
		{"true", false, true},
		{"null", false, nil},
		{`["a","b"]`, false, []any{"a", "b"}},
		{`{"k":1}`, false, map[string]any{"k": json.Number("1")}},
		{"acme/app", false, "acme/app"},
		{"42 is the answer", false, "42 is the answer"},
		{`"quoted"`, false, "quoted"},
		{"", false, ""},
		{"42", true, "42"},
		{"true", true, "true"},
	}
	for _, tc := range cases {
		if got := ParseClaimValue(tc.in, tc.force); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseClaimValue(%q, %v) = %#v, want %#v", tc.in, tc.force, got, tc.want)
		}
	}
}
