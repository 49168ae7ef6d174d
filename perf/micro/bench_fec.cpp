// bench_fec.cpp — Google Benchmark micro-benchmarks of the group FEC codec
// (dataplane/fec.h): what encoding a group's parity and rebuilding lost
// frames cost per byte, for groups of K = 16 data + M = 2 parity and
// K = 32 + M = 4 frames of 1450 bytes (shards of 1472).
//
//   BM_FecEncode        m parity shards of one group
//   BM_FecEncodeMixedLens  the same with frames of random lengths (1..1450):
//                       the cost of cutting shards at the frames' ends
//   BM_FecDecode        m data frames lost (the most a group repairs), a
//                       different pattern every time: the decode matrix is
//                       inverted and its tables built on each call
//   BM_FecDecodeCached  the same pattern every time: tables reused
//
// bytes_per_second counts the group's data bytes (K x 1450) over CPU time;
// "rebuilt" (decode) is the rate of rebuilt frame bytes (M x 1450).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "fec.h"

using namespace hde::dp;

namespace {

constexpr std::size_t kFrame = 1450;

struct bench_group {
  unsigned k, m;
  std::size_t shard_len = fec_shard_len(kFrame);
  std::vector<std::vector<std::byte>> frames, parity, out;
  std::vector<const std::byte *> data;
  std::vector<std::uint16_t> lens;
  std::vector<std::byte *> par, outp;

  bench_group(unsigned k_, unsigned m_) : k(k_), m(m_) {
    std::mt19937_64 rng(k * 131 + m);
    for (unsigned j = 0; j < k; ++j) {
      frames.emplace_back(kFrame);
      for (auto &b : frames.back())
        b = static_cast<std::byte>(rng());
      data.push_back(frames.back().data());
      lens.push_back(static_cast<std::uint16_t>(kFrame));
      out.emplace_back(shard_len);
      outp.push_back(out.back().data());
    }
    for (unsigned i = 0; i < m; ++i) {
      parity.emplace_back(shard_len);
      par.push_back(parity.back().data());
    }
  }
};

fec_codec make(unsigned k, unsigned m) {
  fec_error why = fec_error::ok;
  auto c = fec_codec::create(k, m, kFrame, &why);
  if (!c) {
    std::fprintf(stderr, "bench_fec: %s\n", std::string(to_string(why)).c_str());
    std::exit(1);
  }
  return std::move(*c);
}

void BM_FecEncode(benchmark::State &state) {
  const auto k = static_cast<unsigned>(state.range(0)), m = static_cast<unsigned>(state.range(1));
  fec_codec c = make(k, m);
  bench_group g(k, m);
  for (auto _ : state) {
    const fec_error e = c.encode(g.data.data(), g.lens.data(), k, g.par.data(), g.shard_len);
    benchmark::DoNotOptimize(e);
    benchmark::DoNotOptimize(g.parity[0].data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * k * kFrame);
}

// Frames of random lengths (1..1450): the shard is cut into up to 2K + 1
// column ranges, one ec_encode_data call each. Bytes counted: the frames'.
void BM_FecEncodeMixedLens(benchmark::State &state) {
  const auto k = static_cast<unsigned>(state.range(0)), m = static_cast<unsigned>(state.range(1));
  fec_codec c = make(k, m);
  bench_group g(k, m);
  std::mt19937_64 rng(k);
  std::size_t bytes = 0;
  for (auto &l : g.lens) {
    l = static_cast<std::uint16_t>(1 + rng() % kFrame);
    bytes += l;
  }
  for (auto _ : state) {
    const fec_error e = c.encode(g.data.data(), g.lens.data(), k, g.par.data(), g.shard_len);
    benchmark::DoNotOptimize(e);
    benchmark::DoNotOptimize(g.parity[0].data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}

void decode_bench(benchmark::State &state, bool same_pattern) {
  const auto k = static_cast<unsigned>(state.range(0)), m = static_cast<unsigned>(state.range(1));
  fec_codec c = make(k, m);
  bench_group g(k, m);
  if (c.encode(g.data.data(), g.lens.data(), k, g.par.data(), g.shard_len) != fec_error::ok) {
    state.SkipWithError("encode failed");
    return;
  }
  std::vector<const std::byte *> parity(g.par.begin(), g.par.end());
  std::vector<const std::byte *> data = g.data;
  unsigned start = 0;
  std::uint64_t rebuilt = 0;
  for (auto _ : state) {
    // Lose m consecutive frames from `start` (wrapping).
    for (unsigned t = 0; t < m; ++t)
      data[(start + t) % k] = nullptr;
    const fec_decode_result r = c.decode(data.data(), g.lens.data(), k, parity.data(), m, g.outp.data(), g.shard_len);
    benchmark::DoNotOptimize(r);
    benchmark::ClobberMemory();
    rebuilt += r.rebuilt;
    for (unsigned t = 0; t < m; ++t)
      data[(start + t) % k] = g.data[(start + t) % k];
    if (!same_pattern)
      start = (start + 1) % k;
  }
  if (rebuilt != std::uint64_t{m} * state.iterations())
    state.SkipWithError("decode did not rebuild every lost frame");
  // The last pattern's frames, checked once.
  const unsigned last = same_pattern ? 0 : (start + k - 1) % k;
  for (unsigned t = 0; t < m; ++t) {
    const unsigned j = (last + t) % k;
    if (std::memcmp(g.out[j].data(), g.frames[j].data(), kFrame) != 0)
      state.SkipWithError("rebuilt frame differs");
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * k * kFrame);
  state.counters["rebuilt"] = benchmark::Counter(static_cast<double>(rebuilt * kFrame), benchmark::Counter::kIsRate,
                                                 benchmark::Counter::kIs1024);
}

void BM_FecDecode(benchmark::State &state) { decode_bench(state, false); }
void BM_FecDecodeCached(benchmark::State &state) { decode_bench(state, true); }

} // namespace

BENCHMARK(BM_FecEncode)->ArgNames({"k", "m"})->Args({16, 2})->Args({32, 4});
BENCHMARK(BM_FecEncodeMixedLens)->ArgNames({"k", "m"})->Args({16, 2})->Args({32, 4});
BENCHMARK(BM_FecDecode)->ArgNames({"k", "m"})->Args({16, 2})->Args({32, 4});
BENCHMARK(BM_FecDecodeCached)->ArgNames({"k", "m"})->Args({16, 2})->Args({32, 4});

BENCHMARK_MAIN();
