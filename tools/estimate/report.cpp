// report.cpp — hde-estimate's text and JSON reports.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "estimate.h"

namespace hde::estimate {

namespace {

double mb_per_s(std::uint64_t bytes, double s) { return s > 0 ? bytes / s / 1e6 : 0.0; }
double ratio(std::uint64_t a, std::uint64_t b) { return b ? double(a) / double(b) : 0.0; }

nlohmann::json rungs_json(const round_result &r) {
  nlohmann::json j = nlohmann::json::object();
  for (std::size_t k = 0; k < kRungCount; ++k)
    j[rung_name(static_cast<rung>(k))] = {{"pages", r.rung_pages[k]}, {"wire_bytes", r.rung_bytes[k]}};
  return j;
}

nlohmann::json round_json(const round_result &r) {
  return {{"round", r.index},
          {"pages", r.pages},
          {"raw_bytes", r.raw_bytes},
          {"wire_bytes", r.wire_bytes},
          {"ratio", ratio(r.wire_bytes, r.raw_bytes)},
          {"frames", r.frames},
          {"encode_mb_per_s", mb_per_s(r.raw_bytes, r.encode_s)},
          {"lz4_encode_mb_per_s", mb_per_s(r.raw_bytes, r.lz4_s)},
          {"decode_mb_per_s", mb_per_s(r.raw_bytes, r.decode_s)},
          {"verified", r.verified},
          {"rungs", rungs_json(r)}};
}

nlohmann::json model_json(const link_model &m) {
  return {{"link_mbps", m.mbps}, {"seconds", m.seconds}, {"goodput_mbps", m.goodput_mbps},
          {"link_bound_s", m.link_bound_s}, {"cpu_bound_s", m.cpu_bound_s}};
}

// One round, or a share of it, over a link of `mbps`.
void add_piece(link_model &m, const round_result &x, double share, double mbps, unsigned workers) {
  const double cpu = std::max(x.encode_s, x.decode_s) * share / workers;
  const double link = static_cast<double>(x.wire_bytes) * share * 8 / (mbps * 1e6);
  m.seconds += std::max(cpu, link);
  (link >= cpu ? m.link_bound_s : m.cpu_bound_s) += std::max(cpu, link);
}

void finish(link_model &m, const run_result &r) {
  m.goodput_mbps = m.seconds > 0 ? static_cast<double>(r.total.raw_bytes) * 8 / m.seconds / 1e6 : 0;
}

}  // namespace

link_model model_link(const run_result &r, double mbps) {
  link_model m;
  m.mbps = mbps;
  for (const auto &x : r.rounds)
    add_piece(m, x, 1.0, mbps, r.opt.workers);
  finish(m, r);
  return m;
}

// The schedule's shares are of the guest bytes moved (raw bytes, round by
// round in order): a piece of a round that falls in a share goes at its rate.
link_model model_schedule(const run_result &r, const std::vector<std::pair<double, double>> &schedule) {
  link_model m;
  if (!r.cells.empty()) {  // measured per piece during the replay
    for (const auto &c : r.cells) {
      const round_result &x = r.rounds.at(c.round);
      const double share = x.raw_bytes ? static_cast<double>(c.raw_bytes) / static_cast<double>(x.raw_bytes) : 0;
      const double cpu = std::max(c.encode_s, x.decode_s * share) / r.opt.workers;
      const double link = static_cast<double>(c.wire_bytes) * 8 / (schedule.at(c.piece).first * 1e6);
      m.seconds += std::max(cpu, link);
      (link >= cpu ? m.link_bound_s : m.cpu_bound_s) += std::max(cpu, link);
    }
    finish(m, r);
    return m;
  }
  const double total = static_cast<double>(r.total.raw_bytes);
  double done = 0;  // raw bytes modelled so far
  std::size_t piece = 0;
  double piece_end = schedule.empty() ? total : schedule[0].second * total;
  for (const auto &x : r.rounds) {
    double left = static_cast<double>(x.raw_bytes);
    while (left > 0 && x.raw_bytes > 0) {
      while (piece + 1 < schedule.size() && done >= piece_end) {
        ++piece;
        piece_end += schedule[piece].second * total;
      }
      const double take = piece + 1 < schedule.size() ? std::min(left, std::max(piece_end - done, 1.0)) : left;
      add_piece(m, x, take / static_cast<double>(x.raw_bytes), schedule[piece].first, r.opt.workers);
      done += take;
      left -= take;
    }
  }
  finish(m, r);
  return m;
}

bool parse_link_rates(const std::string &spec, std::vector<double> &out, std::string &err) {
  out.clear();
  std::size_t i = 0;
  while (i <= spec.size()) {
    const std::size_t j = std::min(spec.find(',', i), spec.size());
    const std::string tok = spec.substr(i, j - i);
    char *end = nullptr;
    const double v = std::strtod(tok.c_str(), &end);
    if (tok.empty() || end == tok.c_str() || *end != '\0' || !(v >= 0.001 && v <= 1e7)) {
      err = "bad link rate '" + tok + "' (Mbit/s, 0.001 to 1e7)";
      return false;
    }
    out.push_back(v);
    i = j + 1;
  }
  return !out.empty();
}

bool parse_link_schedule(const std::string &spec, std::vector<std::pair<double, double>> &out, std::string &err) {
  out.clear();
  double sum = 0;
  std::size_t i = 0;
  while (i <= spec.size()) {
    const std::size_t j = std::min(spec.find(',', i), spec.size());
    const std::string tok = spec.substr(i, j - i);
    const std::size_t colon = tok.find(':');
    std::vector<double> rate;
    if (!parse_link_rates(tok.substr(0, colon), rate, err) || rate.size() != 1)
      return false;
    double share = -1;
    if (colon != std::string::npos) {
      std::string p = tok.substr(colon + 1);
      if (p.empty() || p.back() != '%') {
        err = "bad share '" + p + "' in --link-schedule (a percentage, e.g. 30%)";
        return false;
      }
      p.pop_back();
      char *end = nullptr;
      share = std::strtod(p.c_str(), &end) / 100;
      if (p.empty() || *end != '\0' || !(share > 0 && share <= 1)) {
        err = "bad share '" + tok.substr(colon + 1) + "' in --link-schedule";
        return false;
      }
    } else if (j != spec.size()) {
      err = "only the last piece of --link-schedule may leave out its share";
      return false;
    }
    if (share < 0)
      share = 1 - sum;
    sum += share;
    out.emplace_back(rate[0], share);
    i = j + 1;
  }
  if (sum > 1 + 1e-9 || sum < 1 - 1e-9 || out.back().second <= 0) {
    err = "the shares of --link-schedule must add up to 100 % (the last piece may take the rest)";
    return false;
  }
  return true;
}

// Hybrid mode: what the selector chose, per arm, and how much it explored.
nlohmann::json selector_json(const run_result &r) {
  nlohmann::json arms = nlohmann::json::object();
  std::uint64_t pages = 0;
  for (std::size_t a = 0; a < kArmCount; ++a)
    pages += r.enc.arm_pages[a];
  for (std::size_t a = 0; a < kArmCount; ++a)
    if (r.enc.arm_pages[a] != 0)
      arms[selector_arms()[a].name] = {{"pages", r.enc.arm_pages[a]},
                                       {"share", pages ? double(r.enc.arm_pages[a]) / double(pages) : 0.0}};
  nlohmann::json est = nlohmann::json::array();
  for (const auto &e : r.selector_estimates)
    est.push_back({{"class", e.cls}, {"arm", e.arm}, {"bytes_per_page", e.bytes_per_page},
                   {"cycles_per_page", e.cycles_per_page}, {"samples", e.samples}, {"chosen", e.chosen},
                   {"explored", e.explored}});
  return {{"segments", r.enc.segments},
          {"explored_segments", r.enc.explored_segments},
          {"explore_share", r.enc.segments ? double(r.enc.explored_segments) / double(r.enc.segments) : 0.0},
          {"arms", arms},
          {"final", r.selector_final},
          {"estimates", est}};
}

void print_json(const run_result &r) {
  nlohmann::json j;
  j["input"] = r.input;
  j["mode"] = mode_name(r.opt.m);
  j["page_codec"] = to_string(r.cfg.page_codec);
  j["batch_codec"] = r.cfg.batch ? to_string(r.cfg.batch_codec) : "none";
  j["cache_mb"] = r.opt.cache_mb;
  j["cache_auto"] = r.opt.cache_auto;
  j["mtu"] = r.opt.mtu;
  j["rounds"] = nlohmann::json::array();
  for (const auto &rr : r.rounds)
    j["rounds"].push_back(round_json(rr));
  j["total"] = round_json(r.total);
  j["total"].erase("round");
  nlohmann::json codecs = nlohmann::json::object();
  for (std::size_t c = 0; c < kCodecCount; ++c) {
    if (r.enc.codec_bytes_in[c] == 0)
      continue;
    codecs[std::string(codec_name(static_cast<codec_id>(c)))] = {
        {"pages", r.enc.codec_pages[c]},
        {"bytes_in", r.enc.codec_bytes_in[c]},
        {"bytes_out", r.enc.codec_bytes_out[c]},
        {"ratio", ratio(r.enc.codec_bytes_out[c], r.enc.codec_bytes_in[c])}};
  }
  j["codecs"] = codecs;
  j["delta"] = {{"xbzrle", r.enc.delta_xbzrle}, {"xor_codec", r.enc.delta_xor},
                {"rejected", r.enc.delta_rejected}};
  j["batches"] = {{"count", r.enc.batches}, {"raw_bytes", r.enc.batch_raw_bytes},
                  {"wire_bytes", r.enc.batch_wire_bytes}};
  if (r.enc.segments != 0)
    j["selector"] = selector_json(r);
  j["final_sha256"] = r.final_sha256;
  j["workers"] = r.opt.workers;
  j["links"] = nlohmann::json::array();
  for (double mbps : r.opt.link_rates)
    j["links"].push_back(model_json(model_link(r, mbps)));
  if (!r.opt.link_schedule.empty()) {
    nlohmann::json sj = model_json(model_schedule(r, r.opt.link_schedule));
    sj["schedule"] = r.opt.link_schedule_spec;
    sj.erase("link_mbps");
    j["link_schedule"] = sj;
  }
  if (r.has_reference) {
    const auto &f = r.ref;
    double lz4 = mb_per_s(r.total.raw_bytes, r.total.lz4_s);
    double enc = mb_per_s(r.total.raw_bytes, r.total.encode_s);
    double dec = mb_per_s(r.total.raw_bytes, r.total.decode_s);
    j["reference"] = {
        {"xbzrle_wire_bytes", f.xbzrle_wire},
        {"multifd_zstd_wire_bytes", f.multifd_zstd_wire},
        {"lz4_wire_bytes", f.lz4_wire},
        {"lz4_encode_mb_per_s", lz4},
        {"wire_vs_xbzrle", ratio(r.total.wire_bytes, f.xbzrle_wire)},
        {"wire_vs_multifd_zstd", ratio(r.total.wire_bytes, f.multifd_zstd_wire)},
        {"encode_vs_lz4", lz4 > 0 ? enc / lz4 : 0.0},
        {"decode_vs_encode", enc > 0 ? dec / enc : 0.0}};
  }
  std::printf("%s\n", j.dump(2).c_str());
}

void print_text(const run_result &r) {
  std::printf("hde-estimate: %s\n", r.input.c_str());
  std::printf("mode %s, page codec %s, batch codec %s, cache %zu MiB%s, MTU %zu\n\n",
              mode_name(r.opt.m), to_string(r.cfg.page_codec).c_str(),
              r.cfg.batch ? to_string(r.cfg.batch_codec).c_str() : "none", r.opt.cache_mb,
              r.opt.cache_auto ? " (sized to the guest)" : "", r.opt.mtu);
  std::printf("%5s %8s %8s %8s %8s %8s %12s %12s %6s %9s %9s %s\n", "round", "pages", "zero", "ref",
              "delta", "page", "raw MB", "wire MB", "ratio", "enc MB/s", "dec MB/s", "check");
  auto row = [](const char *label, const round_result &x) {
    std::printf("%5s %8llu %8llu %8llu %8llu %8llu %12.2f %12.2f %6.3f %9.0f %9.0f %s\n", label,
                (unsigned long long)x.pages, (unsigned long long)x.rung_pages[0],
                (unsigned long long)x.rung_pages[1], (unsigned long long)x.rung_pages[2],
                (unsigned long long)x.rung_pages[3], x.raw_bytes / 1e6, x.wire_bytes / 1e6,
                ratio(x.wire_bytes, x.raw_bytes), mb_per_s(x.raw_bytes, x.encode_s),
                mb_per_s(x.raw_bytes, x.decode_s), x.verified ? "ok" : "MISMATCH");
  };
  for (const auto &rr : r.rounds)
    row(std::to_string(rr.index).c_str(), rr);
  row("total", r.total);

  std::printf("\nwire bytes per rung:");
  for (std::size_t k = 0; k < kRungCount; ++k)
    std::printf("  %s %.2f MB", rung_name(static_cast<rung>(k)), r.total.rung_bytes[k] / 1e6);
  std::printf("\ncodecs:");
  for (std::size_t c = 0; c < kCodecCount; ++c)
    if (r.enc.codec_bytes_in[c])
      std::printf("  %s %.2f -> %.2f MB (%.3f)", std::string(codec_name(static_cast<codec_id>(c))).c_str(),
                  r.enc.codec_bytes_in[c] / 1e6, r.enc.codec_bytes_out[c] / 1e6,
                  ratio(r.enc.codec_bytes_out[c], r.enc.codec_bytes_in[c]));
  std::printf("\ndeltas: %llu xbzrle, %llu xor+codec, %llu rejected for a page\n",
              (unsigned long long)r.enc.delta_xbzrle, (unsigned long long)r.enc.delta_xor,
              (unsigned long long)r.enc.delta_rejected);
  std::printf("frames %llu (%llu fragments), batches %llu\n", (unsigned long long)r.total.frames,
              (unsigned long long)r.enc.frags, (unsigned long long)r.enc.batches);
  if (r.enc.segments != 0) {
    std::uint64_t pages = 0;
    for (std::size_t a = 0; a < kArmCount; ++a)
      pages += r.enc.arm_pages[a];
    std::printf("selector: %llu segments, %.1f %% explored; pages by arm:", (unsigned long long)r.enc.segments,
                100.0 * double(r.enc.explored_segments) / double(r.enc.segments));
    for (std::size_t a = 0; a < kArmCount; ++a)
      if (r.enc.arm_pages[a] != 0)
        std::printf(" %s %.1f%%", selector_arms()[a].name, 100.0 * double(r.enc.arm_pages[a]) / double(pages));
    std::printf("\nselector at the end: %s\n", r.selector_final.c_str());
    std::printf("  %-6s %-8s %10s %12s %8s %8s %8s\n", "class", "arm", "B/page", "cycles/page", "samples", "chosen",
                "explored");
    for (const auto &e : r.selector_estimates)
      std::printf("  %-6s %-8s %10.0f %12.0f %8llu %8llu %8llu\n", e.cls.c_str(), e.arm.c_str(), e.bytes_per_page,
                  e.cycles_per_page, (unsigned long long)e.samples, (unsigned long long)e.chosen,
                  (unsigned long long)e.explored);
  }
  std::printf("rebuilt image sha256 %s: %s\n", r.final_sha256.c_str(),
              r.total.verified ? "matches the source" : "DOES NOT MATCH");
  std::printf("\nmodelled migration, %u worker(s): each round takes max(encode or decode CPU / workers, "
              "wire bits / link rate)\n",
              r.opt.workers);
  std::printf("%12s %10s %14s %s\n", "link Mbit/s", "time s", "goodput Mbit/s", "bound by");
  auto model_row = [](const std::string &label, const link_model &m) {
    std::printf("%12s %10.2f %14.1f %s\n", label.c_str(), m.seconds, m.goodput_mbps,
                m.link_bound_s >= m.cpu_bound_s ? "link" : "CPU");
  };
  for (double mbps : r.opt.link_rates) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", mbps);
    model_row(b, model_link(r, mbps));
  }
  if (!r.opt.link_schedule.empty())
    model_row(r.opt.link_schedule_spec, model_schedule(r, r.opt.link_schedule));
  if (r.has_reference) {
    const auto &f = r.ref;
    double lz4 = mb_per_s(r.total.raw_bytes, r.total.lz4_s);
    double enc = mb_per_s(r.total.raw_bytes, r.total.encode_s);
    double dec = mb_per_s(r.total.raw_bytes, r.total.decode_s);
    std::printf("\nreference (same run): QEMU XBZRLE precopy %.2f MB, multifd zstd:1 %.2f MB, "
                "per-page LZ4 %.2f MB at %.0f MB/s\n",
                f.xbzrle_wire / 1e6, f.multifd_zstd_wire / 1e6, f.lz4_wire / 1e6, lz4);
    std::printf("wire/XBZRLE %.3f  wire/multifd-zstd %.3f  encode/LZ4 %.2fx  decode/encode %.2fx\n",
                ratio(r.total.wire_bytes, f.xbzrle_wire), ratio(r.total.wire_bytes, f.multifd_zstd_wire),
                lz4 > 0 ? enc / lz4 : 0.0, enc > 0 ? dec / enc : 0.0);
  }
}

}  // namespace hde::estimate
