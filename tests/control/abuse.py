#!/usr/bin/env python3
"""abuse.py — bad clients on the control socket: malformed JSON, an
oversized request, a client that never speaks, hundreds of clients at once,
a client that disconnects before reading its reply. Prints one line per
check ("ok ..." / "not ok ...") and exits non-zero on any failure.

  abuse.py SOCK
"""
import json
import socket
import sys
import time

SOCK = sys.argv[1]
failed = 0


def check(cond, what):
    global failed
    print(("ok - " if cond else "not ok - ") + what)
    failed += 0 if cond else 1


def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(SOCK)
    return s


def ask(raw):
    s = conn()
    s.sendall(raw)
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return data


def reply_of(raw):
    try:
        return json.loads(ask(raw).split(b"\n")[0])
    except (ValueError, OSError):
        return None


def control():
    return reply_of(b'{"argv": ["show", "control"]}\n')["result"]


c0 = control()

r = reply_of(b"{not json\n")
check(r is not None and r["ok"] is False and "malformed" in r["error"], "malformed JSON gets an error reply")
r = reply_of(b'{"argv": ["no", "such"]}\n')
check(r is not None and r["ok"] is False and "unknown command" in r["error"], "unknown command gets an error reply")
r = reply_of(b'{"argv": ["set", "mode"]}\n')
check(r is not None and r["ok"] is False and "usage" in r["error"], "wrong argument count gets the usage")
s = conn()
s.sendall(b'{"argv": ["show", "stats"]}\n' + b'{"argv": ["version"]}\n')
data = b""
while data.count(b"\n") < 2:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
s.close()
try:
    r1, r2 = [json.loads(x) for x in data.split(b"\n")[:2]]
except ValueError:
    r1 = r2 = None
check(r1 is not None and r1["ok"] is True and "role" in r1["result"] and r2["ok"] is True
      and r2["result"]["version"].startswith("hde-gateway"), "pipelined requests are answered, each, in order")

# Oversized request: refused, connection closed.
s = conn()
try:
    s.sendall(b"x" * 70000)
    data = s.recv(65536)
except OSError:
    data = b""
s.close()
check(b"longer than" in data, "oversized request refused")

# A client that never speaks does not block others.
silent = conn()
r = reply_of(b'{"argv": ["version"]}\n')
check(r is not None and r["ok"] is True, "a silent client does not block the others")

# Hundreds of clients at once: some are turned away, the gateway keeps serving.
many = []
for i in range(300):
    if i % 32 == 31:
        time.sleep(0.05)  # let the server drain its listen backlog
    for _attempt in range(3):
        try:
            many.append(conn())
            break
        except OSError:
            time.sleep(0.2)
busy = 0
pending = list(many)
deadline = time.time() + 3
while pending and time.time() < deadline:
    time.sleep(0.2)
    still = []
    for c in pending:
        c.setblocking(False)
        try:
            data = c.recv(4096)
            if b"too many" in data:
                busy += 1
        except BlockingIOError:
            still.append(c)
        except OSError:
            pass
    pending = still
for c in many:
    c.close()
silent.close()
check(busy >= 300 - 32, "clients past the limit (32) are told 'too many' (%d of 300)" % busy)
time.sleep(0.5)
r = reply_of(b'{"argv": ["version"]}\n')
check(r is not None and r["ok"] is True, "served again after the crowd left")

# A client that disconnects mid-reply.
for _ in range(20):
    s = conn()
    s.sendall(b'{"argv": ["list-commands"]}\n')
    s.close()
time.sleep(0.5)
c1 = control()
d = {k: c1[k] - c0[k] for k in ("malformed", "unknown_command", "bad_arguments", "oversized_requests",
                                "clients_rejected_busy")}
check(d["malformed"] == 1 and d["unknown_command"] == 1 and d["bad_arguments"] == 1 and d["oversized_requests"] == 1
      and d["clients_rejected_busy"] == busy, "every bad client is counted, once: %s" % d)
sys.exit(1 if failed else 0)
