#!/usr/bin/env bash
# control_test.sh — a real gateway driven through hdectl and the DPDK
# telemetry socket: commands and their JSON, a live mode change that shows
# on the wire, counters that move, bad clients, shutdown that drains.
#   control_test.sh PATH/TO/hde-gateway PATH/TO/hdectl
set -uo pipefail
GW=$1
CTL=$2
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/hde-ctl-test.XXXXXX)
PFX=hdectl$$
RUN=/var/run/dpdk/$PFX
[ "$(id -u)" -eq 0 ] || RUN=${XDG_RUNTIME_DIR:-/tmp}/dpdk/$PFX
SOCK=$RUN/hde.sock
trap 'kill $GPID 2>/dev/null; rm -rf "$T"' EXIT
pass=0 fail=0
ok() { echo "ok - $1"; pass=$((pass + 1)); }
bad() { echo "not ok - $1"; fail=$((fail + 1)); }
js() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# A long synthetic migration in datacenter mode, paced so it lasts. (Frames
# in clear: --no-encrypt lets `set mode internet` below run without a key.)
"$GW" --no-huge -m 2048 --no-pci -l 0-1 --log-level=lib.eal:error --file-prefix "$PFX" -- \
  --role loopback --gen mib=256,rounds=6,dirty=0.6 --sink "$T/out" --mode datacenter --no-encrypt --quiet >"$T/gw.log" 2>&1 &
GPID=$!
# (Generating the trace takes a while on a loaded machine.)
for _ in $(seq 600); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || { echo "no control socket at $SOCK"; cat "$T/gw.log"; exit 1; }
# Make the migration outlast every step below, also in slow (sanitizer) builds
# and on a loaded machine (where this test has taken 6 minutes): paced at
# 12 Mbit/s it had sent 73 MB a minute in, with an ETA of 137 s more; 8
# Mbit/s leaves a wider margin. The test ends it with `shutdown`.
"$CTL" -s "$SOCK" set link-rate 8m >/dev/null

out=$("$CTL" -s "$SOCK" --format json version) && [ "$(echo "$out" | js 'd["version"]')" = "hde-gateway 0.1.0" ] \
  && ok "version" || bad "version: $out"
n=$("$CTL" -s "$SOCK" --format json list-commands | js 'len(d)')
[ "${n:-0}" -ge 15 ] && ok "list-commands lists $n commands" || bad "list-commands: $n"
"$CTL" -s "$SOCK" help set mode | grep -q "usage: set mode" && ok "help set mode" || bad "help set mode"
for c in "show stats" "show lcores" "show ports" "show codecs" "show baselines" "show migrations" "show config"; do
  if "$CTL" -s "$SOCK" --format json $c >"$T/c.json" && python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/c.json"; then
    ok "$c (JSON)"
  else
    bad "$c"
  fi
  "$CTL" -s "$SOCK" $c >/dev/null || bad "$c (text)"
done

# Counters move.
p1=$("$CTL" -s "$SOCK" --format json show stats | js 'd["source"]["pages"]')
sleep 1
p2=$("$CTL" -s "$SOCK" --format json show stats | js 'd["source"]["pages"]')
[ "${p2:-0}" -gt "${p1:-0}" ] && ok "pages counter moves ($p1 -> $p2)" || bad "pages did not move ($p1 -> $p2)"

# Baselines read under RCU while the worker refills them: every page found
# hashes to what its slot says (a slot rewritten under the reader would not).
read -r found whole < <(python3 "$HERE/lookups.py" "$SOCK" 0 0 7 2000)
[ "${found:-0}" -gt 0 ] && [ "$whole" = "$found" ] && ok "baselines lookup: $found pages found, every one whole" \
  || bad "baselines lookup: ${found:-none} found, ${whole:-none} whole"

# A mode change takes effect on the wire: zstd batches appear.
z1=$("$CTL" -s "$SOCK" --format json show codecs | js 'sum(r["bytes_out"] for r in d if r["codec"]=="zstd")')
"$CTL" -s "$SOCK" set mode internet >/dev/null && ok "set mode internet" || bad "set mode internet"
sleep 1.5
z2=$("$CTL" -s "$SOCK" --format json show codecs | js 'sum(r["bytes_out"] for r in d if r["codec"]=="zstd")')
[ "${z2:-0}" -gt "${z1:-0}" ] && ok "after set mode internet, zstd bytes on the wire grow ($z1 -> $z2)" \
  || bad "mode change not seen on the wire ($z1 -> $z2)"
[ "$("$CTL" -s "$SOCK" --format json show config | js 'd["mode"]')" = internet ] && ok "show config: internet" \
  || bad "show config"
# Internet mode starts at zstd:3: a different level must show in the config.
"$CTL" -s "$SOCK" set codec zstd:1 >/dev/null \
  && [ "$("$CTL" -s "$SOCK" --format json show config | js 'd["codec"]')" = zstd:1 ] \
  && ok "set codec zstd:1 (from the mode's zstd:3): show config says zstd:1" || bad "set codec zstd:1"
# A flush empties the baseline cache: its entries drop to what was filled since.
e1=$("$CTL" -s "$SOCK" --format json show baselines | js 'sum(r["entries"] for r in d)')
"$CTL" -s "$SOCK" baselines flush >/dev/null
e2=$("$CTL" -s "$SOCK" --format json show baselines | js 'sum(r["entries"] for r in d)')
[ "${e1:-0}" -gt 1000 ] && [ "${e2:-999999}" -lt $((e1 / 4)) ] && ok "baselines flush: entries $e1 -> $e2" \
  || bad "baselines flush: entries $e1 -> $e2"
# A reset starts the counters over: pages fall below what they were.
s1=$("$CTL" -s "$SOCK" --format json show stats | js 'd["source"]["pages"]')
"$CTL" -s "$SOCK" stats reset >/dev/null
s2=$("$CTL" -s "$SOCK" --format json show stats | js 'd["source"]["pages"]')
[ "${s1:-0}" -gt 0 ] && [ "${s2:-999999999}" -lt "${s1:-0}" ] && ok "stats reset: pages $s1 -> $s2" \
  || bad "stats reset: pages $s1 -> $s2"
"$CTL" -s "$SOCK" set cache-mb 64 >/dev/null && sleep 0.5 \
  && [ "$("$CTL" -s "$SOCK" --format json show baselines | js 'd[0]["slots"]')" = 16384 ] \
  && ok "set cache-mb 64: 16384 slots" || bad "set cache-mb"
"$CTL" -s "$SOCK" set idle-sleep 20 >/dev/null && [ "$("$CTL" -s "$SOCK" --format json show config | js 'd["idle_sleep_us"]')" = 20 ] \
  && ok "set idle-sleep 20" || bad "set idle-sleep"
r=$("$CTL" -s "$SOCK" --format json show stats | js 'd["rates"]["pages_per_s"] > 0') && [ "$r" = True ] \
  && ok "show stats has rates" || bad "show stats rates: $r"
n=$("$CTL" -s "$SOCK" --format json show codecs | js 'all(r["ns_per_page"] > 0 for r in d if r["codec"] != "raw")')
[ "$n" = True ] && ok "show codecs has ns per page" || bad "show codecs ns_per_page: $n"
# Paced at 8 Mbit/s with rounds to go: the ETA is a positive number of seconds.
e=$("$CTL" -s "$SOCK" --format json show migrations | js 'isinstance(d[0]["eta_s"], (int, float)) and d[0]["eta_s"] > 0 and d[0]["state"] == "sending"')
[ "$e" = True ] && ok "show migrations has an ETA" || bad "show migrations ETA: $e"
t=$("$CTL" -s "$SOCK" --format json show stats | js 'all(k in d["transport"][0] for k in ("delivery_mbps", "bottleneck_mbps", "min_rtt_us", "srtt_us", "loss_rate", "spurious", "state", "fec_rebuilt")) and d["transport"][0]["frames"] > 0')
[ "$t" = True ] && ok "show stats: per-stream transport (delivery, bottleneck, RTTs, loss, spurious, state, FEC)" || bad "show stats transport: $t"

# In hybrid mode the selector picks the codec: forcing one is an error.
"$CTL" -s "$SOCK" set mode hybrid >/dev/null \
  && ! "$CTL" -s "$SOCK" set codec lz4 >/dev/null 2>"$T/err" && grep -q "hybrid" "$T/err" \
  && ok "set codec in hybrid mode: refused, saying why" || bad "set codec in hybrid mode: $(cat "$T/err")"
"$CTL" -s "$SOCK" set mode internet >/dev/null || bad "back to internet mode"

# The learning selector runs on the control thread: samples arrive, and on a
# 30 Mbit/s link it compresses with zstd. Its own gateway: the step to a
# 10 Gbit/s link below lets that migration run at full speed, and it ends
# within seconds (the first gateway must outlive every step of this test).
SPFX=${PFX}s
SSOCK=$T/sel.sock
"$GW" --no-huge -m 2048 --no-pci -l 0-1 --log-level=lib.eal:error --file-prefix "$SPFX" -- \
  --role loopback --gen mib=256,rounds=6,dirty=0.6,seed=3 --sink "$T/out2" --mode hybrid --no-encrypt \
  --link-rate 30m --ctl-sock "$SSOCK" --quiet >"$T/sel.log" 2>&1 &
SGPID=$!
trap 'kill $GPID $SGPID ${KPID:-} 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 600); do [ -S "$SSOCK" ] && break; sleep 0.1; done
[ -S "$SSOCK" ] || bad "selector gateway did not start: $(tail -3 "$T/sel.log")"
sel() { "$CTL" -s "$SSOCK" --format json show selector | js "$1"; }
for _ in $(seq 80); do
  [ "$(sel 'd["samples"] > 20 and len(d["arms"]) >= 3')" = True ] && break
  sleep 0.25
done
r=$(sel 'd["mode"] == "hybrid" and d["link_source"] == "configured" and abs(d["link_mbps"] - 30) < 1e-6 and d["samples"] > 20 and d["samples_dropped"] == 0 and len(d["arms"]) >= 3')
a30=$(sel '" ".join(c["class"] + "=" + c["arm"] for c in d["classes"])')
[ "$r" = True ] && [[ "$a30" == *zstd* ]] && ok "show selector at 30 Mbit/s: samples, estimates, zstd chosen ($a30)"   || bad "show selector at 30 Mbit/s: $r $a30"
# Estimates export and import (merge) as JSON.
# (The import merges every estimate of the file: its reply counts them.)
"$CTL" -s "$SSOCK" selector export "$T/sel.json" >/dev/null \
  && n_exp=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["estimates"]) if d["hde_selector"] == 1 else -1)' "$T/sel.json") \
  && [ "${n_exp:-0}" -ge 2 ] \
  && [ "$("$CTL" -s "$SSOCK" --format json selector import "$T/sel.json" | js 'd["estimates"]')" = "$n_exp" ] \
  && ok "selector export ($n_exp estimates) / import (reads all $n_exp)" || bad "selector export / import (${n_exp:-none})"
echo '{"hde_selector": 1, "estimates": [{"class": "bulk", "arm": "zstd:2", "effect_ratio": 0, "effect_cycles": 0, "bytes": 1}]}' >"$T/bad.json"
! "$CTL" -s "$SSOCK" selector import "$T/bad.json" >/dev/null 2>"$T/err" && grep -q "zstd:2" "$T/err"   && ok "selector import of an unknown arm: refused, naming it" || bad "selector import bad arm: $(cat "$T/err")"
# A faster link changes the choice at once: no codec keeps up with 10 Gbit/s
# on one worker, so the cheap end (the raw ladder or LZ4) wins.
"$CTL" -s "$SSOCK" set link-rate 10g >/dev/null
a10=""
for _ in $(seq 30); do
  a10=$(sel '" ".join(c["class"] + "=" + c["arm"] for c in d["classes"])' 2>/dev/null) || break
  [[ "$a10" != *zstd* ]] && break
  sleep 0.1
done
[ -n "$a10" ] && [[ "$a10" != *zstd* ]] && ok "set link-rate 10g mid-migration: the selector moves off zstd ($a30 -> $a10)"   || bad "set link-rate 10g: selector still $a10"
"$CTL" -s "$SSOCK" shutdown >/dev/null 2>&1
wait $SGPID

# Errors: non-zero exit, message on stderr.
for args in "nope" "set mode warp" "set mode" "set codec zstd:99" "set link-rate fast" "baselines flush x" \
            "set idle-sleep -1" "set cache-mb lots" "baselines lookup 0" "baselines lookup x 1" "baselines lookup 0 -1"; do
  if "$CTL" -s "$SOCK" $args >/dev/null 2>"$T/err"; then bad "hdectl $args succeeded"
  elif [ -s "$T/err" ]; then ok "hdectl $args: error exit and message"
  else bad "hdectl $args: no message"; fi
done
"$CTL" -s "$T/none.sock" version 2>/dev/null
[ $? -eq 2 ] && ok "no gateway: exit 2" || bad "no gateway exit code"

# Watch mode prints repeatedly.
timeout 2.5 "$CTL" -s "$SOCK" --watch 1 show stats >"$T/watch.txt"
[ "$(grep -c '^role:' "$T/watch.txt")" -ge 2 ] && ok "show stats --watch 1 repeats" || bad "watch"
timeout 2.5 "$CTL" -s "$SOCK" show stats --watch 1 --format json >"$T/watch2.txt"
[ "$(grep -c '"role"' "$T/watch2.txt")" -ge 2 ] && ok "long options after COMMAND (show stats --watch 1 --format json)" \
  || bad "options after COMMAND: $(head -c 200 "$T/watch2.txt")"

# DPDK telemetry: the same figures under /hde/.
if python3 "$HERE/telemetry.py" "$RUN" /hde/stats >"$T/tel.json" 2>"$T/err" \
   && python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["/hde/stats"]; assert d["source_pages"] > 0 and d["role"] == "loopback"' "$T/tel.json"; then
  ok "telemetry /hde/stats"
else
  bad "telemetry /hde/stats"; cat "$T/err" "$T/tel.json"
fi
# /hde/lcores: one row per lcore, and the rows' loop counters run.
if python3 "$HERE/telemetry.py" "$RUN" /hde/lcores >"$T/tel.json" 2>"$T/err" \
   && python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["/hde/lcores"]; assert sum(v for k, v in d.items() if k.endswith("_loops")) > 0 and "0_lcore" in d, d' "$T/tel.json"; then
  ok "telemetry /hde/lcores"
else
  bad "telemetry /hde/lcores"; cat "$T/err" "$T/tel.json"
fi

# Evictions from the 64 MiB cache retire slots; they come back after grace periods.
# (Wait for them: how soon depends on the pace of the migration.)
for _ in $(seq 60); do
  rc=$("$CTL" -s "$SOCK" --format json show baselines | js 'sum(r["reclaimed"] for r in d) > 0 and all("fill_deferred" in r for r in d)')
  [ "$rc" = True ] && break
  sleep 0.5
done
[ "$rc" = True ] && ok "show baselines: retired slots reclaimed after grace periods" || bad "show baselines RCU counters: $rc"

# Bad clients: counted, answered or dropped; the gateway keeps forwarding.
if python3 "$HERE/abuse.py" "$SOCK" >"$T/abuse.txt" 2>&1; then ok "bad clients handled"; else bad "bad clients"; fi
cat "$T/abuse.txt" | sed 's/^/    /'
# (The encoder runs ahead of the paced wire and waits for the window in
# steps: give it up to 10 s to move.)
p3=$("$CTL" -s "$SOCK" --format json show stats | js 'd["source"]["pages"]')
for _ in $(seq 20); do
  sleep 0.5
  p4=$("$CTL" -s "$SOCK" --format json show stats | js 'd["source"]["pages"]')
  [ "${p4:-0}" -gt "${p3:-0}" ] && break
done
[ "${p4:-0}" -gt "${p3:-0}" ] && ok "still forwarding after the bad clients ($p3 -> $p4)" || bad "stalled ($p3 -> $p4)"

# Without a key and without --no-encrypt, a gateway started in datacenter
# mode refuses to switch to internet or hybrid mode live, as it would refuse
# to start in them.
"$GW" --no-huge -m 512 --no-pci -l 0-1 --log-level=lib.eal:error --file-prefix "${PFX}k" -- \
  --role loopback --gen mib=32,rounds=0 --sink "$T/o3" --link-rate 1m --ctl-sock "$T/k.sock" --quiet \
  >"$T/k.log" 2>&1 &
KPID=$!
for _ in $(seq 300); do [ -S "$T/k.sock" ] && break; sleep 0.1; done
for m in internet hybrid; do
  if "$CTL" -s "$T/k.sock" set mode $m >/dev/null 2>"$T/err"; then bad "set mode $m without a key: accepted"
  elif grep -q -- "--key-file" "$T/err" && grep -q -- "--no-encrypt" "$T/err" \
       && [ "$("$CTL" -s "$T/k.sock" --format json show config | js 'd["mode"]')" = datacenter ]; then
    ok "set mode $m without a key: refused, naming --key-file and --no-encrypt; still datacenter"
  else bad "set mode $m without a key: $(cat "$T/err")"; fi
done
"$CTL" -s "$T/k.sock" shutdown >/dev/null 2>&1
wait $KPID

# A second gateway on the same socket is refused.
"$GW" --no-huge -m 512 --no-pci -l 0 --log-level=lib.eal:error --file-prefix "${PFX}b" -- \
  --role loopback --gen mib=1,rounds=0 --sink "$T/o2" --ctl-sock "$SOCK" --timeout 2 >"$T/second.log" 2>&1
grep -q "in use by another gateway" "$T/second.log" && ok "second gateway on the same socket refused" \
  || bad "second gateway: $(tail -2 "$T/second.log")"

# Shutdown drains and exits 0.
"$CTL" -s "$SOCK" shutdown >/dev/null && ok "shutdown accepted" || bad "shutdown"
wait $GPID
rc=$?
sent=$(sed -n 's/.*), \([0-9]*\) frames .*/\1/p' "$T/gw.log" | head -1)
decoded=$(sed -n 's/.* \([0-9]*\) decoded,.*/\1/p' "$T/gw.log" | head -1)
if [ $rc -eq 0 ] && [ -n "$sent" ] && [ "$sent" = "$decoded" ]; then
  ok "shutdown drained ($sent frames sent, $decoded decoded) and exited 0"
else
  bad "shutdown: rc $rc, sent $sent, decoded $decoded"; tail -15 "$T/gw.log"
fi
[ -S "$SOCK" ] && bad "socket left behind" || ok "socket removed on exit"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
