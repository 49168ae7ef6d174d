// xbzrle.h — XOR run-length delta of a page against its previous version, in
// the spirit of QEMU's XBZRLE: the page is a sequence of
//   [unchanged-run length][changed-run length][changed bytes (new values)]
// with lengths as ULEB128. Runs alternate, starting with an unchanged run
// (possibly of length 0); trailing unchanged bytes are implicit.
//
// xor_page() writes old^new, for the "XOR then codec" form of a delta.
#pragma once

#include "common/error.h"
#include "common/page.h"

namespace hde {

// Encode new_page against old_page into dst. Stops and returns
// error::no_space as soon as the output would exceed dst.size() — give it a
// budget (say 1/2 page) and it gives up early on a dense change.
result<std::size_t> xbzrle_encode(const std::byte *old_page, const std::byte *new_page,
                                  bytes_buf dst);

// Rebuild the page: out starts as a copy of old_page (the caller copies),
// then the runs are applied. Any malformed or overlong input is an error and
// never writes outside out.
error xbzrle_apply(bytes_view delta, page_buf out);

// out = a ^ b, page-wide.
void xor_page(const std::byte *a, const std::byte *b, std::byte *out);

// Number of bytes that differ between two pages (used by tests and stats).
std::size_t count_diff_bytes(const std::byte *a, const std::byte *b);

}  // namespace hde
