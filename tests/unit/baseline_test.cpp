// baseline_test.cpp — the bounded baseline cache and its mirror: lookups,
// dedup confirmation, eviction under pressure, flush, agreement of
// generations between sender and receiver, and RCU: slots are never
// rewritten while a reader may hold them, with a deterministic domain and
// with liburcu and real reader threads.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <map>
#include <optional>
#include <thread>
#include <vector>

#include "baseline/cache.h"
#include "baseline/urcu_grace.h"
#include "test_grace.h"
#include "test_pages.h"

using namespace hde;

namespace {
struct page_with_hash {
  test::page_bytes bytes;
  content_hash h;
};
page_with_hash page_of(std::mt19937_64 &rng) {
  page_with_hash p{test::make_page(test::page_kind::records, rng), {}};
  p.h = hash_page(p.bytes.data());
  return p;
}
}  // namespace

TEST(Baseline, FillThenFind) {
  baseline_cache c(16 * kPageSize);
  std::mt19937_64 rng(11);
  auto p = page_of(rng);
  EXPECT_FALSE(c.find_key({1, 5}));
  auto s = c.fill({1, 5}, p.h, p.bytes.data());
  ASSERT_TRUE(s);
  auto k = c.find_key({1, 5});
  ASSERT_TRUE(k);
  EXPECT_EQ(k->slot, s->slot);
  EXPECT_EQ(k->gen, s->gen);
  EXPECT_EQ(std::memcmp(c.data(k->slot), p.bytes.data(), kPageSize), 0);
  auto d = c.find_content(p.h, p.bytes.data());
  ASSERT_TRUE(d);
  EXPECT_EQ(d->slot, s->slot);
  EXPECT_EQ(c.stats().entries, 1u);
}

TEST(Baseline, RefillReusesSlotAndBumpsGeneration) {
  baseline_cache c(16 * kPageSize);
  std::mt19937_64 rng(12);
  auto a = page_of(rng), b = page_of(rng);
  auto s1 = c.fill({0, 1}, a.h, a.bytes.data());
  auto s2 = c.fill({0, 1}, b.h, b.bytes.data());
  EXPECT_EQ(s1->slot, s2->slot);
  EXPECT_EQ(s2->gen, s1->gen + 1);
  EXPECT_FALSE(c.find_content(a.h, a.bytes.data()));  // old content is gone
  EXPECT_TRUE(c.find_content(b.h, b.bytes.data()));
}

TEST(Baseline, HashCollisionIsConfirmedByBytes) {
  baseline_cache c(16 * kPageSize);
  std::mt19937_64 rng(13);
  auto a = page_of(rng), b = page_of(rng);
  c.fill({0, 1}, a.h, a.bytes.data());
  // Claim b has a's hash: the byte comparison must refuse it.
  EXPECT_FALSE(c.find_content(a.h, b.bytes.data()));
  EXPECT_EQ(c.stats().hash_collisions, 1u);
}

TEST(Baseline, BoundedWithEvictions) {
  constexpr std::uint32_t kSlots = 64;
  baseline_cache c(kSlots * kPageSize);
  std::mt19937_64 rng(14);
  std::map<std::uint64_t, page_with_hash> live;
  for (std::uint64_t g = 0; g < 1000; ++g) {
    auto p = page_of(rng);
    auto s = c.fill({0, g}, p.h, p.bytes.data());
    ASSERT_TRUE(s);
    ASSERT_LT(s->slot, kSlots);
    live[g] = p;
  }
  EXPECT_EQ(c.stats().entries, kSlots);
  EXPECT_EQ(c.stats().evictions, 1000u - kSlots);
  // Whatever is still found is exact.
  std::size_t found = 0;
  for (auto &[g, p] : live) {
    if (auto k = c.find_key({0, g})) {
      ++found;
      EXPECT_EQ(std::memcmp(c.data(k->slot), p.bytes.data(), kPageSize), 0) << g;
    }
  }
  EXPECT_EQ(found, kSlots);
}

TEST(Baseline, DropAndFlush) {
  baseline_cache c(32 * kPageSize);
  std::mt19937_64 rng(15);
  for (std::uint32_t vm = 0; vm < 2; ++vm)
    for (std::uint64_t g = 0; g < 8; ++g) {
      auto p = page_of(rng);
      c.fill({vm, g}, p.h, p.bytes.data());
    }
  EXPECT_EQ(c.stats().entries, 16u);
  c.drop_key({0, 3});
  EXPECT_FALSE(c.find_key({0, 3}));
  EXPECT_EQ(c.stats().entries, 15u);
  c.flush_vm(1);
  EXPECT_EQ(c.stats().entries, 7u);
  for (std::uint64_t g = 0; g < 8; ++g)
    EXPECT_FALSE(c.find_key({1, g}));
  EXPECT_TRUE(c.find_key({0, 0}));
  c.flush();
  EXPECT_EQ(c.stats().entries, 0u);
  EXPECT_FALSE(c.find_key({0, 0}));
}

TEST(Baseline, ZeroSizedCacheHoldsNothing) {
  baseline_cache c(100);
  std::mt19937_64 rng(16);
  auto p = page_of(rng);
  EXPECT_EQ(c.slot_count(), 0u);
  EXPECT_FALSE(c.fill({0, 0}, p.h, p.bytes.data()));
  EXPECT_FALSE(c.find_key({0, 0}));
  EXPECT_FALSE(c.find_content(p.h, p.bytes.data()));
}

TEST(Baseline, MirrorFollowsGenerations) {
  constexpr std::uint32_t kSlots = 8;
  baseline_cache c(kSlots * kPageSize);
  baseline_mirror m;
  ASSERT_TRUE(m.reset(kSlots, 1024));
  EXPECT_FALSE(m.reset(2048, 1024));
  ASSERT_TRUE(m.reset(kSlots, 1024));
  std::mt19937_64 rng(17);
  for (std::uint64_t g = 0; g < 100; ++g) {
    auto p = page_of(rng);
    auto s = c.fill({0, g % 20}, p.h, p.bytes.data());
    ASSERT_TRUE(m.fill(s->slot, p.bytes.data()));
    const std::byte *got = m.get(s->slot, s->gen);
    ASSERT_NE(got, nullptr) << g;
    EXPECT_EQ(std::memcmp(got, p.bytes.data(), kPageSize), 0);
    EXPECT_EQ(m.get(s->slot, s->gen - 1), nullptr);
  }
  EXPECT_FALSE(m.fill(kSlots, nullptr));
  EXPECT_EQ(m.get(kSlots, 1), nullptr);
}

// The default cache follows the guest: its RAM (at most 4 GiB) over the
// streams, at least 256 MiB each.
TEST(Baseline, DefaultCacheSizeFollowsTheGuest) {
  constexpr std::uint64_t MiB = 1u << 20;
  EXPECT_EQ(default_cache_mb(128 * MiB, 1), 256u);
  EXPECT_EQ(default_cache_mb(1024 * MiB, 1), 1024u);
  EXPECT_EQ(default_cache_mb(1024 * MiB + 1, 1), 1025u);
  EXPECT_EQ(default_cache_mb(16384 * MiB, 1), 4096u);
  EXPECT_EQ(default_cache_mb(1024 * MiB, 2), 512u);
  EXPECT_EQ(default_cache_mb(16384 * MiB, 32), 256u);
  EXPECT_EQ(default_cache_mb(0, 0), 256u);
}

// A receiver's mirror populated by a helper thread while slots are filled:
// the helper touches page tables only, so every filled slot keeps its bytes,
// and resizing or destroying the mirror mid-populate stops the helper.
TEST(Baseline, MirrorPopulatedInTheBackgroundKeepsFilledSlots) {
  constexpr std::uint32_t kSlots = 65536;  // 256 MiB: populating takes a while
  std::mt19937_64 rng(29);
  for (int round = 0; round < 3; ++round) {
    baseline_mirror m;
    m.populate_in_background(true);
    ASSERT_TRUE(m.reset(kSlots, kSlots));
    std::vector<std::pair<std::uint32_t, std::vector<std::byte>>> filled;
    for (int i = 0; i < 2000; ++i) {
      const auto slot = static_cast<std::uint32_t>(rng() % kSlots);
      auto p = page_of(rng);
      ASSERT_TRUE(m.fill(slot, p.bytes.data()));
      filled.emplace_back(slot, p.bytes);
    }
    // The last fill of each slot is what it holds.
    std::map<std::uint32_t, std::size_t> last;
    for (std::size_t i = 0; i < filled.size(); ++i)
      last[filled[i].first] = i;
    std::map<std::uint32_t, std::uint32_t> gen;
    for (const auto &f : filled)
      ++gen[f.first];
    for (const auto &[slot, i] : last) {
      const std::byte *got = m.get(slot, gen[slot]);
      ASSERT_NE(got, nullptr);
      EXPECT_EQ(std::memcmp(got, filled[i].second.data(), kPageSize), 0) << "slot " << slot;
    }
    if (round == 1) {
      ASSERT_TRUE(m.reset(kSlots / 2, kSlots));  // resize while (maybe) populating
    }
  }
}

// With readers (a grace domain), a new version goes into a fresh slot and the
// old one keeps its bytes until its grace period is over.
TEST(BaselineRcu, RetiredSlotKeepsItsBytesUntilTheGracePeriodEnds) {
  constexpr std::uint32_t kSlots = 16;
  baseline_cache c(kSlots * kPageSize);
  test::lagging_grace grace(1ull << 40);  // no grace period ends by itself
  c.set_grace_domain(&grace);
  std::mt19937_64 rng(21);
  auto a = page_of(rng), b = page_of(rng);
  auto s1 = c.fill({0, 1}, a.h, a.bytes.data());
  auto s2 = c.fill({0, 1}, b.h, b.bytes.data());
  ASSERT_TRUE(s1 && s2);
  EXPECT_NE(s1->slot, s2->slot);
  EXPECT_EQ(c.stats().retired, 1u);
  EXPECT_EQ(c.stats().entries, 1u);
  auto v = c.lookup({0, 1});
  ASSERT_TRUE(v);
  EXPECT_EQ(v->ref.slot, s2->slot);
  EXPECT_EQ(std::memcmp(v->data, b.bytes.data(), kPageSize), 0);
  EXPECT_FALSE(c.find_content(a.h, a.bytes.data()));  // out of the indexes...

  // Fill other pages until no slot is left: the retired one is never taken.
  std::uint64_t filled = 0;
  for (std::uint64_t g = 100; g < 100 + 4 * kSlots; ++g) {
    auto p = page_of(rng);
    if (auto f = c.fill({0, g}, p.h, p.bytes.data())) {
      EXPECT_NE(f->slot, s1->slot);
      ++filled;
    }
    // ...but its bytes are still there for a reader that found it earlier.
    ASSERT_EQ(std::memcmp(c.data(s1->slot), a.bytes.data(), kPageSize), 0) << g;
  }
  EXPECT_LT(filled, 4 * kSlots);
  EXPECT_GT(c.stats().fill_deferred, 0u);
  EXPECT_EQ(c.stats().reclaimed, 0u);

  // A deferred fill leaves the page on its old baseline, intact.
  page_key held{0, 0};
  std::optional<slot_ref> before;
  for (std::uint64_t g = 100; !before && g < 100 + 4 * kSlots; ++g)
    if ((before = c.find_key({0, g})))
      held = {0, g};
  ASSERT_TRUE(before);
  const std::vector<std::byte> old_bytes(c.data(before->slot), c.data(before->slot) + kPageSize);
  auto bb = page_of(rng);
  EXPECT_FALSE(c.fill(held, bb.h, bb.bytes.data()));
  auto after = c.find_key(held);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->slot, before->slot);
  EXPECT_EQ(after->gen, before->gen);
  EXPECT_EQ(std::memcmp(c.data(after->slot), old_bytes.data(), kPageSize), 0);

  // Readers gone: retired slots come back and fills succeed again.
  grace.release_all();
  EXPECT_TRUE(c.fill(held, bb.h, bb.bytes.data()));
  EXPECT_GT(c.stats().reclaimed, 0u);
  EXPECT_EQ(c.stats().retired, 1u);  // only the version just replaced waits
}

// Flush and drop retire too; the slots come back after the grace period.
TEST(BaselineRcu, FlushRetires) {
  constexpr std::uint32_t kSlots = 64;
  baseline_cache c(kSlots * kPageSize);
  test::lagging_grace grace(1ull << 40);
  c.set_grace_domain(&grace);
  std::mt19937_64 rng(22);
  for (std::uint64_t g = 0; g < 32; ++g) {
    auto p = page_of(rng);
    ASSERT_TRUE(c.fill({0, g}, p.h, p.bytes.data()));
  }
  c.drop_key({0, 0});
  EXPECT_EQ(c.stats().retired, 1u);
  c.flush();
  EXPECT_EQ(c.stats().entries, 0u);
  EXPECT_EQ(c.stats().retired, 32u);
  EXPECT_FALSE(c.lookup({0, 5}));
  grace.release_all();
  for (std::uint64_t g = 0; g < kSlots - c.reserve(); ++g) {
    auto p = page_of(rng);
    ASSERT_TRUE(c.fill({1, g}, p.h, p.bytes.data())) << g;
  }
  EXPECT_EQ(c.stats().reclaimed, 32u);
}

namespace {
// A page that proves it is whole: its gfn, a version, and then bytes drawn
// from both; view::hash must match the bytes, and the bytes their header.
test::page_bytes versioned_page(std::uint64_t gfn, std::uint64_t version) {
  test::page_bytes p(kPageSize);
  std::mt19937_64 r(gfn * 1000003 + version);
  for (std::size_t i = 0; i < kPageSize; i += 8) {
    std::uint64_t w = r();
    std::memcpy(p.data() + i, &w, 8);
  }
  std::memcpy(p.data(), &gfn, 8);
  std::memcpy(p.data() + 8, &version, 8);
  return p;
}
}  // namespace

// Real threads: the owner refills, evicts and flushes as fast as it can while
// two readers look pages up under liburcu. A slot rewritten under a reader
// would show a page whose hash or header does not match.
TEST(BaselineRcu, ReadersSeeWholePagesUnderLiburcu) {
  constexpr std::uint32_t kSlots = 256;
  constexpr std::uint64_t kKeys = 600;
  urcu_grace grace;
  baseline_cache c(kSlots * kPageSize);
  c.set_grace_domain(&grace);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> tries{0}, seen{0}, bad{0};

  auto reader = [&](unsigned seed) {
    urcu_grace::register_reader();
    std::mt19937_64 r(seed);
    while (!stop.load(std::memory_order_acquire)) {
      const std::uint64_t g = r() % kKeys;
      {
        urcu_grace::read_section rs;
        if (auto v = c.lookup({0, g})) {
          std::uint64_t hg;
          std::memcpy(&hg, v->data, 8);
          if (hash_page(v->data) != v->hash || hg != g)
            bad.fetch_add(1, std::memory_order_relaxed);
          seen.fetch_add(1, std::memory_order_relaxed);
        }
      }
      tries.fetch_add(1, std::memory_order_relaxed);
      std::this_thread::yield();  // 2 cores: leave some to the grace thread
    }
    urcu_grace::unregister_reader();
  };
  std::thread r1(reader, 1), r2(reader, 2);

  std::mt19937_64 rng(23);
  std::vector<std::uint64_t> version(kKeys, 0);
  std::uint64_t fills = 0;
  for (int i = 0; i < 150000; ++i) {
    const std::uint64_t g = rng() % kKeys;
    auto p = versioned_page(g, ++version[g]);
    if (c.fill({0, g}, hash_page(p.data()), p.data()))
      ++fills;
    if (i % 50000 == 25000)
      c.flush();
  }
  // Let the readers run a little against the final state as well.
  for (const std::uint64_t t = tries.load(); tries.load() < t + 1000;)
    std::this_thread::yield();
  stop.store(true, std::memory_order_release);
  r1.join();
  r2.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(seen.load(), 0u);
  EXPECT_GT(fills, 0u);
  EXPECT_GT(c.stats().reclaimed, 0u);
  std::printf("fills %llu, deferred %llu, reclaimed %llu, reader lookups %llu\n",
              static_cast<unsigned long long>(fills),
              static_cast<unsigned long long>(c.stats().fill_deferred),
              static_cast<unsigned long long>(c.stats().reclaimed),
              static_cast<unsigned long long>(seen.load()));
}
