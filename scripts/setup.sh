#!/usr/bin/env bash
# Set-up for a fresh Debian 12 machine, as root: installs what hozo, its lab and its tests need (apt packages, npm
# packages), starts the host's zfs-fuse, and removes labs an aborted run left behind. Idempotent.
# Used by .ci/run and scripts/demo.sh.
set -euo pipefail
exec </dev/null
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
T0=$SECONDS
SECTION_START=$SECONDS
section() {
  if [ "${SECTION_NAME:-}" != "" ]; then
    echo "--- ${SECTION_NAME}: $((SECONDS - SECTION_START)) s"
  fi
  SECTION_NAME="$1"
  SECTION_START=$SECONDS
  echo
  echo "=== $1 (at +$((SECONDS - T0)) s)"
}

if [ "$(id -u)" != 0 ]; then
  echo "warning: not root; zfs-fuse, network namespaces and sshd need root (integration tests will skip)" >&2
  SUDO=sudo
else
  SUDO=
fi

section "apt packages"
# Keep apt from starting services (above all the system sshd) while installing; undone on exit.
POLICY=/usr/sbin/policy-rc.d
if [ -z "$SUDO" ] && [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$POLICY"
  chmod 755 "$POLICY"
  trap 'rm -f "$POLICY"' EXIT
fi
# postgresql-15: the consistency-hook test runs a real server on a lab dataset (tests/integration/own-snapshots.test.ts).
PACKAGES=(zfs-fuse openssh-server openssh-client iproute2 sanoid mbuffer pv zstd nix-bin prometheus groff-base postgresql-15 debootstrap umoci chromium)
for attempt in 1 2 3; do
  if $SUDO apt-get update -qq; then break; fi
  [ "$attempt" = 3 ] && { echo "apt-get update failed 3 times" >&2; exit 1; }
  sleep $((attempt * 5))
done
for attempt in 1 2 3; do
  if $SUDO apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends "${PACKAGES[@]}" >/tmp/hozo-ci-apt.log 2>&1; then break; fi
  tail -30 /tmp/hozo-ci-apt.log >&2
  [ "$attempt" = 3 ] && { echo "apt-get install failed 3 times" >&2; exit 1; }
  sleep $((attempt * 5))
done
echo "installed: ${PACKAGES[*]}"
$SUDO mkdir -p /run/sshd

# Debian's node-exporter for the OpenZFS lab's VMs (tests/openzfs/systemd-units.test.ts installs it in the controller VM,
# which has no network beyond the lab's bridge). Downloaded once, next to the lab's other .debs.
EXTRA_DEBS=${HOZO_LAB_CACHE:-/var/cache/hozo-lab}/debs/extra
if ! ls "$EXTRA_DEBS"/prometheus-node-exporter_*.deb >/dev/null 2>&1; then
  $SUDO mkdir -p "$EXTRA_DEBS"
  if (cd "$EXTRA_DEBS" && $SUDO apt-get download -qq prometheus-node-exporter 2>/tmp/hozo-ci-apt-download.log); then
    echo "downloaded: $(cd "$EXTRA_DEBS" && ls prometheus-node-exporter_*.deb)"
  else
    echo "warning: apt-get download prometheus-node-exporter failed; the lab's node-exporter test will skip" >&2
  fi
fi

section "npm ci"
node --version
npm --version
# The lock file lists every platform's optional builds (rollup's), so `npm ci` accepts it. Should a registry serve
# only this platform's builds and npm call the lock out of sync, `npm install` installs the same locked versions.
if ! npm ci --no-audit --no-fund 2>/tmp/hozo-ci-npm.log; then
  echo "npm ci refused the lock file (platform-only optional packages); installing the locked versions with npm install"
  npm install --no-audit --no-fund
fi

section "zfs-fuse"
# A daemon in our own mount namespace (box daemons of a lab live in private ones and do not count).
host_zfs_fuse() {
  local self p
  self=$(readlink /proc/self/ns/mnt)
  for p in $(pgrep -x zfs-fuse || true); do
    [ "$(readlink "/proc/$p/ns/mnt" 2>/dev/null)" = "$self" ] && { echo "$p"; return 0; }
  done
  return 1
}
if pid=$(host_zfs_fuse); then
  echo "zfs-fuse already running (pid $pid)"
else
  mkdir -p /tmp/hozo-lab
  $SUDO setsid zfs-fuse --no-daemon >>/tmp/hozo-lab/zfs-fuse.log 2>&1 </dev/null &
  echo "started zfs-fuse (pid $!)"
fi
ok=
for _ in $(seq 1 100); do
  if [ -S /var/run/zfs/zfs_socket ] && $SUDO zpool list >/dev/null 2>&1; then ok=1; break; fi
  sleep 0.1
done
if [ -z "$ok" ]; then
  echo "zfs-fuse did not answer within 10 s" >&2
  tail -20 /tmp/hozo-lab/zfs-fuse.log >&2 || true
  exit 1
fi
$SUDO zpool list

section "stale lab cleanup"
# Compile only the lab's CLI (independent of the rest of the tree) and remove every leftover lab on this machine.
LAB_BUILD=.lab/ci-build
rm -rf "$LAB_BUILD"
npx tsc --outDir "$LAB_BUILD" --rootDir . --module nodenext --moduleResolution nodenext --target es2022 \
  --strict --skipLibCheck --types node --sourceMap false src/lab/cli.ts src/lab/vm/cli.ts >/tmp/hozo-ci-labbuild.log 2>&1 || true
if [ -f "$LAB_BUILD/src/lab/cli.js" ]; then
  $SUDO node "$LAB_BUILD/src/lab/cli.js" cleanup || echo "warning: lab cleanup reported problems (continuing)" >&2
  # VM labs (OpenZFS): qemu processes, the lab namespace and its files.
  if [ -f "$LAB_BUILD/src/lab/vm/cli.js" ]; then
    $SUDO node "$LAB_BUILD/src/lab/vm/cli.js" cleanup || echo "warning: VM lab cleanup reported problems (continuing)" >&2
  fi
else
  echo "warning: could not build the lab CLI; skipping stale-lab cleanup" >&2
  cat /tmp/hozo-ci-labbuild.log >&2 || true
fi
rm -rf "$LAB_BUILD"

section "done"
echo "set-up finished in $((SECONDS - T0)) s"
