#!/usr/bin/env python3
"""qmp.py — a minimal QMP client for the QEMU tests (no dependencies).

    qmp.py SOCKET COMMAND [JSON-ARGS]      one command, prints the reply's "return" as JSON
    qmp.py SOCKET --wait-status S [--timeout T]
                                           poll query-migrate until status S (or failed)

Exit 1 on an error reply, a failed migration or a timeout.
"""
import json, socket, sys, time


class Qmp:
    def __init__(self, path, timeout=30):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        deadline = time.time() + timeout
        while True:
            try:
                self.s.connect(path)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        self.f = self.s.makefile("rwb")
        self._read()  # greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError("QMP closed")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def cmd(self, name, **args):
        req = {"execute": name}
        if args:
            req["arguments"] = args
        self.f.write((json.dumps(req) + "\n").encode())
        self.f.flush()
        rep = self._read()
        if "error" in rep:
            raise RuntimeError(f"{name}: {rep['error'].get('desc', rep['error'])}")
        return rep.get("return")


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    q = Qmp(sys.argv[1])
    if sys.argv[2] == "--wait-status":
        want = sys.argv[3]
        timeout = float(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[4] == "--timeout" else 120
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = q.cmd("query-migrate")
            st = r.get("status", "none")
            if st == want:
                print(json.dumps(r))
                return 0
            if st in ("failed", "cancelled") and want not in ("failed", "cancelled"):
                print(json.dumps(r))
                return 1
            time.sleep(0.2)
        print(json.dumps(q.cmd("query-migrate")))
        return 1
    args = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    try:
        print(json.dumps(q.cmd(sys.argv[2], **args)))
    except RuntimeError as e:
        print(f"qmp: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
