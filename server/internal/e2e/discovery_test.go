package e2e_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/trustgate/terraform-provider-trustgate/api"
	"github.com/trustgate/terraform-provider-trustgate/internal/testkit"
)

// TestDiscoveryLeadsToTheKeysThatVerifyAccessTokens follows /.well-known/openid-configuration the
// way a relying party would, and verifies an access token with the keys found there.
func TestDiscoveryLeadsToTheKeysThatVerifyAccessTokens(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.URL + "/.well-known/openid-configuration")
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
	if doc.Issuer != e.URL || doc.JWKSURI != e.URL+"/.well-known/jwks.json" || doc.TokenEndpoint != e.URL+"/v1/token" ||
		doc.IntrospectionEndpoint != e.URL+"/v1/introspect" || !slices.Contains(doc.GrantTypesSupported, api.GrantTypeTokenExchange) {
		t.Errorf("openid-configuration = %+v", doc)
	}
	conn := e.CreateActive(t, e.generic("discovered"))
	access := testkit.MustGrant(t, e.Exchange(conn.Name, e.token(t, nil)), time.Hour)
	e.VerifyAccess(t, access).Expect(t, conn, "workload:example", e.iss.URL, time.Hour)
}
