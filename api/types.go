// Package api holds the JSON wire types of the Trustgate admin API and token endpoint: the one
// definition of the contract in Go (CONTRACT.md §3–§4). The server encodes them, the typed client in
// server/apiclient decodes them, and the Terraform provider and `trustgate exchange` import them.
// This package has no dependencies beyond the standard library on purpose.
package api

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Provider types (CONTRACT.md §1).
const (
	ProviderGeneric     = "generic"
	ProviderGitHub      = "github"
	ProviderGitLab      = "gitlab"
	ProviderCircleCI    = "circleci"
	ProviderGoogleCloud = "google_cloud"
)

// ProviderTypes lists every provider type, generic first.
var ProviderTypes = []string{ProviderGeneric, ProviderGitHub, ProviderGitLab, ProviderCircleCI, ProviderGoogleCloud}

// Connection statuses.
const (
	StatusDraft    = "draft"
	StatusActive   = "active"
	StatusInactive = "inactive"
)

// Statuses lists every connection status.
var Statuses = []string{StatusDraft, StatusActive, StatusInactive}

// Condition operators.
const (
	OpEquals     = "equals"
	OpStartsWith = "starts_with"
	OpExists     = "exists"
	OpOneOf      = "one_of"
	// OpNotEquals: the claim is present and does not equal value (an array: no element equals it).
	OpNotEquals = "not_equals"
	// OpGlob: a string claim matches the pattern value (`*` within a path segment, `**` across
	// segments, `?` one character; CONTRACT.md §1).
	OpGlob = "glob"
)

// Operators lists every condition operator.
var Operators = []string{OpEquals, OpStartsWith, OpExists, OpOneOf, OpNotEquals, OpGlob}

// Token TTL units.
const (
	UnitSeconds = "seconds"
	UnitMinutes = "minutes"
	UnitHours   = "hours"
)

// TTLUnits lists every token TTL unit.
var TTLUnits = []string{UnitSeconds, UnitMinutes, UnitHours}

// Roles of principals (API keys).
const (
	RoleDevOpsAdmin   = "devops_admin"
	RoleSecurityAdmin = "security_admin"
	RoleAuditor       = "auditor"
)

// Roles lists every principal role.
var Roles = []string{RoleDevOpsAdmin, RoleSecurityAdmin, RoleAuditor}

// Limits shared by the server's validation and the provider's plan-time validators.
const (
	NamePattern        = `^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`
	MaxDescriptionLen  = 1024
	MinTokenTTLSeconds = 60
	MaxTokenTTLSeconds = 24 * 60 * 60
	MaxOneOfValues     = 50
	DefaultIdentity    = "sub"
	// claim_mappings: at most this many entries, each named by ClaimMappingNamePattern.
	MaxClaimMappings        = 20
	ClaimMappingNamePattern = `^[a-z][a-z0-9_]{0,63}$`
	// token_audience: 1 to this many entries.
	MaxTokenAudiences = 10
	// jwks (inline keys): at most this many bytes of JSON.
	MaxInlineJWKSBytes = 64 << 10
	// DecimalIDPattern is the shape of the numeric ids the presets pin (github.owner_id and
	// repository_id, gitlab.project_id, google_cloud.account_id), written as strings.
	DecimalIDPattern = `^[0-9]{1,32}$`
)

// TokenTTL is the lifetime of issued access tokens, stored exactly as given.
type TokenTTL struct {
	Amount int64  `json:"amount"`
	Unit   string `json:"unit"`
}

// Condition is one required claim. Value is a pointer so that "absent" (required for `exists`)
// differs from the empty string (a legal `equals` value).
type Condition struct {
	Claim    string   `json:"claim"`
	Operator string   `json:"operator"`
	Value    *string  `json:"value,omitempty"`
	Values   []string `json:"values,omitempty"`
}

// GitHubSettings are the inputs of the `github` preset. OwnerID (required) and RepositoryID pin
// immutable ids: names can be registered again by someone else after a rename or deletion, ids
// cannot. Host selects GitHub Enterprise Server. The field order is part of the fingerprint
// (connection.fingerprintDoc): new fields go at the end, with omitempty, so that the fingerprints
// of existing connections do not change.
type GitHubSettings struct {
	Owner          string `json:"owner,omitempty"`
	OwnerID        string `json:"owner_id,omitempty"`
	Repository     string `json:"repository,omitempty"`
	Ref            string `json:"ref,omitempty"`
	Environment    string `json:"environment,omitempty"`
	EnterpriseSlug string `json:"enterprise_slug,omitempty"`
	Audience       string `json:"audience,omitempty"`
	RepositoryID   string `json:"repository_id,omitempty"`
	Host           string `json:"host,omitempty"`
}

// GitLabSettings are the inputs of the `gitlab` preset.
type GitLabSettings struct {
	Domain      string `json:"domain"`
	Group       string `json:"group,omitempty"`
	ProjectPath string `json:"project_path,omitempty"`
	ProjectID   string `json:"project_id,omitempty"`
	Audience    string `json:"audience,omitempty"`
}

// CircleCISettings are the inputs of the `circleci` preset.
type CircleCISettings struct {
	OrganizationID string `json:"organization_id"`
	ProjectID      string `json:"project_id,omitempty"`
}

// GoogleCloudSettings are the inputs of the `google_cloud` preset.
type GoogleCloudSettings struct {
	ClientID  string `json:"client_id"`
	Email     string `json:"email,omitempty"`
	AccountID string `json:"account_id,omitempty"`
}

// ConnectionInput is the body of POST /v1/workload-connections. On PATCH the server applies the
// body as a JSON merge patch (RFC 7396) over the connection's current ConnectionInput.
// An empty JWKSURL means "derive it from the preset"; ProviderType may be omitted when exactly one
// preset block is given (generic when none).
type ConnectionInput struct {
	Name          string               `json:"name"`
	Description   string               `json:"description,omitempty"`
	ProviderType  string               `json:"provider_type,omitempty"`
	GitHub        *GitHubSettings      `json:"github,omitempty"`
	GitLab        *GitLabSettings      `json:"gitlab,omitempty"`
	CircleCI      *CircleCISettings    `json:"circleci,omitempty"`
	GoogleCloud   *GoogleCloudSettings `json:"google_cloud,omitempty"`
	JWKSURL       string               `json:"jwks_url,omitempty"`
	TokenTTL      *TokenTTL            `json:"token_ttl,omitempty"`
	IdentityClaim string               `json:"identity_claim,omitempty"`
	Conditions    []Condition          `json:"conditions,omitempty"`
	// IssuerURL (generic only, instead of jwks_url): OIDC discovery of the key source; implies the
	// condition iss equals IssuerURL.
	IssuerURL string `json:"issuer_url,omitempty"`
	// JWKS is an inline JWKS document (public keys only, at most MaxInlineJWKSBytes), for issuers
	// the server cannot reach. At most one of JWKSURL, IssuerURL and JWKS is set.
	JWKS string `json:"jwks,omitempty"`
	// ClaimMappings: access-token claim name → source claim (a name or a JSON pointer), copied into
	// the issued token's "claims" object.
	ClaimMappings map[string]string `json:"claim_mappings,omitempty"`
	// TokenAudience lists the allowed aud values of issued tokens (default: the public URL alone).
	TokenAudience []string `json:"token_audience,omitempty"`
	// SingleUse: each CI token is exchanged at most once through this connection.
	SingleUse bool `json:"single_use,omitempty"`
}

// Connection is a workload connection as the API returns it.
type Connection struct {
	ID                  string               `json:"id"`
	Name                string               `json:"name"`
	Description         string               `json:"description"`
	ProviderType        string               `json:"provider_type"`
	GitHub              *GitHubSettings      `json:"github,omitempty"`
	GitLab              *GitLabSettings      `json:"gitlab,omitempty"`
	CircleCI            *CircleCISettings    `json:"circleci,omitempty"`
	GoogleCloud         *GoogleCloudSettings `json:"google_cloud,omitempty"`
	JWKSURL             string               `json:"jwks_url"`
	JWKSURLOverridden   bool                 `json:"jwks_url_overridden"`
	TokenTTL            TokenTTL             `json:"token_ttl"`
	IdentityClaim       string               `json:"identity_claim"`
	Conditions          []Condition          `json:"conditions"`
	EffectiveConditions []Condition          `json:"effective_conditions"`
	IssuerURL           string               `json:"issuer_url"`
	JWKS                string               `json:"jwks"`
	ClaimMappings       map[string]string    `json:"claim_mappings"`
	TokenAudience       []string             `json:"token_audience"`
	SingleUse           bool                 `json:"single_use"`
	Status              string               `json:"status"`
	Revision            int64                `json:"revision"`
	Fingerprint         string               `json:"fingerprint"`
	CreatedBy           string               `json:"created_by"`
	UpdatedBy           string               `json:"updated_by"`
	ActivatedBy         string               `json:"activated_by"`
	ConfigChangedBy     string               `json:"config_changed_by"`
	CreatedAt           time.Time            `json:"created_at"`
	UpdatedAt           time.Time            `json:"updated_at"`
	ActivatedAt         *time.Time           `json:"activated_at"`
	// Proposal is the change waiting for approval on an activated connection, or null.
	Proposal *Proposal `json:"proposal"`
}

// Proposal is a change waiting for approval on an activated connection (CONTRACT.md §1, change
// control). Config holds every configurable field as in a create body.
type Proposal struct {
	Fingerprint         string          `json:"fingerprint"`
	ProposedBy          string          `json:"proposed_by"`
	ProposedAt          time.Time       `json:"proposed_at"`
	Config              ConnectionInput `json:"config"`
	EffectiveConditions []Condition     `json:"effective_conditions"`
	// JWKSURL is the key source the proposal would use: config.jwks_url, or the URL its preset
	// derives (config holds only an override, as in a create body).
	JWKSURL string `json:"jwks_url"`
}

// ProposalApproval is the body of POST /v1/workload-connections/{ref}/proposal/approve.
type ProposalApproval struct {
	ApprovedFingerprint string `json:"approved_fingerprint"`
}

// ConnectionList is a page of connections.
type ConnectionList struct {
	Items      []Connection `json:"items"`
	NextCursor string       `json:"next_cursor"`
}

// StatusChange is the body of PUT /v1/workload-connections/{ref}/status.
type StatusChange struct {
	Status              string `json:"status"`
	ApprovedFingerprint string `json:"approved_fingerprint,omitempty"`
}

// TestRequest is the body of POST /v1/workload-connections/{ref}/test.
type TestRequest struct {
	Token string `json:"token"`
}

// Check is one step of a token evaluation, in evaluation order.
type Check struct {
	Name     string `json:"name"`
	Passed   bool   `json:"passed"`
	Expected any    `json:"expected,omitempty"`
	Actual   any    `json:"actual,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// TestResult is the answer of the test endpoint.
type TestResult struct {
	WouldIssue bool           `json:"would_issue"`
	Claims     map[string]any `json:"claims"`
	Checks     []Check        `json:"checks"`
}

// Audit actions and outcomes.
const (
	ActionConnectionCreate = "connection.create"
	ActionConnectionUpdate = "connection.update"
	ActionConnectionDelete = "connection.delete"
	ActionConnectionStatus = "connection.status"
	ActionConnectionTest   = "connection.test"
	ActionTokenExchange    = "token.exchange"
	// Change control (CONTRACT.md §1): a proposal stored, approved or discarded.
	ActionConnectionPropose = "connection.propose"
	ActionConnectionApprove = "connection.approve"
	ActionConnectionDiscard = "connection.discard"
	// Key lifecycle and evidence (CONTRACT.md §2–§4).
	ActionTokenRevoke     = "token.revoke"
	ActionKeyRotate       = "key.rotate"
	ActionAuditCheckpoint = "audit.checkpoint"

	OutcomeSuccess = "success"
	OutcomeDenied  = "denied"
	OutcomeGranted = "granted"
)

// AuditEvent is one audited change or exchange.
type AuditEvent struct {
	ID             string         `json:"id"`
	Time           time.Time      `json:"time"`
	Actor          string         `json:"actor"`
	Action         string         `json:"action"`
	ConnectionID   string         `json:"connection_id"`
	ConnectionName string         `json:"connection_name"`
	Outcome        string         `json:"outcome"`
	Reason         string         `json:"reason"`
	RequestID      string         `json:"request_id"`
	RemoteAddr     string         `json:"remote_addr"`
	Detail         map[string]any `json:"detail"`
	// Tamper evidence (CONTRACT.md §3, audit at scale): the hash chain of the server process that
	// wrote the event, its place in it, and sha256 hashes linking it to the previous event.
	Chain    string `json:"chain,omitempty"`
	Seq      int64  `json:"seq,omitempty"`
	PrevHash string `json:"prev_hash,omitempty"`
	Hash     string `json:"hash,omitempty"`
}

// AuditEventList is a page of audit events, newest first.
type AuditEventList struct {
	Items      []AuditEvent `json:"items"`
	NextCursor string       `json:"next_cursor"`
}

// Whoami describes the caller: a principal (API key) or a workload (access token).
type Whoami struct {
	Kind         string     `json:"kind"`
	Name         string     `json:"name,omitempty"`
	Role         string     `json:"role,omitempty"`
	Sub          string     `json:"sub,omitempty"`
	Connection   string     `json:"connection,omitempty"`
	ConnectionID string     `json:"connection_id,omitempty"`
	ExpiresAt    *time.Time `json:"expires_at,omitempty"`
	// Claims are the access token's mapped claims (claim_mappings), when it has any.
	Claims map[string]any `json:"claims,omitempty"`
}

// Problem is an RFC 9457 problem detail.
type Problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail"`
	RequestID string       `json:"request_id,omitempty"`
	Errors    []FieldError `json:"errors,omitempty"`
}

// Problem types of the refusals a client acts on differently (CONTRACT.md §1). Other problems have a type
// derived from their status code.
const (
	ProblemTypeBase = "https://trustgate.dev/problems/"
	// ProblemOwnedBySecurity: a devops admin changed or deleted a connection that has been activated.
	ProblemOwnedBySecurity = ProblemTypeBase + "owned-by-security-admin"
	// ProblemFourEyes: the principal who created or last configured a connection tried to activate it.
	ProblemFourEyes = ProblemTypeBase + "four-eyes"
	// ProblemFingerprintMismatch: approved_fingerprint differs from the connection's current one.
	ProblemFingerprintMismatch = ProblemTypeBase + "fingerprint-mismatch"
)

// FieldError names one invalid field with a dotted path such as `github.owner`,
// `token_ttl.amount` or `conditions[2].values`.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// Token exchange (RFC 8693) constants.
const (
	GrantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	TokenTypeJWT           = "urn:ietf:params:oauth:token-type:jwt"
	TokenTypeIDToken       = "urn:ietf:params:oauth:token-type:id_token"
)

// TokenRequest is the body of POST /v1/token (form-encoded or JSON).
type TokenRequest struct {
	GrantType        string `json:"grant_type" form:"grant_type"`
	SubjectToken     string `json:"subject_token" form:"subject_token"`
	SubjectTokenType string `json:"subject_token_type" form:"subject_token_type"`
	Connection       string `json:"connection" form:"connection"`
	// Audience (RFC 8693) asks for one of the connection's token_audience entries as the issued
	// token's aud.
	Audience string `json:"audience" form:"audience"`
}

// RevokeRequest is the body of POST /v1/revoke (RFC 7009; form-encoded or JSON).
type RevokeRequest struct {
	Token         string `json:"token" form:"token"`
	TokenTypeHint string `json:"token_type_hint,omitempty" form:"token_type_hint"`
}

// Sighting is one workload seen on a connection (CONTRACT.md §3, workload sightings).
type Sighting struct {
	Identity  string         `json:"identity"`
	Outcome   string         `json:"outcome"`
	FirstSeen time.Time      `json:"first_seen"`
	LastSeen  time.Time      `json:"last_seen"`
	Exchanges int64          `json:"exchanges"`
	Claims    map[string]any `json:"claims"`
}

// SightingList is a page of sightings, newest first.
type SightingList struct {
	Items      []Sighting `json:"items"`
	NextCursor string     `json:"next_cursor"`
}

// ImpactWorkload is a workload whose outcome a proposed configuration would change.
// FailingCheck names the first check it fails: under the proposed configuration for a newly
// refused workload, under the live one for a newly admitted one.
type ImpactWorkload struct {
	Identity     string    `json:"identity"`
	FirstSeen    time.Time `json:"first_seen"`
	LastSeen     time.Time `json:"last_seen"`
	Exchanges    int64     `json:"exchanges"`
	FailingCheck string    `json:"failing_check"`
}

// ImpactReport is the answer of POST /v1/workload-connections/{ref}/impact.
type ImpactReport struct {
	Window        string           `json:"window"`
	Sightings     int              `json:"sightings"`
	NewlyRefused  []ImpactWorkload `json:"newly_refused"`
	NewlyAdmitted []ImpactWorkload `json:"newly_admitted"`
	StillGranted  int              `json:"still_granted"`
	StillRefused  int              `json:"still_refused"`
	// Caveats says what the claims of past tokens cannot tell (a changed key source, TTL or
	// audience), so that nobody reads "no impact" into them.
	Caveats []string `json:"caveats,omitempty"`
	// NewlyRefusedTotal and NewlyAdmittedTotal count every such workload; the lists name at most
	// 100. Sightings = StillGranted + StillRefused + NewlyRefusedTotal + NewlyAdmittedTotal.
	NewlyRefusedTotal  int `json:"newly_refused_total"`
	NewlyAdmittedTotal int `json:"newly_admitted_total"`
}

// TokenResponse is a successful token exchange.
type TokenResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
}

// OAuth error codes (RFC 6749 §5.2, RFC 8693).
const (
	ErrInvalidRequest       = "invalid_request"
	ErrUnsupportedGrantType = "unsupported_grant_type"
	ErrInvalidTarget        = "invalid_target"
	ErrInvalidGrant         = "invalid_grant"
)

// OAuthError is a failed token exchange.
type OAuthError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// Introspection is the RFC 7662 answer of POST /v1/introspect.
type Introspection struct {
	Active       bool     `json:"active"`
	Sub          string   `json:"sub,omitempty"`
	Iss          string   `json:"iss,omitempty"`
	Aud          Audience `json:"aud,omitempty"`
	Exp          int64    `json:"exp,omitempty"`
	Iat          int64    `json:"iat,omitempty"`
	Jti          string   `json:"jti,omitempty"`
	TokenType    string   `json:"token_type,omitempty"`
	Connection   string   `json:"connection,omitempty"`
	ConnectionID string   `json:"connection_id,omitempty"`
	// Claims are the access token's mapped claims (claim_mappings), when it has any.
	Claims map[string]any `json:"claims,omitempty"`
}

// Audience is an `aud` claim (RFC 7519 §4.1.3): a JSON string when it has one entry, an array of
// strings otherwise; both forms are read.
type Audience []string

// MarshalJSON writes one entry as a string, and nil as null.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// UnmarshalJSON reads a string or an array of strings.
func (a *Audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = Audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("aud must be a string or an array of strings: %w", err)
	}
	*a = many
	return nil
}

// TTLUnitSeconds is the length of one token TTL unit in seconds, or 0 for an unknown unit. With
// TTLInRange it is the one definition of the TTL rule that the server and the provider share.
func TTLUnitSeconds(unit string) int64 {
	switch unit {
	case UnitSeconds:
		return 1
	case UnitMinutes:
		return 60
	case UnitHours:
		return 3600
	}
	return 0
}

// TTLInRange reports whether amount×unit totals between MinTokenTTLSeconds and MaxTokenTTLSeconds.
// It compares before multiplying, so a huge amount cannot overflow into range.
func TTLInRange(amount int64, unit string) bool {
	per := TTLUnitSeconds(unit)
	return per > 0 && amount >= 1 && amount <= MaxTokenTTLSeconds/per && amount*per >= MinTokenTTLSeconds
}

// hostLabel is one DNS label of a host name, lowercase.
var hostLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// HostProblem says what is wrong with hostport as the host of a preset (gitlab.domain,
// github.host): a lowercase host name or an IP literal, with an optional port, and nothing else
// (no scheme, path or credentials). It returns "" when the shape is right; whether the address may
// be reached is the server's decision (CONTRACT.md §4). The server and the provider's plan-time
// validator share this one definition.
func HostProblem(hostport string) string {
	if strings.ContainsAny(hostport, "/?#@\\ \t\r\n%") {
		return fmt.Sprintf("must be a host name such as gitlab.example.com, without scheme, path or credentials; got %q", hostport)
	}
	host, port := hostport, ""
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		host, port = h, p
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return fmt.Sprintf("has an invalid port %q", port)
		}
	} else if strings.Contains(hostport, ":") {
		return fmt.Sprintf("must be a host name with an optional port, such as gitlab.example.com:8443 (an IPv6 address in brackets); got %q", hostport)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return "" // an IP literal; whether it may be reached is decided with the JWKS URL
	}
	if len(host) > 253 {
		return "is longer than 253 characters"
	}
	if host != strings.ToLower(host) {
		return fmt.Sprintf("must be lowercase, as it appears in the tokens' iss claim: %q", strings.ToLower(host))
	}
	for _, label := range strings.Split(host, ".") {
		if !hostLabel.MatchString(label) {
			return fmt.Sprintf("must be a host name such as gitlab.example.com (lowercase letters, digits, hyphens and dots, no scheme or path); got %q", hostport)
		}
	}
	return ""
}
