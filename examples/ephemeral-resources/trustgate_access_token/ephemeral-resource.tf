# In a CI job: trade the job's OIDC token for a Trustgate access token. The
# token is never written to the plan or the state. The provider needs only
# the endpoint for this, no API key.
variable "ci_id_token" {
  type      = string
  sensitive = true
  ephemeral = true
}

ephemeral "trustgate_access_token" "deploy" {
  connection_name = "github-deploy"
  subject_token   = var.ci_id_token
  audience        = "https://deploy.acme.example" # optional: one of the connection's token_audience
}

# Use the token where ephemeral values are allowed, for example in another
# provider's configuration:
#
# provider "example" {
#   token = ephemeral.trustgate_access_token.deploy.access_token
# }
