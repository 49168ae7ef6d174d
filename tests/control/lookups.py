#!/usr/bin/env python3
"""lookups.py SOCK VM FIRST STEP COUNT — pipelined `baselines lookup` requests
on one control connection while the gateway runs. Prints "found whole": how
many pages had a baseline and how many of those hashed to what their slot
says (RCU: a slot rewritten under the reader would not)."""
import json
import socket
import sys

sock, vm, first, step, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sock)
f = s.makefile("rwb")
found = whole = 0
for i in range(count):
    f.write(json.dumps({"argv": ["baselines", "lookup", vm, str(first + i * step)]}).encode() + b"\n")
    f.flush()
    r = json.loads(f.readline())
    if not r.get("ok"):
        print("error:", r.get("error"), file=sys.stderr)
        sys.exit(1)
    if r["result"]["found"]:
        found += 1
        whole += 1 if r["result"]["verified"] else 0
print(found, whole)
