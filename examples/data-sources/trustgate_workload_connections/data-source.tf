# Every draft waiting for a security review.
data "trustgate_workload_connections" "drafts" {
  status = "draft"
}

# Every GitHub connection whose name starts with "github-".
data "trustgate_workload_connections" "github" {
  provider_type = "github"
  name_prefix   = "github-"
}

output "awaiting_review" {
  value = { for c in data.trustgate_workload_connections.drafts.connections : c.name => c.fingerprint }
}
