// qemu_stream_test.cpp — QEMU 7.2 migration streams taken apart and put back
// together (lib/qemu/migration_stream.h): a synthetic main channel in the
// shape QEMU writes it, parsed in chunks of every size, rebuilt byte for
// byte; multifd channels likewise; every refusal names what it refuses.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "qemu/migration_stream.h"

using namespace hde::qemu;

namespace {

using bytes = std::vector<std::byte>;

void u8(bytes &b, unsigned v) { b.push_back(static_cast<std::byte>(v)); }
void u16(bytes &b, unsigned v) { u8(b, v >> 8); u8(b, v & 0xFF); }
void u32(bytes &b, std::uint32_t v) { u16(b, v >> 16); u16(b, v & 0xFFFF); }
void u64(bytes &b, std::uint64_t v) { u32(b, static_cast<std::uint32_t>(v >> 32)); u32(b, static_cast<std::uint32_t>(v)); }
void s8(bytes &b, const std::string &s) { u8(b, static_cast<unsigned>(s.size())); for (char c : s) u8(b, static_cast<unsigned char>(c)); }
void section(bytes &b, unsigned type, std::uint32_t id, const std::string &name = "") {
  u8(b, type);
  u32(b, id);
  if (type == kVmSectionStart || type == kVmSectionFull) {
    s8(b, name);
    u32(b, 0);  // instance
    u32(b, 4);  // version
  }
}
void footer(bytes &b, std::uint32_t id) { u8(b, kVmSectionFooter); u32(b, id); }
bytes page_of(unsigned seed) {
  bytes p(kTargetPage);
  for (std::size_t i = 0; i < p.size(); ++i)
    p[i] = static_cast<std::byte>((i * 7 + seed * 13) & 0xFF);
  return p;
}
// A RAM record as QEMU writes it (CONTINUE when the block is the last one).
void ram_rec(bytes &b, std::uint32_t flag, std::uint64_t off, const std::string &block, const std::string *&last,
             const bytes *data = nullptr) {
  const bool cont = last != nullptr && *last == block;
  u64(b, off | flag | (cont ? std::uint32_t{kRamContinue} : 0u));
  if (!cont)
    s8(b, block);
  last = &block;
  if (flag == kRamZero)
    u8(b, 0);
  else
    b.insert(b.end(), data->begin(), data->end());
}

const std::string kRam = "pc.ram", kRom = "pc.rom";

// A small precopy stream: header, configuration, RAM START (MEM_SIZE), two
// PARTs and END with pages and zero pages on two blocks, device state (a
// FULL section the parser cannot read), EOF and a VM description.
bytes make_stream(std::map<std::pair<int, std::uint64_t>, bytes> &image) {
  bytes b;
  u32(b, kFileMagic);
  u32(b, kFileVersion);
  u8(b, kVmConfiguration);
  u32(b, 13);
  for (char c : std::string("pc-i440fx-7.2"))
    u8(b, static_cast<unsigned char>(c));
  u8(b, kVmSubsection); s8(b, "configuration/target-page-bits"); u32(b, 1); u32(b, 12);
  u8(b, kVmSubsection); s8(b, "configuration/capabilities"); u32(b, 1); u32(b, 1); s8(b, "events");
  u8(b, kVmCommand); u16(b, 2); u16(b, 4); u32(b, 7);  // PING
  const std::string *last = nullptr;
  section(b, kVmSectionStart, 2, "ram");
  u64(b, ((1u << 20) + 8192) | kRamMemSize);
  s8(b, kRam); u64(b, 1u << 20);
  s8(b, kRom); u64(b, 8192);
  u64(b, kRamEos);
  footer(b, 2);
  unsigned seed = 0;
  for (int part = 0; part < 3; ++part) {
    section(b, part == 2 ? kVmSectionEnd : kVmSectionPart, 2);
    for (std::uint64_t off = 0; off < (1u << 20); off += kTargetPage * (part + 1)) {
      if ((off / kTargetPage) % 5 == 0) {
        ram_rec(b, kRamZero, off, kRam, last);
        image[{0, off}] = bytes(kTargetPage);
      } else {
        const bytes p = page_of(++seed);
        ram_rec(b, kRamPage, off, kRam, last, &p);
        image[{0, off}] = p;
      }
      if (off == 16 * kTargetPage) {  // a ROM page between RAM pages: no CONTINUE either way
        const bytes p = page_of(++seed);
        ram_rec(b, kRamPage, 4096, kRom, last, &p);
        image[{1, 4096}] = p;
      }
    }
    u64(b, kRamEos);
    footer(b, 2);
  }
  section(b, kVmSectionFull, 3, "timer");
  for (int i = 0; i < 100; ++i)
    u8(b, i * 3);  // device fields: no length, no structure the parser knows
  footer(b, 3);
  u8(b, kVmEof);
  u8(b, kVmVmdescription);
  u32(b, 2);
  u8(b, '{'); u8(b, '}');
  return b;
}

// Rebuilds the stream from the parser's events, and keeps the image.
struct rebuild : main_events, main_writer::sink {
  bytes out;
  main_writer w{*this};
  std::map<std::pair<int, std::uint64_t>, bytes> image;
  int eos = 0, eos_complete = 0;
  void write(std::span<const std::byte> b) override { out.insert(out.end(), b.begin(), b.end()); }
  void on_opaque(std::span<const std::byte> b) override { w.opaque(b); }
  void on_layout(const ram_layout &l) override { w.set_layout(l); }
  void on_page(std::size_t block, std::uint64_t off, const std::byte *d) override {
    image[{static_cast<int>(block), off}] = bytes(d, d + kTargetPage);
    w.page(block, off, d);
  }
  void on_zero(std::size_t block, std::uint64_t off, std::uint8_t fill) override {
    image[{static_cast<int>(block), off}] = bytes(kTargetPage, std::byte{fill});
    w.zero(block, off, fill);
  }
  void on_ram_eos(bool complete) override {
    ++eos;
    eos_complete += complete;
  }
};

stream_error feed_chunks(main_parser &p, const bytes &s, std::mt19937 &rng, std::size_t max_chunk) {
  std::size_t i = 0;
  while (i < s.size()) {
    const std::size_t n = std::min<std::size_t>(s.size() - i, 1 + rng() % max_chunk);
    const stream_error e = p.feed({s.data() + i, n});
    if (e != stream_error::ok)
      return e;
    i += n;
  }
  return stream_error::ok;
}

}  // namespace

TEST(QemuMainChannel, RebuiltByteForByteInAnyChunking) {
  std::map<std::pair<int, std::uint64_t>, bytes> want;
  const bytes s = make_stream(want);
  std::mt19937 rng(1);
  for (std::size_t max_chunk : {std::size_t{1}, std::size_t{7}, std::size_t{4096}, std::size_t{100000}, s.size()}) {
    rebuild r;
    main_parser p(r);
    ASSERT_EQ(feed_chunks(p, s, rng, max_chunk), stream_error::ok) << p.detail();
    EXPECT_TRUE(p.passing_through());
    EXPECT_TRUE(p.ram_complete());
    EXPECT_EQ(p.offset(), s.size());
    ASSERT_EQ(p.layout().blocks.size(), 2u);
    EXPECT_EQ(p.layout().blocks[1].id, kRom);
    EXPECT_EQ(p.layout().blocks[1].first_page, 256u);
    EXPECT_EQ(r.eos, 4);
    EXPECT_EQ(r.eos_complete, 1);
    EXPECT_EQ(r.image, want) << "chunks up to " << max_chunk;
    EXPECT_TRUE(r.out == s) << "chunks up to " << max_chunk;
  }
}

TEST(QemuMainChannel, LayoutMapsBlocksToOnePageSpace) {
  ram_layout l;
  l.blocks = {{"pc.ram", 1u << 20, 0}, {"pc.rom", 8192, 256}};
  l.total_bytes = (1u << 20) + 8192;
  EXPECT_EQ(l.pages(), 258u);
  EXPECT_EQ(l.gfn(1, 4096), 257u);
  std::size_t b = 9;
  std::uint64_t off = 0;
  ASSERT_TRUE(l.locate(257, b, off));
  EXPECT_EQ(b, 1u);
  EXPECT_EQ(off, 4096u);
  EXPECT_FALSE(l.locate(258, b, off));
  EXPECT_EQ(l.find("pc.rom"), 1);
  EXPECT_EQ(l.find("nope"), -1);
}

// Each refusal stops the parse with its own error, and says where.
TEST(QemuMainChannel, RefusesWhatItCannotCarry) {
  std::map<std::pair<int, std::uint64_t>, bytes> img;
  const bytes good = make_stream(img);
  // Cut the stream after RAM's START section (header, config, PING, START).
  rebuild probe;
  main_parser pp(probe);
  std::size_t cut = 0;
  for (; cut < good.size() && probe.eos == 0; ++cut)
    ASSERT_EQ(pp.feed({good.data() + cut, 1}), stream_error::ok);
  cut += 5;  // the footer
  const bytes head(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(cut));
  auto check = [&](bytes tail, stream_error want, const char *what) {
    bytes s = head;
    s.insert(s.end(), tail.begin(), tail.end());
    rebuild r;
    main_parser p(r);
    EXPECT_EQ(p.feed(s), want) << what;
    EXPECT_EQ(p.error(), want) << what;
    EXPECT_NE(p.detail().find("offset"), std::string::npos) << p.detail();
    EXPECT_EQ(p.feed(s), want) << "stays failed";
  };
  bytes t;
  section(t, kVmSectionPart, 2);
  u64(t, 4096 | kRamXbzrle); s8(t, kRam); u8(t, 1); u16(t, 0);
  check(t, stream_error::unsupported_xbzrle, "xbzrle");
  t.clear();
  section(t, kVmSectionPart, 2);
  u64(t, 4096 | kRamCompressPage); s8(t, kRam); u32(t, 0);
  check(t, stream_error::unsupported_compress, "compress");
  t.clear();
  u8(t, kVmCommand); u16(t, 3); u16(t, 16);  // POSTCOPY_ADVISE
  check(t, stream_error::unsupported_postcopy, "postcopy");
  t.clear();
  section(t, kVmSectionStart, 5, "block");
  check(t, stream_error::unsupported_section, "block migration");
  t.clear();
  section(t, kVmSectionPart, 2);
  u64(t, 4096 | kRamPage); s8(t, "nope");
  check(t, stream_error::unknown_block, "unknown block");
  t.clear();
  section(t, kVmSectionPart, 2);
  u64(t, (2u << 20) | kRamZero); s8(t, kRam); u8(t, 0);
  check(t, stream_error::bad_record, "offset past the block");
  t.clear();
  u8(t, 0x42);
  check(t, stream_error::bad_record, "unknown record type");
  rebuild r;
  main_parser p(r);
  bytes junk(16, std::byte{0x11});
  EXPECT_EQ(p.feed(junk), stream_error::bad_magic);
}

namespace {

struct mfd_rebuild : multifd_events {
  bytes out;
  int syncs = 0, inits = 0;
  std::uint8_t channel = 255;
  std::map<std::uint64_t, bytes> pages;
  void on_init(std::span<const std::byte> init, std::uint8_t ch) override {
    ++inits;
    channel = ch;
    out.insert(out.end(), init.begin(), init.end());
  }
  void on_packet(const multifd_packet &k) override {
    syncs += k.sync();
    std::byte h[kMultifdHeaderSize];
    write_multifd_header(h, k.flags, k.packet_num, k.block, {k.offsets, k.pages});
    out.insert(out.end(), h, h + sizeof h);
    if (k.pages != 0)
      out.insert(out.end(), k.data, k.data + k.pages * kTargetPage);
    for (std::uint32_t i = 0; i < k.pages; ++i)
      pages[k.offsets[i]] = bytes(k.data + i * kTargetPage, k.data + (i + 1) * kTargetPage);
  }
};

bytes make_channel(std::uint8_t id, std::map<std::uint64_t, bytes> &want) {
  bytes b(kMultifdInitSize);
  std::byte uuid[16] = {};
  uuid[3] = std::byte{0x5A};
  write_multifd_init(b.data(), id, uuid);
  std::uint64_t num = id;
  for (int pk = 0; pk < 5; ++pk) {
    std::vector<std::uint64_t> offs;
    const unsigned n = pk == 4 ? 0 : 1 + pk * 40;  // the last is a 0-page SYNC
    for (unsigned i = 0; i < n; ++i)
      offs.push_back((static_cast<std::uint64_t>(pk) * 200 + i) * kTargetPage);
    std::byte h[kMultifdHeaderSize];
    // A 0-page packet names no block (QEMU leaves the last name there; the
    // destination ignores it, and the rebuild does not reproduce it).
    write_multifd_header(h, pk == 4 || pk == 1 ? 1 : 0, num += 2, n == 0 ? "" : "pc.ram", offs);
    b.insert(b.end(), h, h + sizeof h);
    for (std::uint64_t o : offs) {
      const bytes p = page_of(static_cast<unsigned>(o / kTargetPage));
      b.insert(b.end(), p.begin(), p.end());
      want[o] = p;
    }
  }
  return b;
}

}  // namespace

TEST(QemuMultifd, PacketsParsedAndRebuiltInAnyChunking) {
  std::map<std::uint64_t, bytes> want;
  const bytes s = make_channel(1, want);
  std::mt19937 rng(2);
  for (std::size_t max_chunk : {std::size_t{3}, std::size_t{1500}, std::size_t{70000}, s.size()}) {
    mfd_rebuild r;
    multifd_parser p(r);
    for (std::size_t i = 0; i < s.size();) {
      const std::size_t n = std::min<std::size_t>(s.size() - i, 1 + rng() % max_chunk);
      ASSERT_EQ(p.feed({s.data() + i, n}), stream_error::ok) << p.detail();
      i += n;
    }
    EXPECT_EQ(r.inits, 1);
    EXPECT_EQ(r.channel, 1);
    EXPECT_EQ(r.syncs, 2);
    EXPECT_EQ(p.packets(), 5u);
    EXPECT_EQ(r.pages, want);
    EXPECT_TRUE(r.out == s);
  }
}

TEST(QemuMultifd, RefusesCompressionAndBadHeaders) {
  std::map<std::uint64_t, bytes> want;
  bytes s = make_channel(0, want);
  auto parse = [](const bytes &b) {
    mfd_rebuild r;
    multifd_parser p(r);
    const stream_error e = p.feed(b);
    return std::make_pair(e, p.detail());
  };
  bytes z = s;
  z[kMultifdInitSize + 11] = std::byte{2 << 1};  // zstd on the first packet (it has pages)
  auto [e1, d1] = parse(z);
  EXPECT_EQ(e1, stream_error::unsupported_compress);
  EXPECT_NE(d1.find("zstd"), std::string::npos) << d1;
  bytes a = s;
  a[kMultifdInitSize + 15] = std::byte{200};  // pages_alloc 200 > 128
  EXPECT_EQ(parse(a).first, stream_error::bad_record);
  bytes m = s;
  m[0] = std::byte{0};
  EXPECT_EQ(parse(m).first, stream_error::bad_magic);
  bytes f = s;
  f[kMultifdInitSize + 11] = std::byte{0x40};  // 10.x device-state packet
  EXPECT_EQ(parse(f).first, stream_error::bad_record);
  bytes o = s;
  o[kMultifdInitSize + 320 + 7] = std::byte{1};  // an unaligned offset
  EXPECT_EQ(parse(o).first, stream_error::bad_record);
}
