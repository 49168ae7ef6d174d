// rate_model.cpp — BBR-style path model and rate control (rate_model.h).
#include "rate_model.h"

#include <algorithm>

namespace hde::dp {

namespace {

constexpr double kHighGain = 2.885;  // 2/ln 2: doubles the rate each round in STARTUP
constexpr double kCycle[8] = {1.25, 0.75, 1, 1, 1, 1, 1, 1};
constexpr std::uint64_t kBwWindowRounds = 10;
constexpr unsigned kFullBwRounds = 3;
constexpr double kFullBwGrowth = 1.25;
constexpr std::uint32_t kMinCwndFrames = 4;

}  // namespace

const char *cc_state_name(cc_state s) {
  switch (s) {
  case cc_state::startup: return "startup";
  case cc_state::drain: return "drain";
  case cc_state::probe_bw: return "probe_bw";
  case cc_state::probe_rtt: return "probe_rtt";
  }
  return "?";
}

// Keep the best three samples of the window, each from a later part of it,
// so that when the best one ages out the next best is already known.
std::uint64_t minmax_filter::update(std::uint64_t window, std::uint64_t t, std::uint64_t v) {
  const sample n{t, v};
  if (better(v, s_[0].v) || t - s_[2].t > window) {  // a new best, or the window is empty
    reset(t, v);
    return v;
  }
  if (better(v, s_[1].v))
    s_[1] = s_[2] = n;
  else if (better(v, s_[2].v))
    s_[2] = n;
  const std::uint64_t age = t - s_[0].t;
  if (age > window) {  // the best aged out: promote
    s_[0] = s_[1];
    s_[1] = s_[2];
    s_[2] = n;
    if (t - s_[0].t > window) {
      s_[0] = s_[1];
      s_[1] = s_[2];
      s_[2] = n;
    }
  } else if (s_[1].t == s_[0].t && age > window / 4) {
    s_[1] = s_[2] = n;  // a quarter of the window passed: take a second-best from it
  } else if (s_[2].t == s_[1].t && age > window / 2) {
    s_[2] = n;
  }
  return s_[0].v;
}

rate_model::rate_model(const config &c)
    : hz_(c.hz), mss_(c.mss), ceiling_bps_(c.ceiling_bps),
      init_cwnd_bytes_(static_cast<std::uint64_t>(c.init_cwnd) * c.mss), pacing_gain_(kHighGain),
      cwnd_gain_(kHighGain), cwnd_(init_cwnd_bytes_),
      min_rtt_win_(static_cast<std::uint64_t>(10 * c.hz)),
      probe_rtt_time_(static_cast<std::uint64_t>(0.2 * c.hz)) {
  set_pacing_and_cwnd(rate_sample{});
}

std::uint64_t rate_model::bdp() const {
  if (bw_.get() == 0 || min_rtt_ == 0)
    return init_cwnd_bytes_;
  // A software gateway answers within a poll or two: never model a path
  // shorter than 500 us, or the cap would starve it on a LAN.
  const double rtt = std::max<double>(static_cast<double>(min_rtt_), hz_ / 2000);
  return static_cast<std::uint64_t>(btl_bw() * rtt);
}

void rate_model::update_round(const rate_sample &rs) {
  round_start_ = false;
  if (rs.newly_acked == 0 || rs.prior_delivered < next_round_delivered_)
    return;
  next_round_delivered_ = rs.delivered_total;
  ++round_count_;
  round_start_ = true;
  // The round that just ended: was its loss heavy? Did it lose frames
  // while the queue grew (a bottleneck buffer overflowing)?
  const std::uint64_t total = round_acked_ + round_lost_;
  const bool queued = min_rtt_ != 0 && static_cast<double>(round_max_rtt_) > kQueueRttRatio * static_cast<double>(min_rtt_);
  const double loss = total != 0 ? static_cast<double>(round_lost_) / static_cast<double>(total) : 0;
  // The path's own loss, learnt from rounds without a queue: a round whose
  // loss is within a few times of it is the path, not an overflowing buffer
  // (1 % random loss puts more than 2 % in one round of a few hundred
  // frames every ten rounds or so).
  if (total >= 8ull * mss_ && !queued)
    random_loss_ = random_loss_ == 0 ? loss : 0.9 * random_loss_ + 0.1 * loss;
  // STARTUP ends on any loss above 2 % with a queue (an overshoot must be
  // caught early); later a cap needs the loss well above the path's own.
  queue_loss_ = total >= 8ull * mss_ && loss > kStartupLossThresh && queued;
  const bool congested = queue_loss_ && loss > kRandomLossMargin * random_loss_;
  round_max_rtt_ = 0;
  // Congestion: heavy loss (20 %) two rounds in a row, or loss above 2 %
  // with a queue (the RTT a quarter above its minimum) in one round — a
  // bottleneck buffer, or a receiver's ring, overflowing. Random loss with
  // no queue is neither.
  if (total >= 8ull * mss_ && static_cast<double>(round_lost_) > kLossThresh * static_cast<double>(total)) {
    if (++lossy_rounds_in_row_ >= 2) {
      inflight_hi_ = std::max<std::uint64_t>(round_acked_, std::uint64_t{kMinCwndFrames} * mss_);
      ++loss_rounds_;
    }
  } else if (congested && state_ != cc_state::startup) {  // STARTUP: update_state ends it
    lossy_rounds_in_row_ = 0;
    inflight_hi_ = std::min(inflight_hi_, std::max<std::uint64_t>(round_acked_, std::uint64_t{kMinCwndFrames} * mss_));
    ++loss_rounds_;
  } else {
    lossy_rounds_in_row_ = 0;
    // Probe the cap upwards again, an eighth a round.
    if (inflight_hi_ != ~0ull && state_ == cc_state::probe_bw) {
      inflight_hi_ += std::max<std::uint64_t>(mss_, inflight_hi_ / 8);
      if (inflight_hi_ > 4 * std::max(bdp(), cwnd_))
        inflight_hi_ = ~0ull;  // far above what the path holds: no cap
    }
  }
  round_acked_ = round_lost_ = 0;
}

void rate_model::update_bw(std::uint64_t now, const rate_sample &rs) {
  if (rs.interval == 0 || rs.delivered == 0)
    return;
  const double rate = static_cast<double>(rs.delivered) / static_cast<double>(rs.interval);
  last_rate_ = rate;
  const auto scaled = static_cast<std::uint64_t>(rate * kBwScale);
  // A sample taken while the sender had too little to send says only that
  // the path carries at least that much.
  if (!rs.app_limited || scaled >= bw_.get())
    bw_.update(kBwWindowRounds, round_count_, scaled);
  // Acks in bunches: bytes acked in this epoch beyond what the rate explains.
  if (bw_.get() == 0)
    return;
  const double expected = btl_bw() * static_cast<double>(now - ack_epoch_stamp_);
  if (ack_epoch_stamp_ == 0 || static_cast<double>(ack_epoch_acked_) <= expected ||
      ack_epoch_acked_ + rs.newly_acked >= (1ull << 30)) {
    ack_epoch_stamp_ = now;
    ack_epoch_acked_ = 0;
  }
  ack_epoch_acked_ += rs.newly_acked;
  const double e = static_cast<double>(ack_epoch_acked_) -
                   btl_bw() * static_cast<double>(now - ack_epoch_stamp_);
  const std::uint64_t extra = e > 0 ? std::min<std::uint64_t>(static_cast<std::uint64_t>(e), cwnd_) : 0;
  extra_acked_.update(kBwWindowRounds, round_count_, extra);
}

void rate_model::update_min_rtt(std::uint64_t now, const rate_sample &rs) {
  const bool expired = min_rtt_ != 0 && now - min_rtt_stamp_ > min_rtt_win_;
  if (rs.rtt != 0 && (min_rtt_ == 0 || rs.rtt < min_rtt_ || expired)) {
    min_rtt_ = rs.rtt;
    min_rtt_stamp_ = now;
  }
  if (expired && state_ != cc_state::probe_rtt) {
    prior_state_ = state_;
    state_ = cc_state::probe_rtt;
    probe_rtt_done_ = 0;
    ++probe_rtt_count_;
  }
  if (state_ != cc_state::probe_rtt)
    return;
  if (probe_rtt_done_ == 0 && rs.inflight <= std::uint64_t{kMinCwndFrames} * mss_) {
    probe_rtt_done_ = now + probe_rtt_time_;
    probe_rtt_round_done_ = false;
    next_round_delivered_ = rs.delivered_total;  // a full round at the low in-flight
  } else if (probe_rtt_done_ != 0) {
    if (round_start_)
      probe_rtt_round_done_ = true;
    if (probe_rtt_round_done_ && now >= probe_rtt_done_) {
      min_rtt_stamp_ = now;
      if (filled_pipe_)
        enter_probe_bw(now);
      else
        state_ = cc_state::startup;
    }
  }
}

void rate_model::enter_probe_bw(std::uint64_t now) {
  state_ = cc_state::probe_bw;
  cycle_idx_ = 2 + static_cast<unsigned>(round_count_ % 6);  // start in a steady phase
  cycle_stamp_ = now;
}

void rate_model::update_state(std::uint64_t now, const rate_sample &rs) {
  // STARTUP ends when the delivery rate stopped growing, or on heavy loss.
  if (!filled_pipe_ && round_start_ && !rs.app_limited) {
    if (bw_.get() >= static_cast<std::uint64_t>(static_cast<double>(full_bw_) * kFullBwGrowth)) {
      full_bw_ = bw_.get();
      full_bw_count_ = 0;
    } else if (++full_bw_count_ >= kFullBwRounds) {
      filled_pipe_ = true;
    }
  }
  // ... or when a round lost more than 2 % of its frames with the RTT a
  // quarter above its minimum: the rate overshot the bottleneck and its
  // buffer is overflowing (BBR v2's loss exit, with the queue as witness so
  // that random loss on a long path does not end STARTUP at a low rate).
  if (!filled_pipe_ && (lossy_rounds_in_row_ >= 2 || (round_start_ && queue_loss_)))
    filled_pipe_ = true;
  if (state_ == cc_state::startup && filled_pipe_)
    state_ = cc_state::drain;
  if (state_ == cc_state::drain && rs.inflight <= bdp())
    enter_probe_bw(now);
  if (state_ == cc_state::probe_bw) {
    const double gain = kCycle[cycle_idx_];
    bool next = min_rtt_ != 0 && now - cycle_stamp_ > min_rtt_;
    if (gain > 1)
      next = next && (rs.newly_lost > 0 || static_cast<double>(rs.inflight) >= gain * static_cast<double>(bdp()));
    else if (gain < 1)
      next = next || rs.inflight <= bdp();
    if (next) {
      cycle_idx_ = (cycle_idx_ + 1) % 8;
      cycle_stamp_ = now;
    }
  }
}

void rate_model::set_pacing_and_cwnd(const rate_sample &rs) {
  switch (state_) {
  case cc_state::startup: pacing_gain_ = kHighGain; cwnd_gain_ = kHighGain; break;
  case cc_state::drain: pacing_gain_ = 1 / kHighGain; cwnd_gain_ = kHighGain; break;
  case cc_state::probe_bw: pacing_gain_ = kCycle[cycle_idx_]; cwnd_gain_ = 2; break;
  case cc_state::probe_rtt: pacing_gain_ = 1; cwnd_gain_ = 1; break;
  }
  const std::uint64_t min_cwnd = std::uint64_t{kMinCwndFrames} * mss_;
  double rate;
  if (bw_.get() == 0) {  // no estimate yet: the initial window over the RTT (1 ms until known)
    const double rtt = min_rtt_ != 0 ? static_cast<double>(min_rtt_) : hz_ / 1000;
    rate = kHighGain * static_cast<double>(init_cwnd_bytes_) / rtt;
  } else {
    rate = pacing_gain_ * btl_bw();
  }
  // In STARTUP the rate only goes up: an early low sample must not stall it.
  if (state_ == cc_state::startup && rate < pacing_)
    rate = pacing_;
  if (ceiling_bps_ > 0)
    rate = std::min(rate, ceiling_bps_ / 8 / hz_);
  pacing_ = rate;

  if (state_ == cc_state::probe_rtt) {
    cwnd_ = min_cwnd;
    return;
  }
  std::uint64_t target = static_cast<std::uint64_t>(cwnd_gain_ * static_cast<double>(bdp())) +
                         extra_acked_.get() + 2ull * mss_;
  if (bw_.get() == 0)
    target = std::max(target, init_cwnd_bytes_);
  if (filled_pipe_)
    cwnd_ = std::min(cwnd_ + rs.newly_acked, target);
  else if (cwnd_ < target)
    cwnd_ += rs.newly_acked;
  cwnd_ = std::max(cwnd_, min_cwnd);
  if (inflight_hi_ != ~0ull)
    cwnd_ = std::min(cwnd_, std::max(inflight_hi_, min_cwnd));
}

void rate_model::on_ack(std::uint64_t now, const rate_sample &rs) {
  update_round(rs);
  round_acked_ += rs.newly_acked;
  round_lost_ += rs.newly_lost;
  round_max_rtt_ = std::max(round_max_rtt_, rs.rtt);
  update_bw(now, rs);
  update_state(now, rs);
  update_min_rtt(now, rs);
  set_pacing_and_cwnd(rs);
}

}  // namespace hde::dp
