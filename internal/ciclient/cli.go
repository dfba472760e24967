// Package ciclient is the CI side of Trustgate (CONTRACT.md §5): it obtains the OIDC JWT that the CI
// system gives the running job (GitHub Actions, GitLab CI, CircleCI, the Google metadata server, a
// file or an environment variable), trades it at the server's token endpoint through the typed
// client in server/apiclient, and prints the access token. server/cmd/trustgate wires RunCLI as
// `trustgate exchange`.
//
// The CI token is a credential: it is never printed, logged or put in an error message.
package ciclient

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
)

// Output formats of --output.
const (
	OutputToken = "token"
	OutputJSON  = "json"
	OutputEnv   = "env"
)

// Names of the variables written by --output env.
const (
	EnvAccessToken = "TRUSTGATE_ACCESS_TOKEN"
	EnvExpiresIn   = "TRUSTGATE_ACCESS_TOKEN_EXPIRES_IN"
)

// Environment variables read in place of flags.
const (
	EnvServer     = "TRUSTGATE_SERVER"
	EnvConnection = "TRUSTGATE_CONNECTION"
	EnvAudience   = "TRUSTGATE_AUDIENCE"
	// EnvTokenAudience is read in place of --token-audience.
	EnvTokenAudience = "TRUSTGATE_TOKEN_AUDIENCE"
)

const (
	defaultTimeout = 60 * time.Second
	// requestTimeout bounds each HTTP request (CI token source or token endpoint).
	requestTimeout = 15 * time.Second
	// defaultRetryDelay is the wait before the one retry when the server gives no Retry-After.
	defaultRetryDelay = time.Second
	// maxRetryWait is the longest Retry-After honoured; a longer one fails at once and says so.
	maxRetryWait = 10 * time.Second
)

// options is the parsed command line.
type options struct {
	server     string
	connection string
	tokenFile  string
	tokenEnv   string
	from       string
	audience   string
	// tokenAudience is the RFC 8693 audience parameter: one of the connection's token_audience.
	tokenAudience string
	output        string
	timeout       time.Duration
}

// ReportedError is returned by RunCLI after the failure has already been written to stderr, so
// that the caller only has to exit with a non-zero status.
type ReportedError struct{ Err error }

func (e *ReportedError) Error() string { return e.Err.Error() }
func (e *ReportedError) Unwrap() error { return e.Err }

// RunCLI runs `trustgate exchange` with args (the arguments after "exchange"). It reads the
// environment through getenv, writes the result to stdout and diagnostics to stderr. Every failure
// is written to stderr (for a refused exchange: the server's error_description) and returned as a
// *ReportedError; the caller turns it into a non-zero exit status without printing it again.
// --help prints the usage to stdout and returns nil.
func RunCLI(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	opts, err := parseArgs(args, getenv, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		var usage usageError
		if !errors.As(err, &usage) || !usage.printed {
			fmt.Fprintf(stderr, "trustgate exchange: %v\n", err)
		}
		return &ReportedError{Err: err}
	}
	if err := run(ctx, opts, getenv, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "trustgate exchange: %v\n", err)
		return &ReportedError{Err: err}
	}
	return nil
}

// usageError is a command-line mistake; printed means the flag package has already reported it.
type usageError struct {
	err     error
	printed bool
}

func (e usageError) Error() string { return e.err.Error() }

func usagef(format string, a ...any) error { return usageError{err: fmt.Errorf(format, a...)} }

const usageText = `Usage: trustgate exchange --server URL --connection NAME [source] [--output token|json|env]

Trades the OIDC token of this CI job for a Trustgate access token and prints it.

Source of the CI token (one of; default --from auto):
  --from github     GitHub Actions ID-token endpoint (needs "permissions: id-token: write"),
                    requested for --audience
  --from gitlab     GitLab id_tokens variable TRUSTGATE_ID_TOKEN (another name with --token-env)
  --from circleci   CircleCI's CIRCLE_OIDC_TOKEN_V2
  --from google     Google metadata server identity token (format=full) for --audience;
                    GCE_METADATA_HOST overrides the metadata host
  --from auto       detect GITHUB_ACTIONS, GITLAB_CI, CIRCLECI, then the Google metadata server
  --token-file PATH read the token from a file
  --token-env VAR   read the token from an environment variable

--audience is the audience of the CI token asked from GitHub or Google; --token-audience is the
audience of the access token asked from Trustgate (RFC 8693 "audience": one of the connection's
token_audience; without it the token is for all of them).

Flags:
`

func parseArgs(args []string, getenv func(string) string, stdout, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("trustgate exchange", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.server, "server", "", "Trustgate server URL (or "+EnvServer+")")
	fs.StringVar(&o.connection, "connection", "", "name of the workload connection (or "+EnvConnection+")")
	fs.StringVar(&o.tokenFile, "token-file", "", "read the CI token from this file")
	fs.StringVar(&o.tokenEnv, "token-env", "", "read the CI token from this environment variable (with --from gitlab: the id_tokens variable)")
	fs.StringVar(&o.from, "from", "", "CI system to ask for the token: github, gitlab, circleci, google or auto")
	fs.StringVar(&o.audience, "audience", "", "audience of the CI token to request (github, google; or "+EnvAudience+"); default the server URL")
	fs.StringVar(&o.tokenAudience, "token-audience", "", "audience of the access token: one of the connection's token_audience (or "+EnvTokenAudience+"); default all of them")
	fs.StringVar(&o.output, "output", OutputToken, "what to print: token, json or env")
	fs.DurationVar(&o.timeout, "timeout", defaultTimeout, "overall time limit, retries included")
	if err := parseFlags(fs, usageText, args, stdout); err != nil {
		return o, err
	}

	if o.server == "" {
		o.server = getenv(EnvServer)
	}
	if o.connection == "" {
		o.connection = getenv(EnvConnection)
	}
	if o.audience == "" {
		o.audience = getenv(EnvAudience)
	}
	if o.tokenAudience == "" {
		o.tokenAudience = getenv(EnvTokenAudience)
	}
	if o.server == "" {
		return o, usagef("no server: pass --server https://trustgate.example.com or set %s", EnvServer)
	}
	if o.connection == "" {
		return o, usagef("no connection: pass --connection NAME (the workload connection's name) or set %s", EnvConnection)
	}
	switch o.output {
	case OutputToken, OutputJSON, OutputEnv:
	default:
		return o, usagef("--output %q is not one of token, json, env", o.output)
	}
	if o.timeout <= 0 {
		return o, usagef("--timeout must be positive, e.g. 60s")
	}

	switch o.from {
	case "", sourceAuto, sourceGitHub, sourceGitLab, sourceCircleCI, sourceGoogle:
	default:
		return o, usagef("--from %q is not one of github, gitlab, circleci, google, auto", o.from)
	}
	sources := 0
	for _, set := range []bool{o.tokenFile != "", o.tokenEnv != "", o.from != ""} {
		if set {
			sources++
		}
	}
	gitlabVar := o.from == sourceGitLab && o.tokenEnv != "" && o.tokenFile == ""
	if sources > 1 && !gitlabVar {
		return o, usagef("give one source of the CI token: --token-file, --token-env or --from (only --from gitlab may be combined with --token-env, to name the id_tokens variable)")
	}
	if sources == 0 {
		o.from = sourceAuto
	}
	return o, nil
}

func run(ctx context.Context, o options, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	hc := &http.Client{Timeout: requestTimeout}
	client, err := apiclient.New(o.server, "", apiclient.WithHTTPClient(hc), apiclient.WithUserAgent("trustgate-exchange"))
	if err != nil {
		return err
	}
	warnPlainHTTP(o.server, stderr)

	audience := o.audience
	if audience == "" {
		audience = strings.TrimRight(o.server, "/")
	}
	src := &sources{getenv: getenv, http: hc, stderr: stderr, audience: audience, audienceSet: o.audience != ""}
	subject, err := src.token(ctx, o)
	if err != nil {
		return err
	}

	req := api.TokenRequest{Connection: o.connection, SubjectToken: subject, Audience: o.tokenAudience}
	resp, err := exchange(ctx, client, req, stderr)
	if err != nil {
		return describeExchangeError(err, o)
	}
	return writeOutput(stdout, o.output, resp)
}

// exchange calls the token endpoint, retrying once on a connection error, a 5xx or a 429.
func exchange(ctx context.Context, c *apiclient.Client, req api.TokenRequest, stderr io.Writer) (*api.TokenResponse, error) {
	resp, err := c.Exchange(ctx, req)
	if err == nil {
		return resp, nil
	}
	wait, why, ok := retryable(ctx, err)
	if !ok {
		return nil, err
	}
	if wait > maxRetryWait {
		return nil, fmt.Errorf("%w; the server asks to retry after %s, longer than the %s this command waits: run it again later", err, wait, maxRetryWait)
	}
	fmt.Fprintf(stderr, "trustgate exchange: %s; retrying once in %s\n", why, wait)
	if err := sleep(ctx, wait); err != nil {
		return nil, fmt.Errorf("gave up waiting to retry the exchange: %w", err)
	}
	return c.Exchange(ctx, req)
}

// retryable says whether err deserves the one retry, how long to wait first and why.
func retryable(ctx context.Context, err error) (time.Duration, string, bool) {
	if ctx.Err() != nil {
		return 0, "", false
	}
	var oe *apiclient.OAuthError
	if errors.As(err, &oe) {
		if oe.StatusCode != http.StatusTooManyRequests && oe.StatusCode < 500 {
			return 0, "", false
		}
		wait := oe.RetryAfter
		if wait <= 0 {
			wait = defaultRetryDelay
		}
		return wait, fmt.Sprintf("the server answered %d %s", oe.StatusCode, http.StatusText(oe.StatusCode)), true
	}
	var ue *url.Error
	var ne net.Error
	if errors.As(err, &ue) || errors.As(err, &ne) {
		return defaultRetryDelay, "could not reach the server", true
	}
	return 0, "", false
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// describeExchangeError turns a failed exchange into a message that says what to do next. The
// server's error_description is always part of it.
func describeExchangeError(err error, o options) error {
	var oe *apiclient.OAuthError
	if !errors.As(err, &oe) {
		return fmt.Errorf("%w (is %s the Trustgate server, and reachable from this job?)", err, o.server)
	}
	var hint string
	switch oe.Err.Error {
	case api.ErrInvalidTarget:
		hint = fmt.Sprintf("check the name %q, and that a security admin has activated the connection", o.connection)
		if o.tokenAudience != "" {
			hint += fmt.Sprintf("; and that %q is one of the connection's token_audience (or leave out --token-audience)", o.tokenAudience)
		}
	case api.ErrInvalidGrant:
		hint = "the connection's rules refused this job's token; an admin can see the failing check in the audit log or with the connection's test endpoint"
		if o.from == sourceGitHub || o.from == sourceGoogle {
			hint += "; if the failing check is the audience, pass the connection's audience with --audience"
		}
	case api.ErrInvalidRequest, api.ErrUnsupportedGrantType:
		hint = "this client and the server disagree on the protocol; check that --server points at Trustgate"
	}
	if oe.StatusCode == http.StatusTooManyRequests {
		hint = "rate limited; run the job again in a moment"
	}
	if hint == "" {
		return err
	}
	return fmt.Errorf("%w\n  next: %s", err, hint)
}

func writeOutput(w io.Writer, format string, resp *api.TokenResponse) error {
	if resp.AccessToken == "" {
		return errors.New("the server answered without an access_token: check that --server points at Trustgate")
	}
	var err error
	switch format {
	case OutputJSON:
		err = json.NewEncoder(w).Encode(resp)
	case OutputEnv:
		_, err = fmt.Fprintf(w, "export %s=%s\nexport %s=%s\n",
			EnvAccessToken, shellQuote(resp.AccessToken),
			EnvExpiresIn, shellQuote(strconv.FormatInt(resp.ExpiresIn, 10)))
	default:
		_, err = fmt.Fprintln(w, resp.AccessToken)
	}
	if err != nil {
		return fmt.Errorf("writing the access token: %w", err)
	}
	return nil
}

// shellQuote quotes s for a POSIX shell: single quotes, with each ' written as '\”.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// warnPlainHTTP warns when the access token would travel unencrypted beyond this machine.
func warnPlainHTTP(server string, stderr io.Writer) {
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "http" {
		return
	}
	host := u.Hostname()
	if host == "localhost" {
		return
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return
	}
	fmt.Fprintf(stderr, "trustgate exchange: warning: %s uses plain http; the CI token and the access token travel unencrypted. Use https.\n", server)
}

// parseFlags parses the flags of one trustgate command, whose usage text comes before the flags'
// defaults: --help prints them to stdout and returns flag.ErrHelp; a flag error has been printed
// (usageError); an argument that is not a flag is refused, since every input is one.
func parseFlags(fs *flag.FlagSet, usage string, args []string, stdout io.Writer) error {
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(stdout)
			fs.Usage()
			return flag.ErrHelp
		}
	}
	if err := fs.Parse(args); err != nil {
		return usageError{err: err, printed: true}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q: every input is a flag (see --help)", fs.Arg(0))
	}
	return nil
}
