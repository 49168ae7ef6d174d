// sack.h — the payload of an ACK frame (receiver -> sender), DPDK-free so it
// is unit-tested and fuzzed on its own. docs/wire-format.md has the layout.
//
// The frame header's seq is the cumulative acknowledgement (every frame below
// it has arrived). The payload adds:
//   - selective-ack blocks: half-open ranges [start, end) of frames above the
//     cumulative ack that have arrived. The block holding the frame that
//     arrived last comes first (the newest news is never left out), then the
//     others in rotation from one ACK to the next (window.h): a long fat
//     path with random loss holds hundreds of blocks, and each must be heard
//     of before RACK would call its frames lost. The sender keeps what
//     earlier ACKs told it.
//   - duplicate reports (DSACK): how many duplicate DATA frames the receiver
//     has seen on the stream, and the sequence number of the latest. The
//     sender learns from them that a retransmission was needless, and widens
//     its reordering window.
//   - how many DATA frames the receiver rebuilt from FEC parity: losses the
//     sender never sees, which its loss estimate (and --fec auto) must count;
//   - the receiver's terms for the stream, settled from the sender's INIT
//     (negotiate.h): its reorder window (the sender keeps no more frames
//     than that in flight), or a refusal with its reason.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace hde::dp {

// Blocks one ACK may carry: 24 + 160 x 8 bytes of payload fits a 1500-byte
// MTU; the receiver sends fewer when its MTU is smaller (ack_blocks_for).
inline constexpr std::size_t kMaxSackBlocks = 160;

struct sack_block {
  std::uint64_t start = 0, end = 0;  // [start, end)
};

// Fixed part of the ACK payload (little-endian on the wire, like every HDE
// field; this code runs on little-endian hosts, checked in format.h).
struct ack_fixed {
  std::uint64_t last_dup_seq;  // seq of the latest duplicate DATA frame (valid when dup_count > 0)
  std::uint32_t dup_count;     // duplicate DATA frames received on this stream (wraps)
  std::uint32_t fec_rebuilt;   // DATA frames rebuilt from parity on this stream (wraps)
  std::uint16_t nblocks;       // sack_wire entries that follow
  std::uint8_t window_log2;    // the receiver's reorder window is 2^this frames (0: not said)
  std::uint8_t refuse;         // non-zero: the receiver refuses the stream, for this reason (negotiate.h)
  std::uint32_t refuse_value;  // with refuse: the receiver's own limit that the sender exceeds
};
static_assert(sizeof(ack_fixed) == 24);

// One block on the wire, relative to the cumulative ack.
struct sack_wire {
  std::uint32_t start_off;  // start - cum (>= 1: cum itself is missing)
  std::uint32_t len;        // end - start (>= 1)
};
static_assert(sizeof(sack_wire) == 8);

struct ack_info {
  std::uint64_t cum = 0;
  std::uint64_t last_dup_seq = 0;
  std::uint32_t dup_count = 0;
  std::uint32_t fec_rebuilt = 0;
  std::uint16_t nblocks = 0;
  std::uint8_t window_log2 = 0;   // receiver's window 2^window_log2 frames (0: not said)
  std::uint8_t refuse = 0;        // non-zero: the stream is refused (negotiate.h's refusal)
  std::uint32_t refuse_value = 0;
  sack_block blocks[kMaxSackBlocks];
};

inline constexpr std::size_t ack_payload_size(std::size_t nblocks) {
  return sizeof(ack_fixed) + nblocks * sizeof(sack_wire);
}
inline constexpr std::size_t kMaxAckPayload = ack_payload_size(kMaxSackBlocks);
// Blocks that fit an ACK frame of frame_size bytes with a header of hdr bytes.
inline constexpr std::size_t ack_blocks_for(std::size_t frame_size, std::size_t hdr) {
  const std::size_t room = frame_size > hdr + sizeof(ack_fixed) ? frame_size - hdr - sizeof(ack_fixed) : 0;
  return room / sizeof(sack_wire) < kMaxSackBlocks ? room / sizeof(sack_wire) : kMaxSackBlocks;
}

// Write a's payload (not the frame header) to out, which has room for
// kMaxAckPayload bytes; returns its length. Blocks that do not fit the
// 32-bit offsets are left out.
inline std::size_t write_ack_payload(const ack_info &a, std::byte *out) {
  ack_fixed f{a.last_dup_seq, a.dup_count, a.fec_rebuilt, 0, a.window_log2, a.refuse, a.refuse_value};
  std::size_t n = 0;
  for (std::size_t i = 0; i < a.nblocks && i < kMaxSackBlocks; ++i) {
    const sack_block &b = a.blocks[i];
    if (b.start <= a.cum || b.end <= b.start || b.end - a.cum > 0xFFFFFFFFull)
      continue;
    const sack_wire w{static_cast<std::uint32_t>(b.start - a.cum), static_cast<std::uint32_t>(b.end - b.start)};
    std::memcpy(out + sizeof f + n * sizeof w, &w, sizeof w);
    ++n;
  }
  f.nblocks = static_cast<std::uint16_t>(n);
  std::memcpy(out, &f, sizeof f);
  return ack_payload_size(n);
}

// Parse an ACK payload of len bytes for cumulative ack cum. False when it is
// malformed: too short, a length that disagrees with nblocks, too many
// blocks, an empty block, a block that starts at or below cum, or a window
// outside 2^6 ... 2^16.
inline bool parse_ack_payload(const std::byte *p, std::size_t len, std::uint64_t cum, ack_info &a) {
  if (len < sizeof(ack_fixed))
    return false;
  ack_fixed f;
  std::memcpy(&f, p, sizeof f);
  if (f.nblocks > kMaxSackBlocks || len != ack_payload_size(f.nblocks) ||
      (f.window_log2 != 0 && (f.window_log2 < 6 || f.window_log2 > 16)) || (f.refuse == 0 && f.refuse_value != 0))
    return false;
  a.cum = cum;
  a.last_dup_seq = f.last_dup_seq;
  a.dup_count = f.dup_count;
  a.fec_rebuilt = f.fec_rebuilt;
  a.nblocks = f.nblocks;
  a.window_log2 = f.window_log2;
  a.refuse = f.refuse;
  a.refuse_value = f.refuse_value;
  for (std::size_t i = 0; i < f.nblocks; ++i) {
    sack_wire w;
    std::memcpy(&w, p + sizeof f + i * sizeof w, sizeof w);
    if (w.start_off == 0 || w.len == 0)
      return false;
    a.blocks[i].start = cum + w.start_off;
    a.blocks[i].end = a.blocks[i].start + w.len;
  }
  return true;
}

}  // namespace hde::dp
