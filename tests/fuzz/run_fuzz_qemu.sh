#!/bin/sh
# run_fuzz_qemu.sh — build the QEMU migration-stream fuzzer with clang
# (libFuzzer, ASan, UBSan), seed it with synthetic streams (the unit test's
# shapes: a main channel and a multifd channel) and run it for
# FUZZ_SECONDS_QEMU (default 20). Exit 77 (skip) without clang++; 1 on a
# crash, with the reproducer kept.
#   run_fuzz_qemu.sh [SRC_ROOT]
set -eu
src=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
secs=${FUZZ_SECONDS_QEMU:-20}
cxx=${FUZZ_CXX:-clang++}
command -v "$cxx" >/dev/null 2>&1 || { echo "skipped: clang++ not installed"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/hde-fuzz-qemu.XXXXXX")
mkdir -p "$work/corpus" "$work/seeds" "$work/artifacts"
# Seeds: byte 0 selects the parser (even: main channel, odd: multifd), byte 1
# the chunk size; then a stream.
python3 - "$work/seeds" <<'PY'
import struct, sys
d = sys.argv[1]
def s8(s): return bytes([len(s)]) + s
main = struct.pack(">II", 0x5145564D, 3)
main += b"\x07" + struct.pack(">I", 13) + b"pc-i440fx-7.2"
main += b"\x05" + s8(b"configuration/target-page-bits") + struct.pack(">II", 1, 12)
main += b"\x01" + struct.pack(">I", 2) + s8(b"ram") + struct.pack(">II", 0, 4)
main += struct.pack(">Q", (1 << 20) | 4) + s8(b"pc.ram") + struct.pack(">Q", 1 << 20)
main += struct.pack(">Q", 0x10) + b"\x7e" + struct.pack(">I", 2)
main += b"\x02" + struct.pack(">I", 2)
main += struct.pack(">Q", 4096 | 8) + s8(b"pc.ram") + bytes(range(256)) * 16
main += struct.pack(">Q", 8192 | 0x20 | 2) + b"\x00"
main += struct.pack(">Q", 0x10) + b"\x7e" + struct.pack(">I", 2)
main += b"\x03" + struct.pack(">I", 2) + struct.pack(">Q", 0x10) + b"\x7e" + struct.pack(">I", 2)
main += b"\x04" + struct.pack(">I", 3) + s8(b"timer") + struct.pack(">II", 0, 2) + b"\x01\x02\x03"
main += b"\x00\x06" + struct.pack(">I", 2) + b"{}"
open(d + "/main", "wb").write(b"\x00\x3c" + main)
init = struct.pack(">II", 0x11223344, 1) + bytes(16) + b"\x01" + bytes(39)
hdr = struct.pack(">IIIIIIQ", 0x11223344, 1, 0, 128, 2, 8192, 7) + bytes(32)
hdr += b"pc.ram".ljust(256, b"\0") + struct.pack(">QQ", 0, 4096) + bytes(8 * 126)
sync = struct.pack(">IIIIIIQ", 0x11223344, 1, 1, 128, 0, 0, 8) + bytes(32) + bytes(256) + bytes(1024)
open(d + "/multifd", "wb").write(b"\x01\x50" + init + hdr + bytes(8192) + sync)
PY
if ! "$cxx" -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -I"$src/lib" "$src/tests/fuzz/fuzz_qemu.cpp" "$src/lib/qemu/migration_stream.cpp" -o "$work/fuzz_qemu"; then
  echo "run_fuzz_qemu: FAILED to build"
  exit 1
fi
status=0
"$work/fuzz_qemu" -max_total_time="$secs" -max_len=65536 -artifact_prefix="$work/artifacts/" \
  "$work/corpus" "$work/seeds" >"$work/log" 2>&1 || status=$?
tail -3 "$work/log"
if [ "$status" -ne 0 ]; then
  echo "run_fuzz_qemu: FAILED (status $status); reproducer in $work/artifacts"
  exit 1
fi
echo "run_fuzz_qemu: no crash in ${secs}s"
rm -rf "$work"
