// lcore.cpp — the poll loop with idle back-off.
#include "lcore.h"

#include <rte_cycles.h>
#include <rte_pause.h>

namespace hde::dp {

std::atomic<bool> g_quit{false};

int run_lcore(lcore_plan &plan, const backoff_config &bo) {
  std::uint32_t idle = 0;
  while (!g_quit.load(std::memory_order_relaxed)) {
    const std::uint64_t now = rte_rdtsc();
    unsigned work = 0;
    for (task *t : plan.tasks)
      work += t->poll(now);
    ++plan.stats.loops;
    if (work != 0) {
      idle = 0;
      continue;
    }
    ++plan.stats.idle_loops;
    if (++idle < bo.spin_loops || bo.sleep_us == 0) {
      rte_pause();
    } else {
      ++plan.stats.sleeps;
      rte_delay_us_sleep(bo.sleep_us);
    }
  }
  return 0;
}

}  // namespace hde::dp
