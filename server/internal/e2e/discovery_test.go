package e2e_test

import (
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
	var doc struct {
		Issuer                string   `json:"issuer"`
		JWKSURI               string   `json:"jwks_uri"`
		TokenEndpoint         string   `json:"token_endpoint"`
		IntrospectionEndpoint string   `json:"introspection_endpoint"`
		GrantTypesSupported   []string `json:"grant_types_supported"`
	}
	e.Do(t, testkit.Request{Method: http.MethodGet, Path: "/.well-known/openid-configuration"}).WantStatus(t, http.StatusOK).Decode(t, &doc)
	if doc.Issuer != e.URL || doc.JWKSURI != e.URL+"/.well-known/jwks.json" || doc.TokenEndpoint != e.URL+"/v1/token" ||
		doc.IntrospectionEndpoint != e.URL+"/v1/introspect" || !slices.Contains(doc.GrantTypesSupported, api.GrantTypeTokenExchange) {
		t.Errorf("openid-configuration = %+v", doc)
	}
	conn := e.CreateActive(t, e.generic("discovered"))
	access := testkit.MustGrant(t, e.Exchange(conn.Name, e.token(t, nil)), time.Hour)
	e.VerifyAccess(t, access).Expect(t, conn, "workload:example", e.iss.URL, time.Hour)
}
