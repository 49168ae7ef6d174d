// rate_model.h — the sender's model of the path and its rate control,
// BBR-style, DPDK-free (times are ticks of a clock of `hz` ticks a second;
// the gateway uses the TSC, tests use nanoseconds).
//
// The model (docs/gateway.md, "Transport"):
//   - bottleneck rate: the largest delivery rate sampled over the last 10
//     round trips (a delivery-rate sample is bytes delivered over the time
//     they took, measured by the sender from its own send and ack times);
//   - minimum RTT: the smallest RTT seen in the last 10 s;
//   - BDP = bottleneck rate x minimum RTT.
// Control: frames are paced at pacing_gain x bottleneck rate, and data in
// flight is capped at cwnd_gain x BDP plus an allowance for acks that come in
// bunches. States as BBR's: STARTUP doubles the rate every round until the
// delivery rate stops growing (3 rounds under +25 %), DRAIN empties the queue
// that built, PROBE_BW cycles the gain 1.25, 0.75, 1 x 6 (one minimum RTT
// each) to find more bandwidth and give back the queue, PROBE_RTT holds 4
// frames in flight for 200 ms when the minimum RTT has not been seen again
// for 10 s.
//
// Signals, and why: delivery rate and minimum RTT, not loss, drive the rate,
// because random loss on a WAN says nothing about the bottleneck. Loss counts
// as congestion only when it is heavy and persistent: a round trip that loses
// more than kLossThresh of what it sent, two rounds in a row, caps data in
// flight at what that round delivered (inflight_hi), and the cap is probed
// upwards again in PROBE_BW. Queueing delay is bounded by the cwnd cap (at
// most about one BDP of queue) and drained by the 0.75 phase.
// A ceiling (--link-rate) caps the pacing rate.
#pragma once

#include <cstdint>

namespace hde::dp {

// Windowed maximum or minimum of a value over time or rounds, holding the
// best, second-best and third-best samples of the window (the algorithm of
// Linux's lib/win_minmax.c, after Kathleen Nichols).
class minmax_filter {
public:
  explicit minmax_filter(bool is_max) : max_(is_max) {}
  std::uint64_t get() const { return s_[0].v; }
  void reset(std::uint64_t t, std::uint64_t v) { s_[0] = s_[1] = s_[2] = {t, v}; }
  // A sample v at time t (time: ticks or round count); window: its width.
  std::uint64_t update(std::uint64_t window, std::uint64_t t, std::uint64_t v);

private:
  bool better(std::uint64_t a, std::uint64_t b) const { return max_ ? a >= b : a <= b; }
  struct sample {
    std::uint64_t t = 0, v = 0;
  };
  bool max_;
  sample s_[3];
};

// What one ACK taught the sender (filled by sender.h).
struct rate_sample {
  std::uint64_t delivered_total = 0;  // bytes delivered on the stream so far
  std::uint64_t prior_delivered = 0;  // delivered_total when the newest acked frame was sent
  std::uint64_t delivered = 0;        // bytes delivered over `interval`
  std::uint64_t interval = 0;         // ticks (0: no rate sample)
  std::uint64_t rtt = 0;              // ticks, of a frame sent once (0: none)
  std::uint64_t newly_acked = 0;      // bytes this ACK acknowledged
  std::uint64_t newly_lost = 0;       // bytes marked lost since the last ACK
  std::uint64_t inflight = 0;         // bytes in flight after the ACK
  bool app_limited = false;           // the sample was taken while the sender had nothing to send
};

enum class cc_state : std::uint8_t { startup, drain, probe_bw, probe_rtt };
const char *cc_state_name(cc_state s);

class rate_model {
public:
  struct config {
    double hz = 1e9;               // ticks per second
    std::uint32_t mss = 1500;      // bytes of a full frame (for minimum windows)
    double ceiling_bps = 0;        // pacing ceiling in bits/s (0: none)
    std::uint32_t init_cwnd = 32;  // frames, before any estimate
  };
  static constexpr double kLossThresh = 0.2;
  static constexpr double kStartupLossThresh = 0.02;  // STARTUP ends (later: data in flight is capped) on this loss ...
  static constexpr double kQueueRttRatio = 1.25;      // ... with the RTT this far above its minimum
  static constexpr double kRandomLossMargin = 3;      // ... and this many times the path's own loss

  explicit rate_model(const config &c);

  void set_ceiling_bps(double bps) { ceiling_bps_ = bps; }
  // Every ACK that acknowledged or lost something.
  void on_ack(std::uint64_t now, const rate_sample &rs);

  // Pacing rate in bytes per tick (ceiling applied).
  double pacing_rate() const { return pacing_; }
  // Cap on bytes in flight.
  std::uint64_t cwnd() const { return cwnd_; }
  // Estimates: bottleneck rate (bytes per tick, 0 = none), minimum RTT
  // (ticks, 0 = none), the latest delivery-rate sample (bytes per tick).
  double btl_bw() const { return static_cast<double>(bw_.get()) / kBwScale; }
  std::uint64_t min_rtt() const { return min_rtt_; }
  double last_rate() const { return last_rate_; }
  cc_state state() const { return state_; }
  std::uint64_t rounds() const { return round_count_; }
  std::uint64_t inflight_hi() const { return inflight_hi_; }
  std::uint64_t bdp() const;
  // Counters: rounds that looked congested (heavy loss), PROBE_RTT entries.
  std::uint64_t loss_rounds() const { return loss_rounds_; }
  std::uint64_t probe_rtt_count() const { return probe_rtt_count_; }

private:
  static constexpr double kBwScale = 1 << 20;  // fixed point for the max filter
  void update_round(const rate_sample &rs);
  void update_bw(std::uint64_t now, const rate_sample &rs);
  void update_min_rtt(std::uint64_t now, const rate_sample &rs);
  void update_state(std::uint64_t now, const rate_sample &rs);
  void set_pacing_and_cwnd(const rate_sample &rs);
  void enter_probe_bw(std::uint64_t now);

  double hz_;
  std::uint32_t mss_;
  double ceiling_bps_;
  std::uint64_t init_cwnd_bytes_;
  cc_state state_ = cc_state::startup;
  double pacing_gain_, cwnd_gain_;
  double pacing_ = 0;
  std::uint64_t cwnd_;
  minmax_filter bw_{true};
  double last_rate_ = 0;
  std::uint64_t min_rtt_ = 0, min_rtt_stamp_ = 0;
  // Rounds: a round ends when a frame sent after its start is acked.
  std::uint64_t round_count_ = 0, next_round_delivered_ = 0;
  bool round_start_ = false;
  // STARTUP exit: the delivery rate stopped growing.
  bool filled_pipe_ = false;
  std::uint64_t full_bw_ = 0;
  unsigned full_bw_count_ = 0;
  // PROBE_BW gain cycle.
  unsigned cycle_idx_ = 0;
  std::uint64_t cycle_stamp_ = 0;
  // PROBE_RTT.
  std::uint64_t probe_rtt_done_ = 0;
  bool probe_rtt_round_done_ = false;
  cc_state prior_state_ = cc_state::startup;
  // Loss per round, and the in-flight cap it sets.
  std::uint64_t round_acked_ = 0, round_lost_ = 0;
  std::uint64_t round_max_rtt_ = 0;  // largest RTT sample of the round so far
  bool queue_loss_ = false;           // the last round: loss above 2 % with a growing queue
  double random_loss_ = 0;            // loss of rounds without a queue (smoothed): the path's own
  unsigned lossy_rounds_in_row_ = 0;
  std::uint64_t inflight_hi_ = ~0ull;
  std::uint64_t loss_rounds_ = 0, probe_rtt_count_ = 0;
  // Acks arriving in bunches (delayed acks, scheduling): the excess of
  // bytes acked over what the bottleneck rate explains, max over 10 rounds.
  minmax_filter extra_acked_{true};
  std::uint64_t ack_epoch_stamp_ = 0, ack_epoch_acked_ = 0;
  // Ticks of the constants.
  std::uint64_t min_rtt_win_, probe_rtt_time_;
};

}  // namespace hde::dp
