#!/usr/bin/env bash
# `npm test`: build, then the unit + zfs-fuse integration/e2e projects, then the openzfs project (real OpenZFS 2.3 in
# the VM labs, two lanes by default — tests/openzfs/lanes.ts; skipped loudly without its image, off with
# HOZO_OPENZFS=0), then a 2.1 pass of part of it. The VM suite runs on its own so its emulated
# CPUs do not compete with the zfs-fuse suites for this machine's cores. Extra arguments go to both vitest runs.
set -uo pipefail
cd "$(dirname "$0")/.."
npm run build || exit 1
npx vitest run --project unit --project integration "$@"
a=$?
b=0
c=0
if [ "${HOZO_OPENZFS:-}" != 0 ]; then
  # Two lanes by default: two labs, two files at once (tests/openzfs/lanes.ts).
  npx vitest run --project openzfs --maxWorkers="${HOZO_OPENZFS_LANES:-2}" "$@"
  b=$?
  # OpenZFS 2.1 (Debian 12's own): the files whose ZFS behaviour differs most between releases — raw encrypted
  # sends and the receive's -o/-x protections — in one 2.1 lab (568 s with its boot on this 2-core machine on
  # 2026-12-07; 900 s allowed below). Skipped loudly without its image (bash scripts/lab-image.sh 2.1); HOZO_OPENZFS_21=0 leaves it out.
  # Under .ci/run (HOZO_CI_DEADLINE, epoch seconds) it runs only if it can end before that deadline — building the
  # image first (HOZO_CI_BUILD_21=1, ~11 min) when it is not cached and there is time for both — so a slow machine or
  # a first image build cannot push CI past its limit; the skip says so.
  PASS21_SECONDS=900
  IMAGE21_SECONDS=720
  left() { echo $(( HOZO_CI_DEADLINE - $(date +%s) )); }
  # Whether CI must build the 2.1 image first (checked once, for both decisions below).
  build21=0
  if [ "${HOZO_OPENZFS_21:-}" != 0 ] && [ -n "${HOZO_CI_DEADLINE:-}" ] && [ "${HOZO_CI_BUILD_21:-}" = 1 ] && ! bash scripts/lab-image.sh --check 2.1; then
    build21=1
  fi
  if [ "${HOZO_OPENZFS_21:-}" = 0 ]; then
    echo "SKIP: the OpenZFS 2.1 pass (HOZO_OPENZFS_21=0)"
  elif [ -n "${HOZO_CI_DEADLINE:-}" ] && [ "$(left)" -lt "$PASS21_SECONDS" ]; then
    echo "SKIP: the OpenZFS 2.1 pass: it takes ~${PASS21_SECONDS} s and CI's deadline is $(left) s away (HOZO_CI_DEADLINE)"
  elif [ "$build21" = 1 ] && [ "$(left)" -lt $(( PASS21_SECONDS + IMAGE21_SECONDS )) ]; then
    echo "SKIP: the OpenZFS 2.1 pass: its image is not cached, building it (~${IMAGE21_SECONDS} s) and the pass (~${PASS21_SECONDS} s) would not end before CI's deadline, $(left) s away (HOZO_CI_DEADLINE)"
  else
    if [ "$build21" = 1 ]; then
      bash scripts/lab-image.sh 2.1 >/dev/null || { echo "the OpenZFS 2.1 lab image could not be built"; c=1; }
    fi
    if [ "$c" = 0 ]; then
      HOZO_OPENZFS_LANES=1 HOZO_OPENZFS_SERIES=2.1 npx vitest run --project openzfs --maxWorkers=1 tests/openzfs/received-props.test.ts tests/openzfs/encryption.test.ts "$@"
      c=$?
    fi
  fi
else
  echo "SKIP: the openzfs project (HOZO_OPENZFS=0)"
fi
echo "zfs-fuse suites exited ${a}, openzfs 2.3 suite exited ${b}, openzfs 2.1 pass exited ${c}"
[ "$a" = 0 ] && [ "$b" = 0 ] && [ "$c" = 0 ]
