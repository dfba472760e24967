# OIDC discovery: a generic issuer found through its discovery document
# (<issuer_url>/.well-known/openid-configuration), here a self-hosted Keycloak
# realm that signs the tokens of an internal CI system. Trustgate checks that
# the document's issuer is issuer_url byte for byte, uses its jwks_uri, and
# pins iss to issuer_url (the first effective condition), so only aud and the
# scope are left to the conditions.
resource "trustgate_workload_connection" "keycloak" {
  name       = "keycloak-ci"
  issuer_url = "https://sso.acme.example/realms/ci"

  condition {
    claim    = "aud"
    operator = "equals"
    value    = "trustgate"
  }

  condition {
    claim    = "azp"
    operator = "equals"
    value    = "ci-runner"
  }
}
