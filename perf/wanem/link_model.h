// link_model.h — the WAN link that hde-wanem emulates, without DPDK: the
// SPEC parser ("rate=100m,delay_ms=20,loss=0.01,..."), a small seeded PRNG,
// Gilbert-Elliott burst loss, and the per-frame scheduler that turns an
// arrival time and a frame length into a fate (lost, tail-dropped, or
// delivered at a given time, possibly held back, duplicated or corrupted).
// Times are abstract integer ticks (the TSC in hde-wanem, nanoseconds in
// the tests); the caller keeps the frames (delay_line.h).
//
// One link direction is: arrival -> loss -> bottleneck queue (tail drop) ->
// rate limiter (serialization) -> propagation delay + jitter -> delivery.
#pragma once

#include <cstdint>
#include <string>

namespace hde::wanem {

// Bytes a frame occupies on an Ethernet wire besides itself: preamble and
// start delimiter (8), FCS (4), inter-frame gap (12). The rate limiter
// counts them, as a real link of that rate would.
inline constexpr std::uint32_t kWireOverhead = 24;
// Corruption leaves the Ethernet header (destination, source, type) alone.
inline constexpr std::uint32_t kEthHeader = 14;

enum class jitter_dist : std::uint8_t { uniform, normal };

// One direction's SPEC. Zero means "off" for every probability, and
// "unlimited" for the rate.
struct link_spec {
  double rate_bps = 0;      // rate=, bits/s; 0: unlimited (no serialization, no queue)
  double delay_ms = 0;      // delay_ms=, one-way propagation delay
  double jitter_ms = 0;     // jitter_ms=, half-width (uniform) or standard deviation (normal)
  jitter_dist dist = jitter_dist::uniform;  // jitter_dist=uniform|normal
  double loss = 0;          // loss=, long-run loss probability
  double burst = 1;         // burst=, mean loss-burst length in frames (1: independent loss)
  double reorder = 0;       // reorder=, probability a frame is held back
  double reorder_ms = 1;    // reorder_ms=, how long a held-back frame is held (extra delay)
  double dup = 0;           // dup=, probability a frame is sent twice
  double corrupt = 0;       // corrupt=, probability one bit past the Ethernet header flips
  double queue_kb = 0;      // queue_kb=, bottleneck buffer in KiB; 0: default_queue_bytes()
  std::uint64_t seed = 1;   // seed=
};

// Parses "key=value,key=value" onto `out` (keys not named keep their value,
// so a second spec can refine a first). An empty string changes nothing.
// On error returns false and sets err to one line naming the key and what
// was wrong; `what` prefixes it ("--ab"). Checks the spec as a whole too
// (check_spec).
bool parse_link_spec(const std::string &text, link_spec &out, std::string &err, const char *what = "spec");
// Whole-spec rules: ranges, and that loss with burst is a valid
// Gilbert-Elliott chain (loss <= burst / (burst + 1)).
bool check_spec(const link_spec &s, std::string &err, const char *what = "spec");
// Back to the SPEC form, every key (for the banner and the summary).
std::string to_string(const link_spec &s);
// "100m", "1.5g", "64k", "12345": bits/s (decimal suffixes, as tc uses).
bool parse_rate(const std::string &v, double &bps);
std::string format_rate(double bps);

// The bottleneck buffer: queue_kb when given, else 1.5 x rate x (delay +
// 5 ms), at least 32 KiB; 1 MiB nominal when the rate is unlimited (a
// link without a rate never builds a backlog, so the queue never fills).
std::uint64_t queue_bytes(const link_spec &s);

// xoshiro256** seeded through splitmix64: fast, small, reproducible.
class rng {
public:
  explicit rng(std::uint64_t seed = 1);
  std::uint64_t next();
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  // True with probability p; draws nothing when p <= 0 (so turning one
  // impairment off leaves the others' sequences alone).
  bool chance(double p) { return p > 0 && (p >= 1 || uniform() < p); }
  double normal();  // standard normal (Marsaglia polar method)
  std::uint64_t below(std::uint64_t n) { return static_cast<std::uint64_t>(uniform() * static_cast<double>(n)); }

private:
  std::uint64_t s_[4];
  double spare_ = 0;
  bool has_spare_ = false;
};

// Gilbert-Elliott two-state loss: every frame in the Bad state is lost,
// none in the Good state. P(G->B) = loss / (burst (1 - loss)) and
// P(B->G) = 1 / burst give a stationary loss probability of `loss` and a
// mean bad run (loss burst) of `burst` frames. burst <= 1 means
// independent (Bernoulli) loss with probability `loss`.
class gilbert_elliott {
public:
  gilbert_elliott() = default;
  gilbert_elliott(double loss, double burst);
  bool lose(rng &r);
  double p_good_to_bad() const { return p_gb_; }
  double p_bad_to_good() const { return p_bg_; }
  bool bursty() const { return bursty_; }

private:
  double loss_ = 0, p_gb_ = 0, p_bg_ = 1;
  bool bursty_ = false, bad_ = false;
};

// What happens to one frame.
enum class fate : std::uint8_t {
  deliver,     // goes out at `due`
  lost,        // random loss (loss=, burst=)
  queue_full,  // tail drop: the bottleneck buffer is full
};

struct verdict {
  fate f = fate::deliver;
  bool dup = false;          // also send a copy (pass it to on_copy())
  bool held = false;         // held back: deliver at held_due, not due
  std::int64_t corrupt_bit = -1;  // flip this bit (from the frame's start), -1: none
  std::uint64_t departure = 0;    // last bit leaves the bottleneck
  std::uint64_t due = 0;          // in-order delivery time: departure + delay + jitter, never before the previous
  std::uint64_t held_due = 0;     // due + reorder_ms, when held
};

// One direction of the link. Not thread-safe: one lcore owns it.
class link_model {
public:
  // ticks_per_sec: the unit of every time passed in and returned.
  // salt: a different random sequence per direction for the same seed.
  link_model(const link_spec &s, double ticks_per_sec, std::uint64_t salt = 0);

  // A frame of `len` bytes arrived at `now` (non-decreasing between calls).
  verdict on_frame(std::uint64_t now, std::uint32_t len);
  // The duplicate of the frame just passed (verdict.dup): it queues and is
  // serialized like any frame, right after the original, and may itself be
  // held back or corrupted; it is never lost or duplicated again.
  verdict on_copy(std::uint64_t now, std::uint32_t len);

  // Bytes (wire bytes, kWireOverhead included) waiting for serialization at `now`.
  double backlog_bytes(std::uint64_t now) const;
  std::uint64_t queue_limit() const { return queue_bytes_; }
  const link_spec &spec() const { return spec_; }
  bool unlimited() const { return ticks_per_byte_ == 0; }

private:
  verdict schedule(std::uint64_t now, std::uint32_t len);

  link_spec spec_;
  rng rng_;
  gilbert_elliott ge_;
  double ticks_per_byte_ = 0;       // wire time of one byte; 0: unlimited
  std::uint64_t queue_bytes_ = 0;
  std::uint64_t delay_ticks_ = 0;
  double jitter_ticks_ = 0, reorder_ticks_ = 0;
  // The link is busy serializing until busy_until_ + busy_frac_ (ticks).
  std::uint64_t busy_until_ = 0;
  double busy_frac_ = 0;
  std::uint64_t last_due_ = 0;      // order keeper for jitter
};

}  // namespace hde::wanem
