// mode.cpp — the operating modes and their encoder defaults.
#include <string_view>

#include "engine/encoder.h"

namespace hde {

const char *mode_name(mode m) {
  switch (m) {
  case mode::datacenter: return "datacenter";
  case mode::internet: return "internet";
  case mode::hybrid: return "hybrid";
  }
  return "?";
}

bool parse_mode(std::string_view s, mode &out) {
  for (mode m : {mode::datacenter, mode::internet, mode::hybrid})
    if (s == mode_name(m)) {
      out = m;
      return true;
    }
  return false;
}

encoder_config encoder_config::for_mode(mode m) {
  encoder_config c;
  c.m = m;
  switch (m) {
  case mode::datacenter:
    // Fast links: the cheapest CPU path. XBZRLE deltas; records gathered in
    // 64 KiB batches (LZ4's window) compressed by LZ4 at acceleration 4:
    // on the dev trace that is both smaller (0.49 vs 0.55 of the XBZRLE
    // figure) and faster (1.46x vs 1.35x plain LZ4) than per-page LZ4:1.
    c.page_codec = {codec_id::lz4, 1};
    c.batch = true;
    c.batch_codec = {codec_id::lz4, 4};
    c.batch_bytes = 64 * 1024;
    c.xbzrle_budget = 2048;
    c.try_xor = false;
    break;
  case mode::internet:
    // Slow links: spend CPU for ratio. Records gathered into batches and
    // compressed by one zstd stream whose window spans batches. Level 3, not
    // 5: on a bulk round (every page first-time) level 5 runs at only ~0.2x
    // per-page LZ4 and below it when another core loads the shared cache;
    // level 3 (match tables ~768 KiB, within L2) holds ~0.32-0.38x loaded or
    // not, for ~3% more wire (dev trace 0.627 vs 0.605 of the multifd-zstd
    // figure). Levels 6+, larger hash or chain tables, long-distance matching
    // and other batch sizes gain at most ~3% on bulk pages.
    c.page_codec = {codec_id::zstd, 3};
    c.batch = true;
    c.batch_codec = {codec_id::zstd, 3};
    c.batch_bytes = 256 * 1024;
    c.xbzrle_budget = 3072;
    c.try_xor = false;
    break;
  case mode::hybrid:
    // The learning selector (selector.h) picks codec and batch size for
    // every batch; this is only where it starts.
    c.page_codec = {codec_id::lz4, 1};
    c.batch = true;
    c.batch_codec = {codec_id::lz4, 4};
    c.batch_bytes = 64 * 1024;
    c.xbzrle_budget = 2048;
    c.try_xor = false;
    break;
  }
  return c;
}

}  // namespace hde
