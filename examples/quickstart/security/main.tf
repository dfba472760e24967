# Security team workspace: approves (activates) the connection with its own
# security_admin key, and later approves the changes the platform team proposes:
# set approved_fingerprint to proposal_fingerprint once you have reviewed it.
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
  description = "A security_admin API key."
}

variable "approved_fingerprint" {
  type        = string
  description = "The fingerprint you reviewed: the draft's to activate it, later a pending proposal's to approve it. Refused if the connection (or the proposal) changed since."
}

provider "trustgate" {
  endpoint = var.endpoint
  api_key  = var.api_key
}

resource "trustgate_workload_connection_activation" "deploy" {
  connection_name      = "github-deploy"
  approved_fingerprint = var.approved_fingerprint
}

output "status" {
  value = trustgate_workload_connection_activation.deploy.status
}

output "activated_by" {
  value = trustgate_workload_connection_activation.deploy.activated_by
}

output "fingerprint" {
  description = "The configuration Trustgate enforces now."
  value       = trustgate_workload_connection_activation.deploy.fingerprint
}

output "proposal_fingerprint" {
  description = "A change the platform team proposed, waiting for your review (empty when none)."
  value       = trustgate_workload_connection_activation.deploy.proposal_fingerprint
}
