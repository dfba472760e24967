# Security team workspace: approves (activates) the connection with its own security_admin key.
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
  description = "The fingerprint the platform team showed you; activation is refused if the connection differs."
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
