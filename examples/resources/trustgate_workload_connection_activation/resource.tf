# Security workspace (security_admin key). Review the connection the platform
# team drafted, then approve exactly what you reviewed: if its configuration
# changes in between, the fingerprint changes and the activation is refused.

data "trustgate_workload_connection" "deploy" {
  name = "github-deploy"
}

variable "approved_fingerprint" {
  type        = string
  description = "Fingerprint of the reviewed configuration (sha256:...)."
}

resource "trustgate_workload_connection_activation" "deploy" {
  connection_name      = data.trustgate_workload_connection.deploy.name
  approved_fingerprint = var.approved_fingerprint
  on_destroy           = "deactivate" # or "delete"
}

output "effective_conditions" {
  value = data.trustgate_workload_connection.deploy.effective_conditions
}
