// codec_test.cpp — codec_set: round trips of every codec and level over many
// page kinds and sizes, no_space, wrong output sizes, corrupt / truncated /
// garbage input behind guard pages, the zstd stream (order, window reuse,
// reset, level changes, errors), parse_codec, codec_bound, and no heap use
// after construction.
#include <gtest/gtest.h>
#include <lz4.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "test_pages.h"

using namespace hde;

// ---------------------------------------------------------------------------
// Heap accounting: malloc and friends are interposed (the codec libraries'
// calls resolve to these too) and counted while g_counting is set. Not under
// a sanitizer, which owns malloc.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HDE_COUNT_MALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define HDE_COUNT_MALLOC 0
#endif
#endif
#ifndef HDE_COUNT_MALLOC
#define HDE_COUNT_MALLOC 1
extern "C" {
void *__libc_malloc(std::size_t);
void *__libc_calloc(std::size_t, std::size_t);
void *__libc_realloc(void *, std::size_t);
void *__libc_memalign(std::size_t, std::size_t);
}
namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocs{0};
void note_alloc() {
  if (g_counting.load(std::memory_order_relaxed))
    g_allocs.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace
extern "C" {
void *malloc(std::size_t n) noexcept {
  note_alloc();
  return __libc_malloc(n);
}
void *calloc(std::size_t n, std::size_t size) noexcept {
  note_alloc();
  return __libc_calloc(n, size);
}
void *realloc(void *p, std::size_t n) noexcept {
  note_alloc();
  return __libc_realloc(p, n);
}
void *aligned_alloc(std::size_t align, std::size_t n) noexcept {
  note_alloc();
  return __libc_memalign(align, n);
}
int posix_memalign(void **out, std::size_t align, std::size_t n) noexcept {
  note_alloc();
  *out = __libc_memalign(align, n);
  return *out != nullptr ? 0 : ENOMEM;
}
}
#endif

namespace {

using bytes = std::vector<std::byte>;

bytes_view view(const bytes &b) { return {b.data(), b.size()}; }

// A buffer that ends right before an inaccessible page: any read or write
// past its end faults, even from the codec libraries' uninstrumented code.
class guarded_buf {
public:
  explicit guarded_buf(std::size_t cap) : cap_(cap) {
    page_ = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    len_ = (cap + page_ - 1) / page_ * page_ + page_;
    void *m = mmap(nullptr, len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
      std::abort();
    base_ = static_cast<std::byte *>(m);
    if (mprotect(base_ + len_ - page_, page_, PROT_NONE) != 0)
      std::abort();
  }
  guarded_buf(const guarded_buf &) = delete;
  guarded_buf &operator=(const guarded_buf &) = delete;
  ~guarded_buf() { munmap(base_, len_); }

  // The last n (<= capacity) bytes before the guard page.
  bytes_buf tail(std::size_t n) { return {base_ + len_ - page_ - n, n}; }
  bytes_buf all() { return tail(cap_); }
  // Copy b so that it ends at the guard page.
  bytes_view put(const bytes &b) {
    bytes_buf t = tail(b.size());
    std::copy(b.begin(), b.end(), t.begin());
    return t;
  }

private:
  std::size_t cap_, page_, len_;
  std::byte *base_;
};

bool same(bytes_view a, bytes_view b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }

// ------------------------------------------------------------------ inputs

enum class input_kind { zero, text, records, random, sparse, pointer_table, mixed };
constexpr input_kind kAllKinds[] = {input_kind::zero,   input_kind::text,
                                    input_kind::records, input_kind::random,
                                    input_kind::sparse, input_kind::pointer_table,
                                    input_kind::mixed};

const char *kind_name(input_kind k) {
  switch (k) {
  case input_kind::zero: return "zero";
  case input_kind::text: return "text";
  case input_kind::records: return "records";
  case input_kind::random: return "random";
  case input_kind::sparse: return "sparse";
  case input_kind::pointer_table: return "pointer_table";
  case input_kind::mixed: return "mixed";
  }
  return "?";
}

test::page_kind page_kind_of(input_kind k) {
  switch (k) {
  case input_kind::zero: return test::page_kind::zero;
  case input_kind::text: return test::page_kind::text;
  case input_kind::records: return test::page_kind::records;
  case input_kind::random: return test::page_kind::random;
  case input_kind::sparse: return test::page_kind::sparse;
  case input_kind::pointer_table: return test::page_kind::pointer_table;
  case input_kind::mixed: break;
  }
  std::abort();
}

// n bytes made of pages of one kind; "mixed" is guest-like memory: pages of
// any kind, a third of them lightly dirtied copies of earlier ones.
bytes make_input(input_kind k, std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  bytes out;
  std::vector<test::page_bytes> seen;
  while (out.size() < n) {
    test::page_bytes p;
    if (k != input_kind::mixed) {
      p = test::make_page(page_kind_of(k), rng);
    } else if (!seen.empty() && rng() % 3 == 0) {
      p = seen[rng() % seen.size()];
      test::mutate(p, rng, 4, 16);
    } else {
      p = test::random_page(rng);
      seen.push_back(p);
    }
    out.insert(out.end(), p.begin(), p.end());
  }
  out.resize(n);
  return out;
}

// ------------------------------------------------------------------ specs

std::vector<codec_spec> all_specs() {
  std::vector<codec_spec> v{{codec_id::raw, 0}};
  for (int l : {1, 2, 3, 4, 8, 17, 100, 1000, 65537})
    v.push_back({codec_id::lz4, l});
  for (int l = 1; l <= 19; ++l)
    v.push_back({codec_id::zstd, l});
  for (int l = 0; l <= 3; ++l)
    v.push_back({codec_id::igzip, l});
  return v;
}

bytes noise(std::size_t n, std::mt19937_64 &rng) {
  bytes b(n);
  for (auto &x : b)
    x = std::byte(rng());
  return b;
}

bool is_error(error e) { return e == error::codec_failed || e == error::bad_size; }

// Compressed form of src with c (must succeed).
bytes compressed(codec_set &cs, codec_spec c, const bytes &src) {
  bytes out(codec_bound(src.size()));
  auto r = cs.compress(c, view(src), out);
  EXPECT_EQ(r.err, error::ok) << to_string(c);
  out.resize(r.value);
  return out;
}

// ------------------------------------------------------------ names, parse

TEST(CodecNames, NamesAndLevels) {
  EXPECT_EQ(codec_name(codec_id::raw), "raw");
  EXPECT_EQ(codec_name(codec_id::lz4), "lz4");
  EXPECT_EQ(codec_name(codec_id::zstd), "zstd");
  EXPECT_EQ(codec_name(codec_id::igzip), "igzip");

  struct {
    codec_spec c;
    bool valid;
  } cases[] = {
      {{codec_id::raw, 0}, true},       {{codec_id::raw, 1}, false},
      {{codec_id::lz4, 0}, false},      {{codec_id::lz4, 1}, true},
      {{codec_id::lz4, 65537}, true},   {{codec_id::lz4, 65538}, false},
      {{codec_id::lz4, -1}, false},     {{codec_id::zstd, 0}, false},
      {{codec_id::zstd, 1}, true},      {{codec_id::zstd, 19}, true},
      {{codec_id::zstd, 20}, false},    {{codec_id::igzip, -1}, false},
      {{codec_id::igzip, 0}, true},     {{codec_id::igzip, 3}, true},
      {{codec_id::igzip, 4}, false},    {{codec_id::count_, 0}, false},
      {{static_cast<codec_id>(200), 1}, false},
  };
  for (const auto &t : cases)
    EXPECT_EQ(codec_level_valid(t.c), t.valid)
        << int(t.c.id) << ":" << t.c.level;
}

TEST(ParseCodec, AcceptsNamesAndLevels) {
  struct {
    const char *s;
    codec_spec c;
  } cases[] = {
      {"raw", {codec_id::raw, 0}},         {"lz4", {codec_id::lz4, 1}},
      {"lz4:1", {codec_id::lz4, 1}},       {"lz4:8", {codec_id::lz4, 8}},
      {"lz4:65537", {codec_id::lz4, 65537}}, {"zstd", {codec_id::zstd, 3}},
      {"zstd:1", {codec_id::zstd, 1}},     {"zstd:19", {codec_id::zstd, 19}},
      {"zstd:09", {codec_id::zstd, 9}},    {"igzip", {codec_id::igzip, 1}},
      {"igzip:0", {codec_id::igzip, 0}},   {"igzip:3", {codec_id::igzip, 3}},
  };
  for (const auto &t : cases) {
    auto c = parse_codec(t.s);
    ASSERT_TRUE(c.has_value()) << t.s;
    EXPECT_EQ(*c, t.c) << t.s;
  }
}

TEST(ParseCodec, RejectsMalformed) {
  for (const char *s :
       {"", ":", "raw:", "raw:0", "raw:1", "lz4:", "lz4:0", "lz4:65538", "lz4:-1", "lz4:+1",
        "lz4: 1", "lz4:1 ", " lz4", "lz4 ", "LZ4", "Zstd", "zstd:0", "zstd:20", "zstd:3x",
        "zstd:x3", "zstd:3:4", "zstd::3", "zstd:99999999999999999999", "zstd:1.5", "igzip:4",
        "igzip:-0", "gzip", "zlib", "lz4hc", "zstd3", "igzip1", "rawx", "lz"}) {
    EXPECT_FALSE(parse_codec(s).has_value()) << '"' << s << '"';
  }
  // Any byte after the name or the number, even a NUL, is rejected.
  EXPECT_FALSE(parse_codec(std::string_view("lz4\0", 4)).has_value());
  EXPECT_FALSE(parse_codec(std::string_view("lz4:1\0", 6)).has_value());
}

TEST(ParseCodec, ToStringRoundTrips) {
  EXPECT_EQ(to_string({codec_id::raw, 0}), "raw");
  EXPECT_EQ(to_string({codec_id::lz4, 1}), "lz4:1");
  EXPECT_EQ(to_string({codec_id::zstd, 3}), "zstd:3");
  EXPECT_EQ(to_string({codec_id::igzip, 1}), "igzip:1");
  EXPECT_EQ(to_string({codec_id::lz4, 65537}), "lz4:65537");
  for (codec_spec c : all_specs()) {
    auto back = parse_codec(to_string(c));
    ASSERT_TRUE(back.has_value()) << to_string(c);
    EXPECT_EQ(*back, c);
  }
}

// ------------------------------------------------------------------ bound

TEST(CodecBound, CoversEveryLibraryBound) {
  for (std::size_t n = 0; n < 70000; n += (n < 300 ? 1 : 997)) {
    EXPECT_GE(codec_bound(n), static_cast<std::size_t>(LZ4_compressBound(static_cast<int>(n))))
        << n;
    EXPECT_GE(codec_bound(n), ZSTD_compressBound(n)) << n;
    EXPECT_GE(codec_bound(n), n + 5) << n;  // one stored deflate block
  }
  EXPECT_GE(codec_bound(std::size_t{1} << 21), ZSTD_compressBound(std::size_t{1} << 21));
}

TEST(CodecBound, IncompressibleInputFitsEveryCodec) {
  codec_set cs;
  for (std::size_t n : {0, 1, 2, 7, 100, 4095, 4096, 65535, 65536, 65537, 200000}) {
    bytes src = make_input(input_kind::random, n, n);
    guarded_buf dst(codec_bound(n));
    guarded_buf back(n);
    for (codec_spec c : all_specs()) {
      SCOPED_TRACE(to_string(c) + " n=" + std::to_string(n));
      auto r = cs.compress(c, view(src), dst.all());
      ASSERT_EQ(r.err, error::ok);
      EXPECT_LE(r.value, codec_bound(n));
      if (c.id == codec_id::igzip) {  // never worse than stored deflate blocks
        std::size_t blocks = std::max<std::size_t>(1, (n + 65534) / 65535);
        EXPECT_LE(r.value, n + 5 * blocks);
      }
      bytes packed(dst.all().begin(), dst.all().begin() + static_cast<std::ptrdiff_t>(r.value));
      guarded_buf in(packed.size());
      ASSERT_EQ(cs.decompress(c.id, in.put(packed), back.all()), error::ok);
      EXPECT_TRUE(same(back.all(), view(src)));
    }
  }
}

// ------------------------------------------------------------- round trip

TEST(CodecRoundTrip, EveryCodecLevelKindAndSize) {
  codec_set cs;
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, kPageSize, std::size_t{256} << 10}) {
    for (input_kind k : kAllKinds) {
      bytes src = make_input(k, n, 1000 + n + static_cast<std::size_t>(k));
      guarded_buf in(n), dst(codec_bound(n)), back(n);
      bytes_view src_v = in.put(src);
      for (codec_spec c : all_specs()) {
        SCOPED_TRACE(to_string(c) + " " + kind_name(k) + " n=" + std::to_string(n));
        auto r = cs.compress(c, src_v, dst.all());
        ASSERT_EQ(r.err, error::ok);
        ASSERT_LE(r.value, codec_bound(n));
        bytes_view packed = dst.all().first(r.value);
        if (c.id == codec_id::raw) {
          EXPECT_EQ(r.value, n);
          EXPECT_TRUE(same(packed, src_v));
        } else if (n >= kPageSize && (k == input_kind::zero || k == input_kind::sparse)) {
          // Every real codec squeezes near-empty pages; LZ4 at a high
          // acceleration skips ahead past sparse bytes, so only zero ones.
          bool skips = c.id == codec_id::lz4 && c.level > 17;
          if (k == input_kind::zero || !skips) {
            EXPECT_LT(r.value, n / 8);
          }
        }
        guarded_buf pin(r.value);
        std::copy(packed.begin(), packed.end(), pin.all().begin());
        std::fill(back.all().begin(), back.all().end(), std::byte{0xA5});
        ASSERT_EQ(cs.decompress(c.id, pin.all(), back.all()), error::ok);
        EXPECT_TRUE(same(back.all(), src_v));
      }
    }
  }
}

TEST(CodecRoundTrip, HigherLevelsCompressBetter) {
  codec_set cs;
  bytes src = make_input(input_kind::mixed, 256 << 10, 5);
  auto size = [&](codec_spec c) { return compressed(cs, c, src).size(); };
  EXPECT_LT(size({codec_id::zstd, 19}), size({codec_id::zstd, 1}));
  EXPECT_LT(size({codec_id::igzip, 3}), size({codec_id::igzip, 0}));
  EXPECT_LT(size({codec_id::lz4, 1}), size({codec_id::lz4, 65537}));
  EXPECT_LT(size({codec_id::zstd, 3}), size({codec_id::lz4, 1}));
}

TEST(CodecRoundTrip, LargeInputsAtEveryZstdLevel) {
  // Past the 256 KiB tier zstd picks its largest parameters: the static
  // context sized in the constructor must still hold them.
  codec_set cs;
  bytes src = make_input(input_kind::mixed, std::size_t{1} << 20, 9);
  bytes back(src.size());
  for (int l = 1; l <= 19; ++l) {
    SCOPED_TRACE(l);
    bytes packed = compressed(cs, {codec_id::zstd, l}, src);
    ASSERT_EQ(cs.decompress(codec_id::zstd, view(packed), back), error::ok);
    EXPECT_EQ(back, src);
  }
}

TEST(CodecRoundTrip, WrongOutputSizeIsBadSize) {
  codec_set cs;
  for (input_kind k : {input_kind::text, input_kind::random, input_kind::zero}) {
    bytes src = make_input(k, kPageSize, 77);
    for (codec_spec c : all_specs()) {
      SCOPED_TRACE(to_string(c) + " " + kind_name(k));
      bytes packed = compressed(cs, c, src);
      guarded_buf in(packed.size());
      bytes_view pv = in.put(packed);
      for (std::size_t n : {std::size_t{0}, std::size_t{1}, kPageSize - 1, kPageSize + 1,
                            2 * kPageSize}) {
        guarded_buf out(n);
        error e = cs.decompress(c.id, pv, out.all());
        if (c.id == codec_id::lz4 && n == 0) {
          EXPECT_TRUE(is_error(e));  // LZ4 cannot tell "longer" from "corrupt" here
        } else {
          EXPECT_EQ(e, error::bad_size) << "dst " << n;
        }
      }
    }
  }
  // And the empty input, decompressed into one byte.
  for (codec_spec c : all_specs()) {
    bytes packed = compressed(cs, c, {});
    guarded_buf out(1);
    EXPECT_EQ(cs.decompress(c.id, view(packed), out.all()), error::bad_size) << to_string(c);
  }
}

// --------------------------------------------------------------- no_space

TEST(CodecNoSpace, TinyDestination) {
  codec_set cs;
  bytes src = make_input(input_kind::random, kPageSize, 3);
  for (codec_spec c : all_specs()) {
    SCOPED_TRACE(to_string(c));
    for (std::size_t cap : {std::size_t{0}, std::size_t{1}, std::size_t{16}, std::size_t{100},
                            kPageSize - 1}) {
      guarded_buf dst(cap);
      EXPECT_EQ(cs.compress(c, view(src), dst.all()).err, error::no_space) << "cap " << cap;
    }
    // The set is still fine afterwards.
    bytes packed = compressed(cs, c, src);
    bytes back(src.size());
    ASSERT_EQ(cs.decompress(c.id, view(packed), back), error::ok);
    EXPECT_EQ(back, src);
  }
}

TEST(CodecNoSpace, FitSucceedsOneLessDoesNot) {
  codec_set cs;
  for (input_kind k : {input_kind::text, input_kind::random, input_kind::mixed}) {
    for (std::size_t n : {kPageSize, std::size_t{100000}}) {
      bytes src = make_input(k, n, 11);
      for (codec_spec c : all_specs()) {
        SCOPED_TRACE(to_string(c) + " " + kind_name(k) + " n=" + std::to_string(n));
        bytes want = compressed(cs, c, src);
        // zstd and ISA-L may want a few bytes of room past their output while
        // they work; raw and LZ4 fit exactly.
        bool exact = c.id == codec_id::raw || c.id == codec_id::lz4;
        std::size_t slack = exact ? 0 : 32;
        guarded_buf fits(want.size() + slack), short_by_one(want.size() - 1);
        auto r = cs.compress(c, view(src), fits.all());
        ASSERT_EQ(r.err, error::ok);
        EXPECT_EQ(r.value, want.size());
        EXPECT_TRUE(same(fits.all().first(r.value), view(want)));
        EXPECT_EQ(cs.compress(c, view(src), short_by_one.all()).err, error::no_space);
      }
    }
  }
}

TEST(CodecErrors, UnknownCodecOrLevel) {
  codec_set cs;
  bytes src = make_input(input_kind::text, kPageSize, 1);
  bytes dst(codec_bound(src.size()));
  for (codec_spec c : {codec_spec{codec_id::raw, 1}, codec_spec{codec_id::lz4, 0},
                       codec_spec{codec_id::lz4, 65538}, codec_spec{codec_id::zstd, 0},
                       codec_spec{codec_id::zstd, 20}, codec_spec{codec_id::zstd, -3},
                       codec_spec{codec_id::igzip, -1}, codec_spec{codec_id::igzip, 4},
                       codec_spec{codec_id::count_, 1}, codec_spec{static_cast<codec_id>(9), 1}})
    EXPECT_EQ(cs.compress(c, view(src), dst).err, error::bad_codec)
        << int(c.id) << ":" << c.level;
  EXPECT_EQ(cs.decompress(codec_id::count_, view(src), dst), error::bad_codec);
  EXPECT_EQ(cs.decompress(static_cast<codec_id>(255), view(src), dst), error::bad_codec);
  EXPECT_EQ(cs.compress_stream(0, view(src), dst).err, error::bad_codec);
  EXPECT_EQ(cs.compress_stream(20, view(src), dst).err, error::bad_codec);
}

// ------------------------------------------------------- corrupt input

TEST(CodecCorrupt, EveryTruncationIsAnError) {
  codec_set cs;
  for (input_kind k : {input_kind::text, input_kind::random, input_kind::mixed}) {
    bytes src = make_input(k, kPageSize, 21);
    guarded_buf out(kPageSize);
    for (codec_spec c : all_specs()) {
      SCOPED_TRACE(to_string(c) + " " + kind_name(k));
      bytes packed = compressed(cs, c, src);
      guarded_buf in(packed.size());
      for (std::size_t len = 0; len < packed.size(); ++len) {
        bytes_buf prefix = in.tail(len);
        std::copy_n(packed.begin(), len, prefix.begin());
        error e = cs.decompress(c.id, prefix, out.all());
        ASSERT_TRUE(is_error(e)) << "prefix " << len << " of " << packed.size() << ": "
                                 << to_string(e);
      }
    }
  }
}

TEST(CodecCorrupt, BitFlipsNeverEscapeTheBuffers) {
  codec_set cs;
  std::mt19937_64 rng(31);
  for (input_kind k : {input_kind::text, input_kind::records, input_kind::mixed}) {
    bytes src = make_input(k, kPageSize, 41);
    guarded_buf out(kPageSize);
    for (codec_spec c : all_specs()) {
      SCOPED_TRACE(to_string(c) + " " + kind_name(k));
      bytes packed = compressed(cs, c, src);
      guarded_buf in(packed.size());
      std::size_t bits = packed.size() * 8, failures = 0, trials = 0;
      for (std::size_t i = 0; i < std::min<std::size_t>(bits, 400); ++i) {
        std::size_t bit = i < 128 ? i : rng() % bits;  // every header bit, then anywhere
        bytes bad = packed;
        bad[bit / 8] ^= std::byte(1u << (bit % 8));
        error e = cs.decompress(c.id, in.put(bad), out.all());
        ASSERT_TRUE(e == error::ok || is_error(e)) << to_string(e);
        if (c.id == codec_id::raw) {
          ASSERT_EQ(e, error::ok);  // raw has nothing to check: a same-size copy
        }
        ++trials;
        failures += e != error::ok;
      }
      // Mostly literals can flip unnoticed, but not everything does.
      if (c.id == codec_id::zstd || c.id == codec_id::igzip) {
        EXPECT_GT(failures, 0u) << "of " << trials;
      }
      // The set is unharmed.
      ASSERT_EQ(cs.decompress(c.id, view(packed), out.all()), error::ok);
      EXPECT_TRUE(same(out.all(), view(src)));
    }
  }
}

TEST(CodecCorrupt, GarbageNeverEscapesTheBuffers) {
  codec_set cs;
  std::mt19937_64 rng(51);
  bytes valid_src = make_input(input_kind::text, kPageSize, 52);
  for (codec_id id : {codec_id::raw, codec_id::lz4, codec_id::zstd, codec_id::igzip}) {
    SCOPED_TRACE(std::string(codec_name(id)));
    bytes valid = compressed(cs, {id, id == codec_id::raw ? 0 : 1}, valid_src);
    for (int trial = 0; trial < 3000; ++trial) {
      bytes g;
      switch (trial % 3) {
      case 0:  // pure noise
        g = noise(rng() % 5000, rng);
        break;
      case 1: {  // a valid head, noise after
        auto head = static_cast<std::ptrdiff_t>(1 + rng() % valid.size());
        g.assign(valid.begin(), valid.begin() + head);
        bytes tail = noise(rng() % 3000, rng);
        g.insert(g.end(), tail.begin(), tail.end());
        break;
      }
      default: {  // a valid stream with a noisy run somewhere
        g = valid;
        std::size_t at = rng() % g.size();
        for (std::size_t i = at; i < std::min(g.size(), at + 1 + rng() % 64); ++i)
          g[i] = std::byte(rng());
        break;
      }
      }
      const std::size_t sizes[] = {0, 1, kPageSize, rng() % 9000};
      std::size_t n = sizes[rng() % 4];
      guarded_buf in(g.size()), out(n);
      error e = cs.decompress(id, in.put(g), out.all());
      ASSERT_TRUE(e == error::ok || is_error(e)) << to_string(e);
      if (id == codec_id::raw) {
        EXPECT_EQ(e == error::ok, g.size() == n);
      }
      if (id == codec_id::zstd && trial % 3 == 0 && !g.empty()) {
        EXPECT_NE(e, error::ok);  // no zstd magic
      }
    }
    // Bytes after a complete stream are an error for every codec.
    for (std::size_t extra : {1, 2, 3, 8, 100}) {
      bytes g = valid;
      g.resize(g.size() + extra, std::byte{0x5A});
      guarded_buf in(g.size()), out(kPageSize);
      EXPECT_TRUE(is_error(cs.decompress(id, in.put(g), out.all()))) << "extra " << extra;
    }
  }
}

// ------------------------------------------------------------ zstd stream

// A sender and a receiver, as on the two ends of a WAN link.
struct stream_pair {
  codec_set tx, rx;

  // Compress one batch; returns the bytes (must succeed).
  bytes send(int level, const bytes &src) {
    bytes out(codec_bound(src.size()));
    auto r = tx.compress_stream(level, view(src), out);
    EXPECT_EQ(r.err, error::ok);
    out.resize(r.value);
    return out;
  }
  // Decompress one batch of the given size behind guard pages.
  error receive(const bytes &packed, std::size_t n, bytes *got = nullptr) {
    guarded_buf in(packed.size()), out(n);
    error e = rx.decompress_stream(in.put(packed), out.all());
    if (got != nullptr)
      got->assign(out.all().begin(), out.all().end());
    return e;
  }
  // Send and receive one batch; true when it arrives intact.
  bool round_trip(int level, const bytes &src) {
    bytes got;
    return receive(send(level, src), src.size(), &got) == error::ok && got == src;
  }
};

TEST(CodecStream, BatchesRoundTripInOrder) {
  stream_pair p;
  std::size_t sizes[] = {kPageSize, 0, 1, 65536, 256 << 10, 3 * kPageSize, 0, 100000, 7};
  int seed = 0;
  for (std::size_t n : sizes) {
    bytes src = make_input(input_kind::mixed, n, ++seed);
    EXPECT_TRUE(p.round_trip(3, src)) << "batch " << seed << " n=" << n;
  }
}

TEST(CodecStream, LaterBatchesReuseEarlierContent) {
  stream_pair p;
  bytes a = make_input(input_kind::random, 64 << 10, 1);  // incompressible alone
  bytes a_dirty = a;
  std::mt19937_64 rng(2);
  for (std::size_t off = 0; off < a_dirty.size(); off += kPageSize) {
    test::page_bytes page(a_dirty.begin() + off, a_dirty.begin() + off + kPageSize);
    test::mutate(page, rng, 3, 8);
    std::copy(page.begin(), page.end(), a_dirty.begin() + off);
  }

  bytes first = p.send(3, a);
  EXPECT_GT(first.size(), a.size() * 99 / 100);
  ASSERT_EQ(p.receive(first, a.size()), error::ok);

  bytes again = p.send(3, a);  // the same bytes: all matches into the window
  EXPECT_LT(again.size(), a.size() / 50);
  bytes got;
  ASSERT_EQ(p.receive(again, a.size(), &got), error::ok);
  EXPECT_EQ(got, a);

  bytes dirty = p.send(3, a_dirty);  // dirtied pages: still mostly matches
  codec_set one_shot;
  std::size_t alone = compressed(one_shot, {codec_id::zstd, 3}, a_dirty).size();
  EXPECT_LT(dirty.size() * 10, alone);
  ASSERT_EQ(p.receive(dirty, a.size(), &got), error::ok);
  EXPECT_EQ(got, a_dirty);
}

TEST(CodecStream, ResetForgetsHistoryOnBothSides) {
  stream_pair p;
  bytes a = make_input(input_kind::random, 32 << 10, 3);
  ASSERT_TRUE(p.round_trip(3, a));
  ASSERT_LT(p.send(3, a).size(), a.size() / 20);  // (receiver not fed: reset follows)
  p.tx.reset_stream();
  p.rx.reset_stream();
  bytes fresh = p.send(3, a);
  EXPECT_GT(fresh.size(), a.size() * 99 / 100);  // the window is gone
  bytes got;
  ASSERT_EQ(p.receive(fresh, a.size(), &got), error::ok);
  EXPECT_EQ(got, a);
  EXPECT_TRUE(p.round_trip(3, a));
}

TEST(CodecStream, ResetOnOneSideOnlyFailsCleanly) {
  stream_pair p;
  bytes a = make_input(input_kind::mixed, 64 << 10, 4);
  bytes b = make_input(input_kind::mixed, 64 << 10, 5);
  ASSERT_TRUE(p.round_trip(3, a));
  p.tx.reset_stream();  // the receiver is not told
  bytes got;
  error e = p.receive(p.send(3, b), b.size(), &got);
  EXPECT_TRUE(e != error::ok || got != b);
  // Both reset: in step again.
  p.tx.reset_stream();
  p.rx.reset_stream();
  EXPECT_TRUE(p.round_trip(3, b));
}

TEST(CodecStream, OutOfOrderBatchesFailCleanly) {
  stream_pair p;
  bytes a = make_input(input_kind::random, 32 << 10, 6);
  bytes b = make_input(input_kind::random, 32 << 10, 7);
  bytes b1 = p.send(3, a);
  bytes b2 = p.send(3, b);
  bytes b3 = p.send(3, b);  // refers back into b2
  ASSERT_LT(b3.size(), b.size() / 20);

  bytes got;
  EXPECT_TRUE(is_error(p.receive(b2, b.size(), &got)));  // no frame header yet
  p.rx.reset_stream();
  ASSERT_EQ(p.receive(b1, a.size(), &got), error::ok);
  EXPECT_EQ(got, a);
  // b2 skipped: b3's matches land in a instead. Without a checksum zstd may
  // not notice, but it never yields b.
  error e = p.receive(b3, b.size(), &got);
  EXPECT_TRUE(e != error::ok || got != b);

  p.tx.reset_stream();
  p.rx.reset_stream();
  EXPECT_TRUE(p.round_trip(3, a));
  EXPECT_TRUE(p.round_trip(3, b));
}

TEST(CodecStream, WrongOutputSizeIsBadSize) {
  for (std::ptrdiff_t delta : {-1, 1, -4096}) {
    stream_pair p;
    bytes a = make_input(input_kind::mixed, 16 << 10, 8);
    ASSERT_TRUE(p.round_trip(3, a));
    bytes packed = p.send(3, a);
    EXPECT_EQ(p.receive(packed, static_cast<std::size_t>(std::ptrdiff_t(a.size()) + delta)),
              error::bad_size)
        << delta;
    // An error ends the stream: both sides restart.
    p.tx.reset_stream();
    p.rx.reset_stream();
    EXPECT_TRUE(p.round_trip(3, a));
  }
  stream_pair p;
  EXPECT_EQ(p.receive({}, 1), error::bad_size);  // nothing decodes to one byte
}

TEST(CodecStream, NoSpaceRestartsTheSender) {
  stream_pair p;
  bytes a = make_input(input_kind::mixed, 32 << 10, 9);
  bytes noise = make_input(input_kind::random, 32 << 10, 10);
  ASSERT_TRUE(p.round_trip(3, a));
  guarded_buf small(100);
  EXPECT_EQ(p.tx.compress_stream(3, view(noise), small.all()).err, error::no_space);
  guarded_buf none(0);
  EXPECT_EQ(p.tx.compress_stream(3, view(noise), none.all()).err, error::no_space);

  // The sender has restarted: its next batch opens a new frame...
  bytes next = p.send(3, a);
  ASSERT_GE(next.size(), 4u);
  std::uint32_t magic;
  std::memcpy(&magic, next.data(), 4);
  EXPECT_EQ(magic, ZSTD_MAGICNUMBER);
  EXPECT_GT(next.size(), 1000u);  // ...without the old window
  // ...which the receiver reads once it has reset as well.
  p.rx.reset_stream();
  bytes got;
  ASSERT_EQ(p.receive(next, a.size(), &got), error::ok);
  EXPECT_EQ(got, a);
  EXPECT_TRUE(p.round_trip(3, a));
}

TEST(CodecStream, LevelChangeTakesEffectAndStaysDecodable) {
  bytes t = make_input(input_kind::text, 128 << 10, 12);
  auto fresh_size = [&](int level) {
    stream_pair q;
    return q.send(level, t).size();
  };
  const std::size_t at1 = fresh_size(1), at19 = fresh_size(19);
  ASSERT_LT(at19, at1);

  stream_pair p;
  ASSERT_TRUE(p.round_trip(1, make_input(input_kind::mixed, 64 << 10, 13)));
  bytes packed = p.send(19, t);  // level change mid-stream
  EXPECT_LE(packed.size(), at19 + 8);
  bytes got;
  ASSERT_EQ(p.receive(packed, t.size(), &got), error::ok);
  EXPECT_EQ(got, t);
  for (int level : {19, 1, 1, 7, 3, 19}) {
    EXPECT_TRUE(p.round_trip(level, make_input(input_kind::mixed, 20000, 20 + level)))
        << level;
  }
}

TEST(CodecStream, EmptyBatches) {
  stream_pair p;
  bytes empty;
  EXPECT_TRUE(p.round_trip(3, empty));
  EXPECT_TRUE(p.round_trip(3, make_input(input_kind::text, 5000, 1)));
  for (int i = 0; i < 40; ++i)  // many in a row (zstd counts calls without progress)
    ASSERT_TRUE(p.round_trip(3, empty)) << i;
  EXPECT_TRUE(p.round_trip(5, empty));  // a level change on an empty batch
  EXPECT_TRUE(p.round_trip(5, make_input(input_kind::text, 5000, 2)));
}

TEST(CodecStream, DecoderRefusesWindowsOver8MiB) {
  bytes src = make_input(input_kind::text, 64 << 10, 14);
  for (int wlog : {23, 24}) {
    ZSTD_CCtx *c = ZSTD_createCCtx();
    ASSERT_NE(c, nullptr);
    ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, wlog);
    bytes out(codec_bound(src.size()));
    ZSTD_inBuffer in{src.data(), src.size(), 0};
    ZSTD_outBuffer o{out.data(), out.size(), 0};
    ASSERT_EQ(ZSTD_compressStream2(c, &o, &in, ZSTD_e_flush), 0u);
    ZSTD_freeCCtx(c);
    out.resize(o.pos);
    stream_pair p;
    bytes got;
    error e = p.receive(out, src.size(), &got);
    if (wlog == 23) {
      EXPECT_EQ(e, error::ok);
      EXPECT_EQ(got, src);
    } else {
      EXPECT_EQ(e, error::codec_failed);
    }
  }
}

TEST(CodecStream, CorruptBatchesNeverEscapeTheBuffers) {
  std::mt19937_64 rng(61);
  bytes a = make_input(input_kind::mixed, 16 << 10, 15);
  bytes b = make_input(input_kind::mixed, 16 << 10, 16);
  stream_pair src_pair;
  bytes first = src_pair.send(3, a), second = src_pair.send(3, b);

  codec_set rx;
  auto feed = [&](const bytes &packed, std::size_t n) {
    guarded_buf in(packed.size()), out(n);
    return rx.decompress_stream(in.put(packed), out.all());
  };
  // Every truncation of the first batch.
  for (std::size_t len = 1; len < first.size(); ++len) {
    rx.reset_stream();
    bytes cut(first.begin(), first.begin() + static_cast<std::ptrdiff_t>(len));
    ASSERT_TRUE(is_error(feed(cut, a.size()))) << len;
  }
  // Bit flips in the first and in the second batch.
  for (int trial = 0; trial < 600; ++trial) {
    rx.reset_stream();
    bool in_second = trial % 2 == 1;
    bytes bad = in_second ? second : first;
    std::size_t bit = rng() % (bad.size() * 8);
    bad[bit / 8] ^= std::byte(1u << (bit % 8));
    error e = in_second ? feed(first, a.size()) : error::ok;
    ASSERT_EQ(e, error::ok);
    e = feed(bad, in_second ? b.size() : a.size());
    ASSERT_TRUE(e == error::ok || is_error(e)) << to_string(e);
  }
  // Noise.
  for (int trial = 0; trial < 600; ++trial) {
    rx.reset_stream();
    bytes g = noise(1 + rng() % 4000, rng);
    EXPECT_TRUE(is_error(feed(g, rng() % 2 ? a.size() : rng() % 100)));
  }
  // Still a working receiver.
  rx.reset_stream();
  EXPECT_EQ(feed(first, a.size()), error::ok);
  EXPECT_EQ(feed(second, b.size()), error::ok);
}

TEST(CodecStream, OneShotCallsDoNotDisturbTheStream) {
  stream_pair p;
  bytes a = make_input(input_kind::random, 32 << 10, 17);
  ASSERT_TRUE(p.round_trip(3, a));
  for (codec_set *cs : {&p.tx, &p.rx}) {  // one-shot zstd on both ends in between
    bytes other = make_input(input_kind::mixed, 100000, 18);
    bytes packed = compressed(*cs, {codec_id::zstd, 19}, other);
    bytes back(other.size());
    ASSERT_EQ(cs->decompress(codec_id::zstd, view(packed), back), error::ok);
    EXPECT_EQ(back, other);
  }
  bytes again = p.send(3, a);
  EXPECT_LT(again.size(), a.size() / 20);
  bytes got;
  ASSERT_EQ(p.receive(again, a.size(), &got), error::ok);
  EXPECT_EQ(got, a);
}

// ------------------------------------------------------- heap discipline

TEST(CodecAlloc, NoHeapAfterConstruction) {
#if !HDE_COUNT_MALLOC
  GTEST_SKIP() << "malloc belongs to the sanitizer in this build";
#else
  // Inputs and buffers first: only codec calls run while counting.
  std::vector<bytes> inputs;
  for (input_kind k : {input_kind::mixed, input_kind::random, input_kind::zero})
    for (std::size_t n : {std::size_t{0}, kPageSize, std::size_t{256} << 10})
      inputs.push_back(make_input(k, n, 70 + n));
  inputs.push_back(make_input(input_kind::mixed, std::size_t{1} << 20, 79));  // zstd only
  const std::vector<codec_spec> specs = all_specs();
  bytes packed(codec_bound(std::size_t{1} << 20)), back(std::size_t{1} << 20), tiny(8);
  bytes stream_in = make_input(input_kind::mixed, 256 << 10, 80);
  bytes garbage = make_input(input_kind::random, 3000, 81);
  codec_set tx, rx;

  int failures = 0;
  auto check = [&failures](bool ok) { failures += !ok; };
  g_allocs = 0;
  g_counting = true;
  for (int round = 0; round < 2; ++round) {
    for (const bytes &in : inputs) {
      for (codec_spec c : specs) {
        if (in.size() > (256u << 10) && c.id != codec_id::zstd)
          continue;
        bytes_buf out = bytes_buf(back).first(in.size());
        auto r = tx.compress(c, view(in), packed);
        check(r.ok());
        check(rx.decompress(c.id, bytes_view(packed).first(r.value), out) == error::ok);
        auto t = tx.compress(c, view(in), tiny);
        check(t.ok() || t.err == error::no_space);
        check(rx.decompress(c.id, view(garbage), out) != error::ok || c.id == codec_id::raw);
      }
    }
    for (int level : {1, 3, 19, 3}) {
      auto r = tx.compress_stream(level, view(stream_in), packed);
      check(r.ok());
      check(rx.decompress_stream(bytes_view(packed).first(r.value),
                                 bytes_buf(back).first(stream_in.size())) == error::ok);
    }
    check(tx.compress_stream(3, view(stream_in), tiny).err == error::no_space);
    check(rx.decompress_stream(view(garbage), bytes_buf(back).first(kPageSize)) != error::ok);
    tx.reset_stream();
    rx.reset_stream();
  }
  g_counting = false;
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(g_allocs.load(), 0);
#endif
}

TEST(CodecAlloc, IdleSetsCostLittleResidentMemory) {
#if !HDE_COUNT_MALLOC
  GTEST_SKIP() << "the sanitizer's allocator touches what it hands out";
#else
  // The zstd workspaces reserve room for level 19 (tens of MiB of address
  // space per set) but only the pages a call uses become resident.
  auto rss_kib = [] {
    long pages = 0, resident = 0;
    FILE *f = std::fopen("/proc/self/statm", "r");
    if (f == nullptr || std::fscanf(f, "%ld %ld", &pages, &resident) != 2)
      resident = -1;
    if (f != nullptr)
      std::fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
  };
  const long before = rss_kib();
  ASSERT_GT(before, 0);
  std::vector<std::unique_ptr<codec_set>> sets;
  bytes src = make_input(input_kind::text, kPageSize, 90);
  for (int i = 0; i < 16; ++i) {
    sets.push_back(std::make_unique<codec_set>());
    bytes packed = compressed(*sets.back(), {codec_id::zstd, 3}, src);  // lightly used
    bytes back(src.size());
    ASSERT_EQ(sets.back()->decompress(codec_id::zstd, view(packed), back), error::ok);
  }
  EXPECT_LT(rss_kib() - before, 16 * 2048) << "KiB for 16 sets";
#endif
}

}  // namespace
