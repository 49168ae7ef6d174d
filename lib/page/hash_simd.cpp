// hash_simd.cpp — XXH3-128 compiled for one vector ISA. Built twice by
// lib/meson.build (HDE_HASH_ISA=avx2 with -mavx2, =avx512 with -mavx512f);
// hash.cpp picks one at run time. The distribution's libxxhash is built for
// baseline x86-64 (SSE2) only.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "page/hash.h"

#define HDE_CAT2(a, b) a##b
#define HDE_CAT(a, b) HDE_CAT2(a, b)

namespace hde::detail {

content_hash HDE_CAT(hash_page_, HDE_HASH_ISA)(const std::byte *page) {
  XXH128_hash_t h = XXH3_128bits(page, kPageSize);
  return {h.low64, h.high64};
}

}  // namespace hde::detail
