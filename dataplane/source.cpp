// source.cpp — ingress, ACK reception and the worker loop of the source.
#include "source.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <rte_cycles.h>
#include <rte_malloc.h>

#include "arp_port.h"
#include "negotiate.h"
#include "wire/format.h"

namespace hde::dp {

namespace {

constexpr unsigned kBurst = 32;
// Bytes a frame takes on an Ethernet link beyond its own: preamble and start
// delimiter (8), FCS (4), inter-frame gap (12). Pacing counts them.
constexpr std::uint32_t kWireExtra = 24;

}  // namespace

std::uint32_t worker_of(page_key k, std::size_t n) {
  std::uint64_t x = (k.gfn >> 9) * 0x9E3779B97F4A7C15ULL ^ (std::uint64_t{k.vm} << 32);
  x ^= x >> 29;
  return static_cast<std::uint32_t>(x % n);
}

namespace {

rte_ring *make_ring(const char *kind, std::uint16_t id, unsigned size, bool multi_producer = false) {
  char name[RTE_RING_NAMESIZE];
  std::snprintf(name, sizeof name, "hde_%s_%u", kind, id);
  return rte_ring_create(name, size, static_cast<int>(rte_socket_id()),
                         (multi_producer ? 0 : RING_F_SP_ENQ) | RING_F_SC_DEQ);
}

}  // namespace

// --- worker --------------------------------------------------------------------

worker::worker(const options &o, std::uint16_t id, std::uint16_t port, std::uint16_t txq,
               rte_mempool *pool, const endpoint_pair &ep, std::uint32_t epoch, live_config_store *live,
               crypto_lane *lane)
    : id_(id), port_(port), txq_(txq), pool_(pool), ep_(ep),
      snd_(sender<rte_mbuf *>::config{
          o.window, static_cast<double>(rte_get_tsc_hz()),
          static_cast<std::uint32_t>(wire::frame_size_for_mtu(o.mtu) + kL2L4 + kWireExtra),
          static_cast<std::uint64_t>(static_cast<double>(rte_get_tsc_hz()) * o.rto_us / 1e6),
          static_cast<double>(o.link_rate_bps) / o.workers}),
      ns_per_tsc_(1e9 / static_cast<double>(rte_get_tsc_hz())), live_(live), nstreams_(o.workers), lane_(lane) {
  impair_.configure(o.impair, id);
  // Several QEMU ingress threads (--qemu-listen A,B) feed every worker.
  in_ = make_ring("in", id, 4096, o.qemu_listen.find(',') != std::string::npos);
  acks_ = make_ring("ack", id, 1024);
  if (in_ == nullptr || acks_ == nullptr)
    rte_exit(EXIT_FAILURE, "hde-gateway: cannot create worker rings: %s\n", rte_strerror(rte_errno));
  encoder_config c = encoder_config::for_mode(o.m);
  if (!o.codec.empty())
    c.codec() = *parse_codec(o.codec);
  c.cache_bytes = o.cache_mb << 20;
  c.max_frame = wire::frame_size_for_mtu(o.mtu);
  if (lane_ != nullptr)  // sealed, a frame grows by its seal header and tag
    c.max_frame -= wire::kSealOverhead;
  const bool fec = o.fec_k != 0 || o.fec_auto;
  if (fec)  // a parity frame (header + shard, a multiple of 64) must fit the MTU too
    c.max_frame = (c.max_frame - wire::kFrameHeaderSize) / kFecAlign * kFecAlign;
  c.stream = id;
  c.streams = static_cast<std::uint16_t>(o.workers);
  c.epoch = epoch;
  // Told in INIT (negotiate.h): our largest frame on the link (FEC parity
  // included) and our window.
  wire_frame_ = static_cast<std::uint32_t>(wire::frame_size_for_mtu(o.mtu));
  c.wire_max_frame = wire_frame_;
  c.window = o.window;
  // One burst may produce this many frames at most: every page a raw record
  // split over frames, plus a full batch closing — the largest batch any
  // mode or hybrid arm may switch to live (256 KiB), not the one we start on.
  const std::size_t room = c.max_frame - wire::kFrameHeaderSize - 2 * wire::kRecordHeaderSize - 8;
  const std::size_t batch_max = std::max<std::size_t>(c.batch_bytes, 256 * 1024);
  reserve_ = static_cast<std::uint32_t>(kBurst * ((kPageSize + 64) / room + 2) + batch_max / room + 4 + 4);
  if (reserve_ * 2 > o.window)
    rte_exit(EXIT_FAILURE, "hde-gateway: --window %u too small for MTU %zu (need >= %u)\n", o.window,
             o.mtu, reserve_ * 2);
  qemu_ = !o.qemu_listen.empty();
  stall_tsc_ = rte_get_tsc_hz() / 500;
  max_frame_ = c.max_frame;
  progress_tsc_ = rte_rdtsc();
  now_ = rte_rdtsc();
  enc_ = std::make_unique<encoder>(c, static_cast<frame_output &>(*this));  // emits the INIT frame
  if (!rcu_.init())
    rte_exit(EXIT_FAILURE, "hde-gateway: cannot set up baseline RCU: %s\n", rte_strerror(rte_errno));
  enc_->set_grace_domain(&rcu_);
  const double hz = static_cast<double>(rte_get_tsc_hz());
  fec_close_tsc_ = static_cast<std::uint64_t>(hz / 1000);
  fec_adapt_tsc_ = static_cast<std::uint64_t>(hz / 10);
  if (fec) {
    if (!fec_.init(pool, c.max_frame))
      rte_exit(EXIT_FAILURE, "hde-gateway: worker %u: cannot set up FEC (ISA-L codec)\n", id);
    fec_auto_ = o.fec_auto;
    fec_.configure(o.fec_k, o.fec_m);
    if (o.fec_k != 0)
      snd_.set_wire_factor(1.0 + static_cast<double>(o.fec_m) / o.fec_k);
  }
  cache_pub_.store(&enc_->baselines(), std::memory_order_release);
  if (live_ != nullptr) {
    live_->online(id_);
    config_seen_ = live_->get()->version;
    apply_config(*live_->get());
  }
}

void worker::on_stop() {
  if (live_ != nullptr)
    live_->offline(id_);  // a control-thread grace period must not wait for us
}

// A new live configuration: codecs and batching, pacing, baseline flush.
void worker::apply_config(const live_config &c) {
  const encoder_config &cur = enc_->config();
  encoder_config next = c.enc;
  // Hybrid: the selector optimises for this stream's share of the link.
  next.link_bytes_per_s = static_cast<double>(c.link_rate_bps) / 8 / nstreams_;
  if (next.m != cur.m || (next.m != mode::hybrid && (next.page_codec != cur.page_codec || next.batch != cur.batch ||
                                                     next.batch_codec != cur.batch_codec ||
                                                     next.batch_bytes != cur.batch_bytes)) ||
      next.link_bytes_per_s != cur.link_bytes_per_s) {
    enc_->reconfigure(next);
    open_frame_ = false;
  }
  snd_.set_ceiling_bps(static_cast<double>(c.link_rate_bps) / nstreams_);
  if (c.cache_bytes != enc_->config().cache_bytes) {  // stalls this worker while it allocates
    if (old_cache_ != nullptr) {  // the previous resize's grace period: wait it out
      rcu_.wait(old_cache_token_);
      old_cache_.reset();
    }
    old_cache_ = enc_->resize_cache(c.cache_bytes);
    cache_pub_.store(&enc_->baselines(), std::memory_order_release);
    old_cache_token_ = rcu_.start();  // freed in poll() once readers are past it
    open_frame_ = false;
  }
  if (c.flush_gen != flush_seen_) {
    flush_seen_ = c.flush_gen;
    if (c.flush_vm == ~0u)
      enc_->baselines().flush();
    else
      enc_->baselines().flush_vm(c.flush_vm);
  }
}

worker::~worker() {
  impair_.reset();  // a held-back frame, while the pool exists
  rte_ring_free(in_);
  rte_ring_free(acks_);
}

bytes_buf worker::acquire() {
  cur_ = rte_pktmbuf_alloc(pool_);
  if (cur_ == nullptr)  // sizing bug: the pool covers every window in full
    rte_panic("hde-gateway: worker %u: mbuf pool exhausted\n", id_);
  return {rte_pktmbuf_mtod_offset(cur_, std::byte *, kL2L4),
          static_cast<std::size_t>(rte_pktmbuf_tailroom(cur_) - kL2L4)};
}

void worker::commit(bytes_buf, std::size_t len) {
  write_envelope(cur_, ep_, static_cast<std::uint16_t>(len));
  // The sender owns it; pump() sends it when the rate allows. Wire bytes
  // count the seal it will get at every transmission.
  snd_.push(cur_, cur_->pkt_len + kWireExtra + (lane_ != nullptr ? wire::kSealOverhead : 0));
  cur_ = nullptr;
}

// Send what the sender's pacing rate and in-flight cap allow: frames found
// lost first, then new ones. The window keeps one reference, TX takes one;
// sealed, TX takes a sealed copy (each transmission under its own nonce).
void worker::pump(std::uint64_t now) {
  snd_.pump(now, kTxBuf, [this, now](rte_mbuf *m, std::uint64_t seq, bool rtx) {
    if (lane_ != nullptr) {
      tx_push(m, true);
    } else {
      rte_mbuf_refcnt_update(m, 1);
      tx_push(m);
    }
    if (!rtx && fec_.on()) {  // first transmissions form the FEC groups
      snd_.fec_protect(seq);
      if (fec_.add(m, seq, now))
        fec_close(now);
    }
  });
}

// Send the open group's parity; it takes link time like any frame.
void worker::fec_close(std::uint64_t now) {
  snd_.fec_parity_sent(fec_.first_seq(), fec_.size(), now);
  unsigned n = 0;
  const std::uint32_t bytes = fec_.close(ep_, id_, enc_->config().epoch, [this, &n](rte_mbuf *p) {
    tx_push(p);
    ++n;
  });
  snd_.charge(now, bytes + n * (kWireExtra + (lane_ != nullptr ? wire::kSealOverhead : 0)));
}

// --fec auto: every 100 ms, the loss rate of the path (frames found lost
// plus those the destination rebuilt from parity, over frames sent),
// smoothed, and the round trip and bottleneck rate go to fec_auto(). FEC
// goes off only after five intervals in a row say so (no flapping).
void worker::fec_adapt(std::uint64_t now) {
  fec_next_adapt_ = now + fec_adapt_tsc_;
  const sender_stats &t = snd_.stats();
  const std::uint64_t sent = t.frames_sent + t.retransmits - fec_seen_sent_;
  if (sent < 64)
    return;  // too few frames to say anything
  const std::uint64_t lost = (t.lost_frames - fec_seen_lost_) + static_cast<std::uint32_t>(peer_rebuilt_ - fec_seen_rebuilt_);
  fec_seen_sent_ = t.frames_sent + t.retransmits;
  fec_seen_lost_ = t.lost_frames;
  fec_seen_rebuilt_ = peer_rebuilt_;
  const double p = std::min(1.0, static_cast<double>(lost) / static_cast<double>(sent));
  fec_loss_ = fec_loss_ == 0 ? p : 0.75 * fec_loss_ + 0.25 * p;
  const double hz = 1e9 / ns_per_tsc_;
  const rate_model &r = snd_.model();
  const double rtt_s = static_cast<double>(snd_.srtt()) / hz;
  const fec_choice c = fec_auto(fec_loss_, rtt_s, r.btl_bw() * hz * 8, static_cast<double>(snd_.mss()));
  if (!c.on() && fec_.on() && ++fec_off_votes_ < 5)
    return;
  if (c.on())
    fec_off_votes_ = 0;
  if (c.k == fec_.k() && c.m == fec_.m())
    return;
  if (fec_.open())
    fec_close(now);
  fec_.configure(c.k, c.m);
  snd_.set_wire_factor(c.on() ? 1.0 + static_cast<double>(c.m) / c.k : 1.0);
}

void worker::tx_push(rte_mbuf *m, bool copy) {
  if (lane_ == nullptr) {
    tx_out(m);
    return;
  }
  seal_[nseal_] = m;
  seal_copy_[nseal_] = copy;
  if (++nseal_ == kTxBuf)
    seal_flush();
}

// Seal what waits as one burst on this worker's queue pair, then send it.
void worker::seal_flush() {
  if (nseal_ == 0)
    return;
  rte_mbuf *out[kTxBuf];
  const unsigned n = lane_->seal(seal_, nseal_, out, wire::kSealFromSource, seal_copy_, pool_);
  nseal_ = 0;
  for (unsigned i = 0; i < n; ++i) {
    write_envelope(out[i], ep_, static_cast<std::uint16_t>(out[i]->data_len - kL2L4));
    tx_out(out[i]);
  }
}

void worker::tx_out(rte_mbuf *m) {
  if (impair_.on()) {  // tests (--impair): drop, duplicate or hold back
    impair_.pass(m, [this](rte_mbuf *x) { tx_enqueue(x); });
    return;
  }
  tx_enqueue(m);
}

// Every frame of ours goes to the next hop's MAC as it leaves (frames in
// the send window were sealed before it was known, or before it changed).
void worker::tx_enqueue(rte_mbuf *m) {
  if (next_hop_ != nullptr)
    rte_ether_addr_copy(&dst_mac_, &rte_pktmbuf_mtod(m, rte_ether_hdr *)->dst_addr);
  if (ntx_ == kTxBuf)
    tx_flush();
  if (ntx_ == kTxBuf) {  // the queue stays full: the window resends it later
    rte_pktmbuf_free(m);
    ++st_.tx_full;
    return;
  }
  tx_[ntx_++] = m;
}

// ARP frames from the main lcore (arp_port.h), on this worker's queue as they are.
void worker::tx_ctl() {
  while (ntx_ < kTxBuf) {
    rte_mbuf *m;
    if (rte_ring_sc_dequeue(ctl_tx_, reinterpret_cast<void **>(&m)) != 0)
      break;
    tx_[ntx_++] = m;
  }
}

// The next hop's MAC, for the frames of this poll: false while it is not
// known (ARP still resolving).
bool worker::addressed() {
  arp::mac m;
  if (!next_hop_->load(m))
    return false;
  std::memcpy(dst_mac_.addr_bytes, m.data(), 6);
  return true;
}

void worker::tx_flush() {
  if (ntx_ == 0)
    return;
  unsigned sent = rte_eth_tx_burst(port_, txq_, tx_, static_cast<std::uint16_t>(ntx_));
  if (sent < ntx_)
    std::copy(tx_ + sent, tx_ + ntx_, tx_);
  ntx_ -= sent;
}

void worker::apply_ack(rte_mbuf *m) {
  const std::byte *p = rte_pktmbuf_mtod_offset(m, const std::byte *, kL2L4);
  const auto h = wire::load<wire::frame_header>(p);
  ack_info a;
  if (h.epoch != enc_->config().epoch || !parse_ack_payload(p + wire::kFrameHeaderSize, h.payload_len, h.seq, a)) {
    ++st_.bad_acks;
    return;
  }
  if (a.refuse != 0) {  // the destination refused the stream (negotiate.h): the supervisor says why and stops
    if (refused_.load(std::memory_order_relaxed) == 0) {
      refused_ours_.store(a.refuse_value, std::memory_order_relaxed);
      refused_theirs_.store(static_cast<refusal>(a.refuse) == refusal::cache_too_large
                                ? enc_->baselines().slot_count()
                                : wire_frame_,
                            std::memory_order_relaxed);
      refused_.store(a.refuse, std::memory_order_release);
    }
    return;
  }
  if (a.window_log2 != 0 && snd_.peer_window() != (1ull << a.window_log2)) {
    // Its reorder window: never more frames than that beyond its cumulative ack.
    snd_.set_peer_window(1u << a.window_log2);
    peer_window_.store(1u << a.window_log2, std::memory_order_relaxed);
  }
  ++st_.acks;
  if (static_cast<std::int32_t>(a.fec_rebuilt - peer_rebuilt_) > 0)
    peer_rebuilt_ = a.fec_rebuilt;  // ACKs may come out of order: the newest count
  if (a.cum >= peer_missing_seq_) {  // the newest ack says how many pages are missing
    peer_missing_seq_ = a.cum;
    peer_missing_.store(h.ack, std::memory_order_relaxed);
  }
  if (snd_.on_ack(now_, a, [](rte_mbuf *f) { rte_pktmbuf_free(f); }) != 0)
    progress_tsc_.store(now_, std::memory_order_relaxed);
}

// Counters and gauges for the control thread (relaxed: it reads them while
// the worker runs).
void worker::publish_stats() {
  const sender_stats &t = snd_.stats();
  const rate_model &r = snd_.model();
  const double hz = 1e9 / ns_per_tsc_;
  st_.frames_sent = t.frames_sent;
  st_.retransmits = t.retransmits;
  st_.bytes_sent = t.bytes_sent;
  st_.frames_acked = t.frames_acked;
  st_.lost_frames = t.lost_frames;
  st_.tlp_probes = t.tlp_probes;
  st_.rto_events = t.rto_events;
  st_.spurious_rto = t.spurious_rto;
  st_.dup_reports = t.dup_reports;
  st_.spurious = t.spurious;
  st_.loss_rounds = r.loss_rounds();
  st_.probe_rtt = r.probe_rtt_count();
  st_.cwnd_bytes = r.cwnd();
  st_.inflight_bytes = snd_.inflight_bytes();
  st_.pacing_bps = static_cast<std::uint64_t>(r.pacing_rate() * hz * 8);
  st_.btl_bw_bps = static_cast<std::uint64_t>(r.btl_bw() * hz * 8);
  st_.delivery_bps = static_cast<std::uint64_t>(r.last_rate() * hz * 8);
  st_.min_rtt_ns = static_cast<std::uint64_t>(static_cast<double>(r.min_rtt()) * ns_per_tsc_);
  st_.srtt_ns = static_cast<std::uint64_t>(static_cast<double>(snd_.srtt()) * ns_per_tsc_);
  st_.reo_wnd_ns = static_cast<std::uint64_t>(static_cast<double>(snd_.reo_wnd()) * ns_per_tsc_);
  st_.cc_state = static_cast<std::uint64_t>(r.state());
  const fec_sender_stats &f = fec_.stats();
  st_.fec_groups = f.groups;
  st_.fec_parity_frames = f.parity_frames;
  st_.fec_parity_bytes = f.parity_bytes;
  st_.fec_rebuilt = peer_rebuilt_;
  st_.fec_k = fec_.k();
  st_.fec_m = fec_.m();
}

unsigned worker::poll(std::uint64_t now) {
  now_ = now;
  unsigned work = 0;
  if (ctl_tx_ != nullptr)
    tx_ctl();
  if (next_hop_ != nullptr && !addressed()) {
    // No MAC for the peer yet: nothing leaves but ARP, and the wait is not
    // the destination's silence (the supervisor times ARP on its own). Idle
    // unless a frame went out (a port whose link is down takes none).
    const unsigned queued = ntx_;
    tx_flush();
    progress_tsc_.store(now, std::memory_order_relaxed);
    if (live_ != nullptr)
      live_->quiescent(id_);
    return queued - ntx_;
  }
  if (live_ != nullptr) {
    const live_config *c = live_->get();
    if (c->version != config_seen_) {
      config_seen_ = c->version;
      apply_config(*c);
    }
  }

  // Every ACK queued (a bounded number of bursts): an ACK left in the ring
  // is news RACK does not have, and a full ring drops the next ones.
  rte_mbuf *acks[kBurst];
  unsigned n = 0;
  for (int b = 0; b < 8; ++b) {
    const unsigned got = rte_ring_sc_dequeue_burst(acks_, reinterpret_cast<void **>(acks), kBurst, nullptr);
    for (unsigned i = 0; i < got; ++i) {
      apply_ack(acks[i]);
      rte_pktmbuf_free(acks[i]);
    }
    n += got;
    if (got < kBurst)
      break;
  }
  work += n;

  // A poll long after the last one: this lcore was descheduled, and the
  // ACKs that came meanwhile may not even be read yet (2 ms: far above an
  // idle back-off sleep, far below any retransmit timeout).
  if (last_poll_ != 0 && now - last_poll_ > stall_tsc_)
    snd_.on_stall(now, now - last_poll_);
  if (last_poll_ == 0)  // the wait for acknowledgements starts now, not when this worker was built
    progress_tsc_.store(now, std::memory_order_relaxed);
  last_poll_ = now;
  snd_.on_timer(now);  // RACK reorder timer, tail-loss probe, retransmit timeout

  // With QEMU, encoded frames waiting to be sent are what the final pages
  // queue behind at the switchover: keep them to about 20 ms of the pacing
  // rate (at least 128 frames) instead of a whole send window.
  const bool qemu_room =
      !qemu_ || snd_.unsent() < std::max<std::uint64_t>(128, st_.pacing_bps / 8 / 50 / max_frame_);
  if (snd_.free_slots() >= reserve_ && qemu_room) {
    work_item *items[kBurst];
    n = rte_ring_sc_dequeue_burst(in_, reinterpret_cast<void **>(items), kBurst, nullptr);
    page_in burst[kBurst];
    unsigned k = 0;
    for (unsigned i = 0; i < n; ++i) {
      const work_item &it = *items[i];
      if (it.page.data != nullptr && !it.repair) {
        burst[k++] = it.page;
        continue;
      }
      enc_->encode(burst, k);
      k = 0;
      if (it.is_opaque) {
        enc_->opaque(it.page.key.vm, it.round, it.opaque_flags, {it.opaque, it.opaque_len});
        open_frame_ = true;
        continue;
      }
      if (it.repair) {
        enc_->repair(&it.page, 1);
        ++st_.repairs;
        open_frame_ = true;
        continue;
      }
      enc_->mark_round(it.page.key.vm, it.round, it.round_pages, it.last);
      rounds_done_.fetch_add(1, std::memory_order_release);
      open_frame_ = false;
    }
    if (k != 0) {
      enc_->encode(burst, k);
      open_frame_ = true;
    }
    // Items of the QEMU ingress go back to its pool, page buffers with them
    // (everything encoded has been copied into frames and baselines).
    for (unsigned i = 0; i < n; ++i)
      if (items[i]->pool != nullptr)
        rte_mempool_put(items[i]->pool, items[i]);
    if (n == 0 && open_frame_) {  // nothing more queued: send what is encoded
      enc_->flush();
      open_frame_ = false;
      ++work;
    }
    work += n;
  } else {
    ++st_.window_full;
  }

  pump(now);
  if (fec_.open() && now - fec_.opened_tsc() >= std::max(fec_close_tsc_, snd_.srtt() / 8))
    fec_close(now);  // the stream went quiet: a short group, rather than parity that never comes
  if (fec_auto_ && now >= fec_next_adapt_)
    fec_adapt(now);
  if (lane_ != nullptr)
    seal_flush();
  if (impair_.on())  // what --impair held back goes out with this poll's frames
    impair_.release([this](rte_mbuf *x) { tx_enqueue(x); });
  tx_flush();
  const bool idle = snd_.empty() && ntx_ == 0 && !open_frame_ && rte_ring_empty(in_);
  if (idle)
    progress_tsc_.store(now, std::memory_order_relaxed);
  drained_.store(idle, std::memory_order_release);
  in_flight_.store(static_cast<std::uint32_t>(snd_.sent() - snd_.base()), std::memory_order_relaxed);
  publish_stats();
  if (old_cache_ != nullptr && rcu_.done(old_cache_token_))
    old_cache_.reset();  // after `set cache-mb`: no reader is left in it
  if (live_ != nullptr)
    live_->quiescent(id_);  // no reference to the live config is held past here
  return work;
}

// --- ingress -------------------------------------------------------------------

ingress::ingress(feeder &f, std::vector<worker *> workers)
    : f_(f), w_(std::move(workers)), pending_(w_.size()), counts_(w_.size(), 0),
      marks_(f.rounds(), std::vector<work_item>(w_.size())) {
  for (auto &p : pending_)
    p.reserve(512);
}

bool ingress::push_pending(std::size_t w) {
  auto &p = pending_[w];
  if (p.empty())
    return true;
  unsigned n = rte_ring_sp_enqueue_burst(w_[w]->in(), reinterpret_cast<void *const *>(p.data()),
                                         static_cast<unsigned>(p.size()), nullptr);
  p.erase(p.begin(), p.begin() + n);
  return p.empty();
}

void ingress::request_repair(page_key k) { repairs_.push_back(k); }

// Queue requested repairs, each behind whatever its worker already has. The
// page comes from the image of the round being pushed: its markers are not
// out yet, so the image stays loaded until the workers have encoded these;
// once every round is out, from the last image, which nothing replaces.
// Its content is at least as new as anything sent for the page before.
unsigned ingress::push_repairs() {
  if (repairs_.empty())
    return 0;
  const round_batch *b = nullptr;
  if (done_)
    b = round_ + 1 == f_.rounds() ? f_.ready(round_) : nullptr;  // nullptr: stopped by a signal
  else if (!markers_)
    b = f_.ready(round_);
  if (b == nullptr || b->image == nullptr)
    return 0;
  for (page_key k : repairs_) {
    if (k.vm != 0 || k.gfn >= b->image_pages) {
      ++repairs_unknown_;
      continue;
    }
    repair_items_.push_back(work_item{page_in{k, b->image + k.gfn * kPageSize}, b->index, 0, false, true});
    pending_[worker_of(k, w_.size())].push_back(&repair_items_.back());
  }
  const auto n = static_cast<unsigned>(repairs_.size());
  repairs_.clear();
  for (std::size_t w = 0; w < w_.size(); ++w)
    push_pending(w);
  return n;
}

unsigned ingress::poll(std::uint64_t) {
  const unsigned repaired = push_repairs();
  if (done_) {
    for (std::size_t w = 0; w < w_.size(); ++w)
      push_pending(w);
    return repaired;
  }
  std::uint32_t min_done = ~0u;
  for (worker *w : w_)
    min_done = std::min(min_done, w->rounds_done());
  if (min_done > 0)
    f_.release(min_done - 1);

  bool clear = true;
  for (std::size_t w = 0; w < w_.size(); ++w)
    clear = push_pending(w) && clear;
  if (!clear)
    return 0;
  const round_batch *b = f_.ready(round_);
  if (b == nullptr)
    return 0;

  unsigned work = 0;
  if (!markers_) {
    const std::size_t end = std::min(b->pages.size(), pos_ + 256);
    for (; pos_ < end; ++pos_, ++work) {
      const work_item *it = &b->pages[pos_];
      std::uint32_t w = worker_of(it->page.key, w_.size());
      pending_[w].push_back(const_cast<work_item *>(it));
      ++counts_[w];
    }
    if (pos_ == b->pages.size()) {
      for (std::size_t w = 0; w < w_.size(); ++w) {
        work_item &m = marks_[round_][w];
        m = work_item{page_in{{0, 0}, nullptr}, round_, counts_[w], b->last};
        pending_[w].push_back(&m);
        counts_[w] = 0;
      }
      markers_ = true;
    }
  }
  clear = true;
  for (std::size_t w = 0; w < w_.size(); ++w)
    clear = push_pending(w) && clear;
  if (markers_ && clear) {
    if (b->last) {
      done_ = true;
    } else {
      ++round_;
      pos_ = 0;
      markers_ = false;
    }
  }
  return work + 1;
}

// --- ack reception ---------------------------------------------------------------

ack_rx::ack_rx(std::uint16_t port, std::uint16_t nrxq, const options &o, std::vector<worker *> workers,
               ingress &ing, crypto_lane *lane)
    : lane_(lane), port_(port), nrxq_(nrxq), o_(o), w_(std::move(workers)), ing_(ing) {}

unsigned ack_rx::poll(std::uint64_t) {
  unsigned total = 0;
  for (std::uint16_t q = 0; q < nrxq_; ++q)
    total += poll_queue(q);
  return total;
}

unsigned ack_rx::poll_queue(std::uint16_t q) {
  rte_mbuf *m[kBurst];
  const unsigned n = rte_eth_rx_burst(port_, q, m, kBurst);
  rte_mbuf *sealed[kBurst];
  unsigned ns = 0;
  for (unsigned i = 0; i < n; ++i) {
    if (arp_ != nullptr && arp_->take(m[i]))
      continue;  // ARP: answered or learnt from (arp_port.h)
    ++st_.frames;
    rx_view v;
    rx_drop why;
    wire::frame_header h;
    if (!parse_envelope(m[i], o_.udp_port, o_.check_peer ? o_.dst_ip : 0, v, why)) {
      ++st_.drops[static_cast<std::size_t>(why)];
    } else if (wire::parse_frame_header({v.payload, v.len}, h) != error::ok) {
      ++st_.not_hde;
    } else if (h.type == static_cast<std::uint8_t>(wire::frame_type::notice)) {
      // Never sealed (the destination may have no key, or another one):
      // it only words the message if the destination stays silent.
      ++st_.notices;
      notice_.store(h.ack, std::memory_order_relaxed);
    } else if (h.type != static_cast<std::uint8_t>(wire::frame_type::ack) &&
               h.type != static_cast<std::uint8_t>(wire::frame_type::repair)) {
      ++st_.not_hde;  // our own data frames seen on a shared medium
    } else if (lane_ != nullptr) {
      sealed[ns++] = m[i];  // opened below, as one burst
      continue;
    } else if ((h.flags & wire::kFrameFlagSealed) != 0) {
      ++st_.not_opened;  // the destination seals, we have no key
    } else {
      dispatch(m[i]);
      continue;
    }
    rte_pktmbuf_free(m[i]);
  }
  if (ns != 0) {
    bool ok[kBurst];
    lane_->open(sealed, ns, wire::kSealFromDest, ok);
    for (unsigned i = 0; i < ns; ++i) {
      if (ok[i]) {
        dispatch(sealed[i]);
      } else {
        ++st_.not_opened;
        rte_pktmbuf_free(sealed[i]);
      }
    }
  }
  return n;
}

// An authentic ACK or REPAIR frame (clear layout): to its worker, or the
// pages it asks for to ingress.
void ack_rx::dispatch(rte_mbuf *m) {
  const std::byte *p = rte_pktmbuf_mtod_offset(m, const std::byte *, kL2L4);
  const auto h = wire::load<wire::frame_header>(p);
  if (h.type == static_cast<std::uint8_t>(wire::frame_type::repair)) {
    // Pages the destination could not rebuild: send them again, whole.
    if (h.payload_len == h.record_count * sizeof(wire::repair_entry) && h.stream < w_.size()) {
      ++st_.repair_frames;
      for (std::uint16_t i = 0; i < h.record_count; ++i) {
        const auto e = wire::load<wire::repair_entry>(p + wire::kFrameHeaderSize + i * sizeof(wire::repair_entry));
        ing_.request_repair({e.vm, e.gfn});
        ++st_.repair_pages;
      }
    } else {
      ++st_.not_hde;
    }
  } else if (h.stream >= w_.size()) {
    ++st_.bad_stream;
  } else {
    if ((h.flags & wire::kFrameFlagAbort) != 0)
      peer_abort_.store(true, std::memory_order_relaxed);
    if (rte_ring_sp_enqueue(w_[h.stream]->acks(), m) == 0) {
      ++st_.acks;
      return;  // the worker frees it
    }
    ++st_.ring_full;
  }
  rte_pktmbuf_free(m);
}

}  // namespace hde::dp
