// main.cpp — hde-estimate: what would migrating this memory trace cost?
//   hde-estimate [--mode datacenter|internet|hybrid] [--codec NAME] [--cache-mb N]
//                [--mtu N] [--reference] [--json] TRACE_DIR | IMAGE0 IMAGE1 ...
#include <CLI/CLI.hpp>
#include <cstdio>

#include "estimate.h"

using namespace hde;

int main(int argc, char **argv) {
  estimate::options opt;
  std::string mode_s = "datacenter";
  bool quiet = false;
  CLI::App app{"hde-estimate: replay a VM memory trace through the HDE encoder and decoder, "
               "verify the rebuilt image and report what would cross the link."};
  app.add_option("--mode", mode_s, "datacenter | internet | hybrid")->capture_default_str();
  app.add_option("--codec", opt.codec, "force the batch codec: raw, lz4[:accel], zstd[:1-19], igzip[:0-3] (not with hybrid)");
  app.add_option("--cache-mb", opt.cache_mb,
                 "baseline cache per stream, MiB (default: the guest's RAM, 256 to 4096)")
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("--mtu", opt.mtu, "link MTU (frames are MTU - 28 bytes of UDP payload)")
      ->capture_default_str()->check(CLI::Range(156, 65535));
  std::string rates_s = "1000", schedule_s;
  app.add_option("--link-mbps", rates_s,
                 "link rate(s) in Mbit/s, e.g. 100 or 10,100,1000: the modelled migration time and goodput at "
                 "each; hybrid mode's selector optimises for the first")
      ->capture_default_str();
  app.add_option("--link-schedule", schedule_s,
                 "a link that changes during the migration: RATE:SHARE%,... over the guest bytes moved, "
                 "e.g. 1000:30%,50:40%,1000 (the last piece takes the rest)");
  app.add_option("--workers", opt.workers, "worker (and decode) lcores the model assumes")
      ->capture_default_str()->check(CLI::Range(1, 256));
  app.add_flag("--reference", opt.reference,
               "also compute QEMU-style reference figures (XBZRLE, multifd zstd, per-page LZ4)");
  app.add_flag("--json", opt.json, "print one JSON document on stdout");
  app.add_flag("-q,--quiet", quiet, "no progress lines on stderr");
  app.add_option("inputs", opt.inputs, "trace directory (manifest.json) or raw images in order")
      ->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError &e) {
    const int rc = app.exit(e);  // prints help or the error
    return rc == 0 ? 0 : 2;      // every argument error exits 2
  }
  if (!opt.codec.empty() && !parse_codec(opt.codec)) {
    std::fprintf(stderr, "hde-estimate: bad --codec '%s' (raw, lz4[:accel], zstd[:1-19], igzip[:0-3])\n",
                 opt.codec.c_str());
    return 2;
  }
  opt.cache_auto = app.count("--cache-mb") == 0;
  {
    std::string err;
    if (!estimate::parse_link_rates(rates_s, opt.link_rates, err)) {
      std::fprintf(stderr, "hde-estimate: --link-mbps: %s\n", err.c_str());
      return 2;
    }
    opt.link_mbps = opt.link_rates[0];
    if (!schedule_s.empty() && !estimate::parse_link_schedule(schedule_s, opt.link_schedule, err)) {
      std::fprintf(stderr, "hde-estimate: --link-schedule: %s\n", err.c_str());
      return 2;
    }
    opt.link_schedule_spec = schedule_s;
  }
  if (!parse_mode(mode_s, opt.m)) {
    std::fprintf(stderr, "hde-estimate: bad --mode '%s' (datacenter, internet, hybrid)\n", mode_s.c_str());
    return 2;
  }
  if (opt.m == mode::hybrid && !opt.codec.empty()) {
    std::fprintf(stderr, "hde-estimate: --codec cannot be used with --mode hybrid (its selector picks the codec "
                 "for every batch)\n");
    return 2;
  }
  opt.progress = !quiet;

  estimate::run_result res;
  res.input = opt.inputs.size() == 1 ? opt.inputs[0] : opt.inputs[0] + " ...";
  std::string err;
  if (!estimate::replay(opt, res, err)) {
    std::fprintf(stderr, "hde-estimate: %s\n", err.c_str());
    return 1;
  }
  if (opt.reference) {
    if (!estimate::compute_reference(opt, res.ref, err)) {
      std::fprintf(stderr, "hde-estimate: reference: %s\n", err.c_str());
      return 1;
    }
    res.has_reference = true;
  }
  if (opt.json)
    estimate::print_json(res);
  else
    estimate::print_text(res);
  return res.total.verified ? 0 : 1;
}
