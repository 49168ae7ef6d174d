// fuzz_qemu.cpp — libFuzzer target for the QEMU migration-stream parsers
// (lib/qemu/migration_stream.cpp): any bytes, fed in any chunking, to the
// main-channel parser (byte 0 even) or a multifd channel parser (odd). No
// crash, no read outside what was fed, every page handed out whole, and a
// failed parser stays failed with a message.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "qemu/migration_stream.h"

using namespace hde::qemu;

namespace {

struct sink : main_events, multifd_events, main_writer::sink {
  std::size_t bytes = 0;
  std::uint64_t sum = 0;
  main_writer w{*this};
  bool layout = false;
  void write(std::span<const std::byte> b) override { bytes += b.size(); }
  void on_opaque(std::span<const std::byte> b) override {
    for (std::byte x : b)
      sum += std::to_integer<unsigned>(x);  // touch every byte (ASan)
    w.opaque(b);
  }
  void on_layout(const ram_layout &l) override {
    if (l.blocks.empty())
      __builtin_trap();
    w.set_layout(l);
    layout = true;
  }
  void on_page(std::size_t block, std::uint64_t off, const std::byte *d) override {
    if (!layout)
      __builtin_trap();
    sum += std::to_integer<unsigned>(d[0]) + std::to_integer<unsigned>(d[kTargetPage - 1]);
    w.page(block, off, d);
  }
  void on_zero(std::size_t block, std::uint64_t off, std::uint8_t fill) override { w.zero(block, off, fill); }
  void on_ram_eos(bool) override {}
  void on_init(std::span<const std::byte> init, std::uint8_t) override {
    if (init.size() != kMultifdInitSize)
      __builtin_trap();
  }
  void on_packet(const multifd_packet &k) override {
    if (k.pages > kMultifdPages)
      __builtin_trap();
    for (std::uint32_t i = 0; i < k.pages; ++i)
      sum += k.offsets[i] + std::to_integer<unsigned>(k.data[i * kTargetPage + kTargetPage - 1]);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  if (size < 2)
    return 0;
  const bool multifd = data[0] & 1;
  const std::size_t chunk = 1 + data[1] * 17u;  // 1 .. 4336 bytes per feed
  data += 2;
  size -= 2;
  sink s;
  main_parser mp(s);
  multifd_parser fp(s);
  stream_error e = stream_error::ok;
  for (std::size_t i = 0; i < size && e == stream_error::ok; i += chunk) {
    const std::span<const std::byte> b(reinterpret_cast<const std::byte *>(data) + i, std::min(chunk, size - i));
    e = multifd ? fp.feed(b) : mp.feed(b);
  }
  if (e != stream_error::ok) {
    const std::string &d = multifd ? fp.detail() : mp.detail();
    if (d.empty() || (multifd ? fp.feed({}) : mp.feed({})) != e)
      __builtin_trap();  // a failure says what, and stays
  }
  return 0;
}
