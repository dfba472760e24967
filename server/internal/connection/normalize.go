package connection

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

var (
	namePattern = regexp.MustCompile(api.NamePattern)
	// GitHub owner (user or organisation) and repository names; EMU user names carry "_".
	githubOwnerPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$`)
	githubRepoPattern  = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}$`)
	// URL path-segment safe identifiers (enterprise_slug, organization_id).
	slugPattern    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$`)
	decimalPattern = regexp.MustCompile(api.DecimalIDPattern)
	// One GitLab namespace path segment.
	gitlabSegment = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$`)
	// Names of the access token's mapped claims.
	claimMappingName = regexp.MustCompile(api.ClaimMappingNamePattern)
)

// maxShortText bounds free-text preset inputs and claim names (not in CONTRACT.md; a safety bound far
// above any real value).
const maxShortText = 1024

type fieldErrors []api.FieldError

func (fe *fieldErrors) add(field, format string, args ...any) {
	*fe = append(*fe, api.FieldError{Field: field, Detail: fmt.Sprintf(format, args...)})
}

// Normalize validates a create input, or the result of a merge patch, and returns the normalised
// spec: ProviderType set (inferred from the single preset block when omitted, generic when there
// is none), TokenTTL defaulted to one hour, IdentityClaim defaulted to "sub", JWKSURL left as the
// user's override or "" (derived). Every invalid field is reported at once in one *Error of
// KindValidation; a tenancy refusal names what to add and why.
func Normalize(in api.ConnectionInput, opts Options) (api.ConnectionInput, error) {
	var fe fieldErrors
	out := in
	out.Conditions = make([]api.Condition, 0, len(in.Conditions))
	for _, c := range in.Conditions {
		out.Conditions = append(out.Conditions, cloneCondition(c))
	}
	if len(out.Conditions) == 0 {
		out.Conditions = nil
	}

	validateNameAndDescription(in, &fe)
	typeOK := normalizeProviderType(in, &out, &fe)
	validatePresetBlocks(in, opts, &fe)
	validateKeySource(in, out.ProviderType, typeOK, opts, &fe)
	normalizeTTL(in, &out, &fe)
	normalizeIdentityClaim(in, &out, &fe)
	validateTokenShape(in, &out, &fe)
	for i, c := range out.Conditions {
		validateCondition(i, &out.Conditions[i], c, &fe)
	}

	// Tenancy is only meaningful once the type is clear and the parts it reads are valid.
	var tenancyErr *api.FieldError
	if typeOK {
		if tenancyErr = tenancy(out, opts); tenancyErr != nil {
			fe = append(fe, *tenancyErr)
		}
	}

	if len(fe) > 0 {
		detail := DefaultValidationDetail
		if t := tenancyErr; t != nil {
			detail = t.Detail
		}
		return api.ConnectionInput{}, ValidationDetail(detail, fe...)
	}
	return out, nil
}

func validateNameAndDescription(in api.ConnectionInput, fe *fieldErrors) {
	switch {
	case in.Name == "":
		fe.add("name", "is required")
	case !namePattern.MatchString(in.Name):
		fe.add("name", "must be 1–63 lowercase letters, digits and hyphens, starting and ending with a letter or digit (%s)", api.NamePattern)
	case LooksLikeID(in.Name):
		// {ref} in the API and the audit filter is "id or name": a name shaped like an id could
		// shadow another connection's id.
		fe.add("name", "must not have the shape of a connection id (a UUID): choose a descriptive name")
	}
	if n := utf8.RuneCountInString(in.Description); n > api.MaxDescriptionLen {
		fe.add("description", "is %d characters long; at most %d are allowed", n, api.MaxDescriptionLen)
	}
}

// normalizeProviderType sets out.ProviderType (inferred from the single preset block when the
// input names none) and reports whether the type and the blocks agree.
func normalizeProviderType(in api.ConnectionInput, out *api.ConnectionInput, fe *fieldErrors) bool {
	blocks := presentBlocks(in)
	switch {
	case in.ProviderType == "":
		switch len(blocks) {
		case 0:
			out.ProviderType = api.ProviderGeneric
		case 1:
			out.ProviderType = blocks[0]
		default:
			fe.add("provider_type", "give at most one preset block; got %s", strings.Join(blocks, ", "))
			return false
		}
		return true
	case !slices.Contains(api.ProviderTypes, in.ProviderType):
		fe.add("provider_type", "must be one of %s; got %q", strings.Join(api.ProviderTypes, ", "), in.ProviderType)
		return false
	}
	ok := true
	for _, b := range blocks {
		if b != in.ProviderType {
			if in.ProviderType == api.ProviderGeneric {
				fe.add(b, "a generic connection takes no preset block; remove %s or set provider_type to %q", b, b)
			} else {
				fe.add(b, "provider_type is %q, so only a %s block may be given; remove %s", in.ProviderType, in.ProviderType, b)
			}
			ok = false
		}
	}
	if in.ProviderType != api.ProviderGeneric && !slices.Contains(blocks, in.ProviderType) {
		fe.add(in.ProviderType, "provider_type %q needs a %s block", in.ProviderType, in.ProviderType)
		ok = false
	}
	return ok
}

// validatePresetBlocks checks each present block on its own, so that all errors come at once.
func validatePresetBlocks(in api.ConnectionInput, opts Options, fe *fieldErrors) {
	if in.GitHub != nil {
		validateGitHub(in.GitHub, opts, fe)
	}
	if in.GitLab != nil {
		validateGitLab(in.GitLab, opts, fe)
	}
	if in.CircleCI != nil {
		validateCircleCI(in.CircleCI, fe)
	}
	if in.GoogleCloud != nil {
		validateGoogleCloud(in.GoogleCloud, fe)
	}
}

// validateKeySource checks where the signing keys come from: at most one of a jwks_url override,
// an issuer_url for OIDC discovery (generic only) and an inline jwks; with none, the preset's
// derived URL; a generic connection must name one.
func validateKeySource(in api.ConnectionInput, providerType string, typeOK bool, opts Options, fe *fieldErrors) {
	var given []string
	for _, f := range []struct{ name, value string }{{"jwks_url", in.JWKSURL}, {"issuer_url", in.IssuerURL}, {"jwks", in.JWKS}} {
		if f.value != "" {
			given = append(given, f.name)
		}
	}
	for _, name := range given[min(1, len(given)):] {
		fe.add(name, "give only one key source: %s are all set; keep one of jwks_url (where the keys are published), issuer_url (OIDC discovery) or jwks (the keys inline)", strings.Join(given, ", "))
	}
	if in.JWKSURL != "" {
		if msg := checkJWKSURL(in.JWKSURL, opts); msg != "" {
			fe.add("jwks_url", "%s", msg)
		}
	}
	if in.IssuerURL != "" {
		switch {
		case typeOK && providerType != api.ProviderGeneric:
			fe.add("issuer_url", "is for generic connections only: the %s preset already knows its issuer and keys (to give the keys inline, use jwks)", providerType)
		default:
			if msg := checkIssuerURL(in.IssuerURL, opts); msg != "" {
				fe.add("issuer_url", "%s", msg)
			}
		}
	}
	if in.JWKS != "" {
		if _, err := InlineJWKSThumbprints(in.JWKS); err != nil {
			fe.add("jwks", "%s", err.Error())
		}
	}
	if len(given) == 0 && typeOK && providerType == api.ProviderGeneric {
		fe.add("jwks_url", "is required for a generic connection: say where the issuer publishes its signing keys (or set issuer_url for OIDC discovery, or jwks to give the keys inline)")
	}
}

// checkIssuerURL returns why an issuer_url is refused, or "": the JWKS URL rules (https, no
// internal addresses) and no query (OpenID Connect Discovery §3: an issuer identifier has none).
// A trailing slash is kept as written: some issuers put one in iss, and the discovery document's
// issuer must equal issuer_url byte for byte.
func checkIssuerURL(raw string, opts Options) string {
	if msg := checkJWKSURL(raw, opts); msg != "" {
		return msg
	}
	if strings.Contains(raw, "?") {
		return "must not have a query: an issuer identifier has none, and it is compared byte for byte with the discovery document's issuer and the tokens' iss"
	}
	return ""
}

// validateTokenShape checks the fields that shape the issued access token: claim_mappings and
// token_audience (an empty list means the same as none).
func validateTokenShape(in api.ConnectionInput, out *api.ConnectionInput, fe *fieldErrors) {
	if len(in.ClaimMappings) > api.MaxClaimMappings {
		fe.add("claim_mappings", "has %d entries; at most %d are allowed", len(in.ClaimMappings), api.MaxClaimMappings)
	}
	names := make([]string, 0, len(in.ClaimMappings))
	for name := range in.ClaimMappings {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !claimMappingName.MatchString(name) {
			fe.add("claim_mappings."+name, "is not a valid access-token claim name: lowercase letters, digits and underscores, starting with a letter, at most 64 (%s)", api.ClaimMappingNamePattern)
			continue
		}
		if msg := checkClaimName(in.ClaimMappings[name]); msg != "" {
			fe.add("claim_mappings."+name, "source claim %s", msg)
		}
	}
	if len(in.ClaimMappings) == 0 {
		out.ClaimMappings = nil
	} else {
		out.ClaimMappings = make(map[string]string, len(in.ClaimMappings))
		for k, v := range in.ClaimMappings {
			out.ClaimMappings[k] = v
		}
	}

	out.TokenAudience = nil
	if len(in.TokenAudience) == 0 {
		return
	}
	if len(in.TokenAudience) > api.MaxTokenAudiences {
		fe.add("token_audience", "lists %d audiences; at most %d are allowed", len(in.TokenAudience), api.MaxTokenAudiences)
	}
	seen := map[string]bool{}
	for i, aud := range in.TokenAudience {
		f := fmt.Sprintf("token_audience[%d]", i)
		switch {
		case aud == "":
			fe.add(f, "must not be empty")
		case strings.TrimSpace(aud) != aud:
			fe.add(f, "must not start or end with white space")
		case len(aud) > maxShortText:
			fe.add(f, "is longer than %d bytes", maxShortText)
		case seen[aud]:
			fe.add(f, "%q is listed twice", aud)
		}
		seen[aud] = true
	}
	out.TokenAudience = slices.Clone(in.TokenAudience)
}

func normalizeTTL(in api.ConnectionInput, out *api.ConnectionInput, fe *fieldErrors) {
	if in.TokenTTL == nil {
		ttl := DefaultTokenTTL()
		out.TokenTTL = &ttl
		return
	}
	ttl := *in.TokenTTL
	out.TokenTTL = &ttl
	validateTTL(ttl, fe)
}

func normalizeIdentityClaim(in api.ConnectionInput, out *api.ConnectionInput, fe *fieldErrors) {
	if in.IdentityClaim == "" {
		out.IdentityClaim = api.DefaultIdentity
	} else if msg := checkClaimName(in.IdentityClaim); msg != "" {
		fe.add("identity_claim", "%s", msg)
	}
}

func validateTTL(ttl api.TokenTTL, fe *fieldErrors) {
	known := api.TTLUnitSeconds(ttl.Unit) > 0
	if !known {
		fe.add("token_ttl.unit", "must be one of %s; got %q", strings.Join(api.TTLUnits, ", "), ttl.Unit)
	}
	if ttl.Amount < 1 {
		fe.add("token_ttl.amount", "must be at least 1; got %d", ttl.Amount)
		return
	}
	if known && !api.TTLInRange(ttl.Amount, ttl.Unit) {
		fe.add("token_ttl", "must total between 60 seconds and 24 hours; %d %s is out of range", ttl.Amount, ttl.Unit)
	}
}

// checkClaimName validates a claim reference (condition claim, identity claim, claim_mappings
// source): the rule lives in api.ClaimReferenceProblem, which the provider's plan-time validators
// use too.
func checkClaimName(claim string) string { return api.ClaimReferenceProblem(claim) }

// validateCondition checks one user condition; it also drops an empty values list on operators
// that take none, so that `"values": []` and no values mean the same.
func validateCondition(i int, dst *api.Condition, c api.Condition, fe *fieldErrors) {
	p := fmt.Sprintf("conditions[%d]", i)
	if msg := checkClaimName(c.Claim); msg != "" {
		fe.add(p+".claim", "%s", msg)
	}
	switch c.Operator {
	case api.OpEquals, api.OpStartsWith, api.OpNotEquals, api.OpGlob:
		switch {
		case c.Value == nil:
			fe.add(p+".value", "is required for operator %s", c.Operator)
		case c.Operator == api.OpStartsWith && *c.Value == "":
			fe.add(p+".value", "must not be empty for starts_with: every string starts with \"\"; use exists to require the claim")
		case c.Operator == api.OpGlob && api.GlobPatternProblem(*c.Value) != "":
			// The pattern rule lives in package api: the provider checks it at plan time too.
			fe.add(p+".value", "%s", api.GlobPatternProblem(*c.Value))
		}
		if len(c.Values) > 0 {
			fe.add(p+".values", "is only for operator one_of; use value with %s", c.Operator)
		}
		dst.Values = nil
	case api.OpExists:
		if c.Value != nil {
			fe.add(p+".value", "must be absent for operator exists")
		}
		if len(c.Values) > 0 {
			fe.add(p+".values", "must be absent for operator exists")
		}
		dst.Values = nil
	case api.OpOneOf:
		if c.Value != nil {
			fe.add(p+".value", "is not used by one_of; put the allowed values in values")
		}
		if len(c.Values) < 1 || len(c.Values) > api.MaxOneOfValues {
			fe.add(p+".values", "must list 1 to %d values for one_of; got %d", api.MaxOneOfValues, len(c.Values))
		}
	case "":
		fe.add(p+".operator", "is required: one of %s", strings.Join(api.Operators, ", "))
	default:
		fe.add(p+".operator", "must be one of %s; got %q", strings.Join(api.Operators, ", "), c.Operator)
	}
}

func validateGitHub(g *api.GitHubSettings, opts Options, fe *fieldErrors) {
	switch {
	case g.OwnerID == "":
		fe.add("github.owner_id", "is required: the numeric ID of the user or organisation that owns the repositories (GitHub's repository_owner_id claim; `gh api orgs/<owner> --jq .id`). Names can be registered again by someone else, ids cannot")
	case !decimalPattern.MatchString(g.OwnerID):
		fe.add("github.owner_id", "must be the owner's numeric ID as a string (for example \"65\"); got %q", g.OwnerID)
	}
	if g.Owner != "" && !githubOwnerPattern.MatchString(g.Owner) {
		fe.add("github.owner", "must be a GitHub user or organisation name (letters, digits, hyphens); got %q", g.Owner)
	}
	if g.RepositoryID != "" && !decimalPattern.MatchString(g.RepositoryID) {
		fe.add("github.repository_id", "must be the repository's numeric ID as a string (GitHub's repository_id claim; `gh api repos/<owner>/<name> --jq .id`); got %q", g.RepositoryID)
	}
	if g.Repository != "" {
		owner, name, ok := strings.Cut(g.Repository, "/")
		switch {
		case !ok || !githubOwnerPattern.MatchString(owner) || !githubRepoPattern.MatchString(name):
			fe.add("github.repository", "must be written as owner/name (for example %q); got %q", orDefault(g.Owner, "acme")+"/app", g.Repository)
		case g.Owner != "" && owner != g.Owner:
			fe.add("github.repository", "%q is not under owner %q: write it as %s/<name> (names compare exactly, case included)", g.Repository, g.Owner, g.Owner)
		}
	}
	if g.Ref != "" && !strings.HasPrefix(g.Ref, "refs/") {
		fe.add("github.ref", "must be a fully qualified ref as GitHub puts it in the token (refs/heads/%s or refs/tags/%s); got %q", g.Ref, g.Ref, g.Ref)
	} else if len(g.Ref) > maxShortText {
		fe.add("github.ref", "is longer than %d bytes", maxShortText)
	}
	if len(g.Environment) > maxShortText {
		fe.add("github.environment", "is longer than %d bytes", maxShortText)
	}
	if g.EnterpriseSlug != "" && !slugPattern.MatchString(g.EnterpriseSlug) {
		fe.add("github.enterprise_slug", "must be a URL-safe enterprise slug (letters, digits, hyphens, underscores); got %q", g.EnterpriseSlug)
	}
	if g.Host != "" {
		switch msg := checkHost(g.Host); {
		case msg != "":
			fe.add("github.host", "%s", msg)
		case g.EnterpriseSlug != "":
			fe.add("github.host", "names a GitHub Enterprise Server, whose issuer has no enterprise slug: remove enterprise_slug (it is for GitHub Enterprise Cloud) or host")
		case strings.EqualFold(g.Host, "github.com") || strings.EqualFold(g.Host, "token.actions.githubusercontent.com"):
			fe.add("github.host", "is for GitHub Enterprise Server only: leave it out for github.com")
		default:
			if msg := checkJWKSURL(githubIssuer(g)+"/.well-known/jwks", opts); msg != "" {
				fe.add("github.host", "gives the JWKS URL %s/.well-known/jwks, which is refused: %s", githubIssuer(g), msg)
			}
		}
	}
	checkAudience("github.audience", g.Audience, opts, fe)
}

func validateGitLab(g *api.GitLabSettings, opts Options, fe *fieldErrors) {
	if g.Domain == "" {
		fe.add("gitlab.domain", "is required: the host name of the GitLab instance, such as gitlab.com")
	} else if msg := checkHost(g.Domain); msg != "" {
		fe.add("gitlab.domain", "%s", msg)
	} else if msg := checkJWKSURL("https://"+g.Domain+"/oauth/discovery/keys", opts); msg != "" {
		fe.add("gitlab.domain", "gives the JWKS URL https://%s/oauth/discovery/keys, which is refused: %s", g.Domain, msg)
	}
	if g.Group != "" {
		if msg := checkGitLabPath(g.Group); msg != "" {
			fe.add("gitlab.group", "%s", msg)
		}
	}
	if g.ProjectPath != "" {
		if msg := checkGitLabPath(g.ProjectPath); msg != "" {
			fe.add("gitlab.project_path", "%s", msg)
		} else if !strings.Contains(g.ProjectPath, "/") {
			fe.add("gitlab.project_path", "must be the full path group/project; got %q", g.ProjectPath)
		} else if g.Group != "" && !strings.HasPrefix(g.ProjectPath, g.Group+"/") {
			fe.add("gitlab.project_path", "%q is not under group %q, so no token could ever match both", g.ProjectPath, g.Group)
		}
	}
	if g.ProjectID != "" && !decimalPattern.MatchString(g.ProjectID) {
		fe.add("gitlab.project_id", "must be the project's numeric ID as a string (for example \"20\"); got %q", g.ProjectID)
	}
	checkAudience("gitlab.audience", g.Audience, opts, fe)
}

func validateCircleCI(c *api.CircleCISettings, fe *fieldErrors) {
	switch {
	case c.OrganizationID == "":
		fe.add("circleci.organization_id", "is required: the CircleCI organization ID (a UUID, under Organization Settings)")
	case !slugPattern.MatchString(c.OrganizationID):
		fe.add("circleci.organization_id", "must be URL-safe (letters, digits, hyphens; CircleCI uses a UUID); got %q", c.OrganizationID)
	}
	if len(c.ProjectID) > maxShortText {
		fe.add("circleci.project_id", "is longer than %d bytes", maxShortText)
	}
}

func validateGoogleCloud(g *api.GoogleCloudSettings, fe *fieldErrors) {
	switch {
	case g.ClientID == "":
		fe.add("google_cloud.client_id", "is required: the audience your workloads request in their ID tokens")
	case len(g.ClientID) > maxShortText:
		fe.add("google_cloud.client_id", "is longer than %d bytes", maxShortText)
	case strings.TrimSpace(g.ClientID) != g.ClientID:
		fe.add("google_cloud.client_id", "must not start or end with white space")
	}
	if g.Email != "" {
		local, domain, ok := strings.Cut(g.Email, "@")
		if !ok || local == "" || domain == "" || strings.ContainsAny(g.Email, " \t\r\n") || strings.Count(g.Email, "@") != 1 {
			fe.add("google_cloud.email", "must be an e-mail address such as deployer@my-project.iam.gserviceaccount.com; got %q", g.Email)
		}
	}
	if g.AccountID != "" && !decimalPattern.MatchString(g.AccountID) {
		fe.add("google_cloud.account_id", "must be the account's numeric unique ID (the token's sub); got %q", g.AccountID)
	}
}

func checkAudience(field, aud string, opts Options, fe *fieldErrors) {
	switch {
	case aud == "" && opts.DefaultAudience == "":
		fe.add(field, "is required: the server has no default audience configured")
	case len(aud) > maxShortText:
		fe.add(field, "is longer than %d bytes", maxShortText)
	case strings.TrimSpace(aud) != aud:
		fe.add(field, "must not start or end with white space")
	}
}

// checkHost validates a host name with an optional port (gitlab.domain, github.host): the rule
// lives in api.HostProblem, which the provider's plan-time validator uses too.
func checkHost(hostport string) string { return api.HostProblem(hostport) }

func checkGitLabPath(p string) string {
	if len(p) > maxShortText {
		return fmt.Sprintf("is longer than %d bytes", maxShortText)
	}
	for _, seg := range strings.Split(p, "/") {
		if !gitlabSegment.MatchString(seg) {
			return fmt.Sprintf("must be a GitLab path such as my-group or my-group/my-project, without leading or trailing slash; got %q", p)
		}
	}
	return ""
}

// checkJWKSURL returns why a JWKS URL is refused, or "". Only literal addresses are checked here;
// host names are checked when resolved, at fetch time.
func checkJWKSURL(raw string, opts Options) string {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Sprintf("is not a valid URL: %v", err)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !opts.AllowInsecureJWKS {
			return "must use https (http is allowed only when the server runs with --allow-insecure-jwks)"
		}
	default:
		return fmt.Sprintf("must be an https URL; got scheme %q", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return "must name a host"
	}
	if u.User != nil {
		return "must not carry user credentials"
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return "must not have a fragment"
	}
	if opts.AllowInsecureJWKS {
		return ""
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return "must not point at localhost (allowed only with --allow-insecure-jwks)"
	}
	if addr, err := netip.ParseAddr(host); err == nil && BlockedJWKSAddr(addr) {
		return fmt.Sprintf("must not point at the loopback, private or link-local address %s (allowed only with --allow-insecure-jwks)", addr.Unmap())
	}
	return ""
}

// BlockedJWKSAddr reports whether a JWKS URL may not reach addr outside --allow-insecure-jwks
// (see JWKSAddrRefusal for the list and the reason).
func BlockedJWKSAddr(addr netip.Addr) bool { return JWKSAddrRefusal(addr) != "" }

// blockedPrefixes are address ranges a JWKS fetch may not reach unless insecure JWKS URLs are
// allowed, besides what netip classifies as loopback, private (including IPv6 unique-local
// fc00::/7), link-local, multicast or unspecified. The IPv6 ranges are the forms that carry or
// reach an IPv4 address some gateway forwards to; each is refused whole because its last hop
// cannot be judged from here:
//   - ::/96 (IPv4-compatible) and ::ffff:0:0:0/96 (SIIT IPv4-translated) are deprecated or
//     translator-internal; no public host is addressed that way.
//   - 2002::/16 (6to4, deprecated by RFC 7526): the embedded IPv4 names only the site's 6to4
//     router, the other 80 bits reach any host behind it, so checking the embedded address would
//     still let 2002:<public router>::<internal host> through. 2001::/32 (Teredo) likewise.
//   - 64:ff9b:1::/48 (local-use NAT64, RFC 8215): the operator's own translator, mapping to
//     whatever it is configured to, internal networks included.
//   - fec0::/10 (site-local, deprecated but still routed inside some sites) and 100::/64
//     (discard-only).
//
// The well-known NAT64 prefix 64:ff9b::/96 is not here: JWKSAddrRefusal checks its embedded IPv4
// instead, because IPv6-only hosts behind DNS64 reach real IPv4-only JWKS hosts through it.
var blockedPrefixes = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "reserved address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "reserved address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "reserved address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved address"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible IPv6 address"},
	{netip.MustParsePrefix("::ffff:0:0:0/96"), "IPv4-translated IPv6 address"},
	{netip.MustParsePrefix("2002::/16"), "6to4 address"},
	{netip.MustParsePrefix("2001::/32"), "Teredo address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64 address"},
	{netip.MustParsePrefix("fec0::/10"), "site-local address"},
	{netip.MustParsePrefix("100::/64"), "discard-only address"},
}

// nat64WellKnown is the NAT64 well-known prefix (RFC 6052): its last 32 bits are an IPv4 address.
var nat64WellKnown = netip.MustParsePrefix("64:ff9b::/96")

// JWKSAddrRefusal says why a JWKS URL may not reach ip outside --allow-insecure-jwks, or "" when
// it may. It is the one rule: Normalize applies it to literal hosts at create/update time, and the
// jwtverify package's dialer applies it to every resolved address at fetch time.
func JWKSAddrRefusal(ip netip.Addr) string {
	ip = ip.Unmap() // IPv4-mapped ::ffff:a.b.c.d is judged as a.b.c.d
	if nat64WellKnown.Contains(ip) {
		// RFC 6052 §3.1 forbids non-global IPv4 addresses behind the well-known prefix, but the
		// translator does not enforce it: the embedded address must pass the IPv4 rules.
		b := ip.As16()
		if why := JWKSAddrRefusal(netip.AddrFrom4([4]byte(b[12:]))); why != "" {
			return why + " behind NAT64"
		}
		return ""
	}
	switch {
	case !ip.IsValid():
		return "not an IP address"
	case ip.IsLoopback():
		return "loopback address"
	case ip.IsPrivate():
		return "private address"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		return "link-local address"
	case ip.IsUnspecified():
		return "unspecified address"
	case ip.IsMulticast(), ip.IsInterfaceLocalMulticast():
		return "multicast address"
	}
	for _, p := range blockedPrefixes {
		if p.prefix.Contains(ip) {
			return p.why
		}
	}
	return ""
}

// LooksLikeID reports whether ref has the shape of a connection id (a UUID), so that "id or name"
// lookups are never ambiguous.
func LooksLikeID(ref string) bool {
	return len(ref) == 36 && uuidPattern.MatchString(ref)
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// tenancyField is the field a generic connection's tenancy refusal is reported on: the user's
// conditions are what must change. Preset tenancy refusals name the preset block instead.
const tenancyField = "conditions"

// tenancy enforces CONTRACT.md §1's tenancy rules on a spec whose type is known: a shared issuer
// needs a scope, or any of its customers could obtain tokens.
func tenancy(spec api.ConnectionInput, opts Options) *api.FieldError {
	switch spec.ProviderType {
	case api.ProviderGitLab:
		g := spec.GitLab
		if g == nil {
			return nil
		}
		if isGitLabDotCom(g.Domain) && g.Group == "" && g.ProjectPath == "" && g.ProjectID == "" {
			return &api.FieldError{Field: "gitlab", Detail: "gitlab.com is shared by every GitLab.com user: set at least one of gitlab.group, gitlab.project_path or gitlab.project_id so that only your projects' tokens are accepted"}
		}
	case api.ProviderGoogleCloud:
		g := spec.GoogleCloud
		if g != nil && g.Email == "" && g.AccountID == "" {
			return &api.FieldError{Field: "google_cloud", Detail: "Google's issuer and audiences are shared by every Google customer: set google_cloud.email or google_cloud.account_id so that only your service account's tokens are accepted"}
		}
	case api.ProviderGeneric:
		var missing []string
		for _, claim := range []string{"iss", "aud"} {
			if claim == "iss" && spec.IssuerURL != "" {
				continue // issuer_url pins iss: its condition comes first in effective_conditions
			}
			if !pinsClaim(spec.Conditions, claim, api.OpEquals, api.OpOneOf) {
				missing = append(missing, claim)
			}
		}
		if len(missing) > 0 {
			return &api.FieldError{Field: tenancyField, Detail: fmt.Sprintf(
				"a generic connection must pin the issuer and the audience: add an equals or one_of condition on %s, so that tokens minted by another issuer or for another audience are refused",
				strings.Join(missing, " and "))}
		}
		return sharedIssuerScope(spec)
	}
	return nil
}

// sharedService is an issuer that every tenant of a service shares, and the scope a connection
// trusting it must pin (CONTRACT.md §1, "Shared issuers stay scoped whatever the type").
type sharedService struct {
	name   string
	preset string
	// names reports whether an issuer URL (an iss value) is this service's.
	names func(iss string) bool
	// jwksHosts are the hosts that serve this service's signing keys.
	jwksHosts []string
	// scoped reports whether the user's conditions pin the scope the preset would require.
	scoped func(conds []api.Condition) bool
	need   string
}

var sharedServices = []sharedService{
	{
		name: "GitHub Actions", preset: api.ProviderGitHub,
		names: func(iss string) bool {
			return iss == GitHubIssuer || strings.HasPrefix(iss, GitHubIssuer+"/")
		},
		jwksHosts: []string{"token.actions.githubusercontent.com"},
		scoped:    func(cs []api.Condition) bool { return pinsClaim(cs, "repository_owner_id", api.OpEquals) },
		need:      "an equals condition on repository_owner_id (the owner's numeric id: names can be registered again, ids cannot)",
	},
	{
		name: "GitLab.com", preset: api.ProviderGitLab,
		names:     func(iss string) bool { return strings.TrimSuffix(iss, "/") == "https://"+GitLabDotCom },
		jwksHosts: []string{GitLabDotCom},
		scoped: func(cs []api.Condition) bool {
			return pinsClaim(cs, "project_id", api.OpEquals, api.OpOneOf) ||
				pinsClaim(cs, "namespace_id", api.OpEquals, api.OpOneOf) ||
				pinsClaim(cs, "project_path", api.OpEquals, api.OpOneOf) ||
				pinsPathPrefix(cs, "project_path")
		},
		need: "a condition on project_id or namespace_id (equals or one_of), or on project_path (equals, one_of, or starts_with a group path ending in \"/\")",
	},
	{
		name: "Google", preset: api.ProviderGoogleCloud,
		names: func(iss string) bool {
			return iss == GoogleIssuer || iss == strings.TrimPrefix(GoogleIssuer, "https://")
		},
		jwksHosts: []string{"www.googleapis.com", "googleapis.com"},
		scoped: func(cs []api.Condition) bool {
			return pinsClaim(cs, "email", api.OpEquals, api.OpOneOf) || pinsClaim(cs, "sub", api.OpEquals, api.OpOneOf)
		},
		need: "an equals or one_of condition on email or sub (the service account)",
	},
}

// sharedIssuerScope refuses a generic connection that trusts a shared issuer (named by its iss
// conditions, its issuer_url, or the host of its jwks_url) without the scope that issuer's preset requires:
// on GitHub and GitLab the CI job picks its own aud, so iss and aud alone admit every tenant.
func sharedIssuerScope(spec api.ConnectionInput) *api.FieldError {
	issuers := claimValues(spec.Conditions, "iss")
	if spec.IssuerURL != "" {
		issuers = append(issuers, spec.IssuerURL)
	}
	keyHosts := []string{urlHost(spec.JWKSURL)}
	for _, svc := range sharedServices {
		named := slices.ContainsFunc(issuers, svc.names) || slices.ContainsFunc(keyHosts, func(h string) bool { return slices.Contains(svc.jwksHosts, h) })
		if !named || svc.scoped(spec.Conditions) {
			continue
		}
		return &api.FieldError{Field: tenancyField, Detail: fmt.Sprintf(
			"this connection trusts %s's issuer, which every %s user shares (and the CI job chooses its own aud), so pinning iss and aud admits all of them: add %s, or use the %s preset, which pins it for you",
			svc.name, svc.name, svc.need, svc.preset)}
	}
	return nil
}

// claimValues lists the values that equals and one_of conditions on a top-level claim name.
func claimValues(conds []api.Condition, claim string) []string {
	var out []string
	for _, c := range conds {
		if c.Claim != claim && c.Claim != "/"+claim {
			continue
		}
		switch {
		case c.Operator == api.OpEquals && c.Value != nil:
			out = append(out, *c.Value)
		case c.Operator == api.OpOneOf:
			out = append(out, c.Values...)
		}
	}
	return out
}

// urlHost is the lowercase host name of a URL without port and trailing dot, or "".
func urlHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
}

// isGitLabDotCom reports whether a gitlab.domain names GitLab.com (with or without a port).
func isGitLabDotCom(domain string) bool {
	host := domain
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.EqualFold(strings.TrimSuffix(host, "."), GitLabDotCom)
}

// pinsPathPrefix reports whether a starts_with condition on claim pins a whole path prefix (a
// value ending in "/": "acme" would also admit "acme-evil/app").
func pinsPathPrefix(conds []api.Condition, claim string) bool {
	for _, c := range conds {
		if (c.Claim == claim || c.Claim == "/"+claim) && c.Operator == api.OpStartsWith && c.Value != nil &&
			len(*c.Value) > 1 && strings.HasSuffix(*c.Value, "/") {
			return true
		}
	}
	return false
}

// pinsClaim reports whether a user condition pins a top-level claim (by name or by pointer) with
// one of the operators, with a value.
func pinsClaim(conds []api.Condition, claim string, ops ...string) bool {
	for _, c := range conds {
		if c.Claim != claim && c.Claim != "/"+claim {
			continue
		}
		if !slices.Contains(ops, c.Operator) {
			continue
		}
		if (c.Operator == api.OpOneOf && len(c.Values) > 0) || (c.Operator != api.OpOneOf && c.Value != nil) {
			return true
		}
	}
	return false
}
