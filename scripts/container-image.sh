#!/usr/bin/env bash
# Builds hozo's controller as an OCI container image, for hosts that run containers rather than packages
# (Proxmox, Unraid, TrueNAS SCALE): a Debian 12 root made by debootstrap (no base image pulled from a registry) with
# Debian's zfsutils-linux, OpenSSH's client, mbuffer and zstd, plus node and the built project under /opt/hozo.
# umoci (Debian's) writes the image; podman, docker or skopeo load it. See docs/container.md.
#
#   bash scripts/container-image.sh [--zfs 2.3|2.1] [--out FILE]
#
#   --zfs   the OpenZFS userland series, which must match the host's kernel module (`cat /sys/module/zfs/version`):
#           2.3 from bookworm-backports (the default), 2.1 from bookworm.
#   --out   the image as an OCI archive (default: .lab/container/hozo-oci.tar); load it with
#           `podman load -i FILE` (as localhost/hozo:<version>).
#
# node: Debian 12's nodejs is 18, older than hozo needs (>= 20.5), so the image takes this machine's node binary
# (NODE=/path/to/node to choose another; it must be built for glibc <= Debian 12's 2.36). The project must be built
# (`npm run build`); its production dependencies come from node_modules as `npm ls --omit=dev` lists them.
#
# Two layers: the Debian root (cached in /var/cache/hozo-lab/container/, keyed by this script and the series) and
# /opt/hozo (node, dist, production node_modules), so a rebuild after a code change only packs the second.
set -euo pipefail
exec </dev/null

SERIES=2.3
cd "$(dirname "$0")/.."
PROJECT=$(pwd)
OUTFILE=$PROJECT/.lab/container/hozo-oci.tar
while [ $# -gt 0 ]; do
  case $1 in
    --zfs) SERIES=${2:?--zfs needs 2.3 or 2.1}; shift 2 ;;
    --out) OUTFILE=${2:?--out needs a file}; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "container-image: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case $SERIES in
  2.3) ZFS_SUITE=bookworm-backports ;;
  2.1) ZFS_SUITE=bookworm ;;
  *) echo "container-image: unknown OpenZFS series '$SERIES' (expected 2.3 or 2.1)" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "container-image: building needs root (debootstrap, chroot)" >&2; exit 1; }
NODE=${NODE:-$(command -v node)}
[ -x "$NODE" ] || { echo "container-image: no node binary (set NODE)" >&2; exit 1; }
[ -f dist/bin/hozo/hozo.js ] || { echo "container-image: dist/bin/hozo/hozo.js missing: run npm run build first" >&2; exit 1; }
VERSION=$(node -p 'require("./package.json").version')

export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v umoci >/dev/null || need+=(umoci)
if [ ${#need[@]} -gt 0 ]; then apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; fi

CACHE=${HOZO_LAB_CACHE:-/var/cache/hozo-lab}
HASH=$(sha256sum "$0" | cut -c1-12)
BASE=$CACHE/container/base-$SERIES-$HASH.tar
T0=$SECONDS
say() { echo "[container-image $SERIES +$((SECONDS - T0))s] $*" >&2; }
mkdir -p "$CACHE/container" "$CACHE/debs/debootstrap" "$CACHE/debs/apt"
exec 9>"$CACHE/container/.build-$SERIES.lock"
flock 9

WORK=$(mktemp -d "$CACHE/container/.work-XXXXXX")
R=$WORK/root
umount_all() {
  local m
  for m in var/cache/apt/archives dev proc; do
    mountpoint -q "$R/$m" 2>/dev/null && umount -l "$R/$m"
  done
  return 0
}
cleanup() { umount_all; rm -rf "$WORK"; }
trap cleanup EXIT

if [ ! -f "$BASE" ]; then
  mirror=${HOZO_LAB_MIRROR:-$({ cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '$1 == "URIs:" {print $2}'
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '$1 == "deb" {print $2}'; } | grep -E '/debian/?$' | head -1 || true)}
  [ -n "$mirror" ] || { echo "container-image: no Debian mirror in the host's apt sources; set HOZO_LAB_MIRROR" >&2; exit 1; }
  secmirror=${HOZO_LAB_SECURITY_MIRROR:-${mirror%/debian*}/debian-security}
  say "debootstrap bookworm ($mirror)"
  debootstrap --variant=minbase --cache-dir="$CACHE/debs/debootstrap" --include=openssh-client,mbuffer,pv,zstd,ca-certificates \
    bookworm "$R" "$mirror" >"$WORK/debootstrap.log" 2>&1 || { tail -30 "$WORK/debootstrap.log" >&2; exit 1; }
  mount -t proc proc "$R/proc"
  mount --bind /dev "$R/dev"
  mount --bind "$CACHE/debs/apt" "$R/var/cache/apt/archives"
  printf 'deb %s bookworm main contrib\ndeb %s bookworm-updates main contrib\ndeb %s bookworm-security main contrib\ndeb %s bookworm-backports main contrib\n' \
    "$mirror" "$mirror" "$secmirror" "$mirror" >"$R/etc/apt/sources.list"
  printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"
  chmod +x "$R/usr/sbin/policy-rc.d"
  chroot "$R" apt-get update -qq >/dev/null
  say "zfsutils-linux from $ZFS_SUITE"
  chroot "$R" apt-get install -y -qq --no-install-recommends -t "$ZFS_SUITE" zfsutils-linux >"$WORK/apt.log" 2>&1 \
    || { tail -30 "$WORK/apt.log" >&2; exit 1; }
  zver=$(chroot "$R" dpkg-query -W -f='${Version}' zfsutils-linux)
  case $zver in "$SERIES".*) ;; *) echo "container-image: got zfsutils-linux $zver, expected $SERIES.x" >&2; exit 1 ;; esac
  umount_all
  # Nothing the image does not need: apt's lists, docs, the policy that stopped services in the chroot.
  rm -rf "$R"/var/lib/apt/lists/* "$R"/usr/share/doc/* "$R"/usr/share/man/* "$R"/usr/share/locale/* "$R/usr/sbin/policy-rc.d"
  tar -C "$R" --numeric-owner -cf "$BASE.tmp" . && mv "$BASE.tmp" "$BASE"
  rm -rf "$R"
  say "base cached: $BASE (zfsutils-linux $zver)"
fi

say "image: the base and /opt/hozo"
L=$WORK/layout
umoci init --layout "$L"
umoci new --image "$L:hozo"
umoci unpack --image "$L:hozo" "$WORK/bundle" >/dev/null
tar -C "$WORK/bundle/rootfs" --numeric-owner -xf "$BASE"
umoci repack --image "$L:hozo" "$WORK/bundle"
# The second layer: what `npm run build` made, with the production dependencies and node.
A=$WORK/bundle/rootfs/opt/hozo
mkdir -p "$A"
mapfile -t deps < <(npm ls --omit=dev --all --parseable 2>/dev/null | grep "^$PROJECT/node_modules/" | sed "s#^$PROJECT/##")
[ ${#deps[@]} -gt 0 ] || { echo "container-image: npm ls lists no production dependencies (npm ci first)" >&2; exit 1; }
tar -C "$PROJECT" -cf - package.json dist/bin dist/man "${deps[@]}" | tar -C "$A" -xf -
install -m 755 "$NODE" "$A/node"
mkdir -p "$WORK/bundle/rootfs/usr/local/bin"
printf '#!/bin/sh\nexec /opt/hozo/node /opt/hozo/dist/bin/hozo/hozo.js "$@"\n' >"$WORK/bundle/rootfs/usr/local/bin/hozo"
chmod 755 "$WORK/bundle/rootfs/usr/local/bin/hozo"
mkdir -p "$WORK/bundle/rootfs/etc/hozo" "$WORK/bundle/rootfs/var/lib/hozo"
umoci repack --image "$L:hozo" "$WORK/bundle"
umoci config --image "$L:hozo" --tag "localhost/hozo:$VERSION" \
  --config.entrypoint /usr/local/bin/hozo --config.cmd --help \
  --config.workingdir / \
  --config.volume /etc/hozo --config.volume /var/lib/hozo \
  --config.label "org.opencontainers.image.title=hozo" --config.label "org.opencontainers.image.version=$VERSION" \
  --config.label "io.hozo.zfs-series=$SERIES"
umoci rm --image "$L:hozo"
umoci gc --layout "$L"
mkdir -p "$(dirname "$OUTFILE")"
tar -C "$L" -cf "$OUTFILE.tmp" . && mv "$OUTFILE.tmp" "$OUTFILE"
say "wrote $OUTFILE ($(du -h "$OUTFILE" | cut -f1), localhost/hozo:$VERSION, zfsutils $SERIES)"
echo "$OUTFILE"
