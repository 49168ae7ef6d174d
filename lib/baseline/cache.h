// cache.h — the bounded baseline cache of one stream, and its mirror.
//
// The sender (baseline_cache) owns a fixed array of 4 KiB slots, sized from a
// byte budget. Each slot holds the last version of one page (vm, gfn) that
// was sent on the stream. Two indexes point into the slots:
//   key index     (vm, gfn)  -> slot   the page's baseline, for DELTA
//   content index  XXH3-128  -> slot   any page with that content, for REF
// Both are open-addressing tables sized at twice the slot count, so no
// operation allocates after construction. Eviction is CLOCK (second chance):
// a slot used as a delta base or dedup source gets its reference bit set;
// the sweep evicts the first slot whose bit is clear.
//
// Every record that fills a slot names it (fill_slot), and every fill bumps
// the slot's generation on both sides. The receiver (baseline_mirror) keeps
// only slot contents and generations, so the two always hold the same set and
// a DELTA or REF names exactly (slot, generation) it refers to.
//
// Concurrency: one instance belongs to one stream, and one stream to one
// worker (pages are sharded by (vm, gfn)): only that owner writes, and the
// two indexes are its private business. The slots themselves are published
// RCU-style, so other threads (the control thread, an embedding hypervisor)
// may read them while the owner works:
//   - with a grace_domain set (set_grace_domain), a slot is never written
//     while it may be read: a page's new version goes into a fresh slot, the
//     old slot (or an evicted one) is retired, and it is reused only after a
//     grace period. A reserve of free-or-retired slots (reserve()) keeps the
//     owner from waiting; when even the reserve has not come back, the page
//     keeps its previous baseline (counted as fill_deferred): still correct,
//     since every record names the slot and generation it used.
//   - without one (a single-threaded embedder, hde-estimate) a page's new
//     version overwrites its own slot and evicted slots are reused at once.
// Readers call lookup() inside a read-side section of the domain. Counters
// for other threads come from stats(), a plain snapshot.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <pthread.h>
#include <optional>

#include "baseline/grace.h"
#include "common/page.h"
#include "page/hash.h"

namespace hde {

// The default cache size per stream, MiB, when the operator gives none: the
// guest's RAM (at most 4 GiB, the receiver's mirror limit) shared by the
// streams, at least 256 MiB each, so that every page of a guest up to
// 4 GiB can keep a baseline, as the XBZRLE reference's unbounded cache does.
std::size_t default_cache_mb(std::uint64_t guest_bytes, unsigned streams);

struct slot_ref {
  std::uint32_t slot = 0;
  std::uint32_t gen = 0;
};

struct baseline_stats {
  std::uint64_t slots = 0;        // capacity in slots
  std::uint64_t entries = 0;      // slots in use
  std::uint64_t key_hits = 0;     // find_key found a baseline
  std::uint64_t key_misses = 0;
  std::uint64_t content_hits = 0; // find_content confirmed a duplicate
  std::uint64_t content_misses = 0;
  std::uint64_t hash_collisions = 0;  // same hash, different bytes
  std::uint64_t evictions = 0;
  std::uint64_t retired = 0;        // slots waiting for a grace period now
  std::uint64_t reclaimed = 0;      // retired slots freed after their grace period
  std::uint64_t fill_deferred = 0;  // no slot back in time: the page kept its old baseline
  std::uint64_t bytes() const { return entries * kPageSize; }
};

class baseline_cache {
public:
  explicit baseline_cache(std::size_t bytes);
  ~baseline_cache();
  baseline_cache(const baseline_cache &) = delete;
  baseline_cache &operator=(const baseline_cache &) = delete;

  std::uint32_t slot_count() const { return nslots_; }

  // Readers on other threads from now on: retire instead of overwrite, and
  // reuse after d's grace periods. Set before the first fill; d outlives the
  // cache. nullptr: no concurrent readers.
  void set_grace_domain(grace_domain *d);
  // Slots kept free or retired when a grace domain is set.
  std::uint32_t reserve() const { return reserve_; }

  // The baseline of key, if the cache holds one.
  std::optional<slot_ref> find_key(page_key key);
  // A slot with exactly these bytes (hash match confirmed by memcmp).
  std::optional<slot_ref> find_content(const content_hash &h, const std::byte *page);
  // Store page as key's new baseline: reuses key's slot or takes a free or
  // evicted one. Returns the slot and its new generation; nullopt when the
  // cache has no slots.
  std::optional<slot_ref> fill(page_key key, const content_hash &h, const std::byte *page);
  // key no longer has a baseline (it became a zero page); frees its slot.
  void drop_key(page_key key);
  // Forget everything, or every page of one VM. Generations keep counting.
  void flush();
  void flush_vm(std::uint32_t vm);

  const std::byte *data(std::uint32_t slot) const { return pages_ + std::size_t(slot) * kPageSize; }
  const baseline_stats &stats() const { return stats_; }

  // --- reader side: any thread, inside a read-side section of the domain ---
  struct view {
    slot_ref ref;
    content_hash hash;
    const std::byte *data;  // unchanged until the read-side section ends
  };
  // key's current baseline. Scans the slots (O(slots)): a control action,
  // not for the hot path.
  std::optional<view> lookup(page_key key) const;

private:
  struct slot_meta;
  void retire(std::uint32_t s);
  void reclaim();
  bool evict_one();
  std::uint32_t take_slot();
  std::uint32_t key_find(page_key key) const;   // key-table index or npos
  void key_insert(page_key key, std::uint32_t slot);
  void key_erase_at(std::uint32_t i);
  std::uint32_t hash_find(const content_hash &h, std::uint32_t start) const;
  void hash_insert(const content_hash &h, std::uint32_t slot);
  void hash_erase(const content_hash &h, std::uint32_t slot);

  std::uint32_t nslots_ = 0;
  std::uint32_t mask_ = 0;  // table size - 1
  std::byte *pages_ = nullptr;
  std::unique_ptr<slot_meta[]> meta_;
  std::unique_ptr<std::uint32_t[]> free_;  // free slot stack
  std::uint32_t nfree_ = 0;
  std::uint32_t hand_ = 0;  // CLOCK hand
  grace_domain *grace_ = nullptr;
  struct retired_slot {
    std::uint64_t token;
    std::uint32_t slot;
  };
  std::unique_ptr<retired_slot[]> retired_;  // FIFO, tokens ascending
  std::uint32_t ret_head_ = 0, ret_count_ = 0;
  std::uint32_t reserve_ = 0;
  struct key_entry;
  std::unique_ptr<key_entry[]> keys_;
  std::unique_ptr<std::uint32_t[]> hashes_;  // slot+1 per entry, 0 = empty
  baseline_stats stats_;
};

// The receiver's copy: slot contents and generations only.
class baseline_mirror {
public:
  baseline_mirror() = default;
  ~baseline_mirror();
  baseline_mirror(const baseline_mirror &) = delete;
  baseline_mirror &operator=(const baseline_mirror &) = delete;

  // (Re)size to slot_count slots; refuses more than max_slots. New slot
  // memory is populated before reset() returns, or, with
  // populate_in_background(true), by a helper thread while the mirror is
  // already in use (MADV_POPULATE_WRITE: page tables only, never the bytes),
  // so a receiver's lcore does not stall on a large mirror.
  bool reset(std::uint32_t slot_count, std::uint32_t max_slots);
  void populate_in_background(bool on) { background_ = on; }
  std::uint32_t slot_count() const { return nslots_; }
  // Content of slot if its generation is gen, else nullptr.
  const std::byte *get(std::uint32_t slot, std::uint32_t gen) const;
  // Copy page into slot and bump its generation; false if slot is out of range.
  bool fill(std::uint32_t slot, const std::byte *page);
  // The sender filled slot but its record could not be applied: bump the
  // generation, keep no content (get() refuses it until the next fill).
  void fill_lost(std::uint32_t slot);
  // Drop slot's content, generation unchanged (fault injection).
  void forget(std::uint32_t slot);

private:
  void stop_populate();
  static void *populate_main(void *arg);
  std::uint32_t nslots_ = 0;
  std::byte *pages_ = nullptr;
  std::unique_ptr<std::uint32_t[]> gens_;
  std::unique_ptr<bool[]> empty_;  // no valid content (fill_lost, forget)
  bool background_ = false;
  pthread_t populate_{};
  bool populating_ = false;
  std::byte *populate_pages_ = nullptr;
  std::uint32_t populate_slots_ = 0;
  std::atomic<bool> stop_{false};
};

}  // namespace hde
