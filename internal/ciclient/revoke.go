package ciclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
)

// `trustgate revoke` (CONTRACT.md §5): a CI job gives its access token back when it finishes
// (RFC 7009), with the token itself as the credential, so that a token copied out of the job's
// logs or workspace is worth nothing afterwards.

const revokeUsage = `Usage: trustgate revoke --server URL [--token-file PATH | --token-env VAR]

Revokes a Trustgate access token, using the token itself as the credential (RFC 7009). Run it
when the job ends, whatever its outcome. By default the token is read from TRUSTGATE_ACCESS_TOKEN
(what "trustgate exchange --output env" sets). A token that has already expired needs no
revocation: that is reported and is not an error.

Flags:
`

type revokeOptions struct {
	server    string
	tokenFile string
	tokenEnv  string
	timeout   time.Duration
}

// RunRevokeCLI runs `trustgate revoke` with args (the arguments after "revoke"), reading the
// environment through getenv. Like RunCLI, every failure is written to stderr and returned as a
// *ReportedError; the access token is never printed.
func RunRevokeCLI(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseRevokeArgs(args, getenv, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err == nil {
		err = revoke(ctx, o, getenv, stdout, stderr)
	}
	if err != nil {
		var usage usageError
		if !errors.As(err, &usage) || !usage.printed {
			fmt.Fprintf(stderr, "trustgate revoke: %v\n", err)
		}
		return &ReportedError{Err: err}
	}
	return nil
}

func parseRevokeArgs(args []string, getenv func(string) string, stdout, stderr io.Writer) (revokeOptions, error) {
	var o revokeOptions
	fs := flag.NewFlagSet("trustgate revoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.server, "server", "", "Trustgate server URL (or "+EnvServer+")")
	fs.StringVar(&o.tokenFile, "token-file", "", "read the access token from this file")
	fs.StringVar(&o.tokenEnv, "token-env", "", "read the access token from this environment variable (default "+EnvAccessToken+")")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "overall time limit, the one retry included")
	if err := parseFlags(fs, revokeUsage, args, stdout); err != nil {
		return o, err
	}
	if o.server == "" {
		o.server = getenv(EnvServer)
	}
	if o.server == "" {
		return o, usagef("no server: pass --server https://trustgate.example.com or set %s", EnvServer)
	}
	if o.tokenFile != "" && o.tokenEnv != "" {
		return o, usagef("give one source of the access token: --token-file or --token-env")
	}
	if o.tokenFile == "" && o.tokenEnv == "" {
		o.tokenEnv = EnvAccessToken
	}
	if o.timeout <= 0 {
		return o, usagef("--timeout must be positive, e.g. 30s")
	}
	return o, nil
}

func revoke(ctx context.Context, o revokeOptions, getenv func(string) string, stdout, stderr io.Writer) error {
	token, err := accessToken(o, getenv)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	warnPlainHTTP(o.server, stderr)
	client, err := apiclient.New(o.server, token, apiclient.WithHTTPClient(&http.Client{Timeout: requestTimeout}),
		apiclient.WithUserAgent("trustgate-revoke"))
	if err != nil {
		return err
	}
	err = client.Revoke(ctx, token)
	if err != nil && retryableRevoke(ctx, err) {
		fmt.Fprintf(stderr, "trustgate revoke: %v; retrying once in %s\n", err, defaultRetryDelay)
		if serr := sleep(ctx, defaultRetryDelay); serr != nil {
			return fmt.Errorf("gave up waiting to retry the revocation: %w", serr)
		}
		err = client.Revoke(ctx, token)
	}
	if err == nil {
		fmt.Fprintln(stdout, "access token revoked")
		return nil
	}
	if apiclient.StatusCode(err) == http.StatusUnauthorized {
		if exp, ok := expiry(token); ok && !time.Now().Before(exp) {
			fmt.Fprintf(stdout, "the access token expired at %s: nothing to revoke\n", exp.UTC().Format(time.RFC3339))
			return nil
		}
		return fmt.Errorf("%w\n  next: the server does not accept this token as a credential: check that --server is the server that issued it", err)
	}
	return fmt.Errorf("%w (is %s the Trustgate server, and reachable from this job?)", err, o.server)
}

// retryableRevoke: a connection error or a 5xx deserves the one retry (a revocation is idempotent).
func retryableRevoke(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	code := apiclient.StatusCode(err)
	return code == 0 || code >= 500
}

// accessToken reads the access token from the file or variable the options name.
func accessToken(o revokeOptions, getenv func(string) string) (string, error) {
	var tok, from string
	if o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return "", fmt.Errorf("cannot read the access token: %w", err)
		}
		tok, from = string(b), "the file "+o.tokenFile
	} else {
		tok, from = getenv(o.tokenEnv), o.tokenEnv
		if strings.TrimSpace(tok) == "" {
			return "", fmt.Errorf("%s is not set or empty: pass the access token that trustgate exchange printed with --token-file or --token-env", o.tokenEnv)
		}
	}
	tok = strings.TrimSpace(tok)
	if len(tok) > maxTokenBytes || strings.Count(tok, ".") != 2 {
		return "", fmt.Errorf("what %s holds is not an access token (a JWT)", from)
	}
	return tok, nil
}

// expiry reads the exp claim of a JWT without verifying it: only to tell an expired token, which
// needs no revocation, from a credential the server refuses for another reason.
func expiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var c struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(b, &c) != nil || c.Exp == 0 {
		return time.Time{}, false
	}
	return time.Unix(c.Exp, 0), true
}
