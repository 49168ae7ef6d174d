#!/usr/bin/env bash
# test.sh — set up when needed, then run the whole test suite. Exits non-zero
# on any failure and ends with a plain "N passed, N failed, N skipped" line.
# Extra arguments go to `meson test` (e.g. --suite unit).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
scripts/setup.sh "$BUILD" || exit 1
log=$(mktemp)
meson test -C "$BUILD" --print-errorlogs --num-processes 2 "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
count() { sed -n "s/^$1: *\([0-9]*\).*/\1/p" "$log" | tail -1; }
ok=$(count Ok) fail=$(count Fail) skip=$(count Skipped) timeout=$(count Timeout)
echo
echo "${ok:-0} passed, $(( ${fail:-0} + ${timeout:-0} )) failed, ${skip:-0} skipped"
rm -f "$log"
exit "$rc"
