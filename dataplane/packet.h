// packet.h — the Ethernet/IPv4/UDP envelope around HDE frames: writing it
// in front of a frame, and checking it on receive (every drop has a reason).
#pragma once

#include <cstdint>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

namespace hde::dp {

inline constexpr std::uint16_t kL2L4 = sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr) + sizeof(rte_udp_hdr);
static_assert(kL2L4 == 42);

// Addresses of one direction of a link. IPs and ports in host order.
struct endpoint_pair {
  rte_ether_addr src_mac{}, dst_mac{};
  std::uint32_t src_ip = 0, dst_ip = 0;
  std::uint16_t src_port = 0, dst_port = 0;
};

// Write the headers at the start of m's data and set its lengths for a
// payload of payload_len bytes that already sits at offset kL2L4.
inline void write_envelope(rte_mbuf *m, const endpoint_pair &e, std::uint16_t payload_len) {
  auto *eth = rte_pktmbuf_mtod(m, rte_ether_hdr *);
  rte_ether_addr_copy(&e.dst_mac, &eth->dst_addr);
  rte_ether_addr_copy(&e.src_mac, &eth->src_addr);
  eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
  auto *ip = reinterpret_cast<rte_ipv4_hdr *>(eth + 1);
  ip->version_ihl = RTE_IPV4_VHL_DEF;
  ip->type_of_service = 0;
  ip->total_length = rte_cpu_to_be_16(static_cast<std::uint16_t>(sizeof(rte_ipv4_hdr) + sizeof(rte_udp_hdr) + payload_len));
  ip->packet_id = 0;
  ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
  ip->time_to_live = 64;
  ip->next_proto_id = IPPROTO_UDP;
  ip->src_addr = rte_cpu_to_be_32(e.src_ip);
  ip->dst_addr = rte_cpu_to_be_32(e.dst_ip);
  ip->hdr_checksum = 0;
  ip->hdr_checksum = rte_ipv4_cksum(ip);
  auto *udp = reinterpret_cast<rte_udp_hdr *>(ip + 1);
  udp->src_port = rte_cpu_to_be_16(e.src_port);
  udp->dst_port = rte_cpu_to_be_16(e.dst_port);
  udp->dgram_len = rte_cpu_to_be_16(static_cast<std::uint16_t>(sizeof(rte_udp_hdr) + payload_len));
  udp->dgram_cksum = 0;  // the HDE frame carries its own CRC32C
  m->data_len = static_cast<std::uint16_t>(kL2L4 + payload_len);
  m->pkt_len = m->data_len;
  m->l2_len = sizeof(rte_ether_hdr);
  m->l3_len = sizeof(rte_ipv4_hdr);
}

enum class rx_drop : std::uint8_t {
  not_ipv4,    // not an IPv4 frame (ARP, IPv6, ...)
  bad_ip,      // short, options, fragment, bad length or checksum
  not_udp,
  wrong_port,  // UDP destination port is not ours
  wrong_peer,  // source address is not the configured peer
  chained,     // multi-segment mbuf (not expected at our frame sizes)
  count_
};
inline constexpr std::size_t kRxDropCount = static_cast<std::size_t>(rx_drop::count_);
inline constexpr const char *rx_drop_name[] = {"not_ipv4", "bad_ip", "not_udp", "wrong_port",
                                               "wrong_peer", "chained"};

struct rx_view {
  const std::byte *payload = nullptr;
  std::uint16_t len = 0;
  rte_ether_addr src_mac{};
  std::uint32_t src_ip = 0;
  std::uint16_t src_port = 0;
};

inline bool ipv4_cksum_ok(const rte_ipv4_hdr *ip) {
  rte_ipv4_hdr h = *ip;
  h.hdr_checksum = 0;
  return rte_ipv4_cksum(&h) == ip->hdr_checksum;
}

// Check the envelope; on success fill v. peer_ip 0 accepts any sender.
inline bool parse_envelope(const rte_mbuf *m, std::uint16_t our_port, std::uint32_t peer_ip,
                           rx_view &v, rx_drop &why) {
  if (m->nb_segs != 1) {
    why = rx_drop::chained;
    return false;
  }
  if (m->data_len < kL2L4) {
    why = rx_drop::bad_ip;
    return false;
  }
  const auto *eth = rte_pktmbuf_mtod(m, const rte_ether_hdr *);
  if (eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)) {
    why = rx_drop::not_ipv4;
    return false;
  }
  const auto *ip = reinterpret_cast<const rte_ipv4_hdr *>(eth + 1);
  const std::uint16_t ip_len = rte_be_to_cpu_16(ip->total_length);
  if (ip->version_ihl != RTE_IPV4_VHL_DEF || ip_len < sizeof(rte_ipv4_hdr) + sizeof(rte_udp_hdr) ||
      ip_len > m->data_len - sizeof(rte_ether_hdr) ||
      (rte_be_to_cpu_16(ip->fragment_offset) & (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) != 0 ||
      !ipv4_cksum_ok(ip)) {
    why = rx_drop::bad_ip;
    return false;
  }
  if (ip->next_proto_id != IPPROTO_UDP) {
    why = rx_drop::not_udp;
    return false;
  }
  const auto *udp = reinterpret_cast<const rte_udp_hdr *>(ip + 1);
  const std::uint16_t udp_len = rte_be_to_cpu_16(udp->dgram_len);
  if (udp_len < sizeof(rte_udp_hdr) || udp_len != ip_len - sizeof(rte_ipv4_hdr)) {
    why = rx_drop::bad_ip;
    return false;
  }
  if (rte_be_to_cpu_16(udp->dst_port) != our_port) {
    why = rx_drop::wrong_port;
    return false;
  }
  const std::uint32_t src = rte_be_to_cpu_32(ip->src_addr);
  if (peer_ip != 0 && src != peer_ip) {
    why = rx_drop::wrong_peer;
    return false;
  }
  v.payload = reinterpret_cast<const std::byte *>(udp + 1);
  v.len = static_cast<std::uint16_t>(udp_len - sizeof(rte_udp_hdr));
  rte_ether_addr_copy(&eth->src_addr, &v.src_mac);
  v.src_ip = src;
  v.src_port = rte_be_to_cpu_16(udp->src_port);
  return true;
}

}  // namespace hde::dp
