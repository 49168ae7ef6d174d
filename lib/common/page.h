// page.h — the page model shared by every part of HDE: page size, the key
// that names a guest page (vm, gfn), and the span types used at lib/ edges.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace hde {

inline constexpr std::size_t kPageSize = 4096;

using page_view = std::span<const std::byte, kPageSize>;
using page_buf = std::span<std::byte, kPageSize>;
using bytes_view = std::span<const std::byte>;
using bytes_buf = std::span<std::byte>;

// A guest page: VM identifier and guest frame number.
struct page_key {
  std::uint32_t vm = 0;
  std::uint64_t gfn = 0;
  friend bool operator==(const page_key &, const page_key &) = default;
};

// One page offered to the encoder.
struct page_in {
  page_key key;
  const std::byte *data = nullptr;  // kPageSize bytes
};

}  // namespace hde
