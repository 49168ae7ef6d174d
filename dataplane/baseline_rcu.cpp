// baseline_rcu.cpp — rte_rcu_qsbr behind the baseline caches.
#include "baseline_rcu.h"

#include <mutex>
#include <rte_malloc.h>

namespace hde::dp {

namespace {
constexpr unsigned kReader = 0;  // the one reader id, shared in turn
std::mutex g_readers;            // serialises readers; workers never take it
}  // namespace

bool baseline_rcu::init() {
  const std::size_t sz = rte_rcu_qsbr_get_memsize(1);
  qs_ = static_cast<rte_rcu_qsbr *>(rte_zmalloc("hde_baseline_rcu", sz, RTE_CACHE_LINE_SIZE));
  if (qs_ == nullptr || rte_rcu_qsbr_init(qs_, 1) != 0 || rte_rcu_qsbr_thread_register(qs_, kReader) != 0)
    return false;
  return true;  // registered but offline: grace periods end at once until a reader comes
}

baseline_rcu::~baseline_rcu() { rte_free(qs_); }

baseline_rcu::section::section(const baseline_rcu &r) : r_(r) {
  g_readers.lock();
  rte_rcu_qsbr_thread_online(r_.qs_, kReader);
}

baseline_rcu::section::~section() {
  rte_rcu_qsbr_thread_offline(r_.qs_, kReader);
  g_readers.unlock();
}

}  // namespace hde::dp
