// Package connection is the domain of workload connections (CONTRACT.md §1): the stored model, field
// validation, presets, tenancy rules, effective conditions, the canonical fingerprint, condition
// evaluation against a claim set, and who may do what in which status. It is pure Go: no gin, no
// GORM. Each rule of CONTRACT.md §1 lives in exactly one function here; the HTTP layer, the store, the
// token exchange and the provider reach the rule through that function.
//
// # Where each rule lives
//
//   - DecodeInput / ApplyMergePatch: the JSON shape (unknown fields, wrong JSON types).
//   - Normalize: every field rule, the preset blocks, the tenancy rules, defaults.
//   - Resolve: what a spec means — pinned issuer, JWKS URL, effective conditions, fingerprint.
//   - Authorize, CheckUpdate, CheckStatusChange, WithStatus, AuditActorFilter: the lifecycle and
//     split duty; RetiredToken: tokens issued before the latest deactivation stay dead.
//   - PatchAction, PlanPatch, CheckApprove, Approve, CheckDiscard, ConfigChanged: change control
//     of activated connections (proposals) and who counts as a configuration's author.
//   - LookupClaim, EvaluateCondition, Evaluate, IdentityValue, MatchGlob: conditions against a
//     claim set; Decide: a verified token's claims against a connection's rules (its effective
//     conditions in order, then the identity claim), the one decision the exchange and the impact
//     report both make.
//   - InlineJWKSThumbprints: an inline jwks document's keys, as the fingerprint covers them.
//   - MappedClaims, IssuedAudience, AllowedAudiences, AudienceAllowed, SingleUseKey: what an
//     exchange issues (the claims object, the aud) and how a single_use token is recognised.
//
// # Choices and why
//
// Errors. Every refusal is an *Error with a Kind; the HTTP layer maps the Kind to a status code
// and never decides anything itself. Validation collects every invalid field at once (dotted
// paths such as conditions[2].value) so that a user fixes a configuration in one round trip.
//
// Strict decoding. DecodeInput walks the JSON against the wire types itself instead of relying on
// encoding/json's DisallowUnknownFields, for two reasons: encoding/json matches keys
// case-insensitively ("Name" would silently set name, and "name" plus "NAME" would be a duplicate
// with last-wins), and its errors do not carry the path of the offending field. The walk reports
// every unknown key and every wrongly typed value with its full dotted path.
//
// Merge patch. ApplyMergePatch follows RFC 7396 exactly (a list such as conditions is replaced as
// a whole; null removes an optional field). One convenience: when a patch touches a preset block
// (github, gitlab, circleci, google_cloud) but says nothing about provider_type, the stored
// provider_type is cleared so that Normalize infers it again from the blocks. Without that,
// switching `{"github": null, "gitlab": {...}}` would be refused as a type mismatch although the
// intent is plain. A patch that sets provider_type explicitly keeps it, and Normalize checks it.
//
// Presets. A preset always pins `iss` and `aud` with `equals`; `aud` arrays match because an
// array claim matches when any element does. User conditions are ANDed after the preset's, so a
// user condition can only narrow what a preset accepts, never widen it ("may add to a preset but
// not weaken it" holds by construction). When a github or gitlab preset leaves `audience` unset,
// the server's default audience is used at Resolve time and is not written into the stored spec:
// Terraform then sees exactly what it sent. Changing the server's default audience therefore
// changes the effective conditions, and so the fingerprint, of such connections — on purpose,
// since it changes who gets a token.
//
// Shared issuers whatever the type. A generic connection whose iss conditions or JWKS host name
// GitHub Actions, GitLab.com or Google must pin what that service's preset pins (GitHub: equals on
// repository_owner_id; GitLab.com: project_id or namespace_id, or project_path by equals or by a
// starts_with whose value ends in "/", since "acme" would admit "acme-evil"; Google: email or sub).
// GitHub's preset pins repository_owner_id (required) and, when given, repository_id before the
// names: names can be registered again after a rename or deletion, ids cannot. Fields added to
// the preset blocks go at the end with omitempty so stored connections keep their fingerprint.
//
// Preset inputs are checked for shape where a wrong value can only ever produce a connection that
// never matches, or an unsafe URL: github.repository must be `<owner>/<name>`, github.ref must be
// fully qualified (`refs/heads/main`: that is what GitHub puts in the claim), github.owner_id,
// gitlab.project_id and google_cloud.account_id are decimal IDs, gitlab.project_path must lie
// under gitlab.group, gitlab.domain is a lowercase host name (optionally with a port),
// enterprise_slug and organization_id are URL path-segment safe.
//
// Change control. Before its first activation a connection is changed in place. Afterwards every
// PATCH, by either admin role and description-only ones included, is applied to the pending
// proposal (or to the live configuration when there is none) and stored as the proposal: nothing
// live changes until a security admin who did not write the proposal approves it by its
// fingerprint. Proposing again exactly what is pending is a no-op that keeps the author (so a
// Terraform re-apply does not churn); a patch back to the live configuration discards the
// proposal. Approving sets config_changed_by to the proposal's author only when the fingerprint
// moves, the same rule as for drafts: a description or a rename never makes someone the author of
// rules they did not write, which is what four eyes at activation is judged on.
//
// Retired tokens. WithStatus records the time of every deactivation; RetiredToken compares an
// access token's iat with it in whole seconds and fails closed within the same second.
//
// Tenancy. gitlab.com, Google and a generic issuer are shared by many customers; CONTRACT.md §1 requires
// a scope. The 422 detail says what to add and why; in the errors list the refusal sits under
// the field "conditions", since no single input is at fault. A generic connection's `iss`/`aud`
// condition may be written as the literal claim name (`iss`) or as a pointer (`/iss`).
//
// JWKS URLs. Normalize refuses non-https URLs and literal loopback, private, link-local and
// unspecified IP hosts (and `localhost`) unless Options.AllowInsecureJWKS; it checks the effective
// URL, so a gitlab.domain that is a private IP literal is refused too. Whether a host name
// resolves to such an address is checked at fetch time by the jwtverify package, which should
// use BlockedJWKSAddr so that both checks share one rule.
//
// Condition shape. starts_with with an empty value is refused: every string starts with "", so
// it would silently mean "is a string"; exists says what is meant. An empty `values` list on an
// operator other than one_of is dropped, so `"values": []` and no values mean the same.
//
// Token TTL. Stored as given ({60, minutes} stays {60, minutes}) and fingerprinted as given: the
// fingerprint covers the configuration as written.
//
// Fingerprint. sha256 over encoding/json of a fixed struct (provider_type, the provider block,
// effective jwks_url, token_ttl, identity_claim, effective_conditions, in that order) with HTML
// escaping off. The struct's field order is part of the contract: a golden test pins one value so
// that an accidental change (which would invalidate every approved fingerprint) fails CI.
//
// Status changes. CheckStatusChange checks, in order: a valid target (422), the approved
// fingerprint (409, so a stale approval never changes anything — not even a no-op is reported as
// success), no-op (already in the target status: changed=false), the transition (draft→inactive is
// 409), and four eyes for activation (403). Renaming outside draft is a 409 Conflict, not a 422:
// the name is valid, the connection's state is what forbids the change.
//
// Conditions. Typed comparison follows CONTRACT.md §1. Numbers compare by exact canonical decimal form,
// computed on the decimal text (never through float64, which would make 9007199254740993 equal
// 9007199254740992); numbers whose decimal expansion would exceed 1000 characters never match. When
// the claim is a number and the expected value is itself a JSON number literal, both are
// canonicalised ("1e2" matches 100). An array claim matches when any element matches; nested
// arrays are not flattened. starts_with matches strings only. JSON null is present-but-null: it
// fails `exists` and never matches anything.
//
// not_equals and glob. not_equals needs the claim present and not null; a string, number or
// boolean must differ from the value (typed as for equals), an array must have no element equal to
// it, and an object fails (it cannot be compared: fail closed). glob matches strings only (any
// element of an array); MatchGlob is one pass with two backtrack points, O(pattern × claim), and a
// pattern is at most 256 bytes, so a hostile claim cannot make matching expensive. A pattern made
// only of `*` is refused: exists says that plainly. FuzzMatchGlobAgainstRegexp compares the
// matcher with a regular-expression reference.
//
// Key sources. At most one of jwks_url, issuer_url (generic only; OIDC discovery, which implies
// the condition iss equals issuer_url, first in effective_conditions) and jwks (keys inline;
// with a preset it replaces the derived URL). An inline jwks must hold public keys only: a key
// with a private member (d, p, q, dp, dq, qi, oth, or k of a symmetric key) is refused, since the
// connection is readable by every role. The fingerprint covers an inline jwks as the sorted RFC
// 7638 thumbprints of its keys (computed with go-jose), so key order and metadata do not matter.
// issuer_url keeps a trailing slash as written (some issuers put one in iss).
//
// Token shape. claim_mappings (≤ 20, names ^[a-z][a-z0-9_]{0,63}$, sources like condition claims)
// and token_audience (1–10 distinct strings; an empty list means none) are validated here and
// applied by the broker; single_use is enforced by the broker through the store.
//
// Mapped claims (MappedClaims). A source value is copied with its JSON type when it is a string,
// a number (its exact text: 9007199254740993 stays that), a boolean, or an array whose elements
// are all of those. Anything else is left out: a missing claim, null, an object, and an array
// holding an object, an array or null (copying part of an array would say something the token did
// not). A connection with mappings always issues a `claims` object, empty when nothing was copied,
// so a resource server can tell "mapped, absent" from "no mappings".
//
// Audience (IssuedAudience). Without the RFC 8693 `audience` parameter the access token's `aud` is
// the public URL when token_audience is unset, else the whole token_audience list: a JSON array
// (a string when the list has one entry), so every resource server listed accepts the token
// without the job asking for one — the choice Google's and Vault's token audiences make, and the
// one that keeps a connection whose token_audience names one service working with an unchanged
// CI job. With `audience=X`, X must be one of token_audience (or the public URL when it is
// unset), else invalid_target, and `aud` is X alone: a job that wants a token for one service
// asks for it and gets a token no other listed service accepts. whoami and introspection accept
// a token of this server whatever its aud, as long as its connection still allows every entry
// (AudienceAllowed): a proposal approved to change token_audience ends tokens issued for an
// audience it dropped.
//
// Single use (SingleUseKey, SingleUse). A token is recognised by iss and jti when it has a
// non-empty string jti (so the same token re-encoded or re-signed is still the same token), else by
// the SHA-256 of its compact form; both are stored as fixed-size hashes with distinct prefixes.
// The record lives until exp + 60 s (the verifier's leeway), after which the token cannot be
// exchanged anyway. A record is written in the transaction of the exchange's audit event, so a
// refused or failed exchange never uses the token up.
//
// Identity. IdentityValue accepts a non-empty string or a number; booleans, null, objects, arrays
// and empty strings are refused: none of them names a workload.
package connection
