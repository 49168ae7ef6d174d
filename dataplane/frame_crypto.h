// frame_crypto.h — frames sealed with AES-256-GCM through DPDK's cryptodev
// API (lib/wire/format.h: seal_header says what a sealed frame holds).
//
//   frame_crypto  one per gateway: picks and starts the crypto device (any
//                 device with AES-256-GCM: the software PMDs crypto_aesni_gcm
//                 (ipsec_mb) or crypto_openssl, created as a vdev when EAL has
//                 none, or a QAT function given on the EAL command line), owns
//                 the keys and their sessions, and rotates keys
//                 (`hdectl key rotate`) on the control thread.
//   crypto_lane   one per lcore task that seals or opens (a source worker,
//                 the source's ACK receiver, a destination decoder): its own
//                 queue pair, its own nonce counters and counters. Bursts are
//                 enqueued and dequeued on that queue pair: the same code runs
//                 on a synchronous software PMD and on an asynchronous device.
//
// Keys reach the lanes through RCU (rte_rcu_qsbr): a lane is online only while
// it seals or opens a burst, so an idle lane never holds up a rotation.
//
// Rotation without loss: after `key rotate`, a gateway accepts the old and the
// new key, and keeps sealing with the old one until the peer's frames say
// (seal_header::accepts) that it holds the new one too; the old key is
// dropped --key-grace-s seconds later. Rotate both gateways within that time.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>
#include <rte_crypto.h>
#include <rte_cryptodev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_rcu_qsbr.h>

#include "frame_key.h"

namespace hde::dp {

// Counters of one lane (written by its lcore only, read relaxed).
struct alignas(64) crypto_lane_stats {
  std::uint64_t sealed = 0;       // frames sealed
  std::uint64_t seal_fail = 0;    // could not be sealed (no mbuf, no room, device error): not sent
  std::uint64_t opened = 0;       // frames that passed authentication
  std::uint64_t auth_fail = 0;    // tag did not verify: tampered, or another key with the same id
  std::uint64_t unknown_key = 0;  // sealed with a key id we do not hold
  std::uint64_t unsealed = 0;     // a frame in clear where sealed frames are required
  std::uint64_t bad_seal = 0;     // malformed seal (too short, wrong direction)
  std::uint64_t bytes = 0;        // ciphertext bytes sealed or opened
};

class frame_crypto;

class crypto_lane {
public:
  static constexpr unsigned kMaxBurst = 256;

  // Seal frames. Each in[i] holds [Ethernet/IPv4/UDP][frame header][payload]
  // with the header's payload_len set. Sealed, a frame is [...][header][seal
  // header][ciphertext][tag] with the CRC set and the mbuf's lengths grown by
  // wire::kSealOverhead; the caller rewrites the envelope (write_envelope)
  // for the new length. in[i] is sealed in place, unless copy[i]: then a new
  // mbuf from pool holds the sealed copy and in[i] is not touched (a source
  // keeps the clear frame for its retransmissions, each sealed again under a
  // new nonce). out[0..returned) are the sealed frames, in order; an in-place
  // frame that cannot be sealed is freed, a copy is left out.
  unsigned seal(rte_mbuf *const *in, unsigned n, rte_mbuf **out, std::uint8_t dir, const bool *copy = nullptr,
                rte_mempool *pool = nullptr);
  // Open frames in place: ok[i] says whether m[i] authenticated (then it
  // holds the clear layout again: header with the records' payload_len, flag
  // cleared, CRC recomputed); the others are left as they were for the
  // caller to count and free. sent_s[i] (when given) is the sender's clock
  // in the seal of an opened frame. Returns how many opened.
  unsigned open(rte_mbuf *const *m, unsigned n, std::uint8_t dir, bool *ok, std::uint32_t *sent_s = nullptr);

  const crypto_lane_stats &stats() const { return st_; }
  unsigned id() const { return id_; }

private:
  friend class frame_crypto;
  crypto_lane(frame_crypto &c, unsigned id);
  unsigned run(rte_crypto_op **ops, unsigned n);

  frame_crypto &c_;
  unsigned id_;
  std::uint16_t qp_;
  std::unique_ptr<std::uint64_t[]> ctr_;  // next nonce per stream (256), random start
  crypto_lane_stats st_;
};

struct key_entry;

class frame_crypto {
public:
  struct config {
    std::string key_file;
    std::string device;     // cryptodev name; empty: the first with AES-256-GCM, else a vdev is made
    unsigned lanes = 1;
    double grace_s = 60;    // the old key stays accepted this long after a rotation
  };
  frame_crypto();
  ~frame_crypto();
  frame_crypto(const frame_crypto &) = delete;
  frame_crypto &operator=(const frame_crypto &) = delete;

  // After rte_eal_init. On failure err says why.
  bool init(const config &c, std::string &err);
  crypto_lane &lane(unsigned i) { return *lanes_[i]; }
  unsigned lanes() const { return static_cast<unsigned>(lanes_.size()); }

  // Control thread: a new key (refused, with a message, when unreadable,
  // accessible to others, or equal in id to a key held).
  bool rotate(const std::string &path, std::string &err);
  // Control thread, periodically: ends grace periods, frees retired keys.
  void tick();

  // What `show crypto` reports.
  struct status {
    std::string device, driver;
    int newest_id = -1, old_id = -1;  // -1: none
    int peer_accepts = -1;            // newest key id the peer says it holds
    bool sending_newest = true;
    double grace_left_s = 0;
    std::uint64_t rotations = 0;
    crypto_lane_stats total{};
  };
  status get_status() const;
  crypto_lane_stats totals() const;

private:
  friend class crypto_lane;
  struct key_set;
  const key_set *enter(unsigned lane);
  void leave(unsigned lane);
  void publish(key_set *s);
  std::shared_ptr<key_entry> make_key(const frame_key &k, std::string &err);

  std::uint8_t dev_ = 0;
  std::string dev_name_, driver_;
  rte_mempool *sess_pool_ = nullptr, *op_pool_ = nullptr;
  rte_rcu_qsbr *qs_ = nullptr;
  std::vector<std::unique_ptr<crypto_lane>> lanes_;
  std::atomic<key_set *> cur_{nullptr};
  std::atomic<int> peer_accepts_{-1};
  // Control thread: sets replaced and the grace token each waits for.
  std::mutex ctl_;
  std::vector<std::pair<key_set *, std::uint64_t>> retired_;
  std::uint64_t rotate_tsc_ = 0, grace_tsc_ = 0, rotations_ = 0;
  bool started_ = false;
};

}  // namespace hde::dp
