// fec_stream.cpp — FEC groups on the source worker and the destination
// decoder (fec_stream.h).
#include "fec_stream.h"

#include <cstring>
#include <rte_malloc.h>

namespace hde::dp {

// --- sender ----------------------------------------------------------------------

bool fec_sender::init(rte_mempool *pool, std::size_t max_frame) {
  pool_ = pool;
  codec_ = fec_codec::create(kFecMaxK, kFecMaxM, max_frame);
  return codec_.has_value();
}

void fec_sender::drop() {
  for (unsigned i = 0; i < n_; ++i)
    rte_pktmbuf_free(frames_[i]);
  n_ = 0;
}

void fec_sender::configure(unsigned k, unsigned m) {
  if (k == k_ && m == m_)
    return;
  drop();
  k_ = k;
  m_ = m;
}

bool fec_sender::add(rte_mbuf *m, std::uint64_t seq, std::uint64_t now) {
  if (k_ == 0)
    return false;
  if (n_ != 0 && seq != first_seq_ + n_)
    drop();  // not consecutive (cannot happen: first transmissions go in order); start over
  if (n_ == 0) {
    first_seq_ = seq;
    opened_ = now;
  }
  rte_mbuf_refcnt_update(m, 1);  // the group's reference, until its parity is built
  frames_[n_++] = m;
  return n_ == k_;
}

unsigned fec_sender::build(const endpoint_pair &ep, std::uint16_t stream, std::uint32_t epoch, rte_mbuf **par) {
  if (n_ == 0 || !codec_)
    return 0;
  const std::byte *data[kFecMaxK];
  std::uint16_t lens[kFecMaxK];
  std::size_t longest = 0;
  for (unsigned j = 0; j < n_; ++j) {
    data[j] = rte_pktmbuf_mtod_offset(frames_[j], const std::byte *, kL2L4);
    lens[j] = static_cast<std::uint16_t>(frames_[j]->pkt_len - kL2L4);
    longest = std::max<std::size_t>(longest, lens[j]);
  }
  const std::size_t shard = fec_shard_len(longest);
  std::byte *out[kFecMaxM] = {};
  unsigned got = 0;
  // A short group (the stream went quiet) gets parity in proportion, at
  // least one frame: full parity on a group of one or two frames would
  // multiply the wire bytes of a slow stream, and pacing would slow the data
  // to make room for it.
  const unsigned m = n_ < k_ ? std::max(1u, (m_ * n_ + k_ - 1) / k_) : m_;
  for (; got < m; ++got) {
    par[got] = rte_pktmbuf_alloc(pool_);
    if (par[got] == nullptr || rte_pktmbuf_tailroom(par[got]) < kL2L4 + wire::kFrameHeaderSize + shard) {
      if (par[got] != nullptr)
        rte_pktmbuf_free(par[got]);
      ++st_.alloc_fail;
      break;
    }
    out[got] = rte_pktmbuf_mtod_offset(par[got], std::byte *, kL2L4 + wire::kFrameHeaderSize);
  }
  unsigned made = 0;
  if (got == m && codec_->encode(data, lens, n_, m, out, shard) == fec_error::ok) {
    for (unsigned i = 0; i < m; ++i) {
      wire::frame_header h{};
      h.magic = wire::kMagic;
      h.version = wire::kVersion;
      h.type = static_cast<std::uint8_t>(wire::frame_type::fec);
      h.stream = stream;
      h.epoch = epoch;
      h.payload_len = static_cast<std::uint16_t>(shard);
      h.seq = first_seq_;
      h.ack = fec_pack(n_, m, i);
      auto *p = rte_pktmbuf_mtod_offset(par[i], std::byte *, kL2L4);
      std::memcpy(p, &h, sizeof h);
      wire::seal_frame({p, wire::kFrameHeaderSize + shard});
      write_envelope(par[i], ep, static_cast<std::uint16_t>(wire::kFrameHeaderSize + shard));
    }
    made = m;
    ++st_.groups;
    if (n_ < k_)
      ++st_.short_groups;
    st_.parity_frames += m;
    st_.parity_bytes += m * (wire::kFrameHeaderSize + shard);
  } else {
    for (unsigned i = 0; i < got; ++i)
      rte_pktmbuf_free(par[i]);
  }
  drop();
  return made;
}

// --- receiver ----------------------------------------------------------------------

fec_receiver::~fec_receiver() {
  for (auto &h : hold_)
    if (h.m != nullptr)
      rte_pktmbuf_free(h.m);
  for (auto &g : groups_)
    finish(g);
  rte_free(scratch_mem_);
}

bool fec_receiver::init(rte_mempool *pool, std::size_t max_frame) {
  pool_ = pool;
  codec_ = fec_codec::create(kFecMaxK, kFecMaxM, max_frame);
  if (!codec_)
    return false;
  const std::size_t shard = codec_->max_shard_len();
  scratch_mem_ = static_cast<std::byte *>(rte_malloc("hde_fec_scratch", shard * kFecMaxK, 64));
  if (scratch_mem_ == nullptr) {
    codec_.reset();
    return false;
  }
  for (unsigned j = 0; j < kFecMaxK; ++j)
    scratch_[j] = scratch_mem_ + j * shard;
  return true;
}

void fec_receiver::on_data(std::uint64_t seq, rte_mbuf *m) {
  if (!codec_)
    return;  // no parity seen on this stream: hold nothing
  held_frame &h = hold_[seq % kHold];
  if (h.m != nullptr)
    rte_pktmbuf_free(h.m);
  rte_mbuf_refcnt_update(m, 1);
  h = {seq, m};
}

rte_mbuf *fec_receiver::held(std::uint64_t seq) const {
  const held_frame &h = hold_[seq % kHold];
  return h.m != nullptr && h.seq == seq ? h.m : nullptr;
}

void fec_receiver::finish(group &g) {
  for (unsigned i = 0; i < kFecMaxM; ++i)
    if (g.parity[i] != nullptr) {
      rte_pktmbuf_free(g.parity[i]);
      g.parity[i] = nullptr;
    }
  g.done = true;
  g.nparity = 0;
}

fec_receiver::group *fec_receiver::find(std::uint64_t first, unsigned k, unsigned m) {
  group *victim = nullptr;
  for (auto &g : groups_) {
    if (g.used && g.first == first)
      return g.k == k && g.m == m ? &g : nullptr;
    if (!g.used)
      victim = victim == nullptr || victim->used ? &g : victim;
    else if (victim == nullptr || (victim->used && g.first < victim->first))
      victim = &g;
  }
  if (victim->used && victim->first > first)
    return nullptr;  // older than every group kept: too late to help
  finish(*victim);
  *victim = group{};
  victim->used = true;
  victim->first = first;
  victim->k = k;
  victim->m = m;
  return victim;
}

void fec_receiver::release_below(std::uint64_t seq) {
  for (auto &g : groups_)
    if (g.used && g.first + g.k <= seq) {
      finish(g);
      g.used = false;
    }
}

unsigned fec_receiver::rebuild(group &g, std::size_t shard_len, rte_mbuf **out) {
  const std::byte *data[kFecMaxK];
  std::uint16_t lens[kFecMaxK];
  const std::byte *parity[kFecMaxM];
  unsigned lost_idx[kFecMaxK], nlost = 0;
  for (unsigned j = 0; j < g.k; ++j) {
    rte_mbuf *m = held(g.first + j);
    if (m == nullptr) {
      data[j] = nullptr;
      lens[j] = 0;
      lost_idx[nlost++] = j;
    } else {
      data[j] = rte_pktmbuf_mtod_offset(m, const std::byte *, kL2L4);
      lens[j] = static_cast<std::uint16_t>(m->pkt_len - kL2L4);
      if (lens[j] > shard_len) {  // not a frame of this group's shape
        ++st_.bad;
        finish(g);
        return 0;
      }
    }
  }
  for (unsigned i = 0; i < g.m; ++i)
    parity[i] = g.parity[i] != nullptr ? rte_pktmbuf_mtod_offset(g.parity[i], const std::byte *,
                                                                  kL2L4 + wire::kFrameHeaderSize)
                                       : nullptr;
  const fec_decode_result r = codec_->decode(data, lens, g.k, parity, g.m, scratch_, shard_len);
  if (!r.ok()) {
    ++st_.unrecoverable;  // a frame we had was no longer held
    finish(g);
    return 0;
  }
  unsigned n = 0;
  for (unsigned x = 0; x < nlost; ++x) {
    const unsigned j = lost_idx[x];
    const std::byte *f = scratch_[j];
    wire::frame_header h;
    std::memcpy(&h, f, sizeof h);
    const std::size_t len = wire::kFrameHeaderSize + h.payload_len;
    if (len > shard_len || wire::parse_frame_header({f, len}, h) != error::ok ||
        h.type != static_cast<std::uint8_t>(wire::frame_type::data) || h.seq != g.first + j) {
      ++st_.bad;  // the rebuild did not give a valid frame (a corrupted survivor): retransmission repairs it
      continue;
    }
    rte_mbuf *m = rte_pktmbuf_alloc(pool_);
    if (m == nullptr || rte_pktmbuf_tailroom(m) < kL2L4 + len) {
      if (m != nullptr)
        rte_pktmbuf_free(m);
      ++st_.too_late;
      continue;
    }
    std::memcpy(rte_pktmbuf_mtod_offset(m, std::byte *, kL2L4), f, len);
    m->data_len = static_cast<std::uint16_t>(kL2L4 + len);
    m->pkt_len = m->data_len;
    out[n++] = m;
    ++st_.rebuilt;
  }
  finish(g);
  return n;
}

}  // namespace hde::dp
