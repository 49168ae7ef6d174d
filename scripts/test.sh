#!/usr/bin/env bash
# test.sh — set up when needed, then run the whole test suite. Exits non-zero
# on any failure. Extra arguments go to `meson test` (e.g. --suite unit).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
scripts/setup.sh "$BUILD"
meson test -C "$BUILD" --print-errorlogs --num-processes 2 "$@"
