// cache.cpp — bounded baseline cache (sender) and its mirror (receiver).
#include "baseline/cache.h"

#include <algorithm>
#include <cstring>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

namespace hde {

std::size_t default_cache_mb(std::uint64_t guest_bytes, unsigned streams) {
  const std::uint64_t mib = std::min<std::uint64_t>((guest_bytes + (1u << 20) - 1) >> 20, 4096);
  const std::uint64_t n = streams == 0 ? 1 : streams;
  return static_cast<std::size_t>(std::max<std::uint64_t>((mib + n - 1) / n, 256));
}

namespace {
constexpr std::uint32_t npos = 0xFFFFFFFFu;

inline std::uint64_t mix(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}
inline std::uint64_t key_hash(page_key k) { return mix(k.gfn * 0x9E3779B97F4A7C15ULL ^ k.vm); }

// Slot memory is mapped and populated up front (huge pages where the kernel
// gives them), so that filling a slot never takes a page fault on the hot path.
std::byte *alloc_pages(std::uint32_t n, bool populate = true) {
  if (n == 0)
    return nullptr;
  const std::size_t len = std::size_t(n) * kPageSize;
  void *p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return nullptr;
  madvise(p, len, MADV_HUGEPAGE);
  // Touch every page: populates the mapping (with huge pages when granted).
  if (populate)
    for (std::size_t off = 0; off < len; off += kPageSize)
      static_cast<volatile char *>(p)[off] = 0;
  return static_cast<std::byte *>(p);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

void free_pages(std::byte *p, std::uint32_t n) {
  if (p != nullptr)
    munmap(p, std::size_t(n) * kPageSize);
}

// True when the entry at j, whose home is k, may move back to the hole at i
// (k is not cyclically inside (i, j]).
inline bool may_move(std::uint32_t i, std::uint32_t j, std::uint32_t k) {
  return i <= j ? (k <= i || k > j) : (k <= i && k > j);
}
}  // namespace

// key, hash and gen are written only while the slot is free (no reader can
// hold it) and published by the release store of state; readers that load
// state == live with acquire may read them until their section ends.
enum : std::uint8_t { kFree = 0, kLive = 1, kRetired = 2 };
struct baseline_cache::slot_meta {
  page_key key;
  content_hash hash;
  std::uint32_t gen = 0;
  std::atomic<std::uint8_t> state{kFree};
  bool referenced = false;  // CLOCK bit, owner only
  bool live() const { return state.load(std::memory_order_relaxed) == kLive; }
};

struct baseline_cache::key_entry {
  std::uint64_t gfn = 0;
  std::uint32_t vm = 0;
  std::uint32_t slot_plus1 = 0;  // 0 = empty
};

baseline_cache::baseline_cache(std::size_t bytes) {
  std::size_t n = bytes / kPageSize;
  if (n > (1u << 30))
    n = 1u << 30;
  nslots_ = static_cast<std::uint32_t>(n);
  std::uint32_t tsize = 16;
  while (tsize < 2 * nslots_)
    tsize <<= 1;
  mask_ = tsize - 1;
  pages_ = alloc_pages(nslots_);
  if (nslots_ != 0 && pages_ == nullptr)
    nslots_ = 0;  // out of memory: run without baselines
  meta_ = std::make_unique<slot_meta[]>(nslots_);
  free_ = std::make_unique<std::uint32_t[]>(nslots_);
  retired_ = std::make_unique<retired_slot[]>(nslots_);
  keys_ = std::make_unique<key_entry[]>(tsize);
  hashes_ = std::make_unique<std::uint32_t[]>(tsize);
  for (std::uint32_t s = 0; s < nslots_; ++s)
    free_[s] = nslots_ - 1 - s;  // pop order 0, 1, 2, ...
  nfree_ = nslots_;
  // Enough free-or-retired slots to ride out a reader section or two at
  // full encode speed (1/64 of the cache, 4 MiB at most), never all of it.
  reserve_ = std::clamp<std::uint32_t>(nslots_ / 64, nslots_ > 1 ? 1 : 0, 1024);
  stats_.slots = nslots_;
}

void baseline_cache::set_grace_domain(grace_domain *d) { grace_ = d; }

baseline_cache::~baseline_cache() { free_pages(pages_, nslots_); }

void baseline_cache::flush() {
  for (std::uint32_t s = 0; s < nslots_; ++s)
    if (meta_[s].live())
      retire(s);
  std::memset(static_cast<void *>(keys_.get()), 0, sizeof(key_entry) * (mask_ + 1));
  std::memset(hashes_.get(), 0, sizeof(std::uint32_t) * (mask_ + 1));
}

void baseline_cache::flush_vm(std::uint32_t vm) {
  for (std::uint32_t s = 0; s < nslots_; ++s)
    if (meta_[s].live() && meta_[s].key.vm == vm)
      drop_key(meta_[s].key);
}

std::uint32_t baseline_cache::key_find(page_key key) const {
  for (std::uint32_t i = key_hash(key) & mask_;; i = (i + 1) & mask_) {
    const key_entry &e = keys_[i];
    if (e.slot_plus1 == 0)
      return npos;
    if (e.gfn == key.gfn && e.vm == key.vm)
      return i;
  }
}

void baseline_cache::key_insert(page_key key, std::uint32_t slot) {
  std::uint32_t i = key_hash(key) & mask_;
  while (keys_[i].slot_plus1 != 0)
    i = (i + 1) & mask_;
  keys_[i] = key_entry{key.gfn, key.vm, slot + 1};
}

void baseline_cache::key_erase_at(std::uint32_t i) {
  for (std::uint32_t j = (i + 1) & mask_; keys_[j].slot_plus1 != 0; j = (j + 1) & mask_) {
    std::uint32_t k = key_hash({keys_[j].vm, keys_[j].gfn}) & mask_;
    if (may_move(i, j, k)) {
      keys_[i] = keys_[j];
      i = j;
    }
  }
  keys_[i] = key_entry{};
}

std::uint32_t baseline_cache::hash_find(const content_hash &h, std::uint32_t start) const {
  for (std::uint32_t i = start;; i = (i + 1) & mask_) {
    std::uint32_t v = hashes_[i];
    if (v == 0)
      return npos;
    if (meta_[v - 1].hash == h)
      return i;
  }
}

void baseline_cache::hash_insert(const content_hash &h, std::uint32_t slot) {
  std::uint32_t i = static_cast<std::uint32_t>(h.lo) & mask_;
  while (hashes_[i] != 0)
    i = (i + 1) & mask_;
  hashes_[i] = slot + 1;
}

void baseline_cache::hash_erase(const content_hash &h, std::uint32_t slot) {
  std::uint32_t i = static_cast<std::uint32_t>(h.lo) & mask_;
  while (hashes_[i] != slot + 1) {
    if (hashes_[i] == 0)
      return;
    i = (i + 1) & mask_;
  }
  for (std::uint32_t j = (i + 1) & mask_; hashes_[j] != 0; j = (j + 1) & mask_) {
    std::uint32_t k = static_cast<std::uint32_t>(meta_[hashes_[j] - 1].hash.lo) & mask_;
    if (may_move(i, j, k)) {
      hashes_[i] = hashes_[j];
      i = j;
    }
  }
  hashes_[i] = 0;
}

std::optional<slot_ref> baseline_cache::find_key(page_key key) {
  std::uint32_t i = nslots_ ? key_find(key) : npos;
  if (i == npos) {
    ++stats_.key_misses;
    return std::nullopt;
  }
  ++stats_.key_hits;
  std::uint32_t s = keys_[i].slot_plus1 - 1;
  meta_[s].referenced = true;
  return slot_ref{s, meta_[s].gen};
}

std::optional<slot_ref> baseline_cache::find_content(const content_hash &h, const std::byte *page) {
  if (nslots_ != 0) {
    std::uint32_t i = static_cast<std::uint32_t>(h.lo) & mask_;
    while ((i = hash_find(h, i)) != npos) {
      std::uint32_t s = hashes_[i] - 1;
      if (std::memcmp(data(s), page, kPageSize) == 0) {
        ++stats_.content_hits;
        meta_[s].referenced = true;
        return slot_ref{s, meta_[s].gen};
      }
      ++stats_.hash_collisions;
      i = (i + 1) & mask_;
    }
  }
  ++stats_.content_misses;
  return std::nullopt;
}

// A live slot leaves the indexes' reach: with readers it waits out a grace
// period, without them it is free at once.
void baseline_cache::retire(std::uint32_t s) {
  slot_meta &m = meta_[s];
  m.referenced = false;
  --stats_.entries;
  if (grace_ == nullptr) {
    m.state.store(kFree, std::memory_order_relaxed);
    free_[nfree_++] = s;
    return;
  }
  m.state.store(kRetired, std::memory_order_release);
  const std::uint32_t tail = (ret_head_ + ret_count_) % nslots_;
  retired_[tail] = retired_slot{grace_->start(), s};
  ++ret_count_;
  ++stats_.retired;
}

// Retired slots whose grace period is over become free (tokens ascend, so
// the first one still waiting ends the scan).
void baseline_cache::reclaim() {
  while (ret_count_ != 0 && grace_->done(retired_[ret_head_].token)) {
    const std::uint32_t s = retired_[ret_head_].slot;
    ret_head_ = ret_head_ + 1 == nslots_ ? 0 : ret_head_ + 1;
    --ret_count_;
    meta_[s].state.store(kFree, std::memory_order_relaxed);
    free_[nfree_++] = s;
    --stats_.retired;
    ++stats_.reclaimed;
  }
}

// CLOCK: clear reference bits until an unreferenced live slot comes round,
// and retire it. False when no slot is live.
bool baseline_cache::evict_one() {
  if (stats_.entries == 0)
    return false;
  for (;;) {
    std::uint32_t s = hand_;
    hand_ = hand_ + 1 == nslots_ ? 0 : hand_ + 1;
    slot_meta &m = meta_[s];
    if (!m.live())
      continue;
    if (m.referenced) {
      m.referenced = false;
      continue;
    }
    key_erase_at(key_find(m.key));
    hash_erase(m.hash, s);
    retire(s);
    ++stats_.evictions;
    return true;
  }
}

// A free slot, evicting when needed; npos when none is back from its grace
// period yet.
std::uint32_t baseline_cache::take_slot() {
  if (grace_ != nullptr) {
    reclaim();
    // Keep the reserve of free-or-retired slots topped up, so that a slow
    // reader delays reuse without ever stalling the owner.
    while (nfree_ + ret_count_ <= reserve_ && evict_one()) {
    }
    reclaim();
  } else if (nfree_ == 0) {
    evict_one();
  }
  if (nfree_ == 0)
    return npos;
  ++stats_.entries;
  return free_[--nfree_];
}

std::optional<slot_ref> baseline_cache::fill(page_key key, const content_hash &h,
                                             const std::byte *page) {
  if (nslots_ == 0)
    return std::nullopt;
  std::uint32_t i = key_find(key);
  if (grace_ == nullptr && i != npos) {
    // No readers: the page's new version overwrites its own slot.
    const std::uint32_t s = keys_[i].slot_plus1 - 1;
    slot_meta &m = meta_[s];
    hash_erase(m.hash, s);
    std::memcpy(pages_ + std::size_t(s) * kPageSize, page, kPageSize);
    m.hash = h;
    m.referenced = true;
    ++m.gen;
    hash_insert(h, s);
    return slot_ref{s, m.gen};
  }
  const std::uint32_t s = take_slot();
  if (s == npos) {
    ++stats_.fill_deferred;
    return std::nullopt;
  }
  slot_meta &m = meta_[s];
  std::memcpy(pages_ + std::size_t(s) * kPageSize, page, kPageSize);
  m.key = key;
  m.hash = h;
  m.referenced = true;
  ++m.gen;
  m.state.store(kLive, std::memory_order_release);  // publish
  hash_insert(h, s);
  i = key_find(key);  // again: an eviction may have moved or removed it
  if (i == npos) {
    key_insert(key, s);
  } else {
    const std::uint32_t old = keys_[i].slot_plus1 - 1;
    keys_[i].slot_plus1 = s + 1;
    hash_erase(meta_[old].hash, old);
    retire(old);
  }
  return slot_ref{s, m.gen};
}

void baseline_cache::drop_key(page_key key) {
  std::uint32_t i = nslots_ ? key_find(key) : npos;
  if (i == npos)
    return;
  std::uint32_t s = keys_[i].slot_plus1 - 1;
  key_erase_at(i);
  hash_erase(meta_[s].hash, s);
  retire(s);
}

std::optional<baseline_cache::view> baseline_cache::lookup(page_key key) const {
  for (std::uint32_t s = 0; s < nslots_; ++s) {
    const slot_meta &m = meta_[s];
    if (m.state.load(std::memory_order_acquire) != kLive)
      continue;
    if (m.key.vm == key.vm && m.key.gfn == key.gfn)
      return view{{s, m.gen}, m.hash, data(s)};
  }
  return std::nullopt;
}

// --- mirror -----------------------------------------------------------------

baseline_mirror::~baseline_mirror() {
  stop_populate();
  free_pages(pages_, nslots_);
}

void baseline_mirror::stop_populate() {
  if (populating_) {
    stop_.store(true, std::memory_order_relaxed);
    pthread_join(populate_, nullptr);
    populating_ = false;
  }
  stop_.store(false, std::memory_order_relaxed);
}

// The populate helper: page tables only, 64 MiB at a time, so slots the
// decoder fills meanwhile are safe. It may run on any online CPU: a thread
// made on a DPDK lcore inherits that lcore's single-CPU affinity, and would
// otherwise take its time from the very lcore it is meant to spare.
void *baseline_mirror::populate_main(void *arg) {
  auto *m = static_cast<baseline_mirror *>(arg);
  cpu_set_t all;
  CPU_ZERO(&all);
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  for (long c = 0; c < n && c < CPU_SETSIZE; ++c)
    CPU_SET(static_cast<int>(c), &all);
  pthread_setaffinity_np(pthread_self(), sizeof all, &all);
  const std::size_t len = std::size_t(m->populate_slots_) * kPageSize;
  constexpr std::size_t kStep = 64u << 20;
  for (std::size_t off = 0; off < len && !m->stop_.load(std::memory_order_relaxed); off += kStep)
    if (madvise(m->populate_pages_ + off, std::min(kStep, len - off), MADV_POPULATE_WRITE) != 0)
      break;  // an older kernel: pages fault in on first fill
  return nullptr;
}

bool baseline_mirror::reset(std::uint32_t slot_count, std::uint32_t max_slots) {
  if (slot_count > max_slots)
    return false;
  if (slot_count != nslots_) {
    stop_populate();
    free_pages(pages_, nslots_);
    pages_ = alloc_pages(slot_count, !background_);
    if (background_ && pages_ != nullptr) {
      populate_pages_ = pages_;
      populate_slots_ = slot_count;
      populating_ = pthread_create(&populate_, nullptr, populate_main, this) == 0;
      if (!populating_)  // no thread: populate now
        for (std::size_t off = 0; off < std::size_t(slot_count) * kPageSize; off += kPageSize)
          reinterpret_cast<volatile char *>(pages_)[off] = 0;
    }
    if (slot_count != 0 && pages_ == nullptr) {
      nslots_ = 0;
      gens_.reset();
      return false;
    }
    gens_ = std::make_unique<std::uint32_t[]>(slot_count);
    empty_ = std::make_unique<bool[]>(slot_count);
    nslots_ = slot_count;
  }
  // Generations restart with the stream, as the sender's do for a new stream.
  for (std::uint32_t s = 0; s < nslots_; ++s) {
    gens_[s] = 0;
    empty_[s] = false;
  }
  return true;
}

const std::byte *baseline_mirror::get(std::uint32_t slot, std::uint32_t gen) const {
  if (slot >= nslots_ || gens_[slot] != gen || gen == 0 || empty_[slot])
    return nullptr;
  return pages_ + std::size_t(slot) * kPageSize;
}

bool baseline_mirror::fill(std::uint32_t slot, const std::byte *page) {
  if (slot >= nslots_)
    return false;
  std::memcpy(pages_ + std::size_t(slot) * kPageSize, page, kPageSize);
  ++gens_[slot];
  empty_[slot] = false;
  return true;
}

void baseline_mirror::fill_lost(std::uint32_t slot) {
  if (slot >= nslots_)
    return;
  ++gens_[slot];
  empty_[slot] = true;
}

void baseline_mirror::forget(std::uint32_t slot) {
  if (slot < nslots_)
    empty_[slot] = true;
}

}  // namespace hde
