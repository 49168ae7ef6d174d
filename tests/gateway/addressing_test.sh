#!/usr/bin/env bash
# addressing_test.sh — real addressing end to end (docs/gateway.md,
# Addressing): frames go to the peer's MAC, found by ARP or given by
# --peer-mac, and the two ends settle MTU and window from the INIT.
#   0. one process over net_ring (--role loopback): each port resolves the
#      other's MAC by ARP, image byte-exact;
#   then two hde-gateway processes over net_af_packet on a veth pair between
#   two network namespaces (no IP addresses on the veth: the gateways answer
#   ARP for their own), a packet capture on the link (sniff.py):
#   1. ARP both ways: byte-exact; every HDE frame (data, ACK) carries the
#      peer's unicast MAC, none goes to broadcast; ARP requests and replies
#      seen, "resolving peer MAC of 198.18.0.2 via ARP" printed once;
#   2. --peer-mac on both sides: byte-exact, and no ARP request at all;
#   3. --peer-mac on the source only: the destination resolves the source by
#      ARP, which the source answers;
#   4. no destination: the source sends nothing but ARP, and gives up after
#      --timeout with a clear line;
#   5. a source MTU larger than the destination's: refused with a message on
#      both sides, both exit non-zero at once (not at the timeout), with
#      sealed frames (--key-file);
#   6. a source MTU smaller than the destination's: taken, byte-exact;
#   7. a source window larger than the destination's: the source keeps to
#      the destination's (no frame beyond its window), byte-exact, sealed;
#   8. --gateway-ip: the source resolves the router's MAC (the kernel on the
#      destination's veth holds the router's address) and sends there.
# Needs root (network namespaces, af_packet) for 1-7: without it they are
# skipped, saying why, and the test exits 77.
#   addressing_test.sh PATH/TO/hde-gateway
set -uo pipefail
GW=${1:?usage: addressing_test.sh HDE-GATEWAY}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d /tmp/hde-addr-test.XXXXXX)
NS_A=hde-ad-a-$$ NS_B=hde-ad-b-$$ VA=vaa$$ VB=vab$$
PFX=hdead$$
SNIFF_PIDS=
cleanup() {
  [ -n "$SNIFF_PIDS" ] && kill $SNIFF_PIDS 2>/dev/null
  ip netns del "$NS_A" 2>/dev/null
  ip netns del "$NS_B" 2>/dev/null
  rm -rf /var/run/dpdk/${PFX}* 2>/dev/null
  if [ -n "${HDE_TEST_KEEP:-}" ]; then echo "# logs kept in $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
pass=0 fail=0 skip=0
ok() { echo "ok - $1"; pass=$((pass + 1)); }
bad() { echo "not ok - $1"; fail=$((fail + 1)); }
EAL="--no-huge -m 1024 --no-pci -l 0-1 --log-level=lib.eal:error"
GEN="mib=48,rounds=3,dirty=0.1,seed=5"
got_sha() { sha256sum "$1/vm-0.raw" 2>/dev/null | cut -d' ' -f1; }
want_sha() { sed -n 's/.*final image sha256 \([0-9a-f]*\).*/\1/p' "$1" | head -1; }

# 0. One process over net_ring: the two ports find each other by ARP.
out=$T/lb
if timeout 300 "$GW" $EAL --file-prefix "${PFX}lb" -- --role loopback --gen "$GEN" --sink "$out" --timeout 60 \
     >"$T/lb.log" 2>&1 && [ "$(got_sha "$out")" = "$(want_sha "$T/lb.log")" ] \
   && grep -q "source: peer 198.18.0.2 is at .* (ARP" "$T/lb.log" && grep -q "dest: peer 198.18.0.1 is at" "$T/lb.log" \
   && grep -q "arp (source port .*): 198.18.0.2 at 02:48:44:45:00:02" "$T/lb.log"; then
  ok "loopback over net_ring: each port resolves the other by ARP, image sha256 matches"
else
  bad "loopback over net_ring"; tail -n 20 "$T/lb.log"
fi

if [ "$(id -u)" -ne 0 ] || ! ip netns add "$NS_A" 2>/dev/null; then
  echo "ok - two-process addressing cases # SKIP need root and network namespaces (ip netns)"
  skip=$((skip + 1))
  echo "$pass passed, $fail failed, $skip skipped"
  [ "$fail" -eq 0 ] || exit 1
  exit 77
fi
ip netns add "$NS_B"
ip link add "$VA" type veth peer name "$VB"
ip link set "$VA" netns "$NS_A"
ip link set "$VB" netns "$NS_B"
for ns_if in "$NS_A:$VA" "$NS_B:$VB"; do
  ns=${ns_if%%:*} ifc=${ns_if##*:}
  ip -n "$ns" link set "$ifc" mtu 9000 up
  ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$ifc.disable_ipv6=1"
done
MAC_A=$(ip -n "$NS_A" -o link show "$VA" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
MAC_B=$(ip -n "$NS_B" -o link show "$VB" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
echo "# $NS_A/$VA $MAC_A <-> $NS_B/$VB $MAC_B (MTU 9000, no addresses)"

# A capture of the link: one sniffer at each end (sniff.py counts what an
# end receives; net_af_packet's own transmissions bypass the kernel's taps),
# merged into $T/cap.json.
sniff_start() {
  rm -f "$T"/cap*.json*
  SNIFF_PIDS=
  ip netns exec "$NS_A" python3 "$ROOT/tests/gateway/sniff.py" "$VA" "$T/cap-a.json" &
  SNIFF_PIDS="$SNIFF_PIDS $!"
  ip netns exec "$NS_B" python3 "$ROOT/tests/gateway/sniff.py" "$VB" "$T/cap-b.json" &
  SNIFF_PIDS="$SNIFF_PIDS $!"
  for _ in $(seq 50); do [ -f "$T/cap-a.json.ready" ] && [ -f "$T/cap-b.json.ready" ] && break; sleep 0.1; done
}
sniff_stop() {
  kill -TERM $SNIFF_PIDS 2>/dev/null
  wait $SNIFF_PIDS 2>/dev/null
  SNIFF_PIDS=
  cat "$T/cap-a.json" "$T/cap-b.json" >"$T/cap.json" 2>/dev/null
}
# Frames in the capture: cap KIND [DST] [SRC] [not] (a sum; empty DST or
# SRC: any; KIND hde: any HDE frame, "*": any frame, !arp: anything but ARP;
# "not" as 5th word: DST is the address the frames must NOT go to).
cap() {
  python3 - "$T/cap.json" "$@" <<'PY'
import json, sys
path, kind = sys.argv[1], sys.argv[2]
dst = sys.argv[3] if len(sys.argv) > 3 else ""
src = sys.argv[4] if len(sys.argv) > 4 else ""
neg = len(sys.argv) > 5 and sys.argv[5] == "not"
def kind_ok(k):
    if kind == "*": return True
    if kind == "hde": return k.startswith("hde")
    if kind == "!arp": return not k.startswith("arp")
    return k == kind
n = 0
for line in open(path):
    r = json.loads(line)
    if kind_ok(r["kind"]) and (not dst or ((r["dst"] != dst) if neg else (r["dst"] == dst))) \
       and (not src or r["src"] == src):
        n += r["n"]
print(n)
PY
}
# The gateway's own run time, from its summary line.
run_secs() { sed -n 's/.*hde-gateway summary (\([0-9.]*\) s).*/\1/p' "$1" | cut -d. -f1; }

# run_pair LABEL "SOURCE ARGS" "DEST ARGS" [source-first]: sets src_rc dst_rc
# took out; logs in $T/src.log $T/dst.log. The destination starts first
# (1 s ahead), or with source-first 3 s after the source.
run_pair() {
  out=$T/out-$1
  rm -rf "$out"
  local t0 spid dpid
  t0=$(date +%s)
  start_dest() {
    ip netns exec "$NS_B" timeout 300 "$GW" $EAL --file-prefix "${PFX}d" --vdev="net_af_packet0,iface=$VB" -- \
      --role dest --sink "$out" --exit-on-complete --timeout 60 $1 >"$T/dst.log" 2>&1 &
    dpid=$!
  }
  if [ "${4:-}" = source-first ]; then
    ip netns exec "$NS_A" timeout 300 "$GW" $EAL --file-prefix "${PFX}s" --vdev="net_af_packet0,iface=$VA" -- \
      --role source --gen "$GEN" --timeout 60 $2 >"$T/src.log" 2>&1 &
    spid=$!
    for _ in $(seq 300); do grep -q "resolving\|is at" "$T/src.log" 2>/dev/null && break; sleep 0.1; done
    sleep 3
    start_dest "$3"
    wait "$spid"
    src_rc=$?
  else
    start_dest "$3"
    sleep 1
    ip netns exec "$NS_A" timeout 300 "$GW" $EAL --file-prefix "${PFX}s" --vdev="net_af_packet0,iface=$VA" -- \
      --role source --gen "$GEN" --timeout 60 $2 >"$T/src.log" 2>&1
    src_rc=$?
  fi
  wait "$dpid"
  dst_rc=$?
  took=$(( $(date +%s) - t0 ))
}
show_logs() { tail -n 12 "$T/src.log" "$T/dst.log"; }

# 1. ARP both ways. The source starts first: it asks, retries, and learns
# the destination's MAC once that is up (from its reply, or its own request
# for the source, whichever comes first).
sniff_start
run_pair arp "" "" source-first
sniff_stop
want=$(want_sha "$T/src.log")
if [ $src_rc -eq 0 ] && [ $dst_rc -eq 0 ] && [ -n "$want" ] && [ "$(got_sha "$out")" = "$want" ]; then
  ok "ARP: source and destination exit 0, image sha256 matches"
else
  bad "ARP (source rc $src_rc, dest rc $dst_rc)"; show_logs
fi
n_res=$(grep -c "resolving peer MAC of 198.18.0.2 via ARP" "$T/src.log")
if [ "$n_res" = 1 ] && grep -q "source: peer 198.18.0.2 is at $MAC_B (ARP" "$T/src.log" \
   && grep -q "dest: peer 198.18.0.1 is at $MAC_A (ARP" "$T/dst.log"; then
  ok "ARP: 'resolving peer MAC of 198.18.0.2 via ARP' once; the source found $MAC_B, the destination $MAC_A"
else
  bad "ARP messages ($n_res resolving lines)"; grep -h "peer\|ARP" "$T/src.log" "$T/dst.log"
fi
data=$(cap hde-data "$MAC_B" "$MAC_A") acks=$(cap hde-ack "$MAC_A" "$MAC_B")
stray_s=$(cap hde "$MAC_B" "$MAC_A" not) stray_d=$(cap hde "$MAC_A" "$MAC_B" not)
bcast=$(cap '!arp' ff:ff:ff:ff:ff:ff)
areq=$(cap arp-request ff:ff:ff:ff:ff:ff "$MAC_A")
arep=$(( $(cap arp-reply "$MAC_A" "$MAC_B") + $(cap arp-request ff:ff:ff:ff:ff:ff "$MAC_B") ))
if [ "$data" -gt 100 ] && [ "$acks" -gt 0 ] && [ "$stray_s" = 0 ] && [ "$stray_d" = 0 ] && [ "$bcast" = 0 ] \
   && [ "$areq" -ge 2 ] && [ "$arep" -ge 1 ]; then
  ok "capture: $data data frames to $MAC_B, $acks ACKs to $MAC_A, 0 elsewhere, 0 broadcast but ARP ($areq requests from the source, retried until the destination was up; $arep ARP frames from it)"
else
  bad "capture: data $data, acks $acks, stray $stray_s/$stray_d, broadcast $bcast, arp $areq/$arep"; cat "$T/cap.json"
fi
if grep -Eq "arp \(source port 0\): 198.18.0.2 at $MAC_B \(resolved by ARP in [0-9.]+ ms\); requests sent ([2-9]|[1-9][0-9]+) .*resolved 1," "$T/src.log" \
   && grep -q "arp (dest port 0): 198.18.0.1 at $MAC_A" "$T/dst.log"; then
  ok "summary: arp lines name the resolved MACs and count requests and replies"
else
  bad "summary arp lines"; grep -h "arp (" "$T/src.log" "$T/dst.log"
fi

# 2. --peer-mac on both sides: no ARP request at all, and the image.
sniff_start
run_pair static "--peer-mac $MAC_B" "--peer-mac $MAC_A"
sniff_stop
data=$(cap hde-data "$MAC_B" "$MAC_A") areq=$(cap arp-request) stray=$(cap hde "$MAC_B" "$MAC_A" not)
if [ $src_rc -eq 0 ] && [ $dst_rc -eq 0 ] && [ "$(got_sha "$out")" = "$(want_sha "$T/src.log")" ] \
   && [ "$areq" = 0 ] && [ "$data" -gt 100 ] && [ "$stray" = 0 ] && ! grep -q "resolving" "$T/src.log" "$T/dst.log" \
   && grep -q "requests sent 0" "$T/src.log"; then
  ok "--peer-mac on both sides: image sha256 matches, $data data frames to $MAC_B, no ARP request"
else
  bad "--peer-mac (source rc $src_rc, dest rc $dst_rc, $areq ARP requests, $data data)"; show_logs
fi

# 3. --peer-mac on the source only: the destination asks, the source answers.
run_pair half "--peer-mac $MAC_B" ""
if [ $src_rc -eq 0 ] && [ $dst_rc -eq 0 ] && [ "$(got_sha "$out")" = "$(want_sha "$T/src.log")" ] \
   && grep -q "dest: peer 198.18.0.1 is at $MAC_A (ARP" "$T/dst.log" \
   && grep -Eq "arp \(source port 0\).*requests sent 0 received [1-9][0-9]*, replies sent [1-9]" "$T/src.log"; then
  ok "--peer-mac on the source only: the destination resolves it by ARP (the source answers), image matches"
else
  bad "--peer-mac on the source only (source rc $src_rc, dest rc $dst_rc)"; show_logs; grep -h "arp (" "$T/src.log" "$T/dst.log"
fi

# 4. Nobody answers: nothing but ARP leaves the source, which gives up after --timeout.
sniff_start
ip netns exec "$NS_A" timeout 120 "$GW" $EAL --file-prefix "${PFX}s" --vdev="net_af_packet0,iface=$VA" -- \
  --role source --gen "$GEN" --timeout 3 >"$T/src.log" 2>&1
src_rc=$?
sniff_stop
secs=$(run_secs "$T/src.log")
nonarp=$(cap '!arp' "" "$MAC_A")
areq=$(cap arp-request ff:ff:ff:ff:ff:ff "$MAC_A")
if [ $src_rc -eq 1 ] && [ "$(grep -c "resolving peer MAC of 198.18.0.2 via ARP" "$T/src.log")" = 1 ] \
   && grep -q "source: no ARP reply from peer 198.18.0.2 in 3 s" "$T/src.log" && [ "$nonarp" = 0 ] \
   && [ "$areq" -ge 3 ] && [ "${secs:-99}" -ge 3 ] && [ "${secs:-99}" -le 6 ]; then
  ok "no destination: $areq ARP requests (with back-off) and nothing else sent; the source gives up after --timeout 3 (ran ${secs} s) saying why"
else
  bad "unanswered ARP (rc $src_rc, $nonarp non-ARP frames, $areq requests, ran '${secs}' s)"; tail -n 5 "$T/src.log"
fi

# 5. The source's MTU is larger than the destination's: refused, both say why,
# at once. Both hold a key: the refusal travels in a sealed ACK.
(umask 077 && head -c 32 /dev/urandom | base64 >"$T/k.key")
run_pair mtu-refused "--mtu 9000 --key-file $T/k.key" "--mtu 1500 --key-file $T/k.key"
secs=$(run_secs "$T/src.log")
if [ $src_rc -ne 0 ] && [ $src_rc -lt 124 ] && [ $dst_rc -ne 0 ] && [ $dst_rc -lt 124 ] && [ "${secs:-99}" -le 20 ] \
   && grep -q "the destination refused the migration: our frames of up to 8972 bytes (MTU 9000) exceed the 1472" "$T/src.log" \
   && grep -q "refused: the source sends frames of up to 8972 bytes (MTU 9000), this destination takes at most 1472" "$T/dst.log"; then
  ok "MTU 9000 to a destination of MTU 1500 (sealed frames): refused, both sides say why and exit non-zero (the source ran ${secs} s, not its 60 s timeout)"
else
  bad "MTU refusal (source rc $src_rc, dest rc $dst_rc, source ran '${secs}' s)"; show_logs
fi

# 6. The source's MTU is smaller: taken, replies cut to fit.
run_pair mtu-smaller "--mtu 1500" "--mtu 9000"
if [ $src_rc -eq 0 ] && [ $dst_rc -eq 0 ] && [ "$(got_sha "$out")" = "$(want_sha "$T/src.log")" ] \
   && grep -q "the source's frames are up to 1472 bytes (MTU 1500), ours 8972: taken" "$T/dst.log"; then
  ok "MTU 1500 to a destination of MTU 9000: taken (replies cut to 1472 bytes), image sha256 matches"
else
  bad "smaller source MTU (source rc $src_rc, dest rc $dst_rc)"; show_logs
fi

# 7. The source's window is larger: it keeps to the destination's (told in
# sealed ACKs: both hold a key).
run_pair window "--window 65536 --key-file $T/k.key" "--window 1024 --key-file $T/k.key"
beyond=$(sed -n 's/.* \([0-9]*\) beyond window.*/\1/p' "$T/dst.log")
if [ $src_rc -eq 0 ] && [ $dst_rc -eq 0 ] && [ "$(got_sha "$out")" = "$(want_sha "$T/src.log")" ] \
   && grep -q "the source may hold 65536 frames in flight, our reorder window is 1024: it keeps to ours" "$T/dst.log" \
   && grep -q "the destination's reorder window is 1024 frames (ours 65536)" "$T/src.log" && [ "$beyond" = 0 ]; then
  ok "window 65536 to a destination of 1024 (sealed frames): the source keeps to 1024 (0 frames beyond the window), image matches"
else
  bad "window settlement (source rc $src_rc, dest rc $dst_rc, beyond window '$beyond')"; show_logs
fi

# 8. --gateway-ip: the source ARPs for a router, not for the peer. The
# kernel on the destination's veth plays the router (it owns 198.18.0.254
# there, so it answers ARP for it with that veth's MAC; the frames for
# 198.18.0.2 are not its own and it does not forward, so only the
# destination gateway takes them).
ip -n "$NS_B" addr add 198.18.0.254/24 dev "$VB"
sniff_start
run_pair gateway "--gateway-ip 198.18.0.254" ""
sniff_stop
ip -n "$NS_B" addr del 198.18.0.254/24 dev "$VB"
data=$(cap hde-data "$MAC_B" "$MAC_A") stray=$(cap hde "$MAC_B" "$MAC_A" not)
if [ $src_rc -eq 0 ] && [ $dst_rc -eq 0 ] && [ "$(got_sha "$out")" = "$(want_sha "$T/src.log")" ] \
   && grep -q "source: gateway 198.18.0.254 (next hop to 198.18.0.2) is at $MAC_B" "$T/src.log" \
   && grep -q "arp (source port 0): gateway 198.18.0.254 at $MAC_B" "$T/src.log" \
   && [ "$data" -gt 100 ] && [ "$stray" = 0 ]; then
  ok "--gateway-ip 198.18.0.254: the source resolves the router (the kernel's answer) and sends $data data frames to it, image matches"
else
  bad "--gateway-ip (source rc $src_rc, dest rc $dst_rc, $data data, $stray stray)"; show_logs; grep -h "gateway\|arp (" "$T/src.log"
fi

echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] || exit 1
[ "$skip" -eq 0 ] || exit 77
