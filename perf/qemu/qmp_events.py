#!/usr/bin/env python3
"""qmp_events.py — record every QMP event of one QEMU, with its timestamp.

    qmp_events.py SOCKET OUTFILE [--timeout T]

Connects to the QMP unix socket SOCKET (retrying for T seconds, default 30,
while QEMU creates it), negotiates capabilities, then appends every event
QEMU sends to OUTFILE as one JSON line (QEMU's own object: "event",
"timestamp" {"seconds", "microseconds"}, "data"), flushed at once, until the
socket closes or the process is killed (SIGTERM/SIGINT end it cleanly).
The first line written is {"connected": <unix time>} so a reader can tell
events that happened before the client was attached were not seen.

QEMU's event timestamps are the host's wall clock: two QEMUs on one machine
share it, so an event of one can be subtracted from an event of the other.
A QMP monitor serves one client at a time: give QEMU a second -qmp socket
for commands (tests/qemu/qmp.py).
"""
import json, signal, socket, sys, time


def main():
    args = sys.argv[1:]
    timeout = 30.0
    if "--timeout" in args:
        i = args.index("--timeout")
        timeout = float(args[i + 1])
        del args[i:i + 2]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    path, outp = args
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deadline = time.time() + timeout
    while True:
        try:
            s.connect(path)
            break
        except OSError as e:
            if time.time() > deadline:
                print(f"qmp_events.py: cannot connect to {path}: {e}", file=sys.stderr)
                return 1
            time.sleep(0.05)
    f = s.makefile("rwb")
    out = open(outp, "a", buffering=1)

    def read():
        line = f.readline()
        if not line:
            return None
        return json.loads(line)

    greeting = read()
    if greeting is None or "QMP" not in greeting:
        print(f"qmp_events.py: no QMP greeting on {path}", file=sys.stderr)
        return 1
    f.write(b'{"execute": "qmp_capabilities"}\n')
    f.flush()
    out.write(json.dumps({"connected": time.time()}) + "\n")
    try:
        while True:
            msg = read()
            if msg is None:
                break
            if "event" in msg:
                out.write(json.dumps(msg) + "\n")
            elif "error" in msg:
                print(f"qmp_events.py: {msg['error']}", file=sys.stderr)
    except (OSError, ValueError, KeyboardInterrupt):
        pass
    finally:
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
