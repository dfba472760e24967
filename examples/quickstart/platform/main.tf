# Platform team workspace: drafts a workload connection with the devops_admin key.
# Once the security team has activated it, applying a changed configuration
# stores a proposal: Trustgate keeps enforcing the live configuration until a
# security admin approves the proposal's fingerprint.
terraform {
  required_providers {
    trustgate = {
      source = "trustgate/trustgate"
    }
  }
}

variable "endpoint" {
  type        = string
  description = "Trustgate server URL."
}

variable "api_key" {
  type        = string
  sensitive   = true
  description = "A devops_admin API key."
}

variable "jwks_url" {
  type        = string
  default     = null
  description = "Override of the preset's JWKS URL (the demo points it at `trustgate dev-issuer`)."
}

provider "trustgate" {
  endpoint = var.endpoint
  api_key  = var.api_key
}

resource "trustgate_workload_connection" "deploy" {
  name        = "github-deploy"
  description = "Deploys from acme/app main"
  token_ttl   = { amount = 30, unit = "minutes" }
  jwks_url    = var.jwks_url

  github {
    owner_id      = "61234567" # acme's numeric id: gh api orgs/acme --jq .id
    owner         = "acme"
    repository_id = "812345678" # gh api repos/acme/app --jq .id
    repository    = "acme/app"
  }

  condition {
    claim    = "ref"
    operator = "equals"
    value    = "refs/heads/main"
  }
}

output "fingerprint" {
  description = "Give this to the security team: they approve exactly this configuration (the pending proposal's, once the connection has been activated)."
  value       = trustgate_workload_connection.deploy.fingerprint
}

output "live_fingerprint" {
  description = "The configuration Trustgate enforces now."
  value       = trustgate_workload_connection.deploy.live_fingerprint
}

output "proposal_pending" {
  description = "Whether a change waits for the security team's approval."
  value       = trustgate_workload_connection.deploy.proposal_pending
}
