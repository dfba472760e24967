#!/bin/sh
# Installs the trustgate binary from a GitHub release, checked against the release's SHA256SUMS.
# Copy this file into your repository (so the CI job runs a script you reviewed) and call it:
#   TRUSTGATE_VERSION=0.1.0 sh ci/install-trustgate.sh
# It downloads trustgate_<version>_<os>_<arch>.tar.gz for the runner (linux or darwin, amd64 or
# arm64) and terraform-provider-trustgate_<version>_SHA256SUMS from the same release, refuses an
# archive whose SHA-256 is not the one listed there, and puts `trustgate` in INSTALL_DIR
# (default $HOME/.local/bin; add it to PATH). The SHA256SUMS file itself is signed
# (…_SHA256SUMS.sig, the key the Terraform Registry shows for the provider) for those who also want
# to check who built it: gpg --verify terraform-provider-trustgate_<version>_SHA256SUMS.sig …
#
#   TRUSTGATE_VERSION       the release to install, without the leading v (required: pin it)
#   INSTALL_DIR             where to put the binary (default $HOME/.local/bin)
#   TRUSTGATE_RELEASES_URL  default https://github.com/trustgate/terraform-provider-trustgate/releases/download
set -eu

version="${TRUSTGATE_VERSION:?set TRUSTGATE_VERSION to the trustgate release to install, e.g. 0.1.0}"
version="${version#v}"
dir="${INSTALL_DIR:-$HOME/.local/bin}"
releases="${TRUSTGATE_RELEASES_URL:-https://github.com/trustgate/terraform-provider-trustgate/releases/download}"

case "$(uname -s)" in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  *) echo "install-trustgate: no trustgate release for $(uname -s); releases exist for Linux and macOS" >&2; exit 1 ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "install-trustgate: no trustgate release for $(uname -m); releases exist for amd64 and arm64" >&2; exit 1 ;;
esac

archive="trustgate_${version}_${os}_${arch}.tar.gz"
sums="terraform-provider-trustgate_${version}_SHA256SUMS"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT INT TERM

curl -fsSL --retry 3 -o "$tmp/$archive" "$releases/v$version/$archive"
curl -fsSL --retry 3 -o "$tmp/$sums" "$releases/v$version/$sums"

# The archive's line from the checksums file, and nothing else: a missing line is a refusal.
if ! grep "  $archive\$" "$tmp/$sums" >"$tmp/want.sha256"; then
  echo "install-trustgate: $archive is not listed in $sums; refusing to install it" >&2
  exit 1
fi
if command -v sha256sum >/dev/null 2>&1; then
  check="sha256sum -c"
else
  check="shasum -a 256 -c" # macOS
fi
if ! (cd "$tmp" && $check want.sha256 >/dev/null); then
  echo "install-trustgate: $archive does not match the SHA-256 in $sums; refusing to install it" >&2
  exit 1
fi

tar -xzf "$tmp/$archive" -C "$tmp" trustgate
mkdir -p "$dir"
mv "$tmp/trustgate" "$dir/trustgate"
chmod 0755 "$dir/trustgate"
echo "install-trustgate: installed trustgate $("$dir/trustgate" version) in $dir" >&2
