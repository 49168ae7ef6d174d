// arp_port.h — ARP on one DPDK port of the gateway: the resolver of arp.h
// as a task on the main lcore.
//
//   - the RX task of the port (ack-rx on a source, dest-rx on a
//     destination; both on the main lcore) hands it every ARP frame
//     (take()): requests for our address are answered, answers for the
//     next hop learnt;
//   - poll() sends the requests: at start, then again after 0.1, 0.2, 0.4,
//     0.8 s and every second until an answer comes, then once every 30 s
//     to refresh the entry (an unanswered refresh keeps it);
//   - next_hop() publishes the MAC data frames go to. Until it is known the
//     transmitting side sends nothing but ARP (a source's workers wait, a
//     destination holds back its ACKs); no frame is ever sent to the
//     broadcast address but an ARP request.
//
// Frames leave on a TX queue this lcore owns (the destination's queue 0),
// or through a ring that a worker drains onto its own queue (a source's TX
// queues are one per worker, and net_af_packet has no spare one unless
// given qpairs=workers+1).
#pragma once

#include <atomic>
#include <cstdint>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <string>

#include "arp.h"
#include "lcore.h"

namespace hde::dp {

// The MAC a port sends from and answers ARP for: the device's, unless set
// here (net_ring ports have none of their own: all zeros, and no way to set
// one, so --role loopback names its two). Set before the lcores run.
rte_ether_addr port_mac(std::uint16_t port);
void set_port_mac(std::uint16_t port, const rte_ether_addr &a);

class arp_port final : public task {
public:
  struct config {
    const char *side = "source";     // for messages: this gateway's side
    const char *peer_side = "destination";
    std::uint16_t port = 0;
    rte_mempool *pool = nullptr;
    std::uint32_t our_ip = 0;
    std::uint32_t peer_ip = 0;       // 0: learnt from the first frame (peer_seen)
    std::uint32_t gateway_ip = 0;    // next hop towards the peer (0: the peer itself)
    bool have_static = false;        // --peer-mac
    arp::mac static_mac{};
    bool quiet = false;
  };
  explicit arp_port(const config &c);
  ~arp_port() override;

  // Where frames leave: a TX queue of this lcore, or a ring (made here) that
  // a worker drains onto its own queue. One of the two, before the lcores run.
  void transmit_on(std::uint16_t txq) { txq_ = txq; }
  rte_ring *make_tx_ring();

  unsigned poll(std::uint64_t now) override;
  const char *name() const override { return "arp"; }

  // For the port's RX task (same lcore): true when m is an ARP frame, which
  // is then consumed (answered if it asks for us, learnt from, freed).
  bool take(rte_mbuf *m);
  // The peer's address as seen in its first valid frame (a destination with
  // --any-peer): resolved unless a gateway or a static MAC is given.
  void peer_seen(std::uint32_t ip);

  // The next hop's MAC (any lcore).
  const arp::mac_cell &next_hop() const { return cell_; }
  bool resolved() const { return cell_.known(); }
  // Main lcore: requests unanswered for longer than limit ticks; why says
  // so in one line.
  bool gave_up(std::uint64_t now, std::uint64_t limit, std::string &why) const;
  // Counters (64-bit words, relaxed reads from any thread) and what they are about.
  const arp::stats &stats() const { return r_.st(); }
  std::uint32_t target() const { return target_pub_.load(std::memory_order_relaxed); }
  std::uint32_t peer_ip() const { return peer_pub_.load(std::memory_order_relaxed); }
  bool is_static() const { return c_.have_static; }
  std::uint64_t tx_failed() const { return __atomic_load_n(&tx_fail_, __ATOMIC_RELAXED); }
  // One line for the summary.
  std::string summary() const;

private:
  void send(const arp::packet &p);
  void publish();
  std::string target_name() const;

  config c_;
  arp::resolver r_;
  arp::mac_cell cell_;
  std::uint16_t txq_ = 0xFFFF;
  rte_ring *ring_ = nullptr;
  std::uint64_t tx_fail_ = 0;
  bool announced_ = false;
  bool was_resolved_ = false;
  std::atomic<std::uint32_t> target_pub_{0}, peer_pub_{0};
};

}  // namespace hde::dp
