#!/usr/bin/env python3
"""replay.py — the attacker's side of tests/gateway/crypto_test.sh.

  replay.py find PCAP SAMPLES          how many of the byte strings in SAMPLES
                                       (one hex string per line) occur in the
                                       frames of PCAP; prints "found N of M"
  replay.py count PCAP                 how many HDE DATA frames PCAP holds
  replay.py send PCAP IFACE KIND COUNT put COUNT HDE DATA frames of PCAP back on
                                       IFACE (raw AF_PACKET), as KIND:
      asis   unchanged (a replay)
      flip   one bit of the sealed payload flipped, the CRC recomputed (so only
             the GCM tag can tell)
      port   unchanged but for the UDP source port (47999): an authentic
             frame that claims the source sits elsewhere (to divert the ACKs)

Run `send` in the namespace of the side that captured. Uses only the standard
library (pcap read by hand, CRC32C computed here).
"""
import socket
import struct
import sys

HDE_MAGIC = 0x4448
L2L4 = 42
HDR = struct.Struct("<HBBHHIHHQII")  # frame_header, 32 bytes
SEALED = 1 << 2


def crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


TABLE = crc32c_table()


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def frame_crc(frame):
    # CRC32C of the header with crc = 0, then the payload (lib/wire/format.cpp).
    return crc32c(frame[:28] + b"\0\0\0\0" + frame[32:])


def packets(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return
    magic = struct.unpack_from("<I", data, 0)[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack_from(endian + "IIII", data, off)
        off += 16
        yield data[off:off + incl]
        off += incl


def hde_data_frames(path):
    for p in packets(path):
        if len(p) < L2L4 + HDR.size or p[12:14] != b"\x08\x00" or p[23] != 17:
            continue
        h = HDR.unpack_from(p, L2L4)
        if h[0] == HDE_MAGIC and h[2] == 1:  # type DATA
            yield p


def find(pcap, samples_path):
    with open(samples_path) as f:
        samples = [bytes.fromhex(line.strip()) for line in f if line.strip()]
    blob = b"".join(packets(pcap))
    found = sum(1 for s in samples if s in blob)
    print("found %d of %d" % (found, len(samples)))


def send(pcap, iface, kind, count):
    frames = [p for p in hde_data_frames(pcap) if HDR.unpack_from(p, L2L4)[8] > 0]  # skip seq 0 (INIT)
    if not frames:
        print("no HDE data frames in %s" % pcap)
        sys.exit(1)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    sent = 0
    for i in range(count):
        p = bytearray(frames[(i * 7919) % len(frames)])
        if kind == "flip":
            hde = p[L2L4:]
            h = HDR.unpack_from(hde, 0)
            flags, plen = h[3], h[7]
            if not flags & SEALED or plen <= 32:
                continue
            hde[48 + i % (plen - 32)] ^= 1 << (i % 8)  # a bit of the ciphertext (after header and seal header)
            struct.pack_into("<I", hde, 28, frame_crc(bytes(hde)))
            p[L2L4:] = hde
        elif kind == "port":
            struct.pack_into(">HH", p, 34, 47999, struct.unpack_from(">H", p, 36)[0])  # src port, dst port
            struct.pack_into(">H", p, 40, 0)  # UDP checksum: none
        s.send(bytes(p))
        sent += 1
    print("sent %d %s frames" % (sent, kind))


def main():
    if len(sys.argv) >= 4 and sys.argv[1] == "find":
        find(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 3 and sys.argv[1] == "count":
        print(sum(1 for _ in hde_data_frames(sys.argv[2])))
    elif len(sys.argv) >= 6 and sys.argv[1] == "send":
        send(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
