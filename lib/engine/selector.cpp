// selector.cpp — goodput-maximising arm choice with moving averages.
#include "engine/selector.h"

#include <algorithm>

namespace hde {

namespace {
constexpr double kAlpha = 0.2;  // weight of the newest report in the averages
}

selector::selector(std::span<const selector_arm> arms, double explore, std::uint64_t seed)
    : arms_(arms.begin(), arms.end()), est_(arms.size()), explore_(explore), rng_(seed | 1) {}

std::vector<selector_arm> selector::default_arms() {
  return {{{codec_id::lz4, 4}, 64 * 1024},
          {{codec_id::zstd, 1}, 256 * 1024},
          {{codec_id::zstd, 3}, 256 * 1024},
          {{codec_id::zstd, 6}, 256 * 1024}};
}

void selector::report(unsigned a, std::uint64_t pages, std::uint64_t wire_bytes, double seconds) {
  if (a >= est_.size() || pages == 0)
    return;
  estimate &e = est_[a];
  const double bpp = static_cast<double>(wire_bytes) / static_cast<double>(pages);
  const double spp = seconds / static_cast<double>(pages);
  if (e.n == 0) {
    e.bytes_per_page = bpp;
    e.seconds_per_page = spp;
  } else {
    e.bytes_per_page += kAlpha * (bpp - e.bytes_per_page);
    e.seconds_per_page += kAlpha * (spp - e.seconds_per_page);
  }
  ++e.n;
}

double selector::goodput(unsigned a, double link) const {
  const estimate &e = est_[a];
  if (e.n == 0)
    return 0;
  const double cpu = e.seconds_per_page > 0 ? 1.0 / e.seconds_per_page : 1e12;
  if (link <= 0 || e.bytes_per_page <= 0)
    return cpu;
  return std::min(cpu, link / e.bytes_per_page);
}

unsigned selector::choose(double link) {
  for (unsigned a = 0; a < est_.size(); ++a)  // every arm once first
    if (est_[a].n == 0)
      return current_ = a;
  rng_ ^= rng_ << 13;  // xorshift64
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  if (static_cast<double>(rng_ % 10000) < explore_ * 10000)
    return current_ = static_cast<unsigned>((rng_ >> 20) % est_.size());
  unsigned best = 0;
  for (unsigned a = 1; a < est_.size(); ++a)
    if (goodput(a, link) > goodput(best, link))
      best = a;
  return current_ = best;
}

}  // namespace hde
