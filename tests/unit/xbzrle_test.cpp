// xbzrle_test.cpp — XBZRLE delta: round trip on random mutations, budget
// early-out, and rejection of malformed deltas without out-of-bounds writes.
#include <gtest/gtest.h>

#include <cstring>

#include "delta/xbzrle.h"
#include "test_pages.h"

using namespace hde;

namespace {
std::vector<std::byte> apply(const std::vector<std::byte> &old, bytes_view d, error &e) {
  std::vector<std::byte> out = old;
  e = xbzrle_apply(d, page_buf{out.data(), kPageSize});
  return out;
}
}  // namespace

TEST(Xbzrle, IdenticalPagesGiveEmptyDelta) {
  std::mt19937_64 rng(3);
  auto p = test::make_page(test::page_kind::text, rng);
  std::byte buf[64];
  auto r = xbzrle_encode(p.data(), p.data(), buf);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value, 0u);
}

TEST(Xbzrle, RoundTripRandomMutations) {
  std::mt19937_64 rng(4);
  std::vector<std::byte> buf(kPageSize * 2);
  for (int iter = 0; iter < 3000; ++iter) {
    auto old = test::random_page(rng);
    auto cur = old;
    test::mutate(cur, rng, 1 + static_cast<int>(rng() % 40), 1 + static_cast<int>(rng() % 64));
    auto r = xbzrle_encode(old.data(), cur.data(), buf);
    ASSERT_TRUE(r.ok());
    error e;
    auto rebuilt = apply(old, {buf.data(), r.value}, e);
    ASSERT_EQ(e, error::ok);
    ASSERT_EQ(rebuilt, cur) << "iteration " << iter;
  }
}

TEST(Xbzrle, EdgesOfThePage) {
  std::mt19937_64 rng(5);
  auto old = test::make_page(test::page_kind::records, rng);
  std::vector<std::byte> buf(kPageSize * 2);
  for (std::size_t pos : {std::size_t{0}, std::size_t{1}, kPageSize - 2, kPageSize - 1}) {
    auto cur = old;
    cur[pos] ^= std::byte{0xff};
    auto r = xbzrle_encode(old.data(), cur.data(), buf);
    ASSERT_TRUE(r.ok());
    EXPECT_LE(r.value, 5u);
    error e;
    EXPECT_EQ(apply(old, {buf.data(), r.value}, e), cur);
    EXPECT_EQ(e, error::ok);
  }
}

TEST(Xbzrle, SmallChangeGivesSmallDelta) {
  std::mt19937_64 rng(6);
  auto old = test::make_page(test::page_kind::text, rng);
  auto cur = old;
  std::memset(cur.data() + 1000, 0x41, 8);
  cur[1000] = ~old[1000];
  std::vector<std::byte> buf(kPageSize);
  auto r = xbzrle_encode(old.data(), cur.data(), buf);
  ASSERT_TRUE(r.ok());
  EXPECT_LE(r.value, 4u + 8u);
}

TEST(Xbzrle, BudgetStopsDenseChanges) {
  std::mt19937_64 rng(7);
  auto old = test::make_page(test::page_kind::random, rng);
  auto cur = test::make_page(test::page_kind::random, rng);
  std::vector<std::byte> buf(512);
  auto r = xbzrle_encode(old.data(), cur.data(), buf);
  EXPECT_EQ(r.err, error::no_space);
}

TEST(Xbzrle, MalformedDeltasAreRejected) {
  std::mt19937_64 rng(8);
  auto old = test::make_page(test::page_kind::text, rng);
  auto check = [&](std::vector<unsigned char> bytes) {
    std::vector<std::byte> d(bytes.size());
    std::memcpy(d.data(), bytes.data(), bytes.size());
    error e;
    apply(old, {d.data(), d.size()}, e);
    return e;
  };
  EXPECT_EQ(check({0x05}), error::bad_delta);                    // missing second length
  EXPECT_EQ(check({0x00, 0x00}), error::bad_delta);              // empty changed run
  EXPECT_EQ(check({0x00, 0x04, 1, 2}), error::bad_delta);        // run longer than data
  EXPECT_EQ(check({0x80, 0x20, 0x01, 9}), error::bad_delta);     // zrun 4096 + 1 > page
  EXPECT_EQ(check({0xff, 0x1f, 0x02, 1, 2}), error::bad_delta);  // past the end
  EXPECT_EQ(check({0x80, 0x80, 0x01, 0x01, 9}), error::bad_delta);  // 3-byte length
  EXPECT_EQ(check({0x00, 0x01, 7}), error::ok);
}

TEST(Xbzrle, RandomGarbageNeverWritesOutside) {
  std::mt19937_64 rng(9);
  std::vector<std::byte> guard(kPageSize + 128, std::byte{0x77});
  for (int iter = 0; iter < 20000; ++iter) {
    std::vector<std::byte> d(rng() % 64);
    for (auto &b : d)
      b = std::byte(rng() % 4 == 0 ? rng() % 8 : rng());
    (void)xbzrle_apply({d.data(), d.size()}, page_buf{guard.data() + 64, kPageSize});
    for (int i = 0; i < 64; ++i) {
      ASSERT_EQ(guard[i], std::byte{0x77});
      ASSERT_EQ(guard[64 + kPageSize + i], std::byte{0x77});
    }
  }
}

TEST(Xbzrle, XorAndDiffCount) {
  std::mt19937_64 rng(10);
  auto a = test::make_page(test::page_kind::text, rng);
  auto b = a;
  test::mutate(b, rng, 5, 4);
  std::vector<std::byte> x(kPageSize), back(kPageSize);
  xor_page(a.data(), b.data(), x.data());
  xor_page(a.data(), x.data(), back.data());
  EXPECT_EQ(back, b);
  std::size_t nz = 0;
  for (auto v : x)
    nz += v != std::byte{0};
  EXPECT_EQ(nz, count_diff_bytes(a.data(), b.data()));
}

namespace hde::detail {
result<std::size_t> xbzrle_encode_generic(const std::byte *, const std::byte *, bytes_buf);
result<std::size_t> xbzrle_encode_avx2(const std::byte *, const std::byte *, bytes_buf);
std::size_t count_diff_bytes_generic(const std::byte *, const std::byte *);
std::size_t count_diff_bytes_avx2(const std::byte *, const std::byte *);
}  // namespace hde::detail

TEST(Xbzrle, VectorCopyMatchesPortableCopy) {
  if (!__builtin_cpu_supports("avx2"))
    GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937_64 rng(11);
  std::vector<std::byte> a(kPageSize * 2), b(kPageSize * 2);
  for (int iter = 0; iter < 2000; ++iter) {
    auto old = test::random_page(rng);
    auto cur = old;
    test::mutate(cur, rng, 1 + static_cast<int>(rng() % 60), 1 + static_cast<int>(rng() % 80));
    std::size_t budget = 64 + rng() % (2 * kPageSize - 64);
    auto g = detail::xbzrle_encode_generic(old.data(), cur.data(), {a.data(), budget});
    auto v = detail::xbzrle_encode_avx2(old.data(), cur.data(), {b.data(), budget});
    ASSERT_EQ(g.err, v.err);
    ASSERT_EQ(g.value, v.value);
    ASSERT_EQ(std::memcmp(a.data(), b.data(), g.value), 0);
    ASSERT_EQ(detail::count_diff_bytes_generic(old.data(), cur.data()),
              detail::count_diff_bytes_avx2(old.data(), cur.data()));
  }
}
