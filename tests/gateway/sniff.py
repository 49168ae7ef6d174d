#!/usr/bin/env python3
"""sniff.py — what crosses a link, by Ethernet addresses (tcpdump -e without
tcpdump): counts the frames IFACE receives by (destination MAC, source MAC,
kind) until SIGTERM or SIGINT, then writes them to OUT as JSON lines
{"dst": MAC, "src": MAC, "kind": KIND, "n": COUNT}. Kinds: arp-request,
arp-reply, hde-data, hde-ack, hde-repair, hde-fec, hde-other (IPv4/UDP to
UDP_PORT with the HDE magic), ipv4, other. Run it in the namespace of the
interface. Only received frames count: net_af_packet transmits past the
kernel's taps (PACKET_QDISC_BYPASS), so a link is watched from both ends,
one sniffer each.

  sniff.py IFACE OUT [UDP_PORT]
"""
import json
import signal
import socket
import struct
import sys

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
HDE_TYPES = {1: "hde-data", 2: "hde-ack", 3: "hde-repair", 4: "hde-fec"}


def mac(b):
    return ":".join("%02x" % x for x in b)


def kind(f, udp_port):
    if len(f) < 14:
        return "other"
    et = struct.unpack("!H", f[12:14])[0]
    if et == 0x0806:
        if len(f) >= 22:
            op = struct.unpack("!H", f[20:22])[0]
            return {1: "arp-request", 2: "arp-reply"}.get(op, "arp-other")
        return "arp-other"
    if et != 0x0800 or len(f) < 34:
        return "other"
    ihl = (f[14] & 0x0F) * 4
    if f[23] != 17 or len(f) < 14 + ihl + 8 + 4:
        return "ipv4"
    u = 14 + ihl
    dport = struct.unpack("!H", f[u + 2:u + 4])[0]
    if dport != udp_port:
        return "ipv4"
    p = u + 8
    if f[p:p + 2] != b"HD":
        return "ipv4"
    return HDE_TYPES.get(f[p + 3], "hde-other")


def main():
    iface, out = sys.argv[1], sys.argv[2]
    udp_port = int(sys.argv[3]) if len(sys.argv) > 3 else 47000
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind((iface, 0))
    s.settimeout(0.2)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    counts = {}
    # Ready: the caller waits for this file before it starts the gateways.
    open(out + ".ready", "w").close()
    while not stop:
        try:
            f, addr = s.recvfrom(96)
        except socket.timeout:
            continue
        except InterruptedError:
            continue
        if addr[2] == PACKET_OUTGOING:
            continue
        k = (mac(f[0:6]), mac(f[6:12]), kind(f, udp_port))
        counts[k] = counts.get(k, 0) + 1
    with open(out, "w") as o:
        for (d, src, k), n in sorted(counts.items()):
            o.write(json.dumps({"dst": d, "src": src, "kind": k, "n": n}) + "\n")


if __name__ == "__main__":
    main()
