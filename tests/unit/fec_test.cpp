// fec_test.cpp — the group FEC codec (dataplane/fec.h): byte-exact recovery
// for every erasure pattern of small groups and random patterns of large
// ones, short groups, parity checked against a plain GF(2^8) reference,
// clear errors (and nothing written) when too much is lost or an argument is
// wrong, the parameter limits, and fec_auto's rule.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include <isa-l/erasure_code.h>

#include "fec.h"

using namespace hde::dp;

namespace {

constexpr std::size_t kGuard = 64;
constexpr std::byte kGuardByte{0xA5};
constexpr std::byte kUntouched{0x5A};

// A buffer of n bytes with guard bytes after it (and before), on its own
// heap allocation, so out-of-bounds writes show as changed guards (and
// out-of-bounds reads of frames trip ASan when built with it).
struct guarded {
  std::unique_ptr<std::byte[]> mem;
  std::size_t n = 0;
  explicit guarded(std::size_t len, std::byte fill = kUntouched)
      : mem(std::make_unique<std::byte[]>(len + 2 * kGuard)), n(len) {
    std::memset(mem.get(), static_cast<int>(kGuardByte), kGuard);
    std::memset(mem.get() + kGuard, static_cast<int>(fill), len);
    std::memset(mem.get() + kGuard + len, static_cast<int>(kGuardByte), kGuard);
  }
  std::byte *data() { return mem.get() + kGuard; }
  bool guards_intact() const {
    for (std::size_t i = 0; i < kGuard; ++i)
      if (mem[i] != kGuardByte || mem[kGuard + n + i] != kGuardByte)
        return false;
    return true;
  }
  bool all(std::byte b) const {
    return std::all_of(mem.get() + kGuard, mem.get() + kGuard + n, [b](std::byte x) { return x == b; });
  }
};

// One group: k frames of random lengths (each exactly its length on the
// heap: a codec reading past a frame's end is caught by ASan), the padded
// shards, and m parity shards.
struct group {
  unsigned k, m;
  std::size_t shard_len;
  std::vector<std::unique_ptr<std::byte[]>> frames;
  std::vector<std::uint16_t> lens;
  std::vector<std::vector<std::byte>> padded;
  std::vector<guarded> parity;

  group(unsigned k_, unsigned m_, std::mt19937_64 &rng, std::size_t max_len, bool equal_lens = false)
      : k(k_), m(m_) {
    std::uniform_int_distribution<std::size_t> len_d(0, max_len);
    const std::size_t same = len_d(rng);
    std::size_t longest = 0;
    for (unsigned j = 0; j < k; ++j) {
      std::size_t n = equal_lens ? same : len_d(rng);
      // Now and then an edge: empty, one byte, around a 64-byte block, full.
      switch (rng() % 16) {
      case 0: n = 0; break;
      case 1: n = 1; break;
      case 2: n = std::min<std::size_t>(63, max_len); break;
      case 3: n = std::min<std::size_t>(64, max_len); break;
      case 4: n = std::min<std::size_t>(65, max_len); break;
      case 5: n = max_len; break;
      default: break;
      }
      if (equal_lens)
        n = same;
      lens.push_back(static_cast<std::uint16_t>(n));
      frames.push_back(std::make_unique<std::byte[]>(n == 0 ? 1 : n));
      for (std::size_t i = 0; i < n; ++i)
        frames.back()[i] = static_cast<std::byte>(rng());
      longest = std::max(longest, n);
    }
    shard_len = fec_shard_len(longest);
    for (unsigned j = 0; j < k; ++j) {
      padded.emplace_back(shard_len, std::byte{0});
      std::memcpy(padded.back().data(), frames[j].get(), lens[j]);
    }
    for (unsigned i = 0; i < m; ++i)
      parity.emplace_back(shard_len);
  }

  std::vector<const std::byte *> data_ptrs() const {
    std::vector<const std::byte *> v;
    for (auto &f : frames)
      v.push_back(f.get());
    return v;
  }
  std::vector<std::byte *> parity_ptrs() {
    std::vector<std::byte *> v;
    for (auto &p : parity)
      v.push_back(p.data());
    return v;
  }
};

// Parity by the book: byte b of parity i = XOR over j of
// (1 / ((64 + i) xor j)) * shard j[b] in GF(2^8).
std::vector<std::byte> reference_parity(const group &g, unsigned i) {
  std::vector<std::byte> p(g.shard_len, std::byte{0});
  for (unsigned j = 0; j < g.k; ++j) {
    const unsigned char c = gf_inv(static_cast<unsigned char>((64 + i) ^ j));
    for (std::size_t b = 0; b < g.shard_len; ++b)
      p[b] ^= static_cast<std::byte>(gf_mul(c, static_cast<unsigned char>(g.padded[j][b])));
  }
  return p;
}

fec_codec make(unsigned k, unsigned m, std::size_t max_frame = 9000) {
  fec_error why = fec_error::ok;
  auto c = fec_codec::create(k, m, max_frame, &why);
  EXPECT_TRUE(c.has_value()) << to_string(why);
  return std::move(*c);
}

void encode_group(fec_codec &c, group &g) {
  auto d = g.data_ptrs();
  auto p = g.parity_ptrs();
  ASSERT_EQ(c.encode(d.data(), g.lens.data(), g.k, g.m, p.data(), g.shard_len), fec_error::ok);
  for (auto &q : g.parity)
    ASSERT_TRUE(q.guards_intact());
}

// Lose the shards whose bit is set in lost (bits 0..k-1 data, k..k+m-1
// parity), decode, and check: rebuilt frames byte-exact (the whole padded
// shard), buffers of frames that arrived untouched, guards intact; or, with
// too many lost, the error and nothing written.
void lose_and_check(fec_codec &c, group &g, std::uint64_t lost_data, std::uint32_t lost_parity) {
  std::vector<const std::byte *> d = g.data_ptrs();
  std::vector<const std::byte *> p;
  unsigned nd = 0, np = 0;
  for (unsigned j = 0; j < g.k; ++j)
    if ((lost_data >> j) & 1) {
      d[j] = nullptr;
      ++nd;
    }
  for (unsigned i = 0; i < g.m; ++i) {
    p.push_back((lost_parity >> i) & 1 ? nullptr : g.parity[i].data());
    np += (lost_parity >> i) & 1;
  }
  std::vector<guarded> out;
  out.reserve(g.k);
  std::vector<std::byte *> op;
  for (unsigned j = 0; j < g.k; ++j) {
    out.emplace_back(g.shard_len);
    op.push_back(out.back().data());
  }
  const fec_decode_result r = c.decode(d.data(), g.lens.data(), g.k, p.data(), g.m, op.data(), g.shard_len);
  const bool recoverable = nd == 0 || nd + np <= g.m;
  SCOPED_TRACE(testing::Message() << "k=" << g.k << " m=" << g.m << " lost data=" << std::hex << lost_data
                                  << " lost parity=" << lost_parity);
  if (!recoverable) {
    EXPECT_EQ(r.error, fec_error::too_many_erasures);
    EXPECT_EQ(r.rebuilt, 0u);
  } else {
    ASSERT_EQ(r.error, fec_error::ok) << to_string(r.error);
    EXPECT_EQ(r.rebuilt, nd);
  }
  for (unsigned j = 0; j < g.k; ++j) {
    ASSERT_TRUE(out[j].guards_intact()) << "frame " << j;
    if (recoverable && ((lost_data >> j) & 1))
      ASSERT_EQ(std::memcmp(out[j].data(), g.padded[j].data(), g.shard_len), 0) << "frame " << j;
    else
      ASSERT_TRUE(out[j].all(kUntouched)) << "frame " << j;
  }
}

// Every pattern of lost shards (all 2^(k+m) when small, else every pattern
// of up to m + 1 lost).
void exhaustive(unsigned k, unsigned m, unsigned groups, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  fec_codec c = make(k, m);
  for (unsigned gi = 0; gi < groups; ++gi) {
    group g(k, m, rng, gi == 0 ? 1450 : 9000, gi == 0);
    encode_group(c, g);
    const unsigned n = k + m;
    for (std::uint64_t pat = 0; pat < (std::uint64_t{1} << n); ++pat) {
      if (n > 12 && static_cast<unsigned>(__builtin_popcountll(pat)) > m + 1)
        continue;
      lose_and_check(c, g, pat & ((std::uint64_t{1} << k) - 1), static_cast<std::uint32_t>(pat >> k));
      if (testing::Test::HasFatalFailure())
        return;
    }
  }
}

void random_patterns(unsigned k_max, unsigned m_max, unsigned k, unsigned groups, unsigned patterns,
                     std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  fec_codec c = make(k_max, m_max);
  for (unsigned gi = 0; gi < groups; ++gi) {
    group g(k, m_max, rng, gi % 3 == 0 ? 1450 : 9000, gi % 3 == 0);
    encode_group(c, g);
    for (unsigned pi = 0; pi < patterns; ++pi) {
      // Up to m_max + 1 lost shards, anywhere in the group.
      const unsigned want = static_cast<unsigned>(rng() % (m_max + 2));
      std::vector<unsigned> idx(k + m_max);
      for (unsigned i = 0; i < idx.size(); ++i)
        idx[i] = i;
      std::shuffle(idx.begin(), idx.end(), rng);
      std::uint64_t ld = 0;
      std::uint32_t lp = 0;
      for (unsigned i = 0; i < want; ++i)
        if (idx[i] < k)
          ld |= std::uint64_t{1} << idx[i];
        else
          lp |= std::uint32_t{1} << (idx[i] - k);
      lose_and_check(c, g, ld, lp);
      if (testing::Test::HasFatalFailure())
        return;
    }
  }
}

} // namespace

TEST(FecCodec, Limits) {
  EXPECT_EQ(fec_codec::check(1, 1, 1), fec_error::ok);
  EXPECT_EQ(fec_codec::check(64, 16, 65535), fec_error::ok);
  EXPECT_EQ(fec_codec::check(0, 2, 1500), fec_error::bad_k);
  EXPECT_EQ(fec_codec::check(65, 2, 1500), fec_error::bad_k);
  EXPECT_EQ(fec_codec::check(16, 0, 1500), fec_error::bad_m);
  EXPECT_EQ(fec_codec::check(16, 17, 1500), fec_error::bad_m);
  EXPECT_EQ(fec_codec::check(16, 2, 0), fec_error::bad_frame_len);
  EXPECT_EQ(fec_codec::check(16, 2, 65536), fec_error::bad_frame_len);
  fec_error why = fec_error::ok;
  EXPECT_FALSE(fec_codec::create(65, 2, 1500, &why).has_value());
  EXPECT_EQ(why, fec_error::bad_k);
  EXPECT_FALSE(fec_codec::create(16, 17, 1500, &why).has_value());
  EXPECT_EQ(why, fec_error::bad_m);
  EXPECT_FALSE(fec_codec::create(16, 2, 70000).has_value());
  auto c = fec_codec::create(64, 16, 65535, &why);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->k_max(), 64u);
  EXPECT_EQ(c->m_max(), 16u);
  EXPECT_EQ(c->max_shard_len(), 65536u);
  EXPECT_EQ(fec_shard_len(0), 64u);
  EXPECT_EQ(fec_shard_len(1), 64u);
  EXPECT_EQ(fec_shard_len(64), 64u);
  EXPECT_EQ(fec_shard_len(1450), 1472u);
  EXPECT_EQ(fec_shard_len(9000), 9024u);
  for (auto e : {fec_error::ok, fec_error::bad_k, fec_error::too_many_erasures, fec_error::no_memory})
    EXPECT_FALSE(to_string(e).empty());
}

TEST(FecCodec, ParityMatchesReference) {
  std::mt19937_64 rng(11);
  for (auto [k, m] : {std::pair{4u, 2u}, {8u, 2u}, {16u, 3u}, {64u, 16u}}) {
    fec_codec c = make(k, m);
    for (int rep = 0; rep < 3; ++rep) {
      group g(k, m, rng, rep == 0 ? 1450 : 3000, rep == 0);
      encode_group(c, g);
      for (unsigned i = 0; i < m; ++i)
        ASSERT_EQ(std::memcmp(g.parity[i].data(), reference_parity(g, i).data(), g.shard_len), 0)
            << "k=" << k << " m=" << m << " parity " << i;
    }
  }
}

// The code of a (k, m) group does not depend on the codec's limits, and a
// short group is the full one with zero frames at the end.
TEST(FecCodec, SameCodeWhateverTheLimits) {
  std::mt19937_64 rng(12);
  group g(10, 3, rng, 2000);
  fec_codec exact = make(10, 3);
  encode_group(exact, g);
  for (auto [k_max, m_max] : {std::pair{16u, 3u}, {64u, 16u}, {10u, 8u}}) {
    fec_codec c = make(k_max, m_max);
    std::vector<guarded> par;
    std::vector<std::byte *> pp;
    for (unsigned i = 0; i < 3; ++i) {
      par.emplace_back(g.shard_len);
      pp.push_back(par.back().data());
    }
    auto d = g.data_ptrs();
    ASSERT_EQ(c.encode(d.data(), g.lens.data(), 10, 3, pp.data(), g.shard_len), fec_error::ok);
    for (unsigned i = 0; i < 3; ++i) {
      EXPECT_EQ(std::memcmp(par[i].data(), g.parity[i].data(), g.shard_len), 0);
      EXPECT_TRUE(par[i].guards_intact());
    }
  }
  // 10 frames + 6 empty ones through a (16, 3) codec: the same parity.
  fec_codec c16 = make(16, 3);
  auto d = g.data_ptrs();
  auto lens = g.lens;
  d.resize(16, nullptr);
  lens.resize(16, 0);
  std::vector<guarded> par;
  std::vector<std::byte *> pp;
  for (unsigned i = 0; i < 3; ++i) {
    par.emplace_back(g.shard_len);
    pp.push_back(par.back().data());
  }
  ASSERT_EQ(c16.encode(d.data(), lens.data(), 16, pp.data(), g.shard_len), fec_error::ok);
  for (unsigned i = 0; i < 3; ++i)
    EXPECT_EQ(std::memcmp(par[i].data(), g.parity[i].data(), g.shard_len), 0);
}

TEST(FecCodec, EveryPattern_4_2) { exhaustive(4, 2, 8, 1); }
TEST(FecCodec, EveryPattern_8_2) { exhaustive(8, 2, 4, 2); }
TEST(FecCodec, EveryPattern_6_3) { exhaustive(6, 3, 3, 3); }
TEST(FecCodec, EveryPatternUpToMPlusOne_12_4) { exhaustive(12, 4, 2, 4); }
TEST(FecCodec, EveryPatternUpToMPlusOne_16_3) { exhaustive(16, 3, 1, 5); }

TEST(FecCodec, RandomPatterns_32_4) { random_patterns(32, 4, 32, 20, 60, 6); }
TEST(FecCodec, RandomPatterns_64_8) { random_patterns(64, 8, 64, 12, 60, 7); }
TEST(FecCodec, RandomPatterns_64_16) { random_patterns(64, 16, 64, 4, 60, 8); }

// Short groups (k < k_max): encoded and decoded by the same codec, every
// size, interleaved with full groups (the tables for another k are rebuilt).
TEST(FecCodec, ShortGroups) {
  std::mt19937_64 rng(9);
  fec_codec c = make(32, 4);
  for (unsigned k : {1u, 2u, 5u, 17u, 31u, 32u, 3u, 32u}) {
    for (int rep = 0; rep < 3; ++rep) {
      group g(k, 4, rng, 9000);
      encode_group(c, g);
      for (int pi = 0; pi < 40; ++pi) {
        std::uint64_t ld = 0;
        std::uint32_t lp = 0;
        const unsigned want = static_cast<unsigned>(rng() % 6);
        for (unsigned x = 0; x < want; ++x) {
          const unsigned i = static_cast<unsigned>(rng() % (k + 4));
          if (i < k)
            ld |= std::uint64_t{1} << i;
          else
            lp |= 1u << (i - k);
        }
        lose_and_check(c, g, ld, lp);
        if (HasFatalFailure())
          return;
      }
      // Every data frame of a group of up to 4 frames lost, parity intact.
      if (k <= 4) {
        lose_and_check(c, g, (std::uint64_t{1} << k) - 1, 0);
        if (HasFatalFailure())
          return;
      }
    }
  }
}

// Fewer parity than the codec's m_max: m is the group's, not the codec's.
TEST(FecCodec, FewerParityThanMax) {
  std::mt19937_64 rng(10);
  fec_codec c = make(16, 8);
  for (unsigned m : {1u, 2u, 8u, 3u}) {
    group g(16, m, rng, 1500);
    encode_group(c, g);
    for (unsigned i = 0; i < m; ++i)
      ASSERT_EQ(std::memcmp(g.parity[i].data(), reference_parity(g, i).data(), g.shard_len), 0);
    for (int pi = 0; pi < 50; ++pi) {
      std::uint64_t ld = 0;
      const unsigned want = static_cast<unsigned>(rng() % (m + 2));
      for (unsigned x = 0; x < want; ++x)
        ld |= std::uint64_t{1} << (rng() % 16);
      lose_and_check(c, g, ld, 0);
    }
  }
}

// The decode tables kept for a pattern serve the next group with it, and a
// different pattern in between rebuilds them.
TEST(FecCodec, RepeatedAndAlternatingPatterns) {
  std::mt19937_64 rng(13);
  fec_codec c = make(16, 2);
  for (int rep = 0; rep < 6; ++rep) {
    group g(16, 2, rng, 1450, true);
    encode_group(c, g);
    lose_and_check(c, g, 0b101, 0);
    lose_and_check(c, g, 0b101, 0);
    lose_and_check(c, g, rep % 2 ? 0b1000'0000'0000'0001 : 0b11, 0);
    lose_and_check(c, g, 0b1, 0);
    lose_and_check(c, g, 0b1, 0b1); // the same frame lost, and parity 0: parity 1 used instead
  }
}

TEST(FecCodec, ParityOnlyLossNeedsNoDecode) {
  std::mt19937_64 rng(14);
  fec_codec c = make(8, 2);
  group g(8, 2, rng, 1450);
  encode_group(c, g);
  for (std::uint32_t lp = 0; lp < 4; ++lp)
    lose_and_check(c, g, 0, lp); // rebuilt 0, outputs untouched
  // No output array is needed when nothing is missing.
  auto d = g.data_ptrs();
  const std::byte *p[2] = {nullptr, nullptr};
  const auto r = c.decode(d.data(), g.lens.data(), 8, p, 2, nullptr, g.shard_len);
  EXPECT_EQ(r.error, fec_error::ok);
  EXPECT_EQ(r.rebuilt, 0u);
}

TEST(FecCodec, TooManyErasuresWritesNothing) {
  std::mt19937_64 rng(15);
  fec_codec c = make(8, 2);
  group g(8, 2, rng, 1450);
  encode_group(c, g);
  lose_and_check(c, g, 0b111, 0);      // 3 data lost, 2 parity
  lose_and_check(c, g, 0b11, 0b1);     // 2 data lost, 1 parity left
  lose_and_check(c, g, 0b1, 0b11);     // 1 data lost, no parity
  lose_and_check(c, g, 0xff, 0);       // everything
}

TEST(FecCodec, BadArguments) {
  std::mt19937_64 rng(16);
  fec_codec c = make(8, 2, 1500);
  group g(8, 2, rng, 1500);
  auto d = g.data_ptrs();
  auto p = g.parity_ptrs();
  const auto sl = g.shard_len;
  EXPECT_EQ(c.encode(d.data(), g.lens.data(), 0, p.data(), sl), fec_error::bad_k);
  EXPECT_EQ(c.encode(d.data(), g.lens.data(), 9, p.data(), sl), fec_error::bad_k);
  EXPECT_EQ(c.encode(d.data(), g.lens.data(), 8, 0, p.data(), sl), fec_error::bad_m);
  EXPECT_EQ(c.encode(d.data(), g.lens.data(), 8, 3, p.data(), sl), fec_error::bad_m);
  EXPECT_EQ(c.encode(d.data(), g.lens.data(), 8, p.data(), 0), fec_error::bad_shard_len);
  EXPECT_EQ(c.encode(d.data(), g.lens.data(), 8, p.data(), sl + 1), fec_error::bad_shard_len);
  EXPECT_EQ(c.encode(d.data(), g.lens.data(), 8, p.data(), 1536 + 64), fec_error::bad_shard_len);
  std::vector<std::uint16_t> long_lens = g.lens;
  long_lens[3] = static_cast<std::uint16_t>(sl + 1);
  EXPECT_EQ(c.encode(d.data(), long_lens.data(), 8, p.data(), sl), fec_error::frame_too_long);
  std::vector<std::byte *> p_null = p;
  p_null[1] = nullptr;
  EXPECT_EQ(c.encode(d.data(), g.lens.data(), 8, p_null.data(), sl), fec_error::null_buffer);
  std::vector<const std::byte *> d_null = d;
  std::vector<std::uint16_t> lens1 = g.lens;
  lens1[2] = 10;
  d_null[2] = nullptr;
  EXPECT_EQ(c.encode(d_null.data(), lens1.data(), 8, p.data(), sl), fec_error::null_buffer);
  for (auto &q : g.parity)
    EXPECT_TRUE(q.all(kUntouched)) << "a failed encode wrote parity";

  ASSERT_EQ(c.encode(d.data(), g.lens.data(), 8, p.data(), sl), fec_error::ok);
  std::vector<const std::byte *> pc(p.begin(), p.end());
  guarded out(sl);
  std::vector<std::byte *> op(8, nullptr);
  op[0] = out.data();
  d[0] = nullptr;
  EXPECT_EQ(c.decode(d.data(), g.lens.data(), 8, pc.data(), 3, op.data(), sl).error, fec_error::bad_m);
  EXPECT_EQ(c.decode(d.data(), g.lens.data(), 9, pc.data(), 2, op.data(), sl).error, fec_error::bad_k);
  EXPECT_EQ(c.decode(d.data(), g.lens.data(), 8, pc.data(), 2, op.data(), 100).error, fec_error::bad_shard_len);
  EXPECT_EQ(c.decode(d.data(), long_lens.data(), 8, pc.data(), 2, op.data(), sl).error, fec_error::frame_too_long);
  d[1] = nullptr; // op[1] is nullptr
  EXPECT_EQ(c.decode(d.data(), g.lens.data(), 8, pc.data(), 2, op.data(), sl).error, fec_error::null_buffer);
  EXPECT_EQ(c.decode(d.data(), g.lens.data(), 8, pc.data(), 2, nullptr, sl).error, fec_error::null_buffer);
  EXPECT_TRUE(out.all(kUntouched));
  EXPECT_TRUE(out.guards_intact());
  d[1] = g.frames[1].get();
  const auto r = c.decode(d.data(), g.lens.data(), 8, pc.data(), 2, op.data(), sl);
  EXPECT_EQ(r.error, fec_error::ok);
  EXPECT_EQ(r.rebuilt, 1u);
  EXPECT_EQ(std::memcmp(out.data(), g.padded[0].data(), sl), 0);
  EXPECT_TRUE(out.guards_intact());
}

// The codec moves (it lives in std::optional, in a per-lcore struct).
TEST(FecCodec, Moves) {
  std::mt19937_64 rng(17);
  fec_codec a = make(8, 2);
  fec_codec b = std::move(a);
  group g(8, 2, rng, 1450);
  encode_group(b, g);
  lose_and_check(b, g, 0b11, 0);
}

// --- fec_auto -----------------------------------------------------------------

TEST(FecAuto, OffWithoutLossOrInput) {
  EXPECT_FALSE(fec_auto(0, 0.05, 1e9, 1450).on());
  EXPECT_FALSE(fec_auto(0.0005, 0.05, 1e9, 1450).on());  // below 0.1%
  EXPECT_FALSE(fec_auto(0.01, 0, 1e9, 1450).on());
  EXPECT_FALSE(fec_auto(0.01, 0.05, 0, 1450).on());
  EXPECT_FALSE(fec_auto(0.01, 0.05, 1e9, 0).on());
  EXPECT_FALSE(fec_auto(std::nan(""), 0.05, 1e9, 1450).on());
  EXPECT_FALSE(fec_auto(0.01, -1, 1e9, 1450).on());
  EXPECT_FALSE(fec_auto(0.01, 0.05, INFINITY, 1450).on());
  EXPECT_EQ(fec_auto(0, 0.05, 1e9, 1450), (fec_choice{0, 0}));
}

TEST(FecAuto, OffWhenRetransmissionIsQuick) {
  // 1 Gbit/s, 100 us: under 9 frames a round trip — a retransmission is
  // back before a 16-frame group is even sent.
  EXPECT_FALSE(fec_auto(0.02, 100e-6, 1e9, 1450).on());
  // 0.2% loss at 10 Mbit/s, 40 ms (34 frames a round trip): a hole under 7%
  // of the time.
  EXPECT_FALSE(fec_auto(0.002, 0.04, 10e6, 1450).on());
  // The same loss at 1 Gbit/s: on, with the largest group.
  EXPECT_EQ(fec_auto(0.002, 0.04, 1e9, 1450).k, 64u);
}

TEST(FecAuto, GroupFitsHalfARoundTrip) {
  // Frames per round trip W = rate x rtt / (8 x 1450).
  EXPECT_EQ(fec_auto(0.05, 0.01, 50e6, 1450).k, 16u);   // W = 43
  EXPECT_EQ(fec_auto(0.05, 0.01, 100e6, 1450).k, 32u);  // W = 86
  EXPECT_EQ(fec_auto(0.05, 0.01, 1e9, 1450).k, 64u);    // W = 862
}

TEST(FecAuto, MoreLossMoreParity) {
  const double rtts[] = {0.005, 0.02, 0.1};
  const double rates[] = {20e6, 100e6, 1e9, 10e9};
  for (double rtt : rtts)
    for (double rate : rates) {
      fec_choice prev{};
      for (double loss = 0; loss <= 0.5; loss += 0.0005) {
        const fec_choice c = fec_auto(loss, rtt, rate, 1450);
        SCOPED_TRACE(testing::Message() << "rtt " << rtt << " rate " << rate << " loss " << loss);
        if (prev.on()) {
          ASSERT_TRUE(c.on());              // once on, stays on
          ASSERT_EQ(c.k, prev.k);           // the group depends on the path only
          ASSERT_GE(c.m, prev.m);           // never less parity for more loss
        }
        if (c.on()) {
          ASSERT_GE(c.m, 1u);
          ASSERT_LE(c.m, 16u);
          ASSERT_TRUE(c.k == 16 || c.k == 32 || c.k == 64);
          // Either the 1e-3 target is met at twice the loss, or the cap on
          // spending binds.
          const bool target = fec_group_failure(c.k, c.m, std::min(1.0, 2 * loss)) < 1e-3;
          const bool capped = c.m >= std::min(16.0, std::floor(c.k * (2 * loss + 1.0 / 16)));
          ASSERT_TRUE(target || capped);
          if (c.m > 1) { // and m is the smallest meeting the target
            ASSERT_GE(fec_group_failure(c.k, c.m - 1, std::min(1.0, 2 * loss)), 1e-3);
          }
        }
        prev = c;
      }
    }
  // Strictly more at a few points: 100 Mbit/s, 50 ms.
  const auto a = fec_auto(0.002, 0.05, 100e6, 1450), b = fec_auto(0.02, 0.05, 100e6, 1450),
             d = fec_auto(0.1, 0.05, 100e6, 1450);
  EXPECT_TRUE(a.on());
  EXPECT_LT(a.m, b.m);
  EXPECT_LT(b.m, d.m);
}

TEST(FecAuto, GroupFailure) {
  EXPECT_EQ(fec_group_failure(16, 2, 0), 0);
  EXPECT_EQ(fec_group_failure(16, 2, 1), 1);
  // k + m = 3, m = 1: P(2 or 3 lost) = 3 p^2 (1-p) + p^3.
  const double p = 0.1;
  EXPECT_NEAR(fec_group_failure(2, 1, p), 3 * p * p * (1 - p) + p * p * p, 1e-12);
  EXPECT_GT(fec_group_failure(16, 2, 0.02), fec_group_failure(16, 3, 0.02));
  EXPECT_LT(fec_group_failure(16, 2, 0.01), fec_group_failure(16, 2, 0.02));
}
