// report.cpp — hde-estimate's text and JSON reports.
#include <cstdio>
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

}  // namespace

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
  j["final_sha256"] = r.final_sha256;
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
  std::printf("rebuilt image sha256 %s: %s\n", r.final_sha256.c_str(),
              r.total.verified ? "matches the source" : "DOES NOT MATCH");
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
