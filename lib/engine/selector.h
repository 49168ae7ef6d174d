// selector.h — the learning codec selector of hybrid mode, split the way the
// gateway runs it:
//
//   workers measure   After every segment (a batch, or 64 KiB of records on
//                     the uncompressed arm) the encoder pushes one
//                     selector_sample (class, arm, pages, wire bytes, TSC
//                     cycles) into its sample_ring: single producer, single
//                     consumer, lock-free; a full ring drops the sample and
//                     counts it, it never blocks the worker.
//   control learns    selector_learner drains the rings, keeps per (class,
//                     arm) estimates of wire bytes and cycles per page, and
//                     computes a decision_table: for each class the arm to
//                     use, an arm to explore and how often.
//   workers look up   The table is published through RCU (the gateway's
//                     live_config_store); the encoder reads it once per
//                     segment: one atomic load and an index.
//
// Classes: the class of the next segment is predicted from the last one:
// dirty when most of its non-zero pages had a baseline under their own key
// (pages sent before: the ladder tries a DELTA), bulk otherwise.
//
// A class may also run a mix of two arms (mix_arm on a share of its
// segments) when one arm alone leaves the link or the CPU waiting: e.g. at
// 10 Gbit/s on one worker, the raw ladder saturates the link while LZ4
// saturates the CPU; a quarter of the segments on LZ4 balances both.
//
// Objective: migration goodput. With n_c the recent share of pages of class
// c, W workers and a link of L bytes/s, a choice (arm per class) moves pages
// at 1 / max(sum_c n_c cpp_c / (W hz), sum_c n_c bpp_c / L) pages/s (cpp:
// cycles per page, bpp: wire bytes per page). The learner tries every
// combination (arms^classes, a few hundred at most) and keeps the best.
//
// Exploration: decaying epsilon-greedy over the plausible arms, restarted on
// change. A class explores one batch in explore_every (4 at the start, then
// doubling while the decision and estimates are stable, up to 256); the arm
// explored is the least recently sampled one among those that could still
// win (its optimistic estimate, cost shrunk by 1/sqrt(samples), beats the
// best) — arms that cannot win on this link are not paid for. A change of
// the link rate (>25 %) or of the chosen arm's costs (its recent average
// leaving the long one by >25 %) restarts at every 4th batch. Exploration
// batches are small (64 KiB), so a slow arm costs little to try.
// Why not UCB or Thompson sampling: the rewards drift (rounds change the
// data, links change) and the cost of an arm is known up to two smooth
// figures; a decaying, restartable epsilon with pruning tracks drift without
// the growing confidence that makes UCB slow to notice change.
//
// Pure logic: no clock, no threads. Unit-tested with made-up costs.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "codec/codec.h"

namespace hde {

enum class page_class : std::uint8_t { bulk = 0, dirty = 1 };
inline constexpr std::size_t kClassCount = 2;
const char *class_name(page_class c);

struct selector_arm {
  const char *name;         // "raw", "lz4:4", "zstd:3", ...
  bool batch;               // records gathered and compressed as one batch
  codec_spec codec;         // the batch codec (raw arm: the page codec, raw)
  std::size_t batch_bytes;  // raw bytes per segment
};
// The arms, in a fixed order (an arm's index is what samples, tables and
// exported estimates carry): raw (the ladder alone), LZ4 batches at
// accelerations 16, 4, 1, and one zstd stream at levels 1, 3, 6, 9, 12, 15,
// 19 (the dense ones pay only on slow links).
std::span<const selector_arm> selector_arms();
inline constexpr std::size_t kArmCount = 11;
int find_arm(std::string_view name);  // -1 when unknown
inline constexpr std::size_t kExploreBatchBytes = 64 * 1024;

struct selector_sample {
  std::uint8_t cls = 0;
  std::uint8_t arm = 0;
  std::uint8_t explored = 0;     // an exploration segment
  std::uint8_t ref_arm = 0;      // exploration: the arm in use, run on the same batch (ref_wire != 0)
  std::uint16_t stream = 0;
  std::uint32_t pages = 0;       // pages encoded in the segment (zero pages included)
  std::uint32_t raw_bytes = 0;   // ladder records it became, before the codec
  std::uint32_t wire_bytes = 0;  // bytes sent for them (the codec's output)
  std::uint32_t ref_wire = 0;      // exploration: what ref_arm made of the same batch (0: not run)
  std::uint64_t cycles = 0;        // TSC cycles spent on it, all told
  std::uint64_t codec_cycles = 0;  // of which in the codec
  std::uint64_t ref_cycles = 0;    // exploration: ref_arm's codec cycles on the same batch
};

// Single-producer single-consumer ring of samples. push() never blocks.
class sample_ring {
public:
  explicit sample_ring(std::size_t capacity = 1024);  // rounded up to a power of two
  bool push(const selector_sample &s) noexcept;       // false (and counted) when full
  std::size_t drain(std::span<selector_sample> out) noexcept;
  std::uint64_t pushed() const noexcept { return pushed_.load(std::memory_order_relaxed); }
  std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }

private:
  std::unique_ptr<selector_sample[]> buf_;
  std::size_t mask_;
  alignas(64) std::atomic<std::uint64_t> head_{0};  // producer writes
  alignas(64) std::atomic<std::uint64_t> tail_{0};  // consumer writes
  alignas(64) std::atomic<std::uint64_t> pushed_{0}, dropped_{0};
};

struct class_decision {
  std::uint8_t arm = 1;          // what to use
  std::uint8_t explore_arm = 1;  // what to try now and then
  std::uint16_t explore_every = 0;  // one segment in this many explores; 0: never
  std::uint8_t mix_arm = 1;      // a second arm for mix_256/256 of the segments (balances CPU and link)
  std::uint8_t mix_256 = 0;
};
struct decision_table {
  std::uint64_t version = 0;
  std::array<class_decision, kClassCount> cls{};
};

// What an encoder needs to take part: where its samples go and where it
// reads decisions. The table pointer is read under the caller's RCU read
// side (a gateway worker is online in the live config's QSBR).
struct selector_port {
  sample_ring *samples = nullptr;
  const std::atomic<const decision_table *> *table = nullptr;
};

// The cost of a segment splits into the ladder's part, which depends on the
// data but not on the arm (records per page and cycles per page, shared by
// every arm of a class), and the codec's part, which is a property of the
// arm on that kind of data (output per input byte, cycles per input byte).
// Arms are compared on their codec parts, and an exploration batch is also
// compressed (not sent) by the arm in use: the explored arm's figures are
// taken relative to it on the same bytes (a paired comparison), so an arm
// tried on a few batches is not judged by how compressible those few pages
// happened to be. That shadow run costs what the arm in use costs, cheap
// exactly when CPU is what limits.
//
// Codec figures follow a log-additive model: log ratio = content level +
// arm effect (and the same for codec cycles per byte). The arm in use
// tracks the content level; paired explorations measure the effects as
// differences on the same bytes. The estimate of any arm is then
// exp(level now + its effect): arms tried long ago follow the data too.
// The raw arm has ratio 1 and no codec cycles by definition.
struct ladder_estimate {
  double raw_per_page = 0;     // ladder record bytes per page
  double cycles_per_page = 0;  // cycles per page outside the codec
  double pages = 0;
  // Content level (log): short and long averages, and whether known.
  double level_ratio = 0, level_cpb = 0, long_ratio = 0, long_cpb = 0;
  bool level_known = false, cpb_known = false;
};
struct arm_estimate {
  double effect_ratio = 0, effect_cpb = 0;  // log, relative to the content level
  bool cpb_known = false;      // effect_cpb measured
  bool cpb_first = false;      // ... on the first segment only (it pays set-up: replaced by the next)
  double ratio = 0;            // wire bytes per ladder byte, now (derived)
  double cycles_per_byte = 0;  // codec cycles per ladder byte, now (derived)
  double raw_bytes = 0;        // ladder bytes seen (for the averages' weights)
  double bytes_per_page = 0, cycles_per_page = 0;  // with the class's ladder (at the last decide)
  std::uint64_t samples = 0;
  std::uint64_t chosen = 0;    // segments run as the decision
  std::uint64_t explored = 0;  // segments run as exploration
  std::uint64_t last_sample = 0;  // learner's sample count when last seen
};

class selector_learner {
public:
  // hz: TSC cycles per second.
  explicit selector_learner(double hz);

  // The link the choice is for (bytes/s, all workers together; 0: unknown,
  // CPU alone decides) and how many workers encode.
  void set_link(double bytes_per_s);
  void set_workers(unsigned workers);
  double link() const { return link_; }
  unsigned workers() const { return workers_; }

  // One sample.
  void add(const selector_sample &s);
  // Drain a ring into the estimates; returns how many samples were read.
  // seen, when given, is shown each sample too (the gateway sums them for
  // the fleet's shared statistics).
  std::size_t drain(sample_ring &ring, const std::function<void(const selector_sample &)> &seen = {});
  // Recompute the decisions; true when the table changed.
  bool decide();
  const decision_table &table() const { return table_; }

  // Modelled pages/s of the current decision (0 before any sample).
  double goodput() const { return goodput_; }
  const arm_estimate &estimate(page_class c, unsigned arm) const {
    return est_[static_cast<std::size_t>(c)][arm];
  }
  double class_share(page_class c) const;
  std::uint64_t samples() const { return samples_; }
  std::uint64_t restarts() const { return restarts_; }

  const ladder_estimate &ladder(page_class c) const { return ladder_[static_cast<std::size_t>(c)]; }

  // Fold in an arm's effects learned elsewhere (another gateway, a previous
  // run; effects are relative, so they travel between data sets): an arm
  // this learner has not sampled takes them, as if sampled (no exploration
  // spent on it); a sampled one a mix weighted by ladder bytes. Samples are
  // not counted twice: imported figures only seed or nudge the averages.
  void merge(page_class c, unsigned arm, double effect_ratio, double effect_cpb, double raw_bytes);

private:
  void refresh_derived();
  void start_table();
  bool usable(std::size_t c, unsigned a) const;
  std::array<std::array<arm_estimate, kArmCount>, kClassCount> est_{};
  std::array<ladder_estimate, kClassCount> ladder_{};
  std::array<double, kClassCount> class_pages_{};  // recent pages per class
  std::array<unsigned, kClassCount> stable_{};     // exploration periods without change
  std::array<std::uint64_t, kClassCount> class_samples_{}, step_at_{};
  std::array<bool, kClassCount> changed_{};        // data change seen since decide()
  decision_table table_{};
  double hz_, link_ = 0, goodput_ = 0;
  unsigned workers_ = 1;
  std::uint64_t samples_ = 0, restarts_ = 0;
  bool link_changed_ = false;
};

// Encoder-side choice for one segment: which arm, and is it exploration.
// counter is the encoder's per-class segment count.
inline unsigned pick_arm(const class_decision &d, std::uint64_t counter, bool &explore) {
  explore = d.explore_every != 0 && counter % d.explore_every == d.explore_every - 1u;
  if (explore)
    return d.explore_arm;
  // The mix, spread evenly: segment k takes mix_arm when k * share crosses
  // a multiple of 256.
  const bool mix = ((counter + 1) * d.mix_256) >> 8 != (counter * d.mix_256) >> 8;
  return mix ? d.mix_arm : d.arm;
}

}  // namespace hde
