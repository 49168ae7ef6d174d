// format.cpp — frame header checks and CRC32C (ISA-L crc32_iscsi).
#include "wire/format.h"

#include <cstddef>
#include <isa-l/crc.h>

namespace hde::wire {

std::uint32_t crc32c(const void *data, std::size_t len, std::uint32_t seed) {
  return crc32_iscsi(static_cast<unsigned char *>(const_cast<void *>(data)), static_cast<int>(len),
                     seed);
}

static std::uint32_t frame_crc(const std::byte *f, std::size_t len) {
  constexpr std::size_t crc_off = offsetof(frame_header, crc);
  static constexpr std::byte zeros[4] = {};
  std::uint32_t c = crc32c(f, crc_off, ~0u);
  c = crc32c(zeros, sizeof zeros, c);
  return ~crc32c(f + kFrameHeaderSize, len - kFrameHeaderSize, c);
}

void seal_frame(bytes_buf frame) {
  store<std::uint32_t>(frame.data() + offsetof(frame_header, crc), frame_crc(frame.data(), frame.size()));
}

error parse_frame_header(bytes_view frame, frame_header &hdr) {
  if (frame.size() < kFrameHeaderSize)
    return error::truncated;
  std::memcpy(&hdr, frame.data(), kFrameHeaderSize);
  if (hdr.magic != kMagic)
    return error::bad_magic;
  if (hdr.version != kVersion)
    return error::bad_version;
  if (hdr.type < static_cast<std::uint8_t>(frame_type::data) ||
      hdr.type > static_cast<std::uint8_t>(frame_type::notice))
    return error::bad_frame_type;
  if (kFrameHeaderSize + hdr.payload_len != frame.size())
    return frame.size() < kFrameHeaderSize + hdr.payload_len ? error::truncated : error::bad_length;
  if (frame_crc(frame.data(), frame.size()) != hdr.crc)
    return error::bad_crc;
  return error::ok;
}

}  // namespace hde::wire
