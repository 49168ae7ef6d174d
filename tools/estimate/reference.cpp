// reference.cpp — what QEMU's own migration would put on the wire for the
// same rounds, computed in the same run so that machine noise cancels:
//   * precopy with XBZRLE and an unbounded cache: 8-byte page header, zero
//     pages 9 bytes, dirty pages XBZRLE-encoded against their previous
//     version (+1 flag byte +2 length bytes) unless that overflows a page;
//   * multifd with zstd level 1: zero pages 9 bytes, other pages 8 bytes of
//     header plus their share of one zstd stream flushed every 128 pages;
//   * plain per-page LZ4 (LZ4_compress_default) over every offered page
//     (its speed is measured in replay.cpp, right after the encoder).
#include <cstring>
#include <lz4.h>
#include <memory>
#include <zstd.h>

#include "estimate.h"
#include "page/zero.h"

namespace hde::estimate {

namespace {

// QEMU's XBZRLE (migration/xbzrle.c): runs end at the first equal byte.
// Returns the encoded size, or -1 when it would exceed a page.
long qemu_xbzrle_size(const std::byte *old_p, const std::byte *new_p) {
  long d = 0;
  std::size_t i = 0;
  auto uleb = [](std::size_t v) { return v < 128 ? 1 : (v < 16384 ? 2 : 3); };
  while (i < kPageSize) {
    std::size_t z = i;
    while (i < kPageSize && old_p[i] == new_p[i])
      ++i;
    if (i == kPageSize)
      break;
    std::size_t zrun = i - z;
    std::size_t nz = i;
    while (i < kPageSize && old_p[i] != new_p[i])
      ++i;
    std::size_t nzrun = i - nz;
    d += uleb(zrun) + uleb(nzrun) + static_cast<long>(nzrun);
    if (d > static_cast<long>(kPageSize))
      return -1;
  }
  return d;
}

}  // namespace

bool compute_reference(const options &opt, reference_result &out, std::string &err) {
  constexpr std::size_t kHdr = 8, kZero = 9, kPacketPages = 128;
  std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> z(ZSTD_createCCtx(), ZSTD_freeCCtx);
  ZSTD_CCtx_setParameter(z.get(), ZSTD_c_compressionLevel, 1);
  auto packet = std::make_unique<std::byte[]>(kPacketPages * kPageSize);
  const std::size_t zcap = ZSTD_compressBound(kPacketPages * kPageSize);
  auto zout = std::make_unique<std::byte[]>(zcap);
  std::size_t packet_pages = 0;
  auto flush_packet = [&] {
    if (packet_pages == 0)
      return;
    ZSTD_inBuffer in{packet.get(), packet_pages * kPageSize, 0};
    ZSTD_outBuffer o{zout.get(), zcap, 0};
    while (ZSTD_compressStream2(z.get(), &o, &in, ZSTD_e_flush) != 0) {
    }
    out.multifd_zstd_wire += o.pos + packet_pages * kHdr;
    packet_pages = 0;
  };

  const int lz4cap = LZ4_compressBound(static_cast<int>(kPageSize));
  auto lz4out = std::make_unique<char[]>(static_cast<std::size_t>(lz4cap));
  const std::byte *prev = nullptr;
  std::uint64_t ram = 0;

  auto on_round = [&](std::uint32_t r, const std::byte *img, const std::vector<std::uint64_t> &gfns,
                      const std::string &) {
    // Per-page LZ4 wire bytes (its speed is timed in replay, beside the encoder).
    std::uint64_t lz4_bytes = 0;
    for (std::uint64_t g : gfns) {
      int n = LZ4_compress_default(reinterpret_cast<const char *>(img + g * kPageSize),
                                   lz4out.get(), static_cast<int>(kPageSize), lz4cap);
      lz4_bytes += kHdr + static_cast<std::uint64_t>(n < static_cast<int>(kPageSize) ? n : kPageSize);
    }
    out.lz4_wire += lz4_bytes;

    for (std::uint64_t g : gfns) {
      const std::byte *pg = img + g * kPageSize;
      if (is_zero_page(pg)) {
        out.xbzrle_wire += kZero;
        out.multifd_zstd_wire += kZero;
        continue;
      }
      // XBZRLE precopy.
      long x = r == 0 ? -1 : qemu_xbzrle_size(prev + g * kPageSize, pg);
      out.xbzrle_wire += x < 0 ? kHdr + kPageSize : kHdr + 3 + static_cast<std::uint64_t>(x);
      // multifd zstd.
      std::memcpy(packet.get() + packet_pages * kPageSize, pg, kPageSize);
      if (++packet_pages == kPacketPages)
        flush_packet();
    }
    flush_packet();
    prev = img;
    return true;
  };
  return walk_rounds(opt, on_round, ram, err);
}

}  // namespace hde::estimate
