#!/usr/bin/env bash
# demo.sh — the main job: on a fresh machine, set up, start a destination and
# a source gateway over virtual ports, migrate a VM memory trace, and print
# what moved, the savings, and the check that the images match.
#   * as root: two hde-gateway processes in two network namespaces joined by
#     a veth pair (net_af_packet), like two data centres on one wire;
#   * otherwise: one process, --role loopback over a net_ring pair.
# Then hde-estimate puts the same trace beside QEMU's own figures.
# Uses ../shared/corpus/dev when present, else a generated trace.
#   scripts/demo.sh [TRACE_DIR] [--mode datacenter|internet|hybrid]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
scripts/setup.sh "$BUILD" >/dev/null

TRACE= MODE=datacenter
while [ $# -gt 0 ]; do
  case "$1" in
    --mode) MODE=$2; shift 2 ;;
    *) TRACE=$1; shift ;;
  esac
done
WORK=$(mktemp -d /tmp/hde-demo.XXXXXX)
NS_A=hde-demo-a NS_B=hde-demo-b
cleanup() {
  ip netns del "$NS_A" 2>/dev/null || true
  ip netns del "$NS_B" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ -z "$TRACE" ]; then
  if [ -f ../shared/corpus/dev/manifest.json ]; then
    TRACE=../shared/corpus/dev
  else
    TRACE=$WORK/trace
    echo "demo: no corpus here; generating a 64 MiB trace in $TRACE"
    python3 scripts/gen_trace.py --mib 64 --rounds 4 --out "$TRACE"
  fi
fi
WANT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["snapshots"][-1]["raw_sha256"])' "$TRACE/manifest.json")
GW=$BUILD/dataplane/hde-gateway
EAL="--no-huge -m 1024 --no-pci -l 0-1 --log-level=lib.eal:error"

# Both gateways seal every frame with AES-256-GCM under a key made here.
KEY=$WORK/frame.key
(umask 077 && head -c 32 /dev/urandom | base64 >"$KEY")

echo "=== migrating $TRACE ($MODE mode, frames encrypted) ==="
if [ "$(id -u)" -eq 0 ] && ip netns add "$NS_A" 2>/dev/null; then
  ip netns add "$NS_B"
  ip link add hde-va type veth peer name hde-vb
  ip link set hde-va netns "$NS_A"
  ip link set hde-vb netns "$NS_B"
  ip -n "$NS_A" link set hde-va up
  ip -n "$NS_B" link set hde-vb up
  ip netns exec "$NS_A" sysctl -qw net.ipv6.conf.hde-va.disable_ipv6=1 || true
  ip netns exec "$NS_B" sysctl -qw net.ipv6.conf.hde-vb.disable_ipv6=1 || true
  echo "demo: destination gateway in netns $NS_B, source gateway in netns $NS_A, veth between them"
  ip netns exec "$NS_B" "$GW" $EAL --file-prefix hde-demo-dst --vdev=net_af_packet0,iface=hde-vb -- \
    --role dest --sink "$WORK/out" --key-file "$KEY" --exit-on-complete --quiet >"$WORK/dst.log" 2>&1 &
  DPID=$!
  sleep 1
  ip netns exec "$NS_A" "$GW" $EAL --file-prefix hde-demo-src --vdev=net_af_packet0,iface=hde-va -- \
    --role source --trace "$TRACE" --mode "$MODE" --key-file "$KEY" --quiet | sed 's/^/[source] /'
  wait "$DPID" || { cat "$WORK/dst.log"; echo "demo: destination failed"; exit 1; }
  sed 's/^/[dest]   /' "$WORK/dst.log"
else
  echo "demo: not root (or no network namespaces): both gateways in one process over net_ring"
  "$GW" $EAL --file-prefix hde-demo -- --role loopback --trace "$TRACE" --sink "$WORK/out" \
    --mode "$MODE" --key-file "$KEY" --quiet
fi

GOT=$(sha256sum "$WORK/out/vm-0.raw" | cut -d' ' -f1)
echo
if [ "$GOT" = "$WANT" ]; then
  echo "demo: the destination's image equals the source's last snapshot: sha256 $GOT"
else
  echo "demo: IMAGE MISMATCH: destination $GOT, source $WANT"
  exit 1
fi

echo
echo "=== the same trace offline, beside QEMU's own figures (hde-estimate --reference) ==="
"$BUILD"/tools/estimate/hde-estimate -q --mode "$MODE" --reference "$TRACE"
