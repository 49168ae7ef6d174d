// urcu_grace.cpp — grace periods from liburcu-memb, polled without blocking.
#include "baseline/urcu_grace.h"

#include <chrono>

#include <urcu/urcu-memb.h>

namespace hde {

urcu_grace::urcu_grace() : thread_([this] { run(); }) {}

urcu_grace::~urcu_grace() {
  stop_.store(true, std::memory_order_release);
  thread_.join();
}

std::uint64_t urcu_grace::start() noexcept {
  return requested_.fetch_add(1, std::memory_order_acq_rel) + 1;
}

bool urcu_grace::done(std::uint64_t token) noexcept {
  return completed_.load(std::memory_order_acquire) >= token;
}

void urcu_grace::run() {
  while (!stop_.load(std::memory_order_acquire)) {
    const std::uint64_t want = requested_.load(std::memory_order_acquire);
    if (want == completed_.load(std::memory_order_relaxed)) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
      continue;
    }
    // Everything retired before `want` was handed out is unreachable now;
    // once every reader has left the section it was in, it is free.
    urcu_memb_synchronize_rcu();
    completed_.store(want, std::memory_order_release);
  }
}

void urcu_grace::register_reader() { urcu_memb_register_thread(); }
void urcu_grace::unregister_reader() { urcu_memb_unregister_thread(); }
urcu_grace::read_section::read_section() { urcu_memb_read_lock(); }
urcu_grace::read_section::~read_section() { urcu_memb_read_unlock(); }

}  // namespace hde
