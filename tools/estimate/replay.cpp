// replay.cpp — the migration replay behind hde-estimate: walk the rounds,
// encode the offered pages, decode the frames into a second image, verify.
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <lz4.h>
#include <cstring>
#include <memory>

#include "engine/decoder.h"
#include "estimate.h"
#include "page/hash.h"
#include "trace/trace.h"
#include "wire/format.h"

namespace hde::estimate {

namespace {

// Timings are CPU time of this thread: what one core spends, unaffected by
// other work on the machine preempting it (a shared 2-core box is noisy).
double cpu_now() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Both timed passes start with cold caches, as pages a hypervisor hands over
// would be: this walks a buffer larger than any last-level cache.
void evict_caches() {
  static std::vector<std::uint64_t> junk((64u << 20) / 8);
  for (std::size_t i = 0; i < junk.size(); i += 8)
    junk[i] += i;
  asm volatile("" : : "r"(junk.data()) : "memory");
}

// Plain per-page LZ4 (LZ4_compress_default) over the same pages, timed the
// same way right after the encoder: the speed reference of the targets.
double time_lz4_reference(const std::vector<page_in> &pages) {
  static thread_local std::vector<char> out(static_cast<std::size_t>(LZ4_compressBound(kPageSize)));
  evict_caches();
  const double t0 = cpu_now();
  std::uint64_t sink = 0;
  for (const page_in &p : pages)
    sink += static_cast<std::uint64_t>(LZ4_compress_default(reinterpret_cast<const char *>(p.data), out.data(),
                                                            static_cast<int>(kPageSize),
                                                            static_cast<int>(out.size())));
  const double t = cpu_now() - t0;
  asm volatile("" : : "r"(sink));
  return t;
}

// Frames of one round, kept in large chunks so that no frame moves.
class frame_store final : public frame_output {
public:
  explicit frame_store(std::size_t max_frame) : max_frame_(max_frame) {}
  // Allocates and touches chunks for at least `bytes` of frames before a
  // timed pass: the encoder's time must not include the kernel faulting in
  // fresh memory for the tool's frame store (a gateway writes frames into
  // mbufs it has used before). Chunks are kept for later rounds.
  void reserve(std::size_t bytes) {
    while ((chunks_.size() - next_chunk_) * (kChunk - max_frame_) < bytes) {
      chunks_.push_back(std::make_unique<std::byte[]>(kChunk));  // value-initialised: touched
    }
  }
  bytes_buf acquire() override {
    if (cur_ == nullptr || used_ + max_frame_ > kChunk) {
      if (next_chunk_ == chunks_.size())
        chunks_.push_back(std::make_unique<std::byte[]>(kChunk));
      cur_ = chunks_[next_chunk_++].get();
      used_ = 0;
    }
    return {cur_ + used_, max_frame_};
  }
  void commit(bytes_buf frame, std::size_t len) override {
    frames_.push_back({frame.data(), len});
    used_ += len;
  }
  const std::vector<bytes_view> &frames() const { return frames_; }
  void clear() {  // keep the chunks for the next round
    frames_.clear();
    next_chunk_ = 0;
    cur_ = nullptr;
  }

private:
  static constexpr std::size_t kChunk = 64u << 20;
  std::size_t max_frame_;
  std::vector<std::unique_ptr<std::byte[]>> chunks_;
  std::size_t next_chunk_ = 0, used_ = 0;
  std::byte *cur_ = nullptr;
  std::vector<bytes_view> frames_;
};

// The destination's memory: one image, written by the decoder.
class image_sink final : public page_sink {
public:
  explicit image_sink(std::uint64_t bytes)
      : bytes_(bytes), img_(std::make_unique<std::byte[]>(bytes)) {
    std::memset(img_.get(), 0x5a, bytes);  // any page never written shows up
  }
  error put_page(page_key key, const std::byte *page) override {
    if (key.vm != 0 || key.gfn >= bytes_ / kPageSize)
      return error::bad_input;
    std::memcpy(img_.get() + key.gfn * kPageSize, page, kPageSize);
    return error::ok;
  }
  error put_zero(std::uint32_t vm, std::uint64_t gfn, std::uint32_t count) override {
    if (vm != 0 || gfn >= bytes_ / kPageSize || count > bytes_ / kPageSize - gfn)
      return error::bad_input;
    std::memset(img_.get() + gfn * kPageSize, 0, std::size_t(count) * kPageSize);
    return error::ok;
  }
  const std::byte *data() const { return img_.get(); }

private:
  std::uint64_t bytes_;
  std::unique_ptr<std::byte[]> img_;
};

}  // namespace

bool walk_rounds(const options &opt, round_fn fn, std::uint64_t &ram_bytes, std::string &err) {
  auto tr = trace_reader::open(opt.inputs, err);
  if (!tr)
    return false;
  ram_bytes = tr->ram_bytes();
  const std::uint64_t npages = tr->page_count();
  const std::byte *prev = nullptr;
  std::vector<std::uint64_t> gfns;
  gfns.reserve(npages);
  for (std::size_t i = 0; i < tr->snapshot_count(); ++i) {
    if (opt.progress)
      std::fprintf(stderr, "\r[hde-estimate] loading snapshot %zu/%zu ...", i + 1,
                   tr->snapshot_count());
    const std::byte *cur = tr->load(i, err);
    if (cur == nullptr)
      return false;
    gfns.clear();
    for (std::uint64_t g = 0; g < npages; ++g)
      if (prev == nullptr || std::memcmp(prev + g * kPageSize, cur + g * kPageSize, kPageSize) != 0)
        gfns.push_back(g);
    if (opt.progress)
      std::fprintf(stderr, "\r[hde-estimate] round %zu/%zu: %zu pages          \n", i + 1,
                   tr->snapshot_count(), gfns.size());
    if (!fn(static_cast<std::uint32_t>(i), cur, gfns, tr->info(i).raw_sha256))
      return false;
    prev = cur;
  }
  return true;
}

bool replay(const options &opt, run_result &out, std::string &err) {
  encoder_config cfg = encoder_config::for_mode(opt.m);
  if (!opt.codec.empty()) {  // checked by main()
    auto c = parse_codec(opt.codec);
    if (!c) {
      err = "bad --codec '" + opt.codec + "'";
      return false;
    }
    cfg.codec() = *c;
  }
  cfg.cache_bytes = opt.cache_mb << 20;
  cfg.link_bytes_per_s = opt.link_mbps * 1e6 / 8;
  cfg.max_frame = wire::frame_size_for_mtu(opt.mtu);
  out.cfg = cfg;
  out.opt = opt;

  frame_store frames(cfg.max_frame);
  std::unique_ptr<encoder> enc;
  std::unique_ptr<image_sink> sink;
  std::unique_ptr<decoder> dec;
  std::vector<page_in> burst;
  encoder_stats before{};
  std::uint64_t ram = 0;
  std::string expected;  // sha256 of the last source image

  // A link schedule: its pieces end at shares of the guest bytes moved, so
  // the total must be known first (a pass that only counts pages).
  const auto &sched = opt.link_schedule;
  std::uint64_t total_raw = 0, raw_done = 0;
  std::size_t piece = 0;
  double piece_end = 0;
  if (!sched.empty()) {
    options count = opt;
    count.progress = false;
    std::uint64_t ram_c = 0;
    if (!walk_rounds(count, [&](std::uint32_t, const std::byte *, const std::vector<std::uint64_t> &g,
                                const std::string &) {
          total_raw += g.size() * kPageSize;
          return true;
        }, ram_c, err))
      return false;
    piece_end = sched[0].second * static_cast<double>(total_raw);
    cfg.link_bytes_per_s = sched[0].first * 1e6 / 8;
  }
  // The open cell (round, piece): where its costs started.
  double cell_t0 = 0;
  std::uint64_t cell_raw0 = 0, cell_wire0 = 0;
  auto wire_now = [&] {
    const encoder_stats &s = enc->stats();
    return s.frame_bytes + s.frames * wire::kL2L4Overhead;
  };
  auto close_cell = [&](std::uint32_t r) {
    const double t = cpu_now();
    run_result::cell c;
    c.round = r;
    c.piece = piece;
    c.raw_bytes = raw_done - cell_raw0;
    c.wire_bytes = wire_now() - cell_wire0;
    c.encode_s = t - cell_t0;
    if (c.raw_bytes != 0 || c.wire_bytes != 0)
      out.cells.push_back(c);
    cell_raw0 = raw_done;
    cell_wire0 = wire_now();
    cell_t0 = cpu_now();
  };

  auto on_round = [&](std::uint32_t r, const std::byte *img, const std::vector<std::uint64_t> &gfns,
                      const std::string &sha) {
    if (!enc) {  // set-up (cache and mirror allocation) is not part of encode time
      if (opt.cache_auto) {
        out.opt.cache_mb = default_cache_mb(ram, 1);
        cfg.cache_bytes = out.opt.cache_mb << 20;
        out.cfg = cfg;
      }
      enc = std::make_unique<encoder>(cfg, frames);
      sink = std::make_unique<image_sink>(ram);
      dec = std::make_unique<decoder>(decoder_config{}, *sink);
      // The opening INIT frame sizes the receiver's mirror: set-up, not timed.
      for (bytes_view f : frames.frames())
        if (error e = dec->on_frame(f); e != error::ok) {
          err = "stream start: decode failed: " + std::string(to_string(e));
          return false;
        }
      frames.clear();
    }
    round_result rr;
    rr.index = r;
    rr.pages = gfns.size();
    rr.raw_bytes = gfns.size() * kPageSize;
    burst.resize(gfns.size());
    for (std::size_t i = 0; i < gfns.size(); ++i)
      burst[i] = page_in{{0, gfns[i]}, img + gfns[i] * kPageSize};

    // A round is encoded in segments of at most kSegment pages, each
    // segment's frames decoded before the next is encoded, so that the frame
    // store stays bounded on large guests. Frames of a segment are at most
    // its raw pages plus headers (a page that does not compress travels
    // raw): that much store is made ready (touched) before any timing, as a
    // gateway writes into mbufs it has used before. Between segments the
    // encoder flushes (one short frame and batch per segment); a round of up
    // to kSegment pages runs exactly as one pass.
    constexpr std::size_t kSegment = 65536, kBurst = 32;
    {
      // Worst case: every page raw, split over frames that each carry at
      // least `room` bytes of it (headers of frame, record and fragment off).
      const std::size_t room = cfg.max_frame - wire::kFrameHeaderSize - 2 * wire::kRecordHeaderSize - 8;
      const std::size_t bytes = std::min(burst.size(), kSegment) * (kPageSize + 64);
      frames.reserve((bytes / room + 64) * cfg.max_frame);
    }
    auto decode_frames = [&]() -> bool {
      const double d0 = cpu_now();
      for (bytes_view f : frames.frames()) {
        if (error e = dec->on_frame(f); e != error::ok) {
          err = "round " + std::to_string(r) + ": decode failed: " + std::string(to_string(e));
          return false;
        }
      }
      rr.decode_s += cpu_now() - d0;
      frames.clear();
      return true;
    };
    for (std::size_t seg = 0; seg < burst.size() || seg == 0; seg += kSegment) {
      const std::size_t end = std::min(burst.size(), seg + kSegment);
      evict_caches();  // each segment starts cold, as the round does
      const double t0 = cpu_now();
      if (!sched.empty()) {
        cell_t0 = t0;
        cell_wire0 = wire_now();
        cell_raw0 = raw_done;
      }
      for (std::size_t i = seg; i < end; i += kBurst) {
        if (!sched.empty() && piece + 1 < sched.size() && static_cast<double>(raw_done) >= piece_end) {
          close_cell(r);  // the link changes here
          ++piece;
          piece_end += sched[piece].second * static_cast<double>(total_raw);
          enc->set_link_rate(sched[piece].first * 1e6 / 8);
        }
        const std::size_t k = std::min(kBurst, end - i);
        enc->encode(burst.data() + i, k);
        raw_done += k * kPageSize;
      }
      if (end == burst.size())
        enc->mark_round(0, r, gfns.size(), false);
      else
        enc->flush();
      if (!sched.empty())
        close_cell(r);
      rr.encode_s += cpu_now() - t0;
      if (end == burst.size())
        break;
      if (!decode_frames())
        return false;
    }
    rr.lz4_s = time_lz4_reference(burst);
    if (!decode_frames())
      return false;

    const encoder_stats &s = enc->stats();
    rr.frames = s.frames - before.frames;
    rr.wire_bytes = (s.frame_bytes - before.frame_bytes) + rr.frames * wire::kL2L4Overhead;
    for (std::size_t k = 0; k < kRungCount; ++k) {
      rr.rung_pages[k] = s.rung_pages[k] - before.rung_pages[k];
      rr.rung_bytes[k] = s.rung_bytes[k] - before.rung_bytes[k];
    }
    before = s;

    // Whole-image check after every round.
    rr.verified = hash_bytes({sink->data(), ram}) == hash_bytes({img, ram});
    out.rounds.push_back(rr);
    expected = sha.empty() ? sha256_hex(img, ram) : sha;
    if (!rr.verified) {
      err = "round " + std::to_string(r) + ": rebuilt image differs from the source";
      return false;
    }
    return true;
  };

  bool ok = walk_rounds(opt, on_round, ram, err);
  if (!enc) {
    if (err.empty())
      err = "trace has no snapshots";
    return false;
  }
  // Totals.
  round_result &t = out.total;
  for (const auto &rr : out.rounds) {
    t.pages += rr.pages;
    t.raw_bytes += rr.raw_bytes;
    t.wire_bytes += rr.wire_bytes;
    t.frames += rr.frames;
    t.encode_s += rr.encode_s;
    t.decode_s += rr.decode_s;
    t.lz4_s += rr.lz4_s;
    for (std::size_t k = 0; k < kRungCount; ++k) {
      t.rung_pages[k] += rr.rung_pages[k];
      t.rung_bytes[k] += rr.rung_bytes[k];
    }
  }
  t.verified = ok && !out.rounds.empty();
  for (const auto &rr : out.rounds)
    t.verified = t.verified && rr.verified;
  out.enc = enc->stats();
  out.dec = dec->stats();
  if (const selector_learner *l = enc->own_learner()) {
    for (std::size_t c = 0; c < kClassCount; ++c) {
      const class_decision &d = l->table().cls[c];
      const auto cls = static_cast<page_class>(c);
      char b[160];
      std::snprintf(b, sizeof b, "%s%s %.0f%% -> %s (explore %s 1/%u)", c ? ", " : "", class_name(cls),
                    100 * l->class_share(cls), selector_arms()[d.arm].name, selector_arms()[d.explore_arm].name,
                    unsigned(d.explore_every));
      out.selector_final += b;
      for (unsigned a = 0; a < kArmCount; ++a) {
        const arm_estimate &e = l->estimate(cls, a);
        if (e.samples != 0)
          out.selector_estimates.push_back({class_name(cls), selector_arms()[a].name, e.bytes_per_page,
                                            e.cycles_per_page, e.samples, e.chosen, e.explored});
      }
    }
  }
  if (ok) {
    out.final_sha256 = sha256_hex(sink->data(), ram);
    out.expected_sha256 = expected;
    if (expected != out.final_sha256) {
      t.verified = false;
      err = "final image sha256 " + out.final_sha256 + " differs from the source's " + expected;
      return false;
    }
  }
  return ok;
}

}  // namespace hde::estimate
