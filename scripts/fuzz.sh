#!/usr/bin/env bash
# make fuzz: a short fuzzing run of the token path (CI-JWT verification), of the condition
# evaluator and of the hand-written JSON fast paths against encoding/json. Each target runs for FUZZTIME (default 20s). A crasher is written to the package's
# testdata/fuzz/<target>/ directory by `go test`, and from then on `go test` replays it: commit it
# together with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
fuzztime=${FUZZTIME:-20s}

# fuzz PKG TARGET: run one target, or say loudly that it does not exist.
fuzz() {
	local pkg=$1 target=$2
	if ! grep -qs "^func $target(f \*testing.F)" "$pkg"/*_test.go; then
		echo "!! fuzz target $target not found in $pkg: NOT fuzzed" >&2
		missing=$((missing + 1))
		return 0
	fi
	echo "== go test -fuzz $target ./$pkg/ (-fuzztime $fuzztime)"
	go test -run '^$' -fuzz "^$target\$" -fuzztime "$fuzztime" "./$pkg/"
}

missing=0
fuzz server/internal/jwtverify FuzzVerify
fuzz server/internal/connection FuzzEvaluateCondition
# The hand-written fast paths (BENCHMARKS.md, "Fast paths and their benchmarks"): the claims
# decoder and the access-token claims encoder stay equal to encoding/json.
fuzz server/internal/jwtverify FuzzDecodeObjectMatchesEncodingJSON
fuzz server/internal/signing FuzzMintClaimsJSONIsWhatEncodingJSONWrites
if [ "$missing" -gt 0 ]; then
	echo "!! $missing fuzz target(s) missing" >&2
	exit 1
fi
echo "== fuzz: no crashers in $fuzztime per target"
