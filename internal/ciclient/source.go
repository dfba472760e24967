package ciclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Values of --from.
const (
	sourceGitHub   = "github"
	sourceGitLab   = "gitlab"
	sourceCircleCI = "circleci"
	sourceGoogle   = "google"
	sourceAuto     = "auto"
)

// Environment variables of the CI systems.
const (
	envGitHubActions     = "GITHUB_ACTIONS"
	envGitHubRequestURL  = "ACTIONS_ID_TOKEN_REQUEST_URL"
	envGitHubRequestTok  = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
	envGitLabCI          = "GITLAB_CI"
	defaultGitLabVar     = "TRUSTGATE_ID_TOKEN"
	envCircleCI          = "CIRCLECI"
	envCircleCIToken     = "CIRCLE_OIDC_TOKEN_V2"
	envGCEMetadataHost   = "GCE_METADATA_HOST"
	defaultMetadataHost  = "metadata.google.internal"
	metadataIdentityPath = "/computeMetadata/v1/instance/service-accounts/default/identity"
)

const (
	// maxTokenBytes caps what is read as a CI token (the server accepts at most 16 KiB).
	maxTokenBytes = 64 << 10
	// metadataProbeTimeout bounds the check for a Google metadata server during --from auto.
	metadataProbeTimeout = 2 * time.Second
)

// sources obtains the CI token.
type sources struct {
	getenv      func(string) string
	http        *http.Client
	stderr      io.Writer
	audience    string // what to request from GitHub and Google
	audienceSet bool   // --audience or TRUSTGATE_AUDIENCE was given
}

// token returns the CI JWT from the source the options name.
func (s *sources) token(ctx context.Context, o options) (string, error) {
	switch {
	case o.tokenFile != "":
		return fromFile(o.tokenFile)
	case o.tokenEnv != "" && o.from == "":
		return s.fromEnv(o.tokenEnv, fmt.Sprintf("set %s to the CI token, or use --from to ask the CI system", o.tokenEnv))
	}
	from := o.from
	if from == sourceAuto {
		var err error
		if from, err = s.detect(ctx); err != nil {
			return "", err
		}
		fmt.Fprintf(s.stderr, "trustgate exchange: detected %s\n", describeSource(from))
	}
	switch from {
	case sourceGitHub:
		return s.github(ctx)
	case sourceGitLab:
		return s.gitlab(o.tokenEnv)
	case sourceCircleCI:
		return s.circleci()
	case sourceGoogle:
		return s.google(ctx)
	}
	return "", fmt.Errorf("unknown source %q", from)
}

func describeSource(from string) string {
	switch from {
	case sourceGitHub:
		return "GitHub Actions"
	case sourceGitLab:
		return "GitLab CI"
	case sourceCircleCI:
		return "CircleCI"
	default:
		return "a Google metadata server"
	}
}

// detect picks the CI system this job runs on: GitHub Actions, GitLab CI, CircleCI, then a Google
// metadata server (Cloud Build, Compute Engine, GKE, Cloud Run).
func (s *sources) detect(ctx context.Context) (string, error) {
	switch {
	case s.getenv(envGitHubActions) == "true":
		return sourceGitHub, nil
	case s.getenv(envGitLabCI) == "true":
		return sourceGitLab, nil
	case s.getenv(envCircleCI) == "true":
		return sourceCircleCI, nil
	}
	base := s.metadataBase()
	err := s.probeMetadata(ctx, base)
	if err == nil {
		return sourceGoogle, nil
	}
	return "", fmt.Errorf("could not find a CI token: looked for %s=true (GitHub Actions), %s=true (GitLab CI), "+
		"%s=true (CircleCI) and a Google metadata server at %s (%v). "+
		"Pass --from github|gitlab|circleci|google, or give the token with --token-file or --token-env",
		envGitHubActions, envGitLabCI, envCircleCI, base, err)
}

// fromFile reads a CI token from a file.
func fromFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read the CI token: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenBytes+1))
	if err != nil {
		return "", fmt.Errorf("cannot read the CI token from %s: %w", path, err)
	}
	return checkToken(string(b), "the file "+path)
}

func (s *sources) fromEnv(name, whatToDo string) (string, error) {
	v := s.getenv(name)
	if strings.TrimSpace(v) == "" {
		return "", fmt.Errorf("%s is not set or empty: %s", name, whatToDo)
	}
	return checkToken(v, name)
}

func (s *sources) gitlab(varName string) (string, error) {
	if varName == "" {
		varName = defaultGitLabVar
	}
	s.noteAudienceIgnored(sourceGitLab, "the audience is the aud of the id_tokens entry in .gitlab-ci.yml")
	return s.fromEnv(varName, fmt.Sprintf("declare it in the job of .gitlab-ci.yml:\n"+
		"    id_tokens:\n      %s:\n        aud: <the connection's audience>\n"+
		"  (or name another id_tokens variable with --token-env)", varName))
}

func (s *sources) circleci() (string, error) {
	s.noteAudienceIgnored(sourceCircleCI, "CircleCI tokens always carry the organization ID as their audience")
	return s.fromEnv(envCircleCIToken, "CircleCI sets it in jobs on CircleCI cloud; older setups only in jobs that use "+
		"a context (add `context: <name>` to the job in the workflow), and forked pull requests only when "+
		"\"Pass secrets to builds from forked pull requests\" is enabled")
}

func (s *sources) noteAudienceIgnored(from, why string) {
	if s.audienceSet {
		fmt.Fprintf(s.stderr, "trustgate exchange: note: --audience has no effect with --from %s: %s\n", from, why)
	}
}

// github asks the Actions ID-token endpoint for a token with the requested audience.
func (s *sources) github(ctx context.Context) (string, error) {
	reqURL, reqTok := s.getenv(envGitHubRequestURL), s.getenv(envGitHubRequestTok)
	if reqURL == "" || reqTok == "" {
		return "", fmt.Errorf("GitHub Actions gave this job no ID-token request (%s / %s are not set): "+
			"add `permissions: id-token: write` to the job (or the workflow); "+
			"workflows triggered by pull requests from forks never get one", envGitHubRequestURL, envGitHubRequestTok)
	}
	u, err := url.Parse(reqURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("%s is not an http(s) URL; is this a GitHub Actions runner?", envGitHubRequestURL)
	}
	q := u.Query()
	q.Set("audience", s.audience)
	u.RawQuery = q.Encode()

	body, err := s.get(ctx, "the GitHub Actions ID-token endpoint", u.String(), map[string]string{
		"Authorization": "Bearer " + reqTok,
		"Accept":        "application/json",
	}, func(status int) string {
		if status == http.StatusUnauthorized || status == http.StatusForbidden {
			return "add `permissions: id-token: write` to the job (or the workflow)"
		}
		return ""
	})
	if err != nil {
		return "", err
	}
	var out struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return "", errors.New("the GitHub Actions ID-token endpoint answered with something that is not JSON {\"value\": ...}")
	}
	return checkToken(out.Value, "the GitHub Actions ID-token endpoint")
}

// metadataBase is the Google metadata server's base URL; GCE_METADATA_HOST overrides the host, as in
// Google's own client libraries.
func (s *sources) metadataBase() string {
	host := strings.TrimSpace(s.getenv(envGCEMetadataHost))
	if host == "" {
		host = defaultMetadataHost
	}
	return "http://" + strings.TrimRight(host, "/")
}

// google asks the metadata server for an identity token of the attached service account.
func (s *sources) google(ctx context.Context) (string, error) {
	q := url.Values{"audience": {s.audience}, "format": {"full"}}
	u := s.metadataBase() + metadataIdentityPath + "?" + q.Encode()
	body, err := s.get(ctx, "the Google metadata server", u, map[string]string{"Metadata-Flavor": "Google"}, func(status int) string {
		if status == http.StatusNotFound {
			return "attach a service account to this VM / build / service (identity tokens come from the default service account)"
		}
		return ""
	})
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return "", fmt.Errorf("%w: run this on Google Cloud (Compute Engine, GKE, Cloud Run, Cloud Build) "+
				"or point %s at a metadata server", err, envGCEMetadataHost)
		}
		return "", err
	}
	return checkToken(string(body), "the Google metadata server")
}

// probeMetadata checks quickly whether a Google metadata server answers at base.
func (s *sources) probeMetadata(ctx context.Context, base string) error {
	ctx, cancel := context.WithTimeout(ctx, metadataProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Metadata-Flavor", "Google")
	resp, err := s.http.Do(req)
	if err != nil {
		return errors.New("not reachable")
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.Header.Get("Metadata-Flavor") != "Google" {
		return errors.New("it answered without the Metadata-Flavor: Google header, so it is not one")
	}
	return nil
}

// get fetches a CI token source, retrying once after a connection error or a 5xx/429. hint maps a
// failed status to what the user should do.
func (s *sources) get(ctx context.Context, what, rawURL string, header map[string]string, hint func(int) string) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		body, status, retryAfter, err := s.getOnce(ctx, rawURL, header)
		if err == nil && status == http.StatusOK {
			return body, nil
		}
		retry := ctx.Err() == nil && (err != nil || status == http.StatusTooManyRequests || status >= 500)
		if retry && attempt == 0 {
			wait := defaultRetryDelay
			if retryAfter > 0 && retryAfter <= maxRetryWait {
				wait = retryAfter
			}
			if sleep(ctx, wait) == nil {
				continue
			}
		}
		if err != nil {
			return nil, fmt.Errorf("could not reach %s: %w", what, err)
		}
		msg := fmt.Sprintf("%s answered %d %s", what, status, http.StatusText(status))
		if h := hint(status); h != "" {
			msg += ": " + h
		}
		return nil, errors.New(msg)
	}
}

func (s *sources) getOnce(ctx context.Context, rawURL string, header map[string]string) ([]byte, int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, 0, 0, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, 0, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBytes+1))
	if err != nil {
		return nil, 0, 0, err
	}
	var retryAfter time.Duration
	if secs, perr := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); perr == nil && secs > 0 {
		retryAfter = time.Duration(secs) * time.Second
	}
	return body, resp.StatusCode, retryAfter, nil
}

// checkToken trims the token and checks that it looks like a JWT, without ever quoting it.
func checkToken(tok, from string) (string, error) {
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", fmt.Errorf("the CI token from %s is empty", from)
	}
	if len(tok) > maxTokenBytes {
		return "", fmt.Errorf("the CI token from %s is larger than %d KiB, so it is not a CI token", from, maxTokenBytes>>10)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return "", fmt.Errorf("the CI token from %s is not a JWT (expected three dot-separated parts)", from)
	}
	for _, p := range parts {
		if strings.IndexFunc(p, func(r rune) bool {
			return (r < 'A' || r > 'Z') && (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '_'
		}) >= 0 {
			return "", fmt.Errorf("the CI token from %s is not a JWT (a part is not base64url)", from)
		}
	}
	return tok, nil
}
