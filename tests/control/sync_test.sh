#!/usr/bin/env bash
# sync_test.sh — the fleet sync between three real hde-gateway processes on
# loopback (docs/sync.md): A migrates a generated trace (--role loopback,
# paced so it lasts), B and C are destinations on net_null; each is told of
# one other only. Checked through hdectl: membership converges (the third
# learned through the second), A's migration shows in `show fleet` on B and
# C, C killed and restarted is seen with its new epoch, a partition (`peers
# block`) makes the others suspect B and heals with registries that agree,
# forged/garbage/replayed datagrams are counted and change nothing, a key
# file others can read is refused, a gateway without --sync-listen answers
# `show peers` with an error and runs as before. Telemetry /hde/peers.
#   sync_test.sh PATH/TO/hde-gateway PATH/TO/hdectl
set -uo pipefail
GW=$1
CTL=$2
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/hde-sync-test.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
pass=0 fail=0
ok() { echo "ok - $1"; pass=$((pass + 1)); }
bad() { echo "not ok - $1"; fail=$((fail + 1)); }
js() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
BASE=$((20000 + $$ % 20000))
PA=127.0.0.1:$BASE PB=127.0.0.1:$((BASE + 1)) PC=127.0.0.1:$((BASE + 2))
head -c 32 /dev/urandom | base64 >"$T/key"
chmod 600 "$T/key"
EAL="--no-huge -m 512 --no-pci -l 0 --log-level=lib.eal:error"
SYNC="--sync-key-file $T/key --sync-interval-ms 200 --idle-sleep-us 1000 --quiet"

# A is paced (10 Mbit/s) so its migration outlasts every step, also on a
# loaded machine. Hybrid mode: its learning selector's statistics go into
# the fleet's (frames in clear: a loopback).
start_a() {
  "$GW" $EAL --file-prefix "sa$$" -- --role loopback --gen mib=128,rounds=8,dirty=0.3 --link-rate 10m \
    --mode hybrid --no-encrypt \
    --sink "$T/a" --ctl-sock "$T/a.sock" --node-id 1 --sync-listen "$PA" --peers "$PB" $SYNC >"$T/a.log" 2>&1 &
  PIDS+=($!)
}
start_dest() {  # NAME NODE LISTEN PEER PREFIX
  "$GW" $EAL --vdev=net_null0,no-rx=1 --file-prefix "$5" -- --role dest --sink "$T/$1" --timeout 3600 \
    --ctl-sock "$T/$1.sock" --node-id "$2" --sync-listen "$3" --peers "$4" $SYNC >"$T/$1.log" 2>&1 &
  PIDS+=($!)
  eval "PID_$1=$!"
}
c() { local s=$1; shift; "$CTL" -s "$T/$s.sock" --format json "$@"; }
wait_for() {  # SECONDS PYTHON-CONDITION SOCK CMD...
  local secs=$1 cond=$2; shift 2
  for _ in $(seq $((secs * 5))); do
    [ "$(c "$@" 2>/dev/null | js "$cond" 2>/dev/null)" = True ] && return 0
    sleep 0.2
  done
  return 1
}

start_a
start_dest b 2 "$PB" "$PC" "sb$$"
start_dest c 3 "$PC" "$PA" "sc$$"
for s in a b c; do
  # (up to 60 s: A generates a 1 GiB trace first, slow on a loaded machine)
  for _ in $(seq 600); do [ -S "$T/$s.sock" ] && break; sleep 0.1; done
  [ -S "$T/$s.sock" ] || { echo "gateway $s did not start"; cat "$T/$s.log"; exit 1; }
done

ALL3='len(d) == 3 and sorted(r["node"] for r in d) == [1, 2, 3] and all(r["state"] in ("self", "alive") for r in d)'
for s in a b c; do
  wait_for 15 "$ALL3" $s show peers && ok "membership converges on $s (3 gateways, each told of one)" \
    || { bad "membership on $s: $(c $s show peers)"; }
done
for s in b c; do
  wait_for 10 'any(m["vm"] == "n1/vm0" and m["source"] == 1 and m["state"] in ("bulk", "dirty") and m["pages"] > 0 for m in d["migrations"])' $s show fleet \
    && ok "A's migration shows in show fleet on $s" || bad "show fleet on $s: $(c $s show fleet)"
done
# The selector's statistics: what A's workers measured reaches B and C, as
# one contribution (the same totals everywhere once A stops adding).
for s in b c; do
  wait_for 10 'sum(r["samples"] for r in d["selector"]) > 0 and all(r["class"] in ("bulk", "dirty") and r["pages"] > 0 and r["bytes_per_page"] > 0 for r in d["selector"])' $s show fleet \
    && ok "A's selector statistics reach $s ($(c $s show fleet | js '" ".join("%s/%s=%d" % (r["class"], r["codec"], r["samples"]) for r in d["selector"])'))" \
    || bad "selector statistics on $s: $(c $s show fleet | js 'd["selector"]')"
done
"$CTL" -s "$T/b.sock" show fleet >"$T/fleet.txt" && grep -q "n1/vm0" "$T/fleet.txt" && ok "show fleet (text)" \
  || bad "show fleet text: $(cat "$T/fleet.txt")"
for cmd in "show peers" "show sync"; do
  "$CTL" -s "$T/a.sock" $cmd >/dev/null && ok "$cmd (text)" || bad "$cmd (text)"
done

# C is killed and restarts (a new epoch): the others see the new one.
e1=$(c a show peers | js '[r["epoch"] for r in d if r["node"] == 3][0]')
kill -9 "$PID_c"
wait "$PID_c" 2>/dev/null
sleep 1
start_dest c 3 "$PC" "$PA" "sc2$$"
for _ in $(seq 100); do [ -S "$T/c.sock" ] && c c version >/dev/null 2>&1 && break; sleep 0.1; done
for s in a b; do
  wait_for 15 "[r for r in d if r['node'] == 3 and r['epoch'] > $e1 and r['state'] == 'alive'] != []" $s show peers \
    && ok "$s sees C's new epoch after its restart" || bad "$s after C's restart: $(c $s show peers)"
done
wait_for 10 'any(m["vm"] == "n1/vm0" for m in d["migrations"])' c show fleet \
  && ok "the restarted C has the registry again" || bad "restarted C: $(c c show fleet)"

# A partition: B drops everything to and from A and C. They suspect it;
# the migration goes on at A.
c b peers block "$PA" >/dev/null && c b peers block "$PC" >/dev/null
wait_for 10 '[r for r in d if r["node"] == 2 and r["state"] in ("suspect", "dead")] != []' a show peers \
  && ok "partition: A suspects B" || bad "partition: A's view of B: $(c a show peers)"
p_b=$(c b show fleet | js '[m["pages"] for m in d["migrations"] if m["vm"] == "n1/vm0"][0]')
sleep 2
p_a=$(c a show fleet | js '[m["pages"] for m in d["migrations"] if m["vm"] == "n1/vm0"][0]')
p_b2=$(c b show fleet | js '[m["pages"] for m in d["migrations"] if m["vm"] == "n1/vm0"][0]')
[ "$p_b2" = "$p_b" ] && [ "$p_a" -gt "$p_b" ] && ok "partition: B's view stands still ($p_b pages) while A goes on ($p_a)" \
  || { bad "partition: B $p_b -> $p_b2, A $p_a"; c b show peers; c b show sync; }
blocked=$(c b show sync | js 'd["drops"]["blocked"]')
[ "${blocked:-0}" -gt 0 ] && ok "partition: B counts $blocked blocked datagrams" || bad "blocked drops: $blocked"
c b peers unblock "$PA" >/dev/null && c b peers unblock "$PC" >/dev/null
for s in a b c; do
  wait_for 15 "$ALL3" $s show peers && ok "healed: $s sees all three alive" || bad "healed $s: $(c $s show peers)"
done
wait_for 10 "[m['pages'] for m in d['migrations'] if m['vm'] == 'n1/vm0'][0] >= $p_a" b show fleet \
  && ok "healed: B catches up with A's migration" || bad "B after heal: $(c b show fleet)"
key='sorted((m["vm"], m["source"], m["destination"], m["conflict"], m["claims"]) for m in d["migrations"])'
ra=$(c a show fleet | js "$key"); rb=$(c b show fleet | js "$key"); rc=$(c c show fleet | js "$key")
[ -n "$ra" ] && [ "$ra" = "$rb" ] && [ "$rb" = "$rc" ] && ok "healed: the three registries agree ($ra)" \
  || bad "registries differ: A $ra, B $rb, C $rc"

# Bad datagrams at A's sync socket: counted, nothing changes.
before=$(c a show sync | js 'd["drops"]'); m0=$(c a show peers | js 'len(d)')
python3 - "$BASE" <<'PY'
import os, socket, struct, sys, time
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
a = ("127.0.0.1", port)
s.sendto(b"garbage", a)                              # truncated
s.sendto(os.urandom(1500), a)                        # oversize
hdr = b"HS\x01\x00" + struct.pack(">IQQH", 2, 1, 99, 4)
s.sendto(hdr + b"\x01\x00\x00\x00" + os.urandom(32), a)   # a forged tag
s.sendto(b"XX" + os.urandom(100), a)                 # garbage
time.sleep(0.3)
PY
after=$(c a show sync | js 'd["drops"]'); m1=$(c a show peers | js 'len(d)')
python3 -c "
import ast,sys
b, a = ast.literal_eval(sys.argv[1]), ast.literal_eval(sys.argv[2])
assert a['truncated'] > b['truncated'] and a['oversize'] > b['oversize'] and a['auth'] > b['auth'], (b, a)
" "$before" "$after" && [ "$m0" = "$m1" ] && ok "bad datagrams counted by reason ($after), membership unchanged" \
  || bad "bad datagrams: before $before after $after, members $m0 -> $m1"

# Telemetry /hde/peers on A.
RUN=/var/run/dpdk/sa$$
[ "$(id -u)" -eq 0 ] || RUN=${XDG_RUNTIME_DIR:-/tmp}/dpdk/sa$$
if python3 "$HERE/telemetry.py" "$RUN" /hde/peers >"$T/tel.json" 2>"$T/err" &&
   python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["/hde/peers"]; assert sorted(v for k, v in d.items() if k.endswith("_node")) == [1, 2, 3], d' "$T/tel.json"; then
  ok "telemetry /hde/peers"
else
  bad "telemetry /hde/peers: $(cat "$T/err" "$T/tel.json")"
fi

# peers remove: B forgets C and does not learn it again (C still knows B
# through A, so it keeps talking; B answers what C sends).
c b peers remove "$PC" | js 'd["was_a_peer"]' | grep -q True && ok "peers remove" || bad "peers remove"
sleep 1
[ "$(c b show peers | js "[r for r in d if r['addr'] == '$PC' and r.get('link') in ('configured', 'learned')]")" = "[]" ] \
  && ok "a removed peer is not learned again" || bad "removed peer back: $(c b show peers)"
c b peers add "$PC" >/dev/null \
  && wait_for 10 "[r for r in d if r['addr'] == '$PC' and r.get('link') == 'configured' and r['state'] == 'alive'] != []" b show peers \
  && ok "peers add: B has C back as a configured peer, alive" || bad "peers add: $(c b show peers)"
! "$CTL" -s "$T/b.sock" peers add nothere 2>"$T/err" && grep -q "IP:PORT" "$T/err" && ok "peers add: bad address refused" \
  || bad "peers add bad address"

# A key file others can read is refused, saying why (the sync settings
# given as TOML keys this time).
cp "$T/key" "$T/key644"; chmod 644 "$T/key644"
cat >"$T/d.toml" <<TOML
role = "dest"
sink = "$T/d"
ctl_sock = "$T/d.sock"
node_id = 4
sync_listen = "127.0.0.1:$((BASE + 3))"
peers = "$PA"
sync_key_file = "$T/key644"
sync_interval_ms = 250
TOML
"$GW" $EAL --vdev=net_null0,no-rx=1 --file-prefix "sd$$" -- --config "$T/d.toml" >"$T/d.log" 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q "chmod 600" "$T/d.log" && ok "key file with mode 0644 refused: $(grep -o 'has mode 0644[^(]*' "$T/d.log")" \
  || bad "mode 0644 key: rc $rc, $(tail -2 "$T/d.log")"

# Without --sync-listen: as before; the sync commands say it is off.
"$GW" $EAL --vdev=net_null0,no-rx=1 --file-prefix "se$$" -- --role dest --sink "$T/e" --ctl-sock "$T/e.sock" \
  --timeout 3600 --quiet >"$T/e.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -S "$T/e.sock" ] && break; sleep 0.1; done
! "$CTL" -s "$T/e.sock" show peers >/dev/null 2>"$T/err" && grep -q "sync is off" "$T/err" \
  && ok "no --sync-listen: show peers says the sync is off" || bad "sync off: $(cat "$T/err")"
"$CTL" -s "$T/e.sock" show stats >/dev/null && ok "no --sync-listen: the gateway answers as before" || bad "show stats without sync"

# CPU: what the sync took on A's control thread.
echo "# A's sync: $(c a show sync | js '"%d rounds, %.1f ms busy, %.3f %% of the time, %d datagrams out, %d bytes out" % (d["rounds"], d["busy_ms"], d["cpu_share_pct"], d["datagrams_out"], d["bytes_out"])')"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
