// cycles.h — the CPU's time-stamp counter, for costs measured on the hot
// path (a read is ~20 cycles, no syscall), and its rate, calibrated once
// against the monotonic clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

namespace hde {

inline std::uint64_t cycles_now() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  return __rdtsc();
#else
  return static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
#endif
}

// Cycles per second: measured over 20 ms on first use (thread-safe).
inline double cycles_hz() {
  static const double hz = [] {
#if defined(__x86_64__) || defined(__i386__)
    const auto t0 = std::chrono::steady_clock::now();
    const std::uint64_t c0 = cycles_now();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const std::uint64_t c1 = cycles_now();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return static_cast<double>(c1 - c0) / s;
#else
    return 1e9;  // steady_clock nanoseconds
#endif
  }();
  return hz;
}

}  // namespace hde
