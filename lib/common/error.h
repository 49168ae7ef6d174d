// error.h — the one flat error enum of lib/ (no exceptions on the hot path),
// and a small result type carrying either a value or an error.
#pragma once

#include <cstdint>
#include <string_view>

namespace hde {

enum class error : std::uint8_t {
  ok = 0,
  truncated,            // input ends before a declared field or body
  bad_magic,            // frame does not start with the HDE magic
  bad_version,          // unknown wire version
  bad_crc,              // CRC32C over the frame does not match
  bad_frame_type,       // unknown frame type
  bad_record_type,      // unknown record type
  bad_length,           // a length field disagrees with the data
  bad_codec,            // unknown codec id or level
  codec_failed,         // a codec reported an error (corrupt compressed data)
  bad_size,             // decoded size differs from what the record declares
  bad_slot,             // baseline slot index out of range
  stale_baseline,       // baseline generation or content hash mismatch
  bad_delta,            // malformed delta encoding
  bad_fragment,         // fragment out of order or inconsistent
  sequence_gap,         // frame sequence is not the next expected one
  no_space,             // output buffer too small
  io,                   // file or system error (tools only)
  bad_input,            // invalid argument or malformed file (tools only)
  count_               // number of values; keep last
};

constexpr std::string_view to_string(error e) {
  switch (e) {
  case error::ok: return "ok";
  case error::truncated: return "truncated";
  case error::bad_magic: return "bad magic";
  case error::bad_version: return "unknown version";
  case error::bad_crc: return "bad crc";
  case error::bad_frame_type: return "unknown frame type";
  case error::bad_record_type: return "unknown record type";
  case error::bad_length: return "bad length";
  case error::bad_codec: return "unknown codec";
  case error::codec_failed: return "codec failed";
  case error::bad_size: return "bad decoded size";
  case error::bad_slot: return "bad baseline slot";
  case error::stale_baseline: return "stale baseline";
  case error::bad_delta: return "bad delta";
  case error::bad_fragment: return "bad fragment";
  case error::sequence_gap: return "sequence gap";
  case error::no_space: return "no space";
  case error::io: return "i/o error";
  case error::bad_input: return "bad input";
  case error::count_: break;
  }
  return "unknown error";
}

inline constexpr std::size_t kErrorCount = static_cast<std::size_t>(error::count_);

// Either a value or an error; small and trivially copyable for sizes.
template <typename T> struct result {
  T value{};
  error err = error::ok;
  constexpr bool ok() const { return err == error::ok; }
  static constexpr result fail(error e) { return result{T{}, e}; }
};

}  // namespace hde
