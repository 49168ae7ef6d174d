// window.h — the receiving half of reliable delivery for one stream, kept
// free of DPDK so it is unit-tested on its own (the sending half is
// sender.h):
//   recv_window<T>  the receiver's reorder buffer: frames held until every
//                   earlier one has arrived, then released in order; it
//                   describes what it holds as selective-ack blocks.
// T is an opaque handle (an rte_mbuf* in the data plane). Capacity is a power
// of two fixed at construction; nothing allocates afterwards.
#pragma once

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
    if (seq + 1 > high_)
      high_ = seq + 1;
    latest_ = seq;
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
    return n;
  }

  // The cumulative ack and the blocks held above it (sack.h): first the
  // block of the frame stored last, then the highest blocks downwards, at
  // most kMaxSackBlocks. Leaves a's duplicate fields alone.
  void fill_ack(ack_info &a) const {
    a.cum = base_;
    a.nblocks = 0;
    if (high_ <= base_ + 1)
      return;
    sack_block first{};
    if (latest_ > base_ && latest_ < high_ && present_[latest_ & mask_]) {
      first = {latest_, latest_ + 1};
      while (first.start - 1 > base_ && present_[(first.start - 1) & mask_])
        --first.start;
      while (first.end < high_ && present_[first.end & mask_])
        ++first.end;
      a.blocks[a.nblocks++] = first;
    }
    std::uint64_t seq = high_;  // exclusive upper end of what is left to scan
    while (a.nblocks < kMaxSackBlocks && seq > base_ + 1) {
      std::uint64_t e = seq;
      while (e > base_ + 1 && !present_[(e - 1) & mask_])
        --e;
      if (e <= base_ + 1)
        break;
      std::uint64_t b = e - 1;
      while (b > base_ + 1 && present_[(b - 1) & mask_])
        --b;
      if (b != first.start)
        a.blocks[a.nblocks++] = {b, e};
      seq = b;
    }
  }

  // Forget everything (the sender restarted); release(item) for held frames.
  template <typename Release> void reset(Release &&release) {
    for (std::uint32_t i = 0; i < cap_; ++i)
      if (present_[i]) {
        present_[i] = false;
        release(items_[i]);
        items_[i] = T{};
      }
    base_ = high_ = latest_ = 0;
  }

private:
  std::uint32_t cap_, mask_;
  std::unique_ptr<T[]> items_;
  std::unique_ptr<bool[]> present_;
  std::uint64_t base_ = 0, high_ = 0, latest_ = 0;
};

}  // namespace hde::dp
