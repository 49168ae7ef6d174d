#!/usr/bin/env bash
# test.sh — set up when needed, then run the whole test suite. Exits non-zero
# on any failure and ends with a plain "N passed, N failed, N skipped" line.
# Extra arguments go to `meson test` (e.g. --suite unit).
#
#   scripts/test.sh [--sanitize] [MESON_TEST_ARG...]
#
# --sanitize: build a second tree (build-asan, or $BUILD_ASAN) with
# AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer (no
# recovery: the first report fails the test) and run in it the unit tests,
# the C ABI tests and the hde-gateway end-to-end test (tests/gateway). Leak
# suppressions: tests/sanitize/lsan.supp. What it covers: docs/sanitizers.md.
set -uo pipefail
cd "$(dirname "$0")/.."
sanitize=0
if [ "${1:-}" = --sanitize ]; then
  sanitize=1
  shift
fi

if [ "$sanitize" -eq 0 ]; then
  BUILD=${BUILD:-build}
  scripts/setup.sh "$BUILD" || exit 1
else
  BUILD=${BUILD_ASAN:-build-asan}
  # -O1 keeps the build and the runs quick; line tables (-g1) and frame
  # pointers for the reports' stacks; asserts on (buildtype plain leaves
  # NDEBUG unset). -fno-sanitize=vptr: lib/ is built without RTTI, which
  # UBSan's vptr check needs. -Db_lundef=false: a sanitized shared library
  # (libhde_capi) leaves the runtime's symbols to the executable.
  flags="-O1 -g1 -fno-omit-frame-pointer -fno-sanitize-recover=all -fno-sanitize=vptr"
  san_args=(-Db_sanitize=address,undefined -Db_lundef=false -Dbenchmarks=false
    --buildtype=plain -Dc_args="$flags" -Dcpp_args="$flags")
  SETUP_CONFIGURE_ONLY=1 scripts/setup.sh "$BUILD" "${san_args[@]}" || exit 1
  # Build only what the sanitized tests run (suites unit, capi and sanitize:
  # the test programs and hde-gateway), not the tools, benchmarks or hde-wanem.
  suites=(--suite unit --suite capi --suite sanitize)
  targets=$(meson introspect "$BUILD" --tests | python3 -c '
import json, os, sys
build, want = os.path.realpath(sys.argv[1]) + "/", set(sys.argv[2:])
print(" ".join(sorted({os.path.relpath(c, build) for t in json.load(sys.stdin)
                       if want & set(t["suite"]) for c in t["cmd"] if c.startswith(build)})))
' "$BUILD" hde:unit hde:capi hde:sanitize) || exit 1
  echo "sanitize: building $(wc -w <<<"$targets") programs in $BUILD"
  ninja -C "$BUILD" $targets || exit 1
  supp=$PWD/tests/sanitize/lsan.supp
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=0:strict_string_checks=1:check_initialization_order=1:print_summary=1"
  export LSAN_OPTIONS="suppressions=$supp:print_suppressions=0"
  export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:print_summary=1"
  set -- --no-rebuild --timeout-multiplier 2 "${suites[@]}" "$@"
fi

log=$(mktemp)
meson test -C "$BUILD" --print-errorlogs --num-processes 2 "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
count() { sed -n "s/^$1: *\([0-9]*\).*/\1/p" "$log" | tail -1; }
ok=$(count Ok) fail=$(count Fail) skip=$(count Skipped) timeout=$(count Timeout)
echo
[ "$sanitize" -eq 0 ] || printf 'sanitize: '
echo "${ok:-0} passed, $(( ${fail:-0} + ${timeout:-0} )) failed, ${skip:-0} skipped"
rm -f "$log"
exit "$rc"
