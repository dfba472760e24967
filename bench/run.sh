#!/usr/bin/env bash
# make bench: exchange throughput and latency against the crypto limit (SQLite and PostgreSQL), and
# Terraform at scale. Writes bench/results.json and prints a table. See BENCHMARKS.md.
#
#   bench/run.sh [trustgate-bench flags]     e.g. --duration 20s, --skip-terraform, --postgres DSN
#                                            (--postgres= : SQLite only; TMPDIR: where the throwaway
#                                            PostgreSQL keeps its data)
#
# PostgreSQL: unless --postgres is given, a throwaway cluster is started here with the durable
# settings a production server would have (fsync=on, synchronous_commit=on, full_page_writes=on),
# unlike scripts/pg.sh, which trades durability for test speed. Without PostgreSQL server binaries
# the PostgreSQL part is skipped with a message.
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=0 GOTOOLCHAIN=local CHECKPOINT_DISABLE=1

if [[ ! -x bin/trustgate ]] || ! ls bin/terraform-provider-trustgate_v* >/dev/null 2>&1; then
	echo "bench.sh: building bin/trustgate and the provider (make build)" >&2
	make --no-print-directory build >&2
fi
go build -o bin/trustgate-bench ./bench/cmd/trustgate-bench

find_bin() {
	local name=$1 p
	if p=$(command -v "$name" 2>/dev/null); then echo "$p"; return 0; fi
	for p in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		[[ -x $p/$name ]] && { echo "$p/$name"; return 0; }
	done
	return 1
}
as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

pg_args=()
pgdir=""
cleanup() {
	if [[ -n $pgdir ]]; then
		as_pg "$pg_ctl" -D "$pgdir/data" -m immediate -w stop >/dev/null 2>&1 || true
		rm -rf "$pgdir"
	fi
}
trap cleanup EXIT

if [[ " $* " != *" --postgres"* ]]; then
	if initdb=$(find_bin initdb) && pg_ctl=$(find_bin pg_ctl); then
		pgdir=$(mktemp -d "${TMPDIR:-/tmp}/trustgate-bench-pg.XXXXXX")
		[[ $(id -u) -eq 0 ]] && chown postgres: "$pgdir"
		as_pg "$initdb" -D "$pgdir/data" -U postgres -A trust -E UTF8 --locale=C >"$pgdir/initdb.log" 2>&1 ||
			{ cat "$pgdir/initdb.log" >&2; exit 1; }
		started=""
		for _ in 1 2 3 4 5; do
			port=$((20000 + RANDOM % 40000))
			if as_pg "$pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w -t 30 \
				-o "-p $port -k $pgdir -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on -c full_page_writes=on -c max_connections=200" \
				start >/dev/null 2>&1; then
				started=1
				break
			fi
		done
		[[ -n $started ]] || { echo "bench.sh: could not start PostgreSQL; log:" >&2; tail -n 20 "$pgdir/server.log" >&2; exit 1; }
		pg_args=(--postgres "postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable")
	else
		echo "bench.sh: no PostgreSQL server binaries (apt-get install -y postgresql): the PostgreSQL run is skipped" >&2
	fi
fi

bin/trustgate-bench --trustgate bin/trustgate --provider-dir bin --out bench/results.json "${pg_args[@]}" "$@"
