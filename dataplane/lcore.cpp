// lcore.cpp — the poll loop with idle back-off.
#include "lcore.h"

#include <rte_cycles.h>
#include <rte_pause.h>
#include <time.h>

namespace hde::dp {

std::atomic<bool> g_quit{false};
std::atomic<std::uint32_t> g_idle_sleep_us{50};

namespace {
double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}
}  // namespace

int run_lcore(lcore_plan &plan, const backoff_config &bo) {
  const double cpu0 = thread_cpu_s();
  std::uint32_t idle = 0;
  while (!g_quit.load(std::memory_order_relaxed)) {
    std::uint64_t now = rte_rdtsc();
    unsigned work = 0;
    for (task *t : plan.tasks) {
      const unsigned w = t->poll(now);
      const std::uint64_t after = rte_rdtsc();
      if (w != 0)
        t->busy_tsc += after - now;
      now = after;
      work += w;
    }
    ++plan.stats.loops;
    if (work != 0) {
      idle = 0;
      continue;
    }
    ++plan.stats.idle_loops;
    const std::uint32_t sleep_us = g_idle_sleep_us.load(std::memory_order_relaxed);
    if (++idle < bo.spin_loops || sleep_us == 0) {
      rte_pause();
    } else {
      ++plan.stats.sleeps;
      rte_delay_us_sleep(sleep_us);
    }
  }
  for (task *t : plan.tasks)
    t->on_stop();
  plan.stats.cpu_s = thread_cpu_s() - cpu0;
  return 0;
}

}  // namespace hde::dp
