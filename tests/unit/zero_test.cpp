// zero_test.cpp — zero-page detection: dispatched implementation agrees with
// the portable one for a non-zero byte at every position.
#include <gtest/gtest.h>

#include <vector>

#include "page/zero.h"

using namespace hde;

TEST(Zero, AllZeroPageIsZero) {
  alignas(64) std::byte p[kPageSize] = {};
  EXPECT_TRUE(is_zero_page(p));
  EXPECT_TRUE(is_zero_page_generic(p));
}

TEST(Zero, OneNonZeroByteAnywhereIsSeen) {
  alignas(64) std::byte p[kPageSize] = {};
  for (std::size_t i = 0; i < kPageSize; ++i) {
    for (unsigned v : {1u, 0x80u, 0xffu}) {
      p[i] = std::byte(v);
      ASSERT_FALSE(is_zero_page(p)) << "byte " << i << " value " << v << " impl " << is_zero_impl();
      ASSERT_FALSE(is_zero_page_generic(p)) << "byte " << i;
      p[i] = std::byte{0};
    }
  }
  EXPECT_TRUE(is_zero_page(p));
}

TEST(Zero, UnalignedPages) {
  std::vector<std::byte> buf(kPageSize + 64, std::byte{0});
  for (std::size_t off = 0; off < 64; off += 7) {
    EXPECT_TRUE(is_zero_page(buf.data() + off));
    buf[off + kPageSize - 1] = std::byte{1};
    EXPECT_FALSE(is_zero_page(buf.data() + off));
    buf[off + kPageSize - 1] = std::byte{0};
  }
}

TEST(Zero, ReportsImplementation) {
  std::string impl = is_zero_impl();
  EXPECT_TRUE(impl == "avx512" || impl == "avx2" || impl == "generic") << impl;
}
