// codec.cpp — the codecs behind codec.h: raw, LZ4, zstd (one-shot and
// stream) and ISA-L igzip (raw deflate), each with contexts made once.
//
// No heap after construction: zstd runs on static contexts (ZSTD_initStatic*)
// whose workspaces are sized in the constructor for the most demanding level.
// Workspaces come straight from mmap, so only the pages calls touch become
// resident: the stream compressor reserves ~90 MiB for level 19 but a level 3
// stream uses ~10 MiB of it. One-shot zstd keeps its window to 256 KiB (inputs
// up to that size get zstd's usual parameters), which bounds its workspace to
// ~5 MiB instead of ~80 MiB. If the constructor cannot get memory for a codec,
// that codec's calls fail with error::codec_failed.
//
// igzip output never exceeds stored deflate blocks: when the compressed form
// would be longer (level 0 uses a fixed Huffman table that expands random data
// by ~25%), the input is written as stored blocks instead. That keeps
// codec_bound() tight for every codec.
//
// LZ4 cannot tell a block that decodes to more than dst from a corrupt one
// without decoding past dst: a block whose first dst.size() (> 0) bytes decode
// cleanly is reported as bad_size, anything else as codec_failed.
//
// Stream (zstd) rules, on top of codec.h:
// - one zstd frame runs from a reset to the next; each call flushes so the
//   batch decodes on its own given the earlier ones; the window is 8 MiB
//   (windowLog 23) and the decoder refuses frames asking for more.
// - a change of level closes the current frame and opens a new one at the new
//   level (zstd cannot change level inside a frame); the decoder follows by
//   itself, but the window starts empty again.
// - any error other than bad_codec ends the stream on the side that saw it:
//   that side has already restarted, and the peer must call reset_stream()
//   before the next batch (compress_stream's no_space included).
// - zstd has no checksum in a frame that never ends: a batch fed out of order
//   can decode "successfully" to wrong bytes. Ordering is the wire's job.
#include "codec/codec.h"

#include <isa-l/igzip_lib.h>
#define LZ4_STATIC_LINKING_ONLY  // LZ4_compress_fast_extState_fastReset
#include <lz4.h>
#include <sys/mman.h>
#define ZSTD_STATIC_LINKING_ONLY  // static contexts and their size estimates
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace hde {

namespace {

constexpr int kLz4MaxLevel = 65537;  // LZ4_ACCELERATION_MAX
constexpr int kZstdMaxLevel = 19;
constexpr int kIgzipMaxLevel = 3;
constexpr int kOneShotWindowLog = 18;  // 256 KiB
constexpr int kStreamWindowLog = 23;   // 8 MiB: bounds the decoder's memory
// The codecs take 32-bit (LZ4: int) sizes: inputs over 1 GiB are refused
// (compress: no_space, decompress: bad_size) and capacities are capped.
constexpr std::size_t kMaxInput = std::size_t{1} << 30;

constexpr std::size_t kIgzipLevelBufSize[] = {ISAL_DEF_LVL0_DEFAULT, ISAL_DEF_LVL1_DEFAULT,
                                              ISAL_DEF_LVL2_DEFAULT, ISAL_DEF_LVL3_DEFAULT};
constexpr std::size_t kIgzipLevelBufMax =
    *std::max_element(std::begin(kIgzipLevelBufSize), std::end(kIgzipLevelBufSize));
constexpr std::size_t kStoredBlockMax = 65535;
constexpr std::size_t kStoredHeader = 5;  // BFINAL/BTYPE byte, LEN, NLEN

// Memory for a codec's state, straight from mmap: pages are zero and become
// resident only when touched, whatever malloc would do with fresh memory.
// Empty when n is 0 or the mapping fails.
class mapping {
public:
  explicit mapping(std::size_t n) {
    void *p = n == 0 ? MAP_FAILED
                     : mmap(nullptr, n, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED) {
      p_ = p;
      n_ = n;
    }
  }
  mapping(const mapping &) = delete;
  mapping &operator=(const mapping &) = delete;
  ~mapping() {
    if (p_ != nullptr)
      munmap(p_, n_);
  }
  void *get() const { return p_; }
  std::size_t size() const { return n_; }

private:
  void *p_ = nullptr;
  std::size_t n_ = 0;
};

int default_level(codec_id id) {
  switch (id) {
  case codec_id::lz4: return 1;
  case codec_id::zstd: return 3;
  case codec_id::igzip: return 1;
  default: return 0;
  }
}

// Size of src written as stored deflate blocks (at least one, even if empty).
std::size_t stored_size(std::size_t n) {
  std::size_t blocks = std::max<std::size_t>(1, (n + kStoredBlockMax - 1) / kStoredBlockMax);
  return n + blocks * kStoredHeader;
}

// Writes src as stored deflate blocks; dst holds stored_size(src.size()).
std::size_t write_stored(bytes_view src, bytes_buf dst) {
  std::size_t in = 0, out = 0;
  do {
    std::size_t len = std::min(kStoredBlockMax, src.size() - in);
    bool last = in + len == src.size();
    auto n = static_cast<std::uint16_t>(len);
    auto nn = static_cast<std::uint16_t>(~n);
    dst[out++] = last ? std::byte{1} : std::byte{0};  // BFINAL, BTYPE = 00 (stored)
    dst[out++] = std::byte(n & 0xff);
    dst[out++] = std::byte(n >> 8);
    dst[out++] = std::byte(nn & 0xff);
    dst[out++] = std::byte(nn >> 8);
    if (len != 0)
      std::memcpy(dst.data() + out, src.data() + in, len);
    in += len;
    out += len;
  } while (in < src.size());
  return out;
}

// Largest one-shot workspace over every level and every source size, the
// window held to kOneShotWindowLog (which also caps the hash and chain
// tables once the source size is known, as it always is in one shot).
std::size_t zstd_oneshot_cctx_size() {
  std::size_t n = 0;
  for (int l = 1; l <= kZstdMaxLevel; ++l) {
    // zstd's parameter tables change at 16 KiB, 128 KiB and 256 KiB.
    for (unsigned long long size : {16ull << 10, 128ull << 10, 256ull << 10, 1ull << 30}) {
      ZSTD_compressionParameters cp = ZSTD_getCParams(l, size, 0);
      cp.windowLog = std::min<unsigned>(cp.windowLog, kOneShotWindowLog);
      cp = ZSTD_adjustCParams(cp, size, 0);
      n = std::max(n, ZSTD_estimateCCtxSize_usingCParams(cp));
    }
  }
  return n;
}

std::size_t zstd_stream_cctx_size() {
  ZSTD_CCtx_params *params = ZSTD_createCCtxParams();
  if (params == nullptr)
    return 0;
  std::size_t n = 0;
  for (int l = 1; l <= kZstdMaxLevel; ++l) {
    ZSTD_CCtxParams_init(params, l);
    ZSTD_CCtxParams_setParameter(params, ZSTD_c_windowLog, kStreamWindowLog);
    n = std::max(n, ZSTD_estimateCStreamSize_usingCCtxParams(params));
  }
  ZSTD_freeCCtxParams(params);
  return n;
}

inline std::uint8_t *u8(bytes_buf s) { return reinterpret_cast<std::uint8_t *>(s.data()); }
inline std::uint8_t *u8(bytes_view s) {
  // ISA-L takes non-const input pointers but does not write through them.
  return const_cast<std::uint8_t *>(reinterpret_cast<const std::uint8_t *>(s.data()));
}

}  // namespace

struct codec_set::impl {
  mapping lz4_state{static_cast<std::size_t>(LZ4_sizeofState())};

  mapping zstd_c_mem{zstd_oneshot_cctx_size()};
  mapping zstd_d_mem{ZSTD_estimateDCtxSize()};
  ZSTD_CCtx *zstd_c = nullptr;
  ZSTD_DCtx *zstd_d = nullptr;

  mapping stream_c_mem{zstd_stream_cctx_size()};
  mapping stream_d_mem{ZSTD_estimateDStreamSize(std::size_t{1} << kStreamWindowLog)};
  ZSTD_CCtx *stream_c = nullptr;
  ZSTD_DCtx *stream_d = nullptr;
  bool stream_open = false;  // a frame has been started since the last reset
  int stream_level = 0;      // level of the open frame

  mapping igzip_level_buf{kIgzipLevelBufMax};  // shared by levels 1..3
  isal_zstream deflate{};
  inflate_state inflate{};

  impl();
  void reset_stream_c();
  void reset_stream_d();
  result<std::size_t> lz4_compress(int level, bytes_view src, bytes_buf dst);
  error lz4_decompress(bytes_view src, bytes_buf dst);
  result<std::size_t> zstd_compress(int level, bytes_view src, bytes_buf dst);
  error zstd_decompress(bytes_view src, bytes_buf dst);
  result<std::size_t> igzip_compress(int level, bytes_view src, bytes_buf dst);
  error igzip_decompress(bytes_view src, bytes_buf dst);
};

codec_set::impl::impl() {
  if (lz4_state.get() != nullptr)  // page-aligned and sized by LZ4 itself: cannot fail
    LZ4_initStream(lz4_state.get(), lz4_state.size());
  if (zstd_c_mem.get() != nullptr)
    zstd_c = ZSTD_initStaticCCtx(zstd_c_mem.get(), zstd_c_mem.size());
  if (zstd_c != nullptr &&
      ZSTD_isError(ZSTD_CCtx_setParameter(zstd_c, ZSTD_c_windowLog, kOneShotWindowLog)))
    zstd_c = nullptr;
  if (zstd_d_mem.get() != nullptr)
    zstd_d = ZSTD_initStaticDCtx(zstd_d_mem.get(), zstd_d_mem.size());

  if (stream_c_mem.get() != nullptr)
    stream_c = ZSTD_initStaticCCtx(stream_c_mem.get(), stream_c_mem.size());
  if (stream_c != nullptr &&
      ZSTD_isError(ZSTD_CCtx_setParameter(stream_c, ZSTD_c_windowLog, kStreamWindowLog)))
    stream_c = nullptr;
  if (stream_d_mem.get() != nullptr)
    stream_d = ZSTD_initStaticDCtx(stream_d_mem.get(), stream_d_mem.size());
  if (stream_d != nullptr &&
      ZSTD_isError(ZSTD_DCtx_setParameter(stream_d, ZSTD_d_windowLogMax, kStreamWindowLog)))
    stream_d = nullptr;
}

void codec_set::impl::reset_stream_c() {
  if (stream_c != nullptr)
    ZSTD_CCtx_reset(stream_c, ZSTD_reset_session_only);
  stream_open = false;
}

void codec_set::impl::reset_stream_d() {
  if (stream_d != nullptr)
    ZSTD_DCtx_reset(stream_d, ZSTD_reset_session_only);
}

result<std::size_t> codec_set::impl::lz4_compress(int level, bytes_view src, bytes_buf dst) {
  if (lz4_state.get() == nullptr)
    return result<std::size_t>::fail(error::codec_failed);
  // The _fastReset form skips the 16 KiB table clear that
  // LZ4_compress_fast_extState does on every call (liblz4 is linked
  // statically: the shared library does not export it).
  int r = LZ4_compress_fast_extState_fastReset(
      lz4_state.get(), reinterpret_cast<const char *>(src.data()), reinterpret_cast<char *>(dst.data()),
      static_cast<int>(src.size()), static_cast<int>(dst.size()), level);
  if (r <= 0)
    return result<std::size_t>::fail(error::no_space);
  return {static_cast<std::size_t>(r)};
}

error codec_set::impl::lz4_decompress(bytes_view src, bytes_buf dst) {
  const char *in = reinterpret_cast<const char *>(src.data());
  char *out = reinterpret_cast<char *>(dst.data());
  int in_len = static_cast<int>(src.size());
  int out_len = static_cast<int>(dst.size());
  int r = LZ4_decompress_safe(in, out, in_len, out_len);
  if (r >= 0)
    return static_cast<std::size_t>(r) == dst.size() ? error::ok : error::bad_size;
  // Either corrupt, or valid but longer than dst: tell them apart by whether
  // the first dst.size() bytes decode cleanly.
  if (out_len > 0 && LZ4_decompress_safe_partial(in, out, in_len, out_len, out_len) == out_len)
    return error::bad_size;
  return error::codec_failed;
}

result<std::size_t> codec_set::impl::zstd_compress(int level, bytes_view src, bytes_buf dst) {
  if (zstd_c == nullptr)
    return result<std::size_t>::fail(error::codec_failed);
  std::size_t r = ZSTD_CCtx_setParameter(zstd_c, ZSTD_c_compressionLevel, level);
  if (!ZSTD_isError(r))
    r = ZSTD_compress2(zstd_c, dst.data(), dst.size(), src.data(), src.size());
  if (ZSTD_isError(r))
    return result<std::size_t>::fail(ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall
                                         ? error::no_space
                                         : error::codec_failed);
  return {r};
}

error codec_set::impl::zstd_decompress(bytes_view src, bytes_buf dst) {
  if (zstd_d == nullptr)
    return error::codec_failed;
  unsigned long long declared = ZSTD_getFrameContentSize(src.data(), src.size());
  if (declared == ZSTD_CONTENTSIZE_ERROR)
    return error::codec_failed;
  if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != dst.size())
    return error::bad_size;
  std::size_t r = ZSTD_decompressDCtx(zstd_d, dst.data(), dst.size(), src.data(), src.size());
  if (ZSTD_isError(r))
    return ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall ? error::bad_size
                                                               : error::codec_failed;
  return r == dst.size() ? error::ok : error::bad_size;
}

result<std::size_t> codec_set::impl::igzip_compress(int level, bytes_view src, bytes_buf dst) {
  if (level != 0 && igzip_level_buf.get() == nullptr)
    return result<std::size_t>::fail(error::codec_failed);
  // Compress into at most the stored size; past that, stored blocks win.
  std::size_t stored = stored_size(src.size());
  isal_zstream &z = deflate;
  isal_deflate_init(&z);
  z.level = static_cast<std::uint32_t>(level);
  z.level_buf = level == 0 ? nullptr : static_cast<std::uint8_t *>(igzip_level_buf.get());
  z.level_buf_size = static_cast<std::uint32_t>(kIgzipLevelBufSize[level]);
  z.gzip_flag = IGZIP_DEFLATE;
  z.hist_bits = 0;  // default: the full 32 KiB window
  z.end_of_stream = 1;
  z.flush = NO_FLUSH;
  z.next_in = u8(src);
  z.avail_in = static_cast<std::uint32_t>(src.size());
  z.next_out = u8(dst);
  z.avail_out = static_cast<std::uint32_t>(std::min(dst.size(), stored));
  while (z.internal_state.state != ZSTATE_END && z.avail_out != 0) {
    std::uint32_t in_before = z.total_in, out_before = z.total_out;
    auto state_before = z.internal_state.state;
    if (isal_deflate(&z) != COMP_OK)
      return result<std::size_t>::fail(error::codec_failed);
    if (z.total_in == in_before && z.total_out == out_before &&
        z.internal_state.state == state_before)
      return result<std::size_t>::fail(error::codec_failed);  // no progress: never loop forever
  }
  if (z.internal_state.state == ZSTATE_END)
    return {z.total_out};
  if (dst.size() < stored)
    return result<std::size_t>::fail(error::no_space);
  return {write_stored(src, dst)};
}

error codec_set::impl::igzip_decompress(bytes_view src, bytes_buf dst) {
  inflate_state &s = inflate;
  isal_inflate_init(&s);
  s.crc_flag = ISAL_DEFLATE;
  s.hist_bits = 0;
  s.next_in = u8(src);
  s.avail_in = static_cast<std::uint32_t>(src.size());
  s.next_out = u8(dst);
  s.avail_out = static_cast<std::uint32_t>(dst.size());
  switch (isal_inflate_stateless(&s)) {
  case ISAL_DECOMP_OK:
    if (s.block_state != ISAL_BLOCK_FINISH || s.avail_in != 0)
      return error::codec_failed;  // unfinished, or bytes after the final block
    return s.total_out == dst.size() ? error::ok : error::bad_size;
  case ISAL_OUT_OVERFLOW:
    return error::bad_size;
  default:  // truncated input (ISAL_END_INPUT) or an invalid stream
    return error::codec_failed;
  }
}

// ---------------------------------------------------------------------------

std::string_view codec_name(codec_id id) {
  switch (id) {
  case codec_id::raw: return "raw";
  case codec_id::lz4: return "lz4";
  case codec_id::zstd: return "zstd";
  case codec_id::igzip: return "igzip";
  case codec_id::count_: break;
  }
  return "unknown";
}

bool codec_level_valid(codec_spec c) {
  switch (c.id) {
  case codec_id::raw: return c.level == 0;
  case codec_id::lz4: return c.level >= 1 && c.level <= kLz4MaxLevel;
  case codec_id::zstd: return c.level >= 1 && c.level <= kZstdMaxLevel;
  case codec_id::igzip: return c.level >= 0 && c.level <= kIgzipMaxLevel;
  case codec_id::count_: break;
  }
  return false;
}

std::optional<codec_spec> parse_codec(std::string_view s) {
  std::string_view name = s.substr(0, s.find(':'));
  std::optional<codec_spec> out;
  for (auto id : {codec_id::raw, codec_id::lz4, codec_id::zstd, codec_id::igzip})
    if (name == codec_name(id))
      out = codec_spec{id, default_level(id)};
  if (!out)
    return std::nullopt;
  if (name.size() == s.size())
    return out;
  if (out->id == codec_id::raw)
    return std::nullopt;  // raw takes no level
  std::string_view num = s.substr(name.size() + 1);
  if (num.empty() || num.front() < '0' || num.front() > '9')
    return std::nullopt;  // no sign, no blank
  auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), out->level);
  if (ec != std::errc{} || end != num.data() + num.size() || !codec_level_valid(*out))
    return std::nullopt;
  return out;
}

std::string to_string(codec_spec c) {
  if (c.id == codec_id::raw || c.id >= codec_id::count_)
    return std::string(codec_name(c.id));
  return std::string(codec_name(c.id)) + ':' + std::to_string(c.level);
}

std::size_t codec_bound(std::size_t n) {
  std::size_t lz4 = n + n / 255 + 16;  // LZ4_COMPRESSBOUND, without its input cap
  std::size_t zstd = ZSTD_COMPRESSBOUND(n);
  return std::max({n, lz4, zstd, stored_size(n)});
}

codec_set::codec_set() : p_(new impl) {}

codec_set::~codec_set() { delete p_; }

result<std::size_t> codec_set::compress(codec_spec c, bytes_view src, bytes_buf dst) {
  if (!codec_level_valid(c))
    return result<std::size_t>::fail(error::bad_codec);
  if (src.size() > kMaxInput)
    return result<std::size_t>::fail(error::no_space);
  dst = dst.first(std::min(dst.size(), codec_bound(kMaxInput)));
  switch (c.id) {
  case codec_id::raw:
    if (dst.size() < src.size())
      return result<std::size_t>::fail(error::no_space);
    if (!src.empty())
      std::memcpy(dst.data(), src.data(), src.size());
    return {src.size()};
  case codec_id::lz4: return p_->lz4_compress(c.level, src, dst);
  case codec_id::zstd: return p_->zstd_compress(c.level, src, dst);
  case codec_id::igzip: return p_->igzip_compress(c.level, src, dst);
  case codec_id::count_: break;
  }
  return result<std::size_t>::fail(error::bad_codec);
}

error codec_set::decompress(codec_id id, bytes_view src, bytes_buf dst) {
  if (id >= codec_id::count_)
    return error::bad_codec;
  if (src.size() > codec_bound(kMaxInput) || dst.size() > kMaxInput)
    return error::bad_size;
  switch (id) {
  case codec_id::raw:
    if (src.size() != dst.size())
      return error::bad_size;
    if (!src.empty())
      std::memcpy(dst.data(), src.data(), src.size());
    return error::ok;
  case codec_id::lz4: return p_->lz4_decompress(src, dst);
  case codec_id::zstd: return p_->zstd_decompress(src, dst);
  case codec_id::igzip: return p_->igzip_decompress(src, dst);
  case codec_id::count_: break;
  }
  return error::bad_codec;
}

result<std::size_t> codec_set::compress_stream(int level, bytes_view src, bytes_buf dst) {
  if (level < 1 || level > kZstdMaxLevel)
    return result<std::size_t>::fail(error::bad_codec);
  impl &s = *p_;
  if (s.stream_c == nullptr)
    return result<std::size_t>::fail(error::codec_failed);
  ZSTD_outBuffer out{dst.data(), dst.size(), 0};
  auto fail = [&s](error e) {
    s.reset_stream_c();
    return result<std::size_t>::fail(e);
  };
  // Run zstd until in is consumed and everything is written (mode flush or end).
  auto drive = [&](ZSTD_inBuffer &in, ZSTD_EndDirective mode) {
    for (;;) {
      std::size_t left = ZSTD_compressStream2(s.stream_c, &out, &in, mode);
      if (ZSTD_isError(left))
        return error::codec_failed;
      if (left == 0 && in.pos == in.size)
        return error::ok;
      if (out.pos == out.size)
        return error::no_space;
    }
  };
  if (s.stream_open && level != s.stream_level) {
    ZSTD_inBuffer none{nullptr, 0, 0};
    if (error e = drive(none, ZSTD_e_end); e != error::ok)
      return fail(e);
    s.stream_open = false;
  }
  if (!s.stream_open) {
    if (ZSTD_isError(ZSTD_CCtx_setParameter(s.stream_c, ZSTD_c_compressionLevel, level)))
      return fail(error::codec_failed);
    s.stream_open = true;
    s.stream_level = level;
  }
  ZSTD_inBuffer in{src.data(), src.size(), 0};
  if (error e = drive(in, ZSTD_e_flush); e != error::ok)
    return fail(e);
  return {out.pos};
}

error codec_set::decompress_stream(bytes_view src, bytes_buf dst) {
  impl &s = *p_;
  if (s.stream_d == nullptr)
    return error::codec_failed;
  if (src.empty())
    return dst.empty() ? error::ok : error::bad_size;
  auto fail = [&s](error e) {
    s.reset_stream_d();
    return e;
  };
  ZSTD_inBuffer in{src.data(), src.size(), 0};
  ZSTD_outBuffer out{dst.data(), dst.size(), 0};
  while (in.pos < in.size) {
    std::size_t in_before = in.pos, out_before = out.pos;
    if (ZSTD_isError(ZSTD_decompressStream(s.stream_d, &out, &in)))
      return fail(error::codec_failed);
    if (in.pos == in_before && out.pos == out_before)
      return fail(out.pos == out.size ? error::bad_size : error::codec_failed);
  }
  if (out.pos != out.size)
    return fail(error::bad_size);
  // Output zstd still holds belongs to this batch: it is longer than dst.
  std::byte probe;
  ZSTD_outBuffer extra{&probe, 1, 0};
  if (ZSTD_isError(ZSTD_decompressStream(s.stream_d, &extra, &in)))
    return fail(error::codec_failed);
  if (extra.pos != 0)
    return fail(error::bad_size);
  return error::ok;
}

void codec_set::reset_stream() {
  p_->reset_stream_c();
  p_->reset_stream_d();
}

}  // namespace hde
