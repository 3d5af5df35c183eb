#!/usr/bin/env bash
# `npm test`: build, then the unit + zfs-fuse integration/e2e projects, then the openzfs project (real OpenZFS 2.3 in
# the VM lab; skipped loudly without its image, off with HOZO_OPENZFS=0), then a 2.1 pass of part of it. The VM suite runs on its own so its emulated
# CPUs do not compete with the zfs-fuse suites for this machine's cores. Extra arguments go to both vitest runs.
set -uo pipefail
cd "$(dirname "$0")/.."
npm run build || exit 1
npx vitest run --project unit --project integration "$@"
a=$?
b=0
c=0
if [ "${HOZO_OPENZFS:-}" != 0 ]; then
  npx vitest run --project openzfs "$@"
  b=$?
  # OpenZFS 2.1 (Debian 12's own): the files whose ZFS behaviour differs most between releases — raw encrypted
  # sends and the receive's -o/-x protections — in a 2.1 lab (~10 min with its boot; 720 s allowed below). Skipped loudly without its
  # image (bash scripts/lab-image.sh 2.1); HOZO_OPENZFS_21=0 leaves it out. Under .ci/run (HOZO_CI_DEADLINE, epoch
  # seconds) it runs only if it can end before that deadline, so a slow machine or a first image build cannot push
  # CI past its limit; the skip says so.
  PASS21_SECONDS=720
  if [ "${HOZO_OPENZFS_21:-}" = 0 ]; then
    echo "SKIP: the OpenZFS 2.1 pass (HOZO_OPENZFS_21=0)"
  elif [ -n "${HOZO_CI_DEADLINE:-}" ] && [ $(( $(date +%s) + PASS21_SECONDS )) -gt "${HOZO_CI_DEADLINE}" ]; then
    echo "SKIP: the OpenZFS 2.1 pass: it takes ~${PASS21_SECONDS} s and CI's deadline is $(( HOZO_CI_DEADLINE - $(date +%s) )) s away (HOZO_CI_DEADLINE)"
  else
    HOZO_OPENZFS_SERIES=2.1 npx vitest run --project openzfs tests/openzfs/received-props.test.ts tests/openzfs/encryption.test.ts "$@"
    c=$?
  fi
else
  echo "SKIP: the openzfs project (HOZO_OPENZFS=0)"
fi
echo "zfs-fuse suites exited ${a}, openzfs 2.3 suite exited ${b}, openzfs 2.1 pass exited ${c}"
[ "$a" = 0 ] && [ "$b" = 0 ] && [ "$c" = 0 ]
