// arp_port.cpp — ARP on a DPDK port (arp_port.h).
#include "arp_port.h"

#include <cstdio>
#include <cstring>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ether.h>

namespace hde::dp {

namespace {
rte_ether_addr g_port_mac[RTE_MAX_ETHPORTS];
bool g_port_mac_set[RTE_MAX_ETHPORTS];

arp::resolver::config resolver_config(const arp_port::config &c) {
  arp::resolver::config r;
  const rte_ether_addr a = port_mac(c.port);
  std::memcpy(r.our_mac.data(), a.addr_bytes, 6);
  r.our_ip = c.our_ip;
  r.hz = static_cast<double>(rte_get_tsc_hz());
  return r;
}
std::string ms(std::uint64_t ns) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", static_cast<double>(ns) / 1e6);
  return b;
}
}  // namespace

rte_ether_addr port_mac(std::uint16_t port) {
  rte_ether_addr a{};
  if (port < RTE_MAX_ETHPORTS && g_port_mac_set[port])
    return g_port_mac[port];
  rte_eth_macaddr_get(port, &a);
  return a;
}

void set_port_mac(std::uint16_t port, const rte_ether_addr &a) {
  if (port >= RTE_MAX_ETHPORTS)
    return;
  g_port_mac[port] = a;
  g_port_mac_set[port] = true;
}

arp_port::arp_port(const config &c) : c_(c), r_(resolver_config(c)) {
  if (c.have_static) {
    r_.set_static(c.static_mac);
    if (!c.quiet)
      std::printf("hde-gateway: %s: peer %s is at %s (--peer-mac; no ARP for it)\n", c.side,
                  arp::ip_string(c.peer_ip).c_str(), arp::to_string(c.static_mac).c_str());
  }
  const std::uint32_t t = c.gateway_ip != 0 ? c.gateway_ip : c.peer_ip;
  if (t != 0)
    r_.set_target(t, rte_rdtsc());
  peer_pub_.store(c.peer_ip, std::memory_order_relaxed);
  publish();
}

arp_port::~arp_port() {
  if (ring_ != nullptr) {
    rte_mbuf *m;
    while (rte_ring_dequeue(ring_, reinterpret_cast<void **>(&m)) == 0)
      rte_pktmbuf_free(m);
    rte_ring_free(ring_);
  }
}

rte_ring *arp_port::make_tx_ring() {
  char name[RTE_RING_NAMESIZE];
  std::snprintf(name, sizeof name, "hde_arp_tx_%u", c_.port);
  ring_ = rte_ring_create(name, 64, static_cast<int>(rte_socket_id()), RING_F_SP_ENQ | RING_F_SC_DEQ);
  return ring_;
}

std::string arp_port::target_name() const {
  const std::string peer = arp::ip_string(peer_ip());
  if (c_.gateway_ip != 0)
    return "gateway " + arp::ip_string(c_.gateway_ip) + " (next hop to " + peer + ")";
  return "peer " + peer;
}

void arp_port::publish() {
  target_pub_.store(r_.target(), std::memory_order_relaxed);
  if (!r_.resolved())
    return;
  arp::mac now;
  if (!cell_.load(now) || now != r_.peer_mac())
    cell_.store(r_.peer_mac());
  if (!was_resolved_) {
    was_resolved_ = true;
    if (!c_.have_static && !c_.quiet) {
      if (r_.st().resolve_ns != 0)
        std::printf("hde-gateway: %s: %s is at %s (ARP, %.1f ms)\n", c_.side, target_name().c_str(),
                    arp::to_string(r_.peer_mac()).c_str(), r_.st().resolve_ns / 1e6);
      else  // it asked for us first: learnt from its request (RFC 826)
        std::printf("hde-gateway: %s: %s is at %s (ARP, from its own request)\n", c_.side, target_name().c_str(),
                    arp::to_string(r_.peer_mac()).c_str());
      std::fflush(stdout);
    }
  }
}

void arp_port::send(const arp::packet &p) {
  rte_mbuf *m = rte_pktmbuf_alloc(c_.pool);
  if (m == nullptr) {
    ++tx_fail_;
    return;
  }
  arp::write(p, rte_pktmbuf_mtod(m, std::byte *));
  m->data_len = static_cast<std::uint16_t>(arp::kFrameLen);
  m->pkt_len = arp::kFrameLen;
  bool ok;
  if (ring_ != nullptr)
    ok = rte_ring_sp_enqueue(ring_, m) == 0;
  else
    ok = txq_ != 0xFFFF && rte_eth_tx_burst(c_.port, txq_, &m, 1) == 1;
  if (!ok) {  // a request is sent again; a requester asks again
    rte_pktmbuf_free(m);
    ++tx_fail_;
  }
}

unsigned arp_port::poll(std::uint64_t now) {
  arp::packet req;
  if (!r_.poll(now, req))
    return 0;
  if (!announced_ && !r_.resolved()) {
    announced_ = true;
    if (c_.gateway_ip != 0)
      std::printf("hde-gateway: %s: resolving gateway MAC of %s (next hop to %s) via ARP\n", c_.side,
                  arp::ip_string(c_.gateway_ip).c_str(), arp::ip_string(peer_ip()).c_str());
    else
      std::printf("hde-gateway: %s: resolving peer MAC of %s via ARP\n", c_.side, arp::ip_string(peer_ip()).c_str());
    std::fflush(stdout);
  }
  send(req);
  return 1;
}

bool arp_port::take(rte_mbuf *m) {
  const std::byte *f = rte_pktmbuf_mtod(m, const std::byte *);
  if (!arp::is_arp(f, m->data_len))
    return false;
  arp::packet p, reply;
  if (!arp::parse(f, m->data_len, p))
    r_.on_malformed();
  else if (r_.on_packet(p, rte_rdtsc(), &reply))
    send(reply);
  rte_pktmbuf_free(m);
  publish();
  return true;
}

void arp_port::peer_seen(std::uint32_t ip) {
  if (peer_ip() != 0)
    return;
  peer_pub_.store(ip, std::memory_order_relaxed);
  if (c_.gateway_ip == 0)
    r_.set_target(ip, rte_rdtsc());
  publish();
}

bool arp_port::gave_up(std::uint64_t now, std::uint64_t limit, std::string &why) const {
  if (!r_.waiting() || now - r_.waiting_since() <= limit)
    return false;
  const double s = static_cast<double>(limit) / static_cast<double>(rte_get_tsc_hz());
  char b[512];
  std::snprintf(b, sizeof b,
                "%s: no ARP reply from %s in %.0f s: is the %s gateway up, on this Ethernet segment, at that "
                "address? (a peer behind an IP router needs --gateway-ip ROUTER; --peer-mac MAC skips ARP)",
                c_.side, target_name().c_str(), s, c_.peer_side);
  why = b;
  return true;
}

std::string arp_port::summary() const {
  const arp::stats &s = r_.st();
  arp::mac m;
  std::string state;
  if (c_.have_static && cell_.load(m))
    state = arp::ip_string(peer_ip()) + " at " + arp::to_string(m) + " (--peer-mac)";
  else if (cell_.load(m))
    state = (c_.gateway_ip != 0 ? "gateway " : "") + arp::ip_string(target()) + " at " + arp::to_string(m) +
            (s.resolve_ns != 0 ? " (resolved by ARP in " + ms(s.resolve_ns) + " ms)" : std::string(" (from its own ARP request)"));
  else
    state = target() != 0 ? arp::ip_string(target()) + " unresolved" : "no peer yet";
  char b[512];
  std::snprintf(b, sizeof b,
                "%s; requests sent %llu received %llu, replies sent %llu received %llu, resolved %llu, MAC changes "
                "%llu, ignored %llu, malformed %llu, tx failed %llu",
                state.c_str(), (unsigned long long)s.requests_sent, (unsigned long long)s.requests_received,
                (unsigned long long)s.replies_sent, (unsigned long long)s.replies_received,
                (unsigned long long)s.resolved, (unsigned long long)s.mac_changes, (unsigned long long)s.ignored,
                (unsigned long long)s.malformed, (unsigned long long)tx_failed());
  return b;
}

}  // namespace hde::dp
