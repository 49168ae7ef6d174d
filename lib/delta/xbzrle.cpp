// xbzrle.cpp — XOR run-length delta encode/apply.
#include "delta/xbzrle.h"

#include <cstring>

namespace hde {

namespace {

// Changed runs swallow unchanged gaps of up to this many bytes: a gap costs
// that many literal bytes inside the run, a split costs two length fields.
constexpr std::size_t kMaxGap = 2;

inline std::uint64_t load64(const std::byte *p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// First index >= pos where a and b differ, or kPageSize.
inline std::size_t skip_equal(const std::byte *a, const std::byte *b, std::size_t pos) {
  while (pos + 8 <= kPageSize) {
    std::uint64_t x = load64(a + pos) ^ load64(b + pos);
    if (x != 0)
      return pos + (static_cast<std::size_t>(__builtin_ctzll(x)) >> 3);
    pos += 8;
  }
  while (pos < kPageSize && a[pos] == b[pos])
    ++pos;
  return pos;
}

// End of the changed run starting at pos (a[pos] != b[pos]): the first
// index that starts more than kMaxGap equal bytes, or kPageSize.
inline std::size_t skip_changed(const std::byte *a, const std::byte *b, std::size_t pos) {
  std::size_t gap = 0;
  for (; pos < kPageSize; ++pos) {
    if (a[pos] == b[pos]) {
      if (++gap > kMaxGap)
        return pos - kMaxGap;
    } else {
      gap = 0;
    }
  }
  return kPageSize - gap;  // trailing equal bytes stay outside the run
}

inline std::size_t uleb_size(std::size_t v) { return v < 128 ? 1 : 2; }  // v <= 4096

inline std::byte *put_uleb(std::byte *o, std::size_t v) {
  if (v < 128) {
    *o++ = static_cast<std::byte>(v);
  } else {
    *o++ = static_cast<std::byte>((v & 0x7f) | 0x80);
    *o++ = static_cast<std::byte>(v >> 7);
  }
  return o;
}

// Reads a ULEB128 of at most two bytes; false on overrun or overlong.
inline bool get_uleb(const std::byte *&p, const std::byte *end, std::size_t &v) {
  if (p == end)
    return false;
  auto b0 = static_cast<unsigned>(*p++);
  if ((b0 & 0x80) == 0) {
    v = b0;
    return true;
  }
  if (p == end)
    return false;
  auto b1 = static_cast<unsigned>(*p++);
  if (b1 & 0x80)
    return false;
  v = (b0 & 0x7f) | (b1 << 7);
  return true;
}

}  // namespace

result<std::size_t> xbzrle_encode(const std::byte *old_page, const std::byte *new_page,
                                  bytes_buf dst) {
  std::byte *o = dst.data();
  std::byte *const end = dst.data() + dst.size();
  std::size_t pos = 0;
  while (pos < kPageSize) {
    std::size_t start = pos;
    pos = skip_equal(old_page, new_page, pos);
    if (pos == kPageSize)
      break;  // trailing unchanged bytes are implicit
    std::size_t zrun = pos - start;
    std::size_t cend = skip_changed(old_page, new_page, pos);
    std::size_t nzrun = cend - pos;
    std::size_t need = uleb_size(zrun) + uleb_size(nzrun) + nzrun;
    if (static_cast<std::size_t>(end - o) < need)
      return result<std::size_t>::fail(error::no_space);
    o = put_uleb(o, zrun);
    o = put_uleb(o, nzrun);
    std::memcpy(o, new_page + pos, nzrun);
    o += nzrun;
    pos = cend;
  }
  return {static_cast<std::size_t>(o - dst.data())};
}

error xbzrle_apply(bytes_view delta, page_buf out) {
  const std::byte *p = delta.data();
  const std::byte *const end = p + delta.size();
  std::size_t pos = 0;
  while (p != end) {
    std::size_t zrun, nzrun;
    if (!get_uleb(p, end, zrun) || !get_uleb(p, end, nzrun))
      return error::bad_delta;
    if (nzrun == 0 || zrun > kPageSize - pos || nzrun > kPageSize - pos - zrun)
      return error::bad_delta;
    if (static_cast<std::size_t>(end - p) < nzrun)
      return error::bad_delta;
    pos += zrun;
    std::memcpy(out.data() + pos, p, nzrun);
    p += nzrun;
    pos += nzrun;
  }
  return error::ok;
}

void xor_page(const std::byte *a, const std::byte *b, std::byte *out) {
  for (std::size_t i = 0; i < kPageSize; i += 8) {
    std::uint64_t v = load64(a + i) ^ load64(b + i);
    std::memcpy(out + i, &v, 8);
  }
}

std::size_t count_diff_bytes(const std::byte *a, const std::byte *b) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < kPageSize; ++i)
    n += a[i] != b[i];
  return n;
}

}  // namespace hde
