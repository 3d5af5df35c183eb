#!/usr/bin/env bash
# The README's first command: set up this machine (scripts/setup.sh), build, and run `hozo demo` — a whole
# wake → replicate → verify → shutdown cycle in a self-contained lab (file-backed pools, a sleeping box in a
# network namespace). Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo
echo "=== build"
npm run build
echo
echo "=== hozo demo"
exec node dist/bin/hozo/hozo.js demo "$@"
