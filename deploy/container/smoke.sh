#!/usr/bin/env bash
# Runs the image that deploy/container/build.sh wrote and checks what CONTRACT.md §8 promises of it:
# it starts with `serve`, reads TRUSTGATE_* from the environment, answers /healthz and /readyz, runs
# as a non-root user, has no shell, and works with a read-only root filesystem and no capabilities
# (the Helm chart's security context). Usage (make image-check runs it after make image):
#   deploy/container/smoke.sh bin/trustgate-image_<VERSION>_linux_<ARCH>.tar
# Needs podman (Debian: apt-get install -y podman runc). Without podman it checks what can be checked
# without running the image (its config: user, entrypoint, environment; no shell in the layers) and
# says that it did not run it.
set -euo pipefail
archive="${1:?usage: deploy/container/smoke.sh IMAGE_ARCHIVE}"
[[ -s "$archive" ]] || { echo "no image archive at $archive: run make image first" >&2; exit 1; }

work="$(mktemp -d)"
cleanup() {
  if [[ -n "${pm:-}" ]]; then "${pm[@]}" rm --force --all >/dev/null 2>&1 || true; "${pm[@]}" volume rm --all --force >/dev/null 2>&1 || true; "${pm[@]}" rmi --all --force >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "image-check: FAIL: $*" >&2; exit 1; }

# 1. The image's config and layers, read from the OCI archive itself.
mkdir "$work/oci"
tar -xf "$archive" -C "$work/oci"
python3 - "$work/oci" <<'PY' || fail "image config"
import json, sys, tarfile, gzip
root = sys.argv[1]
def blob(d): return root + "/blobs/sha256/" + d.split(":")[1]
index = json.load(open(root + "/index.json"))
manifest = json.load(open(blob(index["manifests"][0]["digest"])))
config = json.load(open(blob(manifest["config"]["digest"])))["config"]
problems = []
user = config.get("User", "")
if user.split(":")[0] in ("", "0", "root"):
    problems.append(f"runs as {user or 'root (no User)'}, want a non-root uid")
if config.get("Entrypoint") != ["/usr/local/bin/trustgate", "serve"]:
    problems.append(f"entrypoint {config.get('Entrypoint')}, want [/usr/local/bin/trustgate serve]")
if "TRUSTGATE_LISTEN=0.0.0.0:8080" not in config.get("Env", []):
    problems.append(f"env {config.get('Env')} lacks TRUSTGATE_LISTEN=0.0.0.0:8080")
files = set()
for layer in manifest["layers"]:
    with tarfile.open(blob(layer["digest"]), "r:*") as t:
        files |= {m.name.lstrip("./") for m in t.getmembers()}
for shell in ("bin/sh", "bin/bash", "bin/busybox", "usr/bin/sh"):
    if shell in files:
        problems.append(f"the image has a shell: /{shell}")
for need in ("usr/local/bin/trustgate", "etc/passwd", "etc/ssl/certs/ca-certificates.crt"):
    if need not in files:
        problems.append(f"/{need} is missing")
if problems:
    print("\n".join(problems), file=sys.stderr); sys.exit(1)
print(f"image-check: config ok: user {user}, entrypoint {' '.join(config['Entrypoint'])}, "
      f"{len(files)} files, no shell")
PY

# 2. Run it.
if ! command -v podman >/dev/null; then
  echo "image-check: podman is not installed, so the image was NOT run (apt-get install -y podman runc to run it)"
  exit 0
fi
# A private store, and the settings a sandboxed CI machine needs: runc where crun cannot handle hybrid
# cgroups, and resource limits no higher than the caller's (no CAP_SYS_RESOURCE needed).
pm=(podman --root "$work/storage" --runroot "$work/run" --storage-driver vfs)
command -v runc >/dev/null && pm+=(--runtime runc)
"${pm[@]}" load --quiet -i "$archive" >/dev/null
image="$("${pm[@]}" images --format '{{.Repository}}:{{.Tag}}' | head -1)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
kek="$(head -c 32 /dev/urandom | base64)"
"${pm[@]}" run --detach --name trustgate-smoke \
  --read-only --cap-drop ALL --security-opt no-new-privileges \
  --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
  --volume trustgate-smoke-data:/var/lib/trustgate \
  -p "127.0.0.1:$port:8080" \
  -e TRUSTGATE_KEK="$kek" -e TRUSTGATE_PUBLIC_URL=https://trustgate.example.com -e TRUSTGATE_LOG_FORMAT=json \
  "$image" >/dev/null

ok=""
for _ in $(seq 1 100); do # up to 10 s for the first start (migrations on an empty SQLite database)
  if curl -fsS -m 2 "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then ok=1; break; fi
  sleep 0.1
done
[[ -n "$ok" ]] || { "${pm[@]}" logs trustgate-smoke >&2 || true; fail "/readyz did not answer 200 within 10 s"; }
# Whole answers into variables, not `| grep -q` (which can end the writer early under pipefail).
health="$(curl -fsS -m 2 "http://127.0.0.1:$port/healthz")" || fail "/healthz"
[[ "$health" == *'"ok"'* ]] || fail "/healthz answered $health"
# TRUSTGATE_PUBLIC_URL from the environment is the issuer the server announces.
discovery="$(curl -fsS -m 2 "http://127.0.0.1:$port/.well-known/openid-configuration")" || fail "discovery document"
[[ "$discovery" == *'"issuer":"https://trustgate.example.com"'* ]] || fail "TRUSTGATE_PUBLIC_URL was not read from the environment: $discovery"
pid="$("${pm[@]}" inspect --format '{{.State.Pid}}' trustgate-smoke)"
uid="$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")"
[[ "$uid" != 0 ]] || fail "the server process runs as root"
if "${pm[@]}" exec trustgate-smoke /bin/sh -c true >/dev/null 2>&1; then fail "a shell ran in the container"; fi
logs="$("${pm[@]}" logs trustgate-smoke 2>&1)"
[[ "$logs" == *'"msg":"trustgate serving"'* ]] || fail "no 'trustgate serving' line in the JSON log (TRUSTGATE_LOG_FORMAT): $logs"
echo "image-check: ran $image with podman (read-only root, no capabilities): /readyz and /healthz 200, issuer from TRUSTGATE_PUBLIC_URL, process uid $uid, no shell"
