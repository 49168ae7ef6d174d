#!/bin/sh
# run_fuzz_sync.sh — build the sync datagram fuzzer (fuzz_sync.cpp) with
# clang (libFuzzer, ASan, UBSan), seed it with the payloads of a simulated
# pair of nodes and run it for FUZZ_SECONDS_SYNC (default 10). Exit 77
# (skip) without clang++ or the OpenSSL headers; 1 on a crash, with the
# reproducer kept.
#   run_fuzz_sync.sh [SRC_ROOT]
set -eu
src=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
secs=${FUZZ_SECONDS_SYNC:-10}
cxx=${FUZZ_CXX:-clang++}
command -v "$cxx" >/dev/null 2>&1 || { echo "skipped: clang++ not installed"; exit 77; }
[ -f /usr/include/openssl/hmac.h ] || { echo "skipped: OpenSSL headers (libssl-dev) not installed"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/hde-fuzz-sync.XXXXXX")
mkdir -p "$work/corpus" "$work/seeds" "$work/artifacts"
srcs="$src/control/sync.cpp $src/lib/sync/fleet.cpp"
flags="-std=c++20 -O1 -g -I$src/control -I$src/lib"
# The seeder and the fuzzer build side by side (each is one long compile).
"$cxx" $flags -DHDE_SYNC_SEEDS "$src/tests/fuzz/fuzz_sync.cpp" $srcs -lcrypto -o "$work/make_seeds" &
seeder_pid=$!
fuzzer_ok=0
"$cxx" $flags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  "$src/tests/fuzz/fuzz_sync.cpp" $srcs -lcrypto -o "$work/fuzz_sync" || fuzzer_ok=1
seeder_ok=0
wait "$seeder_pid" || seeder_ok=1
if [ "$fuzzer_ok" -ne 0 ] || [ "$seeder_ok" -ne 0 ]; then
  echo "run_fuzz_sync: FAILED to build"
  exit 1
fi
"$work/make_seeds" "$work/seeds"
# Regression inputs (past crashes, fixed) replay first, as seeds.
regress=$src/tests/fuzz/regress/sync
[ -d "$regress" ] || regress=
status=0
"$work/fuzz_sync" -max_total_time="$secs" -max_len=1500 -artifact_prefix="$work/artifacts/" \
  "$work/corpus" "$work/seeds" ${regress:+"$regress"} >"$work/log" 2>&1 || status=$?
tail -3 "$work/log"
if [ "$status" -ne 0 ]; then
  echo "run_fuzz_sync: FAILED (status $status); reproducer in $work/artifacts"
  exit 1
fi
echo "run_fuzz_sync: no crash in ${secs}s"
rm -rf "$work"
