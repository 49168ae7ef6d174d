// bridge.h — hde-wanem's data path: one `direction` per way across the
// bridge (RX on one port -> link_model -> delay_line -> TX on the other),
// and the lcore loop that polls its directions and sleeps when idle.
// Counters are single-writer (the lcore owning the direction) and read by
// the main lcore for the stats lines: relaxed atomics, no locked
// instructions. Nothing here allocates or makes a system call per frame;
// mbufs come from one preallocated pool, duplicates included.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include <rte_mbuf.h>

#include "delay_line.h"
#include "link_model.h"

namespace hde::wanem {

// A counter with one writer: a plain add, readable from other threads.
struct counter {
  std::atomic<std::uint64_t> v{0};
  void add(std::uint64_t n = 1) { v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  void set(std::uint64_t n) { v.store(n, std::memory_order_relaxed); }
  std::uint64_t get() const { return v.load(std::memory_order_relaxed); }
};

struct alignas(64) direction_stats {
  counter in, in_bytes;           // frames received on the input port
  counter out, out_bytes;         // frames the output port took
  counter lost;                   // random loss (loss=, burst=)
  counter queue_drops;            // tail drop at the bottleneck buffer (queue_kb=)
  counter hold_drops;             // no room left to hold the frame (--hold)
  counter duplicated;             // copies sent (dup=)
  counter dup_nombuf;             // copies not made: the mbuf pool was empty
  counter reordered;              // frames held back (reorder=)
  counter corrupted;              // frames with one bit flipped (corrupt=)
  counter tx_fail;                // frames the output port refused (freed)
  counter flushed;                // frames still held at exit (freed)
  counter late_tsc, late_max_tsc; // how late frames left: sum and maximum of (TX time - due time)
  counter in_flight;              // gauge: frames held now
  counter backlog;                // gauge: bytes waiting for serialization
};

class direction {
public:
  static constexpr std::uint16_t kBurst = 32;

  direction(const char *name, std::uint16_t in_port, std::uint16_t nrxq, std::uint16_t out_port,
            const link_spec &spec, std::uint32_t hold, double hz, std::uint64_t salt, rte_mempool *pool);
  ~direction();
  direction(const direction &) = delete;
  direction &operator=(const direction &) = delete;

  // One RX burst per input queue; every frame gets its fate. Frames received.
  unsigned rx(std::uint64_t now);
  // Transmits the frames due at `now`, in bursts. Frames taken off the line.
  unsigned tx(std::uint64_t now);
  std::uint64_t next_due() const { return line_.next_due(); }
  // Frees every frame still held (counted as flushed).
  void flush();

  const char *name() const { return name_; }
  std::uint16_t in_port() const { return in_port_; }
  std::uint16_t out_port() const { return out_port_; }
  const link_model &model() const { return model_; }
  const direction_stats &stats() const { return st_; }
  std::size_t hold_capacity() const { return line_.capacity(); }

private:
  void admit(std::uint64_t now, rte_mbuf *m);
  void place(rte_mbuf *m, const verdict &v);

  const char *name_;
  std::uint16_t in_port_, nrxq_, out_port_;
  link_model model_;
  delay_line<rte_mbuf *> line_;
  rte_mempool *pool_;
  direction_stats st_;
};

struct alignas(64) lcore_stats {
  counter loops, busy_loops, sleeps;
  counter busy_tsc, total_tsc;    // TSC in loops that moved frames, and overall
  counter cpu_us;                 // the lcore thread's CPU time, refreshed about once a second
};

// Set by SIGINT/SIGTERM: every lcore loop ends.
extern std::atomic<bool> g_quit;

struct lcore_job {
  std::vector<direction *> dirs;
  lcore_stats stats;
  // Called on this lcore about every `tick_tsc` (the main lcore prints the
  // stats lines from here); empty: none.
  std::function<void(std::uint64_t now)> on_tick;
  std::uint64_t tick_tsc = 0;
  std::uint32_t max_sleep_us = 50;  // longest idle sleep; 0: poll without sleeping
};

// The lcore body: poll the job's directions until g_quit. Idle (nothing
// received, nothing due): a few polls with rte_pause(), then sleeps of at
// most max_sleep_us, or until shortly before the next frame is due (less
// the oversleep the loop has measured); the last few microseconds before
// a due time are spent polling.
int run_lcore(lcore_job &job);

}  // namespace hde::wanem
