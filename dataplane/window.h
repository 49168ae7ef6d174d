// window.h — the receiving half of reliable delivery for one stream, kept
// free of DPDK so it is unit-tested on its own (the sending half is
// sender.h):
//   recv_window<T>  the receiver's reorder buffer: frames held until every
//                   earlier one has arrived, then released in order; it
//                   describes what it holds as selective-ack blocks.
// T is an opaque handle (an rte_mbuf* in the data plane). Capacity is a power
// of two fixed at construction; nothing allocates afterwards.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>

#include "sack.h"

namespace hde::dp {

template <typename T> class recv_window {
public:
  enum class verdict { stored, duplicate, too_far };

  explicit recv_window(std::uint32_t capacity_pow2)
      : cap_(capacity_pow2), mask_(capacity_pow2 - 1), items_(std::make_unique<T[]>(capacity_pow2)),
        present_(std::make_unique<bool[]>(capacity_pow2)) {}

  std::uint64_t next_expected() const { return base_; }
  // The first frame not yet received (>= next_expected(): frames received
  // in order but not drained yet lie between them). The cumulative ack.
  std::uint64_t next_missing() const { return contig_; }
  // Frame seq delivered already, or held here.
  bool has(std::uint64_t seq) const { return seq < base_ || (seq - base_ < cap_ && present_[seq & mask_]); }

  verdict offer(std::uint64_t seq, T item) {
    if (seq < base_)
      return verdict::duplicate;
    if (seq - base_ >= cap_)
      return verdict::too_far;
    std::size_t i = seq & mask_;
    if (present_[i])
      return verdict::duplicate;
    present_[i] = true;
    items_[i] = item;
    if (ntouched_ < kTouched)
      touched_[ntouched_++] = seq;  // reported by the next ACK (fill_ack)
    if (seq + 1 > high_)
      high_ = seq + 1;
    while (contig_ < high_ && present_[contig_ & mask_])
      ++contig_;
    return verdict::stored;
  }

  // Hand the in-order prefix to deliver(item), advancing next_expected().
  template <typename Deliver> std::uint32_t drain(Deliver &&deliver) {
    std::uint32_t n = 0;
    while (present_[base_ & mask_]) {
      std::size_t i = base_ & mask_;
      present_[i] = false;
      T item = items_[i];
      items_[i] = T{};
      ++base_;
      ++n;
      deliver(item);
    }
    contig_ = std::max(contig_, base_);
    return n;
  }

  // The cumulative ack and the blocks held above it (sack.h), at most
  // max_blocks (<= kMaxSackBlocks):
  //   1. every block that gained a frame since the last ACK, and again
  //      those of the two ACKs before (one of them may have been lost):
  //      each frame is reported by the first ACKs after it arrives, so the
  //      sender does not see a later frame acknowledged while an earlier
  //      arrival goes unreported (RACK would call that one lost and resend
  //      it);
  //   2. then the other blocks in rotation, each ACK going on from where the
  //      last one stopped, from the bottom up and around: a long fat path
  //      with random loss holds hundreds of blocks, and news that every ACK
  //      carrying it lost comes round again.
  // Blocks come in ascending order within each part. Leaves a's duplicate
  // fields alone.
  void fill_ack(ack_info &a, std::size_t max_blocks = kMaxSackBlocks) {
    // Frames received in order but not decoded yet are acknowledged too:
    // the ACK need not wait for the decoder.
    a.cum = contig_;
    a.nblocks = 0;
    max_blocks = std::min(max_blocks, kMaxSackBlocks);
    // What this ACK reports as fresh becomes "recent" for the next two.
    const unsigned ntouched = ntouched_;
    ntouched_ = 0;
    recent_gen_ = (recent_gen_ + 1) % kRecentAcks;
    std::uint64_t *recent = recent_[recent_gen_];
    unsigned &nrecent = nrecent_[recent_gen_];
    nrecent = 0;
    if (high_ <= contig_ + 1 || max_blocks == 0)
      return;
    const std::uint64_t lo = contig_ + 1;
    auto block_of = [&](std::uint64_t seq) {
      sack_block b{seq, seq + 1};
      while (b.start > lo && present_[(b.start - 1) & mask_])
        --b.start;
      while (b.end < high_ && present_[b.end & mask_])
        ++b.end;
      return b;
    };
    // 1. Fresh blocks, then recent ones, each taken once, within half the
    // room (the rotation always moves on).
    const std::size_t cap1 = std::max<std::size_t>(1, max_blocks / 2);
    auto take = [&](std::uint64_t seq) {
      if (seq < lo || seq >= high_ || !present_[seq & mask_])
        return;  // delivered since
      for (unsigned i = 0; i < a.nblocks; ++i)
        if (seq >= a.blocks[i].start && seq < a.blocks[i].end)
          return;  // in a block already taken
      a.blocks[a.nblocks++] = block_of(seq);
      recent[nrecent++] = a.blocks[a.nblocks - 1].start;
    };
    std::sort(touched_, touched_ + ntouched);
    for (unsigned i = 0; i < ntouched && a.nblocks < cap1; ++i)
      take(touched_[i]);
    for (unsigned k = 1; k < kRecentAcks; ++k) {  // the previous ACK's first
      const unsigned g = (recent_gen_ + kRecentAcks - k) % kRecentAcks;
      for (unsigned i = 0; i < nrecent_[g] && a.nblocks < cap1; ++i)
        take(recent_[g][i]);
    }
    std::sort(a.blocks, a.blocks + a.nblocks,
              [](const sack_block &x, const sack_block &y) { return x.start < y.start; });
    // 2. The rest in rotation: from scan_ (the block it falls in) up to
    // high_, then from the bottom up to where it started. Blocks taken in
    // part 1 are skipped (they are sorted: one cursor per pass).
    const unsigned fresh = a.nblocks;
    unsigned ti = 0;
    auto taken = [&](std::uint64_t start) {
      while (ti < fresh && a.blocks[ti].start < start)
        ++ti;
      return ti < fresh && a.blocks[ti].start == start;
    };
    std::uint64_t start = scan_ > lo && scan_ < high_ ? scan_ : lo;
    while (start > lo && present_[(start - 1) & mask_])
      --start;
    std::uint64_t seq = start;
    bool wrapped = start == lo;
    for (;;) {
      const std::uint64_t limit = wrapped && start != lo ? start : high_;
      while (seq < limit && !present_[seq & mask_])
        ++seq;
      if (seq >= limit) {
        if (wrapped)
          break;
        wrapped = true;
        seq = lo;
        ti = 0;
        continue;
      }
      std::uint64_t e = seq + 1;
      while (e < high_ && present_[e & mask_])
        ++e;
      if (!taken(seq)) {
        if (a.nblocks == max_blocks) {
          scan_ = seq;  // the next ACK's rotation starts with this block
          return;
        }
        a.blocks[a.nblocks++] = {seq, e};
      }
      seq = e;
    }
    scan_ = lo;  // everything fitted: the next rotation starts at the bottom
  }

  // Forget everything (the sender restarted); release(item) for held frames.
  template <typename Release> void reset(Release &&release) {
    for (std::uint32_t i = 0; i < cap_; ++i)
      if (present_[i]) {
        present_[i] = false;
        release(items_[i]);
        items_[i] = T{};
      }
    base_ = high_ = scan_ = contig_ = 0;
    ntouched_ = 0;
    for (unsigned &n : nrecent_)
      n = 0;
  }

private:
  std::uint32_t cap_, mask_;
  std::unique_ptr<T[]> items_;
  std::unique_ptr<bool[]> present_;
  std::uint64_t base_ = 0, high_ = 0;
  std::uint64_t contig_ = 0;  // next_missing()
  std::uint64_t scan_ = 0;  // fill_ack's rotation point
  // Frames stored since the last fill_ack; beyond kTouched, the rotation
  // reports the rest.
  static constexpr unsigned kTouched = 128;
  std::uint64_t touched_[kTouched];
  unsigned ntouched_ = 0;
  // The blocks (their starts) that the last kRecentAcks ACKs reported as
  // fresh: reported again.
  static constexpr unsigned kRecentAcks = 3;
  std::uint64_t recent_[kRecentAcks][kTouched];
  unsigned nrecent_[kRecentAcks] = {};
  unsigned recent_gen_ = 0;
};

}  // namespace hde::dp
