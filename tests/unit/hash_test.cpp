// hash_test.cpp — content hash: stable, sensitive to every byte.
#include <gtest/gtest.h>

#include <set>
#include <utility>

#include "page/hash.h"
#include "test_pages.h"

using namespace hde;

TEST(Hash, SameContentSameHash) {
  std::mt19937_64 rng(1);
  auto a = test::make_page(test::page_kind::text, rng);
  auto b = a;
  EXPECT_EQ(hash_page(a.data()), hash_page(b.data()));
  EXPECT_EQ(hash_page(a.data()), hash_bytes({a.data(), a.size()}));
}

TEST(Hash, EveryBitChangesTheHash) {
  std::mt19937_64 rng(2);
  auto p = test::make_page(test::page_kind::records, rng);
  const content_hash h0 = hash_page(p.data());
  std::set<std::pair<std::uint64_t, std::uint64_t>> seen{{h0.lo, h0.hi}};
  for (std::size_t i = 0; i < kPageSize; i += 61) {
    p[i] ^= std::byte{0x10};
    content_hash h = hash_page(p.data());
    EXPECT_NE(h, h0);
    EXPECT_TRUE(seen.insert({h.lo, h.hi}).second) << "repeat at byte " << i;
    p[i] ^= std::byte{0x10};
  }
  EXPECT_EQ(hash_page(p.data()), h0);
}
