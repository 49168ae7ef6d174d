// trace_test.cpp — tests of the trace reader: generated traces in the corpus
// format (zstd, patch-from the previous snapshot, manifest.json) and lists of
// raw images load byte-exact with their SHA-256 checked; every kind of bad
// input gives a one-line error naming what is wrong; and, when present, the
// dev corpus loads and verifies.
#include "trace/trace.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zstd.h>

#include <atomic>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "test_pages.h"

namespace hde {
namespace {

namespace fs = std::filesystem;
using image = std::vector<std::byte>;

const char *const kCorpusDev = "/work/shared/corpus/dev";

// A fresh directory under the system temp dir, removed with its contents.
class temp_dir {
public:
  temp_dir() {
    static std::atomic<unsigned> counter{0};
    path_ = fs::temp_directory_path() /
            ("hde-trace-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
             std::to_string(std::random_device{}()));
    fs::create_directories(path_);
  }
  temp_dir(const temp_dir &) = delete;
  temp_dir &operator=(const temp_dir &) = delete;
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path &path() const { return path_; }
  std::string str() const { return path_.string(); }
  std::string file(const std::string &name) const { return (path_ / name).string(); }

private:
  fs::path path_;
};

void write_bytes(const std::string &path, const void *data, std::size_t len) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(static_cast<const char *>(data), static_cast<std::streamsize>(len));
  ASSERT_TRUE(f.good()) << path;
}
void write_bytes(const std::string &path, const image &b) { write_bytes(path, b.data(), b.size()); }
void write_text(const std::string &path, const std::string &s) { write_bytes(path, s.data(), s.size()); }

image read_bytes(const std::string &path) {
  image b(fs::file_size(path));
  std::ifstream f(path, std::ios::binary);
  f.read(reinterpret_cast<char *>(b.data()), static_cast<std::streamsize>(b.size()));
  EXPECT_TRUE(f.good()) << path;
  return b;
}

// Snapshots of a guest: realistic pages in the first, then each following
// one copies its predecessor and dirties about one page in eight.
std::vector<image> make_snapshots(std::size_t count, std::size_t pages, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<image> snaps;
  image first;
  for (std::size_t p = 0; p < pages; ++p) {
    test::page_bytes pg = test::random_page(rng);
    first.insert(first.end(), pg.begin(), pg.end());
  }
  snaps.push_back(std::move(first));
  while (snaps.size() < count) {
    image next = snaps.back();
    for (std::size_t p = 0; p < pages; ++p) {
      if (rng() % 8 != 0)
        continue;
      std::byte *at = next.data() + p * kPageSize;
      test::page_bytes pg(at, at + kPageSize);
      test::mutate(pg, rng, 1 + static_cast<int>(rng() % 16), 64);
      std::memcpy(at, pg.data(), kPageSize);
    }
    snaps.push_back(std::move(next));
  }
  return snaps;
}

struct zstd_options {
  const image *prefix = nullptr;  // patch-from this image
  bool content_size = true;       // write the decompressed size in the frame header
};

// One zstd frame of raw, compressed against opt.prefix when given, the way
// zstd --patch-from does (with a frame checksum, as the zstd CLI writes).
image zstd_frame(const image &raw, const zstd_options &opt = {}) {
  ZSTD_CCtx *cctx = ZSTD_createCCtx();
  EXPECT_NE(cctx, nullptr);
  EXPECT_FALSE(ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 3)));
  EXPECT_FALSE(ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)));
  EXPECT_FALSE(ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, 23)));
  EXPECT_FALSE(
      ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, opt.content_size ? 1 : 0)));
  if (opt.prefix) {
    EXPECT_FALSE(ZSTD_isError(ZSTD_CCtx_refPrefix(cctx, opt.prefix->data(), opt.prefix->size())));
  }
  image out(ZSTD_compressBound(raw.size()));
  std::size_t n = ZSTD_compress2(cctx, out.data(), out.size(), raw.data(), raw.size());
  ZSTD_freeCCtx(cctx);
  EXPECT_FALSE(ZSTD_isError(n)) << ZSTD_getErrorName(n);
  out.resize(ZSTD_isError(n) ? 0 : n);
  return out;
}

std::string sha_of(const image &b) { return sha256_hex(b.data(), b.size()); }

std::string snap_name(std::size_t i) {
  return std::string("snap-") + (i < 10 ? "0" : "") + std::to_string(i) + ".raw.zst";
}

// One manifest entry as JSON text; an empty sha is left out.
std::string entry_json(std::size_t index, const std::string &file, std::uint64_t raw_bytes,
                       const std::string &sha) {
  std::string e = R"({"index": )" + std::to_string(index) + R"(, "file": ")" + file +
                  R"(", "raw_bytes": )" + std::to_string(raw_bytes);
  if (!sha.empty())
    e += R"(, "raw_sha256": ")" + sha + "\"";
  return e + R"(, "encoding": "zstd -3"})";
}

std::string manifest_json(std::uint64_t ram_bytes, const std::vector<std::string> &entries) {
  std::string m = R"({"trace": "test", "ram_bytes": )" + std::to_string(ram_bytes) +
                  R"(, "page_size": 4096, "snapshots": [)";
  for (std::size_t i = 0; i < entries.size(); ++i)
    m += (i ? ", " : "") + entries[i];
  return m + "]}";
}

// Writes snapshots as a trace in the corpus format: snap-00 a plain frame,
// snap-NN patch-from snap-(NN-1), and a manifest with every raw_sha256.
void write_trace(const temp_dir &dir, const std::vector<image> &snaps) {
  std::vector<std::string> entries;
  for (std::size_t i = 0; i < snaps.size(); ++i) {
    zstd_options opt;
    opt.prefix = i ? &snaps[i - 1] : nullptr;
    write_bytes(dir.file(snap_name(i)), zstd_frame(snaps[i], opt));
    entries.push_back(entry_json(i, snap_name(i), snaps[i].size(), sha_of(snaps[i])));
  }
  write_text(dir.file("manifest.json"), manifest_json(snaps.front().size(), entries));
}

std::unique_ptr<trace_reader> open_one(const std::string &path, std::string &err) {
  return trace_reader::open({path}, err);
}

// Opens path expecting failure; returns the message.
std::string open_error(const std::vector<std::string> &paths) {
  std::string err;
  auto r = trace_reader::open(paths, err);
  EXPECT_EQ(r, nullptr);
  EXPECT_FALSE(err.empty());
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  return err;
}

// Loads snapshots 0 .. last-1 successfully, then expects load(last) to fail;
// returns the message.
std::string load_error(trace_reader &r, std::size_t last) {
  std::string err;
  for (std::size_t i = 0; i < last; ++i)
    EXPECT_NE(r.load(i, err), nullptr) << err;
  err.clear();
  EXPECT_EQ(r.load(last, err), nullptr);
  EXPECT_FALSE(err.empty());
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  return err;
}

#define EXPECT_HAS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "message: " << (haystack)

// --- sha256_hex --------------------------------------------------------------

TEST(trace_sha256, known_vectors) {
  EXPECT_EQ(sha256_hex(nullptr, 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const char abc[] = "abc";
  EXPECT_EQ(sha256_hex(reinterpret_cast<const std::byte *>(abc), 3),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// --- good traces ---------------------------------------------------------------

TEST(trace_dir, loads_patch_from_trace_byte_exact) {
  temp_dir dir;
  const auto snaps = make_snapshots(4, 256, 1);
  write_trace(dir, snaps);
  // snap-00 spans several input chunks, so streaming is exercised.
  ASSERT_GT(fs::file_size(dir.file(snap_name(0))), ZSTD_DStreamInSize());

  std::string err;
  auto r = open_one(dir.str(), err);
  ASSERT_NE(r, nullptr) << err;
  ASSERT_EQ(r->snapshot_count(), 4u);
  EXPECT_EQ(r->ram_bytes(), 256u * kPageSize);
  EXPECT_EQ(r->page_count(), 256u);
  const std::byte *prev = nullptr;
  for (std::size_t i = 0; i < snaps.size(); ++i) {
    EXPECT_EQ(r->info(i).path, dir.file(snap_name(i)));
    EXPECT_EQ(r->info(i).raw_bytes, snaps[i].size());
    EXPECT_EQ(r->info(i).raw_sha256, sha_of(snaps[i]));
    EXPECT_TRUE(r->info(i).compressed);
    const std::byte *img = r->load(i, err);
    ASSERT_NE(img, nullptr) << err;
    EXPECT_EQ(std::memcmp(img, snaps[i].data(), snaps[i].size()), 0) << "snapshot " << i;
    if (prev) {  // the previous image stays valid until the next-but-one load
      EXPECT_NE(prev, img);
      EXPECT_EQ(std::memcmp(prev, snaps[i - 1].data(), snaps[i - 1].size()), 0) << "snapshot " << i - 1;
    }
    prev = img;
  }
}

TEST(trace_dir, generated_patches_need_the_prefix) {
  // Guards the generator: snap-NN really is patch-from, so the reader must
  // reference the previous image to decode it.
  const auto snaps = make_snapshots(2, 256, 2);
  zstd_options opt;
  opt.prefix = &snaps[0];
  const image patch = zstd_frame(snaps[1], opt);
  EXPECT_LT(patch.size() * 4, zstd_frame(snaps[1]).size());
  image out(snaps[1].size());
  std::size_t n = ZSTD_decompress(out.data(), out.size(), patch.data(), patch.size());
  EXPECT_TRUE(ZSTD_isError(n) || out != snaps[1]);
}

TEST(trace_dir, minimal_manifest_and_trailing_slash) {
  temp_dir dir;
  const auto snaps = make_snapshots(2, 16, 3);
  write_bytes(dir.file("a.zst"), zstd_frame(snaps[0]));
  zstd_options opt;
  opt.prefix = &snaps[0];
  write_bytes(dir.file("b.zst"), zstd_frame(snaps[1], opt));
  write_text(dir.file("manifest.json"),
             R"({"ram_bytes": 65536, "snapshots": [{"file": "a.zst", "raw_bytes": 65536},)"
             R"( {"file": "b.zst", "raw_bytes": 65536}]})");
  std::string err;
  auto r = open_one(dir.str() + "/", err);
  ASSERT_NE(r, nullptr) << err;
  EXPECT_EQ(r->info(1).path, dir.file("b.zst"));
  EXPECT_TRUE(r->info(1).raw_sha256.empty());
  for (std::size_t i = 0; i < 2; ++i) {
    const std::byte *img = r->load(i, err);
    ASSERT_NE(img, nullptr) << err;
    EXPECT_EQ(std::memcmp(img, snaps[i].data(), snaps[i].size()), 0);
  }
}

TEST(trace_dir, upper_case_sha_is_accepted) {
  temp_dir dir;
  const auto snaps = make_snapshots(1, 8, 4);
  write_bytes(dir.file("s.zst"), zstd_frame(snaps[0]));
  std::string sha = sha_of(snaps[0]);
  for (char &c : sha)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  write_text(dir.file("manifest.json"), manifest_json(snaps[0].size(), {entry_json(0, "s.zst", snaps[0].size(), sha)}));
  std::string err;
  auto r = open_one(dir.str(), err);
  ASSERT_NE(r, nullptr) << err;
  EXPECT_EQ(r->info(0).raw_sha256, sha_of(snaps[0]));
  EXPECT_NE(r->load(0, err), nullptr) << err;
}

TEST(trace_dir, raw_and_compressed_files_mix) {
  // A raw snapshot in a manifest directory is read as is, and the next
  // compressed one still patches from its raw bytes.
  temp_dir dir;
  const auto snaps = make_snapshots(3, 32, 5);
  write_bytes(dir.file("snap-00.raw"), snaps[0]);
  zstd_options opt;
  opt.prefix = &snaps[0];
  write_bytes(dir.file("snap-01.raw.zst"), zstd_frame(snaps[1], opt));
  write_bytes(dir.file("snap-02.raw"), snaps[2]);
  write_text(dir.file("manifest.json"),
             manifest_json(snaps[0].size(), {entry_json(0, "snap-00.raw", snaps[0].size(), sha_of(snaps[0])),
                                             entry_json(1, "snap-01.raw.zst", snaps[1].size(), sha_of(snaps[1])),
                                             entry_json(2, "snap-02.raw", snaps[2].size(), "")}));
  std::string err;
  auto r = open_one(dir.str(), err);
  ASSERT_NE(r, nullptr) << err;
  EXPECT_FALSE(r->info(0).compressed);
  EXPECT_TRUE(r->info(1).compressed);
  EXPECT_FALSE(r->info(2).compressed);
  for (std::size_t i = 0; i < snaps.size(); ++i) {
    const std::byte *img = r->load(i, err);
    ASSERT_NE(img, nullptr) << err;
    EXPECT_EQ(std::memcmp(img, snaps[i].data(), snaps[i].size()), 0) << "snapshot " << i;
  }
}

TEST(trace_raw, loads_image_list) {
  temp_dir dir;
  const auto snaps = make_snapshots(3, 24, 6);
  std::vector<std::string> paths;
  for (std::size_t i = 0; i < snaps.size(); ++i) {
    paths.push_back(dir.file("img" + std::to_string(i)));
    write_bytes(paths.back(), snaps[i]);
  }
  std::string err;
  auto r = trace_reader::open(paths, err);
  ASSERT_NE(r, nullptr) << err;
  ASSERT_EQ(r->snapshot_count(), 3u);
  EXPECT_EQ(r->ram_bytes(), 24u * kPageSize);
  for (std::size_t i = 0; i < snaps.size(); ++i) {
    EXPECT_EQ(r->info(i).path, paths[i]);
    EXPECT_FALSE(r->info(i).compressed);
    EXPECT_TRUE(r->info(i).raw_sha256.empty());
    const std::byte *img = r->load(i, err);
    ASSERT_NE(img, nullptr) << err;
    EXPECT_EQ(std::memcmp(img, snaps[i].data(), snaps[i].size()), 0) << "snapshot " << i;
  }
}

TEST(trace_raw, single_image) {
  temp_dir dir;
  const auto snaps = make_snapshots(1, 4, 7);
  write_bytes(dir.file("one"), snaps[0]);
  std::string err;
  auto r = open_one(dir.file("one"), err);
  ASSERT_NE(r, nullptr) << err;
  EXPECT_EQ(r->snapshot_count(), 1u);
  const std::byte *img = r->load(0, err);
  ASSERT_NE(img, nullptr) << err;
  EXPECT_EQ(std::memcmp(img, snaps[0].data(), snaps[0].size()), 0);
}

// --- bad traces: open ----------------------------------------------------------

TEST(trace_open_bad, no_paths) { EXPECT_HAS(open_error({}), "no trace given"); }

TEST(trace_open_bad, missing_directory) {
  temp_dir dir;
  const std::string missing = dir.file("no-such-trace");
  const std::string err = open_error({missing});
  EXPECT_EQ(err.rfind(missing + ": ", 0), 0u) << err;
  EXPECT_HAS(err, "No such file");
}

TEST(trace_open_bad, missing_manifest) {
  temp_dir dir;
  const std::string err = open_error({dir.str()});
  EXPECT_EQ(err.rfind(dir.file("manifest.json") + ": ", 0), 0u) << err;
  EXPECT_HAS(err, "cannot open");
}

TEST(trace_open_bad, malformed_json) {
  temp_dir dir;
  write_text(dir.file("manifest.json"), R"({"ram_bytes": 4096, "snapshots": [)");
  EXPECT_HAS(open_error({dir.str()}), "manifest.json: not valid JSON");
  write_text(dir.file("manifest.json"), "");
  EXPECT_HAS(open_error({dir.str()}), "not valid JSON");
  write_text(dir.file("manifest.json"), "[1, 2]");
  EXPECT_HAS(open_error({dir.str()}), "must be a JSON object");
}

// A manifest over one good 16-page snapshot, with one field changed, and the
// message it must produce.
struct manifest_case {
  const char *name;
  std::string manifest;
  std::string expect;
};

TEST(trace_open_bad, manifest_fields) {
  temp_dir dir;
  const auto snaps = make_snapshots(2, 16, 8);
  write_trace(dir, snaps);
  const std::string ram = std::to_string(snaps[0].size());
  const std::string e0 = entry_json(0, snap_name(0), snaps[0].size(), sha_of(snaps[0]));
  const std::string e1 = entry_json(1, snap_name(1), snaps[1].size(), sha_of(snaps[1]));
  const std::string list = "[" + e0 + ", " + e1 + "]";
  auto with_top = [&](const std::string &fields) { return "{" + fields + "}"; };
  auto with_entry1 = [&](const std::string &fields) {
    return with_top(R"("ram_bytes": )" + ram + R"(, "snapshots": [)" + e0 + ", {" + fields + "}]");
  };
  const std::string file1 = R"("file": ")" + snap_name(1) + "\"";
  const std::vector<manifest_case> cases = {
      {"no ram_bytes", with_top(R"("snapshots": )" + list), "ram_bytes is missing"},
      {"ram_bytes string", with_top(R"("ram_bytes": ")" + ram + R"(", "snapshots": )" + list),
       "ram_bytes must be a non-negative integer"},
      {"ram_bytes negative", with_top(R"("ram_bytes": -65536, "snapshots": )" + list),
       "ram_bytes must be a non-negative integer"},
      {"ram_bytes float", with_top(R"("ram_bytes": 65536.0, "snapshots": )" + list),
       "ram_bytes must be a non-negative integer"},
      {"ram_bytes zero", with_top(R"("ram_bytes": 0, "snapshots": )" + list),
       "ram_bytes 0 is not a positive multiple of 4096"},
      {"ram_bytes not pages", with_top(R"("ram_bytes": 5000, "snapshots": )" + list),
       "ram_bytes 5000 is not a positive multiple of 4096"},
      {"page_size 8192", with_top(R"("ram_bytes": )" + ram + R"(, "page_size": 8192, "snapshots": )" + list),
       "page_size 8192 is not supported"},
      {"page_size string", with_top(R"("ram_bytes": )" + ram + R"(, "page_size": "4096", "snapshots": )" + list),
       "page_size must be a non-negative integer"},
      {"no snapshots", with_top(R"("ram_bytes": )" + ram), "snapshots is missing"},
      {"snapshots object", with_top(R"("ram_bytes": )" + ram + R"(, "snapshots": {})"),
       "snapshots must be a non-empty array"},
      {"snapshots empty", with_top(R"("ram_bytes": )" + ram + R"(, "snapshots": [])"),
       "snapshots must be a non-empty array"},
      {"entry not object", with_top(R"("ram_bytes": )" + ram + R"(, "snapshots": [")" + snap_name(0) + R"("])"),
       "snapshot 0: must be a JSON object"},
      {"no file", with_entry1(R"("raw_bytes": )" + ram), "snapshot 1: file is missing"},
      {"file number", with_entry1(R"("file": 7, "raw_bytes": )" + ram), "snapshot 1: file must be a string"},
      {"no raw_bytes", with_entry1(file1), "snapshot 1: raw_bytes is missing"},
      {"raw_bytes string", with_entry1(file1 + R"(, "raw_bytes": "65536")"),
       "snapshot 1: raw_bytes must be a non-negative integer"},
      {"raw_bytes disagrees", with_entry1(file1 + R"(, "raw_bytes": 1000)"),
       "manifest.json: snapshot 1: raw_bytes 1000 differs from ram_bytes " + ram},
      {"sha short", with_entry1(file1 + R"(, "raw_bytes": )" + ram + R"(, "raw_sha256": "abc")"),
       "snapshot 1: raw_sha256 must be 64 hex digits"},
      {"sha not hex", with_entry1(file1 + R"(, "raw_bytes": )" + ram + R"(, "raw_sha256": ")" + std::string(64, 'g') + "\""),
       "snapshot 1: raw_sha256 must be 64 hex digits"},
      {"sha number", with_entry1(file1 + R"(, "raw_bytes": )" + ram + R"(, "raw_sha256": 5)"),
       "snapshot 1: raw_sha256 must be 64 hex digits"},
      {"index out of order", with_entry1(R"("index": 2, )" + file1 + R"(, "raw_bytes": )" + ram),
       "snapshot 1: index 2 is out of order"},
      {"index string", with_entry1(R"("index": "1", )" + file1 + R"(, "raw_bytes": )" + ram),
       "snapshot 1: index must be a non-negative integer"},
  };
  for (const manifest_case &c : cases) {
    SCOPED_TRACE(c.name);
    write_text(dir.file("manifest.json"), c.manifest);
    const std::string err = open_error({dir.str()});
    EXPECT_EQ(err.rfind(dir.file("manifest.json") + ": ", 0), 0u) << err;
    EXPECT_HAS(err, c.expect);
  }
}

TEST(trace_open_bad, snapshot_file_missing) {
  temp_dir dir;
  write_trace(dir, make_snapshots(3, 8, 9));
  fs::remove(dir.file(snap_name(2)));
  const std::string err = open_error({dir.str()});
  EXPECT_EQ(err.rfind(dir.file(snap_name(2)) + ": cannot open", 0), 0u) << err;
}

TEST(trace_open_bad, snapshot_file_is_a_directory) {
  temp_dir dir;
  write_trace(dir, make_snapshots(2, 8, 10));
  fs::remove(dir.file(snap_name(1)));
  fs::create_directory(dir.file(snap_name(1)));
  EXPECT_HAS(open_error({dir.str()}), snap_name(1) + ": is a directory");
}

TEST(trace_open_bad, path_traversal) {
  temp_dir dir;
  const auto snaps = make_snapshots(1, 8, 11);
  fs::create_directory(dir.path() / "trace");
  fs::create_directory(dir.path() / "trace" / "sub");
  write_bytes(dir.file("outside.zst"), zstd_frame(snaps[0]));
  write_bytes((dir.path() / "trace" / "sub" / "inner.zst").string(), zstd_frame(snaps[0]));
  for (const std::string name : {"../outside.zst", "/etc/passwd", "..", ".", "sub/inner.zst", ""}) {
    SCOPED_TRACE(name);
    write_text((dir.path() / "trace" / "manifest.json").string(),
               manifest_json(snaps[0].size(), {entry_json(0, name, snaps[0].size(), "")}));
    EXPECT_HAS(open_error({(dir.path() / "trace").string()}),
               "snapshot 0: file \"" + name + "\" must be a plain file name");
  }
}

TEST(trace_open_bad, raw_file_in_manifest_has_wrong_size) {
  temp_dir dir;
  const auto snaps = make_snapshots(1, 8, 12);
  write_bytes(dir.file("snap-00.raw"), snaps[0].data(), snaps[0].size() - 100);
  write_text(dir.file("manifest.json"),
             manifest_json(snaps[0].size(), {entry_json(0, "snap-00.raw", snaps[0].size(), "")}));
  EXPECT_HAS(open_error({dir.str()}), "snap-00.raw: size 32668 differs from raw_bytes 32768");
}

TEST(trace_open_bad, raw_images_of_different_sizes) {
  temp_dir dir;
  const auto snaps = make_snapshots(1, 8, 13);
  write_bytes(dir.file("a"), snaps[0]);
  write_bytes(dir.file("b"), snaps[0].data(), 4 * kPageSize);
  const std::string err = open_error({dir.file("a"), dir.file("b")});
  EXPECT_EQ(err.rfind(dir.file("b") + ": size 16384 differs from " + dir.file("a") + " (32768)", 0), 0u)
      << err;
}

TEST(trace_open_bad, raw_image_not_whole_pages) {
  temp_dir dir;
  const auto snaps = make_snapshots(1, 2, 14);
  write_bytes(dir.file("a"), snaps[0].data(), 5000);
  const std::string err = open_error({dir.file("a")});
  EXPECT_EQ(err.rfind(dir.file("a") + ": size 5000 is not a positive multiple of 4096", 0), 0u) << err;
}

TEST(trace_open_bad, empty_raw_image) {
  temp_dir dir;
  write_text(dir.file("empty"), "");
  EXPECT_HAS(open_error({dir.file("empty")}), "empty: size 0 is not a positive multiple of 4096");
}

TEST(trace_open_bad, missing_raw_image) {
  temp_dir dir;
  const auto snaps = make_snapshots(1, 2, 15);
  write_bytes(dir.file("a"), snaps[0]);
  EXPECT_HAS(open_error({dir.file("a"), dir.file("b")}), dir.file("b") + ": cannot open");
}

TEST(trace_open_bad, directory_in_image_list) {
  temp_dir dir;
  const auto snaps = make_snapshots(1, 2, 16);
  write_bytes(dir.file("a"), snaps[0]);
  EXPECT_HAS(open_error({dir.file("a"), dir.str()}), dir.str() + ": is a directory");
}

// --- bad traces: load ----------------------------------------------------------

TEST(trace_load_bad, manifest_that_lies) {
  temp_dir dir;
  const auto snaps = make_snapshots(3, 16, 17);
  write_trace(dir, snaps);
  const std::string lie = sha_of(snaps[0]);  // snapshot 1 claims snapshot 0's hash
  write_text(dir.file("manifest.json"),
             manifest_json(snaps[0].size(), {entry_json(0, snap_name(0), snaps[0].size(), sha_of(snaps[0])),
                                             entry_json(1, snap_name(1), snaps[1].size(), lie),
                                             entry_json(2, snap_name(2), snaps[2].size(), sha_of(snaps[2]))}));
  std::string err;
  auto r = open_one(dir.str(), err);
  ASSERT_NE(r, nullptr) << err;
  err = load_error(*r, 1);
  EXPECT_EQ(err, dir.file(snap_name(1)) + ": snapshot 1: sha256 mismatch (manifest says " + lie +
                     ", data is " + sha_of(snaps[1]) + ")");
}

TEST(trace_load_bad, not_zstd) {
  temp_dir dir;
  write_trace(dir, make_snapshots(1, 8, 18));
  write_text(dir.file(snap_name(0)), "this is not a zstd frame at all");
  std::string err;
  auto r = open_one(dir.str(), err);
  ASSERT_NE(r, nullptr) << err;
  err = load_error(*r, 0);
  EXPECT_EQ(err.rfind(dir.file(snap_name(0)) + ": snapshot 0: corrupt zstd data: ", 0), 0u) << err;
}

TEST(trace_load_bad, corrupt_zstd) {
  temp_dir dir;
  const auto snaps = make_snapshots(2, 64, 19);
  write_trace(dir, snaps);
  image z = read_bytes(dir.file(snap_name(1)));
  ASSERT_GT(z.size(), 64u);
  for (std::size_t k = z.size() / 2; k < z.size() / 2 + 16; ++k)
    z[k] ^= std::byte{0x5a};
  write_bytes(dir.file(snap_name(1)), z);
  std::string err;
  auto r = open_one(dir.str(), err);
  ASSERT_NE(r, nullptr) << err;
  EXPECT_HAS(load_error(*r, 1), "snapshot 1: corrupt zstd data: ");
}

TEST(trace_load_bad, wrong_prefix) {
  // snap-01 patches from an image that is not snapshot 0: decoding against
  // the real snapshot 0 cannot reproduce it.
  temp_dir dir;
  const auto snaps = make_snapshots(2, 32, 20);
  const auto other = make_snapshots(1, 32, 21);
  write_trace(dir, snaps);
  zstd_options opt;
  opt.prefix = &other[0];
  write_bytes(dir.file(snap_name(1)), zstd_frame(snaps[1], opt));
  std::string err;
  auto r = open_one(dir.str(), err);
  ASSERT_NE(r, nullptr) << err;
  EXPECT_HAS(load_error(*r, 1), "snapshot 1: ");
}

TEST(trace_load_bad, truncated_zstd) {
  temp_dir dir;
  const auto snaps = make_snapshots(2, 64, 22);
  write_trace(dir, snaps);
  for (std::size_t i = 0; i < 2; ++i) {
    image z = read_bytes(dir.file(snap_name(i)));
    z.resize(z.size() / 2);
    write_bytes(dir.file(snap_name(i)), z);
  }
  std::string err;
  auto r = open_one(dir.str(), err);
  ASSERT_NE(r, nullptr) << err;
  EXPECT_HAS(load_error(*r, 0), "snapshot 0: truncated zstd data");
}

TEST(trace_load_bad, empty_zstd_file) {
  temp_dir dir;
  write_trace(dir, make_snapshots(1, 8, 23));
  write_text(dir.file(snap_name(0)), "");
  std::string err;
  auto r = open_one(dir.str(), err);
  ASSERT_NE(r, nullptr) << err;
  EXPECT_HAS(load_error(*r, 0), "snapshot 0: empty file");
}

TEST(trace_load_bad, trailing_data_after_frame) {
  temp_dir dir;
  const auto snaps = make_snapshots(1, 8, 24);
  write_trace(dir, snaps);
  image z = read_bytes(dir.file(snap_name(0)));
  const image again = zstd_frame(snaps[0]);
  z.insert(z.end(), again.begin(), again.end());
  write_bytes(dir.file(snap_name(0)), z);
  std::string err;
  auto r = open_one(dir.str(), err);
  ASSERT_NE(r, nullptr) << err;
  EXPECT_HAS(load_error(*r, 0), "trailing data after the zstd frame");
}

// A one-snapshot trace whose frame holds `actual` pages while the manifest
// declares `declared`.
std::string wrong_size_error(std::size_t actual, std::size_t declared, bool content_size) {
  temp_dir dir;
  const auto snaps = make_snapshots(1, actual, 25);
  zstd_options opt;
  opt.content_size = content_size;
  write_bytes(dir.file("s.zst"), zstd_frame(snaps[0], opt));
  write_text(dir.file("manifest.json"),
             manifest_json(declared * kPageSize, {entry_json(0, "s.zst", declared * kPageSize, "")}));
  std::string err;
  auto r = open_one(dir.str(), err);
  EXPECT_NE(r, nullptr) << err;
  return r ? load_error(*r, 0) : err;
}

TEST(trace_load_bad, zstd_decompresses_to_more) {
  EXPECT_HAS(wrong_size_error(16, 15, true), "decompresses to more than raw_bytes 61440 bytes");
  EXPECT_HAS(wrong_size_error(16, 15, false), "decompresses to more than raw_bytes 61440 bytes");
}

TEST(trace_load_bad, zstd_decompresses_to_less) {
  EXPECT_HAS(wrong_size_error(15, 16, true), "decompresses to 61440 bytes, not raw_bytes 65536");
  EXPECT_HAS(wrong_size_error(15, 16, false), "decompresses to 61440 bytes, not raw_bytes 65536");
}

TEST(trace_load_bad, raw_image_shrinks_after_open) {
  temp_dir dir;
  const auto snaps = make_snapshots(2, 8, 26);
  write_bytes(dir.file("a"), snaps[0]);
  write_bytes(dir.file("b"), snaps[1]);
  std::string err;
  auto r = trace_reader::open({dir.file("a"), dir.file("b")}, err);
  ASSERT_NE(r, nullptr) << err;
  fs::resize_file(dir.file("b"), 3 * kPageSize);
  const std::string msg = load_error(*r, 1);
  EXPECT_EQ(msg.rfind(dir.file("b") + ": snapshot 1: short image", 0), 0u) << msg;
}

TEST(trace_load_bad, raw_image_grows_after_open) {
  temp_dir dir;
  const auto snaps = make_snapshots(1, 8, 27);
  write_bytes(dir.file("a"), snaps[0]);
  std::string err;
  auto r = open_one(dir.file("a"), err);
  ASSERT_NE(r, nullptr) << err;
  fs::resize_file(dir.file("a"), 9 * kPageSize);
  EXPECT_HAS(load_error(*r, 0), "image is larger than 32768 bytes");
}

TEST(trace_load_bad, file_removed_after_open) {
  temp_dir dir;
  write_trace(dir, make_snapshots(2, 8, 28));
  std::string err;
  auto r = open_one(dir.str(), err);
  ASSERT_NE(r, nullptr) << err;
  fs::remove(dir.file(snap_name(1)));
  EXPECT_HAS(load_error(*r, 1), snap_name(1) + ": snapshot 1: cannot open");
}

TEST(trace_load_bad, out_of_order) {
  temp_dir dir;
  const auto snaps = make_snapshots(3, 8, 29);
  write_trace(dir, snaps);
  std::string err;
  auto r = open_one(dir.str(), err);
  ASSERT_NE(r, nullptr) << err;
  EXPECT_EQ(r->load(1, err), nullptr);
  EXPECT_HAS(err, "snapshot 1: loaded out of order (snapshot 0 is next)");
  ASSERT_NE(r->load(0, err), nullptr) << err;
  EXPECT_EQ(r->load(0, err), nullptr);
  EXPECT_HAS(err, "snapshot 0: loaded out of order (snapshot 1 is next)");
  EXPECT_EQ(r->load(3, err), nullptr);
  EXPECT_HAS(err, "snapshot 3 requested but the trace has 3");
  // The failed calls changed nothing: the rest still loads in order.
  for (std::size_t i = 1; i < 3; ++i) {
    const std::byte *img = r->load(i, err);
    ASSERT_NE(img, nullptr) << err;
    EXPECT_EQ(std::memcmp(img, snaps[i].data(), snaps[i].size()), 0);
  }
}

TEST(trace_load_bad, failed_load_can_be_retried) {
  temp_dir dir;
  const auto snaps = make_snapshots(2, 8, 30);
  write_trace(dir, snaps);
  const image good = read_bytes(dir.file(snap_name(1)));
  write_text(dir.file(snap_name(1)), "garbage");
  std::string err;
  auto r = open_one(dir.str(), err);
  ASSERT_NE(r, nullptr) << err;
  load_error(*r, 1);
  write_bytes(dir.file(snap_name(1)), good);
  const std::byte *img = r->load(1, err);
  ASSERT_NE(img, nullptr) << err;
  EXPECT_EQ(std::memcmp(img, snaps[1].data(), snaps[1].size()), 0);
}

// --- the reference corpus --------------------------------------------------------

TEST(trace_corpus, dev_first_two_snapshots) {
  if (!fs::exists(fs::path(kCorpusDev) / "manifest.json"))
    GTEST_SKIP() << kCorpusDev << " is not present";
  std::string err;
  auto r = open_one(kCorpusDev, err);
  ASSERT_NE(r, nullptr) << err;
  EXPECT_EQ(r->snapshot_count(), 5u);
  EXPECT_EQ(r->ram_bytes(), 134217728u);
  EXPECT_EQ(r->info(0).raw_sha256, "da35dd1d524d5da97e377f872f5d8d3df58aac6d0939c27b8fc5bac745a40390");
  EXPECT_EQ(r->info(1).raw_sha256, "ae0f23cdafbec1a390f846d984ecdd22dc11ceb8fdafe89caa9b19981e61bdee");
  for (std::size_t i = 0; i < 2; ++i) {
    const std::byte *img = r->load(i, err);  // load() checks raw_sha256 itself
    ASSERT_NE(img, nullptr) << err;
    EXPECT_EQ(sha256_hex(img, r->ram_bytes()), r->info(i).raw_sha256);
  }
}

}  // namespace
}  // namespace hde
