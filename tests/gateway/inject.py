#!/usr/bin/env python3
"""inject.py — put bad frames on a link while a migration runs: wrong peer
address, wrong UDP port, HDE frames with a bad CRC and with an unknown
version. Sends COUNT of each kind through a raw AF_PACKET socket on IFACE
(run it inside the source's namespace). The destination must count and
drop every one and still rebuild the image exactly.

  inject.py IFACE COUNT [SRC_IP DST_IP UDP_PORT]
"""
import socket
import struct
import sys
import time


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def frame(src_ip, dst_ip, sport, dport, payload):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                     socket.inet_aton(src_ip), socket.inet_aton(dst_ip))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    eth = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x99" + b"\x08\x00"
    return eth + ip + udp


def hde(version, crc, seq=1 << 40):
    # magic 'HD', version, type data, flags, stream 0, epoch, count 0, len 0, seq, ack, crc
    return struct.pack("<HBBHHIHHQII", 0x4448, version, 1, 0, 0, 12345, 0, 0, seq, 0, crc)


def main():
    iface, count = sys.argv[1], int(sys.argv[2])
    src, dst, port = (sys.argv[3], sys.argv[4], int(sys.argv[5])) if len(sys.argv) > 5 else \
        ("198.18.0.1", "198.18.0.2", 47000)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    kinds = [
        frame("198.18.9.9", dst, port, port, hde(1, 0)),   # wrong peer
        frame(src, dst, port, port + 1, hde(1, 0)),        # wrong UDP port
        frame(src, dst, port, port, hde(1, 0xDEADBEEF)),   # bad CRC
        frame(src, dst, port, port, hde(77, 0)),           # unknown version
    ]
    for _ in range(count):
        for f in kinds:
            s.send(f)
        time.sleep(0.002)


if __name__ == "__main__":
    main()
