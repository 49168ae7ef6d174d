// live_config.cpp — RCU publication of the live configuration.
#include "live_config.h"

#include <rte_malloc.h>

namespace hde::dp {

bool live_config_store::init(unsigned readers, const live_config &first) {
  const std::size_t sz = rte_rcu_qsbr_get_memsize(readers);
  qs_ = static_cast<rte_rcu_qsbr *>(rte_zmalloc("hde_rcu", sz, RTE_CACHE_LINE_SIZE));
  if (qs_ == nullptr || rte_rcu_qsbr_init(qs_, readers) != 0)
    return false;
  for (unsigned i = 0; i < readers; ++i)
    rte_rcu_qsbr_thread_register(qs_, i);
  cur_.store(new live_config(first), std::memory_order_release);
  return true;
}

live_config_store::~live_config_store() {
  delete cur_.load();
  rte_free(qs_);
}

void live_config_store::update(const std::function<void(live_config &)> &edit) {
  std::lock_guard<std::mutex> g(writer_);
  const live_config *old = cur_.load(std::memory_order_acquire);
  auto *next = new live_config(*old);
  edit(*next);
  next->version = old->version + 1;
  cur_.store(next, std::memory_order_release);
  // Grace period: every online reader has been quiescent since the swap.
  rte_rcu_qsbr_synchronize(qs_, RTE_QSBR_THRID_INVALID);
  delete old;
}

live_config live_config_store::snapshot() const {
  std::lock_guard<std::mutex> g(writer_);
  return *cur_.load(std::memory_order_acquire);
}

}  // namespace hde::dp
