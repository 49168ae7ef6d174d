// hash.cpp — XXH3-128 through libxxhash, with vectorised page hashing picked
// at run time (AVX-512, AVX2, else the library's own).
#include "page/hash.h"

#include <xxhash.h>

namespace hde {

namespace detail {
content_hash hash_page_avx2(const std::byte *page);
content_hash hash_page_avx512(const std::byte *page);
}  // namespace detail

content_hash hash_bytes(bytes_view data) {
  XXH128_hash_t h = XXH3_128bits(data.data(), data.size());
  return {h.low64, h.high64};
}

static content_hash hash_page_generic(const std::byte *page) { return hash_bytes({page, kPageSize}); }

namespace {
using hash_fn = content_hash (*)(const std::byte *);
hash_fn pick() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f"))
    return detail::hash_page_avx512;
  if (__builtin_cpu_supports("avx2"))
    return detail::hash_page_avx2;
  return hash_page_generic;
}
}  // namespace

content_hash hash_page(const std::byte *page) {
  static const hash_fn selected = pick();
  return selected(page);
}

}  // namespace hde
