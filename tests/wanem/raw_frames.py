#!/usr/bin/env python3
"""raw_frames.py — raw Ethernet frames of any EtherType across hde-wanem
(needs root: AF_PACKET). The sender writes COUNT broadcast frames of the
given EtherType, each tagged with a marker and its number; the receiver
counts the distinct tagged frames of that EtherType it sees within
TIMEOUT seconds and prints the count.

  raw_frames.py send IFACE ETHERTYPE COUNT [SIZE]
  raw_frames.py recv IFACE ETHERTYPE COUNT TIMEOUT
"""
import socket
import struct
import sys
import time

MARK = b"HDE-WANEM-RAW"


def main():
    role, iface, etype = sys.argv[1], sys.argv[2], int(sys.argv[3], 0)
    count = int(sys.argv[4])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((iface, 0))
    if role == "send":
        size = int(sys.argv[5]) if len(sys.argv) > 5 else 100
        src = s.getsockname()[4][:6]
        for i in range(count):
            body = MARK + struct.pack("!I", i)
            frame = b"\xff" * 6 + src + struct.pack("!H", etype) + body
            s.send(frame.ljust(size, b"\0"))
            time.sleep(0.001)
        return
    deadline = time.monotonic() + float(sys.argv[5])
    seen = set()
    s.settimeout(0.1)
    while len(seen) < count and time.monotonic() < deadline:
        try:
            f = s.recv(65535)
        except socket.timeout:
            continue
        if len(f) >= 14 + len(MARK) + 4 and struct.unpack("!H", f[12:14])[0] == etype and f[14:14 + len(MARK)] == MARK:
            seen.add(struct.unpack("!I", f[14 + len(MARK):18 + len(MARK)])[0])
    print(len(seen), flush=True)


if __name__ == "__main__":
    main()
