#!/usr/bin/env bash
# gateway_test.sh — a real, running QEMU 7.2 guest migrates THROUGH
# hde-gateway. One gateway process in --role loopback holds a source and a
# destination gateway joined by a net_ring pair:
#
#   source QEMU --> [capture.py] --> unix:gw.sock  hde-gateway  --> unix:dstN.sock  destination QEMU
#   (QMP migrate)   (records every   (--qemu-listen; (loopback,     (--qemu-connect)  (-incoming defer -S,
#                    channel, relays) it creates it)  net_ring)                         migrate-incoming)
#
# The source sees an ordinary destination, the destination an ordinary
# source. The guest is the one tests/qemu/stream_test.sh uses
# (../shared/guest, 128 MiB, wl=kv, TCG, -cpu max; built into
# build/tests/qemu-guest, or $HDE_GUEST_DIR, on first use). It boots once and
# runs on between the cases (`cont` after each migration).
#
# Why the recording relay: under TCG, QEMU 7.2 itself now and then does not
# send the final contents of some pages, in plain precopy (seen often, see
# ../shared/qemu/NOTES.md) AND in multifd (seen here: 205 of 32 768 pages in
# a 7.7 s multifd migration through the gateway, where the recording of the
# source's own channels lacked exactly the pages the destination lacked; the
# gateway had delivered the stream exactly). A source-vs-destination compare
# alone cannot tell that from a gateway bug. So, when hde-qemu-dump is there
# (argument 2, else found next to the gateway in the build tree), capture.py
# (the relay of stream_test.sh) records what the source QEMU sent on every
# channel, in front of the gateway, and hde-qemu-dump --image turns the
# recording into the RAM it carries ("the stream"). The gateway is judged
# exactly: the destination's RAM must equal the stream's, page for page.
# Source vs stream is QEMU's own loss, reported, not blamed on the gateway.
#
#   1. plain precopy: the source reaches "completed" (120 s at most), the
#      gateway exits 0, the destination reaches "completed"; pmemsave of guest
#      RAM 0..128 MiB on both QEMUs; destination == stream (no excuse), and
#      destination == source unless the stream already differs from the
#      source (QEMU's own loss: "ok - ... (QEMU's own precopy also differs:
#      N pages)"); then `cont` on the destination, whose serial console must
#      show a @@BEAT within 30 s (its log is empty before: any beat is new;
#      a destination whose RAM lacks pages QEMU never sent may panic
#      instead: reported, not failed).
#   2. multifd, 2 channels (capability and multifd-channels set alike on both
#      QEMUs; the gateway passes the channel count through): the same checks.
#   3. xbzrle refusal (no relay: the source must see the gateway close): with
#      the xbzrle capability on at the source, the gateway must refuse (a line
#      containing "xbzrle", exit non-zero) and close the connection; the
#      source's migration must end "failed", the source guest must still run
#      (query-status) and print a @@BEAT numbered above the last one before
#      the failure, within 30 s. The source's downtime-limit is 10 ms in this
#      case so the migration keeps iterating while the gateway reads it: 7.2
#      does not announce xbzrle in the stream, the first XBZRLE records come
#      in the third pass over a page (pass 1 sends, pass 2 caches, pass 3
#      encodes), and a source that converged with them only in its last burst
#      might have written everything (no return path: "completed") before the
#      gateway parsed them.
# Without hde-qemu-dump, cases 1 and 2 fall back to comparing source and
# destination: when they differ, the same source migrates once more
# DIRECTLY to a fresh destination QEMU in this same harness; plain precopy
# passes if that differs too ("QEMU's own precopy also differs: N pages"),
# multifd fails whatever the direct run shows (its result is reported).
#
# Migration times (wall clock from `migrate` to the end, QEMU's total-time,
# downtime, bytes, dirty-sync rounds) and the gateway's summary lines are
# printed as "# " lines; on a failure, the gateway log (last 30 lines) and
# the destination QEMU's stderr.
#
# Output: "ok - ..." / "not ok - ..." per case, then "N passed, M failed,
# K skipped"; exit 1 if any case failed, 77 (skipped, with the reason) when
# qemu-system-x86_64 or the guest builder is missing, the guest cannot be
# built, or the gateway has no --qemu-listen. No root needed (--no-huge,
# net_ring). About a minute on 2 cores; every wait is bounded.
#
# Environment: HDE_GUEST_DIR (prebuilt guest), HDE_GW_EAL (EAL arguments of
# the gateway; default "--no-huge -m 1024 --no-pci -l 0-1
# --log-level=lib.eal:error"). Each gateway gets its own --file-prefix
# (hdeqgw<pid>-<case>); everything lives in one mktemp directory; every QEMU,
# gateway and relay runs under `timeout -k 5` and is stopped on exit (EXIT,
# INT, TERM traps). Case 3 leaves the source with xbzrle on and
# downtime-limit 10 ms: keep it last.
#   gateway_test.sh PATH/TO/hde-gateway [PATH/TO/hde-qemu-dump]
set -u
GW=${1:?usage: gateway_test.sh PATH/TO/hde-gateway [PATH/TO/hde-qemu-dump]}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
GUEST_SRC=$ROOT/../shared/guest
EAL=${HDE_GW_EAL:-"--no-huge -m 1024 --no-pci -l 0-1 --log-level=lib.eal:error"}
MEM=128
APPEND="console=ttyS0 panic=-1 quiet wl=kv"
PFX=hdeqgw$$

command -v qemu-system-x86_64 >/dev/null || { echo "skipped: qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"; exit 77; }
[ -x "$GUEST_SRC/build.sh" ] || { echo "skipped: no guest builder at $GUEST_SRC"; exit 77; }
[ -x "$GW" ] || { echo "gateway_test.sh: $GW is not an executable" >&2; exit 1; }
DUMP=${2:-$(dirname "$GW")/../tools/qemu_dump/hde-qemu-dump}
if [ ! -x "$DUMP" ]; then
  [ -n "${2:-}" ] && { echo "gateway_test.sh: $2 is not an executable" >&2; exit 1; }
  DUMP=""
fi

T=$(mktemp -d /tmp/hde-qemu-gw.XXXXXX)
SPID="" DPID="" GPID="" CPID="" GLOG=""
# PID...: TERM (timeout passes it on to its command and sends KILL 5 s
# later), then reap. Only the processes this script started.
stop() {
  local p
  for p in "$@"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
  for p in "$@"; do [ -n "$p" ] && wait "$p" 2>/dev/null; done
  return 0
}
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  trap - EXIT INT TERM
  stop "$CPID" "$GPID" "$DPID" "$SPID"
  rm -rf "$T"
  # DPDK runtime directories of this run's gateways (their prefixes carry our pid).
  rm -rf /var/run/dpdk/"$PFX"-* "${XDG_RUNTIME_DIR:-/tmp}"/dpdk/"$PFX"-* 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

pass=0 fail=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
bad() { echo "not ok - $*"; fail=$((fail + 1)); }
info() { echo "# $*"; }
# Exit 1 on any failure; 77 (skipped) when no case ran at all.
finish() {
  echo "$pass passed, $fail failed, 0 skipped"
  [ "$fail" -eq 0 ] || exit 1
  [ "$pass" -gt 0 ] || { echo "skipped: no case ran"; exit 77; }
  exit 0
}

# The gateway must have the QEMU path (the option came with issue 9).
# shellcheck disable=SC2086  # $EAL is a word list
if ! timeout -k 5 60 "$GW" $EAL --file-prefix "$PFX-help" -- --help </dev/null 2>&1 | grep -q -- '--qemu-listen'; then
  echo "skipped: $GW has no --qemu-listen"
  exit 77
fi

GUEST=${HDE_GUEST_DIR:-$ROOT/build/tests/qemu-guest}
if [ ! -s "$GUEST/vmlinuz" ] || [ ! -s "$GUEST/initramfs.cpio.gz" ]; then
  mkdir -p "$GUEST"
  "$GUEST_SRC/build.sh" "$GUEST" >"$T/guest.log" 2>&1 || { echo "skipped: guest build failed: $(tail -n 2 "$T/guest.log")"; exit 77; }
fi
if [ -n "$DUMP" ]; then
  info "the source's channels are recorded in front of the gateway; the gateway is judged against them ($DUMP)"
else
  info "no hde-qemu-dump: source vs destination only, with a direct QEMU-to-QEMU run when they differ"
fi

# ---- helpers -----------------------------------------------------------------
# Is PID running (not gone, not a zombie waiting to be reaped)?
alive() { [ -n "$1" ] && [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
# PID SECONDS: its exit status once it ends, 124 if it still runs then.
wait_exit() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do alive "$1" || break; sleep 0.1; done
  alive "$1" && return 124
  wait "$1"
}
# PATH SECONDS PID: until the unix socket PATH exists, while PID lives.
wait_sock() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    [ -S "$1" ] && return 0
    alive "$3" || return 1
    sleep 0.1
  done
  [ -S "$1" ]
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }
secs() { local ms=$(($(now_ms) - $1)); printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100)); }

# NAME [QEMU ARGS...]: a guest as stream_test.sh boots it; QMP at $T/NAME.qmp,
# serial console in $T/NAME-serial.log, stderr in $T/NAME.err. The caller takes $!.
qemu_run() {
  local name=$1
  shift
  rm -f "$T/$name.qmp" "$T/$name-serial.log"
  timeout -k 5 600 qemu-system-x86_64 -machine pc,accel=tcg -cpu max -smp 1 -m ${MEM}M -nographic -nodefaults \
    -serial file:"$T/$name-serial.log" -no-reboot -kernel "$GUEST/vmlinuz" -initrd "$GUEST/initramfs.cpio.gz" \
    -append "$APPEND" -qmp unix:"$T/$name.qmp",server=on,wait=off "$@" </dev/null 2>"$T/$name.err" &
}
# NAME COMMAND [JSON ARGS]: one QMP command (qmp.py prints the reply).
qmp() {
  local name=$1
  shift
  python3 "$HERE/qmp.py" "$T/$name.qmp" "$@"
}
# NAME SECONDS [PID]: poll query-migrate until completed, failed or
# cancelled, SECONDS pass, or PID ends; prints the last reply as JSON
# (qmp.py --wait-status cannot wait for "failed" without also waiting out a
# "completed").
mig_wait() {
  python3 - "$HERE" "$T/$1.qmp" "$2" "${3:-}" <<'EOF'
import json, sys, time
sys.path.insert(0, sys.argv[1])
from qmp import Qmp

def gone(pid):
    try:
        with open("/proc/%s/status" % pid) as f:
            return any(l.startswith("State:") and "Z" in l.split()[1] for l in f)
    except OSError:
        return True

try:
    q = Qmp(sys.argv[2], timeout=10)
    deadline = time.time() + float(sys.argv[3])
    while True:
        r = q.cmd("query-migrate")
        if r.get("status") in ("completed", "failed", "cancelled") or time.time() > deadline:
            break
        if sys.argv[4] and gone(sys.argv[4]):
            break
        time.sleep(0.2)
except Exception as e:  # the QEMU is gone, or its QMP failed
    r = {"status": "qmp error (%s)" % (e or type(e).__name__)}
print(json.dumps(r))
EOF
}
# JSON KEY[.KEY...]: one field of a reply, '' when absent.
jget() {
  python3 -c '
import json, sys
try:
    v = json.loads(sys.argv[1])
except ValueError:
    sys.exit(0)
for k in sys.argv[2].split("."):
    v = v.get(k) if isinstance(v, dict) else None
print("" if v is None else v)' "$1" "$2"
}
# JSON: QEMU's own figures of a migration, one line.
mig_info() {
  python3 -c '
import json, sys
try:
    r = json.loads(sys.argv[1])
except ValueError:
    sys.exit(0)
ram = r.get("ram", {})
s = "QEMU: total-time %s ms, downtime %s ms, %.1f MiB transferred, %s dirty-sync rounds" % (
    r.get("total-time", "?"), r.get("downtime", "?"), ram.get("transferred", 0) / 2**20,
    ram.get("dirty-sync-count", "?"))
if ram.get("multifd-bytes"):
    s += ", %.1f MiB on multifd" % (ram["multifd-bytes"] / 2**20)
if r.get("error-desc"):
    s = "QEMU: %s" % r["error-desc"]
x = r.get("xbzrle-cache")
if x:
    s += ", xbzrle: %s pages, %s cache misses" % (x.get("pages", "?"), x.get("cache-miss", "?"))
print(s)' "$1"
}
# NAME CAPS-JSON-LIST [PARAMS-JSON]
set_caps() {
  qmp "$1" migrate-set-capabilities "{\"capabilities\": $2}" >/dev/null || return 1
  [ -z "${3:-}" ] || qmp "$1" migrate-set-parameters "$3" >/dev/null
}
# NAME CAPS PARAMS: a paused destination QEMU (-incoming defer -S) listening
# on $T/NAME.sock; DPID.
dst_start() {
  rm -f "$T/$1.sock"
  qemu_run "$1" -incoming defer -S
  DPID=$!
  set_caps "$1" "$2" "$3" || return 1
  qmp "$1" migrate-incoming "{\"uri\": \"unix:$T/$1.sock\"}" >/dev/null || return 1
  wait_sock "$T/$1.sock" 10 "$DPID"
}
# CASE DST: the loopback gateway from the source's socket $T/gw.sock to
# $T/DST.sock; log in $T/gwCASE.log; GPID, GLOG. True once it listens.
gw_start() {
  GLOG=$T/gw$1.log
  rm -f "$T/gw.sock"
  # shellcheck disable=SC2086  # $EAL is a word list
  timeout -k 5 300 "$GW" $EAL --file-prefix "$PFX-$1" -- --role loopback \
    --qemu-listen "unix:$T/gw.sock" --qemu-connect "unix:$T/$2.sock" --quiet --timeout 60 \
    </dev/null >"$GLOG" 2>&1 &
  GPID=$!
  wait_sock "$T/gw.sock" 60 "$GPID"
}
# CHANNELS: capture.py on $T/cap.sock, recording CHANNELS connections into
# $T/cap/chan-N.bin and relaying each to $T/gw.sock; CPID.
relay_start() {
  rm -rf "$T/cap" "$T/cap.sock"
  timeout -k 5 200 python3 "$HERE/capture.py" "$T/cap.sock" "$T/cap" "$1" 180 "$T/gw.sock" </dev/null 2>"$T/cap.err" &
  CPID=$!
  wait_sock "$T/cap.sock" 10 "$CPID"
}
# LOG N: its last N lines as comments.
show() { [ -s "$1" ] && tail -n "$2" "$1" | sed 's/^/#   /'; }
show_failure() {
  info "gateway log (last 30 lines):"
  show "$GLOG" 30
  if [ -n "${1:-}" ] && [ -s "$T/$1.err" ] && grep -qv "terminating on signal" "$T/$1.err"; then
    info "destination QEMU stderr:"
    grep -v "terminating on signal" "$T/$1.err" | head -n 5 | sed 's/^/#   /'
  fi
  [ -s "$T/cap.err" ] && { info "relay:"; show "$T/cap.err" 3; }
}
# NAME: pmemsave of guest RAM 0..MEM MiB into $T/NAME.ram.
save_ram() {
  rm -f "$T/$1.ram"
  qmp "$1" pmemsave "{\"val\": 0, \"size\": $((MEM << 20)), \"filename\": \"$T/$1.ram\"}" >/dev/null
}
# FILE FILE: nothing when their first MEM MiB are equal, else cmp_pages.py's
# "N of M pages (first at ...)".
page_diff() { cmp -s -n $((MEM << 20)) "$1" "$2" || python3 "$HERE/cmp_pages.py" "$1" "$2"; }
# STREAM DEST SOURCE: the destination pages that are neither what the stream
# says nor the source's final content (the gateway's faults; a page QEMU sent
# twice in one multifd sync interval on two channels has no order in the
# stream, and the source's content is then right); nothing when none.
fault_diff() {
  cmp -s -n $((MEM << 20)) "$1" "$2" && return
  local r; r=$(python3 "$HERE/cmp_pages.py" "$1" "$2" "$3")
  case "$r" in "0 of "*) ;; *) echo "$r" ;; esac
}
# SERIAL-LOG: the number of its last @@BEAT line ('' if none).
last_beat() { grep -ao '@@BEAT [0-9]*' "$1" 2>/dev/null | tail -n 1 | cut -d' ' -f2; }
# SERIAL-LOG ABOVE SECONDS PID: until a @@BEAT numbered above ABOVE shows
# (ABOVE -1: any), while the QEMU PID runs (a guest that panics ends it:
# panic=-1, -no-reboot); BEAT holds it.
wait_beat() {
  local i
  BEAT=""
  for ((i = 0; i < $3 * 5; i++)); do
    BEAT=$(last_beat "$1")
    [ -n "$BEAT" ] && [ "$BEAT" -gt "$2" ] && return 0
    alive "$4" || return 1
    sleep 0.2
  done
  return 1
}
# After a case: no relay, gateway or destination; the source runs on (a
# migration still active is cancelled first).
end_case() {
  stop "$CPID" "$GPID" "$DPID"
  CPID="" GPID="" DPID=""
  if [ "$(jget "$(qmp src query-migrate 2>/dev/null)" status)" = active ]; then
    qmp src migrate_cancel >/dev/null 2>&1
    mig_wait src 30 >/dev/null
  fi
  qmp src cont >/dev/null 2>&1
  rm -rf "$T"/*.ram "$T/cap"
}
# URI [SECONDS] [PID]: migrate the source there and wait (120 s unless told;
# sooner if PID ends); MJSON, MST (status), MSECS.
migrate_src() {
  local t0
  t0=$(now_ms)
  MJSON="" MST="" MSECS=""
  if ! qmp src migrate "{\"uri\": \"$1\"}" >/dev/null; then
    MST="migrate refused"
    return 1
  fi
  MJSON=$(mig_wait src "${2:-120}" "${3:-}")
  MSECS=$(secs "$t0")
  MST=$(jget "$MJSON" status)
  [ "$MST" = completed ]
}

# ---- the source ----------------------------------------------------------------
BOOT0=$(now_ms)
qemu_run src
SPID=$!
for _ in $(seq 1200); do grep -q "@@READY" "$T/src-serial.log" 2>/dev/null && break; alive "$SPID" || break; sleep 0.1; done
if ! grep -q "@@READY" "$T/src-serial.log" 2>/dev/null; then
  bad "source guest did not boot: $(tail -c 300 "$T/src-serial.log" 2>/dev/null) $(head -c 300 "$T/src.err")"
  finish
fi
info "source guest ready after $(secs "$BOOT0") s"

# ---- 1 and 2: a migration through the gateway --------------------------------------
# CASE DST CAPS PARAMS: without a recording, does QEMU's own migration lose
# pages here too? The same source, running again, straight into a fresh
# destination with the same capabilities. OWN: "exact", cmp_pages.py's
# figure, or "error: ...".
direct_run() {
  local dd=dst${1}direct dst_st
  qmp src cont >/dev/null 2>&1
  sleep 2
  if dst_start "$dd" "$3" "$4"; then
    migrate_src "unix:$T/$dd.sock"
    info "$2, direct QEMU to QEMU: source $MST after $MSECS s ($(mig_info "$MJSON"))"
    dst_st=$(jget "$(mig_wait "$dd" 30)" status)
    if [ "$MST" = completed ] && [ "$dst_st" = completed ] && save_ram src && save_ram "$dd"; then
      OWN=$(page_diff "$T/src.ram" "$T/$dd.ram")
      OWN=${OWN:-exact}
    else
      OWN="error: direct migration did not complete (source: ${MST:-?}; destination: ${dst_st:-?})"
    fi
  else
    OWN="error: the direct run's destination QEMU did not listen"
  fi
  stop "$DPID"
  DPID=""
}

# CASE NAME MULTIFD-CHANNELS (0: plain precopy)
through_gateway() {
  local n=$1 name=$2 ch=$3 d=dst$1 caps params="" grc crc dj dst_st beat_src msecs uri i
  if [ "$ch" -gt 0 ]; then
    caps='[{"capability": "multifd", "state": true}]'
    params="{\"multifd-channels\": $ch}"
  else
    caps='[{"capability": "multifd", "state": false}]'
  fi
  if ! set_caps src "$caps" "$params" || ! set_caps src '[{"capability": "xbzrle", "state": false}]'; then
    bad "$name: the source QEMU refused the capabilities"
    end_case
    return
  fi
  if ! dst_start "$d" "$caps" "$params"; then
    bad "$name: the destination QEMU did not listen on $d.sock: $(head -c 300 "$T/$d.err")"
    end_case
    return
  fi
  if ! gw_start "$n" "$d"; then
    bad "$name: hde-gateway did not create its socket (listen unix:$T/gw.sock)"
    show_failure "$d"
    end_case
    return
  fi
  uri=unix:$T/gw.sock
  if [ -n "$DUMP" ]; then
    if ! relay_start $((ch + 1)); then
      bad "$name: the recording relay did not listen"
      show_failure "$d"
      end_case
      return
    fi
    uri=unix:$T/cap.sock
  fi
  beat_src=$(last_beat "$T/src-serial.log")
  migrate_src "$uri" 120 "$GPID"
  case "$MST" in
    completed | failed | cancelled) ;;
    *)  # The gateway ended first: a relay would keep the source waiting.
      stop "$CPID"
      CPID=""
      MJSON=$(mig_wait src 20)
      MST=$(jget "$MJSON" status) ;;
  esac
  msecs=$MSECS
  info "$name through hde-gateway: source $MST after $msecs s ($(mig_info "$MJSON"))"
  wait_exit "$GPID" 60
  grc=$?
  [ $grc -eq 124 ] || GPID=""
  crc=0
  if [ -n "$CPID" ]; then
    wait_exit "$CPID" 20
    crc=$?
    [ $crc -eq 124 ] || CPID=""
  fi
  dj=$(mig_wait "$d" 30)
  dst_st=$(jget "$dj" status)
  if [ "$MST" != completed ] || [ $grc -ne 0 ] || [ "$dst_st" != completed ] || [ $crc -ne 0 ]; then
    local g="exit $grc"
    [ $grc -eq 124 ] && g="still running 60 s after the source"
    bad "$name: migration through the gateway did not complete (source: ${MST:-?}; gateway: $g; destination: ${dst_st:-?}${DUMP:+; relay rc $crc})"
    show_failure "$d"
    end_case
    return
  fi
  grep -E '^ *(qemu (source|dest) VM|stream [0-9]+:)' "$GLOG" | sed 's/^ */#   gateway: /'

  # Guest RAM: source, destination and (recorded) what the source sent.
  local d_sd="" d_ss="" d_sg="" err=""
  if ! save_ram src || ! save_ram "$d"; then
    err="pmemsave failed"
  else
    d_sd=$(page_diff "$T/src.ram" "$T/$d.ram")
    if [ -n "$DUMP" ]; then
      local files=()
      for ((i = 0; i <= ch; i++)); do files+=("$T/cap/chan-$i.bin"); done
      if "$DUMP" --image "$T/stream.ram" "${files[@]}" >"$T/dump.log" 2>&1; then
        d_ss=$(page_diff "$T/src.ram" "$T/stream.ram")
        d_sg=$(fault_diff "$T/stream.ram" "$T/$d.ram" "$T/src.ram")
      else
        err="hde-qemu-dump could not read the recording: $(tail -n 2 "$T/dump.log" | tr '\n' ' ')"
      fi
    fi
  fi
  # The destination guest must run on.
  local beat_ok=1 beat_note
  if ! qmp "$d" cont >/dev/null; then
    beat_ok=0
    beat_note="cont refused on the destination"
  elif wait_beat "$T/$d-serial.log" -1 30 "$DPID"; then
    beat_note="destination guest beats on after cont (@@BEAT $BEAT; the source's last before migrating: ${beat_src:-none})"
  else
    beat_ok=0
    beat_note="no @@BEAT from the destination after cont ($(tail -c 200 "$T/$d-serial.log" 2>/dev/null | tr -d '\r' | tail -n 2 | tr '\n' ' '))"
  fi
  stop "$DPID"
  DPID=""
  local head="$name through hde-gateway: source completed in $msecs s, gateway exit 0"
  local what="QEMU's own precopy"
  [ "$ch" -gt 0 ] && what="QEMU's own multifd stream"
  if [ -n "$err" ]; then
    bad "$name: $err"
  elif [ -n "$d_sg" ]; then
    bad "$name through hde-gateway: the destination's RAM differs from what the source QEMU sent: $d_sg (source vs destination: ${d_sd:-equal}; source vs stream: ${d_ss:-equal})"
    show_failure "$d"
  elif [ -z "$d_sd" ] && [ $beat_ok -eq 1 ]; then
    local also=""
    [ -n "$DUMP" ] && also=" and what the source QEMU sent"
    ok "$head, destination RAM equals the source's ($((MEM << 8)) pages)$also, $beat_note"
  elif [ -z "$d_sd" ]; then
    bad "$head, destination RAM equals the source's, but $beat_note"
    show_failure "$d"
  elif [ -n "$DUMP" ]; then
    # The destination holds exactly what QEMU sent; QEMU did not send it all.
    local b="the destination guest beats on"
    [ $beat_ok -eq 1 ] || b="as may be with pages missing, $beat_note"
    info "$name: source vs destination $d_sd differ; source vs the recorded stream: ${d_ss:-equal}"
    ok "$head, destination RAM equals what the source QEMU sent, page for page; differs from the source's by ${d_sd%% *} pages ($what also differs: ${d_ss%% *} pages); $b"
  else
    # No recording: the brief's fallback, a direct QEMU-to-QEMU run.
    direct_run "$n" "$name" "$caps" "$params"
    if [ "$ch" -eq 0 ] && [ "$OWN" != exact ] && [ "${OWN#error}" = "$OWN" ]; then
      local b="the destination guest beats on"
      [ $beat_ok -eq 1 ] || b="as may be with pages missing, $beat_note"
      info "$name: through the gateway $d_sd differ; QEMU to QEMU directly $OWN differ"
      ok "$head; destination RAM differs by ${d_sd%% *} pages ($what also differs: ${OWN%% *} pages); $b"
    else
      local why="the same migration QEMU to QEMU directly: $OWN"
      [ "$OWN" = exact ] && why="the same migration QEMU to QEMU directly was exact"
      [ "$ch" -gt 0 ] && [ "$OWN" != exact ] && [ "${OWN#error}" = "$OWN" ] \
        && why="QEMU to QEMU directly, $OWN differ too (without a recording, multifd must be exact)"
      bad "$name through hde-gateway: destination RAM differs from the source's: $d_sd; $why; $beat_note"
      show_failure "$d"
    fi
  fi
  end_case
}

# ---- 3: xbzrle is refused ---------------------------------------------------------
refuse_xbzrle() {
  local name="xbzrle refused" d=dst3 grc beat0 line running
  if ! set_caps src '[{"capability": "multifd", "state": false}, {"capability": "xbzrle", "state": true}]' \
       '{"downtime-limit": 10}'; then
    bad "$name: the source QEMU refused the capabilities"
    end_case
    return
  fi
  if ! dst_start "$d" '[{"capability": "multifd", "state": false}]' ""; then
    bad "$name: the destination QEMU did not listen on $d.sock: $(head -c 300 "$T/$d.err")"
    end_case
    return
  fi
  if ! gw_start 3 "$d"; then
    bad "$name: hde-gateway did not create its socket"
    show_failure "$d"
    end_case
    return
  fi
  migrate_src "unix:$T/gw.sock" 60
  beat0=$(last_beat "$T/src-serial.log")
  info "$name: source $MST after $MSECS s ($(mig_info "$MJSON"))"
  wait_exit "$GPID" 30
  grc=$?
  [ $grc -eq 124 ] || GPID=""
  line=$(grep -i -m 1 xbzrle "$GLOG" 2>/dev/null)
  running=$(jget "$(qmp src query-status 2>/dev/null)" status)
  if [ "$MST" != failed ]; then
    bad "$name: the source's migration is '${MST:-?}' after $MSECS s, not 'failed'${line:+ (gateway: $line)}"
    show_failure "$d"
  elif [ $grc -eq 0 ] || [ $grc -eq 124 ] || [ -z "$line" ]; then
    bad "$name: source failed, but the gateway $([ $grc -eq 124 ] && echo "still runs" || echo "exited $grc") ${line:+saying: $line}${line:-without a line naming xbzrle}"
    show_failure "$d"
  elif [ "$running" != running ]; then
    bad "$name: the source guest is '$running' after the refusal, not running"
  elif ! wait_beat "$T/src-serial.log" "${beat0:--1}" 30 "$SPID"; then
    bad "$name: the source guest printed no @@BEAT after the refusal within 30 s (last: ${beat0:-none})"
  else
    ok "$name: the gateway said \"$line\" (exit $grc); the source's migration failed after $MSECS s and its guest runs on (@@BEAT ${beat0:-none} -> $BEAT)"
  fi
  end_case
}

through_gateway 1 "plain precopy" 0
through_gateway 2 "multifd, 2 channels" 2
refuse_xbzrle
info "whole test: $(secs "$BOOT0") s"
finish
