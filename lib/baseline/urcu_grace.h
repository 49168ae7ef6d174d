// urcu_grace.h — a grace_domain on liburcu (the membarrier flavour), for
// embedders without DPDK and for the tests.
//
// Readers are ordinary threads: urcu_memb_register_thread() once, then
// urcu_grace::read_section around every access to baselines.
// liburcu 0.13 has no polling grace-period API, so a small background thread
// turns requests into synchronize_rcu() calls: start() asks for a grace
// period (an atomic increment), the thread waits for one and publishes how
// far it got, done() compares. The owner never blocks; a slot waits at most
// one reader section plus the thread's poll interval (100 us).
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

#include "baseline/grace.h"

namespace hde {

class urcu_grace final : public grace_domain {
public:
  urcu_grace();
  ~urcu_grace() override;
  urcu_grace(const urcu_grace &) = delete;
  urcu_grace &operator=(const urcu_grace &) = delete;

  std::uint64_t start() noexcept override;
  bool done(std::uint64_t token) noexcept override;

  // Reader side, for threads registered with liburcu-memb.
  static void register_reader();
  static void unregister_reader();
  struct read_section {
    read_section();
    ~read_section();
    read_section(const read_section &) = delete;
    read_section &operator=(const read_section &) = delete;
  };

private:
  void run();
  std::atomic<std::uint64_t> requested_{0};
  std::atomic<std::uint64_t> completed_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace hde
