#!/usr/bin/env bash
# make lint: the documents a newcomer reads point at things that exist.
#   - README.md's Layout section lists every package of the module (one line each), and every
#     directory it lists exists: a new, moved or removed package fails here until the README says so;
#   - every test SECURITY.md names as the proof of a defence exists;
#   - nothing refers to a "SPEC": the product contract is CONTRACT.md.
set -euo pipefail
cd "$(dirname "$0")/.."

# The first code block after "## Layout".
layout=$(awk '/^## Layout/ { on = 1; next } on && /^```/ { if (++fence == 2) exit; next } on && fence == 1' README.md)
if [ -z "$layout" ]; then
	echo "README.md has no code block under '## Layout'" >&2
	exit 1
fi
entries=$(awk '/^[^ ]/ { print $1 }' <<<"$layout")  # continuation lines are indented

module=$(go list -m)
status=0
for pkg in $(go list ./...); do
	rel=${pkg#"$module"}
	rel=${rel#/}
	if [ -z "$rel" ]; then entry=main.go; else entry=$rel/; fi
	if ! grep -qxF "$entry" <<<"$entries"; then
		echo "README.md, Layout: package $pkg is not listed (add a line starting with $entry)" >&2
		status=1
	fi
done
for entry in $entries; do
	if [ ! -e "$entry" ]; then
		echo "README.md, Layout: $entry does not exist (moved or removed?)" >&2
		status=1
	fi
done

# SECURITY.md: `TestX` / `FuzzX` names are the proof of each defence.
for name in $(grep -o '`\(Test\|Fuzz\)[A-Za-z0-9_]*`' SECURITY.md | tr -d '`' | sort -u); do
	if ! git grep -q -E "^func $name\(" -- '*_test.go'; then
		echo "SECURITY.md names $name, which no _test.go file defines (renamed? update SECURITY.md)" >&2
		status=1
	fi
done

# The contract is CONTRACT.md, in the repository.
if git grep -n -w 'SPEC' -- . ':!go.sum' ':!scripts/check-references.sh' >&2; then
	echo "the lines above refer to a SPEC: the product contract is CONTRACT.md (cite it as CONTRACT.md §N)" >&2
	status=1
fi
exit $status
