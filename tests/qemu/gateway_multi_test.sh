#!/usr/bin/env bash
# gateway_multi_test.sh — real QEMU 7.2 guests through hde-gateway (one
# process, --role loopback): two migrations at once, and the failures a
# user must see cleanly.
#
#   1. Two guests at once: VM 0 plain precopy, VM 1 multifd with 2 channels,
#      through one gateway (--qemu-listen A,B --qemu-connect C,D). Both
#      sources complete, the gateway exits 0, and for each VM the RAM the
#      destination QEMU holds (pmemsave) equals the RAM its source QEMU sent
#      (the gateway's --qemu-record, rebuilt by hde-qemu-dump, which
#      tests/qemu/stream_test.sh checks against QEMU's own loader). The
#      source's RAM is compared too and reported: under TCG, QEMU 7.2 now and
#      then does not resend pages the guest wrote (docs/qemu.md); when the
#      source and destination RAM are equal, the destination guest must beat
#      after `cont`.
#   2. The destination QEMU killed in the middle of a migration (the gateway
#      paced to 40 Mbit/s so that it lasts): the source QEMU's migration
#      fails, its guest keeps running (a new @@BEAT), and the gateway exits
#      non-zero naming the destination.
#   3. migrate_cancel on the source in the middle: the gateway exits non-zero
#      saying QEMU closed the migration early, and the destination QEMU does
#      not run a half-migrated guest (its incoming migration fails).
# Skips (77) without QEMU or the guest.
#   gateway_multi_test.sh HDE_GATEWAY HDE_QEMU_DUMP
set -u
GW=${1:?usage: gateway_multi_test.sh HDE_GATEWAY HDE_QEMU_DUMP}
DUMP=${2:?usage: gateway_multi_test.sh HDE_GATEWAY HDE_QEMU_DUMP}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
GUEST_SRC=$ROOT/../shared/guest
command -v qemu-system-x86_64 >/dev/null || { echo "skipped: qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"; exit 77; }
[ -x "$GUEST_SRC/build.sh" ] || { echo "skipped: no guest builder at $GUEST_SRC"; exit 77; }
T=$(mktemp -d /tmp/hde-qemu-multi.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T" "/var/run/dpdk/hqm$$"; }
trap cleanup EXIT
pass=0 fail=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
bad() { echo "not ok - $*"; fail=$((fail + 1)); }
note() { echo "# $*"; }

GUEST=${HDE_GUEST_DIR:-$ROOT/build/tests/qemu-guest}
if [ ! -s "$GUEST/vmlinuz" ] || [ ! -s "$GUEST/initramfs.cpio.gz" ]; then
  mkdir -p "$GUEST"
  "$GUEST_SRC/build.sh" "$GUEST" >"$T/guest.log" 2>&1 || { echo "skipped: guest build failed: $(tail -n 2 "$T/guest.log")"; exit 77; }
fi
MEM=128
qmp() { python3 "$HERE/qmp.py" "$@"; }
status() { qmp "$1" query-migrate 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("status", "none"))' 2>/dev/null; }

# vm NAME [dest]: a QEMU with the test guest; a destination waits (-incoming defer -S).
vm() {
  local name=$1 extra=()
  [ "${2:-}" = dest ] && extra=(-incoming defer -S)
  qemu-system-x86_64 -machine pc,accel=tcg -cpu max -smp 1 -m ${MEM}M -nographic -nodefaults \
    -serial file:"$T/$name.serial" -no-reboot -kernel "$GUEST/vmlinuz" -initrd "$GUEST/initramfs.cpio.gz" \
    -append "console=ttyS0 panic=-1 quiet wl=kv" -qmp unix:"$T/$name.qmp",server=on,wait=off "${extra[@]}" \
    2>"$T/$name.err" &
  PIDS+=($!)
  eval "PID_$name=$!"
  for _ in $(seq 100); do [ -S "$T/$name.qmp" ] && break; sleep 0.1; done
}
wait_ready() { for _ in $(seq 1800); do grep -q "@@READY" "$T/$1.serial" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
beats() { grep -c "@@BEAT" "$T/$1.serial" 2>/dev/null || echo 0; }
# multifd NAME N: the capability (and channels) on one QEMU.
multifd() {
  local on=false; [ "$2" -gt 0 ] && on=true
  qmp "$T/$1.qmp" migrate-set-capabilities "{\"capabilities\":[{\"capability\":\"multifd\",\"state\":$on}]}" >/dev/null
  [ "$2" -gt 0 ] && qmp "$T/$1.qmp" migrate-set-parameters "{\"multifd-channels\": $2}" >/dev/null
  return 0
}
incoming() { qmp "$T/$1.qmp" migrate-incoming "{\"uri\": \"unix:$T/$1.sock\"}" >/dev/null; }
wait_status() {  # QMP SECONDS: until completed/failed/cancelled
  local s
  for _ in $(seq $(($2 * 5))); do
    s=$(status "$1")
    case "$s" in completed|failed|cancelled) echo "$s"; return ;; esac
    sleep 0.2
  done
  echo "${s:-none}"
}
gateway() {  # LOG ARGS...: the loopback gateway, in the background (GWPID)
  local log=$1; shift
  "$GW" --no-huge -m 1024 --no-pci -l 0-1 --log-level=lib.eal:error --file-prefix "hqm$$" -- --role loopback \
    --ctl-sock "$T/ctl.sock" "$@" >"$log" 2>&1 &
  GWPID=$!
  PIDS+=($GWPID)
}
wait_sock() { for _ in $(seq 300); do [ -S "$1" ] && return 0; sleep 0.1; done; return 1; }
pages_diff() { python3 "$HERE/cmp_pages.py" "$1" "$2" | cut -d' ' -f1; }

stop_all() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; PIDS=(); }
wait_gateway() { for _ in $(seq 300); do kill -0 "$GWPID" 2>/dev/null || break; sleep 0.1; done; wait "$GWPID"; }
# migrate_slowly LOG: fresh s0 and d0, a gateway paced to 40 Mbit/s between
# them, and a migration 3 s under way.
migrate_slowly() {
  rm -f "$T"/*.qmp "$T"/*.sock "$T"/*.serial
  vm s0; vm d0 dest
  wait_ready s0 || bad "the source guest did not boot"
  incoming d0
  gateway "$1" --qemu-listen "unix:$T/g0.sock" --qemu-connect "unix:$T/d0.sock" --link-rate 40m --timeout 20
  wait_sock "$T/g0.sock"
  qmp "$T/s0.qmp" migrate "{\"uri\": \"unix:$T/g0.sock\"}" >/dev/null
  sleep 3
}

# --- 1. two guests at once -----------------------------------------------------
vm s0; vm s1; vm d0 dest; vm d1 dest
if ! wait_ready s0 || ! wait_ready s1; then
  bad "the source guests did not boot: $(tail -c 300 "$T/s0.serial")"
  echo "$pass passed, $fail failed, 0 skipped"; exit 1
fi
multifd s0 0; multifd d0 0; multifd s1 2; multifd d1 2
incoming d0; incoming d1
mkdir -p "$T/rec"
gateway "$T/gw1.log" --qemu-listen "unix:$T/g0.sock,unix:$T/g1.sock" --qemu-connect "unix:$T/d0.sock,unix:$T/d1.sock" \
  --qemu-record "$T/rec"
wait_sock "$T/g1.sock" || bad "the gateway did not listen: $(tail -n 5 "$T/gw1.log")"
t0=$(date +%s.%N)
qmp "$T/s0.qmp" migrate "{\"uri\": \"unix:$T/g0.sock\"}" >/dev/null
qmp "$T/s1.qmp" migrate "{\"uri\": \"unix:$T/g1.sock\"}" >/dev/null
st0=$(wait_status "$T/s0.qmp" 180) st1=$(wait_status "$T/s1.qmp" 180)
note "two migrations at once: $(echo "$(date +%s.%N) - $t0" | bc) s (VM 0: $st0, VM 1: $st1)"
wait_gateway; rc=$?
if [ "$st0" = completed ] && [ "$st1" = completed ] && [ "$rc" = 0 ]; then
  ok "two guests at once: both sources completed, the gateway exited 0"
else
  bad "two guests at once: sources $st0 / $st1, gateway exit $rc: $(grep -v ' s: ' "$T/gw1.log" | tail -n 15)"
fi
for i in 0 1; do
  st=$(wait_status "$T/d$i.qmp" 30)
  qmp "$T/s$i.qmp" pmemsave "{\"val\": 0, \"size\": $((MEM << 20)), \"filename\": \"$T/s$i.ram\"}" >/dev/null
  qmp "$T/d$i.qmp" pmemsave "{\"val\": 0, \"size\": $((MEM << 20)), \"filename\": \"$T/d$i.ram\"}" >/dev/null
  for _ in $(seq 50); do [ -s "$T/d$i.ram" ] && [ -s "$T/s$i.ram" ] && break; sleep 0.1; done
  sleep 0.5
  chans=$(ls "$T/rec/vm-$i"/multifd-*.bin 2>/dev/null)
  # shellcheck disable=SC2086
  if ! "$DUMP" --image "$T/r$i.img" "$T/rec/vm-$i/main.bin" $chans >"$T/dump$i.txt" 2>&1; then
    bad "VM $i: hde-qemu-dump could not read what the source QEMU sent: $(tail -n 3 "$T/dump$i.txt")"
    continue
  fi
  # Destination pages that are neither what the stream says nor the source's
  # (cmp_pages.py: a page sent twice in one multifd sync interval has no order).
  sent=$(python3 "$HERE/cmp_pages.py" "$T/r$i.img" "$T/d$i.ram" "$T/s$i.ram" | cut -d' ' -f1)
  src=$(pages_diff "$T/s$i.ram" "$T/d$i.ram")
  if [ "$st" = completed ] && [ "$sent" = 0 ]; then
    ok "VM $i: the destination QEMU holds exactly the RAM its source QEMU sent (destination status $st)"
  else
    bad "VM $i: destination status $st, $sent pages differ from what the source QEMU sent"
  fi
  qmp "$T/d$i.qmp" cont >/dev/null
  if [ "$src" = 0 ]; then
    b=0
    for _ in $(seq 300); do b=$(beats d$i); [ "$b" -gt 0 ] && break; sleep 0.1; done
    if [ "$b" -gt 0 ]; then ok "VM $i: source and destination RAM equal, the destination guest beats"
    else bad "VM $i: RAM equal but the destination guest does not beat: $(tail -c 300 "$T/d$i.serial")"; fi
  else
    note "VM $i: the source QEMU's RAM differs from what it sent in $src pages (QEMU 7.2 under TCG, docs/qemu.md)"
  fi
done
stop_all

# --- 2. the destination QEMU dies --------------------------------------------------
migrate_slowly "$T/gw2.log"
before=$(beats s0)
{ kill -9 "$PID_d0"; wait "$PID_d0"; } 2>/dev/null
st=$(wait_status "$T/s0.qmp" 40)
wait_gateway; rc=$?
after=$before
for _ in $(seq 300); do after=$(beats s0); [ "$after" -gt "$before" ] && break; sleep 0.1; done
run=$(qmp "$T/s0.qmp" query-status 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])' 2>/dev/null)
if [ "$st" = failed ] && [ "$run" = running ] && [ "$after" -gt "$before" ] && [ "$rc" != 0 ] &&
   grep -q "destination" "$T/gw2.log"; then
  ok "destination QEMU killed: the source migration failed, its guest runs on (beat $after), the gateway exited $rc: $(grep -m1 'destination failed' "$T/gw2.log")"
else
  bad "destination QEMU killed: source status $st, guest $run (beats $before -> $after), gateway exit $rc: $(grep -v ' s: ' "$T/gw2.log" | tail -n 8)"
fi
stop_all

# --- 3. migrate_cancel on the source ------------------------------------------------
migrate_slowly "$T/gw3.log"
qmp "$T/s0.qmp" migrate_cancel >/dev/null
st=$(wait_status "$T/s0.qmp" 20)
wait_gateway; rc=$?
dst=$(status "$T/d0.qmp")
alive=yes; kill -0 "$PID_d0" 2>/dev/null || alive=no
dst_run=$(qmp "$T/d0.qmp" query-status 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])' 2>/dev/null)
if [ "$st" = cancelled ] && [ "$rc" != 0 ] && grep -q "before RAM was complete" "$T/gw3.log" && [ "$dst_run" != running ]; then
  ok "migrate_cancel: the source cancelled, the gateway exited $rc and said so, the destination QEMU did not run the guest (alive $alive, migration ${dst:-gone})"
else
  bad "migrate_cancel: source $st, gateway exit $rc, destination ${dst_run:-gone}: $(grep -v ' s: ' "$T/gw3.log" | tail -n 6)"
fi
echo "$pass passed, $fail failed, 0 skipped"
[ "$fail" = 0 ]
