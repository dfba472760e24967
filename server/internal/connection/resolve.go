package connection

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// Options carries server configuration that presets depend on.
type Options struct {
	// DefaultAudience is the audience pinned by github/gitlab presets whose `audience` is unset.
	DefaultAudience string
	// AllowInsecureJWKS allows http:// and literal loopback/private/link-local IP JWKS URLs.
	AllowInsecureJWKS bool
}

// Preset constants (CONTRACT.md §1, Presets).
const (
	GitHubIssuer        = "https://token.actions.githubusercontent.com"
	GoogleIssuer        = "https://accounts.google.com"
	GoogleJWKSURL       = "https://www.googleapis.com/oauth2/v3/certs"
	CircleCIIssuerBase  = "https://oidc.circleci.com/org/"
	CircleCIProjectID   = "oidc.circleci.com/project-id"
	GitLabDotCom        = "gitlab.com"
	defaultTTLAmount    = 1
	defaultTTLUnit      = api.UnitHours
	fingerprintPrefixed = "sha256:"
)

// DefaultTokenTTL is the token TTL of a connection that sets none: one hour.
func DefaultTokenTTL() api.TokenTTL {
	return api.TokenTTL{Amount: defaultTTLAmount, Unit: defaultTTLUnit}
}

// Resolved is everything derived from a spec.
type Resolved struct {
	// Issuer is the preset's pinned issuer ("" for generic).
	Issuer string
	// JWKSURL is the user's override, or the preset's derived URL; "" when the keys come from
	// OIDC discovery (IssuerURL) or are given inline (InlineJWKS).
	JWKSURL string
	// IssuerURL is the issuer whose OIDC discovery document names the JWKS URL (generic only).
	IssuerURL string
	// InlineJWKS is the connection's inline JWKS document, and JWKSThumbprints the sorted RFC 7638
	// thumbprints of its keys (nil when it has none, or when it is invalid: Normalize refuses that).
	InlineJWKS      string
	JWKSThumbprints []string
	// EffectiveConditions are the preset's conditions (iss, aud, then scope conditions in CONTRACT.md
	// table order) followed by the user's.
	EffectiveConditions []api.Condition
	// Fingerprint is "sha256:<hex>" over the canonical JSON of what decides who gets a token.
	Fingerprint string
}

// Resolve derives the issuer, JWKS URL, effective conditions and fingerprint of a spec. The spec
// is expected to have passed Normalize; Resolve does not validate, but it never panics on an
// unnormalised spec (a missing provider_type is inferred, a missing TTL or identity claim takes
// the default).
func Resolve(spec api.ConnectionInput, opts Options) Resolved {
	pt := effectiveProviderType(spec)
	var r Resolved
	var preset []api.Condition
	derivedJWKS := ""

	switch pt {
	case api.ProviderGitHub:
		g := spec.GitHub
		if g == nil {
			g = &api.GitHubSettings{}
		}
		r.Issuer = githubIssuer(g)
		derivedJWKS = r.Issuer + "/.well-known/jwks"
		preset = append(preset, eq("iss", r.Issuer), eq("aud", orDefault(g.Audience, opts.DefaultAudience)))
		// Ids first: names can be registered again by someone else, ids cannot. Names given as
		// well are pinned as additional conditions.
		preset = appendEq(preset, "repository_owner_id", g.OwnerID)
		preset = appendEq(preset, "repository_owner", g.Owner)
		preset = appendEq(preset, "repository_id", g.RepositoryID)
		preset = appendEq(preset, "repository", g.Repository)
		preset = appendEq(preset, "ref", g.Ref)
		preset = appendEq(preset, "environment", g.Environment)
	case api.ProviderGitLab:
		g := spec.GitLab
		if g == nil {
			g = &api.GitLabSettings{}
		}
		r.Issuer = "https://" + g.Domain
		derivedJWKS = r.Issuer + "/oauth/discovery/keys"
		preset = append(preset, eq("iss", r.Issuer), eq("aud", orDefault(g.Audience, opts.DefaultAudience)))
		if g.Group != "" {
			preset = append(preset, cond("project_path", api.OpStartsWith, g.Group+"/"))
		}
		preset = appendEq(preset, "project_path", g.ProjectPath)
		preset = appendEq(preset, "project_id", g.ProjectID)
	case api.ProviderCircleCI:
		c := spec.CircleCI
		if c == nil {
			c = &api.CircleCISettings{}
		}
		r.Issuer = CircleCIIssuerBase + c.OrganizationID
		derivedJWKS = r.Issuer + "/.well-known/jwks-pub.json"
		preset = append(preset, eq("iss", r.Issuer), eq("aud", c.OrganizationID))
		preset = appendEq(preset, CircleCIProjectID, c.ProjectID)
	case api.ProviderGoogleCloud:
		g := spec.GoogleCloud
		if g == nil {
			g = &api.GoogleCloudSettings{}
		}
		r.Issuer = GoogleIssuer
		derivedJWKS = GoogleJWKSURL
		preset = append(preset, eq("iss", r.Issuer), eq("aud", g.ClientID))
		if g.Email != "" {
			preset = append(preset, eq("email", g.Email), eq("email_verified", "true"))
		}
		preset = appendEq(preset, "sub", g.AccountID)
	}

	r.JWKSURL = spec.JWKSURL
	switch {
	case spec.IssuerURL != "":
		r.IssuerURL = spec.IssuerURL
		// Discovery pins the issuer: its condition comes first (CONTRACT.md §1, issuer_url).
		preset = append([]api.Condition{eq("iss", spec.IssuerURL)}, preset...)
	case spec.JWKS != "":
		r.InlineJWKS = spec.JWKS
		r.JWKSThumbprints, _ = InlineJWKSThumbprints(spec.JWKS)
	case r.JWKSURL == "":
		r.JWKSURL = derivedJWKS
	}
	r.EffectiveConditions = make([]api.Condition, 0, len(preset)+len(spec.Conditions))
	r.EffectiveConditions = append(r.EffectiveConditions, preset...)
	for _, c := range spec.Conditions {
		r.EffectiveConditions = append(r.EffectiveConditions, cloneCondition(c))
	}
	r.Fingerprint = fingerprint(spec, pt, r)
	return r
}

// githubIssuer is the issuer of a github preset: GitHub.com's, an enterprise's on GitHub
// Enterprise Cloud (…/<enterprise_slug>), or a GitHub Enterprise Server's (https://<host>/_services/token).
func githubIssuer(g *api.GitHubSettings) string {
	switch {
	case g.Host != "":
		return "https://" + g.Host + "/_services/token"
	case g.EnterpriseSlug != "":
		return GitHubIssuer + "/" + g.EnterpriseSlug
	}
	return GitHubIssuer
}

// effectiveProviderType is spec.ProviderType, or inferred from the single preset block (generic
// when none) for an unnormalised spec.
func effectiveProviderType(spec api.ConnectionInput) string {
	if spec.ProviderType != "" {
		return spec.ProviderType
	}
	if blocks := presentBlocks(spec); len(blocks) == 1 {
		return blocks[0]
	}
	return api.ProviderGeneric
}

// presentBlocks lists the preset blocks present in a spec, in api.ProviderTypes order.
func presentBlocks(spec api.ConnectionInput) []string {
	var out []string
	if spec.GitHub != nil {
		out = append(out, api.ProviderGitHub)
	}
	if spec.GitLab != nil {
		out = append(out, api.ProviderGitLab)
	}
	if spec.CircleCI != nil {
		out = append(out, api.ProviderCircleCI)
	}
	if spec.GoogleCloud != nil {
		out = append(out, api.ProviderGoogleCloud)
	}
	return out
}

func orDefault(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

func cond(claim, op, value string) api.Condition {
	return api.Condition{Claim: claim, Operator: op, Value: &value}
}

func eq(claim, value string) api.Condition { return cond(claim, api.OpEquals, value) }

// appendEq adds an equals condition when the preset input is set.
func appendEq(cs []api.Condition, claim, value string) []api.Condition {
	if value == "" {
		return cs
	}
	return append(cs, eq(claim, value))
}

func cloneCondition(c api.Condition) api.Condition {
	out := api.Condition{Claim: c.Claim, Operator: c.Operator}
	if c.Value != nil {
		v := *c.Value
		out.Value = &v
	}
	if len(c.Values) > 0 {
		out.Values = append([]string(nil), c.Values...)
	}
	return out
}

// fingerprintDoc is the canonical document the fingerprint hashes. Its field order and JSON
// names are part of the contract: changing them changes every fingerprint and so invalidates
// every approval (TestFingerprintGolden pins one value).
type fingerprintDoc struct {
	ProviderType        string                   `json:"provider_type"`
	GitHub              *api.GitHubSettings      `json:"github,omitempty"`
	GitLab              *api.GitLabSettings      `json:"gitlab,omitempty"`
	CircleCI            *api.CircleCISettings    `json:"circleci,omitempty"`
	GoogleCloud         *api.GoogleCloudSettings `json:"google_cloud,omitempty"`
	JWKSURL             string                   `json:"jwks_url"`
	TokenTTL            api.TokenTTL             `json:"token_ttl"`
	IdentityClaim       string                   `json:"identity_claim"`
	EffectiveConditions []api.Condition          `json:"effective_conditions"`
	// Added in v2, at the end and omitted when empty, so that stored connections keep their
	// fingerprint.
	IssuerURL     string            `json:"issuer_url,omitempty"`
	JWKS          []string          `json:"jwks,omitempty"`
	ClaimMappings map[string]string `json:"claim_mappings,omitempty"`
	TokenAudience []string          `json:"token_audience,omitempty"`
	SingleUse     bool              `json:"single_use,omitempty"`
}

func fingerprint(spec api.ConnectionInput, pt string, r Resolved) string {
	doc := fingerprintDoc{
		ProviderType:        pt,
		JWKSURL:             r.JWKSURL,
		TokenTTL:            DefaultTokenTTL(),
		IdentityClaim:       orDefault(spec.IdentityClaim, api.DefaultIdentity),
		EffectiveConditions: r.EffectiveConditions,
		IssuerURL:           r.IssuerURL,
		JWKS:                r.JWKSThumbprints,
		ClaimMappings:       spec.ClaimMappings,
		TokenAudience:       spec.TokenAudience,
		SingleUse:           spec.SingleUse,
	}
	if spec.TokenTTL != nil {
		doc.TokenTTL = *spec.TokenTTL
	}
	// Only the block of the connection's type decides anything.
	switch pt {
	case api.ProviderGitHub:
		doc.GitHub = spec.GitHub
	case api.ProviderGitLab:
		doc.GitLab = spec.GitLab
	case api.ProviderCircleCI:
		doc.CircleCI = spec.CircleCI
	case api.ProviderGoogleCloud:
		doc.GoogleCloud = spec.GoogleCloud
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		// Only strings, ints and pointers to them: encoding cannot fail.
		panic("connection: fingerprint encoding: " + err.Error())
	}
	sum := sha256.Sum256(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	return fingerprintPrefixed + hex.EncodeToString(sum[:])
}
