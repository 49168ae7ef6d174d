#!/usr/bin/env bash
# run_gateway.sh — the data path against the engine, in the same run:
#   1. hde-gateway --role loopback --preload over a net_ring pair: input MB/s
#      per busy worker lcore (time inside worker polls that did work), beside
#      hde-estimate's offline encode MB/s for the same trace and mode. The
#      target: the data path keeps >= 80 % of the engine's offline speed.
#   2. idle back-off: two gateways over veth (needs root) with
#      --idle-sleep-us 0 (busy polling) and the default 50, wall time and CPU.
#   perf/run_gateway.sh [BUILD_DIR] [TRACE_DIR] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
TRACE=${2:-../shared/corpus/dev}
RUNS=${3:-3}
GW=$BUILD/dataplane/hde-gateway
EST=$BUILD/tools/estimate/hde-estimate
EAL="--no-huge -m 2048 --no-pci -l 0-1 --log-level=lib.eal:error"
T=$(mktemp -d /tmp/hde-gwbench.XXXXXX)
trap 'ip netns del hde-bench-a 2>/dev/null; ip netns del hde-bench-b 2>/dev/null; rm -rf "$T"' EXIT

echo "== data path vs engine ($TRACE, $RUNS runs each, medians) =="
for mode in datacenter internet; do
  for i in $(seq "$RUNS"); do
    "$GW" $EAL --file-prefix hde-bench -- --role loopback --preload --trace "$TRACE" --sink "$T/out" \
      --mode "$mode" --quiet 2>/dev/null | sed -n 's/.* \([0-9.]*\) MB\/s of input per busy worker lcore/\1/p' >>"$T/gw-$mode"
    "$EST" -q --json --mode "$mode" "$TRACE" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"]["encode_mb_per_s"])' >>"$T/est-$mode"
  done
  python3 - "$mode" "$T/gw-$mode" "$T/est-$mode" <<'PY'
import statistics, sys
mode, gw, est = sys.argv[1], [float(x) for x in open(sys.argv[2])], [float(x) for x in open(sys.argv[3])]
g, e = statistics.median(gw), statistics.median(est)
print(f"{mode:10s} data path {g:7.0f} MB/s per worker lcore (range {min(gw):.0f}-{max(gw):.0f}), "
      f"engine offline {e:7.0f} MB/s (range {min(est):.0f}-{max(est):.0f}): {100 * g / e:5.1f} % "
      f"{'PASS' if g >= 0.8 * e else 'MISS'} (target >= 80 %)")
PY
done

echo
echo "== idle back-off: source and destination processes over veth, 2 cores =="
if [ "$(id -u)" -ne 0 ] || ! ip netns add hde-bench-a 2>/dev/null; then
  echo "skipped: needs root for network namespaces"
  exit 0
fi
ip netns add hde-bench-b
ip link add hbva type veth peer name hbvb
ip link set hbva netns hde-bench-a
ip link set hbvb netns hde-bench-b
ip -n hde-bench-a link set hbva up
ip -n hde-bench-b link set hbvb up
for sleep_us in 0 50; do
  rm -rf "$T/out"
  ip netns exec hde-bench-b "$GW" $EAL --file-prefix hde-bench-d --vdev=net_af_packet0,iface=hbvb -- \
    --role dest --sink "$T/out" --exit-on-complete --idle-sleep-us "$sleep_us" --quiet >"$T/d.log" 2>&1 &
  dpid=$!
  sleep 1
  start=$(date +%s.%N)
  ip netns exec hde-bench-a "$GW" $EAL --file-prefix hde-bench-s --vdev=net_af_packet0,iface=hbva -- \
    --role source --trace "$TRACE" --preload --idle-sleep-us "$sleep_us" --quiet >"$T/s.log" 2>&1
  wait "$dpid"
  end=$(date +%s.%N)
  cpu=$(grep -h "s CPU" "$T/s.log" "$T/d.log" | sed -n 's/.* \([0-9.]*\) s CPU.*/\1/p' | paste -sd+ | bc)
  busy=$(sed -n 's/.* \([0-9.]*\) MB\/s of input per busy worker lcore/\1/p' "$T/s.log")
  printf 'idle-sleep-us %-3s: migration %.2f s wall (incl. 1 s destination linger), %s s CPU over 4 lcores, worker %s MB/s per busy lcore\n' \
    "$sleep_us" "$(echo "$end - $start" | bc)" "$cpu" "$busy"
done
