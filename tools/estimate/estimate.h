// estimate.h — hde-estimate: replay a migration over a memory trace offline,
// encode and decode every round, verify the rebuilt image, and report what
// would cross the link. Shared between the tool's files.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/encoder.h"
#include "engine/stats.h"

namespace hde::estimate {

struct options {
  mode m = mode::datacenter;
  std::string codec;  // empty: the mode's default
  std::size_t cache_mb = 256;
  // No --cache-mb: size the cache to the guest (default_cache_mb).
  bool cache_auto = true;
  std::size_t mtu = 1500;
  double link_mbps = 1000;  // hybrid mode: link rate the selector optimises for (the first of link_rates)
  // The links to model migration time on (--link-mbps R[,R...]), and a link
  // that changes during the migration (--link-schedule): (rate, share of the
  // pages) pieces in order, shares summing to 1.
  std::vector<double> link_rates{1000};
  std::vector<std::pair<double, double>> link_schedule;
  std::string link_schedule_spec;
  unsigned workers = 1;     // worker lcores (and decode lcores) the model assumes
  bool json = false;
  bool reference = false;  // also compute the QEMU-style reference figures
  bool progress = true;
  std::vector<std::string> inputs;
};

struct round_result {
  std::uint32_t index = 0;
  std::uint64_t pages = 0;       // pages offered
  std::uint64_t raw_bytes = 0;   // 4096 x pages
  std::uint64_t wire_bytes = 0;  // frames incl. HDE and Ethernet/IPv4/UDP headers
  std::uint64_t frames = 0;
  double encode_s = 0, decode_s = 0;  // CPU seconds of one core
  double lz4_s = 0;  // CPU seconds of plain per-page LZ4 over the same pages
  std::array<std::uint64_t, kRungCount> rung_pages{}, rung_bytes{};
  bool verified = false;
};

struct reference_result {
  std::uint64_t xbzrle_wire = 0;        // QEMU precopy + XBZRLE, unbounded cache
  std::uint64_t multifd_zstd_wire = 0;  // QEMU multifd, zstd level 1, 128-page packets
  std::uint64_t lz4_wire = 0;           // plain per-page LZ4 (8-byte header per page)
};

struct run_result {
  std::string input;
  options opt;
  encoder_config cfg;
  std::vector<round_result> rounds;
  round_result total;
  encoder_stats enc;
  decoder_stats dec;
  std::string final_sha256;
  std::string expected_sha256;
  bool has_reference = false;
  reference_result ref;
  // With --link-schedule: what each (round, piece of the schedule) really
  // cost, measured at the piece boundaries during the replay (hybrid's
  // selector sees the link change there), for an exact schedule model.
  struct cell {
    std::uint32_t round = 0;
    std::size_t piece = 0;
    std::uint64_t raw_bytes = 0, wire_bytes = 0;
    double encode_s = 0;
  };
  std::vector<cell> cells;
  std::string selector_final;  // hybrid: the decision per class at the end
  struct arm_row {
    std::string cls, arm;
    double bytes_per_page, cycles_per_page;
    std::uint64_t samples, chosen, explored;
  };
  std::vector<arm_row> selector_estimates;  // hybrid: the learner's figures at the end
};

// Run the replay; returns false with err set on any failure (bad input,
// decode error, mismatch: mismatch also sets verified = false).
bool replay(const options &opt, run_result &out, std::string &err);

// Reference figures over the same rounds (computed in the same run).
bool compute_reference(const options &opt, reference_result &out, std::string &err);

// Modelled migration over a link: rounds one after another, each taking
// max(encode CPU s / workers, decode CPU s / workers, wire bits / rate).
struct link_model {
  double mbps = 0;            // 0: a schedule
  double seconds = 0;         // modelled migration time
  double goodput_mbps = 0;    // guest bytes moved per second (raw bytes x 8 / seconds / 1e6)
  double link_bound_s = 0;    // time the link was the bottleneck
  double cpu_bound_s = 0;     // ... the workers (encode or decode)
};
link_model model_link(const run_result &r, double mbps);
link_model model_schedule(const run_result &r, const std::vector<std::pair<double, double>> &schedule);
// "1000:30%,50:40%,1000" -> pieces; the last may omit its share (the rest).
bool parse_link_schedule(const std::string &spec, std::vector<std::pair<double, double>> &out, std::string &err);
bool parse_link_rates(const std::string &spec, std::vector<double> &out, std::string &err);

void print_text(const run_result &r);
void print_json(const run_result &r);

}  // namespace hde::estimate

#include <functional>

namespace hde::estimate {

// Walk the rounds of a trace: round 0 offers every page, round k the pages
// that differ from round k-1. fn gets the image and the offered gfns; it
// returns false to stop. Progress goes to stderr when enabled.
// sha256 is the manifest's digest of the image, or empty when unknown.
using round_fn = std::function<bool(std::uint32_t round, const std::byte *image,
                                    const std::vector<std::uint64_t> &gfns,
                                    const std::string &sha256)>;
bool walk_rounds(const options &opt, round_fn fn, std::uint64_t &ram_bytes, std::string &err);

}  // namespace hde::estimate
