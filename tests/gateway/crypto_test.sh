#!/usr/bin/env bash
# crypto_test.sh — frames sealed with AES-256-GCM (--key-file), end to end.
#   1. one process (net_ring): key file checks, the mode rule, a sealed
#      migration under loss, duplication and reordering is byte-exact;
#   2. two processes over net_af_packet on veth in network namespaces (root):
#      a capture of the link holds page content in clear without a key and
#      none with one; tampered frames (a flipped bit with the CRC recomputed),
#      replays (of this run and of an earlier one) and frames sealed with
#      another key are dropped and counted while the image stays exact; a
#      destination with another key: both sides give up within --timeout and
#      say why; a key rotated on both sides mid-migration loses nothing.
# Exit 77 (skipped) when nothing could run; part 2 alone is skipped, visibly,
# without root.
#   crypto_test.sh path/to/hde-gateway path/to/hdectl
set -uo pipefail
GW=$1
CTL=$2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d /tmp/hde-crypto.XXXXXX)
EAL="--no-huge -m 1024 --no-pci -l 0-1 --log-level=lib.eal:error"
NS_A=hdeca$$ NS_B=hdecb$$
pass=0 fail=0 skip=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
bad() { echo "not ok - $*"; fail=$((fail + 1)); }
cleanup() {
  ip netns del "$NS_A" 2>/dev/null
  ip netns del "$NS_B" 2>/dev/null
  [ -n "${KEEP:-}" ] || rm -rf "$T"  # KEEP=1: keep logs and captures
}
trap cleanup EXIT
sha() { sha256sum "$1" 2>/dev/null | cut -d' ' -f1; }
# counter NAME LOG: the value after "NAME " in the summary's crypto line.
counter() { sed -n "s/.*crypto: .*[ ,]$1 \([0-9]*\).*/\1/p" "$2" | tail -1; }

(umask 077 && head -c 32 /dev/urandom | base64 >"$T/a.key" && head -c 32 /dev/urandom | base64 >"$T/b.key")
GEN=mib=64,rounds=3,dirty=0.2,seed=11

# --- 1. one process ------------------------------------------------------------
cp "$T/a.key" "$T/open.key" && chmod 644 "$T/open.key"
"$GW" $EAL --file-prefix "hdec$$" -- --role loopback --gen mib=8 --sink "$T/x" --key-file "$T/open.key" >"$T/l.log" 2>&1
if [ $? -ne 0 ] && grep -q "chmod 600" "$T/l.log"; then
  ok "a key file readable by others is refused, and the message says how to fix it"
else
  bad "key file mode 0644 accepted or no clear message"; tail -n 3 "$T/l.log"
fi
"$GW" $EAL --file-prefix "hdec$$" -- --role loopback --gen mib=8 --sink "$T/x" --mode internet >"$T/l.log" 2>&1
if [ $? -ne 0 ] && grep -q "give --key-file" "$T/l.log"; then
  ok "internet mode without a key refuses to start (one line says why)"
else
  bad "internet mode ran without a key"; tail -n 3 "$T/l.log"
fi
if "$GW" $EAL --file-prefix "hdec$$" -- --role loopback --gen mib=8 --sink "$T/x" --mode internet --no-encrypt \
     >"$T/l.log" 2>&1 && grep -q "frames travel in clear" "$T/l.log" && ! grep -q "crypto:" "$T/l.log"; then
  ok "internet mode with --no-encrypt runs in clear and says so"
else
  bad "--no-encrypt"; tail -n 5 "$T/l.log"
fi
want=$("$GW" $EAL --file-prefix "hdec$$" -- --role loopback --gen "$GEN" --sink "$T/lb" --key-file "$T/a.key" \
         --mode internet --impair loss=0.03,dup=0.02,reorder=0.05,seed=9 --timeout 60 --quiet 2>"$T/lb.err" \
       | tee "$T/lb.log" | sed -n 's/.*final image sha256 \([0-9a-f]*\).*/\1/p')
sealed=$(counter sealed "$T/lb.log") opened=$(counter opened "$T/lb.log") af=$(counter auth_fail "$T/lb.log")
if [ -n "$want" ] && [ "$(sha "$T/lb/vm-0.raw")" = "$want" ] && [ "${sealed:-0}" -gt 1000 ] &&
   [ "${opened:-0}" -gt 1000 ] && [ "$af" = 0 ]; then
  ok "sealed loopback migration under loss, duplication and reordering: image exact ($sealed sealed, $opened opened, 0 auth failures)"
else
  bad "sealed loopback migration (sealed ${sealed:-?} opened ${opened:-?} auth_fail ${af:-?})"; tail -n 20 "$T/lb.log" "$T/lb.err"
fi
WANT=$want

# --- 2. two processes over veth -----------------------------------------------------
if [ "$(id -u)" -ne 0 ] || ! ip netns add "$NS_A" 2>/dev/null; then
  echo "ok - two-gateway tests # SKIP need root and network namespaces (ip netns)"
  skip=$((skip + 1))
elif ! command -v tcpdump >/dev/null; then
  echo "ok - two-gateway tests # SKIP tcpdump is not installed (scripts/setup.sh installs it)"
  skip=$((skip + 1))
else
  ip netns add "$NS_B"
  ip link add "ca$$" type veth peer name "cb$$"
  ip link set "ca$$" netns "$NS_A"
  ip link set "cb$$" netns "$NS_B"
  ip -n "$NS_A" link set "ca$$" up
  ip -n "$NS_B" link set "cb$$" up
  ip netns exec "$NS_A" sysctl -qw "net.ipv6.conf.ca$$.disable_ipv6=1"
  ip netns exec "$NS_B" sysctl -qw "net.ipv6.conf.cb$$.disable_ipv6=1"

  # start_pair NAME "SRC ARGS" "DST ARGS" [CMD]: both gateways in the
  # background (pids in SPID/DPID), control sockets $T/NAME.s.ctl and
  # $T/NAME.d.ctl; CMD runs once the destination is up, before the source.
  start_pair() {
    local name=$1
    ip netns exec "$NS_B" timeout 300 "$GW" $EAL --file-prefix "hdec$$d" --vdev="net_af_packet0,iface=cb$$" -- \
      --role dest --sink "$T/$name.out" --exit-on-complete --ctl-sock "$T/$name.d.ctl" $3 >"$T/$name.dst.log" 2>&1 &
    DPID=$!
    sleep 1
    [ -z "${4:-}" ] || eval "$4"
    ip netns exec "$NS_A" timeout 300 "$GW" $EAL --file-prefix "hdec$$s" --vdev="net_af_packet0,iface=ca$$" -- \
      --role source --gen "$GEN" --ctl-sock "$T/$name.s.ctl" $2 >"$T/$name.src.log" 2>&1 &
    SPID=$!
  }
  wait_pair() {  # NAME: 0 when both exit 0 and the image is exact
    wait "$SPID"; local s=$?
    wait "$DPID"; local d=$?
    [ $s -eq 0 ] && [ $d -eq 0 ] && [ "$(sha "$T/$1.out/vm-0.raw")" = "$WANT" ]
  }
  # FILE: tcpdump in the background (pid in CPID), on the destination's end
  # of the link: net_af_packet transmits past the kernel's taps (qdisc
  # bypass), so a capture sees what arrives, as a wiretap would.
  capture() {
    ip netns exec "$NS_B" tcpdump -i "cb$$" -Q in -s 0 -U -w "$1" udp port 47000 >/dev/null 2>&1 &
    CPID=$!
    sleep 1
  }
  # 64 strings of 32 bytes from the guest's pages (varied bytes, not runs).
  python3 - "$T/lb/vm-0.raw" >"$T/samples" <<'EOF'
import random, sys
d = open(sys.argv[1], "rb").read()
r = random.Random(5)
out = []
while len(out) < 64:
    o = r.randrange(0, len(d) - 32)
    s = d[o:o + 32]
    if len(set(s)) >= 20:
        out.append(s.hex())
print("\n".join(out))
EOF

  # Without a key, raw pages cross the link in clear: the capture holds them.
  capture "$T/clear.pcap"
  start_pair clear "--codec raw --timeout 60 --quiet" "--timeout 60 --quiet"
  wait_pair clear; rc=$?
  kill "$CPID" 2>/dev/null; wait "$CPID" 2>/dev/null
  clear_found=$(python3 "$ROOT/tests/gateway/replay.py" find "$T/clear.pcap" "$T/samples" | awk '{print $2}')
  if [ $rc -eq 0 ] && [ "${clear_found:-0}" -ge 16 ]; then
    ok "without a key the capture of the link holds guest memory: $clear_found of 64 page strings found"
  else
    bad "clear run (rc $rc, found ${clear_found:-?})"; tail -n 5 "$T/clear.src.log" "$T/clear.dst.log"
  fi
  # With a key: the same run, the capture holds none of it. Key B's run is
  # captured for the tampering test below.
  capture "$T/sealed.pcap"
  start_pair sealed "--codec raw --key-file $T/a.key --timeout 60 --quiet" "--key-file $T/a.key --timeout 60 --quiet"
  wait_pair sealed; rc=$?
  kill "$CPID" 2>/dev/null; wait "$CPID" 2>/dev/null
  found=$(python3 "$ROOT/tests/gateway/replay.py" find "$T/sealed.pcap" "$T/samples" | awk '{print $2}')
  nframes=$(python3 "$ROOT/tests/gateway/replay.py" count "$T/sealed.pcap")
  if [ $rc -eq 0 ] && [ "$found" = 0 ] && [ "${nframes:-0}" -ge 5000 ]; then
    ok "with --key-file on both: image exact, and the capture ($nframes sealed DATA frames) holds none of the 64 page strings"
  else
    bad "sealed run (rc $rc, found ${found:-?}, ${nframes:-?} DATA frames captured)"; tail -n 5 "$T/sealed.src.log" "$T/sealed.dst.log"
  fi
  capture "$T/other.pcap"
  start_pair other "--key-file $T/b.key --timeout 60 --quiet" "--key-file $T/b.key --timeout 60 --quiet"
  wait_pair other || bad "run under key B"
  kill "$CPID" 2>/dev/null; wait "$CPID" 2>/dev/null

  # Tampering while a paced migration under key A runs: flipped bits with a
  # recomputed CRC, replays of this run's frames and of an earlier run's,
  # frames sealed with key B. The destination drops and counts them all.
  # (Paced so that it outlasts the injections, which read captures of tens of
  # thousands of frames: at 30 Mbit/s it once ended before the last batch.)
  capture "$T/live.pcap"
  start_pair tamper "--key-file $T/a.key --link-rate 12m --timeout 60 --quiet" "--key-file $T/a.key --timeout 60"
  for i in $(seq 100); do  # until the capture holds some of this run's frames
    [ "$(python3 "$ROOT/tests/gateway/replay.py" count "$T/live.pcap" 2>/dev/null)" -ge 300 ] 2>/dev/null && break
    sleep 0.2
  done
  kill "$CPID" 2>/dev/null; wait "$CPID" 2>/dev/null
  R="ip netns exec $NS_A python3 $ROOT/tests/gateway/replay.py send"
  $R "$T/live.pcap" "ca$$" flip 300 >"$T/inj.log" && $R "$T/live.pcap" "ca$$" asis 300 >>"$T/inj.log" &&
    $R "$T/sealed.pcap" "ca$$" asis 300 >>"$T/inj.log" && $R "$T/other.pcap" "ca$$" asis 300 >>"$T/inj.log"
  inj=$?
  if wait_pair tamper && [ $inj -eq 0 ]; then
    ok "tampered, replayed and foreign frames injected mid-migration: image exact"
  else
    bad "tampering run (inject rc $inj)"; cat "$T/inj.log"; tail -n 8 "$T/tamper.src.log" "$T/tamper.dst.log"
  fi
  L=$T/tamper.dst.log
  af=$(counter auth_fail "$L") uk=$(counter unknown_key "$L") rp=$(counter replayed "$L")
  stale=$(sed -n 's/.*stale_epoch \([0-9]*\).*/\1/p' "$L" | tail -1)
  # The flipped frames fail their tag; key B's frames carry an unknown key id
  # (or, 1 time in 256, the same id and then fail their tag).
  [ "${af:-0}" -ge 300 ] && ok "flipped bits with a recomputed CRC: dropped and counted (auth_fail $af)" \
    || bad "flipped frames not counted as auth_fail ($af): $(grep crypto: "$L")"
  [ $(( ${uk:-0} + ${af:-0} )) -ge 600 ] && ok "frames sealed with another key: dropped and counted (unknown_key $uk)" \
    || bad "foreign-key frames not counted (unknown_key $uk auth_fail $af)"
  [ "${rp:-0}" -ge 1 ] && [ "${stale:-0}" -ge 1 ] &&
    ok "replays dropped and counted: of this run (replayed $rp), of an earlier run (stale_epoch $stale)" \
    || bad "replays not counted (replayed ${rp:-?} stale_epoch ${stale:-?})"

  # Authentic frames of an earlier run, replayed from the source's address
  # but another UDP port before the source starts: the destination must not
  # take its reply address from them (its ACKs would go there, and the
  # migration would stall); it learns it from authentic new frames only.
  start_pair divert "--key-file $T/a.key --timeout 30 --quiet" "--key-file $T/a.key --timeout 30" \
    '$R "$T/sealed.pcap" "ca$$" port 20 >"$T/divert.inj" 2>&1; sleep 0.5'
  if wait_pair divert && grep -q "sent 20 port frames" "$T/divert.inj"; then
    ok "authentic frames replayed from another UDP port first: the ACKs still reach the source, image exact"
  else
    bad "diverting replay ($(cat "$T/divert.inj"))"; tail -n 6 "$T/divert.src.log" "$T/divert.dst.log"
  fi

  # Another key at the destination: nothing decodes, both give up within
  # --timeout, each saying why.
  start_pair wrong "--key-file $T/a.key --timeout 10" "--key-file $T/b.key --timeout 20"
  t0=$(date +%s)
  wait "$SPID"; s=$?
  wait "$DPID"; d=$?
  took=$(( $(date +%s) - t0 ))
  if grep -q "port 0 (dest): RX 0 frames" "$T/wrong.dst.log"; then
    # Seen once on a loaded machine: the destination's af_packet port took
    # no frame at all (not even the source's ARP replies), so nothing can be
    # judged. Not explained yet (docs/security.md); reported, not passed.
    echo "ok - destination with another key # SKIP the veth delivered nothing to the destination's port (RX 0)"
    skip=$((skip + 1))
  elif [ $s -ne 0 ] && [ $d -ne 0 ] && [ $took -le 45 ] &&
     grep -q "destination rejects our frames" "$T/wrong.src.log" &&
     grep -q "failed authentication" "$T/wrong.dst.log" && [ ! -s "$T/wrong.out/vm-0.raw" ]; then
    ok "destination with another key: both give up in ${took} s with a reason ($(grep -o 'destination rejects[^:]*' "$T/wrong.src.log" | head -1))"
  else
    bad "wrong key (src rc $s, dst rc $d, $took s)"; tail -n 4 "$T/wrong.src.log" "$T/wrong.dst.log"
  fi

  # Key rotation mid-migration: destination first, then the source; frames
  # switch to the new key once both hold it; nothing fails authentication.
  start_pair rotate "--key-file $T/a.key --link-rate 30m --timeout 60" "--key-file $T/a.key --timeout 60"
  for i in $(seq 50); do [ -S "$T/rotate.s.ctl" ] && [ -S "$T/rotate.d.ctl" ] && break; sleep 0.2; done
  sleep 1
  r1=$("$CTL" -s "$T/rotate.d.ctl" key rotate "$T/b.key" 2>&1)
  sleep 0.5
  r2=$("$CTL" -s "$T/rotate.s.ctl" key rotate "$T/b.key" 2>&1)
  sleep 0.5
  mid=$("$CTL" -s "$T/rotate.s.ctl" --format json show crypto 2>/dev/null)
  if wait_pair rotate; then
    ok "key rotated on both gateways mid-migration: image exact"
  else
    bad "rotation run ($r1 / $r2)"; tail -n 8 "$T/rotate.src.log" "$T/rotate.dst.log"
  fi
  bad_total=0
  for L in "$T/rotate.src.log" "$T/rotate.dst.log"; do
    for c in auth_fail unknown_key seal_fail; do
      v=$(counter $c "$L"); bad_total=$((bad_total + ${v:-1}))
    done
  done
  rot=$(grep -c "rotations 1;" "$T/rotate.src.log" "$T/rotate.dst.log" | awk -F: '{s+=$2} END {print s}')
  newid=$(echo "$mid" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["key_id"], j["sending_with"])' 2>/dev/null)
  if [ "$bad_total" = 0 ] && [ "$rot" = 2 ] && [ -n "$newid" ] && [ "${newid% *}" = "${newid#* }" ]; then
    ok "no frame lost to the switch: 0 auth_fail, unknown_key and seal_fail on both sides; source sends under the new key id ${newid% *}"
  else
    bad "rotation counters (bad $bad_total, rotations $rot, key/sending '$newid')"; grep "crypto:" "$T/rotate.src.log" "$T/rotate.dst.log"
  fi
fi

echo "# $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ] || exit 1
[ $pass -eq 0 ] && exit 77
exit 0
