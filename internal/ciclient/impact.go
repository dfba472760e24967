package ciclient

// `trustgate impact` (CONTRACT.md §5): the impact report of §3 for people who review a change
// outside Terraform, and for CI jobs that check a change before it is proposed. It lives beside
// `trustgate exchange` because both are thin clients of the same API through apiclient.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/api/apiclient"
)

// EnvAPIKey is the variable `trustgate impact` reads its API key from (never a flag: command lines
// are visible to other users of the machine and end up in shell histories).
const EnvAPIKey = "TRUSTGATE_API_KEY"

// OutputTable is `trustgate impact`'s default output.
const OutputTable = "table"

type impactOptions struct {
	server     string
	connection string
	patch      string
	proposal   bool
	window     time.Duration
	output     string
	timeout    time.Duration
}

const impactUsageText = `Usage: trustgate impact --server URL --connection NAME (--patch FILE | --proposal) [--window 720h] [--output table|json]

Shows which workloads seen on a connection a change would newly refuse or newly admit, judged
on the claims of their latest tokens by the same rules as the token exchange. Nothing changes.

The change is a JSON merge patch on the live configuration, as for PATCH (--patch FILE, "-" for
stdin), or the connection's pending proposal (--proposal, or a patch of {}). The API key (any
role) is read from ` + EnvAPIKey + `.

Flags:
`

// RunImpactCLI runs `trustgate impact` with args (the arguments after "impact"). It reads the
// environment through getenv and a patch given as "-" from stdin, writes the report to stdout and
// failures to stderr. Every failure is written to stderr and returned as a *ReportedError, as
// RunCLI does. --help prints the usage to stdout and returns nil.
func RunImpactCLI(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	o, err := parseImpactArgs(args, getenv, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err == nil {
		err = runImpact(ctx, o, getenv(EnvAPIKey), stdin, stdout)
	}
	if err != nil {
		var usage usageError
		if !errors.As(err, &usage) || !usage.printed {
			fmt.Fprintf(stderr, "trustgate impact: %v\n", err)
		}
		return &ReportedError{Err: err}
	}
	return nil
}

func parseImpactArgs(args []string, getenv func(string) string, stdout, stderr io.Writer) (impactOptions, error) {
	var o impactOptions
	fs := flag.NewFlagSet("trustgate impact", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.server, "server", "", "Trustgate server URL (or "+EnvServer+")")
	fs.StringVar(&o.connection, "connection", "", "name or id of the workload connection (or "+EnvConnection+")")
	fs.StringVar(&o.patch, "patch", "", `file holding the change as a JSON merge patch ("-": stdin; {}: the pending proposal)`)
	fs.BoolVar(&o.proposal, "proposal", false, "evaluate the connection's pending proposal")
	fs.DurationVar(&o.window, "window", 0, "count the workloads seen this far back, e.g. 168h (default: the server's, 720h)")
	fs.StringVar(&o.output, "output", OutputTable, "what to print: table or json")
	fs.DurationVar(&o.timeout, "timeout", defaultTimeout, "overall time limit")
	if err := parseFlags(fs, impactUsageText, args, stdout); err != nil {
		return o, err
	}
	if o.server == "" {
		o.server = getenv(EnvServer)
	}
	if o.connection == "" {
		o.connection = getenv(EnvConnection)
	}
	switch {
	case o.server == "":
		return o, usagef("no server: pass --server https://trustgate.example.com or set %s", EnvServer)
	case o.connection == "":
		return o, usagef("no connection: pass --connection NAME or set %s", EnvConnection)
	case o.patch == "" && !o.proposal:
		return o, usagef("nothing to evaluate: pass --patch FILE (a JSON merge patch, - for stdin) or --proposal")
	case o.patch != "" && o.proposal:
		return o, usagef("give either --patch or --proposal, not both")
	case o.output != OutputTable && o.output != OutputJSON:
		return o, usagef("--output %q is not one of table, json", o.output)
	case o.window < 0:
		return o, usagef("--window must be positive, e.g. 168h")
	case o.timeout <= 0:
		return o, usagef("--timeout must be positive, e.g. 60s")
	}
	return o, nil
}

func runImpact(ctx context.Context, o impactOptions, apiKey string, stdin io.Reader, stdout io.Writer) error {
	if apiKey == "" {
		return usagef("no API key: set %s to an API key of any role (devops_admin, security_admin or auditor)", EnvAPIKey)
	}
	var patch any // nil: the pending proposal
	if o.patch != "" {
		p, err := readPatch(o.patch, stdin)
		if err != nil {
			return err
		}
		if emptyPatch(p) {
			o.proposal = true // {} asks about the pending proposal (CONTRACT.md §3)
		} else {
			patch = p
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	client, err := apiclient.New(o.server, apiKey, apiclient.WithHTTPClient(&http.Client{Timeout: requestTimeout}),
		apiclient.WithUserAgent("trustgate-impact"))
	if err != nil {
		return err
	}
	rep, err := client.Impact(ctx, o.connection, patch, apiclient.ImpactOptions{Window: o.window})
	if err != nil {
		return describeImpactError(err, o)
	}
	if o.output == OutputJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return writeImpactTable(stdout, o, rep)
}

// readPatch reads the merge patch from a file or stdin and checks that it is a JSON object, so a
// mistake is named here rather than by the server.
func readPatch(path string, stdin io.Reader) (json.RawMessage, error) {
	var (
		b   []byte
		err error
	)
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(stdin, 1<<20+1))
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the patch: %w", err)
	}
	b = bytes.TrimSpace(b)
	var obj map[string]json.RawMessage
	if len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &obj) != nil {
		return nil, fmt.Errorf("the patch in %s is not a JSON object: write the fields to change as in a PATCH body, e.g. {\"conditions\": [...]}, or {} for the pending proposal", patchSource(path))
	}
	return json.RawMessage(b), nil
}

func emptyPatch(p json.RawMessage) bool {
	var obj map[string]json.RawMessage
	return json.Unmarshal(p, &obj) == nil && len(obj) == 0
}

func patchSource(path string) string {
	if path == "-" {
		return "stdin"
	}
	return path
}

// describeImpactError adds what to do next to the server's refusal.
func describeImpactError(err error, o impactOptions) error {
	switch apiclient.StatusCode(err) {
	case 0:
		return fmt.Errorf("%w (is %s the Trustgate server, and reachable?)", err, o.server)
	case http.StatusUnauthorized:
		return fmt.Errorf("%w\n  next: check %s: it must be a valid API key of this server", err, EnvAPIKey)
	case http.StatusNotFound:
		return fmt.Errorf("%w\n  next: check the connection name %q; for the pending proposal, that there is one", err, o.connection)
	}
	return err
}

// writeImpactTable prints the report for people: the workloads whose outcome changes, counts,
// and the caveats.
func writeImpactTable(w io.Writer, o impactOptions, r *api.ImpactReport) error {
	what := "the change in " + patchSource(o.patch)
	if o.proposal {
		what = "the pending proposal"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "Impact of %s on connection %s: %d workloads seen in the last %s\n", what, o.connection, r.Sightings, r.Window)
	section := func(title string, ws []api.ImpactWorkload, total int, check string) {
		fmt.Fprintf(&b, "\n%s: %d\n", title, total)
		if total == 0 {
			return
		}
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "  IDENTITY\tLAST SEEN\tEXCHANGES\t%s\n", check)
		for _, x := range ws {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\n", oneLine(x.Identity), x.LastSeen.UTC().Format(time.RFC3339), x.Exchanges, x.FailingCheck)
		}
		_ = tw.Flush()
		if more := total - len(ws); more > 0 {
			fmt.Fprintf(&b, "  … and %d more\n", more)
		}
	}
	section("Newly refused", r.NewlyRefused, r.NewlyRefusedTotal, "FAILING CHECK (PROPOSED)")
	section("Newly admitted", r.NewlyAdmitted, r.NewlyAdmittedTotal, "FAILING CHECK (LIVE)")
	fmt.Fprintf(&b, "\nStill granted: %d\nStill refused: %d\n", r.StillGranted, r.StillRefused)
	if len(r.Caveats) > 0 {
		fmt.Fprintf(&b, "\nCaveats (what the claims of past tokens cannot tell):\n")
		for _, c := range r.Caveats {
			fmt.Fprintf(&b, "  - %s\n", c)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// oneLine keeps an identity on one table row: control characters (a newline in a claim) are
// shown escaped, so a workload cannot forge rows of the report.
func oneLine(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return s
	}
	q := fmt.Sprintf("%q", s)
	return q[1 : len(q)-1]
}
