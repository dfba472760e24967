# Platform workspace (devops_admin key). Each connection is created as a draft;
# the security team activates it with trustgate_workload_connection_activation.
# After that, applying a changed configuration stores a proposal that the
# security team approves by its fingerprint.

# GitHub Actions: deploys from the main branch of acme/app. The owner and the
# repository are pinned by their numeric ids, which no one else can ever get;
# the names are pinned too.
resource "trustgate_workload_connection" "deploy" {
  name        = "github-deploy"
  description = "Deploys from acme/app main"
  token_ttl   = { amount = 30, unit = "minutes" }

  github {
    owner_id      = "61234567" # gh api orgs/acme --jq .id
    owner         = "acme"
    repository_id = "812345678" # gh api repos/acme/app --jq .id
    repository    = "acme/app"
  }

  condition {
    claim    = "ref"
    operator = "equals"
    value    = "refs/heads/main"
  }

  # What the services receiving the token authorize on: the issued access
  # token carries these claims in its "claims" object...
  claim_mappings = {
    repository = "repository"
    workflow   = "workflow_ref"
  }

  # ...and is minted for one of these audiences (the CI job picks one with
  # the RFC 8693 audience parameter).
  token_audience = ["https://deploy.acme.example", "https://registry.acme.example"]
}

# GitLab CI on gitlab.com: any project of the acme group, protected refs only.
resource "trustgate_workload_connection" "gitlab" {
  name = "gitlab-acme"

  gitlab {
    domain = "gitlab.com"
    group  = "acme"
  }

  condition {
    claim    = "ref_protected"
    operator = "equals"
    value    = "true"
  }
}

# CircleCI: one project of one organization.
resource "trustgate_workload_connection" "circleci" {
  name = "circleci-release"

  circleci {
    organization_id = "6a2c6f0e-4b8e-4b5e-9d5c-3c1f2a7b9e01"
    project_id      = "0f7e6d5c-4b3a-4c2d-9e1f-a0b1c2d3e4f5"
  }
}

# Google Cloud: workloads running as one service account.
resource "trustgate_workload_connection" "google" {
  name = "gce-batch"

  google_cloud {
    client_id = "https://trustgate.example.com"
    email     = "batch@acme-prod.iam.gserviceaccount.com"
  }
}

# Generic OIDC issuer: no preset, so jwks_url and conditions pinning iss and
# aud are required. Issued tokens name the workload by its pipeline slug.
resource "trustgate_workload_connection" "buildkite" {
  name           = "buildkite-deploy"
  jwks_url       = "https://agent.buildkite.com/.well-known/jwks"
  identity_claim = "pipeline_slug"
  token_ttl      = { amount = 900, unit = "seconds" }

  condition {
    claim    = "iss"
    operator = "equals"
    value    = "https://agent.buildkite.com"
  }

  condition {
    claim    = "aud"
    operator = "equals"
    value    = "https://trustgate.example.com"
  }

  condition {
    claim    = "organization_slug"
    operator = "equals"
    value    = "acme"
  }

  condition {
    claim    = "pipeline_slug"
    operator = "one_of"
    values   = ["deploy-api", "deploy-web"]
  }

  condition {
    claim    = "build_tag"
    operator = "exists"
  }
}
