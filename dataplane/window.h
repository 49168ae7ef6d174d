// window.h — the two halves of reliable delivery for one stream, kept free
// of DPDK so they are unit-tested on their own:
//   send_window<T>  the sender's frames by sequence number: queued (sealed,
//                   not yet sent: congestion control holds them back) and
//                   in flight (sent, with send time and retransmit count);
//                   acked by cumulative ack plus a selective-ack bitmap;
//   recv_window<T>  the receiver's reorder buffer: frames held until every
//                   earlier one has arrived, then released in order.
// T is an opaque handle (an rte_mbuf* in the data plane). Capacity is a power
// of two fixed at construction; nothing allocates afterwards.
#pragma once

#include <cstdint>
#include <memory>

namespace hde::dp {

// Selective acknowledgement carried by an ACK frame: every seq < cum has
// arrived, and bit i of sack[i / 64] says whether cum + 1 + i has.
inline constexpr std::size_t kSackWords = 4;
inline constexpr std::size_t kSackBits = 64 * kSackWords;

struct sack_info {
  std::uint64_t cum = 0;
  std::uint64_t sack[kSackWords] = {};
};

template <typename T> class send_window {
public:
  struct slot {
    T item{};
    std::uint64_t sent_tsc = 0;
    std::uint32_t retransmits = 0;
    bool acked = false;
  };

  explicit send_window(std::uint32_t capacity_pow2)
      : cap_(capacity_pow2), mask_(capacity_pow2 - 1), slots_(std::make_unique<slot[]>(capacity_pow2)) {}

  std::uint64_t base() const { return base_; }  // oldest unacked seq
  std::uint64_t sent() const { return sent_; }  // first seq not yet transmitted
  std::uint64_t next() const { return next_; }  // seq of the next frame queued
  std::uint32_t held() const { return static_cast<std::uint32_t>(next_ - base_); }
  std::uint32_t in_flight() const { return static_cast<std::uint32_t>(sent_ - base_); }
  std::uint32_t unsent() const { return static_cast<std::uint32_t>(next_ - sent_); }
  std::uint32_t free_slots() const { return cap_ - held(); }
  bool empty() const { return next_ == base_; }

  // Queue frame seq = next(). The caller checks free_slots() first.
  void push(T item) {
    slots_[next_ & mask_] = slot{item, 0, 0, false};
    ++next_;
  }

  // The next queued frame goes out now; returns it.
  T send_next(std::uint64_t now) {
    slot &s = slots_[sent_ & mask_];
    s.sent_tsc = now;
    ++sent_;
    return s.item;
  }

  slot &at(std::uint64_t seq) { return slots_[seq & mask_]; }

  // Apply an ack; release(slot) is called once for every newly acked frame
  // (in any order). Returns the number released.
  template <typename Release> std::uint32_t ack(const sack_info &a, Release &&release) {
    std::uint32_t n = 0;
    std::uint64_t cum = a.cum < sent_ ? a.cum : sent_;
    for (; base_ < cum; ++base_) {
      slot &s = slots_[base_ & mask_];
      if (!s.acked) {
        release(s);
        ++n;
      }
      s.acked = false;
      s.item = T{};
    }
    for (std::size_t i = 0; i < kSackBits; ++i) {
      if (((a.sack[i / 64] >> (i % 64)) & 1) == 0)
        continue;
      std::uint64_t seq = cum + 1 + i;
      if (seq < base_ || seq >= sent_)
        continue;
      slot &s = slots_[seq & mask_];
      if (!s.acked) {
        s.acked = true;
        release(s);
        ++n;
      }
    }
    // Slide over a prefix acked selectively.
    while (base_ < sent_ && slots_[base_ & mask_].acked) {
      slots_[base_ & mask_] = slot{};
      ++base_;
    }
    return n;
  }

  // Call resend(seq, slot&) for each unacked frame sent before `older_than`,
  // at most `limit` of them, oldest first. Returns how many.
  template <typename Resend> std::uint32_t expire(std::uint64_t older_than, std::uint32_t limit,
                                                  Resend &&resend) {
    std::uint32_t n = 0;
    for (std::uint64_t seq = base_; seq < sent_ && n < limit; ++seq) {
      slot &s = slots_[seq & mask_];
      if (s.acked || s.sent_tsc >= older_than)
        continue;
      resend(seq, s);
      ++n;
    }
    return n;
  }

private:
  std::uint32_t cap_, mask_;
  std::unique_ptr<slot[]> slots_;
  std::uint64_t base_ = 0, sent_ = 0, next_ = 0;
};

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

  sack_info sack() const {
    sack_info a;
    a.cum = base_;
    for (std::size_t i = 0; i < kSackBits; ++i) {
      std::uint64_t seq = base_ + 1 + i;
      if (seq >= high_ || seq - base_ >= cap_)
        break;
      if (present_[seq & mask_])
        a.sack[i / 64] |= std::uint64_t{1} << (i % 64);
    }
    return a;
  }

  // Forget everything (the sender restarted); release(item) for held frames.
  template <typename Release> void reset(Release &&release) {
    for (std::uint32_t i = 0; i < cap_; ++i)
      if (present_[i]) {
        present_[i] = false;
        release(items_[i]);
        items_[i] = T{};
      }
    base_ = high_ = 0;
  }

private:
  std::uint32_t cap_, mask_;
  std::unique_ptr<T[]> items_;
  std::unique_ptr<bool[]> present_;
  std::uint64_t base_ = 0, high_ = 0;
};

}  // namespace hde::dp
