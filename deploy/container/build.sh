#!/usr/bin/env bash
# Builds the trustgate container image without a Docker daemon (buildah, from Debian's packages) and
# writes it as an OCI archive. Usage (make image runs it):
#   deploy/container/build.sh [VERSION [ARCH]]
# VERSION defaults to 0.1.0, ARCH to the build machine's GOARCH (amd64 or arm64). The result is
#   bin/trustgate-image_<VERSION>_linux_<ARCH>.tar   (oci-archive, tag trustgate:<VERSION>)
# Load it with `podman load -i FILE`, push it with `skopeo copy oci-archive:FILE docker://REGISTRY/…`.
#
# The base is `scratch`: no registry is needed to build it. The only files besides the binary are a
# passwd/group entry for the non-root user and the CA certificates of the build machine, without which
# the server could not fetch JWKS over HTTPS.
set -euo pipefail
cd "$(dirname "$0")/../.."

version="${1:-0.1.0}"
arch="${2:-$(go env GOARCH)}"
uid=65532
cacerts="${CA_CERTIFICATES:-/etc/ssl/certs/ca-certificates.crt}"
out="bin/trustgate-image_${version}_linux_${arch}.tar"

command -v buildah >/dev/null || { echo "buildah is not installed: apt-get install -y buildah (Debian/Ubuntu) or dnf install buildah" >&2; exit 1; }
[[ -s "$cacerts" ]] || { echo "no CA certificates at $cacerts: apt-get install -y ca-certificates, or set CA_CERTIFICATES=FILE (a PEM bundle)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'buildah --root "$work/storage" --runroot "$work/run" rm --all >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
ctx="$work/context"
mkdir -p "$ctx/rootfs/etc/ssl/certs" "$ctx/rootfs/var/lib" "$ctx/data"

CGO_ENABLED=0 GOOS=linux GOARCH="$arch" go build -trimpath -ldflags "-s -w -X main.version=$version" \
  -o "$ctx/trustgate" ./server/cmd/trustgate
printf 'root:x:0:0:root:/root:/sbin/nologin\ntrustgate:x:%d:%d:trustgate:/var/lib/trustgate:/sbin/nologin\n' "$uid" "$uid" >"$ctx/rootfs/etc/passwd"
printf 'root:x:0:\ntrustgate:x:%d:\n' "$uid" >"$ctx/rootfs/etc/group"
install -m 0644 "$cacerts" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
chmod 0644 "$ctx/rootfs/etc/passwd" "$ctx/rootfs/etc/group"
chmod 0755 "$ctx/trustgate" "$ctx/data" "$ctx/rootfs/var" "$ctx/rootfs/var/lib"

# Same bytes for the same commit: file times and the image's creation time come from the commit.
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"

# A private storage directory: nothing is left in the machine's container storage, and the build
# needs neither a daemon nor a registry. vfs works where overlay mounts are not allowed (containers,
# CI sandboxes); the image is two small layers, so its cost does not matter.
bah=(buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs)
"${bah[@]}" build --quiet --isolation chroot --platform "linux/$arch" --format oci \
  --timestamp "$epoch" \
  --label "org.opencontainers.image.title=trustgate" \
  --label "org.opencontainers.image.version=$version" \
  --label "org.opencontainers.image.source=https://github.com/trustgate/terraform-provider-trustgate" \
  -f deploy/container/Containerfile -t "trustgate:$version" "$ctx" >/dev/null
mkdir -p bin
rm -f "$out"
"${bah[@]}" push --quiet "trustgate:$version" "oci-archive:$out:trustgate:$version"
echo "$out"
