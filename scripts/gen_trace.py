#!/usr/bin/env python3
"""gen_trace.py — write a synthetic VM memory trace in the corpus format
(manifest.json + raw snapshots, sha256 of each), for demos and tests where
no real trace is at hand.

Pages are a mix like a Linux guest's: zero pages, duplicated pages, log
text, fixed-size records, kernel-pointer tables and incompressible data.
Each dirty round rewrites a share of pages: most with a few small in-place
edits (records updated), some rewritten whole (new log text, new random
data), a few zeroed or filled. Deterministic for a given --seed.
"""
import argparse
import hashlib
import json
import os
import random
import struct

PAGE = 4096
WORDS = [b"GET", b"/api/v1/orders", b"200", b"user=", b"session", b"INFO", b"db.query",
         b"latency_ms=", b"customer", b"ERROR", b"timeout", b"POST", b"WARN", b"cache-miss",
         b"2024-01-01T00:00:00Z", b"\n"]


def text_page(rng):
    out = bytearray()
    while len(out) < PAGE:
        out += rng.choice(WORDS) + b" "
        if rng.random() < 0.3:
            out += str(rng.randrange(100000)).encode()
    return bytes(out[:PAGE])


def record_page(rng):
    out = bytearray()
    while len(out) < PAGE:
        cid = rng.randrange(1 << 20)
        out += struct.pack("<IQ", 0xC0FFEE, cid) + b"customer-%07d" % cid + bytes(20) + \
            struct.pack("<I", rng.randrange(1 << 30))
    return bytes(out[:PAGE])


def pointer_page(rng):
    base = 0xFFFF888000000000 + rng.randrange(1 << 16) * PAGE
    return b"".join(struct.pack("<Q", 0 if rng.random() < 0.3 else base + rng.randrange(512) * 64)
                    for _ in range(PAGE // 8))


def random_page(rng):
    return rng.randbytes(PAGE)


def new_page(rng, image, npages):
    r = rng.random()
    if r < 0.25:
        return bytes(PAGE)
    if r < 0.30:
        return image[rng.randrange(npages)]
    if r < 0.55:
        return text_page(rng)
    if r < 0.75:
        return record_page(rng)
    if r < 0.90:
        return pointer_page(rng)
    return random_page(rng)


def edit(rng, page):
    p = bytearray(page)
    for _ in range(rng.randrange(1, 8)):
        off = rng.randrange(PAGE - 16)
        n = rng.randrange(1, 16)
        p[off:off + n] = rng.randbytes(n)
    return bytes(p)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=64, help="guest RAM in MiB")
    ap.add_argument("--rounds", type=int, default=4, help="dirty rounds after the bulk round")
    ap.add_argument("--dirty", type=float, default=0.08, help="share of pages dirtied per round")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    npages = a.mib * 256
    image = [bytes(PAGE)] * npages
    for g in range(npages):
        image[g] = new_page(rng, image, max(g, 1))
    os.makedirs(a.out, exist_ok=True)
    snaps = []
    for k in range(a.rounds + 1):
        if k > 0:
            for g in rng.sample(range(npages), int(npages * a.dirty)):
                r = rng.random()
                image[g] = edit(rng, image[g]) if r < 0.6 else new_page(rng, image, npages)
        data = b"".join(image)
        name = "snap-%02d.raw" % k
        with open(os.path.join(a.out, name), "wb") as f:
            f.write(data)
        snaps.append({"index": k, "file": name, "raw_bytes": len(data),
                      "raw_sha256": hashlib.sha256(data).hexdigest(), "encoding": "raw"})
    manifest = {"trace": "synthetic", "ram_bytes": npages * PAGE, "page_size": PAGE,
                "workload": "gen_trace.py seed %d dirty %.2f" % (a.seed, a.dirty),
                "snapshots": snaps}
    with open(os.path.join(a.out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
