// hde-qemu-dump — read a captured QEMU migration stream (the main channel,
// and optionally multifd channels), say what is in it, and check that HDE's
// parser takes it apart and puts it back together: the rebuilt main channel
// must equal the capture byte for byte (RAM records are canonical in QEMU
// 7.2 too), every multifd page must survive the rebuild, and with --image
// the RAM the stream carries (last version of every page) is written out.
//
//   hde-qemu-dump [--image FILE] MAIN [MULTIFD...]
//
// Exit 0 when everything parses and rebuilds exactly, 1 otherwise (the
// parser's message names what it refused and where).
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "qemu/migration_stream.h"

using namespace hde::qemu;

namespace {

std::vector<std::byte> slurp(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<char> v((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(v.size());
  std::memcpy(out.data(), v.data(), v.size());
  return out;
}

struct image_state {
  ram_layout layout;
  std::vector<std::byte> ram;  // flat: blocks end to end
  bool have = false;
  void set(const ram_layout &l) {
    layout = l;
    ram.assign(l.total_bytes, std::byte{0});
    have = true;
  }
  std::byte *at(std::size_t block, std::uint64_t off) { return ram.data() + layout.gfn(block, off) * kTargetPage; }
};

struct mfd_dump;
bool apply_epoch(image_state &img, std::vector<mfd_dump> &chans, std::size_t k, std::uint64_t &bad);

struct main_dump : main_events, main_writer::sink {
  image_state &img;
  std::vector<mfd_dump> *chans = nullptr;
  std::size_t epoch = 0;
  std::uint64_t bad = 0;
  std::vector<std::byte> out;
  main_writer w{*this};
  std::uint64_t pages = 0, zeros = 0, opaque_bytes = 0, sections = 0;
  explicit main_dump(image_state &i) : img(i) {}
  void write(std::span<const std::byte> b) override { out.insert(out.end(), b.begin(), b.end()); }
  void on_opaque(std::span<const std::byte> b) override {
    opaque_bytes += b.size();
    w.opaque(b);
  }
  void on_layout(const ram_layout &l) override {
    img.set(l);
    w.set_layout(l);
    std::printf("RAM: %llu bytes in %zu blocks\n", (unsigned long long)l.total_bytes, l.blocks.size());
    for (const auto &b : l.blocks)
      std::printf("  %-28s %12llu bytes, pages from %llu\n", b.id.c_str(), (unsigned long long)b.used_length,
                  (unsigned long long)b.first_page);
  }
  void on_page(std::size_t block, std::uint64_t off, const std::byte *d) override {
    ++pages;
    std::memcpy(img.at(block, off), d, kTargetPage);
    w.page(block, off, d);
  }
  void on_zero(std::size_t block, std::uint64_t off, std::uint8_t fill) override {
    ++zeros;
    std::memset(img.at(block, off), fill, kTargetPage);
    w.zero(block, off, fill);
  }
  // The destination waits here for every channel's next SYNC: their pages
  // up to it land before anything after this EOS.
  void on_ram_eos(bool) override {
    ++sections;
    if (chans != nullptr)
      apply_epoch(img, *chans, epoch++, bad);
  }
};

// A multifd channel's pages, cut at its SYNC packets: epoch k holds what
// came before the k-th SYNC (the destination applies it before the main
// channel goes past its k-th RAM EOS).
struct mfd_dump : multifd_events {
  struct page {
    std::string block;
    std::uint64_t offset;
    std::vector<std::byte> data;
  };
  std::vector<std::vector<page>> epochs{1};
  std::uint64_t pages = 0, packets = 0, syncs = 0;
  int channel = -1;
  void on_init(std::span<const std::byte>, std::uint8_t ch) override { channel = ch; }
  void on_packet(const multifd_packet &k) override {
    ++packets;
    pages += k.pages;
    for (std::uint32_t i = 0; i < k.pages; ++i)
      epochs.back().push_back({std::string(k.block), k.offsets[i],
                               std::vector<std::byte>(k.data + i * kTargetPage, k.data + (i + 1) * kTargetPage)});
    if (k.sync()) {
      ++syncs;
      epochs.emplace_back();
    }
  }
};

// Apply epoch k of every channel to the image; false on a page outside
// the layout.
bool apply_epoch(image_state &img, std::vector<mfd_dump> &chans, std::size_t k, std::uint64_t &bad) {
  for (auto &c : chans) {
    if (k >= c.epochs.size())
      continue;
    for (const auto &p : c.epochs[k]) {
      const int b = img.have ? img.layout.find(p.block) : -1;
      if (b < 0 || p.offset >= img.layout.blocks[static_cast<std::size_t>(b)].used_length) {
        ++bad;
        continue;
      }
      std::memcpy(img.at(static_cast<std::size_t>(b), p.offset), p.data.data(), kTargetPage);
    }
  }
  return bad == 0;
}

}  // namespace

int main(int argc, char **argv) {
  std::string image;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--image") == 0 && i + 1 < argc)
      image = argv[++i];
    else if (argv[i][0] == '-') {
      std::fprintf(stderr, "usage: hde-qemu-dump [--image FILE] MAIN [MULTIFD...]\n");
      return 2;
    } else
      files.push_back(argv[i]);
  }
  if (files.empty()) {
    std::fprintf(stderr, "usage: hde-qemu-dump [--image FILE] MAIN [MULTIFD...]\n");
    return 2;
  }
  image_state img;
  int rc = 0;
  std::vector<mfd_dump> chans(files.size() - 1);
  for (std::size_t f = 1; f < files.size(); ++f) {
    const std::vector<std::byte> b = slurp(files[f]);
    mfd_dump &d = chans[f - 1];
    multifd_parser p(d);
    if (p.feed(b) != stream_error::ok) {
      std::fprintf(stderr, "hde-qemu-dump: %s: %s\n", files[f].c_str(), p.detail().c_str());
      return 1;
    }
    std::printf("multifd channel %d: %zu bytes, %llu packets, %llu SYNC, %llu pages\n", d.channel, b.size(),
                (unsigned long long)d.packets, (unsigned long long)d.syncs, (unsigned long long)d.pages);
  }
  const std::vector<std::byte> main_bytes = slurp(files[0]);
  main_dump md(img);
  md.chans = &chans;
  main_parser mp(md);
  // Fed in socket-sized pieces, as the gateway would.
  for (std::size_t i = 0; i < main_bytes.size(); i += 65536) {
    if (mp.feed({main_bytes.data() + i, std::min<std::size_t>(65536, main_bytes.size() - i)}) != stream_error::ok) {
      std::fprintf(stderr, "hde-qemu-dump: %s: %s\n", files[0].c_str(), mp.detail().c_str());
      return 1;
    }
  }
  std::printf("main channel: %zu bytes, %llu RAM sections, %llu pages, %llu zero pages, %llu opaque bytes%s\n",
              main_bytes.size(), (unsigned long long)md.sections, (unsigned long long)md.pages,
              (unsigned long long)md.zeros, (unsigned long long)md.opaque_bytes,
              mp.passing_through() ? ", device state passed through" : ", stream ends before device state");
  for (const auto &c : chans)
    if (c.syncs != md.sections) {
      std::fprintf(stderr, "hde-qemu-dump: multifd channel %d has %llu SYNC packets for %llu RAM EOS\n", c.channel,
                   (unsigned long long)c.syncs, (unsigned long long)md.sections);
      rc = 1;
    }
  if (md.bad != 0) {
    std::fprintf(stderr, "hde-qemu-dump: %llu multifd pages outside the RAM layout\n", (unsigned long long)md.bad);
    rc = 1;
  }
  if (md.out != main_bytes) {
    std::size_t i = 0;
    while (i < md.out.size() && i < main_bytes.size() && md.out[i] == main_bytes[i])
      ++i;
    std::fprintf(stderr, "hde-qemu-dump: the rebuilt main channel differs at byte %zu (%zu vs %zu bytes)\n", i,
                 md.out.size(), main_bytes.size());
    rc = 1;
  } else {
    std::printf("main channel rebuilt byte for byte\n");
  }
  if (!image.empty()) {
    std::ofstream o(image, std::ios::binary);
    o.write(reinterpret_cast<const char *>(img.ram.data()), static_cast<std::streamsize>(img.ram.size()));
    if (!o) {
      std::fprintf(stderr, "hde-qemu-dump: cannot write %s\n", image.c_str());
      return 1;
    }
  }
  return rc;
}
