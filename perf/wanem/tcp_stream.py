#!/usr/bin/env python3
"""tcp_stream.py — one kernel TCP bulk transfer, for runs through hde-wanem
(no iperf needed). The server takes one connection, reads to EOF and prints
the goodput it saw (first byte to EOF); the client sends --mb megabytes or
for --seconds, with a chosen congestion control, and prints what it sent
with the kernel's TCP_INFO (RTT, retransmits, cwnd). Each prints one JSON
line.

  tcp_stream.py server [--bind 198.18.0.2] [--port 5201]
  tcp_stream.py client [--connect 198.18.0.2] [--port 5201] [--mb 20 | --seconds S] [--cc cubic|bbr|...]
"""
import argparse
import json
import socket
import struct
import sys
import time


def server(a):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.bind, a.port))
    ls.listen(1)
    ls.settimeout(a.timeout)
    print(json.dumps({"listening": f"{a.bind}:{a.port}"}), flush=True)
    conn, peer = ls.accept()
    conn.settimeout(a.timeout)
    buf = bytearray(1 << 20)
    n, first = 0, None
    while True:
        k = conn.recv_into(buf)
        if k == 0:
            break
        if first is None:
            first = time.monotonic()
        n += k
    end = time.monotonic()
    secs = end - first if first is not None else 0.0
    print(json.dumps({"role": "server", "peer": peer[0], "bytes": n, "seconds": round(secs, 4),
                      "mbit_s": round(n * 8 / secs / 1e6, 3) if secs > 0 else 0.0}), flush=True)


def tcp_info(s):
    raw = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    if len(raw) < 104:
        return {}
    u32 = struct.unpack_from("24I", raw, 8)  # tcpi_rto ... tcpi_total_retrans
    return {"rtt_us": u32[15], "rttvar_us": u32[16], "snd_cwnd": u32[18], "total_retrans": u32[23]}


def client(a):
    deadline = time.monotonic() + a.timeout
    while True:  # the server may still be starting
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if a.cc:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, a.cc.encode())
        try:
            s.settimeout(2)
            s.connect((a.connect, a.port))
            break
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    s.settimeout(a.timeout)
    chunk = bytes(256 * 1024)
    total = int(a.mb * 1e6) if a.seconds is None else None
    sent, t0 = 0, time.monotonic()
    stop = t0 + a.seconds if a.seconds is not None else None
    while True:
        if total is not None:
            if sent >= total:
                break
            view = memoryview(chunk)[: min(len(chunk), total - sent)]
        else:
            if time.monotonic() >= stop:
                break
            view = memoryview(chunk)
        s.sendall(view)
        sent += len(view)
    info = tcp_info(s)
    s.shutdown(socket.SHUT_WR)
    s.recv(1)  # the server closes after reading everything
    secs = time.monotonic() - t0
    cc = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).split(b"\0")[0].decode()
    s.close()
    print(json.dumps({"role": "client", "cc": cc, "bytes": sent, "seconds": round(secs, 4),
                      "mbit_s": round(sent * 8 / secs / 1e6, 3), **info}), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("role", choices=["server", "client"])
    p.add_argument("--bind", default="0.0.0.0")
    p.add_argument("--connect", default="198.18.0.2")
    p.add_argument("--port", type=int, default=5201)
    p.add_argument("--mb", type=float, default=20.0, help="megabytes (10^6) to send")
    p.add_argument("--seconds", type=float, help="send for this long instead of --mb")
    p.add_argument("--cc", help="congestion control (cubic, bbr, reno)")
    p.add_argument("--timeout", type=float, default=60.0)
    a = p.parse_args()
    try:
        server(a) if a.role == "server" else client(a)
    except OSError as e:
        print(f"tcp_stream.py {a.role}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
