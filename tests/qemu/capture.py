#!/usr/bin/env python3
"""capture.py — sit where a destination QEMU would: listen on a unix socket,
accept the source's connections (the main channel first, then any multifd
channels), save each one's bytes to OUT_DIR/chan-N.bin until it closes,
and, with FORWARD, relay each connection to a real destination QEMU at that
unix socket, both ways (connections are opened onward in the order they
arrived: the 7.2 destination takes the first one as the main channel). One
thread per direction: a destination that stops reading one channel (it
waits for another) must not stall the rest.

    capture.py SOCKET OUT_DIR CHANNELS [TIMEOUT] [FORWARD]

CHANNELS is 1 for plain precopy, 1 + multifd-channels otherwise. Exits 0
once every channel has closed, 1 on timeout.
"""
import os, socket, sys, threading, time


def pump_in(src, f, peer, done):
    try:
        while True:
            b = src.recv(1 << 20)
            if not b:
                break
            f.write(b)
            if peer is not None:
                peer.sendall(b)
    except OSError:
        pass
    f.close()
    if peer is not None:
        try:
            peer.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    done.release()


def pump_back(peer, src):
    try:
        while True:
            b = peer.recv(1 << 20)
            if not b:
                break
            src.sendall(b)
    except OSError:
        pass


def main():
    path, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 120
    forward = sys.argv[5] if len(sys.argv) > 5 else None
    os.makedirs(out, exist_ok=True)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(path)
    ls.listen(16)
    ls.settimeout(0.5)
    done = threading.Semaphore(0)
    deadline = time.time() + timeout
    for i in range(n):
        while True:
            if time.time() > deadline:
                print(f"capture: timeout ({i} of {n} accepted)", file=sys.stderr)
                return 1
            try:
                c, _ = ls.accept()
                break
            except socket.timeout:
                continue
        c.settimeout(None)
        peer = None
        if forward:
            peer = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            peer.connect(forward)
            threading.Thread(target=pump_back, args=(peer, c), daemon=True).start()
        f = open(os.path.join(out, f"chan-{i}.bin"), "wb")
        threading.Thread(target=pump_in, args=(c, f, peer, done), daemon=True).start()
    for i in range(n):
        if not done.acquire(timeout=max(0.1, deadline - time.time())):
            print(f"capture: timeout ({i} of {n} channels closed)", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
