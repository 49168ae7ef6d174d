#!/usr/bin/env bash
# bench_qemu.sh — issue 9's benchmark: QEMU 7.2's own live migration against
# the same migration carried by a pair of HDE gateways over a 100 Mbit/s
# bottleneck. The guest is ../shared/guest (256 MiB, wl=mixed, TCG, -cpu
# max; built into build/tests/qemu-guest on first use), which dirties about
# 12 - 16 MB/s: about the bottleneck's rate.
#
# Every case boots a fresh source QEMU and a fresh destination QEMU
# (-incoming defer, NOT -S: the destination resumes by itself, so the
# user-visible downtime can be measured), waits for the source guest's
# @@READY, sets downtime-limit 300 ms on the source and migrates; 120 s
# (--timeout) at most, then migrate_cancel and "not converged".
#
#   QEMU alone: the source migrates straight to the destination's unix socket,
#               max-bandwidth 12 500 000 B/s (100 Mbit/s), the only limit:
#     qemu-precopy         plain precopy
#     qemu-xbzrle          xbzrle capability on both QEMUs
#     qemu-multifd2        multifd, 2 channels
#     qemu-multifd2-zstd   multifd, 2 channels, multifd-compression zstd
#   Through HDE: source QEMU -> unix:gw.sock -> source hde-gateway (netns A,
#               af_packet on va, qdisc_bypass=0, --link-rate 100m) -> veth with
#               a tbf qdisc "rate 100mbit burst 32kbit latency 50ms" on va ->
#               destination hde-gateway (netns B, vb) -> unix:dst.sock ->
#               destination QEMU. QEMU's max-bandwidth unlimited (1e12 B/s;
#               7.2's default is 32 MiB/s), as docs/qemu.md says to use it:
#     hde-datacenter, hde-internet, hde-hybrid   plain precopy, --mode M
#     hde-datacenter-multifd2                    multifd 2 channels on both QEMUs
#
# Measured per case (CSV columns): converged (source "completed" in time),
# QEMU's total-time and downtime (source query-migrate), the bytes QEMU
# counted (ram.transferred; in 7.2 it already includes multifd-bytes, which
# is also given on its own; both count uncompressed page bytes, also with
# zstd), the user-visible downtime (QMP event STOP on the source to RESUME on
# the destination, both QEMUs' wall-clock timestamps, recorded by
# perf/qemu/qmp_events.py on a second QMP socket of each QEMU), the time
# from the migrate command to that RESUME, whether the destination guest
# prints a @@BEAT within 30 s after the migration (QEMU 7.2 under TCG
# sometimes loses pages by itself, docs/qemu.md: a "no" is data), and for
# the HDE cases the gateways' exit codes, the source gateway's "qemu source"
# and "stream 0:" summary lines (encoded frame bytes), its port's TX bytes
# and the bytes the kernel sent on va (after the tbf qdisc; its drops too).
#
# Output in --out (default /tmp/hde-bench-qemu): results.csv (one row per
# case and repetition; appended to), env.txt (machine, versions, binaries,
# every command line, the load average at each case start), logs/ (serial
# consoles, QMP events, query-migrate replies, gateway logs); a markdown table
# of this invocation's rows on stdout. Before each case the script waits until
# the 1-minute load average is below --max-load (1.0; at most --load-wait
# 120 s) and records it. The gateway binary is copied at start, so a rebuild
# during the run does not change it. About 3 minutes a case on 2 cores.
#
#   perf/qemu/bench_qemu.sh [--out DIR] [--gw PATH] [--cases LIST] [--reps N]
#        [--timeout S] [--max-load L] [--load-wait S]
# LIST: comma-separated case names above, or "all" (default), "qemu", "hde".
# Needs root (network namespaces, af_packet, tc): exits 77 otherwise, and
# when QEMU, the guest builder or the gateway's QEMU path is missing.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/perf/qemu
OUT=/tmp/hde-bench-qemu
GW=$ROOT/build/dataplane/hde-gateway
CASES=all
REPS=1
MIG_TIMEOUT=120
MAXLOAD=1.0
LOADWAIT=120
ALL_CASES="qemu-precopy qemu-xbzrle qemu-multifd2 qemu-multifd2-zstd hde-datacenter hde-internet hde-hybrid hde-datacenter-multifd2"
ARGS="$*"
usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --gw) GW=$2; shift 2 ;;
    --cases) CASES=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --timeout) MIG_TIMEOUT=$2; shift 2 ;;
    --max-load) MAXLOAD=$2; shift 2 ;;
    --load-wait) LOADWAIT=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench_qemu.sh: unknown option '$1' (--help)" >&2; exit 2 ;;
  esac
done

skip() { echo "bench_qemu.sh: skipped: $*" >&2; exit 77; }
die() { echo "bench_qemu.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || skip "needs root (ip netns, af_packet, tc)"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
for t in ip tc python3 timeout; do command -v $t >/dev/null || skip "$t not installed"; done
[ -x "$GW" ] || die "no gateway binary $GW (--gw)"
case "$CASES" in
  all) CASES=$ALL_CASES ;;
  qemu) CASES=$(echo "$ALL_CASES" | tr ' ' '\n' | grep '^qemu-' | tr '\n' ' ') ;;
  hde) CASES=$(echo "$ALL_CASES" | tr ' ' '\n' | grep '^hde-' | tr '\n' ' ') ;;
  *) CASES=$(echo "$CASES" | tr ',' ' ') ;;
esac
for c in $CASES; do
  case " $ALL_CASES " in *" $c "*) ;; *) die "unknown case '$c' (one of: $ALL_CASES)" ;; esac
done
[[ "$REPS" =~ ^[1-9][0-9]*$ ]] || die "--reps takes a positive integer"
PY=$(command -v python3)

GUEST_SRC=$ROOT/../shared/guest
GUEST=${HDE_GUEST_DIR:-$ROOT/build/tests/qemu-guest}
if [ ! -s "$GUEST/vmlinuz" ] || [ ! -s "$GUEST/initramfs.cpio.gz" ]; then
  [ -x "$GUEST_SRC/build.sh" ] || skip "no guest at $GUEST and no builder at $GUEST_SRC"
  echo "# building the guest into $GUEST" >&2
  mkdir -p "$GUEST"
  "$GUEST_SRC/build.sh" "$GUEST" >"$GUEST/build.log" 2>&1 || skip "guest build failed: $(tail -n 2 "$GUEST/build.log")"
fi

mkdir -p "$OUT/logs" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
CSV=$OUT/results.csv
ENV=$OUT/env.txt
SESSION=$(date -u +%Y%m%dT%H%M%SZ)
T=$(mktemp -d /tmp/hde-bq.XXXXXX)  # sockets (short paths), the gateway copy
PFX=hdebq$$
NS_A=hde-bqa-$$ NS_B=hde-bqb-$$
NETNS_UP=0

# The gateway as it is now: the other tree may rebuild it during the run.
cp "$GW" "$T/hde-gateway" || die "cannot copy $GW"
GWBIN=$T/hde-gateway
EAL_COMMON=(--no-huge -m 1024 --no-pci --log-level=lib.eal:error)
timeout -k 5 60 "$GWBIN" "${EAL_COMMON[@]}" -l 0 --file-prefix "$PFX-help" -- --help </dev/null 2>&1 | grep -q -- '--qemu-listen' ||
  skip "$GW has no --qemu-listen"
rm -rf "/var/run/dpdk/$PFX-help"

# ---- processes ----------------------------------------------------------------
PIDS=()  # every background process this script started and has not reaped
alive() { [ -n "$1" ] && [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
stop_pid() {  # PID...: TERM, KILL after 5 s, reap
  local p i
  for p in "$@"; do alive "$p" && kill -TERM "$p" 2>/dev/null; done
  for p in "$@"; do
    [ -n "$p" ] || continue
    for ((i = 0; i < 50; i++)); do alive "$p" || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  return 0
}
# PID SECONDS: its exit status once it ends; 124 if it still runs then.
wait_exit() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do alive "$1" || break; sleep 0.1; done
  alive "$1" && return 124
  wait "$1"
}
wait_sock() {  # PATH SECONDS PID: until the socket PATH exists while PID lives
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    [ -S "$1" ] && return 0
    alive "$3" || return 1
    sleep 0.1
  done
  [ -S "$1" ]
}
netns_down() {
  [ "$NETNS_UP" = 1 ] || return 0
  HDE_NS_A=$NS_A HDE_NS_B=$NS_B "$ROOT/scripts/netns.sh" down >/dev/null 2>&1
  NETNS_UP=0
}
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  trap - EXIT INT TERM
  stop_pid "${PIDS[@]}"
  netns_down  # removes va/vb and their qdiscs with the namespaces
  rm -rf /var/run/dpdk/"$PFX"-* "$T"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- environment -----------------------------------------------------------------
{
  echo "session: $SESSION ($(date -Is))"
  echo "command: $0 $ARGS"
  echo "cases: $CASES; reps $REPS; migration limit $MIG_TIMEOUT s; load < $MAXLOAD (wait <= $LOADWAIT s)"
  echo "host: $(uname -r), $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), /dev/kvm $([ -e /dev/kvm ] && echo present || echo absent) (not used: accel=tcg)"
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) ($(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l) paths changed in the tree)"
  echo "qemu: $(qemu-system-x86_64 --version | head -1)"
  echo "gateway: $GW $(stat -c '%y' "$GW") sha256 $(sha256sum "$GW" | cut -c1-16) (run from a copy)"
  echo "guest: $GUEST: vmlinuz sha256 $(sha256sum "$GUEST/vmlinuz" | cut -c1-16), initramfs sha256 $(sha256sum "$GUEST/initramfs.cpio.gz" | cut -c1-16)$([ -s "$GUEST/kernel.txt" ] && echo ", kernel $(head -1 "$GUEST/kernel.txt")")"
  echo "python: $($PY --version 2>&1); iproute2: $(ip -V 2>&1 | head -1)"
} >"$ENV"
cmdlog() { echo "  $*" >>"$ENV"; }

load1() { cut -d' ' -f1 /proc/loadavg; }
busiest() {  # the 4 busiest processes over 1 s (top's second sample)
  top -b -n 2 -d 1 -w 200 2>/dev/null | awk '/^top -/ { n++ } n == 2 && f { if (c++ < 4) printf "%s %s%%, ", $12, $9 } n == 2 && /PID/ { f = 1 }'
}
wait_load() {  # sets LOAD, WAITED
  local t0=$SECONDS l
  while :; do
    l=$(load1)
    awk -v l="$l" -v m="$MAXLOAD" 'BEGIN { exit !(l < m) }' && break
    if [ $((SECONDS - t0)) -ge "$LOADWAIT" ]; then
      echo "# load $l still >= $MAXLOAD after $LOADWAIT s: running anyway (recorded)" >&2
      break
    fi
    sleep 2
  done
  LOAD=$(load1) WAITED=$((SECONDS - t0))
}

# ---- QEMU --------------------------------------------------------------------------
MEM=256
APPEND="console=ttyS0 panic=-1 quiet wl=mixed"
# NAME [ARGS...]: QEMU NAME with QMP for commands at $T/NAME.qmp and a second
# QMP monitor at $T/NAME.ev for the event recorder (a monitor serves one
# client at a time); serial console in logs/$RUN.NAME-serial.log. Sets QPID
# and EPID (the recorder, logs/$RUN.NAME-events.jsonl).
qemu_start() {
  local name=$1
  shift
  rm -f "$T/$name.qmp" "$T/$name.ev"
  # shellcheck disable=SC2054  # commas inside arguments
  local cmd=(qemu-system-x86_64 -machine pc,accel=tcg -cpu max -smp 1 -m "${MEM}M" -nographic -nodefaults
    -serial "file:$LOGS.$name-serial.log" -no-reboot -kernel "$GUEST/vmlinuz" -initrd "$GUEST/initramfs.cpio.gz"
    -append "$APPEND" -qmp "unix:$T/$name.qmp,server=on,wait=off" -qmp "unix:$T/$name.ev,server=on,wait=off" "$@")
  cmdlog "${cmd[*]}"
  timeout -k 5 $((MIG_TIMEOUT + 300)) "${cmd[@]}" </dev/null 2>"$LOGS.$name.err" &
  QPID=$!
  PIDS+=("$QPID")
  "$PY" "$HERE/qmp_events.py" "$T/$name.ev" "$LOGS.$name-events.jsonl" --timeout 30 2>>"$LOGS.$name.err" &
  EPID=$!
  PIDS+=("$EPID")
}
qmp() {  # NAME COMMAND [JSON ARGS]
  local name=$1
  shift
  echo "qmp $name: $*" >>"$LOGS.qmp.log"
  "$PY" "$ROOT/tests/qemu/qmp.py" "$T/$name.qmp" "$@" 2>>"$LOGS.qmp.log"
}
# NAME SECONDS: poll query-migrate until completed / failed / cancelled or
# SECONDS pass; prints the last reply.
mig_wait() {
  "$PY" - "$ROOT/tests/qemu" "$T/$1.qmp" "$2" <<'EOF'
import json, sys, time
sys.path.insert(0, sys.argv[1])
from qmp import Qmp
try:
    q = Qmp(sys.argv[2], timeout=10)
    deadline = time.time() + float(sys.argv[3])
    while True:
        r = q.cmd("query-migrate")
        if r.get("status") in ("completed", "failed", "cancelled") or time.time() > deadline:
            break
        time.sleep(0.2)
except Exception as e:
    r = {"status": "qmp error (%s)" % (e or type(e).__name__)}
print(json.dumps(r))
EOF
}
# URI SECONDS OUTFILE: migrate the source there; poll until a final state
# or SECONDS pass, then migrate_cancel (and wait for "cancelled", 30 s).
# OUTFILE: {"t_migrate": unix time of the command, "final": the last reply
# before any cancel, "timed_out": bool, "after_cancel": reply}.
migrate_run() {
  "$PY" - "$ROOT/tests/qemu" "$T/src.qmp" "$1" "$2" "$3" <<'EOF'
import json, sys, time
sys.path.insert(0, sys.argv[1])
from qmp import Qmp
uri, limit, outp = sys.argv[3], float(sys.argv[4]), sys.argv[5]
res = {"t_migrate": None, "final": None, "timed_out": False, "after_cancel": None}
try:
    q = Qmp(sys.argv[2], timeout=10)
    res["t_migrate"] = time.time()
    q.cmd("migrate", uri=uri)
    deadline = res["t_migrate"] + limit
    while True:
        r = q.cmd("query-migrate")
        res["final"] = r
        if r.get("status") in ("completed", "failed", "cancelled"):
            break
        if time.time() > deadline:
            res["timed_out"] = True
            q.cmd("migrate_cancel")
            end = time.time() + 30
            while time.time() < end:
                c = q.cmd("query-migrate")
                res["after_cancel"] = c
                if c.get("status") in ("cancelled", "failed", "completed"):
                    break
                time.sleep(0.2)
            break
        time.sleep(0.2)
except Exception as e:
    res["error"] = str(e) or type(e).__name__
json.dump(res, open(outp, "w"), indent=1)
print(res["final"]["status"] if res["final"] else "error: " + res.get("error", "?"))
EOF
}
last_beat() { grep -ao '@@BEAT [0-9]*' "$1" 2>/dev/null | tail -n 1 | cut -d' ' -f2; }

# ---- the HDE link ---------------------------------------------------------------------
netns_up() {
  [ "$NETNS_UP" = 1 ] && return 0
  HDE_NS_A=$NS_A HDE_NS_B=$NS_B "$ROOT/scripts/netns.sh" up >"$OUT/logs/netns-up.log" 2>&1 ||
    { cat "$OUT/logs/netns-up.log" >&2; die "scripts/netns.sh up failed"; }
  NETNS_UP=1
  echo "netns: HDE_NS_A=$NS_A HDE_NS_B=$NS_B scripts/netns.sh up" >>"$ENV"
}
TBF=(rate 100mbit burst 32kbit latency 50ms)
# A fresh qdisc per case (fresh counters).
qdisc_setup() {
  ip -n "$NS_A" link set va up
  tc -n "$NS_A" qdisc del dev va root 2>/dev/null
  tc -n "$NS_A" qdisc add dev va root tbf "${TBF[@]}" || die "tc qdisc add dev va root tbf ${TBF[*]} failed"
  cmdlog "ip netns exec $NS_A tc qdisc add dev va root tbf ${TBF[*]} (after deleting the previous one)"
}
ifstat() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3" 2>/dev/null || echo 0; }

# ---- one case ------------------------------------------------------------------------------
# NAME: sets the row's fields and writes it.
run_case() {
  local name=$1 kind mode="" chans=0 comp=none xbz=false bw
  case "$name" in
    qemu-precopy) kind=qemu ;;
    qemu-xbzrle) kind=qemu xbz=true ;;
    qemu-multifd2) kind=qemu chans=2 ;;
    qemu-multifd2-zstd) kind=qemu chans=2 comp=zstd ;;
    hde-datacenter) kind=hde mode=datacenter ;;
    hde-internet) kind=hde mode=internet ;;
    hde-hybrid) kind=hde mode=hybrid ;;
    hde-datacenter-multifd2) kind=hde mode=datacenter chans=2 ;;
  esac
  if [ "$kind" = qemu ]; then bw=12500000; else bw=1000000000000; fi
  N=$((N + 1))
  RUN=$(printf '%s-%02d-%s' "$SESSION" "$N" "$name")
  [ "$REPS" -gt 1 ] && RUN=$RUN-r$REP
  LOGS=$OUT/logs/$RUN
  : >"$LOGS.qmp.log"
  wait_load
  echo "# $RUN: load $LOAD (waited $WAITED s)" >&2
  {
    echo "case $RUN: load1 $LOAD at start (waited $WAITED s); busiest processes (%CPU over 1 s): $(busiest)"
  } >>"$ENV"

  local note="" st="" dst_st="" beat="" beat_src="" grc_s="" grc_d="" va0=0 va1=0 vb0=0 vb1=0 counted=0 SPID DPID GSP="" GDP=""
  local mf=false
  [ "$chans" -gt 0 ] && mf=true
  local caps="[{\"capability\": \"multifd\", \"state\": $mf}, {\"capability\": \"xbzrle\", \"state\": $xbz}]"
  local dparams="{}"
  [ "$chans" -gt 0 ] && dparams="{\"multifd-channels\": $chans, \"multifd-compression\": \"$comp\"}"
  local sparams="{\"downtime-limit\": 300, \"max-bandwidth\": $bw}"
  [ "$chans" -gt 0 ] && sparams="{\"downtime-limit\": 300, \"max-bandwidth\": $bw, \"multifd-channels\": $chans, \"multifd-compression\": \"$comp\"}"

  rm -f "$T"/*.sock "$T"/*.ctl
  qemu_start src
  SPID=$QPID
  qemu_start dst -incoming defer
  DPID=$QPID
  local i
  for ((i = 0; i < 1200; i++)); do grep -q "@@READY" "$LOGS.src-serial.log" 2>/dev/null && break; alive "$SPID" || break; sleep 0.1; done
  if ! grep -q "@@READY" "$LOGS.src-serial.log" 2>/dev/null; then
    note="source guest did not boot"
  elif ! qmp src migrate-set-capabilities "{\"capabilities\": $caps}" >/dev/null ||
       ! qmp src migrate-set-parameters "$sparams" >/dev/null ||
       ! qmp dst migrate-set-capabilities "{\"capabilities\": $caps}" >/dev/null ||
       ! qmp dst migrate-set-parameters "$dparams" >/dev/null; then
    note="a QEMU refused the capabilities or parameters (logs: $RUN.qmp.log)"
  elif ! qmp dst migrate-incoming "{\"uri\": \"unix:$T/dst.sock\"}" >/dev/null || ! wait_sock "$T/dst.sock" 10 "$DPID"; then
    note="the destination QEMU did not listen"
  fi
  cmdlog "qmp src+dst: migrate-set-capabilities $caps; src: migrate-set-parameters $sparams; dst: migrate-set-parameters $dparams; dst: migrate-incoming unix:$T/dst.sock"
  qmp src query-migrate-parameters >"$LOGS.src-params.json"

  local uri="unix:$T/dst.sock"
  if [ -z "$note" ] && [ "$kind" = hde ]; then
    uri="unix:$T/gw.sock"
    qdisc_setup
    va0=$(ifstat "$NS_A" va tx_bytes) vb0=$(ifstat "$NS_B" vb rx_bytes) counted=1
    # shellcheck disable=SC2054
    local dcmd=(ip netns exec "$NS_B" timeout -k 5 $((MIG_TIMEOUT + 240)) "$GWBIN" "${EAL_COMMON[@]}" -l 1
      --file-prefix "$PFX-${N}d" --vdev=net_af_packet0,iface=vb -- --role dest --qemu-connect "unix:$T/dst.sock"
      --ctl-sock "$T/gwd.ctl" --quiet)
    # shellcheck disable=SC2054
    local scmd=(ip netns exec "$NS_A" timeout -k 5 $((MIG_TIMEOUT + 240)) "$GWBIN" "${EAL_COMMON[@]}" -l 0
      --file-prefix "$PFX-${N}s" --vdev=net_af_packet0,iface=va,qdisc_bypass=0 -- --role source
      --qemu-listen "unix:$T/gw.sock" --link-rate 100m --mode "$mode" --no-encrypt --ctl-sock "$T/gws.ctl" --quiet)
    cmdlog "${dcmd[*]}"
    cmdlog "${scmd[*]}"
    "${dcmd[@]}" </dev/null >"$LOGS.gw-dst.log" 2>&1 &
    GDP=$!
    PIDS+=("$GDP")
    if ! wait_sock "$T/gwd.ctl" 60 "$GDP"; then
      note="the destination gateway did not start"
    else
      "${scmd[@]}" </dev/null >"$LOGS.gw-src.log" 2>&1 &
      GSP=$!
      PIDS+=("$GSP")
      wait_sock "$T/gw.sock" 60 "$GSP" || note="the source gateway did not listen"
    fi
  fi

  if [ -z "$note" ]; then
    beat_src=$(last_beat "$LOGS.src-serial.log")
    cmdlog "qmp src: migrate {\"uri\": \"$uri\"} (limit $MIG_TIMEOUT s, then migrate_cancel)"
    st=$(migrate_run "$uri" "$MIG_TIMEOUT" "$LOGS.migrate.json")
    # The destination: its incoming migration ends (completed: it resumes).
    local dj
    dj=$(mig_wait dst 60)
    echo "$dj" >"$LOGS.dst-migrate.json"
    dst_st=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1]).get("status",""))' "$dj" 2>/dev/null)
    if [ "$dst_st" = completed ]; then
      beat=no
      for ((i = 0; i < 150; i++)); do
        grep -aq '@@BEAT' "$LOGS.dst-serial.log" 2>/dev/null && { beat=yes; break; }
        alive "$DPID" || break
        sleep 0.2
      done
    fi
    if [ -n "$GSP" ]; then
      wait_exit "$GSP" 60; grc_s=$?
      wait_exit "$GDP" 30; grc_d=$?
    fi
  fi
  if [ "$counted" = 1 ]; then
    va1=$(ifstat "$NS_A" va tx_bytes) vb1=$(ifstat "$NS_B" vb rx_bytes)
    tc -n "$NS_A" -s qdisc show dev va >"$LOGS.tc.txt" 2>&1
  fi
  # query-status of the destination (still there?), then stop everything.
  alive "$DPID" && qmp dst query-status >"$LOGS.dst-status.json" 2>/dev/null
  stop_pid $GSP $GDP "$SPID" "$DPID"
  stop_pid "${PIDS[@]}"  # the event recorders end with their QEMU
  PIDS=()
  rm -rf /var/run/dpdk/"$PFX-$N"s /var/run/dpdk/"$PFX-$N"d
  [ -s "$LOGS.dst.err" ] && grep -v "terminating on signal" "$LOGS.dst.err" | head -3 | sed "s/^/# $RUN destination QEMU: /" >&2

  record "$name" "$kind" "$mode" "$chans" "$comp" "$xbz" "$bw" "${st:-}" "${dst_st:-}" "${beat:-}" "${beat_src:-}" \
    "${grc_s:-}" "${grc_d:-}" "$((va1 - va0))" "$((vb1 - vb0))" "$note"
}

# ---- a CSV row ---------------------------------------------------------------------------------
record() {
  "$PY" - "$CSV" "$LOGS" "$RUN" "$SESSION" "$REP" "$LOAD" "$WAITED" "$MIG_TIMEOUT" "$@" <<'PY'
import csv, json, os, re, sys, time
(csvp, logs, run, session, rep, load, waited, limit, name, kind, mode, chans, comp, xbz, bw, st, dst_st, beat,
 beat_src, grc_s, grc_d, va_tx, vb_rx, note) = sys.argv[1:]
def read(p):
    try:
        return open(p, errors="replace").read()
    except OSError:
        return ""
def events(p):
    ev = []
    for line in read(p).splitlines():
        try:
            m = json.loads(line)
        except ValueError:
            continue
        if "event" in m:
            ts = m.get("timestamp", {})
            ev.append((m["event"], ts.get("seconds", 0) + ts.get("microseconds", 0) / 1e6, m.get("data")))
    return ev
notes = [note] if note else []
row = {k: "" for k in (
    "session", "run", "rep", "date", "case", "system", "mode", "multifd_channels", "multifd_compression", "xbzrle",
    "max_bandwidth", "load1", "load_wait_s", "converged", "src_status", "dst_status", "total_time_ms",
    "qemu_downtime_ms", "user_downtime_ms", "migrate_to_resume_s", "setup_time_ms", "qemu_bytes", "multifd_bytes",
    "xbzrle_bytes", "dirty_sync_count", "qemu_mbps", "wire_bytes", "gw_tx_bytes", "va_tx_bytes", "vb_rx_bytes",
    "tbf_dropped", "gw_src_rc", "gw_dst_rc", "dst_beat", "src_last_beat", "dst_first_beat", "gw_qemu_source",
    "gw_stream", "gw_qemu_dest", "notes")}
row.update(session=session, run=run, rep=rep, date=time.strftime("%Y-%m-%dT%H:%M:%S"), case=name, system=kind,
           mode=mode, multifd_channels=chans, multifd_compression=comp if int(chans) else "",
           xbzrle="yes" if xbz == "true" else "no", max_bandwidth=bw, load1=load, load_wait_s=waited,
           src_status=st, dst_status=dst_st, dst_beat=beat, src_last_beat=beat_src, gw_src_rc=grc_s, gw_dst_rc=grc_d)
try:
    mig = json.load(open(logs + ".migrate.json"))
except (OSError, ValueError):
    mig = {}
f = mig.get("final") or {}
ram = f.get("ram", {})
if f:
    row.update(total_time_ms=f.get("total-time", ""), qemu_downtime_ms=f.get("downtime", ""),
               setup_time_ms=f.get("setup-time", ""), qemu_bytes=ram.get("transferred", ""),
               multifd_bytes=ram.get("multifd-bytes", "") if int(chans) else "",
               dirty_sync_count=ram.get("dirty-sync-count", ""), qemu_mbps=round(ram.get("mbps", 0), 1))
    x = f.get("xbzrle-cache")
    if x:
        row["xbzrle_bytes"] = x.get("bytes", "")
        notes.append(f"xbzrle {x.get('pages', 0)} pages, {x.get('cache-miss', 0)} cache misses, "
                     f"overflow {x.get('overflow', 0)}")
converged = f.get("status") == "completed" and not mig.get("timed_out")
row["converged"] = "yes" if converged else "no"
if mig.get("timed_out"):
    row["total_time_ms"] = row["total_time_ms"] or int(float(limit) * 1000)
    notes.append(f"not converged in {limit} s (cancelled: {(mig.get('after_cancel') or {}).get('status', '?')}; "
                 f"expected downtime {f.get('expected-downtime', '?')} ms, {f.get('ram', {}).get('dirty-pages-rate', '?')} dirty pages/s)")
elif f and f.get("status") != "completed":
    notes.append(f"source {f.get('status')}: {f.get('error-desc', '')}".strip(": "))
if mig.get("error"):
    notes.append("qmp: " + mig["error"])
src_ev, dst_ev = events(logs + ".src-events.jsonl"), events(logs + ".dst-events.jsonl")
stops = [t for e, t, _ in src_ev if e == "STOP"]
resumes = [t for e, t, _ in dst_ev if e == "RESUME"]
if converged and stops and resumes:
    stop = stops[-1]
    after = [t for t in resumes if t >= stop]
    if after:
        row["user_downtime_ms"] = round((after[0] - stop) * 1000, 1)
        if mig.get("t_migrate"):
            row["migrate_to_resume_s"] = round(after[0] - mig["t_migrate"], 2)
elif converged:
    notes.append(f"events: {len(stops)} STOP on the source, {len(resumes)} RESUME on the destination")
m = re.findall(r"@@BEAT (\d+)", read(logs + ".dst-serial.log"))
if m:
    row["dst_first_beat"] = m[0]
if kind == "hde":
    s, d = read(logs + ".gw-src.log"), read(logs + ".gw-dst.log")
    q = re.search(r"^  qemu source .*$", s, re.M)
    row["gw_qemu_source"] = q.group(0).strip() if q else ""
    lines = re.findall(r"^  stream \d+: .*$", s, re.M)
    row["gw_stream"] = " | ".join(l.strip() for l in lines)
    mb = [float(x) for x in re.findall(r"^  stream \d+: .*?, \d+ frames ([\d.]+) MB", s, re.M)]
    if mb:
        row["wire_bytes"] = int(sum(mb) * 1e6)
    p = re.search(r"^  port \d+ \(source\): .* TX \d+ frames (\d+) bytes", s, re.M)
    row["gw_tx_bytes"] = p.group(1) if p else ""
    q = re.search(r"^  qemu dest .*$", d, re.M)
    row["gw_qemu_dest"] = q.group(0).strip() if q else ""
    row["va_tx_bytes"], row["vb_rx_bytes"] = va_tx, vb_rx
    t = re.search(r"dropped (\d+)", read(logs + ".tc.txt"))
    row["tbf_dropped"] = t.group(1) if t else ""
    for who, rc, txt in (("source", grc_s, s), ("destination", grc_d, d)):
        if rc not in ("0", ""):
            errs = [l.strip() for l in txt.splitlines() if l.startswith("hde-gateway:") and "summary" not in l]
            notes.append(f"{who} gateway exit {rc}" + (f" ({errs[-1]})" if errs else ""))
if converged and dst_st != "completed":
    notes.append(f"destination {dst_st}")
if converged and beat == "no":
    notes.append("destination guest did not beat within 30 s")
row["notes"] = "; ".join(notes)
old = []
if os.path.exists(csvp) and os.path.getsize(csvp) > 0:
    with open(csvp, newline="") as fh:
        rd = csv.DictReader(fh)
        if rd.fieldnames != list(row):  # another version's header: keep it aside
            os.rename(csvp, csvp + ".old")
new = not os.path.exists(csvp) or os.path.getsize(csvp) == 0
with open(csvp, "a", newline="") as fh:
    wr = csv.DictWriter(fh, fieldnames=list(row))
    if new:
        wr.writeheader()
    wr.writerow(row)
print(f"# {run}: converged {row['converged']}, total {row['total_time_ms']} ms, QEMU downtime {row['qemu_downtime_ms']} ms, "
      f"user downtime {row['user_downtime_ms']} ms, QEMU {row['qemu_bytes']} B, wire {row['wire_bytes']} B, "
      f"beat {row['dst_beat']}, gw rc {row['gw_src_rc']}/{row['gw_dst_rc']}"
      + (f" [{row['notes']}]" if row["notes"] else ""), file=sys.stderr)
PY
}

table() {
  "$PY" - "$CSV" "$SESSION" <<'PY'
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1], newline="")) if r["session"] == sys.argv[2]]
def mb(v):
    return f"{int(v) / 1e6:.1f}" if v not in ("", None) else "–"
def s(v, d=1):
    return f"{float(v) / 1000:.{d}f}" if v not in ("", None) else "–"
def v(x):
    return x if x not in ("", None) else "–"
print("| case | rep | load | converged | total time s | QEMU downtime ms | user downtime ms | migrate→resume s "
      "| QEMU bytes MB | wire MB (frames / va) | dest beats | gw rc src/dst | notes |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    wire = "–" if r["system"] != "hde" else f"{mb(r['wire_bytes'])} / {mb(r['va_tx_bytes'])}"
    rc = "–" if r["system"] != "hde" else f"{v(r['gw_src_rc'])}/{v(r['gw_dst_rc'])}"
    beat = v(r["dst_beat"]) if r["converged"] == "yes" else "–"
    print(f"| {r['case']} | {r['rep']} | {r['load1']} | {r['converged']} | {s(r['total_time_ms'])} | "
          f"{v(r['qemu_downtime_ms']) if r['converged'] == 'yes' else '–'} | {v(r['user_downtime_ms'])} | "
          f"{v(r['migrate_to_resume_s'])} | {mb(r['qemu_bytes'])} | {wire} | {beat} | {rc} | {r['notes']} |")
PY
}

# ---- main ------------------------------------------------------------------------------------------
case " $CASES " in *" hde-"*) netns_up ;; esac
echo "commands (in order):" >>"$ENV"
N=0
T_START=$SECONDS
for REP in $(seq "$REPS"); do
  for c in $CASES; do run_case "$c"; done
done
echo "# $N cases in $((SECONDS - T_START)) s; CSV: $CSV; logs: $OUT/logs" >&2
netns_down
table | tee "$OUT/table-$SESSION.md"
