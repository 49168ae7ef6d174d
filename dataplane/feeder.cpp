// feeder.cpp — the trace loader thread.
#include "feeder.h"

#include <chrono>
#include <cstring>

namespace hde::dp {

bool feeder::open(const std::vector<std::string> &paths, std::string &err) {
  tr_ = trace_reader::open(paths, err);
  return tr_ != nullptr;
}

void feeder::start() { th_ = std::thread([this] { run(); }); }

void feeder::stop() {
  stop_.store(true);
  if (th_.joinable())
    th_.join();
}

const round_batch *feeder::ready(std::uint32_t r) const {
  return published_.load(std::memory_order_acquire) >= static_cast<int>(r) ? &batches_[r % 2] : nullptr;
}

bool feeder::failed(std::string &err) const {
  if (!failed_.load(std::memory_order_acquire))
    return false;
  err = err_;
  return true;
}

void feeder::run() {
  const std::uint64_t npages = tr_->page_count();
  const std::byte *prev = nullptr;
  for (std::size_t i = 0; i < tr_->snapshot_count(); ++i) {
    // Loading snapshot i overwrites the image of round i-2.
    while (static_cast<int>(i) - 2 > released_.load(std::memory_order_acquire)) {
      if (stop_.load())
        return;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::string err;
    const std::byte *cur = tr_->load(i, err);
    if (cur == nullptr) {
      err_ = err;
      failed_.store(true, std::memory_order_release);
      return;
    }
    round_batch &b = batches_[i % 2];
    b.index = static_cast<std::uint32_t>(i);
    b.last = i + 1 == tr_->snapshot_count();
    b.pages.clear();
    for (std::uint64_t g = 0; g < npages; ++g)
      if (prev == nullptr || std::memcmp(prev + g * kPageSize, cur + g * kPageSize, kPageSize) != 0)
        b.pages.push_back(work_item{page_in{{0, g}, cur + g * kPageSize}, b.index, 0, false});
    prev = cur;
    published_.store(static_cast<int>(i), std::memory_order_release);
  }
}

}  // namespace hde::dp
