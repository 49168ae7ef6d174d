#!/usr/bin/env python3
"""telemetry.py — read /hde/ commands from a DPDK process's telemetry socket
(dpdk_telemetry.v2, as dpdk-telemetry.py does) and print the JSON reply.

  telemetry.py RUNTIME_DIR COMMAND
"""
import json
import socket
import sys

s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1] + "/dpdk_telemetry.v2")
hello = json.loads(s.recv(16384))
s.send(sys.argv[2].encode())
print(json.dumps(json.loads(s.recv(int(hello.get("max_output_len", 16384))))))
