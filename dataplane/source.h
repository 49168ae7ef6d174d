// source.h — the source gateway's tasks:
//   ingress  takes rounds from the feeder and shards their pages to the
//            worker rings by (vm, gfn), then an end-of-round marker to each;
//   ack_rx   polls the port for ACK frames and passes each to the ring of
//            the worker that owns the stream;
//   worker   (one per worker lcore, one stream each) applies acks, resends
//            frames whose ack is overdue, runs the encoding ladder over its
//            pages, and transmits the frames it seals.
// Workers share nothing: each owns its encoder, baseline cache, send window
// and TX queue; the only links are single-producer/single-consumer rings.
// The control side reads a worker's baseline cache under RCU
// (baseline_rcu.h): read_baselines().
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <rte_ethdev.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <vector>

#include "arp.h"
#include "baseline_rcu.h"
#include "engine/encoder.h"
#include "fec_stream.h"
#include "frame_crypto.h"
#include "feeder.h"
#include "lcore.h"
#include "live_config.h"
#include "options.h"
#include "packet.h"
#include "sender.h"

namespace hde::dp {

class arp_port;

// The worker (stream) that owns page k among n: blocks of 512 pages (2 MiB)
// stay on one worker, so zero runs coalesce and a page always meets its own
// baseline.
std::uint32_t worker_of(page_key k, std::size_t n);

struct alignas(64) worker_stats {
  // Transport (sender.h), copied from the stream's sender every poll.
  std::uint64_t frames_sent = 0;   // first transmissions
  std::uint64_t retransmits = 0;   // later transmissions (loss, tail probe, timeout)
  std::uint64_t bytes_sent = 0;    // wire bytes of every transmission
  std::uint64_t frames_acked = 0;
  std::uint64_t lost_frames = 0;   // marked lost (RACK or a timeout)
  std::uint64_t tlp_probes = 0;    // tail-loss probes
  std::uint64_t rto_events = 0;    // retransmit timeouts
  std::uint64_t spurious_rto = 0;  // ... found spurious and undone (F-RTO)
  std::uint64_t dup_reports = 0;   // duplicates the destination reported
  std::uint64_t spurious = 0;      // ... of frames we retransmitted: needless retransmits
  std::uint64_t loss_rounds = 0;   // round trips with heavy loss (capped data in flight)
  std::uint64_t probe_rtt = 0;     // PROBE_RTT entries
  // Gauges of the path model, at the last poll.
  std::uint64_t cwnd_bytes = 0, inflight_bytes = 0;
  std::uint64_t pacing_bps = 0, btl_bw_bps = 0, delivery_bps = 0;
  std::uint64_t min_rtt_ns = 0, srtt_ns = 0, reo_wnd_ns = 0;
  std::uint64_t cc_state = 0;      // cc_state (rate_model.h)
  // The worker's own.
  std::uint64_t acks = 0;
  std::uint64_t tx_full = 0;       // TX queue full: left for RACK to find lost and resend
  std::uint64_t bad_acks = 0;      // ACK frames that did not parse
  std::uint64_t window_full = 0;   // polls that could not encode: window full
  std::uint64_t repairs = 0;       // pages sent again whole at the destination's request
  // FEC (--fec): groups closed, parity frames and their wire bytes, DATA
  // frames the destination rebuilt from parity, and the group in use (k, m;
  // 0: off) — with --fec auto, as last chosen.
  std::uint64_t fec_groups = 0, fec_parity_frames = 0, fec_parity_bytes = 0, fec_rebuilt = 0;
  std::uint64_t fec_k = 0, fec_m = 0;
};

class worker final : public task, private frame_output {
public:
  // lane: seals this stream's frames (--key-file); nullptr: frames in clear.
  worker(const options &o, std::uint16_t id, std::uint16_t port, std::uint16_t txq, rte_mempool *pool,
         const endpoint_pair &ep, std::uint32_t epoch, live_config_store *live, crypto_lane *lane = nullptr);
  ~worker() override;
  unsigned poll(std::uint64_t now) override;
  void on_stop() override;
  const char *name() const override { return "worker"; }

  rte_ring *in() const { return in_; }
  rte_ring *acks() const { return acks_; }
  // Rounds whose marker this worker has encoded.
  std::uint32_t rounds_done() const { return rounds_done_.load(std::memory_order_acquire); }
  // Every frame sent so far has been acknowledged.
  bool drained() const { return drained_.load(std::memory_order_acquire); }
  std::uint64_t last_progress_tsc() const { return progress_tsc_.load(std::memory_order_relaxed); }
  const encoder_stats &enc_stats() const { return enc_->stats(); }
  // Hybrid mode's selector on the control thread (selector_service.h).
  // Before the worker runs.
  void set_selector_port(const selector_port &p) { enc_->set_selector_port(p); }
  // Run f(const baseline_cache &) inside an RCU read-side section: from any
  // thread but the worker's own, while the worker runs.
  template <typename F> void read_baselines(F &&f) const {
    baseline_rcu::section rs(rcu_);
    f(*cache_pub_.load(std::memory_order_acquire));
  }
  std::uint32_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  // Pages the destination still misses on this stream, from its latest ACK.
  std::uint32_t peer_missing() const { return peer_missing_.load(std::memory_order_relaxed); }
  const worker_stats &stats() const { return st_; }
  const impair_stats &impaired() const { return impair_.stats(); }
  std::uint16_t id() const { return id_; }
  // Addressing (arp_port.h), before the worker runs: every frame goes to
  // next_hop's MAC, and nothing is sent until it is known; ctl (may be
  // null) carries ARP frames from the main lcore for this worker's queue.
  void set_addressing(const arp::mac_cell *next_hop, rte_ring *ctl) {
    next_hop_ = next_hop;
    ctl_tx_ = ctl;
  }
  // The destination refused the stream (negotiate.h's refusal, 0: not);
  // ours: its limit, theirs: our figure it refused.
  std::uint8_t refused(std::uint32_t &ours, std::uint32_t &theirs) const {
    ours = refused_ours_.load(std::memory_order_relaxed);
    theirs = refused_theirs_.load(std::memory_order_relaxed);
    return refused_.load(std::memory_order_acquire);
  }
  // The destination's reorder window as told in its ACKs (0: not told).
  std::uint32_t peer_window() const { return peer_window_.load(std::memory_order_relaxed); }

private:
  bytes_buf acquire() override;
  void commit(bytes_buf frame, std::size_t len) override;
  void apply_ack(rte_mbuf *m);
  void apply_config(const live_config &c);
  void publish_stats();
  void pump(std::uint64_t now);
  void tx_flush();
  void tx_push(rte_mbuf *m, bool copy = false);
  void tx_out(rte_mbuf *m);
  void tx_enqueue(rte_mbuf *m);
  void seal_flush();
  void tx_ctl();
  bool addressed();
  void fec_close(std::uint64_t now);
  void fec_adapt(std::uint64_t now);

  std::uint16_t id_, port_, txq_;
  rte_mempool *pool_;
  endpoint_pair ep_;
  rte_ring *in_ = nullptr, *acks_ = nullptr;
  baseline_rcu rcu_;  // declared before enc_: the cache outlives no domain
  std::unique_ptr<encoder> enc_;
  // The cache readers see, and one replaced by `set cache-mb` that waits for
  // its grace period before it is freed.
  std::atomic<const baseline_cache *> cache_pub_{nullptr};
  std::unique_ptr<baseline_cache> old_cache_;
  std::uint64_t old_cache_token_ = 0;
  sender<rte_mbuf *> snd_;          // reliable delivery, loss detection, rate control
  std::uint32_t reserve_;          // window slots one burst may need
  bool qemu_ = false;              // pages from QEMU: keep few encoded frames unsent
  std::uint64_t last_poll_ = 0, stall_tsc_ = 0;  // descheduled lcores (sender::on_stall)
  std::size_t max_frame_ = 1472;
  std::uint64_t now_ = 0;
  double ns_per_tsc_;
  // Live configuration (RCU); the link rate is the pacing ceiling of this
  // stream's share.
  live_config_store *live_;
  std::uint64_t config_seen_ = 0, flush_seen_ = 0;
  std::uint32_t nstreams_;
  std::atomic<std::uint32_t> in_flight_{0};
  std::atomic<std::uint32_t> peer_missing_{0};
  std::uint64_t peer_missing_seq_ = 0;  // cumulative ack that reported it
  rte_mbuf *cur_ = nullptr;        // frame being written by the encoder
  static constexpr unsigned kTxBuf = 256;
  rte_mbuf *tx_[kTxBuf];
  unsigned ntx_ = 0;
  // --key-file: frames wait here to be sealed as one burst (copy: a window
  // frame, sealed into a new mbuf; else a parity frame, sealed in place).
  crypto_lane *lane_ = nullptr;
  rte_mbuf *seal_[kTxBuf];
  bool seal_copy_[kTxBuf];
  unsigned nseal_ = 0;
  impairer impair_;                // --impair (tests)
  // Addressing: the next hop's MAC (ARP or --peer-mac) and ARP frames to
  // send on our queue; a refusal or window from the destination's ACKs.
  const arp::mac_cell *next_hop_ = nullptr;
  rte_ring *ctl_tx_ = nullptr;
  rte_ether_addr dst_mac_{};
  std::uint32_t wire_frame_ = 0;
  std::atomic<std::uint8_t> refused_{0};
  std::atomic<std::uint32_t> refused_ours_{0}, refused_theirs_{0}, peer_window_{0};
  // FEC (--fec): the group being filled, and with --fec auto the loss
  // measured over the last interval (lost + rebuilt over sent).
  fec_sender fec_;
  bool fec_auto_ = false;
  std::uint64_t fec_close_tsc_ = 0;     // a group open this long is closed short
  std::uint64_t fec_next_adapt_ = 0, fec_adapt_tsc_ = 0;
  std::uint64_t fec_seen_sent_ = 0, fec_seen_lost_ = 0;
  std::uint32_t peer_rebuilt_ = 0, fec_seen_rebuilt_ = 0;
  double fec_loss_ = 0;                 // smoothed loss rate (auto)
  unsigned fec_off_votes_ = 0;          // intervals in a row auto chose off
  bool open_frame_ = false;        // encoded since the last flush
  std::atomic<std::uint32_t> rounds_done_{0};
  std::atomic<bool> drained_{true};
  std::atomic<std::uint64_t> progress_tsc_{0};
  worker_stats st_;
};

class ingress final : public task {
public:
  ingress(feeder &f, std::vector<worker *> workers);
  unsigned poll(std::uint64_t now) override;
  const char *name() const override { return "ingress"; }
  bool all_pushed() const { return done_; }
  // Stop feeding (a signal): what is queued is still sent and acknowledged.
  void stop() { done_ = true; }
  std::uint32_t rounds_pushed() const { return round_; }
  // The destination lost this page (a REPAIR frame): queue it, whole, for
  // its worker. Main lcore (ack_rx), like poll().
  void request_repair(page_key k);
  // Repairs asked for and not yet queued to a worker.
  std::size_t repairs_pending() const { return repairs_.size(); }
  std::uint64_t repairs_unknown() const { return repairs_unknown_; }

private:
  bool push_pending(std::size_t w);
  unsigned push_repairs();
  feeder &f_;
  std::vector<worker *> w_;
  std::uint32_t round_ = 0;    // round being pushed
  std::size_t pos_ = 0;        // next page of that round
  bool markers_ = false;       // pages done, markers pushed?
  bool done_ = false;
  std::vector<std::vector<work_item *>> pending_;  // per worker, staged for enqueue
  std::vector<std::uint64_t> counts_;              // pages per worker this round
  // Markers live until the worker has read them: one per round and worker
  // (with a preloaded trace, ingress runs rounds ahead of the workers).
  std::vector<std::vector<work_item>> marks_;      // [round][worker]
  // Repairs: requested pages, and their work items (they must outlive the
  // worker's read; repairs are rare, so they are simply kept).
  std::vector<page_key> repairs_;
  std::deque<work_item> repair_items_;
  std::uint64_t repairs_unknown_ = 0;  // asked for a page no round has
};

struct alignas(64) ack_rx_stats {
  std::uint64_t frames = 0;
  std::uint64_t acks = 0;
  std::uint64_t ring_full = 0;
  std::uint64_t not_hde = 0;       // bad magic/version/crc/length
  std::uint64_t bad_stream = 0;
  std::uint64_t repair_frames = 0;  // REPAIR frames from the destination
  std::uint64_t repair_pages = 0;   // pages they asked for
  std::uint64_t notices = 0;        // NOTICE frames: why the destination drops our frames
  std::uint64_t not_opened = 0;     // sealed replies that did not authenticate (lane counts why)
  std::uint64_t drops[kRxDropCount] = {};
};

class ack_rx final : public task {
public:
  ack_rx(std::uint16_t port, std::uint16_t nrxq, const options &o, std::vector<worker *> workers,
         ingress &ing, crypto_lane *lane = nullptr);
  unsigned poll(std::uint64_t now) override;
  const char *name() const override { return "ack-rx"; }
  const ack_rx_stats &stats() const { return st_; }
  // An ACK said the destination gave up on the migration (kFrameFlagAbort).
  bool peer_aborted() const { return peer_abort_.load(std::memory_order_relaxed); }
  // The latest NOTICE's reason (wire::notice_reason; 0: none): advisory, for
  // the message when the destination stays silent.
  std::uint32_t peer_notice() const { return notice_.load(std::memory_order_relaxed); }
  // ARP on this port (arp_port.h) takes the frames of ARP's EtherType.
  // Before the lcores run.
  void set_arp(arp_port *a) { arp_ = a; }

private:
  unsigned poll_queue(std::uint16_t q);
  void dispatch(rte_mbuf *m);
  std::atomic<std::uint32_t> notice_{0};
  crypto_lane *lane_;
  std::atomic<bool> peer_abort_{false};
  std::uint16_t port_, nrxq_;
  const options &o_;
  std::vector<worker *> w_;
  ingress &ing_;
  arp_port *arp_ = nullptr;
  ack_rx_stats st_;
};

}  // namespace hde::dp
