// test_wire.h — test doubles for the engine: a frame_output that keeps every
// frame, and a page_sink that records pages per (vm, gfn).
#pragma once

#include <cstring>
#include <map>
#include <utility>
#include <vector>

#include "engine/decoder.h"
#include "engine/encoder.h"

namespace hde::test {

class frame_list final : public frame_output {
public:
  explicit frame_list(std::size_t cap = 65536) : buf_(cap) {}
  bytes_buf acquire() override { return {buf_.data(), buf_.size()}; }
  void commit(bytes_buf f, std::size_t len) override {
    frames.emplace_back(f.data(), f.data() + len);
  }
  std::vector<std::vector<std::byte>> frames;

private:
  std::vector<std::byte> buf_;
};

// Like a real image, it holds pages below max_gfn only and refuses others.
class map_sink final : public page_sink {
public:
  std::uint64_t max_gfn = 1u << 20;
  error put_page(page_key k, const std::byte *p) override {
    if (k.gfn >= max_gfn)
      return error::bad_input;
    pages[{k.vm, k.gfn}].assign(p, p + kPageSize);
    return error::ok;
  }
  error put_zero(std::uint32_t vm, std::uint64_t gfn, std::uint32_t count) override {
    if (gfn >= max_gfn || count > max_gfn - gfn)
      return error::bad_input;
    for (std::uint32_t i = 0; i < count; ++i)
      pages[{vm, gfn + i}].assign(kPageSize, std::byte{0});
    return error::ok;
  }
  void on_mark(std::uint32_t vm, std::uint32_t round, std::uint64_t n, bool last) override {
    marks.push_back({vm, round, n, last});
  }
  void on_lost(page_key k, error) override { lost.push_back(k); }
  void on_opaque(std::uint32_t vm, std::uint32_t chunk, std::uint32_t flags, bytes_view b) override {
    opaque.push_back({vm, chunk, flags, std::vector<std::byte>(b.begin(), b.end()), pages.size(), marks.size()});
  }
  struct piece {
    std::uint32_t vm, chunk, flags;
    std::vector<std::byte> bytes;
    std::size_t pages_before, marks_before;  // what had arrived before it
  };
  std::vector<piece> opaque;
  struct mark {
    std::uint32_t vm, round;
    std::uint64_t pages;
    bool last;
  };
  std::map<std::pair<std::uint32_t, std::uint64_t>, std::vector<std::byte>> pages;
  std::vector<mark> marks;
  std::vector<page_key> lost;
};

}  // namespace hde::test
