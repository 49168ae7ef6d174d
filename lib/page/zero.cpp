// zero.cpp — vectorised zero-page check with runtime CPU dispatch.
#include "page/zero.h"

#include <cstring>
#include <immintrin.h>

namespace hde {

bool is_zero_page_generic(const std::byte *page) {
  const auto *p = reinterpret_cast<const unsigned char *>(page);
  for (std::size_t off = 0; off < kPageSize; off += 64) {
    std::uint64_t w[8];
    std::memcpy(w, p + off, sizeof w);
    if ((w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) != 0)
      return false;
  }
  return true;
}

__attribute__((target("avx2"))) static bool is_zero_avx2(const std::byte *page) {
  const auto *p = reinterpret_cast<const __m256i *>(page);
  // Most non-zero pages fail on the first cache line: test it alone first.
  __m256i a = _mm256_or_si256(_mm256_loadu_si256(p), _mm256_loadu_si256(p + 1));
  if (!_mm256_testz_si256(a, a))
    return false;
  for (std::size_t i = 2; i < kPageSize / 32; i += 8) {
    __m256i x0 = _mm256_or_si256(_mm256_loadu_si256(p + i), _mm256_loadu_si256(p + i + 1));
    __m256i x1 = _mm256_or_si256(_mm256_loadu_si256(p + i + 2), _mm256_loadu_si256(p + i + 3));
    __m256i x2 = _mm256_or_si256(_mm256_loadu_si256(p + i + 4), _mm256_loadu_si256(p + i + 5));
    __m256i x3 = _mm256_or_si256(_mm256_loadu_si256(p + i + 6),
                                 i + 7 < kPageSize / 32 ? _mm256_loadu_si256(p + i + 7)
                                                        : _mm256_setzero_si256());
    __m256i x = _mm256_or_si256(_mm256_or_si256(x0, x1), _mm256_or_si256(x2, x3));
    if (!_mm256_testz_si256(x, x))
      return false;
  }
  return true;
}

__attribute__((target("avx512f,avx512bw"))) static bool is_zero_avx512(const std::byte *page) {
  const auto *p = reinterpret_cast<const __m512i *>(page);
  if (_mm512_test_epi64_mask(_mm512_loadu_si512(p), _mm512_loadu_si512(p)) != 0)
    return false;
  for (std::size_t i = 1; i < kPageSize / 64; i += 9) {
    // 63 remaining lines, in groups of up to 9 (7 groups).
    __m512i x = _mm512_loadu_si512(p + i);
    for (std::size_t j = 1; j < 9 && i + j < kPageSize / 64; ++j)
      x = _mm512_or_si512(x, _mm512_loadu_si512(p + i + j));
    if (_mm512_test_epi64_mask(x, x) != 0)
      return false;
  }
  return true;
}

namespace {
using zero_fn = bool (*)(const std::byte *);
struct dispatch {
  zero_fn fn;
  const char *name;
  dispatch() {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512bw")) {
      fn = is_zero_avx512;
      name = "avx512";
    } else if (__builtin_cpu_supports("avx2")) {
      fn = is_zero_avx2;
      name = "avx2";
    } else {
      fn = is_zero_page_generic;
      name = "generic";
    }
  }
};
const dispatch &selected() {
  static const dispatch d;
  return d;
}
}  // namespace

bool is_zero_page(const std::byte *page) { return selected().fn(page); }
const char *is_zero_impl() { return selected().name; }

}  // namespace hde
