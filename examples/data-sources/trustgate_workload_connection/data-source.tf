# Read one connection by name (or by id) with every field, for example to
# review it before approving its fingerprint.
data "trustgate_workload_connection" "review" {
  name = "github-deploy"
}

output "review" {
  value = {
    status            = data.trustgate_workload_connection.review.status
    fingerprint       = data.trustgate_workload_connection.review.fingerprint
    created_by        = data.trustgate_workload_connection.review.created_by
    config_changed_by = data.trustgate_workload_connection.review.config_changed_by
    conditions        = data.trustgate_workload_connection.review.effective_conditions
  }
}

# A change proposed to an activated connection: what to review before
# approving its fingerprint (null when nothing is pending).
output "proposal" {
  value = data.trustgate_workload_connection.review.proposal == null ? null : {
    fingerprint = data.trustgate_workload_connection.review.proposal.fingerprint
    proposed_by = data.trustgate_workload_connection.review.proposal.proposed_by
    conditions  = data.trustgate_workload_connection.review.proposal.effective_conditions
  }
}
