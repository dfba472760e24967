#!/usr/bin/env bash
# make test-faults: Trustgate under scale-out and faults (server/internal/faults) on SQLite and on a
# throwaway PostgreSQL started here, then a short fuzzing run (scripts/fuzz.sh). The tests build the
# trustgate binary themselves and drive real `trustgate serve` processes: two replicas on one
# database, kill -9 under load, PostgreSQL and JWKS outages, rate limits, hostile input. The
# measured figures (lines starting with FAULTS:) are repeated at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local

pgdir=$(mktemp -d /tmp/trustgate-faults-pg.XXXXXX)
set +e
dsn=$(scripts/pg.sh start "$pgdir")
rc=$?
set -e
if [ "$rc" != 0 ]; then
	rm -rf "$pgdir"
	if [ "$rc" = 3 ] && [ -z "${TRUSTGATE_REQUIRE_POSTGRES:-}" ]; then
		echo "!! PostgreSQL server binaries are not installed: the replica, PostgreSQL crash and outage tests will SKIP." >&2
		echo "!! Install them (apt-get install -y postgresql) and run make test-faults again." >&2
		dsn=""
	else
		echo "could not start a throwaway PostgreSQL (see above)" >&2
		exit 1
	fi
else
	trap 'scripts/pg.sh stop "$pgdir" >/dev/null 2>&1 || true; [ -f "$pgdir/datadir" ] && rm -rf "$(dirname "$(cat "$pgdir/datadir")")"; rm -rf "$pgdir"' EXIT
fi

out=$(mktemp /tmp/trustgate-faults-out.XXXXXX)
if [ -n "$dsn" ]; then on="SQLite and PostgreSQL"; else on="SQLite only"; fi
echo "== go test -v ./server/internal/faults/ ($on)"
set +e
TRUSTGATE_FAULTS=1 TRUSTGATE_TEST_POSTGRES_URL="$dsn" go test -count=1 -v -timeout 10m -run . ./server/internal/faults/ 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e
echo
echo "== measured figures"
grep '^FAULTS:' "$out" | sed 's/^FAULTS: /  /' || echo "  (none: the tests did not get far enough)"
grep -E '^\s+--- SKIP|^--- SKIP' "$out" | sed 's/^/  /' || true
rm -f "$out"
if [ "$status" != 0 ]; then
	echo "== make test-faults: FAILED (see above)" >&2
	exit "$status"
fi

echo
scripts/fuzz.sh
echo "== make test-faults: passed"
