// test_pages.cpp — page generators for tests.
#include "test_pages.h"

#include <cstring>
#include <string_view>

namespace hde::test {

static const std::string_view kWords[] = {
    "GET", "/api/v1/orders", "200", "user=", "session", "INFO", "db.query", "latency_ms=",
    "customer", "ERROR", "timeout", "2024-01-01T00:00:00Z", "POST", "WARN", "cache-miss", "\n"};

page_bytes make_page(page_kind k, std::mt19937_64 &rng) {
  page_bytes p(kPageSize, std::byte{0});
  auto *b = reinterpret_cast<unsigned char *>(p.data());
  switch (k) {
  case page_kind::zero:
    break;
  case page_kind::text: {
    std::size_t off = 0;
    while (off < kPageSize) {
      auto w = kWords[rng() % std::size(kWords)];
      for (char c : w) {
        if (off >= kPageSize)
          break;
        b[off++] = static_cast<unsigned char>(c);
      }
      if (off < kPageSize)
        b[off++] = ' ';
      if (off < kPageSize && rng() % 4 == 0)
        b[off++] = static_cast<unsigned char>('0' + rng() % 10);
    }
    break;
  }
  case page_kind::records:
    for (std::size_t off = 0; off + 64 <= kPageSize; off += 64) {
      std::uint64_t id = rng() % 100000;
      std::memcpy(b + off, &id, 8);
      std::memcpy(b + off + 8, "customer-name-xxxx", 18);
      b[off + 30] = static_cast<unsigned char>(rng() % 256);
      std::uint32_t bal = static_cast<std::uint32_t>(rng() % 1000000);
      std::memcpy(b + off + 40, &bal, 4);
    }
    break;
  case page_kind::random:
    for (std::size_t i = 0; i < kPageSize; i += 8) {
      std::uint64_t v = rng();
      std::memcpy(b + i, &v, 8);
    }
    break;
  case page_kind::sparse:
    for (int i = 0; i < 12; ++i)
      b[rng() % kPageSize] = static_cast<unsigned char>(1 + rng() % 255);
    break;
  case page_kind::pointer_table: {
    std::uint64_t base = 0xffff888000000000ull + (rng() % 4096) * 4096;
    for (std::size_t i = 0; i < kPageSize; i += 8) {
      std::uint64_t v = (rng() % 3 == 0) ? 0 : base + (rng() % 512) * 64;
      std::memcpy(b + i, &v, 8);
    }
    break;
  }
  }
  return p;
}

page_bytes random_page(std::mt19937_64 &rng) {
  static const page_kind kinds[] = {page_kind::zero,    page_kind::text,   page_kind::text,
                                    page_kind::records, page_kind::random, page_kind::sparse,
                                    page_kind::pointer_table};
  return make_page(kinds[rng() % std::size(kinds)], rng);
}

void mutate(page_bytes &p, std::mt19937_64 &rng, int n_changes, int max_run) {
  for (int i = 0; i < n_changes; ++i) {
    std::size_t len = 1 + rng() % static_cast<std::size_t>(max_run);
    std::size_t off = rng() % kPageSize;
    for (std::size_t j = 0; j < len && off + j < kPageSize; ++j)
      p[off + j] = static_cast<std::byte>(rng());
  }
}

}  // namespace hde::test
