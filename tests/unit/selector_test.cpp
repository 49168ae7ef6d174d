// selector_test.cpp — the hybrid-mode selector picks the arm with the best
// goodput for the link, tries every arm first, keeps exploring, and follows
// a change in costs.
#include <gtest/gtest.h>

#include "engine/selector.h"

using namespace hde;

namespace {
// Two arms: fast but large (LZ4-like) and slow but small (zstd-like).
const selector_arm kArms[] = {{{codec_id::lz4, 4}, 65536}, {{codec_id::zstd, 6}, 262144}};
constexpr double kFastSpp = 2e-6, kFastBpp = 1600;  // 500k pages/s, 1600 B/page
constexpr double kSlowSpp = 10e-6, kSlowBpp = 900;  // 100k pages/s, 900 B/page

void feed(selector &s, unsigned a, double spp, double bpp) {
  s.report(a, 100, static_cast<std::uint64_t>(bpp * 100), spp * 100);
}
}  // namespace

TEST(Selector, TriesEveryArmFirst) {
  selector s(kArms, 0.0);
  EXPECT_EQ(s.choose(0), 0u);
  feed(s, 0, kFastSpp, kFastBpp);
  EXPECT_EQ(s.choose(0), 1u);
  feed(s, 1, kSlowSpp, kSlowBpp);
  EXPECT_EQ(s.reports(0), 1u);
  EXPECT_EQ(s.reports(1), 1u);
}

TEST(Selector, SlowLinkSpendsCpuFastLinkSavesIt) {
  selector s(kArms, 0.0);
  feed(s, 0, kFastSpp, kFastBpp);
  feed(s, 1, kSlowSpp, kSlowBpp);
  // 10 MB/s: link-bound, 6250 vs 11111 pages/s -> the small arm.
  EXPECT_EQ(s.choose(10e6), 1u);
  EXPECT_NEAR(s.goodput(1, 10e6), 10e6 / kSlowBpp, 1);
  // 10 GB/s: CPU-bound, 500k vs 100k pages/s -> the fast arm.
  EXPECT_EQ(s.choose(10e9), 0u);
  EXPECT_NEAR(s.goodput(0, 10e9), 1 / kFastSpp, 1);
  // No link figure: CPU decides.
  EXPECT_EQ(s.choose(0), 0u);
}

TEST(Selector, FollowsAChangeInCost) {
  selector s(kArms, 0.0);
  feed(s, 0, kFastSpp, kFastBpp);
  feed(s, 1, kSlowSpp, kSlowBpp);
  ASSERT_EQ(s.choose(10e9), 0u);
  // The data turns incompressible for LZ4 and it becomes slow: reports move
  // its average until the other arm wins.
  for (int i = 0; i < 20; ++i)
    feed(s, 0, 50e-6, 4100);
  EXPECT_EQ(s.choose(10e9), 1u);
}

TEST(Selector, ExploresNowAndThen) {
  selector s(kArms, 0.2, 42);
  feed(s, 0, kFastSpp, kFastBpp);
  feed(s, 1, kSlowSpp, kSlowBpp);
  int other = 0;
  for (int i = 0; i < 1000; ++i)
    other += s.choose(10e9) == 1;
  EXPECT_GT(other, 50);   // about 10 %: a fifth of choices explore, half of those the other arm
  EXPECT_LT(other, 200);
}
