// Package api holds the JSON wire types of the Trustgate admin API and token endpoint: the one
// definition of the contract in Go (CONTRACT.md §3–§4). The server encodes them, the typed client in
// server/apiclient decodes them, and the Terraform provider and `trustgate exchange` import them.
// This package has no dependencies beyond the standard library on purpose.
package api

import "time"

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
)

// Operators lists every condition operator.
var Operators = []string{OpEquals, OpStartsWith, OpExists, OpOneOf}

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
	Active       bool   `json:"active"`
	Sub          string `json:"sub,omitempty"`
	Iss          string `json:"iss,omitempty"`
	Aud          string `json:"aud,omitempty"`
	Exp          int64  `json:"exp,omitempty"`
	Iat          int64  `json:"iat,omitempty"`
	Jti          string `json:"jti,omitempty"`
	TokenType    string `json:"token_type,omitempty"`
	Connection   string `json:"connection,omitempty"`
	ConnectionID string `json:"connection_id,omitempty"`
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
