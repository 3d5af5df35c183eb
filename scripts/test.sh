#!/usr/bin/env bash
# `npm test`: build, then the unit + zfs-fuse integration/e2e projects, then the openzfs project (real OpenZFS in the
# VM lab; skipped loudly without its image, off with HOZO_OPENZFS=0). The VM suite runs on its own so its emulated
# CPUs do not compete with the zfs-fuse suites for this machine's cores. Extra arguments go to both vitest runs.
set -uo pipefail
cd "$(dirname "$0")/.."
npm run build || exit 1
npx vitest run --project unit --project integration "$@"
a=$?
b=0
if [ "${HOZO_OPENZFS:-}" != 0 ]; then
  npx vitest run --project openzfs "$@"
  b=$?
else
  echo "SKIP: the openzfs project (HOZO_OPENZFS=0)"
fi
echo "zfs-fuse suites exited ${a}, openzfs suite exited ${b}"
[ "$a" = 0 ] && [ "$b" = 0 ]
