#!/usr/bin/env python3
"""cmp_pages.py A B [C] — how many 4 KiB pages differ between two RAM images
(the shorter length), and the first few guest-physical addresses.

With C: the pages where B differs from A *and* from C. The QEMU tests use
it as cmp_pages.py STREAM DEST SOURCE: a destination page that is not what
the recorded stream says but is the source's final content is not a fault of
the gateway (likely: QEMU 7.2 sent the page twice within one multifd sync
interval, on two channels, and the stream alone does not say which came last)."""
import sys

a = open(sys.argv[1], "rb").read()
b = open(sys.argv[2], "rb").read()
c = open(sys.argv[3], "rb").read() if len(sys.argv) > 3 else None
n = min(len(a), len(b), len(c) if c is not None else len(b)) // 4096


def page(x, i):
    return x[i * 4096:(i + 1) * 4096]


diff = [i for i in range(n) if page(a, i) != page(b, i) and (c is None or page(c, i) != page(b, i))]
print(f"{len(diff)} of {n} pages (first at {', '.join(hex(x * 4096) for x in diff[:4]) or '-'})")
