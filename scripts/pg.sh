#!/usr/bin/env bash
# Throwaway PostgreSQL on loopback for tests and demos. Never use it for data you want to keep:
# it runs with trust authentication and fsync=off.
#
#   scripts/pg.sh start DIR   initdb + start; prints the DSN on stdout and writes it to DIR/dsn
#   scripts/pg.sh stop DIR    immediate stop (the data directory stays; rm -rf DIR afterwards)
#
# As root the server runs as the OS user `postgres` (runuser); otherwise as the calling user.
# Typical use in a test run:
#
#   d=$(mktemp -d); export TRUSTGATE_TEST_POSTGRES_URL=$(scripts/pg.sh start "$d")
#   go test -count=1 ./server/internal/store/...; scripts/pg.sh stop "$d"; rm -rf "$d"
set -euo pipefail

usage() {
	echo "usage: $0 start|stop DIR" >&2
	exit 2
}

[[ $# -eq 2 ]] || usage
cmd=$1
dir=$2

log() { echo "pg.sh: $*" >&2; }

# find_bin NAME: on PATH, else under /usr/lib/postgresql/*/bin (newest version first).
find_bin() {
	local name=$1 p
	if p=$(command -v "$name" 2>/dev/null); then
		echo "$p"
		return 0
	fi
	for p in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		if [[ -x $p/$name ]]; then
			echo "$p/$name"
			return 0
		fi
	done
	return 1
}

# as_pg CMD...: run as the postgres OS user when we are root (PostgreSQL refuses to run as root).
as_pg() {
	if [[ $(id -u) -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# datadir DIR: where the cluster lives (DIR/data, or the fallback recorded in DIR/datadir).
datadir() {
	if [[ -f $dir/datadir ]]; then
		cat "$dir/datadir"
	else
		echo "$dir/data"
	fi
}

start() {
	local initdb pg_ctl
	if ! initdb=$(find_bin initdb) || ! pg_ctl=$(find_bin pg_ctl); then
		log "no PostgreSQL server binaries (initdb, pg_ctl) on PATH or under /usr/lib/postgresql/*/bin."
		log "install them with: apt-get update && apt-get install -y postgresql"
		exit 3
	fi
	if [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
		log "running as root but there is no OS user 'postgres' to run the server as."
		log "install the server package (apt-get install -y postgresql) or run this script as a non-root user"
		exit 3
	fi

	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd -P)
	rm -f "$dir/dsn" "$dir/datadir"

	# The cluster and its socket live in DIR. As root, DIR (often a 0700 mktemp directory) is handed to
	# the postgres user; if an ancestor of DIR is not searchable by postgres (a test's t.TempDir() under
	# a 0700 parent), fall back to a postgres-owned directory of its own and record where it is.
	local base=$dir
	if [[ $(id -u) -eq 0 ]]; then
		chown postgres: "$dir"
		if ! runuser -u postgres -- test -w "$dir" 2>/dev/null; then
			base=$(mktemp -d /tmp/trustgate-pg.XXXXXX)
			chown postgres: "$base"
			echo "$base/data" >"$dir/datadir"
			log "postgres cannot reach $dir; using $base for the cluster"
		fi
	fi
	local data=$base/data

	as_pg "$initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$base/initdb.log" 2>&1 || {
		log "initdb failed:"
		cat "$base/initdb.log" >&2
		exit 1
	}

	local port attempt
	for attempt in 1 2 3 4 5 6 7 8; do
		port=$((20000 + RANDOM % 40000))
		# Something answers on the port: taken, pick another.
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			continue
		fi
		if as_pg "$pg_ctl" -D "$data" -l "$base/server.log" -w -t 30 \
			-o "-p $port -k $base -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
			start >/dev/null 2>&1; then
			local dsn="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
			echo "$dsn" >"$dir/dsn"
			echo "$dsn"
			return 0
		fi
		log "start on port $port failed (attempt $attempt), retrying on another port"
		as_pg "$pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
	done
	log "could not start PostgreSQL; server log:"
	tail -n 30 "$base/server.log" >&2 || true
	exit 1
}

stop() {
	local pg_ctl data
	if ! pg_ctl=$(find_bin pg_ctl); then
		log "pg_ctl not found (apt-get install -y postgresql)"
		exit 3
	fi
	dir=$(cd "$dir" && pwd -P)
	data=$(datadir)
	if [[ ! -d $data ]]; then
		log "no cluster in $data"
		exit 1
	fi
	as_pg "$pg_ctl" -D "$data" -m immediate -w stop >/dev/null
	rm -f "$dir/dsn"
}

case $cmd in
start) start ;;
stop) stop ;;
*) usage ;;
esac
