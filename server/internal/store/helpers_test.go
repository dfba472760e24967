package store_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/connection"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/principal"
	"github.com/trustgate/terraform-provider-trustgate/server/internal/store"
)

func strp(s string) *string { return &s }

// newConnection builds a connection with a spec that exercises the JSON round trip (preset block,
// pointer values, lists). Times carry nanoseconds and a non-UTC zone on purpose.
func newConnection(name, providerType, status string) *connection.Connection {
	zone := time.FixedZone("CET", 3600)
	created := time.Date(2026, 11, 28, 10, 11, 12, 123456789, zone)
	c := &connection.Connection{
		Spec: api.ConnectionInput{
			Name:          name,
			Description:   "test connection " + name,
			ProviderType:  providerType,
			TokenTTL:      &api.TokenTTL{Amount: 30, Unit: api.UnitMinutes},
			IdentityClaim: "sub",
			Conditions: []api.Condition{
				{Claim: "ref", Operator: api.OpEquals, Value: strp("")},
				{Claim: "/nested/claim", Operator: api.OpOneOf, Values: []string{"a", "b"}},
				{Claim: "environment", Operator: api.OpExists},
			},
		},
		Status:          status,
		CreatedBy:       "dev",
		UpdatedBy:       "dev",
		ConfigChangedBy: "dev",
		CreatedAt:       created,
		UpdatedAt:       created.Add(time.Second),
	}
	switch providerType {
	case api.ProviderGitHub:
		c.Spec.GitHub = &api.GitHubSettings{OwnerID: "65", Owner: "acme", Repository: "acme/" + name}
	case api.ProviderGitLab:
		c.Spec.GitLab = &api.GitLabSettings{Domain: "gitlab.com", Group: "acme"}
	case api.ProviderGeneric:
		c.Spec.JWKSURL = "https://issuer.example/jwks"
	}
	if status == api.StatusActive || status == api.StatusInactive {
		at := created.Add(time.Hour)
		c.EverActivated = true
		c.ActivatedBy = "sec"
		c.ActivatedAt = &at
	}
	return c
}

func auditFor(c *connection.Connection, action string) *api.AuditEvent {
	return &api.AuditEvent{
		Actor:          c.UpdatedBy,
		Action:         action,
		ConnectionID:   c.ID,
		ConnectionName: c.Spec.Name,
		Outcome:        api.OutcomeSuccess,
		RequestID:      "req-" + action,
		RemoteAddr:     "127.0.0.1",
		Detail:         map[string]any{"revision": float64(c.Revision)},
	}
}

func newPrincipal(t *testing.T, name, role string) principal.Principal {
	t.Helper()
	_, hash, err := principal.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return principal.Principal{Name: name, Role: role, KeyHash: hash}
}

func newKey(kid string) store.SigningKey {
	return store.SigningKey{
		KID:           kid,
		Algorithm:     "ES256",
		PublicJWK:     []byte(`{"kty":"EC","kid":"` + kid + `"}`),
		SealedPrivate: []byte{0, 1, 2, 0xff, 0xfe, 0},
	}
}

// assertConnectionEqual compares a stored connection with what was written. Create/Update
// normalise the written value's times to UTC microseconds, so plain equality must hold.
func assertConnectionEqual(t *testing.T, got, want *connection.Connection) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("connection mismatch:\n got  %+v\n want %+v", *got, *want)
	}
	if got.CreatedAt.Location() != time.UTC || got.UpdatedAt.Location() != time.UTC {
		t.Errorf("times not UTC: %v, %v", got.CreatedAt.Location(), got.UpdatedAt.Location())
	}
}
