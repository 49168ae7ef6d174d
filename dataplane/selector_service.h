// selector_service.h — hybrid mode's learning selector on the control
// thread (lib/engine/selector.h has the policy). Each worker's encoder
// pushes samples into its own ring; every tick (10 ms, on the control
// socket's thread) the service drains the rings into one learner, tells it
// the link and the number of workers, lets it decide, and publishes a new
// decision table through the live config's RCU (QSBR): the old table is
// freed only after every worker has passed a quiescent state. Workers read
// the table once per segment. Nothing here runs on an lcore, and the control
// thread never waits: old tables are freed on a later tick, once the grace
// period they need has passed.
//
// The link the choice is for: --link-rate / `set link-rate` when set (the
// operator knows the link), else the transport's bottleneck estimate summed
// over the streams, held at its peak for 5 s so that a dense arm that leaves
// the link idle for a while (app-limited) does not read as a slower link.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/selector.h"
#include "live_config.h"
#include "registry.h"

namespace hde::dp {

class worker;

class selector_service {
public:
  selector_service(unsigned workers, live_config_store *live, double tsc_hz);
  ~selector_service();

  // The lcores the workers run on (fewer than workers when they share):
  // the CPU the learner may count on.
  void set_worker_lcores(unsigned n) { learner_.set_workers(n); }
  // What worker i's encoder takes (encoder::set_selector_port).
  selector_port port(unsigned i) { return {rings_.at(i).get(), &table_}; }
  // Control thread: drain, learn, decide, publish. now_tsc: rte_rdtsc().
  void tick(const std::vector<worker *> &workers, std::uint64_t now_tsc);
  // `show selector` (JSON) and the import/export of the estimates.
  ctl::json show() const;
  ctl::json export_estimates() const;
  // Merges estimates exported by another gateway or an earlier run; false
  // with err when the document is not one.
  bool import_estimates(const ctl::json &doc, std::string &err);
  // What the workers measured since the last call, per class and arm
  // (segments, pages, wire bytes, TSC cycles), for the fleet sync's shared
  // statistics (sync_glue.cpp): f(class, arm, samples, pages, wire, cycles)
  // for each that moved; the totals start over. Control thread.
  template <typename F> void take_totals(F &&f) {
    for (std::size_t c = 0; c < kClassCount; ++c)
      for (std::size_t a = 0; a < kArmCount; ++a) {
        totals &t = totals_[c][a];
        if (t.samples != 0)
          f(class_name(static_cast<page_class>(c)), selector_arms()[a].name, t.samples, t.pages, t.wire, t.cycles);
        t = {};
      }
  }

private:
  struct totals {
    std::uint64_t samples = 0, pages = 0, wire = 0, cycles = 0;
  };
  std::vector<std::unique_ptr<sample_ring>> rings_;
  totals totals_[kClassCount][kArmCount] = {};
  selector_learner learner_;
  std::atomic<const decision_table *> table_{nullptr};
  // Replaced tables, freed once a grace period has passed (never waited for:
  // a worker busy on a long batch must not stall the control thread).
  std::vector<std::pair<std::uint64_t, const decision_table *>> retired_;
  live_config_store *live_;
  double tsc_hz_;
  std::uint64_t publishes_ = 0, drained_ = 0;
  double link_ = 0, peak_ = 0;
  std::uint64_t peak_at_ = 0;
  const char *link_source_ = "unknown";
};

}  // namespace hde::dp
