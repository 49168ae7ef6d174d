// wire_test.cpp — frame header checks and CRC.
#include <gtest/gtest.h>

#include <cstddef>
#include <vector>

#include "wire/format.h"

using namespace hde;
using namespace hde::wire;

namespace {
std::vector<std::byte> make_frame(std::size_t payload) {
  std::vector<std::byte> f(kFrameHeaderSize + payload);
  frame_header h{};
  h.magic = kMagic;
  h.version = kVersion;
  h.type = static_cast<std::uint8_t>(frame_type::data);
  h.stream = 3;
  h.epoch = 7;
  h.seq = 42;
  h.payload_len = static_cast<std::uint16_t>(payload);
  std::memcpy(f.data(), &h, sizeof h);
  for (std::size_t i = 0; i < payload; ++i)
    f[kFrameHeaderSize + i] = std::byte(i * 7);
  seal_frame(f);
  return f;
}
}  // namespace

TEST(Wire, Crc32cKnownVector) {
  // CRC-32C of "123456789" is 0xE3069283.
  const char *s = "123456789";
  EXPECT_EQ(~crc32c(s, 9, ~0u), 0xE3069283u);
}

TEST(Wire, SealedFrameParses) {
  auto f = make_frame(100);
  frame_header h;
  ASSERT_EQ(parse_frame_header(f, h), error::ok);
  EXPECT_EQ(h.seq, 42u);
  EXPECT_EQ(h.stream, 3);
  EXPECT_EQ(h.epoch, 7u);
  EXPECT_EQ(h.payload_len, 100);
}

TEST(Wire, EveryBitFlipIsCaught) {
  auto f = make_frame(64);
  frame_header h;
  for (std::size_t i = 0; i < f.size(); ++i)
    for (int bit = 0; bit < 8; ++bit) {
      f[i] ^= std::byte(1u << bit);
      EXPECT_NE(parse_frame_header(f, h), error::ok) << "byte " << i << " bit " << bit;
      f[i] ^= std::byte(1u << bit);
    }
  EXPECT_EQ(parse_frame_header(f, h), error::ok);
}

TEST(Wire, HeaderErrorsAreNamed) {
  frame_header h;
  auto f = make_frame(16);
  EXPECT_EQ(parse_frame_header({f.data(), 10}, h), error::truncated);
  EXPECT_EQ(parse_frame_header({f.data(), f.size() - 1}, h), error::truncated);
  auto g = f;
  g.push_back(std::byte{0});
  EXPECT_EQ(parse_frame_header(g, h), error::bad_length);
  g = f;
  g[0] = std::byte{0};
  EXPECT_EQ(parse_frame_header(g, h), error::bad_magic);
  g = f;
  g[2] = std::byte{9};
  EXPECT_EQ(parse_frame_header(g, h), error::bad_version);
  g = f;
  g[3] = std::byte{77};
  EXPECT_EQ(parse_frame_header(g, h), error::bad_frame_type);
  g = f;
  g[kFrameHeaderSize + 3] ^= std::byte{1};
  EXPECT_EQ(parse_frame_header(g, h), error::bad_crc);
}

TEST(Wire, FrameSizes) {
  EXPECT_EQ(frame_size_for_mtu(1500), 1472u);
  EXPECT_EQ(frame_size_for_mtu(9000), 8972u);
}
