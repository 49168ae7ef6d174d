// dest.cpp — receive, reorder, decode, acknowledge.
#include "dest.h"

#include <cstdio>
#include <map>
#include <rte_cycles.h>

#include "wire/format.h"

namespace hde::dp {

namespace {
constexpr unsigned kBurst = 32;
constexpr std::uint32_t kAckEvery = 16;  // frames between acks of a busy stream

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
}  // namespace

// One source stream: its decoder, reorder window, ack state, and the pages
// it could not rebuild.
struct dest_rx::stream : page_sink {
  stream(dest_rx &d, std::uint32_t epoch_, std::uint32_t window)
      : owner(d), epoch(epoch_), dec(decoder_config{}, *this), win(window) {}
  error put_page(page_key k, const std::byte *p) override {
    if (!missing.empty() && missing.erase({k.vm, k.gfn}) != 0)
      ++owner.st_.pages_repaired;
    return owner.sink_.put_page(k, p);
  }
  error put_zero(std::uint32_t vm, std::uint64_t gfn, std::uint32_t n) override {
    if (!missing.empty()) {
      auto a = missing.lower_bound({vm, gfn}), b = missing.lower_bound({vm, gfn + n});
      owner.st_.pages_repaired += static_cast<std::uint64_t>(std::distance(a, b));
      missing.erase(a, b);
    }
    return owner.sink_.put_zero(vm, gfn, n);
  }
  // Never guessed: asked for again (send_repairs) until a record brings it.
  void on_lost(page_key k, error) override {
    ++owner.st_.pages_lost;
    missing.emplace(std::make_pair(k.vm, k.gfn), 0);
  }
  void on_mark(std::uint32_t vm, std::uint32_t round, std::uint64_t pages, bool last) override {
    if (!owner.o_.quiet)
      std::printf("hde-gateway: stream %u: vm %u round %u complete (%llu pages)%s\n", id, vm, round,
                  static_cast<unsigned long long>(pages), last ? ", last round" : "");
    if (last)
      done = true;
  }

  dest_rx &owner;
  std::uint16_t id = 0;
  std::uint32_t epoch;
  decoder dec;
  recv_window<rte_mbuf *> win;
  std::uint32_t unacked = 0;  // frames since the last ack
  bool ack_due = false;       // a duplicate or gap: ack at once
  std::uint64_t first_unacked_tsc = 0;
  bool done = false;
  // (vm, gfn) -> when last asked for (0: not yet). The failure path only:
  // allocation here is fine.
  std::map<std::pair<std::uint32_t, std::uint64_t>, std::uint64_t> missing;
  std::uint64_t frames_decoded = 0;
};

dest_rx::dest_rx(const options &o, std::uint16_t port, std::uint16_t nrxq, rte_mempool *pool)
    : o_(o), port_(port), nrxq_(nrxq), pool_(pool), sink_(o.max_vm_mb << 20) {
  ack_delay_tsc_ = rte_get_tsc_hz() / 5000;  // 200 us
  repair_retry_tsc_ = rte_get_tsc_hz() / 20;  // ask for a missing page again after 50 ms
  rte_eth_macaddr_get(port, &reply_.src_mac);
  reply_.src_ip = o.dst_ip;
  reply_.src_port = o.udp_port;
  reply_.dst_ip = o.src_ip;
  reply_.dst_port = o.udp_port;
  std::memset(&reply_.dst_mac, 0xff, sizeof reply_.dst_mac);
}

dest_rx::~dest_rx() {
  for (auto &s : streams_)
    if (s)
      s->win.reset([](rte_mbuf *m) { rte_pktmbuf_free(m); });
}

decoder_stats dest_rx::decoded() const {
  decoder_stats t{};
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
  return t;
}

void dest_rx::on_frame(rte_mbuf *m, std::uint64_t now) {
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
  if (h.type != static_cast<std::uint8_t>(wire::frame_type::data)) {
    ++st_.header_errors[static_cast<std::size_t>(error::bad_frame_type)];
    rte_pktmbuf_free(m);
    return;
  }
  ++st_.data_frames;
  if (!have_peer_) {  // answer where the data comes from
    rte_ether_addr_copy(&v.src_mac, &reply_.dst_mac);
    reply_.dst_ip = v.src_ip;
    reply_.dst_port = v.src_port;
    have_peer_ = true;
  }
  if (h.stream >= streams_.size()) {
    ++st_.bad_stream;
    rte_pktmbuf_free(m);
    return;
  }
  auto &sp = streams_[h.stream];
  if (!sp || sp->epoch != h.epoch) {
    // A stream (re)starts only at seq 0, with its INIT: anything else with an
    // unknown epoch is a stale frame of an old sender, not a reason to drop
    // the state of the current one.
    if (h.seq != 0) {
      ++st_.stale_epoch;
      rte_pktmbuf_free(m);
      return;
    }
    if (sp) {  // the source restarted: its old stream is gone
      ++st_.new_epoch;
      sp->win.reset([](rte_mbuf *f) { rte_pktmbuf_free(f); });
    }
    sp = std::make_unique<stream>(*this, h.epoch, o_.window);  // once per stream start
    sp->id = h.stream;
  }
  stream &s = *sp;
  switch (s.win.offer(h.seq, m)) {
  case recv_window<rte_mbuf *>::verdict::stored:
    break;
  case recv_window<rte_mbuf *>::verdict::duplicate:
    ++st_.duplicates;
    s.ack_due = true;  // our ack was probably lost
    rte_pktmbuf_free(m);
    return;
  case recv_window<rte_mbuf *>::verdict::too_far:
    ++st_.too_far;
    s.ack_due = true;
    rte_pktmbuf_free(m);
    return;
  }
  if (h.seq != s.win.next_expected())
    s.ack_due = true;  // a gap: tell the source now
  s.win.drain([&](rte_mbuf *f) {
    const std::byte *p = rte_pktmbuf_mtod_offset(f, const std::byte *, kL2L4);
    const auto len = wire::load<wire::frame_header>(p).payload_len + wire::kFrameHeaderSize;
    if (o_.fault_forget_every != 0 && ++s.frames_decoded % o_.fault_forget_every == 0 &&
        s.dec.mirror_slots() != 0) {
      // Fault injection (tests): lose a baseline, as a receiver bug would.
      s.dec.forget_slot(static_cast<std::uint32_t>((s.frames_decoded * 0x9E3779B97F4A7C15ULL >> 32) %
                                                   s.dec.mirror_slots()));
      ++st_.faults_injected;
    }
    const std::uint64_t broken = s.dec.stats().broken_frames;
    s.dec.on_frame({p, len});
    if (s.dec.stats().broken_frames != broken) {
      ++st_.decode_errors;  // the rest of the frame's pages are unknown: cannot be asked for
      failed_ = true;
      std::fprintf(stderr, "hde-gateway: stream %u: frame %llu cannot be decoded: the image would be "
                   "incomplete\n", s.id, static_cast<unsigned long long>(wire::load<wire::frame_header>(p).seq));
    }
    ++st_.decoded;
    rte_pktmbuf_free(f);
  });
  if (s.unacked++ == 0)
    s.first_unacked_tsc = now;
}

void dest_rx::send_ack(std::uint16_t id, stream &s) {
  rte_mbuf *m = rte_pktmbuf_alloc(pool_);
  if (m == nullptr) {
    ++st_.ack_alloc_fail;
    return;
  }
  const sack_info a = s.win.sack();
  auto *p = rte_pktmbuf_mtod_offset(m, std::byte *, kL2L4);
  wire::frame_header h = reply_header(wire::frame_type::ack, id, s.epoch);
  h.payload_len = sizeof a.sack;
  h.seq = a.cum;
  // Pages still missing on this stream: the source is not done until 0.
  h.ack = static_cast<std::uint32_t>(std::min<std::size_t>(s.missing.size(), 0xFFFFFFFFu));
  std::memcpy(p, &h, sizeof h);
  std::memcpy(p + wire::kFrameHeaderSize, a.sack, sizeof a.sack);
  const std::size_t len = wire::kFrameHeaderSize + sizeof a.sack;
  wire::seal_frame({p, len});
  write_envelope(m, reply_, static_cast<std::uint16_t>(len));
  if (rte_eth_tx_burst(port_, 0, &m, 1) != 1) {
    rte_pktmbuf_free(m);
    return;  // retried at the next poll: the stream stays due
  }
  ++st_.acks_sent;
  s.unacked = 0;
  s.ack_due = false;
}

// REPAIR frames: the stream's missing pages not asked for in the last
// repair_retry_tsc_, up to 8 frames per call.
void dest_rx::send_repairs(std::uint16_t id, stream &s, std::uint64_t now) {
  const std::size_t per_frame = (wire::frame_size_for_mtu(o_.mtu) - wire::kFrameHeaderSize) / sizeof(wire::repair_entry);
  auto it = s.missing.begin();
  for (int frames = 0; frames < 8 && it != s.missing.end(); ++frames) {
    rte_mbuf *m = nullptr;
    std::byte *p = nullptr;
    std::size_t n = 0;
    for (; it != s.missing.end() && n < per_frame; ++it) {
      if (it->second != 0 && now - it->second < repair_retry_tsc_)
        continue;
      if (m == nullptr) {
        if ((m = rte_pktmbuf_alloc(pool_)) == nullptr) {
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
    wire::frame_header h = reply_header(wire::frame_type::repair, id, s.epoch);
    h.record_count = static_cast<std::uint16_t>(n);
    h.payload_len = static_cast<std::uint16_t>(n * sizeof(wire::repair_entry));
    std::memcpy(p, &h, sizeof h);
    const std::size_t len = wire::kFrameHeaderSize + h.payload_len;
    wire::seal_frame({p, len});
    write_envelope(m, reply_, static_cast<std::uint16_t>(len));
    if (rte_eth_tx_burst(port_, 0, &m, 1) != 1) {
      rte_pktmbuf_free(m);
      return;  // asked again after the retry interval
    }
    ++st_.repair_frames;
    st_.repair_requests += n;
  }
}

void dest_rx::check_complete() {
  std::uint32_t want = 0, done = 0;
  for (const auto &s : streams_) {
    if (!s)
      continue;
    want = std::max(want, s->dec.peer_streams());
    done += s->done && s->missing.empty() ? 1 : 0;
  }
  if (want == 0 || done < want)
    return;
  std::string err;
  if (!sink_.write_all(o_.sink, err)) {
    std::fprintf(stderr, "hde-gateway: %s\n", err.c_str());
    failed_ = true;
  }
  complete_ = true;
  std::printf("hde-gateway: migration complete: %u stream(s) delivered their last round\n", want);
  std::fflush(stdout);
}

unsigned dest_rx::poll(std::uint64_t now) {
  unsigned work = 0;
  rte_mbuf *m[kBurst];
  for (std::uint16_t q = 0; q < nrxq_; ++q) {
    const unsigned n = rte_eth_rx_burst(port_, q, m, kBurst);
    for (unsigned i = 0; i < n; ++i)
      on_frame(m[i], now);
    work += n;
  }
  bool any_done = false;
  for (std::size_t id = 0; id < streams_.size(); ++id) {
    auto &s = streams_[id];
    if (!s)
      continue;
    any_done |= s->done;
    if (s->ack_due || s->unacked >= kAckEvery ||
        (s->unacked > 0 && now - s->first_unacked_tsc >= ack_delay_tsc_))
      send_ack(static_cast<std::uint16_t>(id), *s);
    if (!s->missing.empty() && have_peer_)
      send_repairs(static_cast<std::uint16_t>(id), *s, now);
  }
  if (any_done && !complete_)
    check_complete();
  return work;
}

}  // namespace hde::dp
