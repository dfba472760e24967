# One connection for every release branch of every repository of an
# organisation, except the sandbox environment, and each CI token used once.
# In a glob, * stops at "/", ** crosses it, ? is one character; a pattern of
# only wildcards is refused at plan time (use exists). not_equals needs the
# claim present (and, for an array claim, no element equal to the value).
resource "trustgate_workload_connection" "releases" {
  name = "github-releases"

  github {
    owner_id = "61234567"
    owner    = "acme"
  }

  condition {
    claim    = "ref"
    operator = "glob"
    value    = "refs/heads/release/*"
  }

  condition {
    claim    = "environment"
    operator = "not_equals"
    value    = "sandbox"
  }

  # A second exchange of the same CI token (by iss and jti) is refused, on
  # every Trustgate replica.
  single_use = true
}
