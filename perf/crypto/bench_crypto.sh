#!/usr/bin/env bash
# bench_crypto.sh — what sealing frames (AES-256-GCM, --key-file) costs a
# worker core: hde-gateway --role loopback migrates a preloaded trace
# (default ../shared/corpus/dev) with and without a key, alternating, and
# reports the source's per-core goodput (MB/s of guest memory per busy worker
# lcore, from the summary) and the destination's decode rate, each with its
# ratio encrypted / clear, in the same run. A run's worker is busy for some
# 0.3 s on the dev trace, so one preemption moves a figure by tens of
# percent: each setting runs RUNS times after a discarded warm-up, and the
# report gives the best (the least disturbed, the usual estimate of a CPU
# cost) and the median.
#
#   perf/crypto/bench_crypto.sh [BUILD] [RUNS] [TRACE] [CODECS]
#     BUILD  build dir (default build); RUNS per setting (default 9)
#     CODECS space-separated list (default "lz4:4 raw": datacenter mode's
#            codec and the no-compression path, where sealing weighs most)
# Needs no root. Run on a quiet machine: figures are CPU time per page.
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build}
RUNS=${2:-9}
TRACE=${3:-../shared/corpus/dev}
CODECS=${4:-lz4:4 raw}
GW=$BUILD/dataplane/hde-gateway
EAL="--no-huge -m 2048 --no-pci -l 0-1 --log-level=lib.eal:error"
T=$(mktemp -d /tmp/hde-bcrypto.XXXXXX)
trap 'rm -rf "$T"' EXIT
(umask 077 && head -c 32 /dev/urandom | base64 >"$T/key")

run() {  # codec key(0/1) -> "enc_MBps dec_MBps"
  local extra=""
  [ "$2" = 1 ] && extra="--key-file $T/key"
  "$GW" $EAL --file-prefix "hdebc$$" -- --role loopback --trace "$TRACE" --preload --sink "$T/out" \
    --mode datacenter --codec "$1" --timeout 120 --quiet $extra >"$T/run.log" 2>&1 || { echo "fail"; return; }
  local enc dec
  enc=$(sed -n 's/.*workers: .* pages\/s, \([0-9.]*\) MB\/s of input per busy worker lcore.*/\1/p' "$T/run.log")
  dec=$(sed -n 's/.*decoders: .* pages\/s, \([0-9.]*\) MB\/s of output per busy decoder lcore.*/\1/p' "$T/run.log")
  rm -rf "$T/out"
  echo "$enc $dec"
}

echo "# trace $TRACE, $RUNS runs per setting, alternating clear/sealed; load $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-8s %-6s %10s %10s\n" codec frames "enc MB/s" "dec MB/s"
for codec in $CODECS; do
  run "$codec" 0 >/dev/null  # warm-up: page cache, CPU frequency
  enc0=() enc1=() dec0=() dec1=()
  for r in $(seq "$RUNS"); do
    for k in 0 1; do
      read -r e d <<<"$(run "$codec" "$k")"
      [ "$e" = fail ] && { echo "run failed: $(tail -n 3 "$T/run.log")"; exit 1; }
      printf "%-8s %-6s %10s %10s\n" "$codec" "$([ $k = 1 ] && echo sealed || echo clear)" "$e" "$d"
      if [ $k = 1 ]; then enc1+=("$e"); dec1+=("$d"); else enc0+=("$e"); dec0+=("$d"); fi
    done
  done
  python3 - "$codec" "${enc0[*]}" "${enc1[*]}" "${dec0[*]}" "${dec1[*]}" <<'PY'
import statistics, sys
codec = sys.argv[1]
e0, e1, d0, d1 = ([float(x) for x in a.split()] for a in sys.argv[2:6])
m = statistics.median
print("%s: encode MB/s per busy worker core, clear -> sealed: best %.0f -> %.0f (ratio %.3f), median %.0f -> %.0f "
      "(ratio %.3f); decode per busy decoder core: best %.0f -> %.0f (ratio %.3f), median %.0f -> %.0f (ratio %.3f)" % (
    codec, max(e0), max(e1), max(e1) / max(e0), m(e0), m(e1), m(e1) / m(e0),
    max(d0), max(d1), max(d1) / max(d0), m(d0), m(d1), m(d1) / m(d0)))
PY
done
