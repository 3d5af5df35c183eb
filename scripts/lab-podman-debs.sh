#!/usr/bin/env bash
# Downloads Debian's podman and exactly the packages the OpenZFS lab's guest image lacks for it (apt resolves against
# the image's own dpkg status, read from root.img with debugfs), for tests/openzfs/container.test.ts to install in
# the controller VM, which has no network beyond the lab bridge. The image itself stays as scripts/lab-image.sh
# builds it (its cache key is that script), so adding podman does not rebuild both lab images.
#
#   bash scripts/lab-podman-debs.sh IMAGE_DIR OUT_DIR     (IMAGE_DIR: e.g. /var/cache/hozo-lab/openzfs-2.3-<hash>)
set -euo pipefail
exec </dev/null
IMAGE=${1:?usage: lab-podman-debs.sh IMAGE_DIR OUT_DIR}
OUT=${2:?usage: lab-podman-debs.sh IMAGE_DIR OUT_DIR}
[ -f "$IMAGE/root.img" ] || { echo "lab-podman-debs: no root.img in $IMAGE" >&2; exit 1; }
command -v debugfs >/dev/null || { echo "lab-podman-debs: debugfs (e2fsprogs) missing" >&2; exit 1; }
mkdir -p "$OUT/partial"
OUT=$(cd "$OUT" && pwd)   # apt takes a relative Dir::Cache::archives as under /var/cache/apt
status=$(mktemp)
trap 'rm -f "$status"' EXIT
debugfs -R 'cat /var/lib/dpkg/status' "$IMAGE/root.img" 2>/dev/null >"$status"
grep -q '^Package: zfsutils-linux$' "$status" || { echo "lab-podman-debs: could not read the image's dpkg status" >&2; exit 1; }
# The host's package lists are Debian 12's (the image's suite); refresh them only when podman is not known yet.
apt-cache show podman >/dev/null 2>&1 || apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --download-only --no-install-recommends \
  -o Dir::State::status="$status" -o Dir::Cache::archives="$OUT" podman >"$OUT/download.log" 2>&1 \
  || { tail -20 "$OUT/download.log" >&2; exit 1; }
ls "$OUT"/podman_*.deb >/dev/null
echo "$OUT"
