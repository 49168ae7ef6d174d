// baseline_rcu.h — RCU for the baseline caches in the gateway (rte_rcu_qsbr).
//
// Each worker owns its stream's baseline cache and is its only writer. Other
// threads — the control socket thread and DPDK's telemetry threads — read it
// (`show baselines`, `baselines lookup`, /hde/baselines) while the worker
// runs. Every worker has one QSBR variable with a single reader id, which
// the readers take in turn (a mutex among readers only; workers never touch
// it). The worker is the updater:
//   - slots: the cache retires replaced and evicted slots with a token from
//     start() and reuses them once done() says the reader has been offline
//     (or quiescent) since; both calls are lock-free and never block;
//   - the cache itself: `set cache-mb` swaps in a new cache, publishes it,
//     and frees the old one after a grace period (worker::poll).
// With no reader online, done() is true at once, so the worker pays one
// atomic increment per retired slot.
#pragma once

#include <cstdint>
#include <rte_rcu_qsbr.h>

#include "baseline/grace.h"

namespace hde::dp {

class baseline_rcu final : public grace_domain {
public:
  // False when the QSBR variable cannot be allocated.
  bool init();
  ~baseline_rcu() override;

  std::uint64_t start() noexcept override { return rte_rcu_qsbr_start(qs_); }
  bool done(std::uint64_t token) noexcept override { return rte_rcu_qsbr_check(qs_, token, false) == 1; }
  // Block until everything retired before token is unreachable (a control
  // action on the worker: a second cache resize while the first is pending).
  void wait(std::uint64_t token) { rte_rcu_qsbr_check(qs_, token, true); }

  // Reader side: a read-side section for any non-worker thread.
  class section {
  public:
    explicit section(const baseline_rcu &r);
    ~section();
    section(const section &) = delete;
    section &operator=(const section &) = delete;

  private:
    const baseline_rcu &r_;
  };

private:
  rte_rcu_qsbr *qs_ = nullptr;
};

}  // namespace hde::dp
