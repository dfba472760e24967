#!/usr/bin/env bash
# make test: every suite on SQLite, then every database-backed suite again on a throwaway
# PostgreSQL started here (scripts/pg.sh). Terraform acceptance tests run in both passes.
#
# It fails when PostgreSQL cannot be started. To run the SQLite pass alone, opt out explicitly:
#   TRUSTGATE_SKIP_POSTGRES=1 make test
# (TRUSTGATE_REQUIRE_POSTGRES, set by .ci/run, overrides the opt-out.)
#
# Terraform 1.10 or later runs every acceptance test. An older one (the 1.5.7 that .ci/run builds
# from the Go module proxy on a machine without Terraform) skips the tests that need ephemeral
# resources: then the provider's tests run with -v and the skipped tests are listed at the end,
# each with its reason.
set -euo pipefail
cd "$(dirname "$0")/.."

min_terraform=1.10.0

export CHECKPOINT_DISABLE=1 TF_ACC=1
if ! command -v terraform >/dev/null; then
  cat >&2 <<MSG
make test: no \`terraform\` on PATH, and the provider's acceptance tests need the real CLI.
Install Terraform >= ${min_terraform%.0} (or build the last MPL release from the Go module proxy, which
skips the ephemeral-resource tests and lists them:
  GOBIN=\$HOME/bin go install github.com/hashicorp/terraform@v1.5.7 && export PATH=\$HOME/bin:\$PATH)
then run make test again.
MSG
  exit 1
fi
export TF_ACC_TERRAFORM_PATH="$(command -v terraform)"
# Terraform must never reach for the network: a CLI config of our own with no credentials/mirrors.
export TF_CLI_CONFIG_FILE="${TF_CLI_CONFIG_FILE_TEST:-$(mktemp)}"

skip_pg=""
if [ -n "${TRUSTGATE_SKIP_POSTGRES:-}" ] && [ -z "${TRUSTGATE_REQUIRE_POSTGRES:-}" ]; then
  skip_pg=1
fi

# version_below A B: A < B for dotted versions.
version_below() { [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$1" ]; }
tf_version=$(terraform version 2>/dev/null | sed -n '1s/^Terraform v\([0-9][0-9.]*\).*/\1/p')
old_terraform=""
if [ -z "$tf_version" ] || version_below "$tf_version" "$min_terraform"; then
  old_terraform=1
  echo "!! Terraform ${tf_version:-(version unknown)} is older than ${min_terraform%.0}: the tests that need it skip; the list follows at the end." >&2
fi

provider_pkgs=$(go list ./provider/...)
skips=$(mktemp /tmp/trustgate-skips.XXXXXX)

# go_test PASS PKG...: go test on the packages. With an old Terraform the provider's package runs
# with -v (its output goes to a file, shown in full only if it fails) so that every skipped test
# and its reason can be listed at the end.
go_test() {
  local pass=$1
  shift
  if [ -z "$old_terraform" ]; then
    go test -count=1 -timeout 30m "$@"
    return
  fi
  local p others=() provider=()
  for p in $(go list "$@"); do
    if grep -qxF "$p" <<<"$provider_pkgs"; then provider+=("$p"); else others+=("$p"); fi
  done
  local rc=0
  if [ ${#others[@]} -gt 0 ]; then
    go test -count=1 -timeout 30m "${others[@]}" || rc=$?
  fi
  if [ ${#provider[@]} -gt 0 ]; then
    local log
    log=$(mktemp /tmp/trustgate-provider-test.XXXXXX)
    local prc=0
    go test -count=1 -timeout 30m -v "${provider[@]}" >"$log" 2>&1 || prc=$?
    if [ "$prc" != 0 ]; then
      cat "$log"
      rc=$prc
    else
      grep -E '^(ok|FAIL|\?)[[:space:]]' "$log" || true
    fi
    list_skips "$log" | sed "s/^/  [$pass] /" >>"$skips"
    rm -f "$log"
  fi
  return "$rc"
}

# list_skips LOG: every skipped test of a go test -v log with its reason.
list_skips() { awk -f scripts/skips.awk "$1"; }

# report_skips: the list of skipped tests, once (at the end, or on the way out after a failure).
reported=""
report_skips() {
  if [ -n "$old_terraform" ] && [ -z "$reported" ]; then
    reported=1
    echo
    echo "== Terraform $tf_version < ${min_terraform%.0}: these provider tests were SKIPPED"
    if [ -s "$skips" ]; then cat "$skips"; else echo "  (none)"; fi
  fi
}

pgdir=""
cleanup() {
  report_skips
  if [ -n "$pgdir" ]; then
    scripts/pg.sh stop "$pgdir" >/dev/null 2>&1 || true
    [ -f "$pgdir/datadir" ] && rm -rf "$(dirname "$(cat "$pgdir/datadir")")"
    rm -rf "$pgdir"
  fi
  rm -f "$skips"
}
trap cleanup EXIT

# Start PostgreSQL first: if it cannot run, say so before the long SQLite pass.
dsn=""
if [ -z "$skip_pg" ]; then
  pgdir=$(mktemp -d /tmp/trustgate-pg.XXXXXX)
  if ! dsn=$(scripts/pg.sh start "$pgdir"); then
    cat >&2 <<'MSG'
make test: could not start a throwaway PostgreSQL (see above), and make test runs every
database-backed suite on PostgreSQL too. Install the server binaries (Debian: apt-get install -y
postgresql), or run the SQLite pass alone with an explicit opt-out:
  TRUSTGATE_SKIP_POSTGRES=1 make test
MSG
    exit 1
  fi
fi

echo "== go test ./... on SQLite (embedded default)"
# Tests that only make sense on PostgreSQL skip here with a printed reason; they run in the pass below.
(
  unset TRUSTGATE_REQUIRE_POSTGRES TRUSTGATE_TEST_POSTGRES_URL
  go_test SQLite ./...
)

# The concurrency tests again under the race detector (it needs cgo and a C compiler): racing
# proposals and approvals, the audit writer's batches and chain, the sightings recorder, the
# broker's catalog and revocation list.
race_pkgs="./server/internal/httpapi/ ./server/internal/admin/ ./server/internal/audit/ ./server/internal/sightings/ ./server/internal/broker/"
if command -v "${CC:-cc}" >/dev/null; then
  echo "== go test -race (SQLite): the concurrency tests"
  (
    unset TRUSTGATE_REQUIRE_POSTGRES TRUSTGATE_TEST_POSTGRES_URL
    CGO_ENABLED=1 go test -race -count=1 -timeout 20m -run 'Rac|Concurren|Parallel|Replica|Writer|Record|Exclusive|Catalog|Revocation' $race_pkgs
  )
else
  echo "!! no C compiler (${CC:-cc}): the race-detector pass is SKIPPED (install gcc to run it)" >&2
fi

if [ -n "$skip_pg" ]; then
  report_skips
  cat >&2 <<'MSG'

!! ============================================================================================
!! TRUSTGATE_SKIP_POSTGRES is set: the PostgreSQL pass was NOT run. Only SQLite was tested.
!! Unset it (and install the PostgreSQL server binaries) for the full make test.
!! ============================================================================================
MSG
  echo "== make test: all suites passed on SQLite; PostgreSQL NOT tested (TRUSTGATE_SKIP_POSTGRES)"
  exit 0
fi

# Packages whose tests use a database (storetest or the test kit) run again on PostgreSQL.
db_pkgs=$(go list -f '{{.ImportPath}} {{join .Imports " "}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... \
  | awk '/server\/internal\/store\/storetest|internal\/testkit/ {print $1}' | sort -u)

echo "== go test on PostgreSQL ($(echo $db_pkgs | wc -w) packages)"
(
  export TRUSTGATE_TEST_POSTGRES_URL="$dsn"
  go_test PostgreSQL $db_pkgs
)
report_skips
echo "== make test: all suites passed on SQLite and PostgreSQL"
