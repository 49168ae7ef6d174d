#!/bin/sh
# run_fuzz.sh — builds the decoder fuzzer (tests/fuzz/fuzz_decoder.cpp) with
# clang++ and libFuzzer + ASan + UBSan, seeds a corpus with real frames from
# tests/fuzz/make_seeds.cpp, and fuzzes for a bounded time.
#
# usage: run_fuzz.sh [SRC_ROOT [WORK_DIR]]
#   SRC_ROOT      the HDE source tree (default: two levels above this script)
#   WORK_DIR      binaries, corpus and crash artifacts (default: a temp dir);
#                 the build is reused while no source under lib/ or
#                 tests/fuzz/ is newer than the fuzzer binary
# environment:
#   FUZZ_SECONDS  fuzzing time in seconds (default 30)
#   FUZZ_CXX      compiler (default clang++)
#   FUZZ_JOBS     parallel compile jobs (default: nproc)
#
# Exit status: 0 no crash, 1 crash or build failure (the reproducer is left
# in WORK_DIR/artifacts/), 77 skipped (no clang++ or no libFuzzer runtime).
set -eu

src=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
work=${2:-}
secs=${FUZZ_SECONDS:-30}
cxx=${FUZZ_CXX:-clang++}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}

if ! command -v "$cxx" >/dev/null 2>&1; then
  echo "skipped: clang++ not installed"
  exit 77
fi
tmp_work=0
if [ -z "$work" ]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/hde-fuzz.XXXXXX")
  tmp_work=1  # removed again unless something failed
fi
src=$(cd "$src" && pwd)
mkdir -p "$work/obj" "$work/corpus" "$work/seeds" "$work/artifacts"
work=$(cd "$work" && pwd)

san="-fsanitize=address,undefined -fno-sanitize-recover=all"
cxxflags="-std=c++20 -O1 -g -fno-omit-frame-pointer -I$src/lib"
# liblz4 statically, as meson.build has it: codec.cpp uses the _fastReset
# entry points, which the shared library does not export.
lz4a=$("$cxx" -print-file-name=liblz4.a)
if [ -f "$lz4a" ]; then lz4=$lz4a; else lz4=-llz4; fi
libs="-lzstd $lz4 -lisal -lxxhash -lurcu-memb -lurcu-common -lpthread"
fuzzer=$work/fuzz_decoder
seeder=$work/make_seeds

stale() {
  [ ! -x "$fuzzer" ] || [ ! -x "$seeder" ] ||
    [ -n "$(find "$src/lib" "$src/tests/fuzz" -newer "$fuzzer" -type f | head -n 1)" ]
}

if stale; then
  # libFuzzer runtime present? (clang without compiler-rt cannot link fuzzers)
  probe=$work/obj/probe.cpp
  printf '%s\n' '#include <cstdint>' '#include <cstddef>' \
    'extern "C" int LLVMFuzzerTestOneInput(const uint8_t *, size_t) { return 0; }' >"$probe"
  if ! "$cxx" -fsanitize=fuzzer,address "$probe" -o "$work/obj/probe" >/dev/null 2>&1; then
    echo "skipped: $cxx cannot link libFuzzer targets (compiler-rt missing)"
    [ "$tmp_work" -eq 0 ] || rm -rf "$work"
    exit 77
  fi
  echo "run_fuzz: building with $cxx ($jobs jobs) in $work"
  rm -f "$fuzzer" "$seeder" "$work"/obj/*.o
  # Engine sources (no C ABI, no trace reader), instrumented for coverage,
  # one object each, compiled $jobs at a time. A *_simd.cpp file is built
  # once per vector ISA, as lib/meson.build does (HDE_HASH_ISA=avx2|avx512).
  pids=""
  failed=0
  compile() {  # compile SRC OBJ [FLAGS...]
    s=$1 o=$2
    shift 2
    # shellcheck disable=SC2086
    "$cxx" $cxxflags $san -fsanitize=fuzzer-no-link "$@" -c "$s" -o "$o" &
    pids="$pids $!"
    # shellcheck disable=SC2086  # split the pid list to count it
    set -- $pids
    if [ $# -ge "$jobs" ]; then
      for p in $pids; do wait "$p" || failed=1; done
      pids=""
    fi
  }
  for f in "$src"/lib/page/*.cpp "$src"/lib/delta/*.cpp "$src"/lib/codec/*.cpp \
      "$src"/lib/wire/*.cpp "$src"/lib/baseline/*.cpp "$src"/lib/engine/*.cpp; do
    [ -f "$f" ] || continue
    obj=$work/obj/$(echo "${f#"$src"/lib/}" | tr / _)
    case $f in
    *_simd.cpp)
      compile "$f" "${obj%.cpp}_avx2.o" -mavx2 -DHDE_HASH_ISA=avx2
      compile "$f" "${obj%.cpp}_avx512.o" -mavx512f -mavx512bw -DHDE_HASH_ISA=avx512
      ;;
    *) compile "$f" "${obj%.cpp}.o" ;;
    esac
  done
  for p in $pids; do wait "$p" || failed=1; done
  if [ "$failed" -ne 0 ]; then
    echo "run_fuzz: FAILED to build the engine sources"
    exit 1
  fi
  # shellcheck disable=SC2086
  if ! "$cxx" $cxxflags $san -fsanitize=fuzzer "$src/tests/fuzz/fuzz_decoder.cpp" \
      "$work"/obj/*.o $libs -o "$fuzzer.tmp"; then
    echo "run_fuzz: FAILED to build fuzz_decoder"
    exit 1
  fi
  # shellcheck disable=SC2086
  if ! "$cxx" $cxxflags $san -fsanitize=fuzzer-no-link "$src/tests/fuzz/make_seeds.cpp" \
      "$work"/obj/*.o $libs -o "$seeder.tmp"; then
    echo "run_fuzz: FAILED to build make_seeds"
    exit 1
  fi
  mv "$seeder.tmp" "$seeder"
  mv "$fuzzer.tmp" "$fuzzer"  # last: its time stamp marks the build
fi

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

rm -f "$work"/seeds/*
if ! "$seeder" "$work/seeds"; then
  echo "run_fuzz: FAILED: make_seeds could not write a valid corpus"
  exit 1
fi

# New inputs go to corpus/ (kept across runs in WORK_DIR); seeds/ is read only.
echo "run_fuzz: fuzzing for ${secs}s"
# Regression inputs (past crashes, fixed) replay first, as seeds.
regress=$src/tests/fuzz/regress/decoder
[ -d "$regress" ] || regress=
status=0
"$fuzzer" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2560 -max_len=70000 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
  "$work/corpus" "$work/seeds" ${regress:+"$regress"} || status=$?

if [ "$status" -ne 0 ]; then
  echo "run_fuzz: FAILED: fuzz_decoder exited with status $status"
  ls -l "$work/artifacts/" 2>/dev/null || true
  echo "run_fuzz: reproduce with: $fuzzer $work/artifacts/<file>"
  exit 1
fi
echo "run_fuzz: no crash in ${secs}s"
[ "$tmp_work" -eq 0 ] || rm -rf "$work"
