#!/usr/bin/env python3
"""cmp_pages.py A B — how many 4 KiB pages differ between two RAM images
(the shorter length), and the first few guest-physical addresses."""
import sys

a = open(sys.argv[1], "rb").read()
b = open(sys.argv[2], "rb").read()
n = min(len(a), len(b)) // 4096
diff = [i for i in range(n) if a[i * 4096:(i + 1) * 4096] != b[i * 4096:(i + 1) * 4096]]
print(f"{len(diff)} of {n} pages (first at {', '.join(hex(x * 4096) for x in diff[:4]) or '-'})")
