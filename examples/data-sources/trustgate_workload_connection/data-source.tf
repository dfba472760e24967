# Read one connection by name (or by id) with every field, for example to
# review it before approving its fingerprint.
data "trustgate_workload_connection" "review" {
  name = "github-deploy"
}

output "review" {
  value = {
    status      = data.trustgate_workload_connection.review.status
    fingerprint = data.trustgate_workload_connection.review.fingerprint
    created_by  = data.trustgate_workload_connection.review.created_by
    conditions  = data.trustgate_workload_connection.review.effective_conditions
  }
}
