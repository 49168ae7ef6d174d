// engine_test.cpp — the ladder end to end: random memory images over several
// rounds, every mode, several codecs, MTUs and cache sizes; the decoder must
// rebuild every page byte-exact and every rung must be used.
#include <gtest/gtest.h>

#include <tuple>

#include "engine/decoder.h"
#include "engine/encoder.h"
#include "test_grace.h"
#include "test_pages.h"
#include "test_wire.h"
#include "wire/format.h"

using namespace hde;

namespace {

struct scenario {
  mode m;
  const char *codec;  // "" = the mode's default
  std::size_t mtu;
  std::size_t cache_pages;
  unsigned grace_lag = 0;  // > 0: baselines under a lagging RCU domain (test_grace.h)
};

std::string name_of(const testing::TestParamInfo<scenario> &i) {
  std::string c = i.param.codec[0] ? i.param.codec : "default";
  for (auto &ch : c)
    if (ch == ':')
      ch = '_';
  return std::string(mode_name(i.param.m)) + "_" + c + "_mtu" + std::to_string(i.param.mtu) +
         "_cache" + std::to_string(i.param.cache_pages) +
         (i.param.grace_lag ? "_rcu" + std::to_string(i.param.grace_lag) : "");
}

class EngineRoundTrip : public testing::TestWithParam<scenario> {};

TEST_P(EngineRoundTrip, RoundsRebuildByteExact) {
  const scenario sc = GetParam();
  encoder_config cfg = encoder_config::for_mode(sc.m);
  if (sc.codec[0]) {
    auto c = parse_codec(sc.codec);
    ASSERT_TRUE(c);
    cfg.codec() = *c;
  }
  cfg.max_frame = wire::frame_size_for_mtu(sc.mtu);
  cfg.cache_bytes = sc.cache_pages * kPageSize;
  cfg.try_xor = true;

  test::frame_list out;
  encoder enc(cfg, out);
  test::lagging_grace grace(sc.grace_lag);
  if (sc.grace_lag)
    enc.set_grace_domain(&grace);
  test::map_sink sink;
  decoder dec({}, sink);

  std::mt19937_64 rng(1234);
  constexpr std::uint64_t kPages = 600;
  constexpr std::uint32_t kVms = 2;
  std::vector<std::vector<test::page_bytes>> mem(kVms, std::vector<test::page_bytes>(kPages));
  for (auto &vm : mem)
    for (std::uint64_t g = 0; g < kPages; ++g)
      vm[g] = (g % 10 == 3 && g > 20) ? vm[g - 17] : test::random_page(rng);

  std::size_t applied = 0;
  for (std::uint32_t round = 0; round < 4; ++round) {
    std::vector<page_in> burst;
    for (std::uint32_t vm = 0; vm < kVms; ++vm)
      for (std::uint64_t g = 0; g < kPages; ++g) {
        if (round > 0) {
          auto r = rng() % 100;
          if (r < 70)
            continue;  // clean
          if (r < 88)
            test::mutate(mem[vm][g], rng, 1 + rng() % 6, 1 + rng() % 24);
          else if (r < 94)
            mem[vm][g] = test::random_page(rng);
          else
            mem[vm][g] = mem[vm][(g + 31) % kPages];  // a copy: dedup
        }
        burst.push_back({{vm, g}, mem[vm][g].data()});
      }
    for (std::size_t i = 0; i < burst.size(); i += 32)
      enc.encode(burst.data() + i, std::min<std::size_t>(32, burst.size() - i));
    enc.mark_round(0, round, burst.size(), round == 3);
    for (; applied < out.frames.size(); ++applied)
      ASSERT_EQ(dec.on_frame(out.frames[applied]), error::ok) << "frame " << applied;
    for (std::uint32_t vm = 0; vm < kVms; ++vm)
      for (std::uint64_t g = 0; g < kPages; ++g)
        ASSERT_EQ(sink.pages[std::make_pair(vm, g)], mem[vm][g]) << "round " << round << " vm " << vm << " gfn " << g;
  }
  ASSERT_EQ(sink.marks.size(), 4u);
  EXPECT_TRUE(sink.marks.back().last);

  const encoder_stats &s = enc.stats();
  std::uint64_t sum = 0;
  for (auto n : s.rung_pages)
    sum += n;
  EXPECT_EQ(sum, s.pages_in);
  EXPECT_GT(s.rung_pages[static_cast<int>(rung::zero)], 0u);
  EXPECT_GT(s.rung_pages[static_cast<int>(rung::page)], 0u);
  if (sc.cache_pages >= kVms * kPages) {  // everything fits: every rung is used
    EXPECT_GT(s.rung_pages[static_cast<int>(rung::ref)], 0u);
    EXPECT_GT(s.rung_pages[static_cast<int>(rung::delta)], 0u);
  } else if (sc.cache_pages == 0) {
    EXPECT_EQ(s.rung_pages[static_cast<int>(rung::ref)], 0u);
    EXPECT_EQ(s.rung_pages[static_cast<int>(rung::delta)], 0u);
  }
  const decoder_stats &d = dec.stats();
  for (std::size_t k = 0; k < kRungCount; ++k)
    EXPECT_EQ(d.rung_pages[k], s.rung_pages[k]) << rung_name(static_cast<rung>(k));
  if (sc.grace_lag && sc.cache_pages < kVms * kPages) {  // the reserve ran dry at times
    EXPECT_GT(enc.baselines().stats().fill_deferred, 0u);
    EXPECT_GT(enc.baselines().stats().reclaimed, 0u);
  }
  // Frames respect the size limit.
  for (const auto &f : out.frames)
    EXPECT_LE(f.size(), cfg.max_frame);
}

INSTANTIATE_TEST_SUITE_P(
    Modes, EngineRoundTrip,
    testing::Values(scenario{mode::datacenter, "", 1500, 4096}, scenario{mode::datacenter, "", 9000, 4096},
                    scenario{mode::datacenter, "", 576, 4096}, scenario{mode::datacenter, "", 1500, 64},
                    scenario{mode::datacenter, "", 1500, 0}, scenario{mode::datacenter, "lz4:8", 1500, 4096},
                    scenario{mode::datacenter, "zstd:1", 1500, 4096}, scenario{mode::datacenter, "igzip:1", 1500, 4096},
                    scenario{mode::datacenter, "igzip:3", 9000, 4096}, scenario{mode::datacenter, "raw", 1500, 4096},
                    scenario{mode::internet, "", 1500, 4096}, scenario{mode::internet, "", 9000, 64},
                    scenario{mode::internet, "zstd:19", 1500, 4096}, scenario{mode::internet, "lz4", 1500, 4096},
                    scenario{mode::internet, "igzip:2", 1500, 4096}, scenario{mode::internet, "raw", 576, 4096},
                    scenario{mode::hybrid, "", 1500, 4096},
                    // Baselines under RCU: fresh slots per version, reuse after a grace period.
                    scenario{mode::datacenter, "", 1500, 4096, 64}, scenario{mode::datacenter, "", 1500, 64, 200},
                    scenario{mode::internet, "", 9000, 64, 200}),
    name_of);

// Mode, codec and batching switched live between bursts (hdectl set mode /
// set codec): every page still rebuilds byte-exact.
TEST(Engine, ReconfigureMidStream) {
  test::frame_list out;
  encoder enc(encoder_config::for_mode(mode::datacenter), out);
  test::map_sink sink;
  decoder dec({}, sink);
  std::mt19937_64 rng(77);
  std::vector<test::page_bytes> mem(400);
  for (auto &p : mem)
    p = test::random_page(rng);
  const mode modes[] = {mode::internet, mode::hybrid, mode::datacenter, mode::internet};
  std::size_t applied = 0;
  for (int round = 0; round < 8; ++round) {
    auto c = encoder_config::for_mode(modes[round % 4]);
    if (round == 5)
      c.batch_codec = {codec_id::igzip, 2};
    c.link_bytes_per_s = round % 2 ? 1e6 : 1e10;
    enc.reconfigure(c);
    if (round == 3)
      (void)enc.resize_cache(64 * kPageSize);  // a new INIT: the mirror follows
    if (round == 6)
      (void)enc.resize_cache(4096 * kPageSize);
    std::vector<page_in> burst;
    for (std::uint64_t g = 0; g < mem.size(); ++g) {
      if (round > 0 && rng() % 3 != 0)
        continue;
      if (round > 0)
        test::mutate(mem[g], rng, 3, 16);
      burst.push_back({{0, g}, mem[g].data()});
    }
    enc.encode(burst.data(), burst.size());
    enc.mark_round(0, static_cast<std::uint32_t>(round), burst.size(), round == 7);
    for (; applied < out.frames.size(); ++applied)
      ASSERT_EQ(dec.on_frame(out.frames[applied]), error::ok) << "round " << round;
    for (std::uint64_t g = 0; g < mem.size(); ++g)
      ASSERT_EQ(sink.pages[std::make_pair(0u, g)], mem[g]) << "round " << round << " gfn " << g;
  }
  EXPECT_EQ(enc.config().m, mode::internet);
}

// Invariant 1: a page the receiver cannot rebuild is asked for again, never
// guessed. The receiver's mirror loses baselines at random; every REF or
// DELTA that needed one loses its page (reported, the rest of the frame still
// applies), the sender repairs the lost pages, and every image is exact.
TEST(Engine, LostBaselinesAreRepaired) {
  for (mode m : {mode::datacenter, mode::internet}) {
    test::frame_list out;
    encoder_config cfg = encoder_config::for_mode(m);
    cfg.cache_bytes = 512 * kPageSize;
    encoder enc(cfg, out);
    test::map_sink sink;
    decoder dec({}, sink);
    std::mt19937_64 rng(4242);
    std::vector<test::page_bytes> mem(400);
    for (std::size_t g = 0; g < mem.size(); ++g)
      mem[g] = (g % 7 == 3 && g > 10) ? mem[g - 9] : test::random_page(rng);
    std::size_t applied = 0, repaired = 0;
    for (std::uint32_t round = 0; round < 5; ++round) {
      std::vector<page_in> burst;
      for (std::uint64_t g = 0; g < mem.size(); ++g) {
        if (round > 0 && rng() % 3 != 0)
          continue;
        if (round > 0)
          test::mutate(mem[g], rng, 2, 12);
        burst.push_back({{0, g}, mem[g].data()});
      }
      enc.encode(burst.data(), burst.size());
      enc.mark_round(0, round, burst.size(), round == 4);
      // Deliver, forgetting a baseline slot every few frames; then repair
      // what was lost, until nothing is missing.
      for (;;) {
        for (; applied < out.frames.size(); ++applied) {
          if (applied % 5 == 4)
            dec.forget_slot(static_cast<std::uint32_t>(rng() % dec.mirror_slots()));
          const error e = dec.on_frame(out.frames[applied]);
          ASSERT_TRUE(e == error::ok || e == error::stale_baseline) << to_string(e);
        }
        if (sink.lost.empty())
          break;
        std::vector<page_in> again;
        for (page_key k : sink.lost)
          again.push_back({k, mem[k.gfn].data()});
        repaired += again.size();
        sink.lost.clear();
        enc.repair(again.data(), again.size());
        enc.flush();
      }
      for (std::uint64_t g = 0; g < mem.size(); ++g)
        ASSERT_EQ(sink.pages[std::make_pair(0u, g)], mem[g]) << mode_name(m) << " round " << round << " gfn " << g;
    }
    EXPECT_GT(repaired, 0u) << mode_name(m);
    EXPECT_EQ(enc.stats().repairs, repaired);
    EXPECT_EQ(dec.stats().pages_lost, repaired);
  }
}

// set_codec forces the codec of the mode's path: batches in datacenter mode.
TEST(Engine, SetCodecTakesEffect) {
  test::frame_list out;
  encoder enc(encoder_config::for_mode(mode::datacenter), out);
  std::mt19937_64 rng(3);
  std::vector<test::page_bytes> pages;
  for (int i = 0; i < 64; ++i)
    pages.push_back(test::make_page(test::page_kind::text, rng));
  enc.set_codec({codec_id::zstd, 3});
  for (std::uint64_t g = 0; g < pages.size(); ++g)
    enc.encode({{0, g}, pages[g].data()});
  enc.flush();
  EXPECT_EQ(enc.config().batch_codec, (codec_spec{codec_id::zstd, 3}));
  EXPECT_GT(enc.stats().codec_bytes_in[static_cast<std::size_t>(codec_id::zstd)], 0u);
  EXPECT_EQ(enc.stats().codec_bytes_in[static_cast<std::size_t>(codec_id::lz4)], 0u);
}

TEST(Engine, ZeroRunsShareOneRecord) {
  test::frame_list out;
  encoder enc(encoder_config::for_mode(mode::datacenter), out);
  std::vector<std::byte> zero(kPageSize, std::byte{0});
  std::vector<page_in> in;
  for (std::uint64_t g = 0; g < 1000; ++g)
    in.push_back({{0, g}, zero.data()});
  enc.encode(in.data(), in.size());
  enc.flush();
  EXPECT_EQ(enc.stats().rung_pages[static_cast<int>(rung::zero)], 1000u);
  EXPECT_EQ(enc.stats().frames, 2u);  // the INIT frame, then one frame
  // 2 frame headers + INIT (header and 24-byte body) + one ZERO record,
  // inside one batch record.
  EXPECT_LE(enc.stats().frame_bytes, 2 * 32u + (8u + 24u) + 24u + 16u);
}

// QEMU's bytes besides pages (OPAQUE): in every mode, any size (split into
// pieces of kMaxOpaquePiece, flags on the last one only), in order with the
// pages and marks around them; an empty piece still carries its flags.
TEST(Engine, OpaqueBytesArriveInOrderWithPages) {
  for (mode m : {mode::datacenter, mode::internet, mode::hybrid}) {
    SCOPED_TRACE(mode_name(m));
    test::frame_list out;
    encoder enc(encoder_config::for_mode(m), out);
    std::mt19937_64 rng(9);
    std::vector<test::page_bytes> pages;
    for (int i = 0; i < 50; ++i)
      pages.push_back(test::make_page(test::page_kind::random, rng));
    std::vector<std::byte> big(3 * wire::kMaxOpaquePiece + 100);
    for (auto &b : big)
      b = static_cast<std::byte>(rng());
    const std::vector<std::byte> small{std::byte{1}, std::byte{2}, std::byte{3}};
    enc.opaque(0, 1, 0, small);
    for (std::uint64_t g = 0; g < 25; ++g)
      enc.encode({{0, g}, pages[g].data()});
    enc.opaque(0, 1, wire::kOpaqueChunkEnd, big);
    enc.mark_round(0, 1, 25, false);
    for (std::uint64_t g = 25; g < 50; ++g)
      enc.encode({{0, g}, pages[g].data()});
    enc.opaque(0, 2, wire::kOpaqueStreamEnd, {});
    enc.mark_round(0, 2, 25, true);
    enc.flush();
    EXPECT_EQ(enc.stats().opaque_bytes, small.size() + big.size());

    test::map_sink sink;
    decoder dec({}, sink);
    for (auto &f : out.frames)
      ASSERT_EQ(dec.on_frame(f), error::ok);
    ASSERT_EQ(sink.opaque.size(), 1u + 4u + 1u);
    EXPECT_EQ(sink.opaque[0].bytes, small);
    EXPECT_EQ(sink.opaque[0].pages_before, 0u);
    std::vector<std::byte> got;
    for (int i = 1; i <= 4; ++i) {
      EXPECT_EQ(sink.opaque[i].chunk, 1u);
      EXPECT_LE(sink.opaque[i].bytes.size(), wire::kMaxOpaquePiece);
      EXPECT_EQ(sink.opaque[i].flags, i == 4 ? wire::kOpaqueChunkEnd : 0u);
      EXPECT_EQ(sink.opaque[i].pages_before, 25u);  // after the first 25 pages
      EXPECT_EQ(sink.opaque[i].marks_before, 0u);   // before the mark
      got.insert(got.end(), sink.opaque[i].bytes.begin(), sink.opaque[i].bytes.end());
    }
    EXPECT_EQ(got, big);
    EXPECT_EQ(sink.opaque[5].flags, wire::kOpaqueStreamEnd);
    EXPECT_TRUE(sink.opaque[5].bytes.empty());
    EXPECT_EQ(sink.opaque[5].pages_before, 50u);
    EXPECT_EQ(sink.opaque[5].marks_before, 1u);
    EXPECT_EQ(dec.stats().opaque_bytes, small.size() + big.size());
    for (std::uint64_t g = 0; g < 50; ++g)
      EXPECT_EQ(sink.pages[std::make_pair(0u, g)], std::vector<std::byte>(pages[g].begin(), pages[g].end()));
  }
}

TEST(Engine, FramesCarryConsecutiveSequenceNumbers) {
  test::frame_list out;
  auto cfg = encoder_config::for_mode(mode::datacenter);
  cfg.stream = 5;
  cfg.epoch = 99;
  encoder enc(cfg, out);
  std::mt19937_64 rng(5);
  std::vector<test::page_bytes> pages;
  for (int i = 0; i < 200; ++i)
    pages.push_back(test::make_page(test::page_kind::random, rng));
  for (std::uint64_t g = 0; g < pages.size(); ++g)
    enc.encode({{0, g}, pages[g].data()});
  enc.flush();
  ASSERT_GT(out.frames.size(), 100u);
  for (std::size_t i = 0; i < out.frames.size(); ++i) {
    wire::frame_header h;
    ASSERT_EQ(wire::parse_frame_header(out.frames[i], h), error::ok);
    EXPECT_EQ(h.seq, i);
    EXPECT_EQ(h.stream, 5);
    EXPECT_EQ(h.epoch, 99u);
  }
}

TEST(Engine, DecoderRejectsGapsAndReplays) {
  test::frame_list out;
  encoder enc(encoder_config::for_mode(mode::datacenter), out);
  std::mt19937_64 rng(6);
  std::vector<test::page_bytes> pages;
  for (int i = 0; i < 20; ++i)
    pages.push_back(test::make_page(test::page_kind::random, rng));
  for (std::uint64_t g = 0; g < pages.size(); ++g)
    enc.encode({{0, g}, pages[g].data()});
  enc.flush();
  ASSERT_GE(out.frames.size(), 4u);
  test::map_sink sink;
  decoder dec({}, sink);
  ASSERT_EQ(dec.on_frame(out.frames[0]), error::ok);
  EXPECT_EQ(dec.on_frame(out.frames[2]), error::sequence_gap);
  EXPECT_EQ(dec.on_frame(out.frames[0]), error::sequence_gap);  // a duplicate
  for (std::size_t i = 1; i < out.frames.size(); ++i)
    ASSERT_EQ(dec.on_frame(out.frames[i]), error::ok);
  for (std::uint64_t g = 0; g < pages.size(); ++g)
    EXPECT_EQ(sink.pages[std::make_pair(0u, g)], pages[g]);
  EXPECT_EQ(dec.stats().errors[static_cast<int>(error::sequence_gap)], 2u);
}

}  // namespace
