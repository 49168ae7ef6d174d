// generator.h — a synthetic VM memory trace, made in memory, for runs
// without a recorded trace. Its knobs are stated up front:
//   mib      guest RAM size
//   rounds   dirty rounds after the bulk round
//   dirty    share of pages rewritten per dirty round
//   zero     share of zero pages
//   dup      share of pages that copy another page
//   entropy  share of random (incompressible) bytes in the other pages; the
//            rest is repetitive text and records, so LZ4 gets roughly
//            entropy + (1 - entropy) / 4 of the page back
// A dirty page gets a few small in-place edits (60 %) or new content (40 %).
// Deterministic for a seed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hde::dp {

struct gen_spec {
  std::size_t mib = 64;
  std::uint32_t rounds = 4;
  double dirty = 0.08;
  double zero = 0.25;
  double dup = 0.05;
  double entropy = 0.3;
  std::uint64_t seed = 1;
};

// "mib=64,rounds=4,dirty=0.08,zero=0.25,dup=0.05,entropy=0.3,seed=1"; any
// subset, in any order.
bool parse_gen_spec(const std::string &s, gen_spec &g, std::string &err);
std::string to_string(const gen_spec &g);

// Images of every snapshot (rounds + 1 of them), each mib MiB.
std::vector<std::vector<std::byte>> generate_trace(const gen_spec &g);

}  // namespace hde::dp
