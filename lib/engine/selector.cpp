// selector.cpp — sample ring, estimates, and the goodput-maximising policy.
#include "engine/selector.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

namespace hde {

namespace {

constexpr selector_arm kArms[kArmCount] = {
    {"raw", false, {codec_id::raw, 0}, 64 * 1024},
    {"lz4:16", true, {codec_id::lz4, 16}, 64 * 1024},
    {"lz4:4", true, {codec_id::lz4, 4}, 64 * 1024},
    {"lz4:1", true, {codec_id::lz4, 1}, 64 * 1024},
    {"zstd:1", true, {codec_id::zstd, 1}, 256 * 1024},
    {"zstd:3", true, {codec_id::zstd, 3}, 256 * 1024},
    {"zstd:6", true, {codec_id::zstd, 6}, 256 * 1024},
    {"zstd:9", true, {codec_id::zstd, 9}, 256 * 1024},
    {"zstd:12", true, {codec_id::zstd, 12}, 256 * 1024},
    {"zstd:15", true, {codec_id::zstd, 15}, 256 * 1024},
    {"zstd:19", true, {codec_id::zstd, 19}, 256 * 1024},
};
// The next cheaper arm of the same family (-1: none): an arm never sampled
// is at least as slow as it, and not much denser (see plausible()).
constexpr int kCheaper[kArmCount] = {-1, -1, 1, 2, -1, 4, 5, 6, 7, 8, 9};
constexpr unsigned kStartArm = 4;  // zstd:1 until something is known
static_assert(kArmCount <= 16, "encoder_stats::arm_pages has 16 entries");

// Averages are weighted by pages: the long one has a half-life of 32 MiB of
// pages, the short one (change detection) 4 MiB; class shares 64 MiB. Until
// an arm has seen that many pages its averages are plain means.
constexpr double kLongHalfLife = 8192, kShortHalfLife = 1024, kShareHalfLife = 16384;
constexpr double kChange = 0.25;       // relative move that counts as a change
constexpr double kHysteresis = 0.03;   // a new decision must be this much better
constexpr unsigned kMinExplorePeriod = 4, kMaxExplorePeriod = 256;

double weight(double pages, double seen, double half_life) {
  return std::max(1.0 - std::exp2(-pages / half_life), pages / (seen + pages));
}

}  // namespace

const char *class_name(page_class c) { return c == page_class::bulk ? "bulk" : "dirty"; }

std::span<const selector_arm> selector_arms() { return kArms; }

int find_arm(std::string_view name) {
  for (std::size_t a = 0; a < kArmCount; ++a)
    if (name == kArms[a].name)
      return static_cast<int>(a);
  return -1;
}

// --- sample_ring -------------------------------------------------------------

sample_ring::sample_ring(std::size_t capacity) {
  const std::size_t n = std::bit_ceil(std::max<std::size_t>(capacity, 2));
  buf_ = std::make_unique<selector_sample[]>(n);
  mask_ = n - 1;
}

bool sample_ring::push(const selector_sample &s) noexcept {
  const std::uint64_t h = head_.load(std::memory_order_relaxed);
  if (h - tail_.load(std::memory_order_acquire) > mask_) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  buf_[h & mask_] = s;
  head_.store(h + 1, std::memory_order_release);
  pushed_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

std::size_t sample_ring::drain(std::span<selector_sample> out) noexcept {
  const std::uint64_t t = tail_.load(std::memory_order_relaxed);
  const std::uint64_t h = head_.load(std::memory_order_acquire);
  const std::size_t n = std::min<std::uint64_t>(h - t, out.size());
  for (std::size_t i = 0; i < n; ++i)
    out[i] = buf_[(t + i) & mask_];
  tail_.store(t + n, std::memory_order_release);
  return n;
}

// --- selector_learner ----------------------------------------------------------

selector_learner::selector_learner(double hz) : hz_(hz > 0 ? hz : 1e9) {
  for (auto &d : table_.cls) {
    d.arm = kStartArm;
    d.explore_arm = 0;
    d.explore_every = 2;
  }
}

void selector_learner::set_link(double bytes_per_s) {
  bytes_per_s = std::max(0.0, bytes_per_s);
  const bool known = link_ > 0, now_known = bytes_per_s > 0;
  if (known != now_known ||
      (known && std::fabs(bytes_per_s / link_ - 1.0) > kChange))
    link_changed_ = true;
  link_ = bytes_per_s;
  if (samples_ == 0)
    start_table();
}

void selector_learner::set_workers(unsigned w) {
  workers_ = std::max(1u, w);
  if (samples_ == 0)
    start_table();
}

// Before any sample, a prior from the link per worker: the raw ladder from
// 5 Gbit/s up (or on a link not known), LZ4 from 500 Mbit/s, zstd:1 below.
// Only where it starts: the first samples decide.
void selector_learner::start_table() {
  const double per_worker_bps = link_ * 8 / workers_;
  const unsigned a = link_ <= 0 || per_worker_bps >= 5e9 ? 0u : per_worker_bps >= 5e8 ? 2u : kStartArm;
  for (auto &d : table_.cls) {
    d.arm = d.mix_arm = static_cast<std::uint8_t>(a);
    d.mix_256 = 0;
  }
}

double selector_learner::class_share(page_class c) const {
  const double sum = class_pages_[0] + class_pages_[1];
  return sum > 0 ? class_pages_[static_cast<std::size_t>(c)] / sum : 0.5;
}

void selector_learner::add(const selector_sample &s) {
  if (s.pages == 0 || s.cls >= kClassCount || s.arm >= kArmCount || s.codec_cycles > s.cycles)
    return;
  const std::size_t c = s.cls;
  const double p = s.pages, raw = std::max<double>(s.raw_bytes, 1.0);
  // The ladder's part: every sample of the class, whatever the arm.
  ladder_estimate &l = ladder_[c];
  const double wl = weight(p, l.pages, kLongHalfLife);
  l.raw_per_page += wl * (static_cast<double>(s.raw_bytes) / p - l.raw_per_page);
  l.cycles_per_page += wl * (static_cast<double>(s.cycles - s.codec_cycles) / p - l.cycles_per_page);
  l.pages += p;

  arm_estimate &e = est_[c][s.arm];
  const selector_arm &A = kArms[s.arm];
  const bool coded = A.batch && A.codec.id != codec_id::raw;
  if (coded) {
    const double lr = std::log(std::max(static_cast<double>(s.wire_bytes), 1.0) / raw);
    const bool has_cpb = s.codec_cycles != 0;
    const double lc = std::log(std::max(static_cast<double>(s.codec_cycles), 1.0) / raw);
    const bool paired = s.explored && s.ref_wire != 0 && s.ref_arm < kArmCount && s.ref_arm != s.arm &&
                        (est_[c][s.ref_arm].samples != 0 || !kArms[s.ref_arm].batch);
    const arm_estimate &r = est_[c][paired ? s.ref_arm : s.arm];
    const double pr = raw / 4096, pe = e.raw_bytes / 4096;
    const double w = weight(pr, pe, kLongHalfLife), ws = weight(pr, pe, kShortHalfLife);
    const bool ref_coded = paired && kArms[s.ref_arm].batch && kArms[s.ref_arm].codec.id != codec_id::raw;
    // Ratio: an effect observed (paired, or an explored/new arm against the
    // content level), or the arm in use moving the content level.
    if (!l.level_known) {  // the first coded sample sets the content level
      l.level_ratio = l.long_ratio = lr;
      l.level_known = true;
    }
    bool have = true;
    double obs = 0;
    if (ref_coded)
      obs = r.effect_ratio + lr - std::log(static_cast<double>(s.ref_wire) / raw);
    else if (s.explored || e.samples == 0)
      obs = lr - l.level_ratio;  // against raw, the level is the yardstick too
    else
      have = false;
    if (have) {
      e.effect_ratio = e.samples ? e.effect_ratio + w * (obs - e.effect_ratio) : obs;
    } else {
      l.level_ratio += ws * (lr - e.effect_ratio - l.level_ratio);
      l.long_ratio += w * (lr - e.effect_ratio - l.long_ratio);
    }
    // Codec cycles, the same way; an arm's first segment pays set-up (page
    // faults, tables), so its figure is replaced by the second's.
    if (has_cpb) {
      if (!l.cpb_known) {
        l.level_cpb = l.long_cpb = lc;
        l.cpb_known = true;
      }
      have = true;
      if (ref_coded && s.ref_cycles != 0 && r.cpb_known && !r.cpb_first)
        obs = r.effect_cpb + std::log(static_cast<double>(s.codec_cycles) / static_cast<double>(s.ref_cycles));
      else if (s.explored || !e.cpb_known || e.cpb_first)
        obs = lc - l.level_cpb;
      else
        have = false;
      if (have) {
        if (!e.cpb_known || e.cpb_first) {
          e.cpb_first = !e.cpb_known;
          e.cpb_known = true;
          e.effect_cpb = obs;
        } else {
          e.effect_cpb += w * (obs - e.effect_cpb);
        }
      } else {
        l.level_cpb += ws * (lc - e.effect_cpb - l.level_cpb);
        l.long_cpb += w * (lc - e.effect_cpb - l.long_cpb);
      }
    }
    // The content under the arm in use changed: look around again.
    if (!s.explored && (std::fabs(l.level_ratio - l.long_ratio) > std::log1p(kChange) ||
                        std::fabs(l.level_cpb - l.long_cpb) > std::log1p(kChange))) {
      l.long_ratio = l.level_ratio;
      l.long_cpb = l.level_cpb;
      changed_[c] = true;
    }
  } else {
    e.cpb_known = true;  // raw: ratio 1, no codec cycles
  }
  e.raw_bytes += raw;
  ++e.samples;
  ++(s.explored ? e.explored : e.chosen);
  e.last_sample = ++samples_;
  ++class_samples_[c];
  const double decay = std::exp2(-p / kShareHalfLife);
  for (double &n : class_pages_)
    n *= decay;
  class_pages_[c] += p;
}

// An arm never tried on class c borrows what the other class learned of it
// (effects are properties of the codec more than of the data), and a class
// with no content level yet borrows the other's.
bool selector_learner::usable(std::size_t c, unsigned a) const {
  return est_[c][a].samples != 0 || est_[1 - c][a].samples != 0;
}

void selector_learner::refresh_derived() {
  for (std::size_t c = 0; c < kClassCount; ++c)
    for (std::size_t a = 0; a < kArmCount; ++a) {
      arm_estimate &e = est_[c][a];
      const arm_estimate &src = e.samples != 0 ? e : est_[1 - c][a];
      const ladder_estimate &l = ladder_[c].level_known || !ladder_[1 - c].level_known ? ladder_[c] : ladder_[1 - c];
      const bool coded = kArms[a].batch && kArms[a].codec.id != codec_id::raw;
      e.ratio = coded ? std::min(1.05, std::exp(l.level_ratio + src.effect_ratio)) : 1.0;
      // Not yet timed: as costly as the next cheaper arm of its family (or
      // nothing known). Timed once: that first segment is mostly set-up
      // (page faults on tables first touched): a quarter of it, and no less
      // than the cheaper sibling — a slow first try must not rule an arm out
      // for good, nor may an arm tried once look as cheap as its sibling, or
      // exploration would walk up every level of the family.
      const double sib = coded && kCheaper[a] >= 0 ? est_[c][static_cast<std::size_t>(kCheaper[a])].cycles_per_byte : 0;
      double cpb = 0;
      if (coded && src.cpb_known)
        cpb = src.cpb_first ? std::max(sib, std::exp(l.level_cpb + src.effect_cpb) / 4)
                            : std::exp(l.level_cpb + src.effect_cpb);
      else if (coded)
        cpb = sib;
      e.cycles_per_byte = cpb;
      e.bytes_per_page = ladder_[c].raw_per_page * e.ratio;
      e.cycles_per_page = ladder_[c].cycles_per_page + ladder_[c].raw_per_page * e.cycles_per_byte;
    }
}

std::size_t selector_learner::drain(sample_ring &ring, const std::function<void(const selector_sample &)> &seen) {
  std::array<selector_sample, 64> buf;
  std::size_t total = 0;
  for (;;) {
    const std::size_t n = ring.drain(buf);
    for (std::size_t i = 0; i < n; ++i) {
      add(buf[i]);
      if (seen)
        seen(buf[i]);
    }
    total += n;
    if (n < buf.size())
      return total;
  }
}

void selector_learner::merge(page_class c, unsigned arm, double effect_ratio, double effect_cpb, double raw_bytes) {
  // Effects are logs of ratios: beyond +-10 (a factor of 22 000) they are
  // not a codec's; bytes are capped so that one import cannot outweigh
  // everything measured here forever.
  if (arm >= kArmCount || !(raw_bytes > 0) || !std::isfinite(effect_ratio) || !std::isfinite(effect_cpb) ||
      std::fabs(effect_ratio) > 10 || std::fabs(effect_cpb) > 10)
    return;
  raw_bytes = std::min(raw_bytes, 1e12);
  arm_estimate &e = est_[static_cast<std::size_t>(c)][arm];
  if (e.samples == 0) {  // seed: as if sampled, so no exploration is spent on it
    e.effect_ratio = effect_ratio;
    e.effect_cpb = effect_cpb;
    e.cpb_known = true;
    e.raw_bytes = raw_bytes;
    e.samples = 1;
    e.last_sample = samples_;
    return;
  }
  const double w = raw_bytes / (raw_bytes + e.raw_bytes);
  e.effect_ratio += w * (effect_ratio - e.effect_ratio);
  e.effect_cpb += w * (effect_cpb - e.effect_cpb);
}

bool selector_learner::decide() {
  refresh_derived();
  const double share[kClassCount] = {class_share(page_class::bulk), class_share(page_class::dirty)};
  const double cpu_rate = hz_ * workers_;  // cycles/s of all workers
  // Time per page of the mix for a choice (arm per class), with per-class
  // cost overrides for optimistic what-ifs.
  struct cost {
    double cpp, bpp;
  };
  auto known = [&](std::size_t c, unsigned a) -> cost {
    const arm_estimate &e = est_[c][a];
    return {e.cycles_per_page, e.bytes_per_page};
  };
  auto mix_time = [&](const cost (&k)[kClassCount]) {
    double cpu = 0, link = 0;
    for (std::size_t c = 0; c < kClassCount; ++c) {
      cpu += share[c] * k[c].cpp / cpu_rate;
      link += share[c] * k[c].bpp;
    }
    return std::max(cpu, link_ > 0 ? link / link_ : 0.0);
  };

  // Best combination over sampled arms (a class with none keeps its arm).
  std::array<unsigned, kClassCount> best{};
  for (std::size_t c = 0; c < kClassCount; ++c)
    best[c] = table_.cls[c].arm;
  double best_t = std::numeric_limits<double>::infinity();
  bool any = false;
  {
    std::array<unsigned, kClassCount> cur{};
    for (cur[0] = 0; cur[0] < kArmCount; ++cur[0]) {
      for (cur[1] = 0; cur[1] < kArmCount; ++cur[1]) {
        cost k[kClassCount];
        bool ok = true;
        for (std::size_t c = 0; c < kClassCount; ++c) {
          if (!usable(c, cur[c]) || ladder_[c].pages == 0) {
            const bool has_any = ladder_[c].pages != 0;  // the class has been seen
            if (has_any || cur[c] != best[c]) {
              ok = false;
              break;
            }
            k[c] = {0, 0};  // nothing known of this class: it does not weigh
          } else {
            k[c] = known(c, cur[c]);
          }
        }
        if (!ok)
          continue;
        const double t = mix_time(k);
        if (t < best_t) {
          best_t = t;
          best = cur;
          any = true;
        }
      }
    }
  }
  // A class never seen yet starts on what the other class uses: the link
  // and the CPU are the same, and the data usually not far off.
  for (std::size_t c = 0; c < kClassCount; ++c) {
    const bool has_any = ladder_[c].pages != 0;  // the class has been seen
    if (!has_any)
      best[c] = best[1 - c];
  }
  // Hysteresis: keep the arms in use unless the new choice is clearly better.
  if (any) {
    cost k[kClassCount];
    bool cur_known = true;
    for (std::size_t c = 0; c < kClassCount; ++c) {
      const unsigned a = table_.cls[c].arm;
      const bool has_any = ladder_[c].pages != 0;  // the class has been seen
      if (!usable(c, a) && has_any)
        cur_known = false;
      k[c] = usable(c, a) && ladder_[c].pages != 0 ? known(c, a) : cost{0, 0};
    }
    if (cur_known) {
      const double t_cur = mix_time(k);
      if (t_cur <= best_t * (1.0 + kHysteresis)) {
        for (std::size_t c = 0; c < kClassCount; ++c)
          best[c] = table_.cls[c].arm;
        best_t = t_cur;
      }
    }
  }
  // A mix within a class: when the best choice leaves the link waiting on
  // the CPU or the CPU on the link, a share x of the class's segments on a
  // second arm that leans the other way balances the two:
  //   T(x) = max(cpu + x dcpu, link + x dlink), least where they meet.
  // Kept when it beats the pure choice by more than the hysteresis.
  std::array<unsigned, kClassCount> mix_arm{};
  std::array<double, kClassCount> mix_x{};
  if (any && link_ > 0) {
    for (std::size_t c = 0; c < kClassCount; ++c) {
      mix_arm[c] = best[c];
      if (!usable(c, best[c]) || ladder_[c].pages == 0)
        continue;
      double cpu = 0, link = 0;
      for (std::size_t o = 0; o < kClassCount; ++o)
        if (usable(o, best[o]) && ladder_[o].pages != 0) {
          cpu += share[o] * est_[o][best[o]].cycles_per_page / cpu_rate;
          link += share[o] * est_[o][best[o]].bytes_per_page / link_;
        }
      double mix_t = best_t;
      for (unsigned b = 0; b < kArmCount; ++b) {
        if (b == best[c] || !usable(c, b) || !est_[c][b].cpb_known)
          continue;
        const double dcpu = share[c] * (est_[c][b].cycles_per_page - est_[c][best[c]].cycles_per_page) / cpu_rate;
        const double dlink = share[c] * (est_[c][b].bytes_per_page - est_[c][best[c]].bytes_per_page) / link_;
        // Only an arm that trades one for the other, towards the side that waits.
        if (!((cpu < link && dcpu > 0 && dlink < 0) || (link < cpu && dlink > 0 && dcpu < 0)))
          continue;
        const double x = (link - cpu) / (dcpu - dlink);
        if (!(x > 0 && x < 1))
          continue;
        const double t = std::max(cpu + x * dcpu, link + x * dlink);
        if (t < mix_t) {
          mix_t = t;
          mix_arm[c] = b;
          mix_x[c] = x;
        }
      }
      if (mix_arm[c] != best[c] && mix_t < best_t * (1.0 - kHysteresis))
        best_t = mix_t;
      else
        mix_arm[c] = best[c], mix_x[c] = 0;
    }
  }
  goodput_ = any && best_t > 0 ? 1.0 / best_t : 0;

  decision_table next = table_;
  for (std::size_t c = 0; c < kClassCount; ++c) {
    // Could arm a, in place of best[c], beat best_t? Sampled arms: costs
    // shrunk by their uncertainty (0.25/sqrt(samples)). Never sampled: as
    // fast as the next cheaper arm of its family and 40 % denser; an arm
    // with no cheaper sibling is always worth one try.
    auto optimistic = [&](unsigned a, double &t) -> bool {
      const arm_estimate &e = est_[c][a];
      cost k[kClassCount];
      for (std::size_t o = 0; o < kClassCount; ++o)
        k[o] = usable(o, best[o]) && ladder_[o].pages != 0 ? known(o, best[o]) : cost{0, 0};
      if (usable(c, a)) {
        const double s = 1.0 - 0.25 / std::sqrt(static_cast<double>(std::max<std::uint64_t>(e.samples, 1)));
        k[c] = {ladder_[c].cycles_per_page + ladder_[c].raw_per_page * e.cycles_per_byte * s,
                e.bytes_per_page * s};
      } else {
        const int ch = kCheaper[a];
        if (ch < 0) {
          t = 0;
          return true;
        }
        const arm_estimate &q = est_[c][static_cast<unsigned>(ch)];
        if (!usable(c, static_cast<unsigned>(ch)))
          return false;  // its cheaper sibling first
        k[c] = {q.cycles_per_page, q.bytes_per_page * 0.6};  // as fast as it, 40 % denser
      }
      t = mix_time(k);
      return true;
    };
    unsigned pick = best[c];
    bool untried = false;
    std::uint64_t oldest = std::numeric_limits<std::uint64_t>::max();
    for (unsigned a = 0; a < kArmCount; ++a) {
      if (a == best[c])
        continue;
      double t = 0;
      if (!optimistic(a, t) || t >= best_t)
        continue;
      const arm_estimate &e = est_[c][a];
      const bool fresh = !usable(c, a);
      // Untried arms first (cheapest family member first), then the one
      // heard from least recently.
      if ((fresh && !untried) || (fresh == untried && e.last_sample < oldest)) {
        pick = a;
        untried = fresh;
        oldest = e.last_sample;
      }
    }
    class_decision &d = next.cls[c];
    const bool restart = link_changed_ || changed_[c] || d.arm != best[c];
    if (restart) {
      if (stable_[c] != 0)
        ++restarts_;
      stable_[c] = 0;
      step_at_[c] = class_samples_[c];
    } else if (class_samples_[c] - step_at_[c] >= std::max<unsigned>(d.explore_every, kMinExplorePeriod) &&
               stable_[c] < 16) {
      ++stable_[c];  // a whole exploration period found nothing better
      step_at_[c] = class_samples_[c];
    }
    changed_[c] = false;
    d.arm = static_cast<std::uint8_t>(best[c]);
    d.mix_arm = static_cast<std::uint8_t>(mix_arm[c] == best[c] && mix_x[c] == 0 ? best[c] : mix_arm[c]);
    d.mix_256 = static_cast<std::uint8_t>(std::clamp(std::lround(mix_x[c] * 256), 0L, 255L));
    d.explore_arm = static_cast<std::uint8_t>(pick);
    if (pick == best[c])
      d.explore_every = 0;
    else if (untried)
      d.explore_every = kMinExplorePeriod;
    else
      d.explore_every = static_cast<std::uint16_t>(
          std::min<unsigned>(kMaxExplorePeriod, kMinExplorePeriod << std::min(stable_[c] / 2, 6u)));
  }
  link_changed_ = false;
  bool same = true;
  for (std::size_t c = 0; c < kClassCount; ++c)
    same = same && next.cls[c].arm == table_.cls[c].arm && next.cls[c].explore_arm == table_.cls[c].explore_arm &&
           next.cls[c].explore_every == table_.cls[c].explore_every && next.cls[c].mix_arm == table_.cls[c].mix_arm &&
           next.cls[c].mix_256 == table_.cls[c].mix_256;
  if (same)
    return false;
  next.version = table_.version + 1;
  table_ = next;
  return true;
}

}  // namespace hde
