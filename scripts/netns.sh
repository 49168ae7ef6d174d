#!/usr/bin/env bash
# netns.sh — a point-to-point virtual link for two gateways: network
# namespaces hde-a and hde-b joined by a veth pair (va in hde-a, vb in hde-b).
# No addresses are configured on the veth ends: the gateways speak raw
# Ethernet through net_af_packet, and nothing leaves the pair.
#   scripts/netns.sh up [MTU]    create (idempotent)
#   scripts/netns.sh down        remove
#   scripts/netns.sh status
# Needs root (CAP_NET_ADMIN).
set -euo pipefail
A=${HDE_NS_A:-hde-a}
B=${HDE_NS_B:-hde-b}
cmd=${1:-status}
case "$cmd" in
  up)
    mtu=${2:-1500}
    ip netns list | grep -qw "$A" || ip netns add "$A"
    ip netns list | grep -qw "$B" || ip netns add "$B"
    if ! ip -n "$A" link show va >/dev/null 2>&1; then
      ip link add va type veth peer name vb
      ip link set va netns "$A"
      ip link set vb netns "$B"
    fi
    for ns_if in "$A:va" "$B:vb"; do
      ns=${ns_if%%:*} ifc=${ns_if##*:}
      ip -n "$ns" link set "$ifc" mtu "$mtu" up
      ip -n "$ns" link set lo up
      # Keep the kernel quiet on the link: no IPv6 autoconf chatter.
      ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$ifc.disable_ipv6=1" || true
    done
    echo "netns: $A/va <-> $B/vb up (MTU $mtu)"
    ;;
  down)
    ip netns list | grep -qw "$A" && ip netns del "$A"
    ip netns list | grep -qw "$B" && ip netns del "$B"
    echo "netns: removed"
    ;;
  status)
    ip netns list
    ip -n "$A" link show va 2>/dev/null || echo "netns: $A/va absent"
    ;;
  *)
    echo "usage: $0 up [MTU] | down | status" >&2
    exit 2
    ;;
esac
