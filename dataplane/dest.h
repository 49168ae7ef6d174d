// dest.h — the destination gateway. Two kinds of task:
//
//   dest_rx      (one, on the main lcore) polls the RX queues, checks each
//                frame's envelope and HDE header (CRC included; every drop
//                counted by reason), learns where the source is, and hands
//                data frames to the decoder that owns their stream
//                (stream % decoders) through an rte_ring. It sends the
//                decoders' ACK and REPAIR frames on TX queue 0, and, when
//                every decoder reports its streams done, writes the images.
//   dest_decoder (--decoders N, one per decode lcore) owns its streams: puts
//                frames into the stream's reorder window, decodes the
//                in-order prefix into the VM images, and acknowledges
//                selectively. A page the decoder cannot rebuild (its
//                baseline is gone or stale) is never guessed: it is listed
//                as missing and asked for again in REPAIR frames, repeated
//                until the page arrives; ACKs carry how many are missing.
//
// The migration is complete when every stream of the source has marked its
// last round and nothing is missing. Then dest_rx seals: each decoder stops
// applying pages (frames still acknowledged), and only when all have sealed
// are the images written, so no page changes while it is written or hashed.
// A destination serves one migration.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <vector>
#include <rte_ethdev.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "arp_port.h"
#include "engine/decoder.h"
#include "frame_crypto.h"
#include "wire/format.h"
#include "image_sink.h"
#include "lcore.h"
#include "options.h"
#include "qemu_egress.h"
#include "packet.h"
#include "window.h"

namespace hde::dp {

// Counters of the destination. dest_rx and each dest_decoder keep their own
// copy and write only their own fields; dest_rx::stats() sums them.
struct alignas(64) dest_stats {
  std::uint64_t frames = 0;           // rx: every frame received
  std::uint64_t data_frames = 0;      // rx: valid DATA frames handed to a decoder
  std::uint64_t dispatch_full = 0;    // rx: a decoder's ring was full: dropped (resent by the source)
  std::uint64_t decoded = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t too_far = 0;
  std::uint64_t acks_sent = 0;
  std::uint64_t ack_alloc_fail = 0;
  std::uint64_t reply_full = 0;       // an ACK or REPAIR found the reply ring full (sent again later)
  std::uint64_t low_mbufs = 0;        // out-of-order frames not held: the mbuf pool ran low (resent)
  std::uint64_t after_seal = 0;       // DATA frames that came after the images were sealed: not applied
  std::uint64_t decode_errors = 0;    // frames that could not be decoded whole (unrecoverable)
  std::uint64_t pages_lost = 0;       // pages the decoder could not rebuild: asked for again
  std::uint64_t pages_repaired = 0;   // ... and rebuilt from a later record
  std::uint64_t repair_frames = 0;    // REPAIR frames sent
  std::uint64_t repair_requests = 0;  // page requests in them (a page may be asked again)
  std::uint64_t faults_injected = 0;  // --fault-forget-every: baselines dropped on purpose
  std::uint64_t new_epoch = 0;     // a source restarted (seq 0 with a new epoch)
  std::uint64_t stale_epoch = 0;   // frames of an unknown epoch past seq 0: dropped
  // FEC (fec_stream.h): parity frames, DATA frames they rebuilt, groups that
  // lost more than their parity (left to retransmission), parity that came
  // too late to help or for an unknown stream, and malformed parity.
  std::uint64_t fec_parity = 0, fec_rebuilt = 0, fec_unrecoverable = 0, fec_too_late = 0, fec_bad = 0;
  std::uint64_t bad_stream = 0;    // stream id out of range
  // --key-file: DATA and FEC frames that authenticated, those that did not
  // (the lane counts why: auth_fail, unknown_key, unsealed, bad_seal),
  // sealed frames that came to a destination without a key, authentic
  // frames the window had already delivered or could not hold (replays
  // included: a copy of an earlier frame is authentic but never applied
  // twice), and NOTICE frames sent back to say why.
  std::uint64_t opened = 0, not_opened = 0, sealed_no_key = 0, replayed = 0, notices = 0;
  std::uint64_t accepted = 0;      // DATA/FEC frames accepted for their stream (authentic when sealed)
  std::uint64_t drops[kRxDropCount] = {};
  std::uint64_t header_errors[kErrorCount] = {};  // frames rejected by parse_frame_header
};

class dest_rx;

class dest_decoder final : public task {
public:
  dest_decoder(dest_rx &rx, unsigned index, rte_ring *in, rte_ring *out, crypto_lane *lane = nullptr);
  ~dest_decoder() override;
  unsigned poll(std::uint64_t now) override;
  const char *name() const override { return "dest-decode"; }

  const dest_stats &stats() const { return st_; }
  // Published for dest_rx (release/acquire): streams of this decoder that
  // are done with nothing missing, and the source's stream count as told by
  // the INITs seen here (0: none yet).
  std::uint32_t streams_done() const { return done_.load(std::memory_order_acquire); }
  std::uint32_t peer_streams() const { return want_.load(std::memory_order_acquire); }
  // True once this decoder has seen dest_rx's seal and applies no more pages
  // (release: every page it wrote is visible to whoever sees this).
  bool sealed() const { return sealed_.load(std::memory_order_acquire); }
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  // A stream was refused (negotiate.h): its ACKs say why.
  bool refused() const { return refused_.load(std::memory_order_acquire); }
  // Decoder figures summed over this decoder's streams (after the lcores stop).
  void add_decoded(decoder_stats &t) const;

private:
  struct stream;
  void on_frame(rte_mbuf *m, std::uint64_t now, std::uint32_t sent_s = 0);
  void on_parity(rte_mbuf *m, std::uint64_t now);
  void settle(stream &s, rte_mbuf *m);
  void drain(stream &s);
  void send_ack(stream &s);
  void send_repairs(stream &s, std::uint64_t now);
  bool reply(rte_mbuf *m, std::size_t len);
  void send_notice(wire::notice_reason why, std::uint32_t epoch, std::uint64_t now);
  crypto_lane *lane_;
  std::uint64_t next_notice_ = 0;  // NOTICE frames: at most 10 a second
  // Sealed streams: the epochs each stream id has had (a replayed INIT of
  // one of them is not a restart), and whether a stale start was reported.
  std::array<std::array<std::uint32_t, 16>, 256> past_epochs_{};
  bool stale_reported_ = false;
  bool replayed_start(std::uint16_t stream, std::uint32_t epoch, std::uint32_t sent_s);

  dest_rx &rx_;
  const options &o_;
  unsigned index_;
  rte_ring *in_, *out_;
  std::array<std::unique_ptr<stream>, 256> streams_;
  std::vector<std::uint16_t> active_;  // ids with a stream, for the per-poll walk
  std::uint64_t ack_delay_tsc_, repair_retry_tsc_;
  std::atomic<std::uint32_t> done_{0}, want_{0};
  std::atomic<bool> failed_{false}, sealed_{false}, refused_{false};
  bool low_mbufs_ = false;  // this poll: the pool is nearly empty
  dest_stats st_;
};

class dest_rx final : public task {
public:
  // crypto: --key-file (decoder i opens and seals on lane first_lane + i).
  dest_rx(const options &o, std::uint16_t port, std::uint16_t nrxq, rte_mempool *pool,
          frame_crypto *crypto = nullptr, unsigned first_lane = 0);
  ~dest_rx() override;
  unsigned poll(std::uint64_t now) override;
  const char *name() const override { return "dest-rx"; }

  // Set-up failed (rings): the reason; empty when ready.
  const std::string &setup_error() const { return error_; }
  // The decode tasks, for placement on lcores.
  const std::vector<std::unique_ptr<dest_decoder>> &decoders() const { return dec_; }
  bool complete() const { return complete_.load(std::memory_order_acquire); }
  bool failed() const;
  // A decoder refused a stream (negotiate.h); the refusal is in its ACKs.
  bool refused() const;
  // ARP on this port (arp_port.h): frames of ARP's EtherType go there, and
  // replies go to its next hop. Before the lcores run.
  void set_arp(arp_port *a) { arp_ = a; }
  // Replies dropped because the peer's MAC was not known yet.
  std::uint64_t unaddressed() const { return __atomic_load_n(&unaddressed_, __ATOMIC_RELAXED); }
  // Counters summed over the RX task and the decoders (relaxed reads: safe
  // from any thread while the lcores run).
  dest_stats stats() const;
  // Decoder figures summed over streams (after the lcores stop).
  decoder_stats decoded() const;
  const impair_stats &impaired() const { return impair_.stats(); }
  // --qemu-connect: the QEMU side (nullptr otherwise).
  qemu_egress *egress() const { return egress_.get(); }
  // mbufs held in rings and windows at most: for sizing the pool.
  static unsigned mbufs_needed(const options &o);

private:
  friend class dest_decoder;
  void on_frame(rte_mbuf *m);
  void check_complete();
  bool address_replies(rte_mbuf **m, unsigned n);

  const options &o_;
  std::uint16_t port_, nrxq_;
  rte_mempool *pool_;
  image_sink sink_;
  std::unique_ptr<qemu_egress> egress_;  // declared after sink_: it reads the images until it stops
  std::vector<rte_ring *> to_dec_, from_dec_;
  std::vector<std::unique_ptr<dest_decoder>> dec_;
  // Where replies go. reply_ holds our side and the configured peer; peer_
  // the peer's address as learnt (IPv4 << 16 | UDP port, kPeerKnown set):
  // in clear from the first frame (dest_rx), sealed only from an
  // authenticated frame that a decoder stored as new (learn_peer), so that
  // neither a forged frame nor a replayed authentic one turns the ACKs away.
  // Decoders read it for every reply (reply_to).
  static constexpr std::uint64_t kPeerKnown = 1ull << 48;
  endpoint_pair reply_to() const;
  void learn_peer(const rte_mbuf *m);
  endpoint_pair reply_{};
  std::atomic<std::uint64_t> peer_{0};
  std::uint64_t peer_told_ = 0;  // RX lcore: the peer_ value ARP was told of
  bool sealed_rx_ = false;       // --key-file: learn the peer from authentic frames only
  bool have_peer_ = false;       // a frame was dispatched
  arp_port *arp_ = nullptr;
  std::uint64_t unaddressed_ = 0;
  std::atomic<bool> complete_{false}, failed_{false};
  // Completion in two steps: seal_ asks the decoders to stop applying pages;
  // the images are written once every decoder has sealed.
  std::atomic<bool> seal_{false};
  std::uint32_t sealed_streams_ = 0;
  impairer impair_;  // --impair (tests): on the replies
  std::string error_;
  dest_stats st_;
};

}  // namespace hde::dp
