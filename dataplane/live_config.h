// live_config.h — the configuration workers read on the hot path, published
// through RCU (DPDK's rte_rcu_qsbr). Workers read the current version with
// one atomic load per loop and report a quiescent state at the end of every
// loop; the control thread builds a new immutable version, swaps it in, waits
// for a grace period (every worker has passed a quiescent state), and only
// then frees the old one. Workers never block and never see a torn config.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <rte_rcu_qsbr.h>

#include "engine/encoder.h"

namespace hde::dp {

struct live_config {
  std::uint64_t version = 0;
  encoder_config enc;               // mode, codecs, batching (stream fields unused)
  std::uint64_t link_rate_bps = 0;  // pacing of all streams together; 0 = unlimited
  std::size_t cache_bytes = 0;      // baseline cache per stream; a change makes workers resize
  std::uint64_t flush_gen = 0;      // bumped by "baselines flush"
  std::uint32_t flush_vm = ~0u;     // the VM to flush, ~0u = all
};

class live_config_store {
public:
  // readers: how many worker threads will read (thread ids 0..readers-1).
  bool init(unsigned readers, const live_config &first);
  ~live_config_store();

  // Reader side (worker lcores).
  void online(unsigned id) { rte_rcu_qsbr_thread_online(qs_, id); }
  void offline(unsigned id) { rte_rcu_qsbr_thread_offline(qs_, id); }
  const live_config *get() const { return cur_.load(std::memory_order_acquire); }
  void quiescent(unsigned id) { rte_rcu_qsbr_quiescent(qs_, id); }

  // A grace period: returns once every online reader has been quiescent
  // (for other data published to the same readers, e.g. the selector's table).
  void synchronize() { rte_rcu_qsbr_synchronize(qs_, RTE_QSBR_THRID_INVALID); }
  // The same without waiting: a token now, and later whether every reader
  // has been quiescent since.
  std::uint64_t grace_start() { return rte_rcu_qsbr_start(qs_); }
  bool grace_done(std::uint64_t token) { return rte_rcu_qsbr_check(qs_, token, false) == 1; }
  // The configured link rate. Control thread only: the writers run there
  // too, so the version it reads cannot be freed under it.
  std::uint64_t link_rate_bps() const { return cur_.load(std::memory_order_acquire)->link_rate_bps; }

  // Writer side (control thread only; blocks for a grace period).
  void update(const std::function<void(live_config &)> &edit);
  live_config snapshot() const;

private:
  rte_rcu_qsbr *qs_ = nullptr;
  std::atomic<const live_config *> cur_{nullptr};
  mutable std::mutex writer_;  // writers are serialised; readers never take it
};

}  // namespace hde::dp
