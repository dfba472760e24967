#!/usr/bin/env bash
# make test: every suite on SQLite, then every database-backed suite again on a throwaway
# PostgreSQL started here (scripts/pg.sh). Terraform acceptance tests run in both passes.
set -euo pipefail
cd "$(dirname "$0")/.."

export CHECKPOINT_DISABLE=1 TF_ACC=1
if ! command -v terraform >/dev/null; then
  cat >&2 <<'MSG'
make test: no `terraform` on PATH, and the provider's acceptance tests need the real CLI.
Install Terraform >= 1.11 (or build the last MPL release from the Go module proxy:
  GOBIN=$HOME/bin go install github.com/hashicorp/terraform@v1.5.7 && export PATH=$HOME/bin:$PATH)
then run make test again.
MSG
  exit 1
fi
export TF_ACC_TERRAFORM_PATH="$(command -v terraform)"
# Terraform must never reach for the network: a CLI config of our own with no credentials/mirrors.
export TF_CLI_CONFIG_FILE="${TF_CLI_CONFIG_FILE_TEST:-$(mktemp)}"

echo "== go test ./... on SQLite (embedded default)"
# Tests that only make sense on PostgreSQL skip here with a printed reason; they run in the pass below.
env -u TRUSTGATE_REQUIRE_POSTGRES -u TRUSTGATE_TEST_POSTGRES_URL go test -count=1 -timeout 30m ./...

# Packages whose tests use a database (storetest or the test kit) run again on PostgreSQL.
db_pkgs=$(go list -f '{{.ImportPath}} {{join .Imports " "}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... \
  | awk '/server\/internal\/store\/storetest|internal\/testkit/ {print $1}' | sort -u)

pgdir=$(mktemp -d /tmp/trustgate-pg.XXXXXX)
set +e
dsn=$(scripts/pg.sh start "$pgdir")
rc=$?
set -e
if [ "$rc" != 0 ]; then
  if [ "$rc" = 3 ] && [ -z "${TRUSTGATE_REQUIRE_POSTGRES:-}" ]; then
    echo "!! PostgreSQL server binaries are not installed: the PostgreSQL pass was NOT run." >&2
    echo "!! Install them (apt-get install -y postgresql) and run make test again." >&2
    exit 0
  fi
  echo "could not start a throwaway PostgreSQL (see above)" >&2
  exit 1
fi
trap 'scripts/pg.sh stop "$pgdir" >/dev/null 2>&1 || true; rm -rf "$pgdir"' EXIT

echo "== go test on PostgreSQL ($(echo $db_pkgs | wc -w) packages)"
TRUSTGATE_TEST_POSTGRES_URL="$dsn" go test -count=1 -timeout 30m $db_pkgs
echo "== make test: all suites passed on SQLite and PostgreSQL"
