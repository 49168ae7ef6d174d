// impair.h — wire impairment for tests (--impair): drops, duplicates and
// reorders the frames a gateway transmits, just before they reach the port,
// because kernel netem is not available here. Reference counts stay right:
// a dropped frame is freed as the port would after sending it, a duplicate
// takes one more reference, and a frame held back for reordering goes out
// after the next frame, or when the TX batch is flushed. Never per page in
// production: the option is off by default and costs one branch when off.
#pragma once

#include <cstdint>
#include <string>
#include <rte_mbuf.h>

namespace hde::dp {

struct impair_spec {
  double loss = 0, dup = 0, reorder = 0;  // probabilities per frame
  std::uint64_t seed = 1;
  bool any() const { return loss > 0 || dup > 0 || reorder > 0; }
};

// "loss=0.02,dup=0.01,reorder=0.05,seed=7" (any subset). False with err.
bool parse_impair(const std::string &s, impair_spec &out, std::string &err);
std::string to_string(const impair_spec &s);

struct alignas(64) impair_stats {
  std::uint64_t dropped = 0, duplicated = 0, reordered = 0;
};

class impairer {
public:
  impairer() = default;
  // salt: a different random sequence per transmitter of the same process.
  void configure(const impair_spec &s, std::uint64_t salt) {
    spec_ = s;
    state_ = (s.seed + 1) * 0x9E3779B97F4A7C15ULL ^ (salt + 1) * 0xD1B54A32D192ED03ULL;
    if (state_ == 0)
      state_ = 1;
  }
  bool on() const { return spec_.any(); }
  const impair_stats &stats() const { return st_; }

  // One frame on its way to the port: emit(m) zero, one or two times
  // (a held-back frame is emitted after m).
  template <typename Emit> void pass(rte_mbuf *m, Emit &&emit) {
    if (chance(spec_.loss)) {
      ++st_.dropped;
      rte_pktmbuf_free(m);
      return;
    }
    if (held_ == nullptr && chance(spec_.reorder)) {
      held_ = m;
      return;
    }
    // The duplicate is a copy, made before m leaves (once emitted it may
    // belong to another lcore): a receiver that opens a sealed frame in
    // place must not see its twin change under it, as on a real wire.
    rte_mbuf *twin = chance(spec_.dup) ? rte_pktmbuf_copy(m, m->pool, 0, UINT32_MAX) : nullptr;
    if (twin != nullptr)
      ++st_.duplicated;
    emit(m);
    if (twin != nullptr)
      emit(twin);
    if (held_ != nullptr)
      ++st_.reordered;  // it goes out after a frame sent later
    release(emit);
  }
  // Send what is held back (end of a TX batch; not counted as reordered).
  template <typename Emit> void release(Emit &&emit) {
    if (held_ != nullptr) {
      rte_mbuf *h = held_;
      held_ = nullptr;
      emit(h);
    }
  }
  impairer(const impairer &) = delete;
  impairer &operator=(const impairer &) = delete;
  // Free a held-back frame (before the pool goes away).
  void reset() {
    if (held_ != nullptr)
      rte_pktmbuf_free(held_);
    held_ = nullptr;
  }
  ~impairer() { reset(); }

private:
  bool chance(double p) {
    if (p <= 0)
      return false;
    state_ ^= state_ << 13;  // xorshift64
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    return static_cast<double>(state_ >> 11) * 0x1.0p-53 < p;
  }

  impair_spec spec_;
  std::uint64_t state_ = 1;
  rte_mbuf *held_ = nullptr;
  impair_stats st_;
};

}  // namespace hde::dp
