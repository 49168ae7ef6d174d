// selector.h — the learning codec selector of hybrid mode. Each arm is a
// way to send a batch (codec and batch size). After every batch the encoder
// reports what it cost: pages, bytes on the wire, encode seconds. The
// selector keeps moving averages per arm and picks the arm that maximises
// migration goodput, the rate at which pages reach the destination:
//     pages/s = min(1 / seconds-per-page, link bytes/s / wire-bytes-per-page)
// so on a slow link it spends CPU for ratio, on a fast one it saves CPU.
// Untried arms are tried first; afterwards a small share of batches explore
// another arm, so it follows changes in the data and the link.
// Pure logic, no clock of its own: unit-tested with made-up costs.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "codec/codec.h"

namespace hde {

struct selector_arm {
  codec_spec codec;
  std::size_t batch_bytes;
};

class selector {
public:
  explicit selector(std::span<const selector_arm> arms, double explore = 0.05, std::uint64_t seed = 1);

  // The cost of one batch sent with arm a.
  void report(unsigned a, std::uint64_t pages, std::uint64_t wire_bytes, double seconds);
  // The arm for the next batch; link_bytes_per_s = 0 means "no limit known".
  unsigned choose(double link_bytes_per_s);
  // Predicted pages/s of arm a on that link (0 before any report).
  double goodput(unsigned a, double link_bytes_per_s) const;

  std::size_t size() const { return arms_.size(); }
  const selector_arm &arm(unsigned a) const { return arms_[a]; }
  std::uint64_t reports(unsigned a) const { return est_[a].n; }

  // The arms hybrid mode starts with: LZ4 in 64 KiB batches, zstd 1, 3, 6
  // in 256 KiB stream batches.
  static std::vector<selector_arm> default_arms();

private:
  struct estimate {
    double bytes_per_page = 0, seconds_per_page = 0;
    std::uint64_t n = 0;
  };
  std::vector<selector_arm> arms_;
  std::vector<estimate> est_;
  double explore_;
  std::uint64_t rng_;
  unsigned current_ = 0;
};

}  // namespace hde
