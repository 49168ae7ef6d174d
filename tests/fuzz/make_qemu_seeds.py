#!/usr/bin/env python3
"""make_qemu_seeds.py DIR — seeds for fuzz_qemu: synthetic QEMU 7.2 migration
streams in the unit test's shapes (a main channel; a multifd channel). Byte 0
of each selects the parser (even: main channel, odd: multifd), byte 1 the
chunk size the stream is fed in; then the stream."""
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
