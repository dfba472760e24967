package provider

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

func strptr(s string) *string { return &s }

func TestFromModelBuildsTheAPIInputOfEveryPreset(t *testing.T) {
	ctx := context.Background()
	values, _ := types.ListValueFrom(ctx, types.StringType, []string{"a", "b"})
	tests := []struct {
		name     string
		model    connectionModel
		wantType string
		check    func(t *testing.T, in api.ConnectionInput)
	}{
		{
			name: "generic with conditions of every operator",
			model: connectionModel{
				Name: types.StringValue("generic"), Description: types.StringValue(""),
				IdentityClaim: types.StringValue("sub"),
				TokenTTL:      &tokenTTLModel{Amount: types.Int64Value(30), Unit: types.StringValue("minutes")},
				Conditions: []conditionModel{
					{Claim: types.StringValue("iss"), Operator: types.StringValue("equals"), Value: types.StringValue("https://i"), Values: types.ListNull(types.StringType)},
					{Claim: types.StringValue("aud"), Operator: types.StringValue("one_of"), Value: types.StringNull(), Values: values},
					{Claim: types.StringValue("x"), Operator: types.StringValue("exists"), Value: types.StringNull(), Values: types.ListNull(types.StringType)},
					{Claim: types.StringValue("e"), Operator: types.StringValue("equals"), Value: types.StringValue(""), Values: types.ListNull(types.StringType)},
				},
			},
			wantType: api.ProviderGeneric,
			check: func(t *testing.T, in api.ConnectionInput) {
				if in.TokenTTL == nil || *in.TokenTTL != (api.TokenTTL{Amount: 30, Unit: "minutes"}) {
					t.Errorf("token_ttl = %+v", in.TokenTTL)
				}
				if len(in.Conditions) != 4 {
					t.Fatalf("conditions = %+v", in.Conditions)
				}
				if in.Conditions[0].Value == nil || *in.Conditions[0].Value != "https://i" {
					t.Errorf("equals value lost: %+v", in.Conditions[0])
				}
				if in.Conditions[1].Value != nil || len(in.Conditions[1].Values) != 2 {
					t.Errorf("one_of = %+v", in.Conditions[1])
				}
				if in.Conditions[2].Value != nil || in.Conditions[2].Values != nil {
					t.Errorf("exists must carry no operand: %+v", in.Conditions[2])
				}
				if in.Conditions[3].Value == nil || *in.Conditions[3].Value != "" {
					t.Errorf("an empty equals value must stay present, not absent: %+v", in.Conditions[3])
				}
			},
		},
		{
			name: "github",
			model: connectionModel{Name: types.StringValue("gh"), GitHub: &githubModel{
				OwnerID: types.StringValue("65"), Owner: types.StringNull(), RepositoryID: types.StringValue("74"),
				Repository: types.StringValue("acme/app"), Ref: types.StringNull(), Environment: types.StringNull(),
				EnterpriseSlug: types.StringNull(), Host: types.StringValue("github.acme.example"), Audience: types.StringNull(),
			}},
			wantType: api.ProviderGitHub,
			check: func(t *testing.T, in api.ConnectionInput) {
				want := api.GitHubSettings{OwnerID: "65", RepositoryID: "74", Repository: "acme/app", Host: "github.acme.example"}
				if in.GitHub == nil || *in.GitHub != want {
					t.Errorf("github = %+v, want %+v", in.GitHub, want)
				}
			},
		},
		{
			name:     "gitlab",
			model:    connectionModel{Name: types.StringValue("gl"), GitLab: &gitlabModel{Domain: types.StringValue("gitlab.com"), Group: types.StringValue("acme")}},
			wantType: api.ProviderGitLab,
			check: func(t *testing.T, in api.ConnectionInput) {
				if in.GitLab == nil || in.GitLab.Domain != "gitlab.com" || in.GitLab.Group != "acme" {
					t.Errorf("gitlab = %+v", in.GitLab)
				}
			},
		},
		{
			name:     "circleci",
			model:    connectionModel{Name: types.StringValue("cc"), CircleCI: &circleciModel{OrganizationID: types.StringValue("org")}},
			wantType: api.ProviderCircleCI,
			check: func(t *testing.T, in api.ConnectionInput) {
				if in.CircleCI == nil || in.CircleCI.OrganizationID != "org" {
					t.Errorf("circleci = %+v", in.CircleCI)
				}
			},
		},
		{
			name:     "google_cloud",
			model:    connectionModel{Name: types.StringValue("gc"), GoogleCloud: &googleCloudModel{ClientID: types.StringValue("cid"), Email: types.StringValue("a@b")}},
			wantType: api.ProviderGoogleCloud,
			check: func(t *testing.T, in api.ConnectionInput) {
				if in.GoogleCloud == nil || in.GoogleCloud.ClientID != "cid" || in.GoogleCloud.Email != "a@b" {
					t.Errorf("google_cloud = %+v", in.GoogleCloud)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, diags := fromModel(ctx, tt.model, types.StringNull())
			if diags.HasError() {
				t.Fatal(diags)
			}
			if in.ProviderType != tt.wantType {
				t.Errorf("provider_type = %q, want %q", in.ProviderType, tt.wantType)
			}
			if in.JWKSURL != "" {
				t.Errorf("a null jwks_url must mean derived, got %q", in.JWKSURL)
			}
			tt.check(t, in)
		})
	}
}

func TestFromModelSendsOnlyTheConfiguredJWKSURL(t *testing.T) {
	m := connectionModel{Name: types.StringValue("x"), JWKSURL: types.StringValue("https://derived.example/jwks")}
	in, _ := fromModel(context.Background(), m, types.StringNull())
	if in.JWKSURL != "" {
		t.Errorf("the planned (derived) jwks_url was sent as an override: %q", in.JWKSURL)
	}
	in, _ = fromModel(context.Background(), m, types.StringValue("https://override.example/jwks"))
	if in.JWKSURL != "https://override.example/jwks" {
		t.Errorf("override not sent: %q", in.JWKSURL)
	}
}

func TestMergePatchNullsEverythingTheConfigurationLeavesOut(t *testing.T) {
	in := api.ConnectionInput{
		Name:         "gh",
		ProviderType: api.ProviderGitHub,
		GitHub:       &api.GitHubSettings{OwnerID: "65"},
		TokenTTL:     &api.TokenTTL{Amount: 1, Unit: "hours"},
	}
	b, err := json.Marshal(mergePatch(in, nil))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"gitlab", "circleci", "google_cloud", "jwks_url", "identity_claim", "issuer_url", "jwks", "claim_mappings", "token_audience"} {
		v, ok := got[k]
		if !ok || v != nil {
			t.Errorf("%s = %v (present %v), want an explicit null", k, v, ok)
		}
	}
	gh, ok := got["github"].(map[string]any)
	if !ok {
		t.Fatalf("github = %v", got["github"])
	}
	if gh["owner_id"] != "65" {
		t.Errorf("github.owner_id = %v", gh["owner_id"])
	}
	for _, k := range []string{"owner", "repository_id", "repository", "ref", "environment", "enterprise_slug", "host", "audience"} {
		if v, ok := gh[k]; !ok || v != nil {
			t.Errorf("github.%s = %v (present %v), want an explicit null so the server drops it", k, v, ok)
		}
	}
	if conds, ok := got["conditions"].([]any); !ok || len(conds) != 0 {
		t.Errorf("conditions = %v, want [] so that removed blocks are removed", got["conditions"])
	}
	if v, ok := got["single_use"]; !ok || v != false {
		t.Errorf("single_use = %v (present %v), want an explicit false", v, ok)
	}
	if got["provider_type"] != "github" || got["name"] != "gh" {
		t.Errorf("name/provider_type = %v/%v", got["name"], got["provider_type"])
	}
}

func TestExtractRoundTripsAConnection(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	conn := &api.Connection{
		ID: "id-1", Name: "gh", Description: "d", ProviderType: api.ProviderGitHub,
		GitHub:   &api.GitHubSettings{OwnerID: "65", Owner: "acme", Ref: "refs/heads/main"},
		JWKSURL:  "https://token.actions.githubusercontent.com/.well-known/jwks",
		TokenTTL: api.TokenTTL{Amount: 90, Unit: "seconds"}, IdentityClaim: "sub",
		Conditions: []api.Condition{{Claim: "aud", Operator: "one_of", Values: []string{"x"}}},
		EffectiveConditions: []api.Condition{
			{Claim: "iss", Operator: "equals", Value: strptr("https://token.actions.githubusercontent.com")},
			{Claim: "aud", Operator: "one_of", Values: []string{"x"}},
		},
		Status: api.StatusActive, Revision: 3, Fingerprint: "sha256:ab", CreatedBy: "devops",
		ActivatedBy: "security", ActivatedAt: &at, ConfigChangedBy: "devops",
	}
	var m connectionModel
	if diags := m.extract(ctx, conn); diags.HasError() {
		t.Fatal(diags)
	}
	if m.GitHub == nil || m.GitHub.Ref.ValueString() != "refs/heads/main" || !m.GitHub.Repository.IsNull() ||
		!m.GitHub.RepositoryID.IsNull() || !m.GitHub.Host.IsNull() {
		t.Errorf("github = %+v (unset inputs must be null, not \"\")", m.GitHub)
	}
	if m.LiveFingerprint.ValueString() != "sha256:ab" || m.Fingerprint.ValueString() != "sha256:ab" ||
		m.ProposalPending.ValueBool() || m.ConfigChangedBy.ValueString() != "devops" {
		t.Errorf("without a proposal: fingerprint %v, live %v, pending %v, config_changed_by %v",
			m.Fingerprint, m.LiveFingerprint, m.ProposalPending, m.ConfigChangedBy)
	}
	if m.GitLab != nil || m.CircleCI != nil || m.GoogleCloud != nil {
		t.Error("absent presets must stay nil (null blocks)")
	}
	if m.ActivatedAt.ValueString() != "2026-11-28T10:00:00Z" || m.ActivatedBy.ValueString() != "security" {
		t.Errorf("activation = %v %v", m.ActivatedBy, m.ActivatedAt)
	}
	if len(m.EffectiveConditions.Elements()) != 2 {
		t.Errorf("effective_conditions = %v", m.EffectiveConditions)
	}
	in, diags := fromModel(ctx, m, types.StringNull())
	if diags.HasError() {
		t.Fatal(diags)
	}
	if in.GitHub.OwnerID != "65" || in.GitHub.Owner != "acme" || in.TokenTTL.Amount != 90 || len(in.Conditions) != 1 || len(in.Conditions[0].Values) != 1 {
		t.Errorf("round trip lost data: %+v", in)
	}

	draft := &api.Connection{ID: "id-2", Name: "g", ProviderType: api.ProviderGeneric, Conditions: nil}
	var d connectionModel
	if diags := d.extract(ctx, draft); diags.HasError() {
		t.Fatal(diags)
	}
	if d.Conditions == nil || !d.ActivatedAt.IsNull() || !d.ActivatedBy.IsNull() {
		t.Errorf("a never-activated connection: conditions %v (want empty, not nil), activated %v %v", d.Conditions, d.ActivatedBy, d.ActivatedAt)
	}
}

// With a proposal pending, the resource describes the proposal (what the platform workspace last
// applied) and keeps what is live in live_fingerprint, status, revision and the principals.
func TestExtractDescribesThePendingProposal(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	live := &api.Connection{
		ID: "id-1", Name: "gh", Description: "live", ProviderType: api.ProviderGitHub,
		GitHub:  &api.GitHubSettings{OwnerID: "65", Ref: "refs/heads/main"},
		JWKSURL: "https://keys.example/live", JWKSURLOverridden: true,
		TokenTTL: api.TokenTTL{Amount: 30, Unit: "minutes"}, IdentityClaim: "sub",
		Conditions:          []api.Condition{{Claim: "workflow", Operator: "equals", Value: strptr("deploy")}},
		EffectiveConditions: []api.Condition{{Claim: "ref", Operator: "equals", Value: strptr("refs/heads/main")}},
		Status:              api.StatusActive, Revision: 7, Fingerprint: "sha256:live", CreatedBy: "devops",
		ActivatedBy: "security", ActivatedAt: &at, ConfigChangedBy: "devops",
		Proposal: &api.Proposal{
			Fingerprint: "sha256:proposed", ProposedBy: "devops", ProposedAt: at,
			Config: api.ConnectionInput{
				Name: "gh", Description: "proposed", ProviderType: api.ProviderGitHub,
				GitHub:   &api.GitHubSettings{OwnerID: "65", RepositoryID: "74", Ref: "refs/heads/release"},
				TokenTTL: &api.TokenTTL{Amount: 10, Unit: "minutes"}, IdentityClaim: "repository",
			},
			EffectiveConditions: []api.Condition{
				{Claim: "repository_owner_id", Operator: "equals", Value: strptr("65")},
				{Claim: "repository_id", Operator: "equals", Value: strptr("74")},
				{Claim: "ref", Operator: "equals", Value: strptr("refs/heads/release")},
			},
			JWKSURL: "https://token.actions.githubusercontent.com/.well-known/jwks",
		},
	}
	var m connectionModel
	if diags := m.extract(ctx, live); diags.HasError() {
		t.Fatal(diags)
	}
	if m.Description.ValueString() != "proposed" || m.GitHub.Ref.ValueString() != "refs/heads/release" ||
		m.GitHub.RepositoryID.ValueString() != "74" || m.TokenTTL.Amount.ValueInt64() != 10 ||
		m.IdentityClaim.ValueString() != "repository" || len(m.Conditions) != 0 {
		t.Errorf("configuration is not the proposal's: %+v / %+v / conditions %v", m, m.GitHub, m.Conditions)
	}
	if m.Fingerprint.ValueString() != "sha256:proposed" || len(m.EffectiveConditions.Elements()) != 3 ||
		m.JWKSURL.ValueString() != "https://token.actions.githubusercontent.com/.well-known/jwks" {
		t.Errorf("derived attributes are not the proposal's: %v %v %v", m.Fingerprint, m.EffectiveConditions, m.JWKSURL)
	}
	if m.LiveFingerprint.ValueString() != "sha256:live" || !m.ProposalPending.ValueBool() ||
		m.Status.ValueString() != "active" || m.Revision.ValueInt64() != 7 || m.ActivatedBy.ValueString() != "security" ||
		m.ConfigChangedBy.ValueString() != "devops" {
		t.Errorf("live attributes: live %v pending %v status %v revision %v activated_by %v config_changed_by %v",
			m.LiveFingerprint, m.ProposalPending, m.Status, m.Revision, m.ActivatedBy, m.ConfigChangedBy)
	}
	if described(live).JWKSURLOverridden {
		t.Error("the proposal derives its JWKS URL, but the override flag is the live one's")
	}
	if live.Description != "live" || live.Fingerprint != "sha256:live" {
		t.Error("described changed the live connection")
	}
}

func TestAttributePathMapsServerFieldsToResourceAttributes(t *testing.T) {
	tests := []struct {
		field string
		want  path.Path
		ok    bool
	}{
		{"name", path.Root("name"), true},
		{"github.owner", path.Root("github").AtName("owner"), true},
		{"token_ttl.amount", path.Root("token_ttl").AtName("amount"), true},
		{"conditions[2].value", path.Root("condition").AtListIndex(2).AtName("value"), true},
		{"conditions[0].values[1]", path.Root("condition").AtListIndex(0).AtName("values").AtListIndex(1), true},
		{"conditions", path.Root("condition"), true},
		{"provider_type", path.Empty(), false},
		{"conditions[x].value", path.Empty(), false},
		{"conditions[1", path.Empty(), false},
		{"claim_mappings.repo", path.Root("claim_mappings").AtMapKey("repo"), true},
		{"claim_mappings.Bad.Name[0]", path.Root("claim_mappings").AtMapKey("Bad.Name[0]"), true},
		{"token_audience[1]", path.Root("token_audience").AtListIndex(1), true},
		{"issuer_url", path.Root("issuer_url"), true},
		{"jwks", path.Root("jwks"), true},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			got, ok := attributePath(tt.field)
			if ok != tt.ok || (ok && !got.Equal(tt.want)) {
				t.Errorf("attributePath(%q) = %s, %v; want %s, %v", tt.field, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// The PATCH body, applied as an RFC 7396 merge patch (the library the server uses) to what the
// server holds, gives exactly the planned configuration of the issue 13 fields: a claim_mappings
// entry the configuration dropped is removed (merge patches merge objects key by key), a
// token_audience list is replaced as a whole, and fields left out are removed.
func TestMergePatchOverThePriorConfigurationGivesThePlannedOne(t *testing.T) {
	prior := api.ConnectionInput{
		Name: "g", ProviderType: api.ProviderGeneric, IssuerURL: "https://issuer.example.com",
		ClaimMappings: map[string]string{"repo": "repository", "team": "/workload/team", "ref": "ref"},
		TokenAudience: []string{"https://a.example", "https://b.example"},
		SingleUse:     true,
	}
	tests := []struct {
		name    string
		planned api.ConnectionInput
	}{
		{"drop a mapping, change one, add one; fewer audiences; single_use off", api.ConnectionInput{
			Name: "g", ProviderType: api.ProviderGeneric, IssuerURL: "https://issuer.example.com",
			ClaimMappings: map[string]string{"repo": "/repository", "env": "environment"},
			TokenAudience: []string{"https://b.example"},
		}},
		{"everything removed, inline keys instead of discovery", api.ConnectionInput{
			Name: "g", ProviderType: api.ProviderGeneric, JWKS: `{"keys":[]}`,
		}},
		{"unchanged", prior},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := json.Marshal(prior)
			if err != nil {
				t.Fatal(err)
			}
			names := make([]string, 0, len(prior.ClaimMappings))
			for n := range prior.ClaimMappings {
				names = append(names, n)
			}
			patch, err := json.Marshal(mergePatch(tt.planned, names))
			if err != nil {
				t.Fatal(err)
			}
			merged, err := jsonpatch.MergePatch(doc, patch)
			if err != nil {
				t.Fatal(err)
			}
			var got api.ConnectionInput
			if err := json.Unmarshal(merged, &got); err != nil {
				t.Fatal(err)
			}
			if got.IssuerURL != tt.planned.IssuerURL || got.JWKS != tt.planned.JWKS || got.SingleUse != tt.planned.SingleUse ||
				!reflect.DeepEqual(got.ClaimMappings, tt.planned.ClaimMappings) || !reflect.DeepEqual(got.TokenAudience, tt.planned.TokenAudience) {
				t.Errorf("the server would hold\n  issuer_url %q jwks %q single_use %v claim_mappings %v token_audience %v\nwant\n  issuer_url %q jwks %q single_use %v claim_mappings %v token_audience %v",
					got.IssuerURL, got.JWKS, got.SingleUse, got.ClaimMappings, got.TokenAudience,
					tt.planned.IssuerURL, tt.planned.JWKS, tt.planned.SingleUse, tt.planned.ClaimMappings, tt.planned.TokenAudience)
			}
		})
	}
}

// The issue 13 fields survive extract and fromModel; absent ones are null (not "" or an empty
// collection, which the validators refuse, so a configuration never says them), and there is no
// JWKS URL when the keys come from discovery or inline.
func TestExtractAndFromModelRoundTripTheTokenShapeAndKeySources(t *testing.T) {
	ctx := context.Background()
	conn := &api.Connection{
		ID: "id-1", Name: "g", ProviderType: api.ProviderGeneric, IssuerURL: "https://issuer.example.com",
		TokenTTL: api.TokenTTL{Amount: 1, Unit: "hours"}, IdentityClaim: "sub",
		ClaimMappings: map[string]string{"repo": "repository", "team": "/workload/team"},
		TokenAudience: []string{"https://b.example", "https://a.example"}, SingleUse: true,
	}
	var m connectionModel
	if diags := m.extract(ctx, conn); diags.HasError() {
		t.Fatal(diags)
	}
	if m.IssuerURL.ValueString() != "https://issuer.example.com" || !m.JWKS.IsNull() || !m.JWKSURL.IsNull() || !m.SingleUse.ValueBool() {
		t.Errorf("issuer_url %v jwks %v jwks_url %v single_use %v", m.IssuerURL, m.JWKS, m.JWKSURL, m.SingleUse)
	}
	in, diags := fromModel(ctx, m, types.StringNull())
	if diags.HasError() {
		t.Fatal(diags)
	}
	if in.IssuerURL != conn.IssuerURL || in.JWKS != "" || !in.SingleUse ||
		!reflect.DeepEqual(in.ClaimMappings, conn.ClaimMappings) || !reflect.DeepEqual(in.TokenAudience, conn.TokenAudience) {
		t.Errorf("round trip: %+v", in)
	}

	var bare connectionModel
	if diags := bare.extract(ctx, &api.Connection{ID: "id-2", Name: "b", ProviderType: api.ProviderGeneric, JWKSURL: "https://k.example/jwks"}); diags.HasError() {
		t.Fatal(diags)
	}
	if !bare.IssuerURL.IsNull() || !bare.JWKS.IsNull() || !bare.ClaimMappings.IsNull() || !bare.TokenAudience.IsNull() ||
		bare.SingleUse.ValueBool() || bare.SingleUse.IsNull() {
		t.Errorf("absent fields: issuer_url %v jwks %v claim_mappings %v token_audience %v single_use %v",
			bare.IssuerURL, bare.JWKS, bare.ClaimMappings, bare.TokenAudience, bare.SingleUse)
	}
	if got := mappingNames(m.ClaimMappings); len(got) != 2 {
		t.Errorf("mappingNames = %v", got)
	}
	if got := mappingNames(bare.ClaimMappings); got != nil {
		t.Errorf("mappingNames of null = %v", got)
	}
}

// A pending proposal's key source and token shape stand in for the live ones too, so that the plan
// after an apply that proposed them is empty.
func TestExtractDescribesTheProposalsKeySourceAndTokenShape(t *testing.T) {
	ctx := context.Background()
	live := &api.Connection{
		ID: "id-1", Name: "g", ProviderType: api.ProviderGeneric, JWKSURL: "https://k.example/jwks", JWKSURLOverridden: true,
		TokenTTL: api.TokenTTL{Amount: 1, Unit: "hours"}, IdentityClaim: "sub", Status: api.StatusActive,
		ClaimMappings: map[string]string{"live": "x"}, Fingerprint: "sha256:live",
		Proposal: &api.Proposal{
			Fingerprint: "sha256:proposed",
			Config: api.ConnectionInput{Name: "g", ProviderType: api.ProviderGeneric, IssuerURL: "https://issuer.example.com",
				ClaimMappings: map[string]string{"repo": "repository"}, TokenAudience: []string{"https://a.example"}, SingleUse: true},
		},
	}
	var m connectionModel
	if diags := m.extract(ctx, live); diags.HasError() {
		t.Fatal(diags)
	}
	in, diags := fromModel(ctx, m, types.StringNull())
	if diags.HasError() {
		t.Fatal(diags)
	}
	if !m.JWKSURL.IsNull() || in.IssuerURL != "https://issuer.example.com" || !in.SingleUse ||
		!reflect.DeepEqual(in.ClaimMappings, map[string]string{"repo": "repository"}) || !reflect.DeepEqual(in.TokenAudience, []string{"https://a.example"}) {
		t.Errorf("the resource does not describe the proposal: jwks_url %v, %+v", m.JWKSURL, in)
	}
}
