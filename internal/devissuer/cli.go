package devissuer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

const cliUsage = `usage:
  trustgate dev-issuer serve [--listen 127.0.0.1:9000] [--key-file FILE] [--issuer URL] [--kid KID] [--alg RS256]
  trustgate dev-issuer mint [--url http://127.0.0.1:9000] [--shape github|gitlab|circleci|google|generic]
                            [--claim NAME=VALUE]... [--claim-string NAME=VALUE]... [--ttl 10m]

serve   runs a local OIDC issuer (discovery, JWKS, POST /mint) until interrupted; prints its URL.
mint    asks a running issuer for a token and prints the token alone.
        --claim values are parsed as JSON when they are valid JSON (numbers, true/false, arrays,
        objects, null = delete the claim), otherwise taken as strings; --claim-string always takes
        a string. A NAME starting with / is a JSON pointer (/google/compute_engine/project_id).
`

// RunCLI implements `trustgate dev-issuer <serve|mint> ...`. args excludes "dev-issuer".
func RunCLI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, cliUsage)
		return errors.New("dev-issuer: missing subcommand (serve or mint)")
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "mint":
		return runMint(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, cliUsage)
		return nil
	}
	fmt.Fprint(stderr, cliUsage)
	return fmt.Errorf("dev-issuer: unknown subcommand %q", args[0])
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev-issuer serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:9000", "address to listen on")
	keyFile := fs.String("key-file", "", "PEM private key file, created when missing (share it between processes)")
	issuerURL := fs.String("issuer", "", "issuer URL (default http://<listen address>)")
	kid := fs.String("kid", "", "key id (default: the key's RFC 7638 thumbprint)")
	alg := fs.String("alg", "", "signing algorithm (default RS256, or the key file's type)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("dev-issuer serve: unexpected arguments %q", fs.Args())
	}
	iss, err := New(Options{Issuer: *issuerURL, KeyFile: *keyFile, KID: *kid, Alg: *alg})
	if err != nil {
		return err
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", *listen)
	if err != nil {
		return fmt.Errorf("dev-issuer serve: %w", err)
	}
	if iss.URL() == "" {
		iss.SetIssuer("http://" + ln.Addr().String())
	}
	srv := &http.Server{Handler: iss.Handler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintln(stdout, iss.URL())
	fmt.Fprintf(stderr, "dev-issuer: serving %s (JWKS %s/.well-known/jwks.json, kid %s); test use only\n", iss.URL(), iss.URL(), iss.KID())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	}
}

// claimFlag collects --claim / --claim-string into one ordered override map.
type claimFlag struct {
	claims      map[string]any
	forceString bool
}

func (c *claimFlag) String() string { return "" }

func (c *claimFlag) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("want NAME=VALUE, got %q", s)
	}
	c.claims[name] = ParseClaimValue(value, c.forceString)
	return nil
}

// ParseClaimValue turns a command-line claim value into a claim: JSON when the value is valid
// JSON (numbers keep their exact form), otherwise the string itself. forceString keeps the string.
func ParseClaimValue(value string, forceString bool) any {
	if forceString {
		return value
	}
	d := json.NewDecoder(strings.NewReader(value))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return value
	}
	if _, err := d.Token(); err != io.EOF {
		return value
	}
	return v
}

func runMint(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev-issuer mint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "http://127.0.0.1:9000", "URL of a running dev issuer")
	shape := fs.String("shape", "generic", "token shape: github, gitlab, circleci, google, generic")
	ttl := fs.Duration("ttl", DefaultTTL, "token lifetime")
	claims := map[string]any{}
	fs.Var(&claimFlag{claims: claims}, "claim", "NAME=VALUE claim override (JSON value or string; repeatable)")
	fs.Var(&claimFlag{claims: claims, forceString: true}, "claim-string", "NAME=VALUE claim override, always a string (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("dev-issuer mint: unexpected arguments %q", fs.Args())
	}
	body, err := json.Marshal(MintRequest{Shape: *shape, Claims: claims, TTLSeconds: int64(ttl.Seconds())})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(*url, "/")+"/mint", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("dev-issuer mint: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("dev-issuer mint: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		return fmt.Errorf("dev-issuer mint: issuer answered %d: %s", resp.StatusCode, e.Error)
	}
	var out MintResponse
	if err := json.Unmarshal(b, &out); err != nil || out.Token == "" {
		return fmt.Errorf("dev-issuer mint: unexpected answer from %s", *url)
	}
	_, err = fmt.Fprintln(stdout, out.Token)
	return err
}
