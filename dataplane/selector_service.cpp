// selector_service.cpp — the learner on the control thread, RCU publication.
#include "selector_service.h"

#include <algorithm>
#include <cmath>

#include "source.h"

namespace hde::dp {

selector_service::selector_service(unsigned workers, live_config_store *live, double tsc_hz)
    : learner_(tsc_hz), live_(live), tsc_hz_(tsc_hz) {
  for (unsigned i = 0; i < workers; ++i)
    rings_.push_back(std::make_unique<sample_ring>(1024));  // ~1 s of segments at 64 KiB and 60 MB/s
  learner_.set_workers(std::max(1u, workers));
  table_.store(new decision_table(learner_.table()), std::memory_order_release);
}

selector_service::~selector_service() {  // the workers have stopped
  delete table_.load();
  for (auto &r : retired_)
    delete r.second;
}

void selector_service::tick(const std::vector<worker *> &workers, std::uint64_t now) {
  std::erase_if(retired_, [this](const std::pair<std::uint64_t, const decision_table *> &r) {
    if (live_ != nullptr && !live_->grace_done(r.first))
      return false;
    delete r.second;
    return true;
  });
  const auto sum = [this](const selector_sample &s) {  // for the fleet sync (take_totals)
    if (s.cls < kClassCount && s.arm < kArmCount) {
      totals &t = totals_[s.cls][s.arm];
      ++t.samples;
      t.pages += s.pages;
      t.wire += s.wire_bytes;
      t.cycles += s.cycles;
    }
  };
  for (auto &r : rings_)
    drained_ += learner_.drain(*r, sum);
  // The link: configured, else the transport's estimate (peak over 5 s).
  const std::uint64_t configured = live_ != nullptr ? live_->link_rate_bps() : 0;
  if (configured != 0) {
    link_ = static_cast<double>(configured) / 8;
    link_source_ = "configured";
  } else {
    double est = 0;
    for (const worker *w : workers)
      est += static_cast<double>(__atomic_load_n(&w->stats().btl_bw_bps, __ATOMIC_RELAXED)) / 8;
    if (est >= peak_ || now - peak_at_ > static_cast<std::uint64_t>(5 * tsc_hz_)) {
      peak_ = est;
      peak_at_ = now;
    }
    link_ = peak_;
    link_source_ = peak_ > 0 ? "transport" : "unknown";
  }
  learner_.set_link(link_);
  if (!learner_.decide())
    return;
  // Publish: swap; the old table is freed once no worker can still hold it.
  const decision_table *old = table_.exchange(new decision_table(learner_.table()), std::memory_order_acq_rel);
  retired_.push_back({live_ != nullptr ? live_->grace_start() : 0, old});
  ++publishes_;
}

ctl::json selector_service::show() const {
  std::uint64_t pushed = 0, dropped = 0;
  for (const auto &r : rings_) {
    pushed += r->pushed();
    dropped += r->dropped();
  }
  const decision_table &t = learner_.table();
  ctl::json classes = ctl::json::array(), arms = ctl::json::array();
  for (std::size_t c = 0; c < kClassCount; ++c) {
    const auto cls = static_cast<page_class>(c);
    const class_decision &d = t.cls[c];
    std::uint64_t chosen = 0, explored = 0;
    for (unsigned a = 0; a < kArmCount; ++a) {
      chosen += learner_.estimate(cls, a).chosen;
      explored += learner_.estimate(cls, a).explored;
    }
    const ladder_estimate &l = learner_.ladder(cls);
    classes.push_back({{"class", class_name(cls)},
                       {"share", learner_.class_share(cls)},
                       {"arm", selector_arms()[d.arm].name},
                       {"explore_arm", d.explore_every ? selector_arms()[d.explore_arm].name : "-"},
                       {"explore_every", d.explore_every},
                       {"explored_share", chosen + explored ? double(explored) / double(chosen + explored) : 0.0},
                       {"ladder_bytes_per_page", l.raw_per_page},
                       {"ladder_cycles_per_page", l.cycles_per_page}});
    for (unsigned a = 0; a < kArmCount; ++a) {
      const arm_estimate &e = learner_.estimate(cls, a);
      if (e.samples == 0)
        continue;
      arms.push_back({{"class", class_name(cls)},
                      {"arm", selector_arms()[a].name},
                      {"bytes_per_page", std::round(e.bytes_per_page)},
                      {"cycles_per_page", std::round(e.cycles_per_page)},
                      {"samples", e.samples},
                      {"chosen", e.chosen},
                      {"explored", e.explored}});
    }
  }
  return {{"link_mbps", link_ * 8 / 1e6},
          {"link_source", link_source_},
          {"workers", learner_.workers()},
          {"goodput_mbps", learner_.goodput() * 4096 * 8 / 1e6},
          {"table_version", t.version},
          {"publishes", publishes_},
          {"restarts", learner_.restarts()},
          {"samples", drained_},
          {"samples_pushed", pushed},
          {"samples_dropped", dropped},
          {"classes", classes},
          {"arms", arms}};
}

ctl::json selector_service::export_estimates() const {
  ctl::json out = {{"hde_selector", 1}, {"estimates", ctl::json::array()}};
  for (std::size_t c = 0; c < kClassCount; ++c)
    for (unsigned a = 0; a < kArmCount; ++a) {
      const arm_estimate &e = learner_.estimate(static_cast<page_class>(c), a);
      if (e.samples == 0 || !e.cpb_known)
        continue;
      out["estimates"].push_back({{"class", class_name(static_cast<page_class>(c))},
                                  {"arm", selector_arms()[a].name},
                                  {"effect_ratio", e.effect_ratio},
                                  {"effect_cycles", e.effect_cpb},
                                  {"bytes", e.raw_bytes}});
    }
  return out;
}

bool selector_service::import_estimates(const ctl::json &doc, std::string &err) {
  if (!doc.is_object() || doc.value("hde_selector", 0) != 1 || !doc.contains("estimates") ||
      !doc["estimates"].is_array()) {
    err = "not an HDE selector export (want {\"hde_selector\": 1, \"estimates\": [...]})";
    return false;
  }
  std::size_t n = 0;
  for (const auto &e : doc["estimates"]) {
    if (!e.is_object() || !e.contains("class") || !e.contains("arm") || !e["class"].is_string() ||
        !e["arm"].is_string() || !e.contains("effect_ratio") || !e["effect_ratio"].is_number() ||
        !e.contains("effect_cycles") || !e["effect_cycles"].is_number() || !e.contains("bytes") ||
        !e["bytes"].is_number()) {
      err = "estimate " + std::to_string(n) + ": want class, arm, effect_ratio, effect_cycles, bytes";
      return false;
    }
    const std::string cls = e["class"], arm = e["arm"];
    const int a = find_arm(arm);
    if (a < 0 || (cls != "bulk" && cls != "dirty")) {
      err = "estimate " + std::to_string(n) + ": unknown class or arm '" + cls + "/" + arm + "'";
      return false;
    }
    ++n;
  }
  for (const auto &e : doc["estimates"])
    learner_.merge(e["class"] == "bulk" ? page_class::bulk : page_class::dirty,
                   static_cast<unsigned>(find_arm(e["arm"].get<std::string>())), e["effect_ratio"].get<double>(),
                   e["effect_cycles"].get<double>(), e["bytes"].get<double>());
  return true;
}

}  // namespace hde::dp
