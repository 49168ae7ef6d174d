#!/usr/bin/env bash
# wanem.sh — a WAN between two network namespaces, emulated by hde-wanem in
# a third: hde-src/va <-> wa/hde-wan/wb <-> vb/hde-dst (two veth pairs).
# hde-wanem bridges wa and wb through net_af_packet; hde-wan never has an
# address. IPv6 is off on every link (no autoconf chatter on the wire);
# wa and wb are promiscuous; va and vb send whole frames (no TSO/GSO) with
# computed checksums: an af_packet bridge forwards bytes, it cannot finish
# an offloaded checksum or segment a 64 KiB GSO frame.
#   scripts/wanem.sh up [--mtu N] [--ip]   create (idempotent); --ip puts 198.18.0.1/24
#                                          on va and 198.18.0.2/24 on vb (kernel TCP)
#   scripts/wanem.sh down                  remove the three namespaces
#   scripts/wanem.sh status
#   scripts/wanem.sh run [--lcores L] [--mem MB] [-- hde-wanem options]
#                                          hde-wanem in hde-wan on wa/wb, in the foreground
# Names: HDE_WANEM_SRC, HDE_WANEM_WAN, HDE_WANEM_DST (namespaces);
# HDE_WANEM_BIN (the binary; default build-wanem/ or build/ perf/wanem/hde-wanem).
# Needs root (CAP_NET_ADMIN, CAP_NET_RAW).
set -euo pipefail
S=${HDE_WANEM_SRC:-hde-src}
W=${HDE_WANEM_WAN:-hde-wan}
D=${HDE_WANEM_DST:-hde-dst}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:-status}
[ $# -gt 0 ] && shift

has_ns() { ip netns list | awk '{print $1}' | grep -qx "$1"; }

# Legacy ethtool ioctls (no ethtool binary needed): tx checksumming, TSO and
# GSO off on one interface of a namespace.
offloads_off() {  # NS IFACE
  ip netns exec "$1" python3 - "$2" <<'PY'
import ctypes, fcntl, socket, struct, sys
SIOCETHTOOL = 0x8946
ETHTOOL_STXCSUM, ETHTOOL_STSO, ETHTOOL_SGSO = 0x17, 0x1F, 0x24
name = sys.argv[1].encode()
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    for cmd in (ETHTOOL_STSO, ETHTOOL_SGSO, ETHTOOL_STXCSUM):
        val = ctypes.create_string_buffer(struct.pack("II", cmd, 0), 8)
        ifr = struct.pack("16sP", name, ctypes.addressof(val)).ljust(40, b"\0")
        fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifr)
PY
}

case "$cmd" in
  up)
    mtu=1500 ip=0
    while [ $# -gt 0 ]; do
      case "$1" in
        --mtu) mtu=${2:?--mtu needs a value}; shift 2 ;;
        --mtu=*) mtu=${1#--mtu=}; shift ;;
        --ip) ip=1; shift ;;
        *) echo "wanem.sh up: unknown option '$1' (--mtu N, --ip)" >&2; exit 2 ;;
      esac
    done
    case "$mtu" in ''|*[!0-9]*) echo "wanem.sh up: --mtu '$mtu' is not a number" >&2; exit 2 ;; esac
    for ns in "$S" "$W" "$D"; do has_ns "$ns" || ip netns add "$ns"; done
    # Each pair is created with its ends already in their namespaces, so
    # nothing named va/wa/wb/vb ever appears in the root namespace.
    ip -n "$S" link show va >/dev/null 2>&1 || ip link add va netns "$S" type veth peer name wa netns "$W"
    ip -n "$D" link show vb >/dev/null 2>&1 || ip link add vb netns "$D" type veth peer name wb netns "$W"
    for ns_if in "$S:va" "$W:wa" "$W:wb" "$D:vb"; do
      ns=${ns_if%%:*} ifc=${ns_if##*:}
      ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 || true
      ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$ifc.disable_ipv6=1" || true
      ip -n "$ns" link set "$ifc" mtu "$mtu" up
      ip -n "$ns" link set lo up
    done
    ip -n "$W" link set wa promisc on
    ip -n "$W" link set wb promisc on
    offloads_off "$S" va
    offloads_off "$D" vb
    if [ "$ip" = 1 ]; then
      ip -n "$S" addr replace 198.18.0.1/24 dev va
      ip -n "$D" addr replace 198.18.0.2/24 dev vb
    fi
    addrs=; [ "$ip" = 1 ] && addrs=", 198.18.0.1 <-> 198.18.0.2"
    echo "wanem: $S/va <-> wa/$W/wb <-> vb/$D up (MTU $mtu$addrs)"
    ;;
  down)
    for ns in "$S" "$W" "$D"; do has_ns "$ns" && ip netns del "$ns"; done
    rm -rf "/var/run/dpdk/hde-wanem-$W"  # EAL's runtime files of `run`
    echo "wanem: removed"
    ;;
  status)
    for ns_if in "$S:va" "$W:wa" "$W:wb" "$D:vb"; do
      ns=${ns_if%%:*} ifc=${ns_if##*:}
      if ip -n "$ns" link show "$ifc" >/dev/null 2>&1; then
        echo "$ns/$ifc: $(ip -n "$ns" -br addr show "$ifc" | awk '{$1=""; print}')"
      else
        echo "$ns/$ifc: absent"
      fi
    done
    pids=$(ip netns pids "$W" 2>/dev/null | tr '\n' ' ')
    echo "processes in $W: ${pids:-none}"
    ;;
  run)
    lcores=0 mem=512
    while [ $# -gt 0 ]; do
      case "$1" in
        --lcores) lcores=${2:?--lcores needs a value}; shift 2 ;;
        --mem) mem=${2:?--mem needs a value}; shift 2 ;;
        --) shift; break ;;
        *) break ;;
      esac
    done
    bin=${HDE_WANEM_BIN:-}
    if [ -z "$bin" ]; then
      for b in "$ROOT/build-wanem/perf/wanem/hde-wanem" "$ROOT/build/perf/wanem/hde-wanem"; do
        [ -x "$b" ] && { bin=$b; break; }
      done
    fi
    [ -n "$bin" ] && [ -x "$bin" ] || { echo "wanem.sh run: no hde-wanem binary (build it, or set HDE_WANEM_BIN)" >&2; exit 1; }
    ip -n "$W" link show wa >/dev/null 2>&1 || { echo "wanem.sh run: $W/wa absent (wanem.sh up first)" >&2; exit 1; }
    mtu=$(ip -n "$W" link show wa | sed -n 's/.* mtu \([0-9]*\).*/\1/p')
    # Larger frames need larger af_packet ring frames; hde-wanem --mtu sizes
    # its mbufs to match (MTU + 200 rounded up to 1 KiB, at least 2 KiB).
    # The PMD lays ring frames end to end, so a block must hold a whole
    # number of them, and be a whole number of pages.
    extra=
    if [ "$mtu" -gt 1500 ]; then
      room=$(( (mtu + 200 + 1023) / 1024 * 1024 ))
      block=$room
      while [ $((block % 4096)) -ne 0 ]; do block=$((block + room)); done
      extra=",framesz=$room,blocksz=$block"
    fi
    exec ip netns exec "$W" "$bin" --no-huge -m "$mem" --no-pci -l "$lcores" --file-prefix "hde-wanem-$W" \
      --log-level=lib.eal:error --no-telemetry --vdev="net_af_packet0,iface=wa$extra" --vdev="net_af_packet1,iface=wb$extra" \
      -- --mtu "$mtu" "$@"
    ;;
  *)
    echo "usage: $0 up [--mtu N] [--ip] | down | status | run [--lcores L] [--mem MB] [-- hde-wanem options]" >&2
    exit 2
    ;;
esac
