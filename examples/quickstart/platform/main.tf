# Platform team workspace: drafts a workload connection with the devops_admin key.
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
    owner      = "acme"
    repository = "acme/app"
  }

  condition {
    claim    = "ref"
    operator = "equals"
    value    = "refs/heads/main"
  }
}

output "fingerprint" {
  description = "Give this to the security team: they approve exactly this configuration."
  value       = trustgate_workload_connection.deploy.fingerprint
}
