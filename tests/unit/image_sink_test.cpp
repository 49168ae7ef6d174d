// image_sink_test.cpp — the destination's images written by several decode
// threads at once, as --decoders N does: each thread owns the 2 MiB blocks
// of its streams (the source shards pages by (vm, 2 MiB block)), writes
// pages and zero runs inside them in random order, and the files written
// afterwards must equal a reference image built the same way.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <vector>
#include <unistd.h>

#include "image_sink.h"

using namespace hde;
using namespace hde::dp;

namespace {

constexpr std::uint64_t kBlockPages = 512;  // 2 MiB

std::vector<char> read_file(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

struct op {
  std::uint32_t vm;
  std::uint64_t gfn;
  std::uint32_t zero_run;  // 0: a page write
  std::uint8_t fill;
};

// The operations of one owner, on its blocks only, in a random order.
std::vector<op> make_ops(unsigned owner, unsigned owners, std::uint64_t pages, std::uint32_t vms,
                         std::mt19937_64 &rng) {
  std::vector<op> ops;
  for (std::uint32_t vm = 0; vm < vms; ++vm)
    for (std::uint64_t b = owner; b * kBlockPages < pages; b += owners) {
      const std::uint64_t first = b * kBlockPages, end = std::min(pages, first + kBlockPages);
      for (std::uint64_t g = first; g < end;) {
        if (rng() % 4 == 0) {  // a zero run within the block
          const auto n = static_cast<std::uint32_t>(std::min<std::uint64_t>(1 + rng() % 40, end - g));
          ops.push_back({vm, g, n, 0});
          g += n;
        } else {
          ops.push_back({vm, g, 0, static_cast<std::uint8_t>(1 + rng() % 255)});
          ++g;
        }
      }
    }
  // Rewrites: a page written twice, or zeroed after being written.
  const std::size_t base = ops.size();
  for (std::size_t i = 0; i < base / 8; ++i) {
    op o = ops[rng() % base];
    if (o.zero_run == 0 && rng() % 2 == 0) {
      o.zero_run = 1;
      o.fill = 0;
    } else if (o.zero_run == 0) {
      o.fill = static_cast<std::uint8_t>(1 + rng() % 255);
    }
    ops.push_back(o);
  }
  // Shuffle within the order constraint that a rewrite comes after the
  // original: shuffle the first part only.
  std::shuffle(ops.begin(), ops.begin() + static_cast<std::ptrdiff_t>(base), rng);
  return ops;
}

void apply(image_sink &sink, const op &o) {
  if (o.zero_run != 0) {
    ASSERT_EQ(sink.put_zero(o.vm, o.gfn, o.zero_run), error::ok);
  } else {
    alignas(64) std::byte page[kPageSize];
    std::memset(page, o.fill, sizeof page);
    std::memcpy(page, &o.gfn, sizeof o.gfn);  // every page distinct
    ASSERT_EQ(sink.put_page({o.vm, o.gfn}, page), error::ok);
  }
}

void apply_ref(std::vector<std::vector<char>> &ref, const op &o) {
  auto &img = ref[o.vm];
  if (o.zero_run != 0) {
    const std::uint64_t end = o.gfn + o.zero_run;
    if (img.size() < end * kPageSize)
      img.resize(end * kPageSize, 0);
    std::memset(img.data() + o.gfn * kPageSize, 0, std::size_t(o.zero_run) * kPageSize);
  } else {
    if (img.size() < (o.gfn + 1) * kPageSize)
      img.resize((o.gfn + 1) * kPageSize, 0);
    char *p = img.data() + o.gfn * kPageSize;
    std::memset(p, o.fill, kPageSize);
    std::memcpy(p, &o.gfn, sizeof o.gfn);
  }
}

class ImageSinkThreads : public ::testing::TestWithParam<unsigned> {};

TEST_P(ImageSinkThreads, ConcurrentWritersGiveTheReferenceImage) {
  const unsigned owners = GetParam();
  constexpr std::uint64_t kPages = 5 * kBlockPages + 77;  // a partial last block
  constexpr std::uint32_t kVms = 3;
  std::mt19937_64 rng(1234 + owners);
  std::vector<std::vector<op>> ops;
  for (unsigned t = 0; t < owners; ++t)
    ops.push_back(make_ops(t, owners, kPages, kVms, rng));

  std::vector<std::vector<char>> ref(kVms);
  for (const auto &list : ops)
    for (const op &o : list)
      apply_ref(ref, o);

  image_sink sink(64u << 20);
  std::vector<std::thread> th;
  for (unsigned t = 0; t < owners; ++t)
    th.emplace_back([&, t] {
      for (const op &o : ops[t])
        apply(sink, o);
    });
  for (auto &x : th)
    x.join();

  char tmpl[] = "/tmp/hde-sink-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  std::string err;
  ASSERT_TRUE(sink.write_all(dir, err)) << err;
  for (std::uint32_t vm = 0; vm < kVms; ++vm) {
    const std::string path = dir + "/vm-" + std::to_string(vm) + ".raw";
    const std::vector<char> got = read_file(path);
    EXPECT_EQ(got.size(), ref[vm].size()) << "vm " << vm;
    EXPECT_TRUE(got == ref[vm]) << "vm " << vm << ": image differs";
    std::remove(path.c_str());
  }
  rmdir(dir.c_str());
}

INSTANTIATE_TEST_SUITE_P(Owners, ImageSinkThreads, ::testing::Values(1u, 2u, 4u));

TEST(ImageSink, RejectsOutOfRange) {
  image_sink sink(1u << 20);  // 256 pages per VM
  alignas(64) std::byte page[kPageSize] = {};
  EXPECT_EQ(sink.put_page({0, 256}, page), error::bad_input);
  EXPECT_EQ(sink.put_page({kMaxVms, 0}, page), error::bad_input);
  EXPECT_EQ(sink.put_zero(0, 250, 7), error::bad_input);
  EXPECT_EQ(sink.put_zero(0, 250, 6), error::ok);
}

}  // namespace
