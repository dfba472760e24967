#!/usr/bin/env bash
# scripts/require-terraform.sh MIN WHAT: fail with a clear message unless the terraform on PATH is
# MIN or newer. make docs uses it: an older Terraform's provider schema has no ephemeral
# resources, so tfplugindocs would silently drop trustgate_access_token's page.
set -euo pipefail
min=$1
what=$2
if ! command -v terraform >/dev/null; then
	echo "$what needs Terraform >= $min on PATH, and there is none." >&2
	exit 1
fi
have=$(terraform version 2>/dev/null | sed -n '1s/^Terraform v\([0-9][0-9.]*\).*/\1/p')
if [ -z "$have" ] || [ "$(printf '%s\n%s\n' "$have" "$min" | sort -V | head -n1)" != "$min" ]; then
	echo "$what needs Terraform >= $min (ephemeral resources); this is ${have:-an unknown version}." >&2
	echo "Older releases leave trustgate_access_token out of the provider schema and its docs. Install Terraform >= $min." >&2
	exit 1
fi
