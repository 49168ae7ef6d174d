// lcore.h — how hde-gateway runs its work: every lcore loops over a list of
// tasks (poll functions that never block and return how much they did).
// An lcore whose tasks all found nothing backs off: a few empty rounds with
// rte_pause(), then short sleeps, so several gateways can share 2 cores.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

namespace hde::dp {

class task {
public:
  virtual ~task() = default;
  // Do a bounded amount of work; return units done (0 = idle).
  virtual unsigned poll(std::uint64_t now_tsc) = 0;
  virtual const char *name() const = 0;
  // Called on the task's lcore when its loop ends.
  virtual void on_stop() {}
  std::uint64_t busy_tsc = 0;  // time in polls that did work (written by the lcore loop)
};

struct alignas(64) lcore_stats {
  std::uint64_t loops = 0;
  std::uint64_t idle_loops = 0;
  std::uint64_t sleeps = 0;
  double cpu_s = 0;  // CPU time of the lcore's thread (includes back-off syscalls)
};

struct lcore_plan {
  unsigned lcore_id = 0;
  std::vector<task *> tasks;
  lcore_stats stats;
};

// Set by signals or when the job is done; every lcore loop ends.
extern std::atomic<bool> g_quit;

struct backoff_config {
  std::uint32_t spin_loops = 64;   // empty loops with rte_pause() before sleeping
};

// Sleep of an idle lcore in microseconds (0: pure polling). Set from
// --idle-sleep-us, changed live by `hdectl set idle-sleep`.
extern std::atomic<std::uint32_t> g_idle_sleep_us;

// The lcore body: run plan's tasks until g_quit.
int run_lcore(lcore_plan &plan, const backoff_config &bo);

}  // namespace hde::dp
