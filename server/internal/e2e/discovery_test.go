package e2e_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
)

// TestDiscoveryLeadsToTheKeysThatVerifyAccessTokens follows /.well-known/openid-configuration the
// way a relying party would, and verifies an access token with the keys found there.
func TestDiscoveryLeadsToTheKeysThatVerifyAccessTokens(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.s.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Issuer                string   `json:"issuer"`
		JWKSURI               string   `json:"jwks_uri"`
		TokenEndpoint         string   `json:"token_endpoint"`
		IntrospectionEndpoint string   `json:"introspection_endpoint"`
		GrantTypesSupported   []string `json:"grant_types_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("openid-configuration: %d %v", resp.StatusCode, err)
	}
	if doc.Issuer != e.s.URL || doc.JWKSURI != e.s.URL+"/.well-known/jwks.json" || doc.TokenEndpoint != e.s.URL+"/v1/token" ||
		doc.IntrospectionEndpoint != e.s.URL+"/v1/introspect" || !slices.Contains(doc.GrantTypesSupported, api.GrantTypeTokenExchange) {
		t.Errorf("openid-configuration = %+v", doc)
	}
	conn := e.createActive(t, apiGeneric(e, "discovered"))
	access := mustGrant(t, e.exchange(t, conn.Name, e.iss.mint(t, "generic", map[string]any{"aud": e.s.URL})), time.Hour)
	e.verifyAccess(t, access, conn, "workload:example", e.iss.URL, time.Hour)
}
