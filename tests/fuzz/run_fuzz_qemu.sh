#!/bin/sh
# run_fuzz_qemu.sh — build the QEMU migration-stream fuzzer with clang
# (libFuzzer, ASan, UBSan), seed it with synthetic streams (make_qemu_seeds.py:
# the unit test's shapes, a main channel and a multifd channel) and run it for
# FUZZ_SECONDS_QEMU (default 10). Exit 77 (skip) without clang++; 1 on a
# crash, with the reproducer kept.
#   run_fuzz_qemu.sh [SRC_ROOT]
set -eu
src=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
secs=${FUZZ_SECONDS_QEMU:-10}
cxx=${FUZZ_CXX:-clang++}
command -v "$cxx" >/dev/null 2>&1 || { echo "skipped: clang++ not installed"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/hde-fuzz-qemu.XXXXXX")
mkdir -p "$work/corpus" "$work/seeds" "$work/artifacts"
python3 "$src/tests/fuzz/make_qemu_seeds.py" "$work/seeds"
if ! "$cxx" -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -I"$src/lib" "$src/tests/fuzz/fuzz_qemu.cpp" "$src/lib/qemu/migration_stream.cpp" -o "$work/fuzz_qemu"; then
  echo "run_fuzz_qemu: FAILED to build"
  exit 1
fi
# Regression inputs (past crashes, fixed) replay first, as seeds.
regress=$src/tests/fuzz/regress/qemu
[ -d "$regress" ] || regress=
status=0
"$work/fuzz_qemu" -max_total_time="$secs" -max_len=65536 -artifact_prefix="$work/artifacts/" \
  "$work/corpus" "$work/seeds" ${regress:+"$regress"} >"$work/log" 2>&1 || status=$?
tail -3 "$work/log"
if [ "$status" -ne 0 ]; then
  echo "run_fuzz_qemu: FAILED (status $status); reproducer in $work/artifacts"
  exit 1
fi
echo "run_fuzz_qemu: no crash in ${secs}s"
rm -rf "$work"
