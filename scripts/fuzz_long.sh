#!/usr/bin/env bash
# fuzz_long.sh — the long fuzzing run of docs/fuzzing.md: build the four
# libFuzzer targets of tests/fuzz with meson (-Dfuzz=true: clang, libFuzzer,
# ASan, UBSan without recovery), seed each, run them one after the other
# (nice'd) for RUNS inputs each and print one Markdown table row per target.
#
#   scripts/fuzz_long.sh [TARGET...]       (default: decoder control qemu sync)
# environment:
#   RUNS        inputs per target (default 10000000)
#   MAX_TIME    instead a time limit in seconds per target (-max_total_time)
#   BUILD_FUZZ  build directory (default build-fuzz)
#   FUZZ_WORK   corpora, logs, crash artifacts (default $BUILD_FUZZ/long);
#               a corpus is kept and grows across runs
#   NICE        niceness (default 10)
#
# Exit status: 0 no crash, 1 a target crashed (its reproducer is in
# $FUZZ_WORK/TARGET/artifacts; add it to tests/fuzz/regress/TARGET/ once fixed).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-10000000}
BUILD=${BUILD_FUZZ:-build-fuzz}
WORK=${FUZZ_WORK:-$BUILD/long}
NICE=${NICE:-10}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(decoder control qemu sync)

if [ ! -f "$BUILD/build.ninja" ]; then
  CC=clang CXX=clang++ meson setup "$BUILD" -Dfuzz=true -Dbenchmarks=false \
    --buildtype=debugoptimized >/dev/null || exit 1
fi
bins=()
for t in "${targets[@]}"; do bins+=("tests/fuzz/fuzz_$t"); done
nice -n "$NICE" ninja -C "$BUILD" "${bins[@]}" tests/fuzz/make_seeds tests/fuzz/make_sync_seeds >/dev/null || exit 1

# The same sanitizer options as the suite's short runs.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Per-target libFuzzer options, as tests/fuzz/run_fuzz*.sh have them.
declare -A opts=(
  [decoder]="-max_len=70000 -timeout=20 -rss_limit_mb=2560"
  [control]="-max_len=4096"
  [qemu]="-max_len=65536"
  [sync]="-max_len=1500"
)

seed() {  # seed TARGET DIR
  case $1 in
  decoder) "$BUILD/tests/fuzz/make_seeds" "$2" >/dev/null ;;
  control) cp tests/fuzz/control_seeds/* "$2/" ;;
  qemu) python3 tests/fuzz/make_qemu_seeds.py "$2" ;;
  sync) "$BUILD/tests/fuzz/make_sync_seeds" "$2" >/dev/null ;;
  esac
}

if [ -n "${MAX_TIME:-}" ]; then limit="-max_total_time=$MAX_TIME"; else limit="-runs=$RUNS"; fi
echo "| target | executions | time (s) | exec/s | cov | ft | corpus (files / bytes) | new units | peak RSS (MB) | crashes |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
status=0
for t in "${targets[@]}"; do
  w=$WORK/$t
  mkdir -p "$w/corpus" "$w/seeds" "$w/artifacts"
  rm -f "$w"/seeds/*
  seed "$t" "$w/seeds" || { echo "fuzz_long: $t: no seeds" >&2; exit 1; }
  dirs=("$w/corpus" "$w/seeds")
  [ -d "tests/fuzz/regress/$t" ] && dirs+=("$ROOT/tests/fuzz/regress/$t")
  start=$(date +%s)
  rc=0
  # shellcheck disable=SC2086
  nice -n "$NICE" "$BUILD/tests/fuzz/fuzz_$t" $limit ${opts[$t]} -print_final_stats=1 \
    -artifact_prefix="$w/artifacts/" "${dirs[@]}" >"$w/log" 2>&1 || rc=$?
  secs=$(( $(date +%s) - start ))
  stat() { sed -n "s/^stat::$1: *\([0-9]*\).*/\1/p" "$w/log" | tail -1; }
  last=$(grep -E '^#[0-9]+' "$w/log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  files=$(find "$w/corpus" -type f | wc -l)
  bytes=$(find "$w/corpus" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
  crashes=$(find "$w/artifacts" -type f | wc -l)
  echo "| fuzz_$t | $(stat number_of_executed_units) | $secs | $(stat average_exec_per_sec) | ${cov:-?} | ${ft:-?} | $files / $bytes | $(stat new_units_added) | $(stat peak_rss_mb) | $crashes |"
  if [ "$rc" -ne 0 ]; then
    echo "fuzz_long: fuzz_$t exited with status $rc; log $w/log, reproducer(s) in $w/artifacts" >&2
    status=1
  fi
done
exit "$status"
