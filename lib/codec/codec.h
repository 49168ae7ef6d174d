// codec.h — every compressor behind one interface: raw, LZ4 (level =
// acceleration), zstd levels 1..19 and ISA-L igzip levels 0..3 (raw deflate).
//
// A codec_set holds one reusable context per codec and is owned by one thread
// (a worker lcore, a decoder): after construction no call allocates from the
// heap. compress() and decompress() never write past the output span and
// return a clear error on corrupt input.
//
// zstd also has a *stream* form (compress_stream / decompress_stream): the
// window runs on from one call to the next, so a batch can refer to bytes of
// earlier batches of the same ordered stream. Both sides must see the same
// calls in the same order; reset_stream() starts over.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"
#include "common/page.h"

namespace hde {

enum class codec_id : std::uint8_t { raw = 0, lz4 = 1, zstd = 2, igzip = 3, count_ };

struct codec_spec {
  codec_id id = codec_id::lz4;
  int level = 1;  // lz4: acceleration (1..65537); zstd: 1..19; igzip: 0..3; raw: 0
  friend bool operator==(const codec_spec &, const codec_spec &) = default;
};

// "raw", "lz4", "lz4:8", "zstd", "zstd:9", "igzip", "igzip:2".
std::optional<codec_spec> parse_codec(std::string_view s);
std::string to_string(codec_spec c);
std::string_view codec_name(codec_id id);
bool codec_level_valid(codec_spec c);

// Worst-case compressed size for n input bytes, for any codec.
std::size_t codec_bound(std::size_t n);

class codec_set {
public:
  codec_set();
  ~codec_set();
  codec_set(const codec_set &) = delete;
  codec_set &operator=(const codec_set &) = delete;

  // Compress src into dst. Returns the compressed size, or error::no_space
  // when it does not fit in dst (callers then send raw).
  result<std::size_t> compress(codec_spec c, bytes_view src, bytes_buf dst);

  // Decompress src into dst; the output must be exactly dst.size() bytes,
  // else error::bad_size. Corrupt input gives error::codec_failed.
  error decompress(codec_id id, bytes_view src, bytes_buf dst);

  // Streaming zstd (see header comment). level 1..19.
  result<std::size_t> compress_stream(int level, bytes_view src, bytes_buf dst);
  error decompress_stream(bytes_view src, bytes_buf dst);
  void reset_stream();

private:
  struct impl;
  impl *p_;
};

}  // namespace hde
