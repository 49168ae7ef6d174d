// baseline_test.cpp — the bounded baseline cache and its mirror: lookups,
// dedup confirmation, eviction under pressure, flush, and agreement of
// generations between sender and receiver.
#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "baseline/cache.h"
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
