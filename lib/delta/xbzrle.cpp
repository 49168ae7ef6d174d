// xbzrle.cpp — XOR run-length delta: apply, XOR, and run-time choice of the
// encoder copy (xbzrle_encode.inc, built portable and for AVX2).
#include "delta/xbzrle.h"

#include <cstring>

#define HDE_ISA generic
#include "delta/xbzrle_encode.inc"
#undef HDE_ISA

namespace hde {

namespace detail {
result<std::size_t> xbzrle_encode_avx2(const std::byte *, const std::byte *, bytes_buf);
std::size_t count_diff_bytes_avx2(const std::byte *, const std::byte *);
}  // namespace detail

namespace {

inline std::uint64_t load64(const std::byte *p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
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

struct dispatch {
  decltype(&detail::xbzrle_encode_generic) encode = detail::xbzrle_encode_generic;
  decltype(&detail::count_diff_bytes_generic) count = detail::count_diff_bytes_generic;
  dispatch() {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) {
      encode = detail::xbzrle_encode_avx2;
      count = detail::count_diff_bytes_avx2;
    }
  }
};
const dispatch &isa() {
  static const dispatch d;
  return d;
}

}  // namespace

result<std::size_t> xbzrle_encode(const std::byte *old_page, const std::byte *new_page,
                                  bytes_buf dst) {
  return isa().encode(old_page, new_page, dst);
}

std::size_t count_diff_bytes(const std::byte *a, const std::byte *b) { return isa().count(a, b); }

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

}  // namespace hde
