#!/usr/bin/env python3
"""icmp_ping.py — ICMP echo for runs through hde-wanem where iputils ping is
not installed (needs root: a raw socket). Sends --count echo requests every
--interval seconds, waits --wait seconds after the last, and prints one JSON
line: sent, received (distinct good replies), duplicates, corrupt (replies
whose ICMP checksum or payload is wrong: the kernel hands raw sockets a copy
before it checks), and RTT min/avg/max/mdev in milliseconds.

  icmp_ping.py [--count 10] [--interval 0.2] [--wait 1] [--size 56] DEST
"""
import argparse
import json
import os
import select
import socket
import struct
import sys
import time


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dest")
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--interval", type=float, default=0.2)
    p.add_argument("--wait", type=float, default=1.0, help="seconds to wait for replies after the last request")
    p.add_argument("--size", type=int, default=56, help="payload bytes")
    a = p.parse_args()
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    except PermissionError:
        print("icmp_ping.py: a raw socket needs root (CAP_NET_RAW)", file=sys.stderr)
        sys.exit(2)
    ident = os.getpid() & 0xFFFF
    payload = bytes((i * 7 + 3) & 0xFF for i in range(a.size))
    sent_at, rtts, seen = {}, [], set()
    dups = corrupt = 0
    t0 = time.monotonic()
    next_send, sent = t0, 0
    end = None
    while True:
        now = time.monotonic()
        if sent < a.count and now >= next_send:
            hdr = struct.pack("!BBHHH", 8, 0, 0, ident, sent)
            pkt = struct.pack("!BBHHH", 8, 0, checksum(hdr + payload), ident, sent) + payload
            sent_at[sent] = time.monotonic()
            s.sendto(pkt, (a.dest, 0))
            sent += 1
            next_send += a.interval
            if sent == a.count:
                end = time.monotonic() + a.wait
            continue
        deadline = next_send if sent < a.count else end
        if deadline is not None and now >= deadline and sent == a.count:
            break
        r, _, _ = select.select([s], [], [], max(0.0, deadline - now))
        if not r:
            continue
        data = s.recv(65535)
        t = time.monotonic()
        ihl = (data[0] & 0x0F) * 4
        icmp = data[ihl:]
        if len(icmp) < 8:
            continue
        typ, _, _, rid, seq = struct.unpack("!BBHHH", icmp[:8])
        if typ != 0 or rid != ident or seq not in sent_at:
            # A reply may be corrupted in its id or sequence: check the sum.
            if typ == 0 and checksum(icmp) != 0:
                corrupt += 1
            continue
        if checksum(icmp) != 0 or icmp[8:] != payload:
            corrupt += 1
            continue
        if seq in seen:
            dups += 1
            continue
        seen.add(seq)
        rtts.append((t - sent_at[seq]) * 1000)
    out = {"dest": a.dest, "sent": sent, "received": len(seen), "duplicates": dups, "corrupt": corrupt}
    if rtts:
        avg = sum(rtts) / len(rtts)
        out["rtt_ms"] = {"min": round(min(rtts), 3), "avg": round(avg, 3), "max": round(max(rtts), 3),
                         "mdev": round((sum((x - avg) ** 2 for x in rtts) / len(rtts)) ** 0.5, 3)}
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
