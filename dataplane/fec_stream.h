// fec_stream.h — forward error correction on a stream of DATA frames
// (--fec K,M | auto), over the ISA-L codec of fec.h:
//
//   fec_sender    on the source worker: groups the stream's DATA frames in
//                 the order of their first transmission (consecutive
//                 sequence numbers) and, after K of them, or when the stream
//                 goes quiet with a group open (a short group), builds M
//                 parity frames and hands them to the port. Parity frames
//                 are not retransmitted and not acknowledged: a group whose
//                 parity is lost too falls back on RACK and retransmission.
//   fec_receiver  on the destination decoder: holds a reference to the last
//                 kHold DATA frames received, keeps the parity of the last
//                 kGroups groups, and when a group has lost no more frames
//                 than parity frames arrived, rebuilds the lost frames. A
//                 rebuilt frame is checked like any other (CRC) and takes
//                 the normal path into the reorder window.
//
// FEC frame (type 4): header as every frame, seq = first DATA seq of the
// group, ack field = k | m << 8 | index << 16, payload = parity shard i of
// the group's frames (each frame = its HDE header and payload, zero-padded to
// the shard length). docs/wire-format.md has the layout. With FEC on, the
// encoder's frames are 64 bytes shorter so that a parity frame (header +
// shard) still fits the MTU.
#pragma once

#include <cstdint>
#include <optional>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "fec.h"
#include "packet.h"
#include "wire/format.h"

namespace hde::dp {

// Room the encoder leaves in each frame when FEC may be on.
inline constexpr std::size_t kFecFrameRoom = kFecAlign;

inline std::uint32_t fec_pack(unsigned k, unsigned m, unsigned index) { return k | m << 8 | index << 16; }
inline void fec_unpack(std::uint32_t v, unsigned &k, unsigned &m, unsigned &index) {
  k = v & 0xFF;
  m = (v >> 8) & 0xFF;
  index = (v >> 16) & 0xFF;
}

struct fec_sender_stats {
  std::uint64_t groups = 0, short_groups = 0, parity_frames = 0, parity_bytes = 0, alloc_fail = 0;
};

class fec_sender {
public:
  fec_sender() = default;
  ~fec_sender() { drop(); }
  // Build the codec for groups up to (kFecMaxK, kFecMaxM) and frames of up
  // to max_frame bytes (HDE header + payload). False when ISA-L says no.
  bool init(rte_mempool *pool, std::size_t max_frame);
  // (0, 0): off. A change closes nothing: the open group is dropped.
  void configure(unsigned k, unsigned m);
  bool on() const { return k_ != 0; }
  unsigned k() const { return k_; }
  unsigned m() const { return m_; }
  bool open() const { return n_ != 0; }
  // The open group: its first DATA seq and how many frames it holds.
  std::uint64_t first_seq() const { return first_seq_; }
  unsigned size() const { return n_; }
  std::uint64_t opened_tsc() const { return opened_; }
  // A DATA frame's first transmission: hold a reference for the group.
  // True when the group is full (call close()).
  bool add(rte_mbuf *m, std::uint64_t seq, std::uint64_t now);
  // Build the group's parity frames, addressed as ep, and pass each to
  // out(rte_mbuf *); returns their wire bytes (for pacing).
  template <typename Out>
  std::uint32_t close(const endpoint_pair &ep, std::uint16_t stream, std::uint32_t epoch, Out &&out) {
    rte_mbuf *par[kFecMaxM];
    const unsigned n = build(ep, stream, epoch, par);
    std::uint32_t bytes = 0;
    for (unsigned i = 0; i < n; ++i) {
      bytes += par[i]->pkt_len;
      out(par[i]);
    }
    return bytes;
  }
  const fec_sender_stats &stats() const { return st_; }

private:
  unsigned build(const endpoint_pair &ep, std::uint16_t stream, std::uint32_t epoch, rte_mbuf **par);
  void drop();
  rte_mempool *pool_ = nullptr;
  std::optional<fec_codec> codec_;
  unsigned k_ = 0, m_ = 0, n_ = 0;
  std::uint64_t first_seq_ = 0, opened_ = 0;
  rte_mbuf *frames_[kFecMaxK] = {};
  fec_sender_stats st_;
};

struct fec_receiver_stats {
  std::uint64_t parity = 0;        // FEC frames received
  std::uint64_t rebuilt = 0;       // DATA frames rebuilt from parity
  std::uint64_t not_needed = 0;    // groups that lost nothing (their parity was spare)
  std::uint64_t too_late = 0;      // parity of a group already complete or out of memory
  std::uint64_t unrecoverable = 0; // groups that lost more frames than parity arrived
  std::uint64_t bad = 0;           // FEC frames with impossible fields, or a rebuild that failed its CRC
};

class fec_receiver {
public:
  static constexpr unsigned kHold = 256;   // DATA frames held (>= 2 groups of 64 plus reordering)
  static constexpr unsigned kGroups = 8;   // groups whose parity is kept
  fec_receiver() = default;
  ~fec_receiver();
  bool init(rte_mempool *pool, std::size_t max_frame);
  // A DATA frame arrived (or was rebuilt): keep a reference.
  void on_data(std::uint64_t seq, rte_mbuf *m);
  // A FEC frame. have(seq) says whether the receiver already has DATA frame
  // seq (delivered or held in its reorder window). Rebuilt frames are passed
  // to deliver(rte_mbuf *), with the header at offset kL2L4.
  template <typename Have, typename Deliver>
  void on_parity(rte_mbuf *m, const wire::frame_header &h, Have &&have, Deliver &&deliver) {
    rte_mbuf *out[kFecMaxK];
    const unsigned n = take_parity(m, h, have, out);
    for (unsigned i = 0; i < n; ++i)
      deliver(out[i]);
  }
  // Frames below seq are delivered: groups wholly below it are released.
  void release_below(std::uint64_t seq);
  const fec_receiver_stats &stats() const { return st_; }

private:
  struct group {
    std::uint64_t first = 0;
    unsigned k = 0, m = 0, nparity = 0;
    bool used = false, done = false;
    rte_mbuf *parity[kFecMaxM] = {};
  };
  template <typename Have>
  unsigned take_parity(rte_mbuf *m, const wire::frame_header &h, Have &have, rte_mbuf **out) {
    unsigned k, mm, idx;
    fec_unpack(h.ack, k, mm, idx);
    ++st_.parity;
    if (!codec_ || k == 0 || k > kFecMaxK || mm == 0 || mm > kFecMaxM || idx >= mm ||
        h.payload_len % kFecAlign != 0 || h.payload_len > codec_->max_shard_len()) {
      ++st_.bad;
      rte_pktmbuf_free(m);
      return 0;
    }
    group *g = find(h.seq, k, mm);
    if (g == nullptr || g->done || g->parity[idx] != nullptr) {
      ++st_.too_late;
      rte_pktmbuf_free(m);
      return 0;
    }
    g->parity[idx] = m;
    ++g->nparity;
    unsigned lost = 0;
    for (unsigned j = 0; j < k; ++j)
      if (held(g->first + j) == nullptr && !have(g->first + j))
        ++lost;
    if (lost == 0) {
      ++st_.not_needed;
      finish(*g);
      return 0;
    }
    if (lost > g->nparity) {
      if (g->nparity == g->m)
        ++st_.unrecoverable;
      return 0;  // wait for more parity
    }
    return rebuild(*g, h.payload_len, out);
  }
  rte_mbuf *held(std::uint64_t seq) const;
  group *find(std::uint64_t first, unsigned k, unsigned m);
  unsigned rebuild(group &g, std::size_t shard_len, rte_mbuf **out);
  void finish(group &g);

  rte_mempool *pool_ = nullptr;
  std::optional<fec_codec> codec_;
  struct held_frame {
    std::uint64_t seq = 0;
    rte_mbuf *m = nullptr;
  };
  held_frame hold_[kHold];
  group groups_[kGroups];
  std::byte *scratch_[kFecMaxK] = {};
  std::byte *scratch_mem_ = nullptr;
  fec_receiver_stats st_;
};

}  // namespace hde::dp
