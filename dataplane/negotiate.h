// negotiate.h — the terms of a stream, settled by the destination from the
// source's INIT (DPDK-free, unit-tested in tests/unit/arp_test.cpp):
//
//   frame size  a source whose frames are no larger than ours is taken,
//               and our ACK and REPAIR frames to it are cut to its frame
//               size (its mbufs and MTU are sized for that); larger frames
//               than ours would be dropped by our port or pool: refused;
//   window      a source that may hold more frames in flight than our
//               reorder window takes is told our window in every ACK and
//               keeps to it (frames beyond it would be dropped here);
//   cache       a baseline cache larger than we mirror: refused.
//
// A refusal travels in the stream's ACKs (sack.h: refuse, refuse_value);
// both gateways print the same one-line reason and exit non-zero. Nothing
// is dropped silently.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>

#include "common/page.h"
#include "wire/format.h"

namespace hde::dp {

enum class refusal : std::uint8_t {
  none = 0,
  frame_too_large = 1,  // value: the largest frame the destination takes
  cache_too_large = 2,  // value: the most baseline slots the destination mirrors
  bad_init = 3,         // the INIT does not say what it must (value 0)
};

struct stream_terms {
  refusal why = refusal::none;
  std::uint32_t ours = 0, theirs = 0;  // with a refusal: our limit, the source's figure
  std::uint32_t reply_frame = 0;       // our ACK/REPAIR frames to this source, at most
  std::uint32_t window = 0;            // our reorder window (told in every ACK)
  bool window_capped = false;          // the source's window is larger: it keeps to ours
  bool frame_smaller = false;          // the source's frames are smaller than ours
};

// The INIT a stream opens with: the first record of its frame 0 (the
// encoder sends it alone there). frame: header + payload.
inline bool peek_init(const std::byte *frame, std::size_t len, wire::init_body &b) {
  if (len < wire::kFrameHeaderSize + wire::kRecordHeaderSize)
    return false;
  const auto rh = wire::load<wire::record_header>(frame + wire::kFrameHeaderSize);
  if (rh.type != static_cast<std::uint8_t>(wire::record_type::init) || rh.body_len != sizeof(wire::init_body) ||
      len < wire::kFrameHeaderSize + wire::kRecordHeaderSize + sizeof(wire::init_body))
    return false;
  b = wire::load<wire::init_body>(frame + wire::kFrameHeaderSize + wire::kRecordHeaderSize);
  return true;
}

// our_frame: our largest frame (MTU - 28); our_window: frames per stream in
// our reorder window (a power of two); max_slots: the mirror's limit.
inline stream_terms negotiate(const wire::init_body &in, std::uint32_t our_frame, std::uint32_t our_window,
                              std::uint32_t max_slots) {
  stream_terms t;
  t.window = our_window;
  t.reply_frame = our_frame;
  if (in.max_frame != 0 && in.max_frame < wire::kMinFrameSize) {
    t.why = refusal::bad_init;
    t.theirs = in.max_frame;
    return t;
  }
  if (in.max_frame > our_frame) {
    t.why = refusal::frame_too_large;
    t.ours = our_frame;
    t.theirs = in.max_frame;
    return t;
  }
  if (in.slot_count > max_slots) {
    t.why = refusal::cache_too_large;
    t.ours = max_slots;
    t.theirs = in.slot_count;
    return t;
  }
  if (in.max_frame != 0 && in.max_frame < our_frame) {
    t.reply_frame = in.max_frame;
    t.frame_smaller = true;
  }
  t.window_capped = in.window > our_window;
  return t;
}

inline std::uint8_t log2_window(std::uint32_t w) {
  std::uint8_t k = 0;
  while ((1u << (k + 1)) <= w && k < 31)
    ++k;
  return k;
}

inline const char *refusal_name(refusal r) {
  switch (r) {
  case refusal::none: return "none";
  case refusal::frame_too_large: return "frame_too_large";
  case refusal::cache_too_large: return "cache_too_large";
  case refusal::bad_init: return "bad_init";
  }
  return "unknown";
}

// The reason in one line, from either side. ours/theirs as the destination
// sees them (ours: its limit; theirs: the source's figure, when known).
inline std::string refusal_text(refusal r, std::uint32_t ours, std::uint32_t theirs, bool at_source) {
  char b[400];
  const auto mib = [](std::uint64_t slots) { return static_cast<unsigned long long>(slots * kPageSize >> 20); };
  switch (r) {
  case refusal::frame_too_large:
    if (at_source)
      std::snprintf(b, sizeof b,
                    "the destination refused the migration: our frames of up to %u bytes (MTU %u) exceed the %u "
                    "it takes (its MTU %u): give both gateways the same --mtu",
                    theirs, theirs + 28, ours, ours + 28);
    else
      std::snprintf(b, sizeof b,
                    "refused: the source sends frames of up to %u bytes (MTU %u), this destination takes at most "
                    "%u (--mtu %u): give both gateways the same --mtu",
                    theirs, theirs + 28, ours, ours + 28);
    break;
  case refusal::cache_too_large:
    if (at_source)
      std::snprintf(b, sizeof b,
                    "the destination refused the migration: our baseline cache (%llu MiB per stream) is larger "
                    "than it mirrors (%llu MiB): give a smaller --cache-mb",
                    mib(theirs), mib(ours));
    else
      std::snprintf(b, sizeof b,
                    "refused: the source's baseline cache (%u slots, %llu MiB) is larger than this destination "
                    "mirrors (%u slots, %llu MiB): give the source a smaller --cache-mb",
                    theirs, mib(theirs), ours, mib(ours));
    break;
  case refusal::bad_init:
    std::snprintf(b, sizeof b, "%s: the INIT says frames of %u bytes (fewer than %zu)",
                  at_source ? "the destination refused the migration" : "refused", theirs, wire::kMinFrameSize);
    break;
  default:
    std::snprintf(b, sizeof b, "%s (reason %u, value %u)",
                  at_source ? "the destination refused the migration" : "refused", static_cast<unsigned>(r), ours);
    break;
  }
  return b;
}

}  // namespace hde::dp
