// arp.h — addressing on the link, DPDK-free so it is unit-tested on its
// own (arp_port.h puts it on a DPDK port):
//
//   packets   Ethernet + ARP (RFC 826, IPv4 over Ethernet) built and parsed
//             in plain bytes;
//   resolver  the address table of one gateway port and the one next hop it
//             sends to (the peer, or --gateway-ip): requests retried with
//             back-off until a reply comes, then refreshed every 30 s; a
//             static MAC (--peer-mac) instead, never changed by ARP;
//             requests for our own address answered;
//   mac_cell  the next hop's MAC published to the lcores that transmit
//             (one atomic word: known or not, and the address).
//
// What is learnt, and from what: an ARP packet (request or reply,
// gratuitous included) whose sender address has an entry in the table
// updates that entry, and a request for our address adds its sender (RFC
// 826's merge). Nothing else adds entries, so unrelated hosts on the
// segment do not fill the table. Data frames never teach a MAC.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace hde::dp::arp {

using mac = std::array<std::uint8_t, 6>;
inline constexpr mac kBroadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
inline constexpr std::uint16_t kEtherType = 0x0806;
inline constexpr std::size_t kEthHeader = 14;
inline constexpr std::size_t kArpLen = 28;  // IPv4 over Ethernet
// Frames are padded to Ethernet's minimum (60 bytes without the FCS).
inline constexpr std::size_t kFrameLen = 60;

enum class op : std::uint16_t { request = 1, reply = 2 };

// One ARP packet with its Ethernet addresses. IPs in host order.
struct packet {
  mac eth_dst{}, eth_src{};
  op oper = op::request;
  mac sha{};              // sender hardware address
  std::uint32_t spa = 0;  // sender protocol address
  mac tha{};              // target hardware address
  std::uint32_t tpa = 0;  // target protocol address
};

// A broadcast request from (our_mac, our_ip) for target_ip.
packet make_request(const mac &our_mac, std::uint32_t our_ip, std::uint32_t target_ip);
// The reply to request q from the host that owns q.tpa (our_mac).
packet make_reply(const packet &q, const mac &our_mac);
// Write p at out (room for kFrameLen bytes): returns kFrameLen.
std::size_t write(const packet &p, std::byte *out);
// True when the frame's EtherType is ARP (it has at least an Ethernet header).
bool is_arp(const std::byte *frame, std::size_t len);
// Parse an Ethernet frame; false unless it is a well-formed IPv4-over-
// Ethernet ARP request or reply.
bool parse(const std::byte *frame, std::size_t len, packet &p);

std::string to_string(const mac &m);
std::string ip_string(std::uint32_t ip);
// "aa:bb:cc:dd:ee:ff" (or '-' between bytes); refuses group addresses
// (multicast, broadcast) and all zeros: never a peer.
bool parse_mac(std::string_view s, mac &m);
inline bool is_unicast(const mac &m) {
  return (m[0] & 1) == 0 && (m[0] | m[1] | m[2] | m[3] | m[4] | m[5]) != 0;
}

// The next hop's MAC for other lcores: written by the resolver's lcore,
// read by every lcore that transmits (relaxed is enough: the address is
// one word, and nothing else is published with it).
class mac_cell {
public:
  void store(const mac &m) {
    std::uint64_t v = 1ull << 63;
    for (int i = 0; i < 6; ++i)
      v |= std::uint64_t{m[i]} << (8 * i);
    v_.store(v, std::memory_order_release);
  }
  bool load(mac &m) const {
    const std::uint64_t v = v_.load(std::memory_order_acquire);
    if ((v >> 63) == 0)
      return false;
    for (int i = 0; i < 6; ++i)
      m[i] = static_cast<std::uint8_t>(v >> (8 * i));
    return true;
  }
  bool known() const { return (v_.load(std::memory_order_relaxed) >> 63) != 0; }

private:
  std::atomic<std::uint64_t> v_{0};
};

// Counters, 64-bit words (read with relaxed loads from the control thread).
struct alignas(64) stats {
  std::uint64_t requests_sent = 0;      // ours: resolving and refreshing the next hop
  std::uint64_t replies_sent = 0;       // answers for our address
  std::uint64_t requests_received = 0;  // for our address (others are ignored)
  std::uint64_t replies_received = 0;   // from an address we wanted
  std::uint64_t resolved = 0;           // the next hop's MAC became known (1; more after a change)
  std::uint64_t mac_changes = 0;        // a known MAC replaced by ARP
  std::uint64_t ignored = 0;            // not for us, or not about anyone we need (incl. our own)
  std::uint64_t malformed = 0;          // ARP EtherType, but not IPv4-over-Ethernet ARP
  std::uint64_t resolve_ns = 0;         // first request to the first answer
};

class resolver {
public:
  struct config {
    mac our_mac{};
    std::uint32_t our_ip = 0;
    double hz = 1e9;                // ticks a second
    double first_retry_s = 0.1;     // a request unanswered this long is sent again,
    double max_retry_s = 1.0;       // ... the interval doubling up to this
    double refresh_s = 30.0;        // a resolved next hop is asked again this often (0: never)
  };
  static constexpr std::size_t kEntries = 8;

  explicit resolver(const config &c);

  // The address to resolve: the peer, or the gateway towards it. Setting a
  // new one starts resolving it (an entry the table already holds is used
  // at once). 0: none yet.
  void set_target(std::uint32_t ip, std::uint64_t now);
  // A static MAC for the target (--peer-mac): resolved, and ARP never
  // changes it; no requests are sent.
  void set_static(const mac &m);

  // An ARP packet arrived. Returns true when it asks for our address: then
  // *reply is the answer to send.
  bool on_packet(const packet &p, std::uint64_t now, packet *reply);
  // A frame of ARP's EtherType that is not IPv4-over-Ethernet ARP.
  void on_malformed() { ++st_.malformed; }
  // Time passes: true when a request for the target is due now (then req
  // is it; it counts as sent).
  bool poll(std::uint64_t now, packet &req);

  bool resolved() const { return resolved_; }
  const mac &peer_mac() const { return peer_; }
  std::uint32_t target() const { return target_; }
  bool is_static() const { return static_; }
  // Requests for the target have gone out and none was answered yet; since
  // when (the first request).
  bool waiting() const { return !resolved_ && asked_; }
  std::uint64_t waiting_since() const { return want_since_; }
  const stats &st() const { return st_; }

  // The table, for tests and `show`: the entry of ip, or nullptr.
  struct entry {
    std::uint32_t ip = 0;
    mac m{};
    bool known = false;        // false: incomplete (asked for, no answer yet)
    std::uint64_t updated = 0;  // tick of the last answer
    std::uint64_t used = 0;     // tick of the last use (replacement: least recently used)
  };
  const entry *lookup(std::uint32_t ip) const;

private:
  entry *find(std::uint32_t ip);
  entry &insert(std::uint32_t ip, std::uint64_t now);
  void learn(entry &e, const mac &m, std::uint64_t now);

  config c_;
  std::uint64_t first_retry_, max_retry_, refresh_;
  std::array<entry, kEntries> t_{};
  std::uint32_t target_ = 0;
  bool static_ = false, resolved_ = false, asked_ = false;
  mac peer_{};
  std::uint64_t want_since_ = 0;     // first request for the unresolved target
  std::uint64_t next_request_ = 0;   // when the next request is due (0: at once)
  std::uint64_t retry_ = 0;          // current back-off interval
  stats st_;
};

}  // namespace hde::dp::arp
