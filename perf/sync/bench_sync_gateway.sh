#!/usr/bin/env bash
# bench_sync_gateway.sh — does the fleet sync disturb the data path? A
# loopback gateway migrates a generated trace (unpaced, 2 lcores) with the
# sync off and on (two destination gateways on net_null as its peers, 500 ms
# rounds), alternately, RUNS times each; prints pages per second of wall
# time for every run, the medians, their ratio, and what the sync cost the
# control thread (its busy time, from the gateway's summary).
#   bench_sync_gateway.sh BUILD_DIR [RUNS] [GEN]
set -euo pipefail
B=${1:-build}
RUNS=${2:-3}
GEN=${3:-mib=256,rounds=4,dirty=0.3,entropy=0.3}
GW=$B/dataplane/hde-gateway
T=$(mktemp -d /tmp/hde-bench-sync.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill $p 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"' EXIT
BASE=$((30000 + $$ % 20000))
head -c 32 /dev/urandom | base64 >"$T/key"; chmod 600 "$T/key"
EAL="--no-huge -m 512 --no-pci --log-level=lib.eal:error"
for i in 1 2; do
  "$GW" $EAL -l 0 --vdev=net_null0,no-rx=1 --file-prefix "bsd$i$$" -- --role dest --sink "$T/d$i" --timeout 3600 \
    --idle-sleep-us 1000 --ctl-sock "$T/d$i.sock" --node-id $((i + 1)) --sync-listen 127.0.0.1:$((BASE + i)) \
    --peers 127.0.0.1:$BASE --sync-key-file "$T/key" --quiet >"$T/d$i.log" 2>&1 &
  PIDS+=($!)
done
sleep 2
run() {  # off|on N
  local extra=()
  [ "$1" = on ] && extra=(--node-id 1 --sync-listen 127.0.0.1:$BASE --peers 127.0.0.1:$((BASE + 1)),127.0.0.1:$((BASE + 2)) --sync-key-file "$T/key")
  "$GW" $EAL -l 0-1 --file-prefix "bsa$$" -- --role loopback --gen "$GEN" --sink "$T/a" --ctl-sock "$T/a.sock" \
    --quiet "${extra[@]}" >"$T/a-$1-$2.log" 2>&1
  local secs pages
  secs=$(sed -n 's/.*hde-gateway summary (\([0-9.]*\) s).*/\1/p' "$T/a-$1-$2.log")
  pages=$(sed -n 's/.*workers: \([0-9]*\) pages in.*/\1/p' "$T/a-$1-$2.log")
  echo "$1 $(echo "$pages / $secs" | bc -l)"
  [ "$1" = on ] && grep "fleet sync:" "$T/a-$1-$2.log" | sed 's/^ */# /' >&2
  return 0
}
for r in $(seq "$RUNS"); do run off "$r"; run on "$r"; done | tee "$T/runs"
python3 - "$T/runs" <<'PY'
import statistics, sys
runs = [l.split() for l in open(sys.argv[1])]
off = [float(v) for k, v in runs if k == "off"]
on = [float(v) for k, v in runs if k == "on"]
mo, mn = statistics.median(off), statistics.median(on)
print(f"sync off: median {mo:.0f} pages/s ({min(off):.0f}-{max(off):.0f}); sync on: median {mn:.0f} pages/s "
      f"({min(on):.0f}-{max(on):.0f}); on/off = {100 * mn / mo:.1f} %")
PY
