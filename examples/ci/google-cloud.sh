#!/bin/sh
# Google Cloud (Cloud Build step, Compute Engine VM, GKE with Workload Identity, Cloud Run job):
# trade the identity token of the attached service account for a Trustgate access token.
# Matching connection: the `google_cloud` block in README.md (client_id = the audience below,
# email = the service account).
#
# In Cloud Build, run it as a step, for example:
#   steps:
#     - name: golang:1.26
#       entrypoint: sh
#       args: ["examples/ci/google-cloud.sh"]
#   serviceAccount: projects/PROJECT/serviceAccounts/deployer@PROJECT.iam.gserviceaccount.com
#   options:
#     logging: CLOUD_LOGGING_ONLY
set -eu

TRUSTGATE_SERVER="${TRUSTGATE_SERVER:-https://trustgate.example.com}"
TRUSTGATE_CONNECTION="${TRUSTGATE_CONNECTION:-google-deploy}"
# The audience requested from the metadata server; must equal `google_cloud { client_id = ... }`.
TRUSTGATE_AUDIENCE="${TRUSTGATE_AUDIENCE:-https://trustgate.example.com}"
export TRUSTGATE_SERVER TRUSTGATE_CONNECTION TRUSTGATE_AUDIENCE

# Pin a released version instead of @latest in production.
command -v trustgate >/dev/null 2>&1 ||
  go install github.com/trustgate/terraform-provider-trustgate/server/cmd/trustgate@latest
PATH="$PATH:$(go env GOPATH 2>/dev/null)/bin"

# The token comes from http://metadata.google.internal/...identity?audience=...&format=full
# (GCE_METADATA_HOST overrides the host). A plain assignment so that `set -e` stops on a refusal.
TRUSTGATE_ACCESS_TOKEN="$(trustgate exchange --from google --audience "$TRUSTGATE_AUDIENCE")"
export TRUSTGATE_ACCESS_TOKEN
# Give the token back when the script ends, however it ends (RFC 7009).
trap 'trustgate revoke --token-env TRUSTGATE_ACCESS_TOKEN' EXIT

# Use it: here, ask Trustgate who we are.
curl -fsS -H "Authorization: Bearer $TRUSTGATE_ACCESS_TOKEN" "$TRUSTGATE_SERVER/v1/whoami"
