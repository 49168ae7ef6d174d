// delay_line.h — where hde-wanem keeps frames until they are due, without
// DPDK: two fixed-capacity FIFO rings of (due time, item), allocated once.
// link_model gives in-order frames non-decreasing due times, so one FIFO
// holds them in time order; held-back frames (reorder=) all wait the same
// extra time, so their due times are non-decreasing too and a second FIFO
// holds them. pop_due() merges the two heads by due time: the time-ordered
// queue costs O(1) per frame, with no heap and no allocation.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace hde::wanem {

template <typename T> class fifo_ring {
public:
  explicit fifo_ring(std::size_t capacity) : slots_(round_up(capacity)), mask_(slots_.size() - 1) {}
  std::size_t size() const { return static_cast<std::size_t>(tail_ - head_); }
  std::size_t capacity() const { return slots_.size(); }
  bool empty() const { return head_ == tail_; }
  bool full() const { return size() == slots_.size(); }
  bool push(std::uint64_t due, const T &item) {
    if (full())
      return false;
    assert(empty() || due >= slots_[(tail_ - 1) & mask_].due);
    slots_[tail_++ & mask_] = {due, item};
    return true;
  }
  std::uint64_t front_due() const { return empty() ? kNever : slots_[head_ & mask_].due; }
  T pop() { return slots_[head_++ & mask_].item; }

  static constexpr std::uint64_t kNever = std::numeric_limits<std::uint64_t>::max();

private:
  struct slot {
    std::uint64_t due;
    T item;
  };
  static std::size_t round_up(std::size_t n) {
    std::size_t p = 1;
    while (p < n)
      p <<= 1;
    return p;
  }
  std::vector<slot> slots_;
  std::size_t mask_;
  std::uint64_t head_ = 0, tail_ = 0;
};

template <typename T> class delay_line {
public:
  static constexpr std::uint64_t kNever = fifo_ring<T>::kNever;

  // in_order: frames in flight in arrival order; held: frames held back at
  // once (when that ring is full, a frame to hold goes in order instead).
  delay_line(std::size_t in_order, std::size_t held) : main_(in_order), held_(held) {}

  bool full() const { return main_.full(); }
  std::size_t size() const { return main_.size() + held_.size(); }
  std::size_t capacity() const { return main_.capacity(); }
  bool push(std::uint64_t due, const T &item) { return main_.push(due, item); }
  bool push_held(std::uint64_t due, const T &item) { return held_.push(due, item); }
  std::uint64_t next_due() const {
    const std::uint64_t a = main_.front_due(), b = held_.front_due();
    return a < b ? a : b;
  }
  // Calls fn(item, due) for up to `max` items due at or before `now`,
  // earliest first (in-order frames first on a tie). Returns how many.
  template <typename Fn> std::size_t pop_due(std::uint64_t now, std::size_t max, Fn &&fn) {
    std::size_t n = 0;
    while (n < max) {
      const std::uint64_t a = main_.front_due(), b = held_.front_due();
      if (a <= b && a <= now && a != kNever)
        fn(main_.pop(), a);
      else if (b < a && b <= now)
        fn(held_.pop(), b);
      else
        break;
      ++n;
    }
    return n;
  }
  // Everything, due or not (shutdown).
  template <typename Fn> void drain(Fn &&fn) {
    while (!main_.empty())
      fn(main_.pop());
    while (!held_.empty())
      fn(held_.pop());
  }

private:
  fifo_ring<T> main_, held_;
};

}  // namespace hde::wanem
