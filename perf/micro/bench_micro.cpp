// bench_micro.cpp — Google Benchmark micro-benchmarks of the engine's hot
// paths: zero detection, the XXH3-128 page hash, XBZRLE encode/apply and
// xor_page, every per-page codec level (compress and decompress), zstd stream
// batches, and the whole ladder (encoder and decoder, datacenter and internet
// mode, bulk and dirty rounds).
//
// Pages come from the dev corpus when one is found — $HDE_CORPUS, else
// /work/shared/corpus/dev, else ../shared/corpus/dev from the working
// directory (HDE_CORPUS=none forces generated pages). Snapshots 0 and 1 are
// loaded once, lazily, by the first benchmark that needs pages. Without a
// corpus, two 32 MiB images are generated (text, records, random bytes, zero
// pages; snapshot 1 = snapshot 0 with a few small edits on a quarter of the
// pages). The "pages" context line of the output names the source.
//
// bytes_per_second counts page bytes (4 KiB per page: the new page for
// deltas, the rebuilt page for decompression, every page of the round for the
// ladder, zero pages included) over CPU time, the library's default, which on
// a shared box is steadier than wall time. The "ratio" counter is compressed
// bytes / page bytes; for the ladder, UDP payload bytes (HDE headers
// included) / page bytes.
//
// Run it with perf/run_micro.sh.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "delta/xbzrle.h"
#include "engine/decoder.h"
#include "engine/encoder.h"
#include "engine/selector.h"
#include "page/hash.h"
#include "page/zero.h"
#include "trace/trace.h"
#include "wire/format.h"

using namespace hde;

namespace {

[[noreturn]] void die(const std::string &msg) {
  std::fprintf(stderr, "bench_micro: %s\n", msg.c_str());
  std::exit(1);
}

// --- page memory -------------------------------------------------------------

struct free_deleter {
  void operator()(std::byte *p) const { std::free(p); }
};
using page_mem = std::unique_ptr<std::byte[], free_deleter>;

// n zeroed, page-aligned pages, each backed by its own physical memory: an
// untouched (or calloc'ed) buffer reads the kernel's shared zero page and
// would time the cache, not memory.
page_mem alloc_pages(std::size_t n) {
  const std::size_t len = std::max<std::size_t>(n, 1) * kPageSize;
  auto *p = static_cast<std::byte *>(std::aligned_alloc(kPageSize, len));
  if (p == nullptr)
    die("out of memory");
  std::memset(p, 0xA5, len);
  benchmark::ClobberMemory();
  std::memset(p, 0, len);
  return page_mem(p);
}

// Pages stored back to back.
struct page_set {
  page_mem mem;
  std::size_t n = 0;
  const std::byte *page(std::size_t i) const { return mem.get() + i * kPageSize; }
};

page_set copy_pages(const std::byte *image, const std::vector<std::size_t> &gfns) {
  page_set s{alloc_pages(gfns.size()), gfns.size()};
  for (std::size_t i = 0; i < gfns.size(); ++i)
    std::memcpy(s.mem.get() + i * kPageSize, image + gfns[i] * kPageSize, kPageSize);
  return s;
}

// At most max elements of v, evenly spread over it.
std::vector<std::size_t> spread(const std::vector<std::size_t> &v, std::size_t max) {
  if (v.size() <= max)
    return v;
  std::vector<std::size_t> out(max);
  for (std::size_t i = 0; i < max; ++i)
    out[i] = v[i * v.size() / max];
  return out;
}

// --- page source ---------------------------------------------------------------

constexpr std::size_t kSetPages = 4096;  // size of the codec/hash and delta sets

struct corpus {
  std::size_t npages = 0;       // pages per snapshot image
  page_mem snap0, snap1;        // the two images
  page_set nz;                  // up to 4096 non-zero pages of snapshot 0
  page_set olds, news;          // up to 4096 changed pairs, both non-zero
  std::vector<page_in> round0;  // every page of snapshot 0, in gfn order (bulk round)
  std::vector<page_in> dirty;   // the pages of snapshot 1 that differ from 0
};

// Corpus directory, or "" for generated pages.
std::string corpus_dir() {
  if (const char *e = std::getenv("HDE_CORPUS"); e != nullptr && *e != '\0')
    return std::string(e) == "none" ? "" : e;
  std::error_code ec;
  for (const char *d : {"/work/shared/corpus/dev", "../shared/corpus/dev"})
    if (std::filesystem::exists(std::filesystem::path(d) / "manifest.json", ec))
      return d;
  return "";
}

constexpr std::size_t kGenPages = 8192;  // generated images: 32 MiB

std::string source_name() {
  const std::string d = corpus_dir();
  if (!d.empty())
    return "corpus " + d + " (snapshots 0 and 1)";
  return "generated (2 x " + std::to_string(kGenPages) +
         " pages: text, records, random, zero; snapshot 1 = small edits)";
}

void load_corpus(corpus &c, const std::string &dir) {
  std::string err;
  auto r = trace_reader::open({dir}, err);
  if (!r)
    die("corpus " + dir + ": " + err + " (HDE_CORPUS=none uses generated pages)");
  if (r->snapshot_count() < 2)
    die("corpus " + dir + ": needs at least 2 snapshots");
  c.npages = r->page_count();
  c.snap0 = alloc_pages(c.npages);
  c.snap1 = alloc_pages(c.npages);
  for (std::size_t i = 0; i < 2; ++i) {
    const std::byte *img = r->load(i, err);
    if (img == nullptr)
      die("corpus " + dir + ": " + err);
    std::memcpy((i == 0 ? c.snap0 : c.snap1).get(), img, c.npages * kPageSize);
  }
}

void fill_text(unsigned char *b, std::mt19937_64 &rng) {
  static const char *const kWords[] = {
      "GET",      "/api/v1/orders", "200",   "user=",   "session", "INFO",
      "db.query", "latency_ms=",    "ERROR", "timeout", "POST",    "2024-01-01T00:00:00Z",
      "WARN",     "cache-miss",     "\n",    "customer"};
  std::size_t off = 0;
  while (off < kPageSize) {
    const char *w = kWords[rng() % std::size(kWords)];
    for (; *w != '\0' && off < kPageSize; ++w)
      b[off++] = static_cast<unsigned char>(*w);
    if (off < kPageSize)
      b[off++] = (rng() % 3 == 0) ? static_cast<unsigned char>('0' + rng() % 10) : ' ';
  }
}

void fill_records(unsigned char *b, std::mt19937_64 &rng) {
  // 64-byte rows: id, name, a few counters, zero padding.
  for (std::size_t off = 0; off + 64 <= kPageSize; off += 64) {
    const std::uint64_t id = rng() % 1000000, bal = rng() % 100000;
    const auto flags = static_cast<std::uint32_t>(rng() % 4);
    std::memcpy(b + off, &id, 8);
    std::snprintf(reinterpret_cast<char *>(b + off + 8), 24, "customer-%06u",
                  static_cast<unsigned>(id));
    std::memcpy(b + off + 32, &bal, 8);
    std::memcpy(b + off + 40, &flags, 4);
  }
}

void fill_random(unsigned char *b, std::mt19937_64 &rng) {
  for (std::size_t off = 0; off < kPageSize; off += 8) {
    const std::uint64_t v = rng();
    std::memcpy(b + off, &v, 8);
  }
}

void fill_sparse(unsigned char *b, std::mt19937_64 &rng) {
  // Mostly zero with scattered pointers, like kernel structures.
  for (int k = 0; k < 24; ++k) {
    const std::uint64_t ptr = 0xffff888000000000ULL + (rng() % (1u << 27)) * 8;
    std::memcpy(b + (rng() % (kPageSize / 8)) * 8, &ptr, 8);
  }
}

void generate(corpus &c) {
  std::mt19937_64 rng(20240101);
  c.npages = kGenPages;
  c.snap0 = alloc_pages(c.npages);
  c.snap1 = alloc_pages(c.npages);
  for (std::size_t g = 0; g < c.npages; ++g) {
    auto *b = reinterpret_cast<unsigned char *>(c.snap0.get() + g * kPageSize);
    const auto k = rng() % 100;
    if (k < 25)
      continue;  // zero page
    if (k < 45)
      fill_text(b, rng);
    else if (k < 75)
      fill_records(b, rng);
    else if (k < 85)
      fill_random(b, rng);
    else if (k < 93)
      fill_sparse(b, rng);
    else if (g > 0)
      std::memcpy(b, c.snap0.get() + (rng() % g) * kPageSize, kPageSize);  // duplicate
  }
  std::memcpy(c.snap1.get(), c.snap0.get(), c.npages * kPageSize);
  for (std::size_t g = 0; g < c.npages; ++g) {
    auto *b = reinterpret_cast<unsigned char *>(c.snap1.get() + g * kPageSize);
    const auto k = rng() % 100;
    if (k < 22) {  // a few small in-place edits
      for (auto e = 1 + rng() % 6; e > 0; --e) {
        const std::size_t len = 1 + rng() % 24, off = rng() % (kPageSize - len);
        for (std::size_t i = 0; i < len; ++i)
          b[off + i] = static_cast<unsigned char>(rng());
      }
    } else if (k < 25) {
      fill_text(b, rng);  // rewritten
    } else if (k < 26) {
      std::memset(b, 0, kPageSize);  // freed
    }
  }
}

corpus build_corpus() {
  corpus c;
  const std::string dir = corpus_dir();
  if (dir.empty())
    generate(c);
  else
    load_corpus(c, dir);

  std::vector<std::size_t> nz, pairs;
  c.round0.reserve(c.npages);
  for (std::size_t g = 0; g < c.npages; ++g) {
    const std::byte *p0 = c.snap0.get() + g * kPageSize, *p1 = c.snap1.get() + g * kPageSize;
    const bool z0 = is_zero_page(p0), z1 = is_zero_page(p1);
    c.round0.push_back({{0, g}, p0});
    if (!z0)
      nz.push_back(g);
    if (std::memcmp(p0, p1, kPageSize) != 0) {
      c.dirty.push_back({{0, g}, p1});
      if (!z0 && !z1)
        pairs.push_back(g);
    }
  }
  nz = spread(nz, kSetPages);
  pairs = spread(pairs, kSetPages);
  c.nz = copy_pages(c.snap0.get(), nz);
  c.olds = copy_pages(c.snap0.get(), pairs);
  c.news = copy_pages(c.snap1.get(), pairs);
  std::fprintf(stderr,
               "bench_micro: pages from %s: %zu pages per snapshot, %zu dirty; sets: %zu non-zero "
               "pages, %zu changed pairs\n",
               source_name().c_str(), c.npages, c.dirty.size(), c.nz.n, c.olds.n);
  return c;
}

// The pages, built on first use (loading the corpus takes about a second).
const corpus &pages() {
  static const corpus c = build_corpus();
  return c;
}

// --- zero detection ------------------------------------------------------------

using zero_fn = bool (*)(const std::byte *);
const zero_fn kZeroDispatch = is_zero_page;
const zero_fn kZeroGeneric = is_zero_page_generic;

// One all-zero page, in cache: the worst case, every byte is read.
void bm_zero_page(benchmark::State &st, zero_fn fn) {
  page_mem z = alloc_pages(1);
  const std::byte *p = z.get();
  for (auto _ : st) {
    benchmark::DoNotOptimize(p);
    bool r = fn(p);
    benchmark::DoNotOptimize(r);
  }
  st.SetBytesProcessed(std::int64_t(st.iterations()) * kPageSize);
}

// 64 MiB of zero pages per iteration: beyond the caches, memory bandwidth.
void bm_zero_buffer(benchmark::State &st, zero_fn fn) {
  constexpr std::size_t kPages = (64u << 20) / kPageSize;
  static const page_mem buf = alloc_pages(kPages);
  for (auto _ : st) {
    for (std::size_t i = 0; i < kPages; ++i) {
      bool r = fn(buf.get() + i * kPageSize);
      benchmark::DoNotOptimize(r);
    }
  }
  st.SetBytesProcessed(std::int64_t(st.iterations()) * kPages * kPageSize);
}

// Real non-zero pages: how soon the check gives up (bytes = 4 KiB per page).
void bm_zero_nonzero(benchmark::State &st) {
  const page_set &s = pages().nz;
  std::size_t i = 0;
  for (auto _ : st) {
    bool r = is_zero_page(s.page(i));
    benchmark::DoNotOptimize(r);
    if (++i == s.n)
      i = 0;
  }
  st.SetBytesProcessed(std::int64_t(st.iterations()) * kPageSize);
}

// --- hash ------------------------------------------------------------------------

void bm_hash_page(benchmark::State &st) {
  const page_set &s = pages().nz;
  std::size_t i = 0;
  for (auto _ : st) {
    content_hash h = hash_page(s.page(i));
    benchmark::DoNotOptimize(h);
    if (++i == s.n)
      i = 0;
  }
  st.SetBytesProcessed(std::int64_t(st.iterations()) * kPageSize);
}

// --- deltas ----------------------------------------------------------------------

bool have_pairs(benchmark::State &st) {
  if (pages().olds.n > 0)
    return true;
  st.SkipWithError("no changed page pairs");
  return false;
}

// XBZRLE with the ladder's give-up budget (2048 datacenter, 3072 internet).
// ratio is over the deltas that fit; fit is the share that did.
void bm_xbzrle_encode(benchmark::State &st) {
  if (!have_pairs(st))
    return;
  const corpus &c = pages();
  const auto budget = static_cast<std::size_t>(st.range(0));
  std::vector<std::byte> dst(budget);
  std::size_t i = 0, fit = 0, out = 0;
  for (auto _ : st) {
    auto r = xbzrle_encode(c.olds.page(i), c.news.page(i), dst);
    benchmark::DoNotOptimize(r);
    benchmark::ClobberMemory();
    if (r.ok()) {
      ++fit;
      out += r.value;
    }
    if (++i == c.olds.n)
      i = 0;
  }
  const auto n = static_cast<double>(st.iterations());
  st.SetBytesProcessed(std::int64_t(st.iterations()) * kPageSize);
  st.counters["ratio"] = fit ? double(out) / (double(fit) * kPageSize) : 0.0;
  st.counters["fit"] = n > 0 ? double(fit) / n : 0.0;
}

// Rebuild: copy the old page (as the decoder does), then apply the delta.
void bm_xbzrle_apply(benchmark::State &st) {
  if (!have_pairs(st))
    return;
  const corpus &c = pages();
  struct item {
    std::size_t pair, off, len;
  };
  std::vector<item> items;
  std::vector<std::byte> arena(c.olds.n * kPageSize);
  std::size_t used = 0;
  for (std::size_t k = 0; k < c.olds.n; ++k) {
    auto r = xbzrle_encode(c.olds.page(k), c.news.page(k), {arena.data() + used, kPageSize});
    if (r.ok()) {
      items.push_back({k, used, r.value});
      used += r.value;
    }
  }
  alignas(64) static std::byte out[kPageSize];
  for (const item &d : items) {  // check once, untimed
    std::memcpy(out, c.olds.page(d.pair), kPageSize);
    if (xbzrle_apply({arena.data() + d.off, d.len}, page_buf(out, kPageSize)) != error::ok ||
        std::memcmp(out, c.news.page(d.pair), kPageSize) != 0) {
      st.SkipWithError("xbzrle round trip failed");
      return;
    }
  }
  std::size_t i = 0;
  for (auto _ : st) {
    const item &d = items[i];
    std::memcpy(out, c.olds.page(d.pair), kPageSize);
    error e = xbzrle_apply({arena.data() + d.off, d.len}, page_buf(out, kPageSize));
    benchmark::DoNotOptimize(e);
    benchmark::ClobberMemory();
    if (++i == items.size())
      i = 0;
  }
  st.SetBytesProcessed(std::int64_t(st.iterations()) * kPageSize);
  st.counters["ratio"] = double(used) / (double(items.size()) * kPageSize);
}

void bm_xor_page(benchmark::State &st) {
  if (!have_pairs(st))
    return;
  const corpus &c = pages();
  alignas(64) static std::byte out[kPageSize];
  std::size_t i = 0;
  for (auto _ : st) {
    xor_page(c.olds.page(i), c.news.page(i), out);
    benchmark::ClobberMemory();
    if (++i == c.olds.n)
      i = 0;
  }
  st.SetBytesProcessed(std::int64_t(st.iterations()) * kPageSize);
}

// --- per-page codecs ---------------------------------------------------------------

const char *const kCodecs[] = {"raw",     "lz4:1",   "lz4:8",   "zstd:1",  "zstd:3", "zstd:9",
                               "zstd:19", "igzip:0", "igzip:1", "igzip:2", "igzip:3"};

// zstd:19 takes milliseconds a page: it runs over every 16th page of the set.
std::size_t codec_step(codec_spec c) { return c.id == codec_id::zstd && c.level >= 19 ? 16 : 1; }

bool have_pages(benchmark::State &st) {
  if (pages().nz.n > 0)
    return true;
  st.SkipWithError("no non-zero pages");
  return false;
}

// The pages of the set compressed with one codec, built once per codec.
struct compressed_set {
  std::vector<std::byte> arena;
  struct item {
    std::size_t page, off, len;
  };
  std::vector<item> items;
  bool ok = true;
  double ratio() const { return double(arena.size()) / (double(items.size()) * kPageSize); }
};

const compressed_set &compressed(codec_spec spec) {
  static std::map<std::string, compressed_set> cache;
  auto [it, fresh] = cache.try_emplace(to_string(spec));
  compressed_set &z = it->second;
  if (!fresh)
    return z;
  const page_set &s = pages().nz;
  codec_set cs;
  const std::size_t bound = codec_bound(kPageSize);
  z.arena.resize(s.n * bound);
  std::size_t used = 0;
  alignas(64) std::byte back[kPageSize];
  for (std::size_t k = 0; k < s.n; k += codec_step(spec)) {
    auto r = cs.compress(spec, {s.page(k), kPageSize}, {z.arena.data() + used, bound});
    z.ok = z.ok && r.ok() &&
           cs.decompress(spec.id, {z.arena.data() + used, r.value}, back) == error::ok &&
           std::memcmp(back, s.page(k), kPageSize) == 0;
    if (!z.ok)
      break;
    z.items.push_back({k, used, r.value});
    used += r.value;
  }
  z.arena.resize(used);
  return z;
}

// The ratio is that of the whole set (or subset for zstd:19), whichever pages
// the timed loop happened to cover.
void bm_compress(benchmark::State &st, codec_spec spec) {
  if (!have_pages(st))
    return;
  const compressed_set &z = compressed(spec);
  if (!z.ok || z.items.empty()) {
    st.SkipWithError("compress/decompress round trip failed");
    return;
  }
  const page_set &s = pages().nz;
  const std::size_t step = codec_step(spec);
  codec_set cs;
  std::vector<std::byte> dst(codec_bound(kPageSize));
  std::size_t i = 0;
  for (auto _ : st) {
    auto r = cs.compress(spec, {s.page(i), kPageSize}, dst);
    benchmark::DoNotOptimize(r);
    benchmark::ClobberMemory();
    i = (i + step) % s.n;
  }
  st.SetBytesProcessed(std::int64_t(st.iterations()) * kPageSize);
  st.counters["ratio"] = z.ratio();
}

void bm_decompress(benchmark::State &st, codec_spec spec) {
  if (!have_pages(st))
    return;
  const compressed_set &z = compressed(spec);
  if (!z.ok || z.items.empty()) {
    st.SkipWithError("compress/decompress round trip failed");
    return;
  }
  codec_set cs;
  alignas(64) static std::byte out[kPageSize];
  std::size_t i = 0;
  for (auto _ : st) {
    const auto &e = z.items[i];
    error r = cs.decompress(spec.id, {z.arena.data() + e.off, e.len}, out);
    benchmark::DoNotOptimize(r);
    benchmark::ClobberMemory();
    if (++i == z.items.size())
      i = 0;
  }
  st.SetBytesProcessed(std::int64_t(st.iterations()) * kPageSize);  // output bytes
  st.counters["ratio"] = z.ratio();
}

// --- zstd stream batches -----------------------------------------------------------

// The page set cut into 256 KiB batches of 64 pages; one batch per iteration,
// the window running on across batches, reset when the set starts over.
constexpr std::size_t kBatchPages = 64;

std::size_t batch_count() { return std::max<std::size_t>(1, pages().nz.n / kBatchPages); }
bytes_view batch(std::size_t b) {
  const page_set &s = pages().nz;
  return {s.page(b * kBatchPages), std::min(kBatchPages, s.n) * kPageSize};
}

// Every batch of the set compressed in order, per level, built once.
struct stream_set {
  std::vector<std::vector<std::byte>> batches;
  bool ok = true;
  double ratio() const {
    std::size_t out = 0, in = 0;
    for (std::size_t b = 0; b < batches.size(); ++b) {
      out += batches[b].size();
      in += batch(b).size();
    }
    return in ? double(out) / double(in) : 0.0;
  }
};

const stream_set &stream_batches(int level) {
  static std::map<int, stream_set> cache;
  auto [it, fresh] = cache.try_emplace(level);
  stream_set &z = it->second;
  if (!fresh)
    return z;
  codec_set enc, dec;
  std::vector<std::byte> back(kBatchPages * kPageSize);
  for (std::size_t b = 0; b < batch_count() && z.ok; ++b) {
    std::vector<std::byte> dst(codec_bound(batch(b).size()));
    auto r = enc.compress_stream(level, batch(b), dst);
    z.ok = r.ok() &&
           dec.decompress_stream({dst.data(), r.value}, {back.data(), batch(b).size()}) ==
               error::ok &&
           std::memcmp(back.data(), batch(b).data(), batch(b).size()) == 0;
    dst.resize(r.value);
    z.batches.push_back(std::move(dst));
  }
  return z;
}

// The ratio is that of one pass over the whole set.
void bm_stream_compress(benchmark::State &st) {
  if (!have_pages(st))
    return;
  const int level = static_cast<int>(st.range(0));
  const stream_set &z = stream_batches(level);
  if (!z.ok) {
    st.SkipWithError("stream round trip failed");
    return;
  }
  codec_set cs;
  std::vector<std::byte> dst(codec_bound(kBatchPages * kPageSize));
  std::size_t b = 0, in = 0;
  for (auto _ : st) {
    if (b == 0)
      cs.reset_stream();
    auto r = cs.compress_stream(level, batch(b), dst);
    benchmark::DoNotOptimize(r);
    benchmark::ClobberMemory();
    in += batch(b).size();
    b = (b + 1) % batch_count();
  }
  st.SetBytesProcessed(static_cast<std::int64_t>(in));
  st.counters["ratio"] = z.ratio();
}

void bm_stream_decompress(benchmark::State &st) {
  if (!have_pages(st))
    return;
  const stream_set &z = stream_batches(static_cast<int>(st.range(0)));
  if (!z.ok) {
    st.SkipWithError("stream round trip failed");
    return;
  }
  codec_set cs;
  std::vector<std::byte> out(kBatchPages * kPageSize);
  std::size_t b = 0, bytes = 0;
  for (auto _ : st) {
    if (b == 0)
      cs.reset_stream();
    const auto n = batch(b).size();
    error r = cs.decompress_stream(z.batches[b], {out.data(), n});
    benchmark::DoNotOptimize(r);
    benchmark::ClobberMemory();
    bytes += n;
    b = (b + 1) % z.batches.size();
  }
  st.SetBytesProcessed(static_cast<std::int64_t>(bytes));  // output bytes
  st.counters["ratio"] = z.ratio();
}

// --- the ladder --------------------------------------------------------------------
//
// A round is a vector of pages handed to encode() in one call. The encoder's
// baselines change as it encodes, so a dirty round must run against an
// encoder primed by the bulk round and then thrown away: each iteration
// builds and primes a fresh encoder with timing paused (PauseTiming /
// ResumeTiming), and only the round itself is timed. Iteration counts are
// fixed (Iterations) so the untimed priming cannot multiply: the library
// would otherwise size the count from the timed part alone. Each bulk
// iteration also starts from a fresh encoder, with its baseline cache
// pre-touched outside the timing (a running gateway's cache is resident),
// so the figure is the ladder, not first-touch page faults.

// Frames go nowhere: one reused buffer, bytes counted.
class null_output final : public frame_output {
public:
  bytes_buf acquire() override { return buf_; }
  void commit(bytes_buf frame, std::size_t len) override {
    benchmark::DoNotOptimize(frame.data());
    benchmark::ClobberMemory();
    bytes += len;
  }
  std::uint64_t bytes = 0;

private:
  std::vector<std::byte> buf_ = std::vector<std::byte>(wire::kMaxFrameSize);
};

// Frames kept, back to back, for the decoder benchmarks.
class frame_log final : public frame_output {
public:
  bytes_buf acquire() override { return scratch_; }
  void commit(bytes_buf frame, std::size_t len) override {
    spans.push_back({arena.size(), len});
    arena.insert(arena.end(), frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(len));
  }
  bytes_view frame(std::size_t i) const { return {arena.data() + spans[i].first, spans[i].second}; }
  std::vector<std::byte> arena;
  std::vector<std::pair<std::size_t, std::size_t>> spans;

private:
  std::vector<std::byte> scratch_ = std::vector<std::byte>(wire::kMaxFrameSize);
};

// The destination's memory: one image, written by the decoder.
class image_sink final : public page_sink {
public:
  explicit image_sink(std::size_t npages) : img_(alloc_pages(npages)), n_(npages) {}
  error put_page(page_key key, const std::byte *page) override {
    if (key.gfn >= n_)
      return error::bad_input;
    std::memcpy(img_.get() + key.gfn * kPageSize, page, kPageSize);
    return error::ok;
  }
  error put_zero(std::uint32_t, std::uint64_t gfn, std::uint32_t count) override {
    if (gfn >= n_ || count > n_ - gfn)
      return error::bad_input;
    std::memset(img_.get() + gfn * kPageSize, 0, std::size_t(count) * kPageSize);
    return error::ok;
  }
  bool same(const std::byte *image) const {
    return std::memcmp(img_.get(), image, n_ * kPageSize) == 0;
  }

private:
  page_mem img_;
  std::size_t n_;
};

// Touch the baseline-cache slots a round will fill, then empty the cache
// again (fills go to slots 0, 1, 2, ... of an empty cache).
void warm_cache(encoder &e, std::size_t n) {
  baseline_cache &bc = e.baselines();
  alignas(64) static std::byte junk[kPageSize] = {std::byte{1}};
  n = std::min<std::size_t>(n, bc.slot_count());
  for (std::size_t i = 0; i < n; ++i)
    bc.fill({0xFFFFFFFFu, i}, content_hash{i, 1}, junk);
  bc.flush();
}

std::string rung_mix(const encoder_stats &s) {
  char buf[96];
  const double n = s.pages_in ? double(s.pages_in) : 1.0;
  std::snprintf(buf, sizeof buf, "zero %.0f%% ref %.0f%% delta %.0f%% page %.0f%%",
                100.0 * double(s.rung_pages[0]) / n, 100.0 * double(s.rung_pages[1]) / n,
                100.0 * double(s.rung_pages[2]) / n, 100.0 * double(s.rung_pages[3]) / n);
  return buf;
}

void bm_encode_bulk(benchmark::State &st, mode m) {
  const corpus &c = pages();
  const encoder_config cfg = encoder_config::for_mode(m);
  null_output out;
  std::uint64_t wire_bytes = 0;
  std::string mix;
  for (auto _ : st) {
    st.PauseTiming();
    auto enc = std::make_unique<encoder>(cfg, out);
    warm_cache(*enc, c.round0.size());
    const std::uint64_t before = out.bytes;
    st.ResumeTiming();
    enc->encode(c.round0.data(), c.round0.size());
    enc->mark_round(0, 0, c.round0.size(), false);
    st.PauseTiming();
    wire_bytes += out.bytes - before;
    mix = rung_mix(enc->stats());
    enc.reset();
    st.ResumeTiming();
  }
  const double in = double(st.iterations()) * double(c.round0.size()) * kPageSize;
  st.SetBytesProcessed(static_cast<std::int64_t>(in));
  st.counters["ratio"] = in > 0 ? double(wire_bytes) / in : 0.0;
  st.SetLabel(mix);
}

void bm_encode_dirty(benchmark::State &st, mode m) {
  const corpus &c = pages();
  const encoder_config cfg = encoder_config::for_mode(m);
  null_output out;
  std::uint64_t wire_bytes = 0;
  std::string mix;
  for (auto _ : st) {
    st.PauseTiming();
    auto enc = std::make_unique<encoder>(cfg, out);
    enc->encode(c.round0.data(), c.round0.size());
    enc->mark_round(0, 0, c.round0.size(), false);
    const encoder_stats primed = enc->stats();
    const std::uint64_t before = out.bytes;
    st.ResumeTiming();
    enc->encode(c.dirty.data(), c.dirty.size());
    enc->mark_round(0, 1, c.dirty.size(), false);
    st.PauseTiming();
    wire_bytes += out.bytes - before;
    encoder_stats s = enc->stats();
    s.pages_in -= primed.pages_in;
    for (std::size_t r = 0; r < kRungCount; ++r)
      s.rung_pages[r] -= primed.rung_pages[r];
    mix = rung_mix(s);
    enc.reset();
    st.ResumeTiming();
  }
  const double in = double(st.iterations()) * double(c.dirty.size()) * kPageSize;
  st.SetBytesProcessed(static_cast<std::int64_t>(in));
  st.counters["ratio"] = in > 0 ? double(wire_bytes) / in : 0.0;
  st.SetLabel(mix);
}

// The frames of the bulk round followed by those of the dirty round, per
// mode, built once and checked: decoding them rebuilds snapshot 0, then 1.
struct ladder_frames {
  frame_log log;
  std::size_t bulk_end = 0;  // frames [0, bulk_end) carry the bulk round
  bool ok = false;
};

std::size_t decode_range(decoder &dec, const frame_log &log, std::size_t from, std::size_t to) {
  std::size_t errors = 0;
  for (std::size_t i = from; i < to; ++i)
    errors += dec.on_frame(log.frame(i)) != error::ok;
  return errors;
}

const ladder_frames &frames_of(mode m) {
  static std::map<mode, ladder_frames> cache;
  auto [it, fresh] = cache.try_emplace(m);
  ladder_frames &f = it->second;
  if (!fresh)
    return f;
  const corpus &c = pages();
  {
    encoder enc(encoder_config::for_mode(m), f.log);
    enc.encode(c.round0.data(), c.round0.size());
    enc.mark_round(0, 0, c.round0.size(), false);
    f.bulk_end = f.log.spans.size();
    enc.encode(c.dirty.data(), c.dirty.size());
    enc.mark_round(0, 1, c.dirty.size(), true);
  }
  image_sink sink(c.npages);
  decoder dec({}, sink);
  f.ok = decode_range(dec, f.log, 0, f.bulk_end) == 0 && sink.same(c.snap0.get()) &&
         decode_range(dec, f.log, f.bulk_end, f.log.spans.size()) == 0 &&
         sink.same(c.snap1.get());
  return f;
}

// The decoder is kept across iterations and the bulk frames replayed: their
// INIT restarts the stream (mirror generations, zstd window) without
// reallocating, so the sequence check is off to let seq start over at 0.
// A first, untimed pass faults in the mirror and the image.
constexpr decoder_config kReplayConfig{.max_slots = 1u << 20, .check_sequence = false};

void bm_decode_bulk(benchmark::State &st, mode m) {
  const corpus &c = pages();
  const ladder_frames &f = frames_of(m);
  if (!f.ok) {
    st.SkipWithError("encode/decode round trip failed");
    return;
  }
  image_sink sink(c.npages);
  decoder dec(kReplayConfig, sink);
  std::size_t errors = decode_range(dec, f.log, 0, f.bulk_end);
  for (auto _ : st)
    errors += decode_range(dec, f.log, 0, f.bulk_end);
  if (errors != 0)
    st.SkipWithError("decoder reported errors");
  st.SetBytesProcessed(std::int64_t(st.iterations()) * std::int64_t(c.round0.size()) * kPageSize);
}

void bm_decode_dirty(benchmark::State &st, mode m) {
  const corpus &c = pages();
  const ladder_frames &f = frames_of(m);
  if (!f.ok) {
    st.SkipWithError("encode/decode round trip failed");
    return;
  }
  image_sink sink(c.npages);
  decoder dec(kReplayConfig, sink);
  std::size_t errors = 0;
  for (auto _ : st) {
    st.PauseTiming();
    errors += decode_range(dec, f.log, 0, f.bulk_end);
    st.ResumeTiming();
    errors += decode_range(dec, f.log, f.bulk_end, f.log.spans.size());
  }
  if (errors != 0)
    st.SkipWithError("decoder reported errors");
  st.SetBytesProcessed(std::int64_t(st.iterations()) * std::int64_t(c.dirty.size()) * kPageSize);
}

// --- registration ------------------------------------------------------------------

// The worker's side of the selector, per segment: read the decision table
// through its pointer, pick the arm, push the segment's sample into the ring
// (drained now and then, as the control thread would). Reported per page
// for a 16-page segment (a 64 KiB exploration batch, the smallest there is).
void bm_selector_lookup(benchmark::State &st) {
  sample_ring ring(1024);
  decision_table t;
  t.cls[0] = {5, 7, 16};
  t.cls[1] = {0, 2, 64};
  std::atomic<const decision_table *> tp{&t};
  std::array<selector_sample, 256> sink;
  std::uint64_t n = 0, cls_counter[2] = {0, 0};
  unsigned acc = 0;
  for (auto _ : st) {
    const std::size_t c = n & 1;
    const decision_table *cur = tp.load(std::memory_order_acquire);
    bool ex = false;
    const unsigned a = pick_arm(cur->cls[c], cls_counter[c]++, ex);
    selector_sample smp;
    smp.cls = static_cast<std::uint8_t>(c);
    smp.arm = static_cast<std::uint8_t>(a);
    smp.explored = ex;
    smp.pages = 16;
    ring.push(smp);
    if ((++n & 127) == 0)
      ring.drain(sink);
    acc += a;
  }
  benchmark::DoNotOptimize(acc);
  st.counters["ns_per_page"] = benchmark::Counter(static_cast<double>(st.iterations()) * 16,
                                                  benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// The control thread's side: one decide() over every (bulk, dirty) pair of
// arms, with estimates for all of them.
void bm_selector_decide(benchmark::State &st) {
  selector_learner l(2.5e9);
  l.set_link(12.5e6);
  std::mt19937_64 rng(3);
  for (int i = 0; i < 4000; ++i) {
    selector_sample s;
    s.cls = static_cast<std::uint8_t>(i & 1);
    s.arm = static_cast<std::uint8_t>(rng() % kArmCount);
    s.explored = (i % 3) == 0;
    s.ref_arm = 4;
    s.pages = 16;
    s.raw_bytes = 60000;
    s.wire_bytes = static_cast<std::uint32_t>(20000 + rng() % 20000);
    s.codec_cycles = 100000 + rng() % 100000;
    s.cycles = s.codec_cycles + 50000;
    s.ref_wire = 30000;
    s.ref_cycles = 150000;
    l.add(s);
  }
  for (auto _ : st) {
    l.set_link((st.iterations() & 1) ? 12.5e6 : 1.25e9);  // flip: a decision to make every time
    benchmark::DoNotOptimize(l.decide());
  }
}

void register_all() {
  using benchmark::RegisterBenchmark;
  const std::string impl = is_zero_impl();
  RegisterBenchmark(("zero/page/" + impl).c_str(), bm_zero_page, kZeroDispatch);
  RegisterBenchmark("zero/page/generic", bm_zero_page, kZeroGeneric);
  RegisterBenchmark(("zero/64MiB/" + impl).c_str(), bm_zero_buffer, kZeroDispatch);
  RegisterBenchmark("zero/64MiB/generic", bm_zero_buffer, kZeroGeneric);
  RegisterBenchmark("zero/nonzero_pages", bm_zero_nonzero);

  RegisterBenchmark("hash/hash_page", bm_hash_page);

  RegisterBenchmark("delta/xbzrle_encode", bm_xbzrle_encode)->ArgName("budget")->Arg(2048)->Arg(3072);
  RegisterBenchmark("delta/xbzrle_apply", bm_xbzrle_apply);
  RegisterBenchmark("delta/xor_page", bm_xor_page);

  for (const char *name : kCodecs) {
    const auto spec = parse_codec(name);
    if (!spec)
      die(std::string("bad codec name ") + name);
    RegisterBenchmark((std::string("codec/compress/") + name).c_str(), bm_compress, *spec);
  }
  for (const char *name : kCodecs)
    RegisterBenchmark((std::string("codec/decompress/") + name).c_str(), bm_decompress,
                      *parse_codec(name));

  RegisterBenchmark("selector/lookup_per_segment", bm_selector_lookup);
  RegisterBenchmark("selector/decide", bm_selector_decide);

  RegisterBenchmark("zstd_stream/compress", bm_stream_compress)->ArgName("level")->Arg(3)->Arg(6);
  RegisterBenchmark("zstd_stream/decompress", bm_stream_decompress)->ArgName("level")->Arg(3)->Arg(6);

  // Fixed iteration counts: see the comment above bm_encode_bulk.
  // Sized for about a second per run each on the dev corpus (128 MiB rounds).
  struct {
    mode m;
    int enc_bulk, enc_dirty, dec_bulk, dec_dirty;
  } const modes[] = {{mode::datacenter, 5, 10, 10, 10}, {mode::internet, 2, 4, 6, 10}};
  for (const auto &md : modes) {
    const std::string n = mode_name(md.m);
    RegisterBenchmark(("ladder/encode_bulk/" + n).c_str(), bm_encode_bulk, md.m)
        ->Iterations(md.enc_bulk)->Unit(benchmark::kMillisecond);
    RegisterBenchmark(("ladder/encode_dirty/" + n).c_str(), bm_encode_dirty, md.m)
        ->Iterations(md.enc_dirty)->Unit(benchmark::kMillisecond);
    RegisterBenchmark(("ladder/decode_bulk/" + n).c_str(), bm_decode_bulk, md.m)
        ->Iterations(md.dec_bulk)->Unit(benchmark::kMillisecond);
    RegisterBenchmark(("ladder/decode_dirty/" + n).c_str(), bm_decode_dirty, md.m)
        ->Iterations(md.dec_dirty)->Unit(benchmark::kMillisecond);
  }
}

}  // namespace

int main(int argc, char **argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv))
    return 1;
  benchmark::AddCustomContext("is_zero_impl", is_zero_impl());
  benchmark::AddCustomContext("pages", source_name());
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
