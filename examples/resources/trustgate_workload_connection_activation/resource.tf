# Security workspace (security_admin key). Review the connection the platform
# team drafted, then approve exactly what you reviewed: if its configuration
# changes in between, the fingerprint changes and the activation is refused.
# Later changes arrive as proposals (proposal_fingerprint): review one, then
# set approved_fingerprint to its fingerprint to approve it. Its author may
# not approve it; another security admin must apply.

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

# What a pending proposal would enforce (null when nothing is pending).
output "proposed_conditions" {
  value = try(data.trustgate_workload_connection.deploy.proposal.effective_conditions, null)
}
