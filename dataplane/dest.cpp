// dest.cpp — receive and dispatch (dest_rx); reorder, decode, acknowledge
// (dest_decoder).
#include "dest.h"

#include <cstdio>
#include <ctime>
#include <map>
#include <string>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_prefetch.h>

#include "fec_stream.h"
#include "negotiate.h"
#include "wire/format.h"

namespace hde::dp {

namespace {
constexpr unsigned kBurst = 32;
constexpr std::uint32_t kAckEvery = 16;  // frames between acks of a busy stream
constexpr unsigned kDispatchRing = 2048;  // frames waiting for one decoder
constexpr unsigned kReplyRing = 512;      // ACK/REPAIR frames waiting for TX
// Below this many free mbufs, decoders stop holding out-of-order frames, so
// that the frames which close the gaps can still be received.
constexpr unsigned kMbufReserve = 1024;

// Header of a frame the destination sends back to the source (ACK, REPAIR).
wire::frame_header reply_header(wire::frame_type t, std::uint16_t stream, std::uint32_t epoch) {
  wire::frame_header h{};
  h.magic = wire::kMagic;
  h.version = wire::kVersion;
  h.type = static_cast<std::uint8_t>(t);
  h.stream = stream;
  h.epoch = epoch;
  return h;
}

void free_mbuf(rte_mbuf *m) { rte_pktmbuf_free(m); }

// t += a, field by field, reading a with relaxed atomic loads (a is written
// by another lcore; all fields are 64-bit counters).
void add_stats(dest_stats &t, const dest_stats &a) {
  static_assert(sizeof(dest_stats) % 8 == 0);
  auto *d = reinterpret_cast<std::uint64_t *>(&t);
  const auto *s = reinterpret_cast<const std::uint64_t *>(&a);
  for (std::size_t i = 0; i < sizeof(dest_stats) / 8; ++i)
    d[i] += __atomic_load_n(s + i, __ATOMIC_RELAXED);
}
}  // namespace

// --- dest_decoder -------------------------------------------------------------

// One source stream: its decoder, reorder window, ack state, and the pages
// it could not rebuild.
struct dest_decoder::stream : page_sink {
  stream(dest_decoder &d, std::uint32_t epoch_, std::uint32_t window)
      : owner(d), epoch(epoch_), dec(config(), *this), win(window) {}
  static decoder_config config() {
    decoder_config c;
    c.populate_in_background = true;  // a large INIT must not stall the decode lcore
    return c;
  }
  error put_page(page_key k, const std::byte *p) override {
    if (!missing.empty() && missing.erase({k.vm, k.gfn}) != 0) {
      ++owner.st_.pages_repaired;
      const error e = owner.rx_.sink_.put_page(k, p);
      publish_barrier();  // after the page is in the image
      return e;
    }
    return owner.rx_.sink_.put_page(k, p);
  }
  error put_zero(std::uint32_t vm, std::uint64_t gfn, std::uint32_t n) override {
    if (!missing.empty()) {
      auto a = missing.lower_bound({vm, gfn}), b = missing.lower_bound({vm, gfn + n});
      owner.st_.pages_repaired += static_cast<std::uint64_t>(std::distance(a, b));
      missing.erase(a, b);
      const error e = owner.rx_.sink_.put_zero(vm, gfn, n);
      publish_barrier();
      return e;
    }
    return owner.rx_.sink_.put_zero(vm, gfn, n);
  }
  // QEMU egress: a barrier counts as passed once nothing before it is missing.
  void publish_barrier() {
    if (!missing.empty() || !owner.rx_.egress_)
      return;
    for (std::uint32_t vm = 0; vm < kMaxVms; ++vm)
      if (barrier_round[vm] != 0) {
        owner.rx_.egress_->on_barrier(id, vm, barrier_round[vm]);
        barrier_round[vm] = 0;
      }
  }
  void on_opaque(std::uint32_t vm, std::uint32_t chunk, std::uint32_t flags, bytes_view b) override {
    if (owner.rx_.egress_)
      owner.rx_.egress_->on_opaque(vm, chunk, flags, b.data(), b.size());
  }
  // Never guessed: asked for again (send_repairs) until a record brings it.
  void on_lost(page_key k, error) override {
    ++owner.st_.pages_lost;
    missing.emplace(std::make_pair(k.vm, k.gfn), 0);
  }
  void on_mark(std::uint32_t vm, std::uint32_t round, std::uint64_t pages, bool last) override {
    if (owner.rx_.egress_) {  // a QEMU barrier: many per second, not printed
      if (vm < kMaxVms) {
        barrier_round[vm] = round;
        publish_barrier();
      }
      // Done (and the images sealed) once every VM expected has ended.
      if (last && ++last_vms >= owner.rx_.egress_->expected_vms())
        done = true;
      return;
    }
    if (!owner.o_.quiet)
      std::printf("hde-gateway: stream %u: vm %u round %u complete (%llu pages)%s\n", id, vm, round,
                  static_cast<unsigned long long>(pages), last ? ", last round" : "");
    if (last)
      done = true;
  }

  dest_decoder &owner;
  std::uint16_t id = 0;
  std::uint32_t epoch;
  decoder dec;
  recv_window<rte_mbuf *> win;
  std::uint32_t unacked = 0;  // frames since the last ack
  bool ack_due = false;       // a duplicate or gap: ack at once
  bool drain_due = false;     // frames stored since the last drain
  std::size_t reported_missing = 0;  // missing pages as the last ACK said
  std::uint32_t dup_count = 0;     // duplicate DATA frames (reported in ACKs: DSACK)
  std::uint64_t last_dup_seq = 0;
  std::uint64_t first_unacked_tsc = 0;
  bool done = false;
  // QEMU: the barrier each VM passed last, until published (held while pages are missing).
  std::uint32_t barrier_round[kMaxVms] = {};
  std::uint32_t last_vms = 0;  // VMs whose last mark this stream carried
  // (vm, gfn) -> when last asked for (0: not yet). The failure path only:
  // allocation here is fine.
  std::map<std::pair<std::uint32_t, std::uint64_t>, std::uint64_t> missing;
  std::uint64_t frames_decoded = 0;
  // FEC: made when the stream's first parity frame arrives (once per stream).
  std::unique_ptr<fec_receiver> fec;
  std::uint32_t fec_rebuilt = 0;  // reported in ACKs: the source's true loss rate
  // Terms settled from the INIT (negotiate.h): our replies' frame size, our
  // window as told in every ACK, or a refusal that every ACK repeats.
  std::uint32_t reply_frame = 0;
  std::uint8_t window_log2 = 0;
  refusal refused = refusal::none;
  std::uint32_t refuse_value = 0;
};

dest_decoder::dest_decoder(dest_rx &rx, unsigned index, rte_ring *in, rte_ring *out, crypto_lane *lane)
    : lane_(lane), rx_(rx), o_(rx.o_), index_(index), in_(in), out_(out) {
  ack_delay_tsc_ = rte_get_tsc_hz() / 5000;  // 200 us
  repair_retry_tsc_ = rte_get_tsc_hz() / 20;  // ask for a missing page again after 50 ms
  active_.reserve(streams_.size());
}

dest_decoder::~dest_decoder() {
  for (auto &s : streams_)
    if (s)
      s->win.reset(free_mbuf);
}

void dest_decoder::add_decoded(decoder_stats &t) const {
  for (const auto &s : streams_) {
    if (!s)
      continue;
    const decoder_stats &d = s->dec.stats();
    t.frames += d.frames;
    t.frame_bytes += d.frame_bytes;
    t.batches += d.batches;
    t.marks += d.marks;
    for (std::size_t k = 0; k < kRungCount; ++k)
      t.rung_pages[k] += d.rung_pages[k];
    for (std::size_t k = 0; k < kErrorCount; ++k)
      t.errors[k] += d.errors[k];
  }
}

// Sealed frames: a stream start (seq 0 with an epoch new to its stream id)
// is a restart of the source only if that epoch was never seen on this
// stream id and the seal's clock is within --replay-window-s of ours: an INIT
// replayed from an old capture must not throw away the stream in progress.
bool dest_decoder::replayed_start(std::uint16_t stream, std::uint32_t epoch, std::uint32_t sent_s) {
  auto &past = past_epochs_[stream];
  for (std::uint32_t e : past)
    if (e == epoch)
      return true;
  if (o_.replay_window_s != 0) {
    const auto now_s = static_cast<std::uint32_t>(std::time(nullptr));
    const auto age = static_cast<std::int32_t>(now_s - sent_s);
    if (age > static_cast<std::int32_t>(o_.replay_window_s) || -age > static_cast<std::int32_t>(o_.replay_window_s)) {
      if (!stale_reported_) {
        stale_reported_ = true;
        std::fprintf(stderr, "hde-gateway: stream %u: a stream start sealed %d s %s our clock ignored (a replay, or "
                     "clocks more than --replay-window-s %u s apart)\n", stream, age < 0 ? -age : age,
                     age < 0 ? "ahead of" : "behind", o_.replay_window_s);
      }
      return true;
    }
  }
  std::copy(past.begin(), past.end() - 1, past.begin() + 1);
  past[0] = epoch;
  return false;
}

// A DATA frame whose envelope, header and CRC dest_rx has checked (and,
// sealed, that authenticated: sent_s is its seal's clock).
void dest_decoder::on_frame(rte_mbuf *m, std::uint64_t now, std::uint32_t sent_s) {
  const std::byte *p = rte_pktmbuf_mtod_offset(m, const std::byte *, kL2L4);
  const auto h = wire::load<wire::frame_header>(p);
  auto &sp = streams_[h.stream];
  const bool apply = !sealed_.load(std::memory_order_relaxed);
  if (!apply)
    ++st_.after_seal;
  if (!sp || sp->epoch != h.epoch) {
    if (!apply) {  // sealed: no new stream; the images are being written
      rte_pktmbuf_free(m);
      return;
    }
    // A stream (re)starts only at seq 0, with its INIT: anything else with an
    // unknown epoch is a stale frame of an old sender, not a reason to drop
    // the state of the current one.
    if (h.seq != 0) {
      ++st_.stale_epoch;
      rte_pktmbuf_free(m);
      return;
    }
    if (lane_ != nullptr && replayed_start(h.stream, h.epoch, sent_s)) {
      ++st_.stale_epoch;
      ++st_.replayed;
      rte_pktmbuf_free(m);
      return;
    }
    if (sp) {  // the source restarted: its old stream is gone
      ++st_.new_epoch;
      sp->win.reset(free_mbuf);
    } else {
      active_.push_back(h.stream);
    }
    sp = std::make_unique<stream>(*this, h.epoch, o_.window);  // once per stream start
    sp->id = h.stream;
    settle(*sp, m);
  }
  stream &s = *sp;
  if (s.refused != refusal::none) {  // every frame of a refused stream is answered with the refusal
    s.ack_due = true;
    rte_pktmbuf_free(m);
    return;
  }
  if (low_mbufs_ && h.seq != s.win.next_missing()) {
    // Holding it could use up the pool and leave no mbuf for the frame that
    // fills the gap: drop it, and tell the source (SACK) what is missing.
    ++st_.low_mbufs;
    s.ack_due = true;
    rte_pktmbuf_free(m);
    return;
  }
  switch (s.win.offer(h.seq, m)) {
  case recv_window<rte_mbuf *>::verdict::stored:
    if (lane_ != nullptr)
      rx_.learn_peer(m);  // authentic and new: the source is there
    if (s.fec && !low_mbufs_)
      s.fec->on_data(h.seq, m);  // a reference, for rebuilding its group's lost frames
    break;
  case recv_window<rte_mbuf *>::verdict::duplicate:
    ++st_.duplicates;
    if (lane_ != nullptr)
      ++st_.replayed;  // authentic, already delivered: never applied twice
    ++s.dup_count;  // the source learns whether it resent this frame needlessly
    s.last_dup_seq = h.seq;
    rte_pktmbuf_free(m);
    send_ack(s);  // now: each duplicate is reported by its own ACK (DSACK)
    return;
  case recv_window<rte_mbuf *>::verdict::too_far:
    ++st_.too_far;
    if (lane_ != nullptr)
      ++st_.replayed;
    s.ack_due = true;
    rte_pktmbuf_free(m);
    return;
  }
  if (h.seq + 1 != s.win.next_missing())
    s.ack_due = true;  // out of order (a gap, or one filled): tell the source now
  s.drain_due = true;   // decoded after this poll's ACKs are out (poll)
  if (s.unacked++ == 0)
    s.first_unacked_tsc = now;
}

// The terms of a new stream, from the INIT of its frame 0 (negotiate.h).
void dest_decoder::settle(stream &s, rte_mbuf *m) {
  const std::byte *p = rte_pktmbuf_mtod_offset(m, const std::byte *, kL2L4);
  const std::uint32_t ours = static_cast<std::uint32_t>(wire::frame_size_for_mtu(o_.mtu));
  s.reply_frame = ours;
  s.window_log2 = log2_window(o_.window);
  wire::init_body in;
  if (!peek_init(p, wire::kFrameHeaderSize + wire::load<wire::frame_header>(p).payload_len, in))
    return;  // not opened by an INIT: the decoder refuses what follows
  const stream_terms t = negotiate(in, ours, o_.window, decoder_config{}.max_slots);
  s.reply_frame = t.reply_frame;
  if (t.why != refusal::none) {
    s.refused = t.why;
    s.refuse_value = t.ours;
    refused_.store(true, std::memory_order_release);
    std::fprintf(stderr, "hde-gateway: stream %u: %s\n", s.id, refusal_text(t.why, t.ours, t.theirs, false).c_str());
    return;
  }
  if (o_.quiet)
    return;
  if (t.frame_smaller)
    std::printf("hde-gateway: stream %u: the source's frames are up to %u bytes (MTU %u), ours %u: taken, our "
                "replies cut to fit\n", s.id, in.max_frame, in.max_frame + 28, ours);
  if (t.window_capped)
    std::printf("hde-gateway: stream %u: the source may hold %u frames in flight, our reorder window is %u: it "
                "keeps to ours\n", s.id, in.window, o_.window);
}

// Decode the stream's in-order frames. After the ACKs: the source hears of
// a frame as soon as it is here, not once it has been decoded.
void dest_decoder::drain(stream &s) {
  s.drain_due = false;
  const bool apply = !sealed_.load(std::memory_order_relaxed);
  s.win.drain([&](rte_mbuf *f) {
    if (!apply) {  // sealed: acknowledged, not applied
      rte_pktmbuf_free(f);
      return;
    }
    const std::byte *fp = rte_pktmbuf_mtod_offset(f, const std::byte *, kL2L4);
    const auto len = wire::load<wire::frame_header>(fp).payload_len + wire::kFrameHeaderSize;
    if (o_.fault_forget_every != 0 && ++s.frames_decoded % o_.fault_forget_every == 0 &&
        s.dec.mirror_slots() != 0) {
      // Fault injection (tests): lose a baseline, as a receiver bug would.
      s.dec.forget_slot(static_cast<std::uint32_t>((s.frames_decoded * 0x9E3779B97F4A7C15ULL >> 32) %
                                                   s.dec.mirror_slots()));
      ++st_.faults_injected;
    }
    const std::uint64_t broken = s.dec.stats().broken_frames;
    s.dec.on_frame({fp, len});
    if (s.dec.stats().broken_frames != broken) {
      ++st_.decode_errors;  // the rest of the frame's pages are unknown: cannot be asked for
      failed_.store(true, std::memory_order_release);
      std::fprintf(stderr, "hde-gateway: stream %u: frame %llu cannot be decoded: the image would be "
                   "incomplete\n", s.id, static_cast<unsigned long long>(wire::load<wire::frame_header>(fp).seq));
    }
    ++st_.decoded;
    rte_pktmbuf_free(f);
  });
  if (s.fec)
    s.fec->release_below(s.win.next_expected());
}

// A FEC frame (checked like a DATA frame by dest_rx): when its group has now
// lost no more frames than parity arrived, the lost frames are rebuilt and
// take the DATA path, as if they had arrived.
void dest_decoder::on_parity(rte_mbuf *m, std::uint64_t now) {
  const auto h = wire::load<wire::frame_header>(rte_pktmbuf_mtod_offset(m, const std::byte *, kL2L4));
  auto &sp = streams_[h.stream];
  if (!sp || sp->epoch != h.epoch || sealed_.load(std::memory_order_relaxed)) {
    ++st_.fec_too_late;  // for no stream we know (its INIT is not here yet), or after the end
    rte_pktmbuf_free(m);
    return;
  }
  stream &s = *sp;
  if (!s.fec) {
    s.fec = std::make_unique<fec_receiver>();
    if (!s.fec->init(rx_.pool_, wire::frame_size_for_mtu(o_.mtu))) {
      std::fprintf(stderr, "hde-gateway: stream %u: cannot set up FEC decoding (memory)\n", s.id);
      s.fec.reset();
    }
  }
  ++st_.fec_parity;
  if (!s.fec) {
    rte_pktmbuf_free(m);
    return;
  }
  const fec_receiver_stats before = s.fec->stats();
  s.fec->on_parity(
      m, h, [&s](std::uint64_t seq) { return s.win.has(seq); },
      [&](rte_mbuf *f) {
        ++s.fec_rebuilt;
        on_frame(f, now);
      });
  const fec_receiver_stats &after = s.fec->stats();
  st_.fec_rebuilt += after.rebuilt - before.rebuilt;
  st_.fec_unrecoverable += after.unrecoverable - before.unrecoverable;
  st_.fec_too_late += after.too_late - before.too_late;
  st_.fec_bad += after.bad - before.bad;
}

// Seal the frame (--key-file), address it to the source and queue it for
// dest_rx to transmit.
bool dest_decoder::reply(rte_mbuf *m, std::size_t len) {
  if (lane_ != nullptr) {
    m->data_len = static_cast<std::uint16_t>(kL2L4 + len);
    m->pkt_len = m->data_len;
    rte_mbuf *out;
    if (lane_->seal(&m, 1, &out, wire::kSealFromDest) == 0)
      return false;  // freed; sent again later like a lost reply
    m = out;
    len += wire::kSealOverhead;
  }
  write_envelope(m, rx_.reply_to(), static_cast<std::uint16_t>(len));
  if (rte_ring_sp_enqueue(out_, m) != 0) {
    ++st_.reply_full;
    rte_pktmbuf_free(m);
    return false;
  }
  return true;
}

void dest_decoder::send_ack(stream &s) {
  rte_mbuf *m = rte_pktmbuf_alloc(rx_.pool_);
  if (m == nullptr) {
    ++st_.ack_alloc_fail;
    return;
  }
  ack_info a;
  const std::size_t seal = lane_ != nullptr ? wire::kSealOverhead : 0;
  s.win.fill_ack(a, ack_blocks_for(s.reply_frame - seal, wire::kFrameHeaderSize));
  a.window_log2 = s.window_log2;
  a.refuse = static_cast<std::uint8_t>(s.refused);
  a.refuse_value = s.refuse_value;
  a.dup_count = s.dup_count;
  a.last_dup_seq = s.last_dup_seq;
  a.fec_rebuilt = s.fec_rebuilt;
  auto *p = rte_pktmbuf_mtod_offset(m, std::byte *, kL2L4);
  const std::size_t plen = write_ack_payload(a, p + wire::kFrameHeaderSize);
  wire::frame_header h = reply_header(wire::frame_type::ack, s.id, s.epoch);
  h.payload_len = static_cast<std::uint16_t>(plen);
  if (rx_.egress_ && rx_.egress_->failed())
    h.flags |= wire::kFrameFlagAbort;  // the source gateway fails its QEMU's migration
  h.seq = a.cum;
  // Pages still missing on this stream: the source is not done until 0.
  h.ack = static_cast<std::uint32_t>(std::min<std::size_t>(s.missing.size(), 0xFFFFFFFFu));
  std::memcpy(p, &h, sizeof h);
  const std::size_t len = wire::kFrameHeaderSize + plen;
  wire::seal_frame({p, len});
  if (!reply(m, len))
    return;  // retried at the next poll: the stream stays due
  ++st_.acks_sent;
  s.reported_missing = s.missing.size();
  s.unacked = 0;
  s.ack_due = false;
}

// REPAIR frames: the stream's missing pages not asked for in the last
// repair_retry_tsc_, up to 8 frames per call.
void dest_decoder::send_repairs(stream &s, std::uint64_t now) {
  const std::size_t seal = lane_ != nullptr ? wire::kSealOverhead : 0;
  const std::size_t per_frame = (s.reply_frame - seal - wire::kFrameHeaderSize) / sizeof(wire::repair_entry);
  auto it = s.missing.begin();
  for (int frames = 0; frames < 8 && it != s.missing.end(); ++frames) {
    rte_mbuf *m = nullptr;
    std::byte *p = nullptr;
    std::size_t n = 0;
    for (; it != s.missing.end() && n < per_frame; ++it) {
      if (it->second != 0 && now - it->second < repair_retry_tsc_)
        continue;
      if (m == nullptr) {
        if ((m = rte_pktmbuf_alloc(rx_.pool_)) == nullptr) {
          ++st_.ack_alloc_fail;
          return;
        }
        p = rte_pktmbuf_mtod_offset(m, std::byte *, kL2L4);
      }
      const wire::repair_entry e{it->first.second, it->first.first, 0};
      std::memcpy(p + wire::kFrameHeaderSize + n * sizeof e, &e, sizeof e);
      it->second = now;
      ++n;
    }
    if (m == nullptr)
      return;
    wire::frame_header h = reply_header(wire::frame_type::repair, s.id, s.epoch);
    h.record_count = static_cast<std::uint16_t>(n);
    h.payload_len = static_cast<std::uint16_t>(n * sizeof(wire::repair_entry));
    std::memcpy(p, &h, sizeof h);
    const std::size_t len = wire::kFrameHeaderSize + h.payload_len;
    wire::seal_frame({p, len});
    if (!reply(m, len))
      return;  // asked again after the retry interval
    ++st_.repair_frames;
    st_.repair_requests += n;
  }
}

// Tell the source why its frames are dropped here (never sealed: the source
// may hold no key or another one). Advisory: it only words its message.
void dest_decoder::send_notice(wire::notice_reason why, std::uint32_t epoch, std::uint64_t now) {
  ++st_.not_opened;
  if (now < next_notice_)
    return;
  next_notice_ = now + rte_get_tsc_hz() / 10;
  rte_mbuf *m = rte_pktmbuf_alloc(rx_.pool_);
  if (m == nullptr) {
    ++st_.ack_alloc_fail;
    return;
  }
  wire::frame_header h = reply_header(wire::frame_type::notice, 0, epoch);
  h.ack = static_cast<std::uint32_t>(why);
  auto *p = rte_pktmbuf_mtod_offset(m, std::byte *, kL2L4);
  std::memcpy(p, &h, sizeof h);
  wire::seal_frame({p, wire::kFrameHeaderSize});
  write_envelope(m, rx_.reply_to(), wire::kFrameHeaderSize);
  if (rte_ring_sp_enqueue(out_, m) != 0) {
    ++st_.reply_full;
    rte_pktmbuf_free(m);
    return;
  }
  ++st_.notices;
}

unsigned dest_decoder::poll(std::uint64_t now) {
  // Between polls no page is being written: the place to answer the seal.
  if (!sealed_.load(std::memory_order_relaxed) && rx_.seal_.load(std::memory_order_acquire))
    sealed_.store(true, std::memory_order_release);
  rte_mbuf *m[kBurst];
  std::uint32_t sent_s[kBurst] = {};
  unsigned n = rte_ring_sc_dequeue_burst(in_, reinterpret_cast<void **>(m), kBurst, nullptr);
  if (n != 0) {
    // Authenticate first: nothing of a frame that fails is looked at again.
    bool ok[kBurst];
    if (lane_ != nullptr) {
      const std::uint64_t unknown = lane_->stats().unknown_key;
      lane_->open(m, n, wire::kSealFromSource, ok, sent_s);
      const bool unknown_key = lane_->stats().unknown_key != unknown;
      for (unsigned i = 0; i < n; ++i)
        if (!ok[i]) {
          const auto h = wire::load<wire::frame_header>(rte_pktmbuf_mtod_offset(m[i], const std::byte *, kL2L4));
          send_notice((h.flags & wire::kFrameFlagSealed) == 0 ? wire::notice_reason::need_sealed
                      : unknown_key                         ? wire::notice_reason::unknown_key
                                                            : wire::notice_reason::auth_fail,
                      h.epoch, now);
        }
    } else {
      for (unsigned i = 0; i < n; ++i) {
        const auto h = wire::load<wire::frame_header>(rte_pktmbuf_mtod_offset(m[i], const std::byte *, kL2L4));
        ok[i] = (h.flags & wire::kFrameFlagSealed) == 0;
        if (!ok[i]) {
          ++st_.sealed_no_key;
          send_notice(wire::notice_reason::cannot_open, h.epoch, now);
        }
      }
    }
    unsigned k = 0;
    for (unsigned i = 0; i < n; ++i) {
      if (ok[i]) {
        sent_s[k] = sent_s[i];
        m[k++] = m[i];
      } else {
        rte_pktmbuf_free(m[i]);
      }
    }
    if (lane_ != nullptr)
      st_.opened += k;
    st_.accepted += k;
    n = k;
  }
  if (n != 0)
    low_mbufs_ = rte_mempool_avail_count(rx_.pool_) < kMbufReserve;
  for (unsigned i = 0; i < n; ++i) {
    if (i + 1 < n)
      rte_prefetch0(rte_pktmbuf_mtod_offset(m[i + 1], const void *, kL2L4));
    if (wire::load<wire::frame_header>(rte_pktmbuf_mtod_offset(m[i], const std::byte *, kL2L4)).type ==
        static_cast<std::uint8_t>(wire::frame_type::fec))
      on_parity(m[i], now);
    else
      on_frame(m[i], now, sent_s[i]);
  }
  // ACKs first, then decoding: a slow decode never delays what the source
  // learns (its loss detection times every frame from its ACK).
  for (std::uint16_t id : active_) {
    stream &s = *streams_[id];
    if (s.ack_due || s.unacked >= kAckEvery || (s.unacked > 0 && now - s.first_unacked_tsc >= ack_delay_tsc_))
      send_ack(s);
  }
  for (std::uint16_t id : active_) {
    stream &s = *streams_[id];
    if (!s.drain_due)
      continue;
    drain(s);
    // Decoding found pages lost, or repaired them: the source must hear the
    // new count (it is not done while its last ACK says pages are missing).
    if (s.missing.size() != s.reported_missing)
      send_ack(s);
  }
  std::uint32_t done = 0, want = 0;
  for (std::uint16_t id : active_) {
    stream &s = *streams_[id];
    if (!s.missing.empty())
      send_repairs(s, now);
    want = std::max(want, s.dec.peer_streams());
    done += s.done && s.missing.empty() && s.id < s.dec.peer_streams() ? 1 : 0;
  }
  // Stored every poll, with release: whoever reads them (acquire) also sees
  // every page decoded before, even when the counts did not change.
  want_.store(want, std::memory_order_release);
  done_.store(done, std::memory_order_release);
  return n;
}

// --- dest_rx ------------------------------------------------------------------

unsigned dest_rx::mbufs_needed(const options &o) {
  // Each decoder's dispatch and reply rings full, plus frames held out of
  // order in reorder windows. Each stream may hold up to a window of them,
  // and the destination does not know how many streams will come: two
  // windows' worth, and below kMbufReserve free mbufs decoders stop holding
  // out-of-order frames (they are resent), so the pool cannot run dry.
  // FEC holds references to recent frames and parity per stream: room for
  // two streams' worth (beyond that, low_mbufs_ stops FEC holding first).
  return o.decoders * (kDispatchRing + kReplyRing) + o.window * 2 + kMbufReserve +
         2 * (fec_receiver::kHold + fec_receiver::kGroups * kFecMaxM);
}

dest_rx::dest_rx(const options &o, std::uint16_t port, std::uint16_t nrxq, rte_mempool *pool, frame_crypto *crypto,
                 unsigned first_lane)
    : o_(o), port_(port), nrxq_(nrxq), pool_(pool), sink_(o.max_vm_mb << 20) {
  reply_.src_mac = port_mac(port);
  reply_.src_ip = o.dst_ip;
  reply_.src_port = o.udp_port;
  reply_.dst_ip = o.src_ip;
  reply_.dst_port = o.udp_port;  // the MAC is the next hop's, from ARP (address_replies)
  sealed_rx_ = crypto != nullptr;
  impair_.configure(o.impair, 1000);
  if (!o.qemu_connect.empty())
    egress_ = std::make_unique<qemu_egress>(o, sink_, [this] {
      std::uint32_t n = 0;
      for (const auto &d : dec_)
        n = std::max(n, d->peer_streams());
      return n;
    });
  for (unsigned i = 0; i < o.decoders; ++i) {
    const std::string a = "hde_dec_in" + std::to_string(i), b = "hde_dec_out" + std::to_string(i);
    rte_ring *in = rte_ring_create(a.c_str(), kDispatchRing, static_cast<int>(rte_socket_id()),
                                   RING_F_SP_ENQ | RING_F_SC_DEQ);
    rte_ring *out = rte_ring_create(b.c_str(), kReplyRing, static_cast<int>(rte_socket_id()),
                                    RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (in != nullptr)
      to_dec_.push_back(in);
    if (out != nullptr)
      from_dec_.push_back(out);
    if (in == nullptr || out == nullptr) {
      error_ = "cannot create the decoder rings: " + std::string(rte_strerror(rte_errno));
      return;
    }
    dec_.push_back(std::make_unique<dest_decoder>(*this, i, in, out,
                                                  crypto != nullptr ? &crypto->lane(first_lane + i) : nullptr));
  }
}

dest_rx::~dest_rx() {
  if (egress_)
    egress_->stop();
  impair_.reset();
  rte_mbuf *m[kBurst];
  for (auto *r : to_dec_) {
    for (unsigned n; (n = rte_ring_dequeue_burst(r, reinterpret_cast<void **>(m), kBurst, nullptr)) != 0;)
      rte_pktmbuf_free_bulk(m, n);
    rte_ring_free(r);
  }
  for (auto *r : from_dec_) {
    for (unsigned n; (n = rte_ring_dequeue_burst(r, reinterpret_cast<void **>(m), kBurst, nullptr)) != 0;)
      rte_pktmbuf_free_bulk(m, n);
    rte_ring_free(r);
  }
  dec_.clear();
}

bool dest_rx::failed() const {
  if (failed_.load(std::memory_order_acquire))
    return true;
  for (const auto &d : dec_)
    if (d->failed())
      return true;
  return false;
}

bool dest_rx::refused() const {
  for (const auto &d : dec_)
    if (d->refused())
      return true;
  return false;
}

dest_stats dest_rx::stats() const {
  dest_stats t{};
  add_stats(t, st_);
  for (const auto &d : dec_)
    add_stats(t, d->stats());
  return t;
}

decoder_stats dest_rx::decoded() const {
  decoder_stats t{};
  for (const auto &d : dec_)
    d->add_decoded(t);
  return t;
}

void dest_rx::on_frame(rte_mbuf *m) {
  if (arp_ != nullptr && arp_->take(m))
    return;  // ARP: answered or learnt from (arp_port.h)
  ++st_.frames;
  rx_view v;
  rx_drop why;
  if (!parse_envelope(m, o_.udp_port, o_.check_peer ? o_.src_ip : 0, v, why)) {
    ++st_.drops[static_cast<std::size_t>(why)];
    rte_pktmbuf_free(m);
    return;
  }
  wire::frame_header h;
  if (error e = wire::parse_frame_header({v.payload, v.len}, h); e != error::ok) {
    ++st_.header_errors[static_cast<std::size_t>(e)];
    rte_pktmbuf_free(m);
    return;
  }
  if (h.type != static_cast<std::uint8_t>(wire::frame_type::data) &&
      h.type != static_cast<std::uint8_t>(wire::frame_type::fec)) {
    ++st_.header_errors[static_cast<std::size_t>(error::bad_frame_type)];
    rte_pktmbuf_free(m);
    return;
  }
  if (h.stream >= 256) {
    ++st_.bad_stream;
    rte_pktmbuf_free(m);
    return;
  }
  if (!have_peer_) {  // answer where the data comes from (before any decoder sees a frame)
    // Its IP and port; its MAC never (a frame is no proof of who sent it):
    // ARP or --peer-mac says where replies go (address_replies). Sealed
    // frames prove it only once opened: the decoders learn it then.
    if (!sealed_rx_)
      peer_.store(kPeerKnown | std::uint64_t{v.src_ip} << 16 | v.src_port, std::memory_order_release);
    have_peer_ = true;
  }
  if (rte_ring_sp_enqueue(to_dec_[h.stream % to_dec_.size()], m) != 0) {
    ++st_.dispatch_full;  // the decoder is behind: the source sends it again
    rte_pktmbuf_free(m);
    return;
  }
  ++st_.data_frames;
}

void dest_rx::check_complete() {
  if (!seal_.load(std::memory_order_relaxed)) {
    std::uint32_t want = 0, done = 0;
    for (const auto &d : dec_) {
      want = std::max(want, d->peer_streams());
      done += d->streams_done();
    }
    if (want == 0 || done < want)
      return;
    // Every stream is done: ask the decoders to stop applying pages (a late
    // second answer to a repeated REPAIR, a restarted source), and write the
    // images only once they all have, at a later poll (a decoder may share
    // this lcore: never wait for it here).
    sealed_streams_ = want;
    seal_.store(true, std::memory_order_release);
    return;
  }
  for (const auto &d : dec_)
    if (!d->sealed())  // acquire: every page it applied is in the images
      return;
  const std::uint32_t want = sealed_streams_;
  std::string err;
  if (!o_.sink.empty() && !sink_.write_all(o_.sink, err)) {
    std::fprintf(stderr, "hde-gateway: %s\n", err.c_str());
    failed_.store(true, std::memory_order_release);
  }
  complete_.store(true, std::memory_order_release);
  std::printf("hde-gateway: migration complete: %u stream(s) delivered their last round\n", want);
  std::fflush(stdout);
}

// Replies go to the next hop's MAC (ARP or --peer-mac), written as they
// leave; until it is known they are dropped (ACKs are sent again, REPAIRs
// asked again), never broadcast.
bool dest_rx::address_replies(rte_mbuf **m, unsigned n) {
  if (arp_ == nullptr)
    return true;
  arp::mac mac;
  if (!arp_->next_hop().load(mac)) {
    rte_pktmbuf_free_bulk(m, n);
    unaddressed_ += n;
    return false;
  }
  for (unsigned i = 0; i < n; ++i)
    std::memcpy(rte_pktmbuf_mtod(m[i], rte_ether_hdr *)->dst_addr.addr_bytes, mac.data(), 6);
  return true;
}

endpoint_pair dest_rx::reply_to() const {
  endpoint_pair e = reply_;
  const std::uint64_t p = peer_.load(std::memory_order_acquire);
  if ((p & kPeerKnown) != 0) {
    e.dst_ip = static_cast<std::uint32_t>(p >> 16);
    e.dst_port = static_cast<std::uint16_t>(p);
  }
  return e;
}

// A decoder, for a sealed frame it authenticated and stored as new: its
// envelope (checked by parse_envelope, fixed 20-byte IPv4 header) says where
// the source is now. Written only when it changed (a source that moved: NAT
// rebinding, a new address after a restart).
void dest_rx::learn_peer(const rte_mbuf *m) {
  const auto *ip = reinterpret_cast<const rte_ipv4_hdr *>(rte_pktmbuf_mtod(m, const rte_ether_hdr *) + 1);
  const auto *udp = reinterpret_cast<const rte_udp_hdr *>(ip + 1);
  const std::uint64_t p = kPeerKnown | std::uint64_t{rte_be_to_cpu_32(ip->src_addr)} << 16 |
                          rte_be_to_cpu_16(udp->src_port);
  if (peer_.load(std::memory_order_relaxed) != p)
    peer_.store(p, std::memory_order_release);
}

unsigned dest_rx::poll(std::uint64_t) {
  unsigned work = 0;
  if (arp_ != nullptr) {  // ARP learns the peer's address as it becomes known (first one only: arp_port)
    const std::uint64_t p = peer_.load(std::memory_order_acquire);
    if (p != peer_told_) {
      peer_told_ = p;
      arp_->peer_seen(static_cast<std::uint32_t>(p >> 16));
    }
  }
  rte_mbuf *m[kBurst];
  for (std::uint16_t q = 0; q < nrxq_; ++q) {
    const unsigned n = rte_eth_rx_burst(port_, q, m, kBurst);
    for (unsigned i = 0; i < n; ++i)
      on_frame(m[i]);
    work += n;
  }
  // The decoders' ACK and REPAIR frames, on TX queue 0. What the port does
  // not take is dropped: ACKs are sent again, REPAIRs asked again.
  for (rte_ring *r : from_dec_) {
    unsigned n = rte_ring_sc_dequeue_burst(r, reinterpret_cast<void **>(m), kBurst, nullptr);
    if (n == 0)
      continue;
    work += n;
    if (!address_replies(m, n))
      continue;
    rte_mbuf *out[2 * kBurst];
    rte_mbuf **tx = m;
    if (impair_.on()) {  // tests (--impair): drop, duplicate or reorder replies
      unsigned k = 0;
      auto emit = [&](rte_mbuf *x) { out[k++] = x; };
      for (unsigned i = 0; i < n; ++i)
        impair_.pass(m[i], emit);
      impair_.release(emit);
      tx = out;
      n = k;
    }
    const unsigned sent = rte_eth_tx_burst(port_, 0, tx, static_cast<std::uint16_t>(n));
    if (sent < n)
      rte_pktmbuf_free_bulk(tx + sent, n - sent);
  }
  if (!complete() && have_peer_)
    check_complete();
  return work;
}

}  // namespace hde::dp
