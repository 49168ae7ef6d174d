#!/bin/sh
# run_fuzz_control.sh — build the control-request fuzzer with clang
# (libFuzzer, ASan, UBSan) and run it for FUZZ_SECONDS (default 10).
# Exit 77 (skip) without clang++; 1 on a crash, with the reproducer kept.
#   run_fuzz_control.sh [SRC_ROOT]
set -eu
src=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
secs=${FUZZ_SECONDS_CONTROL:-10}
cxx=${FUZZ_CXX:-clang++}
command -v "$cxx" >/dev/null 2>&1 || { echo "skipped: clang++ not installed"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/hde-fuzz-ctl.XXXXXX")
mkdir -p "$work/corpus" "$work/seeds" "$work/artifacts"
cp "$src"/tests/fuzz/control_seeds/* "$work/seeds/"
if ! "$cxx" -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -I"$src/control" "$src/tests/fuzz/fuzz_control.cpp" "$src/control/registry.cpp" -o "$work/fuzz_control"; then
  echo "run_fuzz_control: FAILED to build"
  exit 1
fi
# Regression inputs (past crashes, fixed) replay first, as seeds.
regress=$src/tests/fuzz/regress/control
[ -d "$regress" ] || regress=
status=0
"$work/fuzz_control" -max_total_time="$secs" -max_len=4096 -artifact_prefix="$work/artifacts/" \
  "$work/corpus" "$work/seeds" ${regress:+"$regress"} >"$work/log" 2>&1 || status=$?
tail -3 "$work/log"
if [ "$status" -ne 0 ]; then
  echo "run_fuzz_control: FAILED (status $status); reproducer in $work/artifacts"
  exit 1
fi
echo "run_fuzz_control: no crash in ${secs}s"
rm -rf "$work"
