#!/usr/bin/env bash
# demo.sh — the main job: set up, then replay a migration of a VM memory trace
# through the HDE encoder and decoder (hde-estimate), in datacenter and
# internet mode, with QEMU's own figures alongside, and check the rebuilt
# image. Uses ../shared/corpus/dev when present, else a generated trace.
#   scripts/demo.sh [TRACE_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
scripts/setup.sh "$BUILD" >/dev/null

TRACE=${1:-}
if [ -z "$TRACE" ]; then
  if [ -f ../shared/corpus/dev/manifest.json ]; then
    TRACE=../shared/corpus/dev
  else
    TRACE=$(mktemp -d /tmp/hde-trace.XXXXXX)
    trap 'rm -rf "$TRACE"' EXIT
    echo "demo: no corpus here; generating a 64 MiB trace in $TRACE"
    python3 scripts/gen_trace.py --mib 64 --rounds 4 --out "$TRACE"
  fi
fi

for mode in datacenter internet; do
  echo
  echo "=== $mode mode: $TRACE ==="
  "$BUILD"/tools/estimate/hde-estimate --mode "$mode" --reference "$TRACE"
done
