package connection

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

func TestToAPI(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name           string
		spec           api.ConnectionInput
		wantJWKS       string
		wantOverridden bool
		wantEffective  int
	}{
		{"derived jwks, no user conditions", api.ConnectionInput{Name: "a", GitHub: github("acme")},
			"https://token.actions.githubusercontent.com/.well-known/jwks", false, 4},
		{"overridden jwks", api.ConnectionInput{Name: "a", GitHub: github("acme"), JWKSURL: "https://m.example/j"},
			"https://m.example/j", true, 4},
		{"generic", api.ConnectionInput{Name: "a", JWKSURL: "https://idp.example/j", Conditions: genericPinned()},
			"https://idp.example/j", true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := normalized(t, tt.spec)
			c := &Connection{ID: "id", Spec: spec, Status: api.StatusActive, Revision: 4, CreatedBy: "a", UpdatedBy: "b",
				ActivatedBy: "c", CreatedAt: now, UpdatedAt: now, ActivatedAt: &now}
			got := ToAPI(c, testOpts)
			r := Resolve(spec, testOpts)
			if got.JWKSURL != tt.wantJWKS || got.JWKSURLOverridden != tt.wantOverridden {
				t.Errorf("jwks %q overridden %v", got.JWKSURL, got.JWKSURLOverridden)
			}
			if got.Fingerprint != r.Fingerprint || len(got.EffectiveConditions) != tt.wantEffective {
				t.Errorf("fingerprint %q effective %d", got.Fingerprint, len(got.EffectiveConditions))
			}
			if got.Conditions == nil || got.EffectiveConditions == nil {
				t.Errorf("nil lists")
			}
			if got.ID != "id" || got.Revision != 4 || got.Status != "active" || got.ActivatedBy != "c" || got.IdentityClaim != "sub" ||
				got.TokenTTL != (api.TokenTTL{Amount: 1, Unit: "hours"}) || got.ProviderType != spec.ProviderType || got.Name != "a" {
				t.Errorf("got %+v", got)
			}
			b, _ := json.Marshal(got)
			if !strings.Contains(string(b), `"conditions":[`) || strings.Contains(string(b), `"conditions":null`) {
				t.Errorf("conditions do not encode as a list: %s", b)
			}
			// No shared memory: changing the rendering leaves the stored connection alone.
			*got.ActivatedAt = time.Time{}
			if got.GitHub != nil {
				got.GitHub.Owner = "changed"
			}
			if c.ActivatedAt.IsZero() || (c.Spec.GitHub != nil && c.Spec.GitHub.Owner != "acme") {
				t.Errorf("ToAPI shares memory with the stored connection")
			}
		})
	}
}

func TestToAPIUnnormalisedSpecIsSafe(t *testing.T) {
	got := ToAPI(&Connection{Spec: api.ConnectionInput{Name: "x"}, Status: api.StatusDraft}, Options{})
	if got.ProviderType != "generic" || got.IdentityClaim != "sub" || got.TokenTTL.Amount != 1 || got.ActivatedAt != nil ||
		got.Conditions == nil || got.EffectiveConditions == nil {
		t.Fatalf("got %+v", got)
	}
}
