// test_grace.h — a deterministic grace_domain for tests. Time is the number
// of calls the owner makes (start() and done() each tick once), and a grace
// period ends `lag` ticks after it started: retired slots stay out of use for
// a while, and with a small cache the reserve runs dry.
#pragma once

#include "baseline/grace.h"

namespace hde::test {

class lagging_grace final : public grace_domain {
public:
  explicit lagging_grace(std::uint64_t lag) : lag_(lag) {}
  std::uint64_t start() noexcept override { return ++n_; }
  bool done(std::uint64_t token) noexcept override { return token + lag_ <= ++n_ || open_; }
  // Every grace period so far is over (as when all readers have left).
  void release_all() { open_ = true; }
  void hold() { open_ = false; }

private:
  std::uint64_t lag_;
  std::uint64_t n_ = 0;
  bool open_ = false;
};

}  // namespace hde::test
