// zero.h — all-zero page detection at memory bandwidth. The implementation is
// picked once at start-up from the CPU's features (AVX-512BW, AVX2, or a
// portable 64-bit loop); is_zero_impl() names the one in use.
#pragma once

#include "common/page.h"

namespace hde {

bool is_zero_page(const std::byte *page);  // kPageSize bytes
inline bool is_zero_page(page_view p) { return is_zero_page(p.data()); }

// Name of the selected implementation: "avx512", "avx2" or "generic".
const char *is_zero_impl();

// Portable reference, used by tests to check the dispatched one.
bool is_zero_page_generic(const std::byte *page);

}  // namespace hde
