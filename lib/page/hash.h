// hash.h — content hash of a page: XXH3-128 (libxxhash). 128 bits make an
// accidental collision among even 2^40 pages negligible (~2^-48); the source
// still confirms every dedup hit by comparing bytes, so a collision can cost
// a missed REF, never a wrong page.
#pragma once

#include <cstdint>

#include "common/page.h"

namespace hde {

struct content_hash {
  std::uint64_t lo = 0, hi = 0;
  friend bool operator==(const content_hash &, const content_hash &) = default;
};

content_hash hash_page(const std::byte *page);  // kPageSize bytes
content_hash hash_bytes(bytes_view data);

}  // namespace hde
