// feeder.cpp — the trace loader thread.
#include "feeder.h"

#include <chrono>
#include <cstring>

namespace hde::dp {

bool feeder::open(const std::vector<std::string> &paths, std::string &err) {
  tr_ = trace_reader::open(paths, err);
  rounds_ = tr_ ? tr_->snapshot_count() : 0;
  ram_bytes_ = tr_ ? tr_->ram_bytes() : 0;
  return tr_ != nullptr;
}

void feeder::start() {
  if (!preloaded_)
    th_ = std::thread([this] { run(); });
}

bool feeder::preload(std::string &err) {
  batches_.resize(tr_->snapshot_count());
  images_.resize(tr_->snapshot_count());
  const std::byte *prev = nullptr;
  for (std::size_t i = 0; i < tr_->snapshot_count(); ++i)
    if (!load_round(i, prev, err))
      return false;
  preloaded_ = true;
  published_.store(static_cast<int>(tr_->snapshot_count()) - 1, std::memory_order_release);
  return true;
}

// Load snapshot i and list the pages its round offers (prev: image i-1).
bool feeder::load_round(std::size_t i, const std::byte *&prev, std::string &err) {
  const std::uint64_t npages = tr_->page_count();
  const std::byte *cur = tr_->load(i, err);
  if (cur == nullptr)
    return false;
  const bool keep = !images_.empty();
  if (keep) {  // preload: the reader's two buffers are reused, keep a copy
    images_[i].assign(cur, cur + tr_->ram_bytes());
    cur = images_[i].data();
  }
  list_round(keep ? i : i % 2, i, prev, cur, npages, i + 1 == tr_->snapshot_count());
  prev = cur;
  return true;
}

// The pages round i offers: all of cur (bulk round), or those that differ from prev.
void feeder::list_round(std::size_t slot, std::size_t round, const std::byte *prev, const std::byte *cur,
                        std::size_t npages, bool last) {
  round_batch &b = batches_[slot];
  b.index = static_cast<std::uint32_t>(round);
  b.last = last;
  b.image = cur;
  b.image_pages = npages;
  b.pages.clear();
  for (std::uint64_t g = 0; g < npages; ++g)
    if (prev == nullptr || std::memcmp(prev + g * kPageSize, cur + g * kPageSize, kPageSize) != 0)
      b.pages.push_back(work_item{page_in{{0, g}, cur + g * kPageSize}, b.index, 0, false, false});
}

void feeder::generate(const gen_spec &g) {
  images_ = generate_trace(g);
  rounds_ = images_.size();
  ram_bytes_ = std::uint64_t(g.mib) << 20;
  batches_.resize(images_.size());
  const std::size_t npages = g.mib * 256;
  for (std::size_t i = 0; i < images_.size(); ++i)
    list_round(i, i, i == 0 ? nullptr : images_[i - 1].data(), images_[i].data(), npages,
               i + 1 == images_.size());
  preloaded_ = true;
  published_.store(static_cast<int>(images_.size()) - 1, std::memory_order_release);
}

std::uint64_t feeder::total_pages() const {
  if (!preloaded_)
    return 0;
  std::uint64_t n = 0;
  for (const auto &b : batches_)
    n += b.pages.size();
  return n;
}

const std::byte *feeder::last_image() const { return images_.empty() ? nullptr : images_.back().data(); }

void feeder::stop() {
  stop_.store(true);
  if (th_.joinable())
    th_.join();
}

const round_batch *feeder::ready(std::uint32_t r) const {
  if (published_.load(std::memory_order_acquire) < static_cast<int>(r))
    return nullptr;
  return &batches_[preloaded_ ? r : r % 2];
}

bool feeder::failed(std::string &err) const {
  if (!failed_.load(std::memory_order_acquire))
    return false;
  err = err_;
  return true;
}

void feeder::run() {
  const std::byte *prev = nullptr;
  for (std::size_t i = 0; i < tr_->snapshot_count(); ++i) {
    // Loading snapshot i overwrites the image of round i-2.
    while (static_cast<int>(i) - 2 > released_.load(std::memory_order_acquire)) {
      if (stop_.load())
        return;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::string err;
    if (!load_round(i, prev, err)) {
      err_ = err;
      failed_.store(true, std::memory_order_release);
      return;
    }
    published_.store(static_cast<int>(i), std::memory_order_release);
  }
}

}  // namespace hde::dp
