// link_model.cpp — SPEC parsing, the PRNG, Gilbert-Elliott loss and the
// per-frame scheduler of one emulated link direction (see link_model.h).
#include "link_model.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>

namespace hde::wanem {

namespace {

constexpr const char *kKeys =
    "rate, delay_ms, jitter_ms, jitter_dist, loss, burst, reorder, reorder_ms, dup, corrupt, queue_kb, seed";
constexpr double kMaxMs = 60000;          // delays beyond a minute are a typo
constexpr double kMaxRate = 1e12;         // 1 Tbit/s
constexpr double kMaxQueueKb = 4194304;   // 4 GiB

std::string fmt(double v) {
  char b[48];
  std::snprintf(b, sizeof b, "%.10g", v);
  return b;
}

// A plain decimal number: no leading blanks, no hex, no inf/nan.
bool parse_number(const std::string &v, double &out) {
  if (v.empty() || !(std::isdigit(static_cast<unsigned char>(v[0])) || v[0] == '-' || v[0] == '+' || v[0] == '.'))
    return false;
  if (v.find_first_of("xXpP") != std::string::npos)
    return false;
  char *end = nullptr;
  errno = 0;
  out = std::strtod(v.c_str(), &end);
  return end != v.c_str() && *end == '\0';
}

std::uint64_t splitmix64(std::uint64_t &x) {
  std::uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

bool parse_rate(const std::string &v, double &bps) {
  if (v.empty())
    return false;
  double mult = 1;
  std::string num = v;
  switch (v.back()) {
  case 'k': case 'K': mult = 1e3; num.pop_back(); break;
  case 'm': case 'M': mult = 1e6; num.pop_back(); break;
  case 'g': case 'G': mult = 1e9; num.pop_back(); break;
  default: break;
  }
  double x = 0;
  if (!parse_number(num, x) || !std::isfinite(x))
    return false;
  bps = x * mult;
  return true;
}

std::string format_rate(double bps) {
  if (bps >= 1e9 && std::fmod(bps, 1e7) == 0)
    return fmt(bps / 1e9) + "g";
  if (bps >= 1e6 && std::fmod(bps, 1e4) == 0)
    return fmt(bps / 1e6) + "m";
  if (bps >= 1e3 && std::fmod(bps, 10) == 0)
    return fmt(bps / 1e3) + "k";
  return fmt(bps);
}

bool check_spec(const link_spec &s, std::string &err, const char *what) {
  auto fail = [&](const std::string &m) {
    err = std::string(what) + ": " + m;
    return false;
  };
  if (!(s.rate_bps >= 0 && s.rate_bps <= kMaxRate))
    return fail("rate: " + fmt(s.rate_bps) + " is out of range (0 = unlimited ... 1000g)");
  const struct {
    const char *key;
    double v;
  } ms[] = {{"delay_ms", s.delay_ms}, {"jitter_ms", s.jitter_ms}, {"reorder_ms", s.reorder_ms}};
  for (const auto &m : ms)
    if (!(m.v >= 0 && m.v <= kMaxMs))
      return fail(std::string(m.key) + ": " + fmt(m.v) + " is out of range (0 ... 60000 ms)");
  const struct {
    const char *key;
    double v;
  } probs[] = {{"loss", s.loss}, {"reorder", s.reorder}, {"dup", s.dup}, {"corrupt", s.corrupt}};
  for (const auto &p : probs)
    if (!(p.v >= 0 && p.v <= 1))
      return fail(std::string(p.key) + ": " + fmt(p.v) + " is not a probability (0 ... 1)");
  if (!(s.burst >= 1 && s.burst <= 1e6))
    return fail("burst: " + fmt(s.burst) + " is not a mean burst length (1 ... 1e6 frames)");
  if (s.burst > 1 && s.loss > 0 && s.loss > s.burst / (s.burst + 1))
    return fail("loss=" + fmt(s.loss) + " with burst=" + fmt(s.burst) +
                " is not a Gilbert-Elliott chain: a mean burst of B frames allows a loss of at most B/(B+1) = " +
                fmt(s.burst / (s.burst + 1)));
  if (s.reorder > 0 && s.reorder_ms <= 0)
    return fail("reorder_ms must be > 0 when reorder is on (the extra time a held-back frame waits)");
  if (!(s.queue_kb >= 0 && s.queue_kb <= kMaxQueueKb))
    return fail("queue_kb: " + fmt(s.queue_kb) + " is out of range (0 = default ... 4194304 KiB)");
  return true;
}

bool parse_link_spec(const std::string &text, link_spec &out, std::string &err, const char *what) {
  link_spec s = out;
  std::set<std::string> seen;
  auto fail = [&](const std::string &m) {
    err = std::string(what) + ": " + m;
    return false;
  };
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t end = text.find(',', pos);
    if (end == std::string::npos)
      end = text.size();
    const std::string item = text.substr(pos, end - pos);
    pos = end + 1;
    if (item.empty())
      continue;  // "a=1,,b=2" or a trailing comma
    const std::size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      return fail("'" + item + "' is not key=value (keys: " + kKeys + ")");
    const std::string key = item.substr(0, eq), val = item.substr(eq + 1);
    if (!seen.insert(key).second)
      return fail("key '" + key + "' given twice");
    if (val.empty())
      return fail(key + ": no value");

    if (key == "rate") {
      if (!parse_rate(val, s.rate_bps))
        return fail("rate: '" + val + "' is not a rate (bits/s with an optional k, m or g suffix, e.g. 100m)");
      if (s.rate_bps < 0)
        return fail("rate: " + val + " is negative");
      continue;
    }
    if (key == "jitter_dist") {
      if (val == "uniform")
        s.dist = jitter_dist::uniform;
      else if (val == "normal")
        s.dist = jitter_dist::normal;
      else
        return fail("jitter_dist: '" + val + "' is neither uniform nor normal");
      continue;
    }
    if (key == "seed") {
      char *e = nullptr;
      errno = 0;
      const unsigned long long x = std::strtoull(val.c_str(), &e, 10);
      if (!std::isdigit(static_cast<unsigned char>(val[0])) || *e != '\0' || errno == ERANGE)
        return fail("seed: '" + val + "' is not an integer 0 ... 2^64-1");
      s.seed = x;
      continue;
    }
    double *field = nullptr;
    if (key == "delay_ms") field = &s.delay_ms;
    else if (key == "jitter_ms") field = &s.jitter_ms;
    else if (key == "loss") field = &s.loss;
    else if (key == "burst") field = &s.burst;
    else if (key == "reorder") field = &s.reorder;
    else if (key == "reorder_ms") field = &s.reorder_ms;
    else if (key == "dup") field = &s.dup;
    else if (key == "corrupt") field = &s.corrupt;
    else if (key == "queue_kb") field = &s.queue_kb;
    else
      return fail("unknown key '" + key + "' (keys: " + kKeys + ")");
    double x = 0;
    if (!parse_number(val, x))
      return fail(key + ": '" + val + "' is not a number");
    if (!std::isfinite(x))
      return fail(key + ": '" + val + "' is not a finite number");
    if (x < 0)
      return fail(key + ": " + val + " is negative");
    if (key == "queue_kb" && x == 0)
      return fail("queue_kb: 0 would drop every frame (leave it out for the default)");
    *field = x;
  }
  if (!check_spec(s, err, what))
    return false;
  out = s;
  return true;
}

std::string to_string(const link_spec &s) {
  const link_spec d;
  std::string r;
  auto add = [&](const char *k, const std::string &v) {
    if (!r.empty())
      r += ',';
    r += k;
    r += '=';
    r += v;
  };
  if (s.rate_bps != d.rate_bps) add("rate", format_rate(s.rate_bps));
  if (s.delay_ms != d.delay_ms) add("delay_ms", fmt(s.delay_ms));
  if (s.jitter_ms != d.jitter_ms) add("jitter_ms", fmt(s.jitter_ms));
  if (s.dist != d.dist) add("jitter_dist", "normal");
  if (s.loss != d.loss) add("loss", fmt(s.loss));
  if (s.burst != d.burst) add("burst", fmt(s.burst));
  if (s.reorder != d.reorder) add("reorder", fmt(s.reorder));
  if (s.reorder_ms != d.reorder_ms) add("reorder_ms", fmt(s.reorder_ms));
  if (s.dup != d.dup) add("dup", fmt(s.dup));
  if (s.corrupt != d.corrupt) add("corrupt", fmt(s.corrupt));
  if (s.queue_kb != d.queue_kb) add("queue_kb", fmt(s.queue_kb));
  if (s.seed != d.seed) add("seed", std::to_string(s.seed));
  return r;
}

std::uint64_t queue_bytes(const link_spec &s) {
  if (s.queue_kb > 0)
    return static_cast<std::uint64_t>(std::llround(s.queue_kb * 1024));
  if (s.rate_bps <= 0)
    return 1 << 20;
  const double bdp = 1.5 * s.rate_bps / 8 * (s.delay_ms + 5) / 1000;
  return std::max<std::uint64_t>(static_cast<std::uint64_t>(bdp), 32 * 1024);
}

// ---------------------------------------------------------------- rng

rng::rng(std::uint64_t seed) {
  std::uint64_t x = seed;
  for (auto &w : s_)
    w = splitmix64(x);
}

std::uint64_t rng::next() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double rng::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u, v, q;
  do {
    u = 2 * uniform() - 1;
    v = 2 * uniform() - 1;
    q = u * u + v * v;
  } while (q >= 1 || q == 0);
  const double f = std::sqrt(-2 * std::log(q) / q);
  spare_ = v * f;
  has_spare_ = true;
  return u * f;
}

// ---------------------------------------------------------------- loss

gilbert_elliott::gilbert_elliott(double loss, double burst) : loss_(loss) {
  bursty_ = burst > 1 && loss > 0 && loss < 1;
  if (bursty_) {
    p_bg_ = 1 / burst;
    p_gb_ = loss / (burst * (1 - loss));
  }
}

bool gilbert_elliott::lose(rng &r) {
  if (!bursty_)
    return r.chance(loss_);
  if (bad_) {
    if (r.uniform() < p_bg_)
      bad_ = false;
  } else if (r.uniform() < p_gb_) {
    bad_ = true;
  }
  return bad_;
}

// ---------------------------------------------------------------- link

link_model::link_model(const link_spec &s, double ticks_per_sec, std::uint64_t salt)
    : spec_(s), rng_(s.seed ^ (salt * 0xD1B54A32D192ED03ULL)), ge_(s.loss, s.burst) {
  ticks_per_byte_ = s.rate_bps > 0 ? ticks_per_sec * 8 / s.rate_bps : 0;
  queue_bytes_ = queue_bytes(s);
  delay_ticks_ = static_cast<std::uint64_t>(std::llround(s.delay_ms * ticks_per_sec / 1000));
  jitter_ticks_ = s.jitter_ms * ticks_per_sec / 1000;
  reorder_ticks_ = s.reorder_ms * ticks_per_sec / 1000;
}

double link_model::backlog_bytes(std::uint64_t now) const {
  if (ticks_per_byte_ == 0 || busy_until_ < now)
    return 0;
  return (static_cast<double>(busy_until_ - now) + busy_frac_) / ticks_per_byte_;
}

verdict link_model::on_frame(std::uint64_t now, std::uint32_t len) {
  if (ge_.lose(rng_)) {
    verdict v;
    v.f = fate::lost;
    return v;
  }
  const bool dup = rng_.chance(spec_.dup);
  verdict v = schedule(now, len);
  v.dup = dup;
  return v;
}

verdict link_model::on_copy(std::uint64_t now, std::uint32_t len) { return schedule(now, len); }

verdict link_model::schedule(std::uint64_t now, std::uint32_t len) {
  verdict v;
  const double wire = static_cast<double>(len) + kWireOverhead;
  if (ticks_per_byte_ > 0) {
    // Tail drop: the bytes still to serialize, plus this frame, must fit.
    if (backlog_bytes(now) + wire > static_cast<double>(queue_bytes_)) {
      v.f = fate::queue_full;
      return v;
    }
    if (busy_until_ < now) {  // the link was idle: serialization starts now
      busy_until_ = now;
      busy_frac_ = 0;
    }
    // departure = max(now, previous departure) + wire bits / rate, with the
    // fraction of a tick carried so that back-to-back frames stay exact.
    const double t = busy_frac_ + wire * ticks_per_byte_;
    const double whole = std::floor(t);
    busy_frac_ = t - whole;
    busy_until_ += static_cast<std::uint64_t>(whole);
    v.departure = busy_until_;
  } else {
    v.departure = now;
  }
  double d = static_cast<double>(delay_ticks_);
  if (jitter_ticks_ > 0) {
    const double j = spec_.dist == jitter_dist::uniform ? (2 * rng_.uniform() - 1) * jitter_ticks_
                                                        : rng_.normal() * jitter_ticks_;
    d = std::max(0.0, d + j);
  }
  std::uint64_t due = v.departure + static_cast<std::uint64_t>(std::llround(d));
  if (due < last_due_)  // jitter never reorders: a frame never overtakes the one before
    due = last_due_;
  last_due_ = due;
  v.due = due;
  if (rng_.chance(spec_.reorder)) {
    v.held = true;
    v.held_due = due + static_cast<std::uint64_t>(std::llround(reorder_ticks_));
  }
  if (len > kEthHeader && rng_.chance(spec_.corrupt))
    v.corrupt_bit = static_cast<std::int64_t>(kEthHeader * 8 + rng_.below(std::uint64_t(len - kEthHeader) * 8));
  return v;
}

}  // namespace hde::wanem
