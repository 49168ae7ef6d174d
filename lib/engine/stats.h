// stats.h — counters of the ladder, per rung and per codec. One instance per
// encoder or decoder (that is, per worker lcore), cache-line aligned and
// written only by its owner; readers take a copy.
#pragma once

#include <array>
#include <cstdint>

#include "codec/codec.h"
#include "common/error.h"

namespace hde {

enum class rung : std::uint8_t { zero = 0, ref, delta, page, count_ };
inline constexpr std::size_t kRungCount = static_cast<std::size_t>(rung::count_);
inline constexpr std::size_t kCodecCount = static_cast<std::size_t>(codec_id::count_);

constexpr const char *rung_name(rung r) {
  constexpr const char *names[] = {"zero", "ref", "delta", "page"};
  return names[static_cast<std::size_t>(r)];
}

struct alignas(64) encoder_stats {
  std::uint64_t pages_in = 0;
  std::array<std::uint64_t, kRungCount> rung_pages{};
  // Record bytes per rung (header + body). Inside a compressed batch a
  // record is charged its share of the batch's compressed size.
  std::array<std::uint64_t, kRungCount> rung_bytes{};
  std::array<std::uint64_t, kCodecCount> codec_pages{};     // PAGE and DELTA xor by codec
  std::array<std::uint64_t, kCodecCount> codec_bytes_in{};  // bytes given to the codec
  std::array<std::uint64_t, kCodecCount> codec_bytes_out{}; // bytes it produced
  std::array<std::uint64_t, kCodecCount> codec_ns{};        // time spent compressing
  std::uint64_t delta_xbzrle = 0;    // DELTA records of kind xbzrle
  std::uint64_t delta_xor = 0;       // DELTA records of kind xor_codec
  std::uint64_t delta_rejected = 0;  // a baseline existed but a PAGE was cheaper
  std::uint64_t repairs = 0;         // pages sent again whole (the receiver lost them)
  std::uint64_t batches = 0;
  std::uint64_t batch_raw_bytes = 0;
  std::uint64_t batch_wire_bytes = 0;
  std::uint64_t frames = 0;
  std::uint64_t frame_bytes = 0;     // UDP payload bytes (HDE header included)
  std::uint64_t frags = 0;           // FRAG records emitted
  std::uint64_t marks = 0;
  std::uint64_t opaque_bytes = 0;    // OPAQUE bytes carried (hypervisor stream besides pages)
  // Hybrid mode: segments run (explored among them), pages per arm.
  std::uint64_t segments = 0;
  std::uint64_t explored_segments = 0;
  std::array<std::uint64_t, 16> arm_pages{};
};

struct alignas(64) decoder_stats {
  std::uint64_t frames = 0;
  std::uint64_t frame_bytes = 0;
  std::array<std::uint64_t, kRungCount> rung_pages{};
  std::uint64_t batches = 0;
  std::uint64_t marks = 0;
  std::uint64_t opaque_bytes = 0;
  std::uint64_t pages_lost = 0;     // page records that could not be applied (sink told: on_lost)
  std::uint64_t broken_frames = 0;  // frames rejected or cut short: the rest of their pages unknown
  std::array<std::uint64_t, kErrorCount> errors{};  // by error value
};

}  // namespace hde
