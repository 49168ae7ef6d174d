#!/usr/bin/env bash
# bench_transport.sh — HDE's transport against kernel TCP (cubic, bbr) over
# links emulated by hde-wanem (issue 10), in the three-namespace set-up of
# scripts/wanem.sh: src/va <-> wa/wan/wb <-> vb/dst.
#
#   HDE: a destination hde-gateway on vb and a source on va migrate a trace
#        (default ../shared/corpus/dev) with --preload --mode datacenter
#        --codec raw, so the wire bytes are large and the link is the
#        bottleneck; on the lossy links also with --fec auto and --fec 32,4.
#   TCP: perf/wanem/tcp_stream.py, one connection va -> vb, with
#        TCP_CONGESTION cubic and bbr, for about as long as HDE's migration
#        took on the same link (10 ... 30 s; tcp_notsent_lowat 256 KiB in
#        the source namespace keeps the drain after that short).
# Every run gets its own hde-wanem (fresh counters; the same loss seed within
# a repetition, another one per --reps repetition). Before each run the
# script waits until the 1-minute load average is below --max-load (at most
# --load-wait seconds) and records it, with the other heavy processes seen.
# A run during which a binary changed is run again.
#
# Link profiles (one-way delay each way; loss on the data direction a->b only;
# the bottleneck buffer is one bandwidth-delay product, at least 256 KiB):
#   calib       rate unlimited, no delay: what the emulator and the hosts carry
#               (TCP cubic 8 s, and one HDE migration); not plotted
#   1g          rate=1g, clean
#   top         rate=--top-rate, clean (auto: 80 % of the smaller calib
#               figure, rounded down to 50 Mbit/s, at most 1g)
#   100m-rtt40          rate=100m, delay_ms=20
#   100m-rtt40-loss1    rate=100m, delay_ms=20, loss=0.01
#   100m-rtt40-loss5    rate=100m, delay_ms=20, loss=0.05
#   100m-rtt200-loss5   rate=100m, delay_ms=100, loss=0.05
#   1g-rtt10-loss0.1    rate=1g, delay_ms=5, loss=0.001
#   1g-rtt100-loss1     rate=1g, delay_ms=50, loss=0.01
#
# Output in --out (default /tmp/hde-bench-transport/): results.csv (one row
# per run; appended to when it exists), transport.png
# (perf/wanem/plot_transport.py), env.txt (machine, binaries, sysctls),
# logs/ (every process's output); markdown tables on stdout (per link and
# transport: median and range; then every run). About 8 minutes on a quiet
# machine with --reps 1 (21 runs), 25 with --reps 3.
#
#   perf/wanem/bench_transport.sh [--out DIR] [--gw PATH] [--wanem PATH] [--trace DIR]
#        [--top-rate auto|RATE] [--fec-fixed K,M] [--max-load L] [--load-wait S]
#        [--only PROFILE,...] [--systems hde,tcp] [--reps N] [--tcp-notsent-lowat BYTES] [--no-plot]
# Needs root (ip netns, af_packet). Installs python3-matplotlib (apt) when missing.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=/tmp/hde-bench-transport
GW=$ROOT/build/dataplane/hde-gateway
WANEM=$ROOT/build/perf/wanem/hde-wanem
TRACE=$ROOT/../shared/corpus/dev
TOP=auto
FECFIX=32,4
MAXLOAD=1.0
LOADWAIT=240
ONLY=
SYSTEMS=hde,tcp
PLOT=1
LOWAT=262144
REPS=1
REP=1
usage() { sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --gw) GW=$2; shift 2 ;;
    --wanem) WANEM=$2; shift 2 ;;
    --trace) TRACE=$2; shift 2 ;;
    --top-rate) TOP=$2; shift 2 ;;
    --fec-fixed) FECFIX=$2; shift 2 ;;
    --max-load) MAXLOAD=$2; shift 2 ;;
    --load-wait) LOADWAIT=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --systems) SYSTEMS=$2; shift 2 ;;
    --no-plot) PLOT=0; shift ;;
    --tcp-notsent-lowat) LOWAT=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench_transport.sh: unknown option '$1' (--help)" >&2; exit 2 ;;
  esac
done

die() { echo "bench_transport.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, af_packet)"
for b in "$GW" "$WANEM"; do [ -x "$b" ] || die "no binary $b"; done
[ -f "$TRACE/manifest.json" ] || die "no trace at $TRACE (manifest.json)"
TRACE=$(cd "$TRACE" && pwd)
PY=/usr/bin/python3  # Debian's, where apt puts matplotlib
[ -x "$PY" ] || PY=$(command -v python3)
if [ "$PLOT" = 1 ] && ! "$PY" -c 'import matplotlib' 2>/dev/null; then
  echo "# installing python3-matplotlib (apt)" >&2
  apt-get install -y -q python3-matplotlib >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q python3-matplotlib >/dev/null 2>&1; } ||
    die "cannot install python3-matplotlib (--no-plot skips the plot)"
fi
mkdir -p "$OUT/logs" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd)
CSV=$OUT/results.csv
SINK=$(mktemp -d /tmp/hde-bt-sink.XXXXXX)

# Unique names: namespaces, EAL file prefixes (wanem.sh run uses hde-wanem-$W).
export HDE_WANEM_SRC=hde-bts-$$ HDE_WANEM_WAN=hde-btw-$$ HDE_WANEM_DST=hde-btd-$$ HDE_WANEM_BIN=$WANEM
S=$HDE_WANEM_SRC D=$HDE_WANEM_DST
NETNS=$ROOT/scripts/wanem.sh
PFX=hdebt$$
SRC_IP=198.18.0.1 DST_IP=198.18.0.2
WPID= DPID= SPID= TPID= SAMPLER=
stop_pid() {  # PID: SIGTERM, SIGKILL after 5 s
  local p=$1
  [ -n "$p" ] || return 0
  kill -TERM "$p" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null
  wait "$p" 2>/dev/null
}
cleanup() {
  [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null
  stop_pid "$SPID"; stop_pid "$DPID"; stop_pid "$TPID"; stop_pid "$WPID"
  "$NETNS" down >/dev/null 2>&1
  rm -rf "/var/run/dpdk/${PFX}s" "/var/run/dpdk/${PFX}d" "$SINK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# CPU placement on 2 cores shared by three DPDK processes and the kernel
# (the placement tests/wanem/gateway_wanem_test.sh settled on): hde-wanem's
# one lcore (both directions) on CPU 1; the source's lcore 0 (ingress, ack-rx)
# and lcore 1 (the worker) and the destination's one lcore (dest-rx and its
# decoder) free to run on either CPU. Every poll loop backs off when idle
# (--idle-sleep-us 50, the default of hde-gateway and of hde-wanem).
WANEM_LCORES=1
SRC_EAL="--no-huge -m 1024 --no-pci --lcores=(0-1)@(0-1) --log-level=lib.eal:error"
DST_EAL="--no-huge -m 1024 --no-pci --lcores=0@(0-1) --log-level=lib.eal:error"
RING=framecnt=4096  # af_packet rings of 4096 frames (the PMD's default is 512)
WINDOW=16384        # frames per stream: 2 x BDP is 3400 frames at 100 Mbit/s x 200 ms
HDE_ARGS="--preload --mode datacenter --codec raw --window $WINDOW --timeout 30"
WANT=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["snapshots"][-1]["raw_sha256"])' "$TRACE/manifest.json")

"$NETNS" up --ip >"$OUT/logs/up.log" 2>&1 || { cat "$OUT/logs/up.log"; die "scripts/wanem.sh up failed"; }
# TCP: at most LOWAT bytes not yet sent queued in the sender's socket (its
# window, the bytes in flight, is not limited), so the drain after the
# client stops writing stays short even at cubic's 0.2 Mbit/s on a lossy link.
[ "$LOWAT" -gt 0 ] && ip netns exec "$S" sysctl -qw "net.ipv4.tcp_notsent_lowat=$LOWAT"

{
  echo "date: $(date -Is)"
  echo "host: $(uname -r), $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) ($(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l) paths changed in the tree)"
  for b in "$GW" "$WANEM"; do echo "binary: $b $(stat -c '%y' "$b") sha256 $(sha256sum "$b" | cut -c1-16)"; done
  echo "trace: $TRACE, final image sha256 $WANT"
  echo "hde: $HDE_ARGS; fixed FEC $FECFIX"
  echo "tcp sysctls in $S: $(ip netns exec "$S" sysctl -n net.ipv4.tcp_wmem | tr '\t' ' ') (wmem), $(ip netns exec "$D" sysctl -n net.ipv4.tcp_rmem | tr '\t' ' ') (rmem in $D), available: $(cat /proc/sys/net/ipv4/tcp_available_congestion_control), notsent_lowat in $S: $(ip netns exec "$S" sysctl -n net.ipv4.tcp_notsent_lowat)"
} >"$OUT/env.txt"

load1() { cut -d' ' -f1 /proc/loadavg; }
# Wait until the 1-minute load average is below MAXLOAD (at most LOADWAIT s).
# Sets LOAD (the load when the run starts) and WAITED (seconds waited).
wait_load() {
  local t0=$SECONDS l
  while :; do
    l=$(load1)
    if awk -v l="$l" -v m="$MAXLOAD" 'BEGIN { exit !(l < m) }'; then break; fi
    if [ $((SECONDS - t0)) -ge "$LOADWAIT" ]; then
      echo "# load $l still >= $MAXLOAD after ${LOADWAIT} s: running anyway (recorded)" >&2
      break
    fi
    sleep 2
  done
  LOAD=$(load1) WAITED=$((SECONDS - t0))
}

# Frames the kernel counted on va (sent) and vb (received), for the frames
# lost outside the emulated link (af_packet rings that overflowed).
ifstats() { echo "$(ip netns exec "$S" cat /sys/class/net/va/statistics/tx_packets) $(ip netns exec "$D" cat /sys/class/net/vb/statistics/rx_packets)"; }

# Other heavy work on the machine (other sessions' gateways, emulators, tests,
# compilers): their process names (sampled every 2 s during each run).
foreign() {
  ps -eo pid=,args= | grep -E 'hde-|qemu-system|cc1plus|/ld |ninja|bench_micro|gtest|_test' |
    grep -v -e "$PFX" -e "hde-btw-$$" -e "hde-bts-$$" -e "hde-btd-$$" -e grep -e "$$ " |
    awk '{ for (i = 2; i <= NF; i++) if ($i ~ /hde-|qemu-system|cc1plus|ld$|ninja|bench_micro|gtest|_test/) {
             n = $i; sub(".*/", "", n); if (n ~ /^[A-Za-z0-9_.+-]+$/) print n; break } }' | sort -u | tr '\n' ' '
}

bin_stamp() { stat -c '%Y' "$GW" "$WANEM" | tr '\n' ' '; }

# hde-wanem in the wan namespace, in the background; waits for "forwarding".
start_wanem() {  # LOG SPEC...
  local log=$1; shift
  timeout 600 "$NETNS" run --lcores "$WANEM_LCORES" -- "$@" --stats-period 0 >"$log" 2>&1 &
  WPID=$!
  for _ in $(seq 150); do
    grep -q "forwarding" "$log" && return 0
    kill -0 "$WPID" 2>/dev/null || break
    sleep 0.1
  done
  echo "# hde-wanem did not start:" >&2; cat "$log" >&2
  stop_pid "$WPID"; WPID=
  return 1
}
stop_wanem() { kill -INT "$WPID" 2>/dev/null; wait "$WPID" 2>/dev/null; WPID=; }

# One HDE migration. Leaves the logs in $OUT/logs/$RUN.{src,dst,wanem}.log.
run_hde() {  # FEC (off|auto|K,M) SPEC...
  local fec=$1; shift
  local sl=$OUT/logs/$RUN.src.log dl=$OUT/logs/$RUN.dst.log wl=$OUT/logs/$RUN.wanem.log
  local out=$SINK/$RUN
  rm -rf "$out"
  start_wanem "$wl" "$@" || return 1
  ip netns exec "$D" timeout 200 "$GW" $DST_EAL --file-prefix "${PFX}d" \
    --vdev="net_af_packet0,iface=vb,$RING" -- --role dest --sink "$out" --exit-on-complete --timeout 30 \
    >"$dl" 2>&1 &
  DPID=$!
  for _ in $(seq 150); do
    grep -q "control socket" "$dl" && break
    kill -0 "$DPID" 2>/dev/null || break
    sleep 0.1
  done
  local t0 t1
  t0=$(date +%s.%N)
  ip netns exec "$S" timeout 180 "$GW" $SRC_EAL --file-prefix "${PFX}s" \
    --vdev="net_af_packet0,iface=va,$RING" -- --role source --trace "$TRACE" $HDE_ARGS --fec "$fec" \
    >"$sl" 2>&1 &
  SPID=$!
  wait "$SPID"; SRC_RC=$?; SPID=
  t1=$(date +%s.%N)
  wait "$DPID"; DST_RC=$?; DPID=
  stop_wanem
  WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  SHA=$(sha256sum "$out/vm-0.raw" 2>/dev/null | cut -d' ' -f1)
  rm -rf "$out"
}

# One kernel TCP transfer for SECS seconds with congestion control CC.
run_tcp() {  # CC SECS SPEC...
  local cc=$1 secs=$2; shift 2
  local cl=$OUT/logs/$RUN.client.log tl=$OUT/logs/$RUN.server.log wl=$OUT/logs/$RUN.wanem.log
  start_wanem "$wl" "$@" || return 1
  ip netns exec "$D" timeout 200 "$PY" "$ROOT/perf/wanem/tcp_stream.py" server --bind "$DST_IP" --timeout 90 \
    >"$tl" 2>&1 &
  TPID=$!
  for _ in $(seq 100); do grep -q listening "$tl" 2>/dev/null && break; sleep 0.1; done
  local t0 t1
  t0=$(date +%s.%N)
  ip netns exec "$S" timeout 180 "$PY" "$ROOT/perf/wanem/tcp_stream.py" client --connect "$DST_IP" \
    --seconds "$secs" --cc "$cc" --timeout 90 >"$cl" 2>&1
  SRC_RC=$?
  t1=$(date +%s.%N)
  wait "$TPID"; DST_RC=$?; TPID=
  stop_wanem
  WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  SHA=
}

# Parse one run's logs into a CSV row (and create the header once).
record() {  # PROFILE RATE_BPS DELAY_MS LOSS QUEUE_KB SYSTEM VARIANT SPEC
  "$PY" - "$CSV" "$OUT/logs/$RUN" "$RUN" "$@" "$LOAD" "$WAITED" "$SRC_RC" "$DST_RC" "$WALL" "${SHA:-}" "$WANT" "$IF0" "$IF1" "$LOAD_END" "$OTHERS" "$REP" "$GWSHA" <<'PY'
import csv, json, os, re, sys, time
(csvp, base, run, profile, rate, delay, loss, qkb, system, variant, spec,
 load, waited, src_rc, dst_rc, wall, sha, want, if0, if1, load_end, others, rep, gw_sha) = sys.argv[1:]
va_tx, vb_rx = (int(b) - int(a) for a, b in zip(if0.split(), if1.split()))
rate = float(rate)
def read(p):
    try:
        return open(p, errors="replace").read()
    except OSError:
        return ""
def num(rx, text, cast=float, default=""):
    m = re.search(rx, text, re.M)
    return cast(m.group(1)) if m else default
row = {k: "" for k in (
    "run", "rep", "date", "profile", "rate_mbps", "delay_ms", "loss", "queue_kb", "system", "variant", "wanem_spec",
    "load1", "load_wait_s", "load1_end", "others", "ok", "sha_ok", "wall_s", "time_s", "useful_bytes", "goodput_mbps",
    "util_goodput", "link_frames", "link_bytes", "util_wire", "sent_frames", "frames", "retransmits",
    "frames_1s", "rack_lost", "tail_probes", "timeouts", "spurious", "spurious_pct", "fec", "fec_groups",
    "parity_frames", "parity_pct", "fec_rebuilt", "fec_past_repair", "rtt_min_us", "srtt_us",
    "delivery_mbps", "cc_state", "tcp_retrans", "tcp_rtt_us", "wanem_lost", "wanem_qdrop",
    "wanem_holddrop", "host_drops_in", "host_drops_out", "wanem_late_us", "wanem_cpu_pct", "gw_sha256", "notes")}
row.update(run=run, rep=rep, date=time.strftime("%Y-%m-%dT%H:%M:%S"), profile=profile,
           rate_mbps=f"{rate / 1e6:g}" if rate else "unlimited", delay_ms=delay, loss=loss, queue_kb=qkb,
           system=system, variant=variant, wanem_spec=spec, load1=load, load_wait_s=waited, wall_s=wall,
           load1_end=load_end, others=others.strip(), gw_sha256=gw_sha)
notes = []
w = read(base + ".wanem.log")
m = re.search(r"^  a->b: in (\d+) \((\d+) B\) out (\d+) \((\d+) B\) lost (\d+) queue_drops (\d+) hold_drops (\d+)", w, re.M)
if m:
    fin, bin_, fout, bout, lost, qd, hd = map(int, m.groups())
    row.update(link_frames=fout, link_bytes=bout, wanem_lost=lost, wanem_qdrop=qd, wanem_holddrop=hd)
    # frames va sent that hde-wanem never received (its RX ring overflowed)
    row["host_drops_in"] = max(0, va_tx - fin)
else:
    notes.append("no hde-wanem summary")
row["wanem_late_us"] = num(r"^  a->b: frames left ([\d.]+) us after", w)
row["wanem_cpu_pct"] = num(r"^  lcore \d+: .*\(([\d.]+) % of", w)
t = None
useful = None
if system == "hde":
    s, d = read(base + ".src.log"), read(base + ".dst.log")
    t = num(r"hde-gateway summary \(([\d.]+) s\)", s, float, None)
    row["time_s"] = t if t is not None else ""
    fr = num(r"^  stream 0: .*\), (\d+) frames ([\d.]+) MB", s, int)
    mb = num(r"^  stream 0: .*\), \d+ frames ([\d.]+) MB", s)
    useful = mb * 1e6 if mb != "" else None
    row["frames"] = fr
    # frames sent by the source's first progress line (1 s after it started)
    row["frames_1s"] = num(r"^hde-gateway: 1\.\d s: source round \d+, \d+ pages, (\d+) frames", s, int)
    drx = num(r"^  port \d+ \(dest\): RX (\d+) frames", d, int)
    if drx != "" and row["link_frames"] != "":
        # frames hde-wanem sent that the destination's port never received
        # (at most a few frames off: af_packet also sees vb's own ARP frames)
        row["host_drops_out"] = max(0, row["link_frames"] - drx)
    row["sent_frames"] = num(r"^  port \d+ \(source\): .* TX (\d+) frames", s, int)
    tl = re.search(r"^  stream 0 transport: (.*)$", s, re.M)
    if tl:
        tl = tl.group(1)
        row.update(retransmits=num(r"retransmits (\d+)", tl, int), rack_lost=num(r"\(lost (\d+)", tl, int),
                   tail_probes=num(r"tail probes (\d+)", tl, int), timeouts=num(r"timeouts (\d+)", tl, int),
                   spurious=num(r"spurious (\d+)", tl, int), spurious_pct=num(r"spurious \d+ \(([\d.]+) %", tl),
                   rtt_min_us=num(r"RTT min (\d+) us", tl), srtt_us=num(r"smoothed (\d+) us", tl),
                   delivery_mbps=num(r"delivery ([\d.]+) Mbit/s", tl), cc_state=num(r"state (\S+),", tl, str))
    else:
        notes.append("no transport line")
    fl = re.search(r"^  stream 0 fec: (.*)$", s, re.M)
    if fl:
        fl = fl.group(1)
        row.update(fec=num(r"(\d+,\d+) now", fl, str), fec_groups=num(r"(\d+) groups", fl, int),
                   parity_frames=num(r"(\d+) parity frames", fl, int),
                   parity_pct=num(r"\(([\d.]+) % of the wire", fl))
    row["fec_rebuilt"] = num(r"^  dest fec: \d+ parity frames, (\d+) frames rebuilt", d, int, 0 if fl else "")
    row["fec_past_repair"] = num(r"^  dest fec: .* (\d+) groups past repair", d, int, 0 if fl else "")
    sha_ok = sha == want
    row["sha_ok"] = "yes" if sha_ok else "no"
    ok = src_rc == "0" and dst_rc == "0" and sha_ok
    if not sha_ok:
        notes.append(f"image sha256 {sha or 'missing'}")
    if src_rc != "0" or dst_rc != "0":
        notes.append(f"exit codes source {src_rc} dest {dst_rc}")
    if row["spurious_pct"] != "" and float(row["spurious_pct"]) > 0.5:
        notes.append("spurious > 0.5 %")
else:
    c, sv = {}, {}
    for line in read(base + ".client.log").splitlines():
        if line.startswith("{"):
            c = json.loads(line)
    for line in read(base + ".server.log").splitlines():
        if line.startswith("{") and '"role"' in line:
            sv = json.loads(line)
    ok = src_rc == "0" and dst_rc == "0" and sv.get("bytes", 0) > 0 and sv.get("bytes") == c.get("bytes")
    if not ok:
        notes.append(f"tcp exit codes client {src_rc} server {dst_rc}, bytes {sv.get('bytes')} / {c.get('bytes')}")
    if sv:
        t = sv["seconds"]
        useful = sv["bytes"]
        row["time_s"] = t
    row.update(tcp_retrans=c.get("total_retrans", ""), tcp_rtt_us=c.get("rtt_us", ""))
    if c.get("cc") and c["cc"] != variant:
        notes.append(f"congestion control was {c['cc']}")
        ok = False
row["ok"] = "yes" if ok else "no"
if useful is not None and t:
    row["useful_bytes"] = int(useful)
    row["goodput_mbps"] = round(useful * 8 / t / 1e6, 2)
    if rate:
        row["util_goodput"] = round(useful * 8 / t / rate, 4)
if t and rate and row["link_bytes"] != "":
    # wire bits as the emulator's rate limiter counts them: frame + 24 bytes
    row["util_wire"] = round((row["link_bytes"] + 24 * row["link_frames"]) * 8 / t / rate, 4)
row["notes"] = "; ".join(notes)
old = []
if os.path.exists(csvp) and os.path.getsize(csvp) > 0:
    with open(csvp, newline="") as f:
        rd = csv.DictReader(f)
        if rd.fieldnames != list(row):  # written by another version: rewrite with this header
            old = list(rd)
            os.rename(csvp, csvp + ".old")
new = not os.path.exists(csvp) or os.path.getsize(csvp) == 0
with open(csvp, "a", newline="") as f:
    wr = csv.DictWriter(f, fieldnames=list(row), extrasaction="ignore", restval="")
    if new:
        wr.writeheader()
    wr.writerows(old + [row])
print(f"# {run}: {profile} {system} {variant}: ok={row['ok']} time {row['time_s']} s, goodput {row['goodput_mbps']} Mbit/s, "
      f"util {row['util_goodput']} (wire {row['util_wire']}), rtx {row['retransmits'] or row['tcp_retrans']}, "
      f"spurious {row['spurious']} ({row['spurious_pct']} %), rebuilt {row['fec_rebuilt']}, load {load}"
      + (f" [{row['notes']}]" if row["notes"] else ""), file=sys.stderr)
PY
}

want_profile() { [ -z "$ONLY" ] || case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
want_system() { case ",$SYSTEMS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

# Run numbers go on from the rows already in the CSV (a rerun of some
# profiles with --only appends to it).
N=0
[ -s "$CSV" ] && N=$(($(wc -l <"$CSV") - 1))
# One measured run, repeated once if a binary changed under it.
measure() {  # PROFILE RATE_BPS DELAY_MS LOSS QUEUE_KB SYSTEM VARIANT ARG -- SPEC...
  local profile=$1 rate=$2 delay=$3 loss=$4 qkb=$5 system=$6 variant=$7 arg=$8; shift 9
  local try stamp
  for try in 1 2; do
    N=$((N + 1))
    RUN=$(printf '%02d-%s-%s-%s' "$N" "$profile" "$system" "${variant//,/x}")
    [ "$REPS" -gt 1 ] && RUN=$RUN-r$REP
    wait_load
    stamp=$(bin_stamp)
    GWSHA=$(sha256sum "$GW" | cut -c1-12)
    IF0=$(ifstats)
    # other heavy work, sampled every 2 s while the run lasts
    : >"$OUT/logs/$RUN.others"
    ( while :; do foreign >>"$OUT/logs/$RUN.others"; echo >>"$OUT/logs/$RUN.others"; sleep 2; done ) &
    SAMPLER=$!
    if [ "$system" = hde ]; then run_hde "$arg" "$@"; else run_tcp "$variant" "$arg" "$@"; fi
    kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null; SAMPLER=
    IF1=$(ifstats) LOAD_END=$(load1)
    OTHERS=$(tr ' ' '\n' <"$OUT/logs/$RUN.others" | sed '/^$/d' | sort -u | tr '\n' ' ')
    if [ "$(bin_stamp)" != "$stamp" ]; then
      echo "# $RUN: a binary changed during the run; running it again" >&2
      continue
    fi
    record "$profile" "$rate" "$delay" "$loss" "$qkb" "$system" "$variant" "$*"
    return
  done
}

# The last CSV value of FIELD in the rows matching every KEY=VALUE given.
csv_get() {  # FIELD KEY=VALUE...
  "$PY" - "$CSV" "$@" <<'PY' 2>/dev/null
import csv, sys
path, field, conds = sys.argv[1], sys.argv[2], [c.split("=", 1) for c in sys.argv[3:]]
v = ""
with open(path, newline="") as f:
    for r in csv.DictReader(f):
        if all(r.get(k) == want for k, want in conds) and r.get(field, ""):
            v = r[field]
print(v)
PY
}
tcp_secs() {  # PROFILE: HDE's no-FEC time on it, clamped to 10 ... 30 s (20 s if unknown)
  local t; t=$(csv_get time_s profile="$1" system=hde variant=nofec ok=yes)
  awk -v t="${t:-20}" 'BEGIN { if (t < 10) t = 10; if (t > 30) t = 30; printf "%d", t + 0.5 }'
}

to_bps() {  # 100m, 1.5g, 500000 -> bits/s
  awk -v r="$1" 'BEGIN { m = 1; s = substr(r, length(r)); if (s == "k") m = 1e3; else if (s == "m") m = 1e6; else if (s == "g") m = 1e9;
    if (m != 1) r = substr(r, 1, length(r) - 1); printf "%.0f", r * m }'
}
qkb() {  # RATE_BPS DELAY_MS: one BDP (RTT = 2 x delay) in KiB, at least 256
  awk -v r="$1" -v d="$2" 'BEGIN { q = r * 2 * d / 1000 / 8 / 1024; if (q < 256) q = 256; printf "%d", q + 0.5 }'
}

# A profile: every system and variant on one link.
profile() {  # NAME RATE DELAY_MS LOSS SEED
  local name=$1 rate=$2 delay=$3 loss=$4 seed=$5
  want_profile "$name" || return 0
  local bps q both ab secs
  bps=$(to_bps "$rate"); q=$(qkb "$bps" "$delay")
  both="rate=$rate,delay_ms=$delay,queue_kb=$q"
  for REP in $(seq "$REPS"); do
    ab="loss=$loss,seed=$((seed + 100 * (REP - 1)))"  # another loss sequence per repetition
    echo "# profile $name (repetition $REP of $REPS): --both $both --ab $ab" >&2
    if want_system hde; then
      measure "$name" "$bps" "$delay" "$loss" "$q" hde nofec off -- --both "$both" --ab "$ab"
      if [ "$loss" != 0 ]; then
        measure "$name" "$bps" "$delay" "$loss" "$q" hde fec-auto auto -- --both "$both" --ab "$ab"
        measure "$name" "$bps" "$delay" "$loss" "$q" hde "fec-$FECFIX" "$FECFIX" -- --both "$both" --ab "$ab"
      fi
    fi
    if want_system tcp; then
      secs=$(tcp_secs "$name")
      measure "$name" "$bps" "$delay" "$loss" "$q" tcp cubic "$secs" -- --both "$both" --ab "$ab"
      measure "$name" "$bps" "$delay" "$loss" "$q" tcp bbr "$secs" -- --both "$both" --ab "$ab"
    fi
  done
}

# Calibration: no rate limit, no impairment.
calib_mbps() { csv_get goodput_mbps profile=calib system="$1" ok=yes; }
T_START=$SECONDS
if [ "$TOP" = auto ] || want_profile calib; then
  if [ -z "$ONLY" ] || want_profile calib || want_profile top; then
    echo "# profile calib: no rate limit, no impairment" >&2
    measure calib 0 0 0 "" tcp cubic 8 -- --both ""
    measure calib 0 0 0 "" hde nofec off -- --both ""
  fi
fi
if [ "$TOP" = auto ]; then
  tc=$(calib_mbps tcp) hc=$(calib_mbps hde)
  TOP=$(awk -v a="${tc:-0}" -v b="${hc:-0}" 'BEGIN { m = (a < b || b == 0) ? a : b; if (m == 0) m = 625;
    r = int(0.8 * m / 50) * 50; if (r < 50) r = 50; if (r > 1000) r = 1000; print r "m" }')
  echo "# top rate: $TOP (calib: TCP ${tc:-?} Mbit/s, HDE ${hc:-?} Mbit/s of goodput)" >&2
fi
echo "top rate: $TOP" >>"$OUT/env.txt"

profile 1g 1g 0 0 21
[ "$TOP" != 1g ] && profile top "$TOP" 0 0 22
profile 100m-rtt40 100m 20 0 25
profile 100m-rtt40-loss1 100m 20 0.01 23
profile 100m-rtt40-loss5 100m 20 0.05 26
profile 100m-rtt200-loss5 100m 100 0.05 24
profile 1g-rtt10-loss0.1 1g 5 0.001 27
profile 1g-rtt100-loss1 1g 50 0.01 28
echo "# $N runs in $((SECONDS - T_START)) s; CSV: $CSV" >&2

# The table (stdout) and the plot.
"$PY" "$ROOT/perf/wanem/plot_transport.py" "$CSV" --table $([ "$PLOT" = 1 ] && echo "--png $OUT/transport.png")
