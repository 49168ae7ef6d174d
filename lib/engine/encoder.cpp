// encoder.cpp — the ladder, record assembly, batching and framing.
#include "engine/encoder.h"

#include <utility>

#include <algorithm>
#include <cstring>

#include <chrono>

#include "common/cycles.h"
#include "delta/xbzrle.h"
#include "engine/selector.h"
#include "page/hash.h"
#include "page/zero.h"
#include "wire/format.h"

namespace hde {

using namespace wire;

namespace {
// Record scratch: header + largest fixed body + a codec's worst case.
constexpr std::size_t kFixedMax = kRecordHeaderSize + 32;
constexpr std::size_t kMaxBatchBytes = 1u << 20;
// A frame with less room than this is closed rather than fragmenting into it.
constexpr std::size_t kMinFragRoom = kRecordHeaderSize + sizeof(frag_body) + 64;

template <typename T> std::byte *put(std::byte *p, const T &v) {
  std::memcpy(p, &v, sizeof v);
  return p + sizeof v;
}

// Pages arrive cold (guest memory this core has not touched), and the
// hardware prefetcher stops at every 4 KiB boundary: without help the first
// pass over a page (zero check, hash) waits on its lines one after another.
// Asking for all of the next page's lines while this one is encoded keeps
// them in flight together: ~5% off the encode time of a bulk round
// (snapshot 0 of the dev trace, datacenter mode).
void prefetch_page(const std::byte *page) {
  for (std::size_t off = 0; off < kPageSize; off += 64)
    __builtin_prefetch(page + off);
}
}  // namespace

struct encoder::impl {
  encoder_config cfg;
  frame_output &out;
  codec_set codecs;
  std::unique_ptr<baseline_cache> cache;
  encoder_stats st;

  // Open frame.
  bytes_buf frame{};
  std::size_t flen = 0;
  std::uint16_t nrec = 0;
  std::uint64_t seq = 0;

  // Record scratch and a page-sized temporary.
  std::unique_ptr<std::byte[]> rec;
  std::size_t rec_cap;
  alignas(64) std::byte tmp[kPageSize];

  // Batch of raw records, its compressed form, and per-rung raw bytes in it.
  std::unique_ptr<std::byte[]> batch_raw, batch_out;
  std::size_t batch_len = 0, batch_cap = 0, batch_out_cap = 0;
  std::array<std::uint64_t, kRungCount> batch_rung_raw{};
  std::uint64_t batch_pages = 0;  // page records (REF, DELTA, PAGE) in the open batch
  bool stream_fresh = true;  // next stream batch must carry kBatchFlagReset

  // Hybrid mode (selector.h). The port: samples out, decisions in; without
  // one from outside, a learner of our own run inline every few segments.
  struct own_selector {
    sample_ring ring{256};
    selector_learner learner{cycles_hz()};
    std::atomic<const decision_table *> table{nullptr};
    unsigned since_decide = 0;
  };
  std::unique_ptr<own_selector> own;
  selector_port port{};
  bool hybrid = false;
  unsigned arm = 0;
  bool exploring = false;
  page_class next_cls = page_class::bulk;  // predicted class of the open segment
  std::array<std::uint64_t, kClassCount> cls_segments{};
  // The open segment: pages, pages that had a baseline under their key,
  // non-zero pages, wire bytes, raw record bytes (raw arm: ends the
  // segment at seg_limit), cycles inside encode().
  std::uint32_t seg_pages = 0, seg_dirty = 0, seg_nonzero = 0;
  std::uint64_t seg_wire = 0, seg_raw = 0, seg_cycles = 0, seg_codec_cycles = 0;
  // Exploration: the arm in use, run on the explored batch too (not sent).
  unsigned ref_arm = 0;
  std::uint32_t ref_wire = 0;
  std::uint64_t ref_cycles = 0;
  std::unique_ptr<std::byte[]> shadow;  // its output (hybrid mode only)
  std::size_t seg_limit = 64 * 1024;
  std::uint64_t mark = 0;  // start of the untimed stretch inside encode()
  bool timing = false;     // inside encode(): cycles run
  grace_domain *grace = nullptr;  // readers of the baselines, if any
  // TSC to ns for the codec timings; calibrated here (the first call of
  // cycles_hz() sleeps 20 ms), never on the first batch of a worker.
  const double ns_per_cycle = 1e9 / cycles_hz();

  // Open run of zero pages.
  bool zr_open = false;
  std::uint32_t zr_vm = 0, zr_count = 0;
  std::uint64_t zr_gfn = 0;

  void clamp_config() {
    // A batch that is not compressed is only a copy: records go straight
    // into frames instead (the ladder alone, the fastest path).
    if (cfg.batch && cfg.batch_codec.id == codec_id::raw) {
      cfg.batch = false;
      cfg.page_codec = {codec_id::raw, 0};
      cfg.try_xor = false;
    }
    cfg.max_frame = std::clamp(cfg.max_frame, kMinFrameSize, kMaxFrameSize);
    cfg.batch_bytes = std::clamp<std::size_t>(cfg.batch_bytes, 16 * 1024, kMaxBatchBytes);
    cfg.xbzrle_budget = std::clamp<std::size_t>(cfg.xbzrle_budget, 64, kPageSize - 64);
  }

  impl(const encoder_config &c, frame_output &o)
      : cfg(c), out(o), cache(std::make_unique<baseline_cache>(c.cache_bytes)) {
    clamp_config();
    rec_cap = kFixedMax + codec_bound(kPageSize);
    rec = std::make_unique<std::byte[]>(rec_cap);
    // Sized for the largest batch, so that reconfigure() never allocates.
    batch_cap = kMaxBatchBytes + rec_cap;
    batch_raw = std::make_unique<std::byte[]>(batch_cap);
    batch_out_cap = kRecordHeaderSize + sizeof(batch_body) + codec_bound(batch_cap);
    batch_out = std::make_unique<std::byte[]>(batch_out_cap);
    // Hybrid's shadow runs (selector.h): here, so that a live switch to
    // hybrid does not allocate on the worker.
    shadow = std::make_unique<std::byte[]>(codec_bound(batch_cap));
    if (cfg.m == mode::hybrid)
      start_selector();
    emit_init();
  }

  void start_selector() {
    hybrid = true;
    if (port.table == nullptr) {  // no control thread: learn inline
      own = std::make_unique<own_selector>();
      own->learner.set_link(cfg.link_bytes_per_s);  // the prior picks the first arm
      own->table.store(&own->learner.table(), std::memory_order_release);
      port = {&own->ring, &own->table};
    }
    seg_pages = seg_dirty = seg_nonzero = 0;
    seg_wire = seg_raw = seg_cycles = seg_codec_cycles = 0;
    ref_wire = 0;
    ref_cycles = 0;
    choose_arm();
  }

  void stop_selector() {
    hybrid = false;
    if (own) {
      own.reset();
      port = {};
    }
  }

  void use_arm(unsigned a) {
    const selector_arm &A = selector_arms()[a];
    arm = a;
    cfg.batch = A.batch;
    if (A.batch)
      cfg.batch_codec = A.codec;
    else
      cfg.page_codec = A.codec;
    cfg.try_xor = false;
    // Exploration runs small batches: compared on the same bytes as the arm
    // in use, they need not be large, and a slow arm costs little to try.
    cfg.batch_bytes = exploring ? std::min(A.batch_bytes, kExploreBatchBytes) : A.batch_bytes;
    seg_limit = cfg.batch_bytes;
    clamp_config();
  }

  void choose_arm() {
    const decision_table *t = port.table->load(std::memory_order_acquire);
    if (t == nullptr)
      return use_arm(arm);
    const auto c = static_cast<std::size_t>(next_cls);
    ref_arm = t->cls[c].arm;
    use_arm(pick_arm(t->cls[c], cls_segments[c]++, exploring));
  }

  // An exploration batch, compressed by the arm in use as well (one-shot,
  // into scratch): the learner compares the two on the same bytes. Its
  // cycles are exploration's overhead, charged to neither arm.
  void shadow_run(bytes_view src) {
    const selector_arm &R = selector_arms()[ref_arm];
    if (ref_arm == arm)
      return;
    const std::uint64_t t0 = cycles_now();
    if (!R.batch || R.codec.id == codec_id::raw) {
      ref_wire = static_cast<std::uint32_t>(src.size());  // the raw arm sends the records as they are
    } else {
      auto r = codecs.compress(R.codec, src, {shadow.get(), codec_bound(batch_cap)});
      ref_wire = r.ok() ? static_cast<std::uint32_t>(std::min(r.value, src.size())) : static_cast<std::uint32_t>(src.size());
    }
    const std::uint64_t t1 = cycles_now();
    ref_cycles = R.batch ? t1 - t0 : 0;
    mark += t1 - t0;  // not this segment's cost
  }

  // The open segment is over: report it, pick the arm of the next.
  void end_segment() {
    if (timing) {  // the work since the last mark belongs to this segment
      const std::uint64_t now = cycles_now();
      seg_cycles += now - mark;
      mark = now;
    }
    if (seg_pages != 0) {
      selector_sample s;
      s.cls = static_cast<std::uint8_t>(seg_dirty * 2 > seg_nonzero ? page_class::dirty : page_class::bulk);
      s.arm = static_cast<std::uint8_t>(arm);
      s.explored = exploring;
      s.stream = cfg.stream;
      s.pages = seg_pages;
      s.wire_bytes = static_cast<std::uint32_t>(std::min<std::uint64_t>(seg_wire, 0xFFFFFFFFu));
      s.raw_bytes = static_cast<std::uint32_t>(std::min<std::uint64_t>(seg_raw, 0xFFFFFFFFu));
      s.cycles = seg_cycles;
      // Compression outside encode() (a batch closed by flush or a mark)
      // is not in seg_cycles: count only what is.
      s.codec_cycles = std::min(seg_codec_cycles, seg_cycles);
      s.ref_arm = static_cast<std::uint8_t>(ref_arm);
      s.ref_wire = exploring ? ref_wire : 0;
      s.ref_cycles = exploring ? ref_cycles : 0;
      port.samples->push(s);  // full: dropped and counted, never waited for
      next_cls = static_cast<page_class>(s.cls);
      ++st.segments;
      st.explored_segments += exploring;
      st.arm_pages[arm] += seg_pages;
    }
    seg_pages = seg_dirty = seg_nonzero = 0;
    seg_wire = seg_raw = seg_cycles = seg_codec_cycles = 0;
    ref_wire = 0;
    ref_cycles = 0;
    if (own) {
      own->learner.set_link(cfg.link_bytes_per_s);
      own->learner.drain(own->ring);
      // Like the control thread's 10 ms ticks, in segments; at every
      // segment while little is known.
      if (++own->since_decide >= (own->learner.samples() < 32 ? 1u : 16u)) {
        own->since_decide = 0;
        own->learner.decide();
      }
    }
    choose_arm();
  }

  // --- frames -----------------------------------------------------------------

  std::size_t room() const { return frame.empty() ? cfg.max_frame - kFrameHeaderSize : cfg.max_frame - flen; }

  void open_frame() {
    frame = out.acquire();
    flen = kFrameHeaderSize;
    nrec = 0;
  }

  void close_frame() {
    if (frame.empty())
      return;
    frame_header h{};
    h.magic = kMagic;
    h.version = kVersion;
    h.type = static_cast<std::uint8_t>(frame_type::data);
    h.stream = cfg.stream;
    h.epoch = cfg.epoch;
    h.record_count = nrec;
    h.payload_len = static_cast<std::uint16_t>(flen - kFrameHeaderSize);
    h.seq = seq++;
    std::memcpy(frame.data(), &h, sizeof h);
    seal_frame(frame.first(flen));
    out.commit(frame, flen);
    ++st.frames;
    st.frame_bytes += flen;
    frame = {};
  }

  // Copy bytes [off, off + len) of the record p[0..n) ++ tail[0..) to w.
  static void copy_range(std::byte *w, const std::byte *p, std::size_t n, const std::byte *tail, std::size_t off,
                         std::size_t len) {
    if (off < n) {
      const std::size_t a = std::min(len, n - off);
      std::memcpy(w, p + off, a);
      w += a;
      len -= a;
      off = n;
    }
    if (len != 0)
      std::memcpy(w, tail + (off - n), len);
  }

  // Append one whole record to the open frame: n bytes at p, then tail_n
  // bytes at tail (a PAGE record's page, copied once, straight from the guest).
  void frame_append(const std::byte *p, std::size_t n, const std::byte *tail = nullptr, std::size_t tail_n = 0) {
    if (frame.empty())
      open_frame();
    copy_range(frame.data() + flen, p, n, tail, 0, n + tail_n);
    flen += n + tail_n;
    ++nrec;
    if (nrec == 0xFFFF)
      close_frame();
  }

  // Send one serialized record, fragmenting it when it does not fit.
  // The record is p[0..n) followed by tail[0..tail_n).
  void send_record(const std::byte *p, std::size_t n, const std::byte *tail = nullptr, std::size_t tail_n = 0) {
    const std::size_t head_n = n;
    n += tail_n;
    if (n <= room()) {
      frame_append(p, head_n, tail, tail_n);
      return;
    }
    if (n <= cfg.max_frame - kFrameHeaderSize && room() < kMinFragRoom) {
      close_frame();
      frame_append(p, head_n, tail, tail_n);
      return;
    }
    std::size_t off = 0;
    while (off < n) {
      if (room() < kMinFragRoom)
        close_frame();
      std::size_t chunk = std::min(n - off, room() - kRecordHeaderSize - sizeof(frag_body));
      if (frame.empty())
        open_frame();
      std::byte *w = frame.data() + flen;
      w = put(w, record_header{static_cast<std::uint8_t>(record_type::frag), 0, 0,
                               static_cast<std::uint32_t>(sizeof(frag_body) + chunk)});
      w = put(w, frag_body{static_cast<std::uint32_t>(n), static_cast<std::uint32_t>(off)});
      copy_range(w, p, head_n, tail, off, chunk);
      flen += kRecordHeaderSize + sizeof(frag_body) + chunk;
      ++nrec;
      ++st.frags;
      off += chunk;
      if (off < n)
        close_frame();
    }
  }

  // --- records ----------------------------------------------------------------

  // Where a ladder record is assembled: in place at the end of the open
  // batch when batching, so that emit() only has to count it (no copy of
  // every record, a whole page for a PAGE record), else in the record
  // scratch. The batch closes once it reaches batch_bytes, and batch_raw has
  // rec_cap bytes past the largest batch: room for any record.
  std::byte *rec_at() { return cfg.batch ? batch_raw.get() + batch_len : rec.get(); }

  // A record assembled at rec_at(), n bytes: into the batch or straight to frames.
  // Without batching a PAGE record may leave its page where it is (tail):
  // it is copied once, into frames.
  void emit(std::size_t n, rung r, const std::byte *tail = nullptr, std::size_t tail_n = 0) {
    if (cfg.batch) {
      batch_len += n;
      batch_rung_raw[static_cast<std::size_t>(r)] += n;
      batch_pages += r != rung::zero;
      if (batch_len >= cfg.batch_bytes)
        close_batch();
    } else {
      n += tail_n;
      st.rung_bytes[static_cast<std::size_t>(r)] += n;
      send_record(rec.get(), n - tail_n, tail, tail_n);
      if (hybrid) {
        seg_wire += n;
        if ((seg_raw += n) >= seg_limit)
          end_segment();
      }
    }
  }

  // Writes a record header at p; returns where the body goes.
  static std::byte *begin_record(std::byte *p, record_type t, std::size_t body_len,
                                 std::uint8_t flags = 0) {
    return put(p, record_header{static_cast<std::uint8_t>(t), flags, 0,
                                static_cast<std::uint32_t>(body_len)});
  }

  void emit_init() {
    std::byte *w = begin_record(rec.get(), record_type::init, sizeof(init_body));
    put(w, init_body{cache->slot_count(), static_cast<std::uint32_t>(kPageSize),
                     static_cast<std::uint32_t>(kMaxRecordSize), cfg.streams,
                     cfg.wire_max_frame != 0 ? cfg.wire_max_frame : static_cast<std::uint32_t>(cfg.max_frame),
                     cfg.window});
    send_record(rec.get(), kRecordHeaderSize + sizeof(init_body));
    close_frame();  // INIT travels alone, as the stream's opening frame
  }

  void close_batch() {
    if (batch_len == 0)
      return;
    std::byte *o = batch_out.get();
    const std::size_t hdr = kRecordHeaderSize + sizeof(batch_body);
    bytes_view src{batch_raw.get(), batch_len};
    bytes_buf dst{o + hdr, batch_out_cap - hdr};
    std::uint8_t flags = 0;
    codec_spec c = cfg.batch_codec;
    result<std::size_t> r;
    const std::uint64_t c0 = cycles_now();
    if (c.id == codec_id::zstd) {
      flags = kBatchFlagStream | (stream_fresh ? kBatchFlagReset : 0);
      if (stream_fresh)
        codecs.reset_stream();
      r = codecs.compress_stream(c.level, src, dst);
      stream_fresh = !r.ok();
    } else {
      r = codecs.compress(c, src, dst);
    }
    if (!r.ok() || r.value >= batch_len) {  // does not pay: send the records raw
      // The receiver's stream never sees this batch, so ours restarts too.
      stream_fresh = stream_fresh || (flags & kBatchFlagStream) != 0;
      c = {codec_id::raw, 0};
      flags &= ~(kBatchFlagStream | kBatchFlagReset);
      std::memcpy(o + hdr, batch_raw.get(), batch_len);
      r = {batch_len};
    }
    std::size_t n = hdr + r.value;
    std::byte *w = put(o, record_header{static_cast<std::uint8_t>(record_type::batch), 0, 0,
                                        static_cast<std::uint32_t>(n - kRecordHeaderSize)});
    put(w, batch_body{static_cast<std::uint8_t>(c.id), flags, 0,
                      static_cast<std::uint32_t>(batch_len)});
    auto ci = static_cast<std::size_t>(c.id);
    const std::uint64_t codec_cycles = cycles_now() - c0;
    st.codec_ns[ci] += static_cast<std::uint64_t>(static_cast<double>(codec_cycles) * ns_per_cycle);
    if (timing)
      seg_codec_cycles += codec_cycles;
    if (hybrid && exploring && timing)
      shadow_run(src);
    st.codec_pages[ci] += batch_pages;
    batch_pages = 0;
    st.codec_bytes_in[ci] += batch_len;
    st.codec_bytes_out[ci] += r.value;
    for (std::size_t i = 0; i < kRungCount; ++i) {
      st.rung_bytes[i] += (batch_rung_raw[i] * n + batch_len / 2) / batch_len;
      batch_rung_raw[i] = 0;
    }
    ++st.batches;
    st.batch_raw_bytes += batch_len;
    st.batch_wire_bytes += n;
    const std::size_t raw_len = batch_len;
    batch_len = 0;
    send_record(o, n);
    if (hybrid) {
      seg_wire += n;
      seg_raw += raw_len;
      end_segment();
    }
  }

  void close_zero_run() {
    if (!zr_open)
      return;
    zr_open = false;
    std::byte *w = begin_record(rec_at(), record_type::zero, sizeof(zero_body));
    put(w, zero_body{zr_vm, zr_count, zr_gfn});
    emit(kRecordHeaderSize + sizeof(zero_body), rung::zero);
  }

  // --- the ladder -------------------------------------------------------------

  void encode_one(const page_in &pg) {
    ++st.pages_in;
    ++seg_pages;
    const page_key key = pg.key;
    const std::byte *data = pg.data;

    // 1 ZERO
    if (is_zero_page(data)) {
      cache->drop_key(key);
      ++st.rung_pages[static_cast<std::size_t>(rung::zero)];
      if (zr_open && zr_vm == key.vm && zr_gfn + zr_count == key.gfn && zr_count < 0xFFFFFFFFu) {
        ++zr_count;
        return;
      }
      close_zero_run();
      zr_open = true;
      zr_vm = key.vm;
      zr_gfn = key.gfn;
      zr_count = 1;
      return;
    }
    close_zero_run();
    ++seg_nonzero;
    const content_hash h = hash_page(data);

    // 2 REF
    if (auto src = cache->find_content(h, data)) {
      auto fill = cache->fill(key, h, data);
      std::byte *w = begin_record(rec_at(), record_type::ref, sizeof(ref_body));
      put(w, ref_body{key.vm, src->slot, key.gfn, src->gen, fill ? fill->slot : kNoSlot, h.lo});
      ++st.rung_pages[static_cast<std::size_t>(rung::ref)];
      emit(kRecordHeaderSize + sizeof(ref_body), rung::ref);
      return;
    }

    // 3 DELTA (encoded before fill() replaces the baseline)
    if (auto base = cache->find_key(key)) {
      ++seg_dirty;
      if (try_delta(key, h, data, *base))
        return;
      ++st.delta_rejected;
    }

    // 4 PAGE
    encode_page(key, h, data);
  }

  bool try_delta(page_key key, const content_hash &h, const std::byte *data, slot_ref base) {
    const std::byte *old = cache->data(base.slot);
    // XBZRLE carries every changed byte: count them first (one vector pass)
    // and skip a delta that cannot fit its budget.
    const bool dense = count_diff_bytes(old, data) > cfg.xbzrle_budget;
    if (dense && !(cfg.try_xor && !cfg.batch))
      return false;
    constexpr std::size_t off = kRecordHeaderSize + sizeof(delta_body);
    std::byte *d = rec_at() + off;
    auto xb = dense ? result<std::size_t>::fail(error::no_space)
                    : xbzrle_encode(old, data, {d, cfg.xbzrle_budget});
    delta_kind kind = delta_kind::xbzrle;
    codec_id dc = codec_id::raw;
    std::size_t len = xb.ok() ? xb.value : 0;

    if (!cfg.batch && cfg.try_xor && (!xb.ok() || xb.value > 256)) {
      // Dense change: XOR then codec may beat XBZRLE. It is written after
      // the XBZRLE bytes so the better of the two can stay in place.
      xor_page(old, data, tmp);
      std::size_t xoff = xb.ok() ? xb.value : 0;
      auto xc = codecs.compress(cfg.page_codec, {tmp, kPageSize},
                                {d + xoff, rec_cap - off - xoff});
      if (xc.ok() && (!xb.ok() || xc.value < xb.value)) {
        std::memmove(d, d + xoff, xc.value);
        len = xc.value;
        kind = delta_kind::xor_codec;
        dc = cfg.page_codec.id;
        account_codec(dc, kPageSize, xc.value);
      } else if (!xb.ok()) {
        return false;
      }
    } else if (!xb.ok()) {
      return false;
    }

    auto fill = cache->fill(key, h, data);
    std::byte *w = begin_record(rec_at(), record_type::delta, sizeof(delta_body) + len);
    put(w, delta_body{key.vm, base.slot, key.gfn, base.gen, fill ? fill->slot : kNoSlot,
                      static_cast<std::uint8_t>(kind), static_cast<std::uint8_t>(dc), 0, 0});
    ++st.rung_pages[static_cast<std::size_t>(rung::delta)];
    ++(kind == delta_kind::xbzrle ? st.delta_xbzrle : st.delta_xor);
    emit(off + len, rung::delta);
    return true;
  }

  void encode_page(page_key key, const content_hash &h, const std::byte *data) {
    constexpr std::size_t off = kRecordHeaderSize + sizeof(page_body);
    std::byte *d = rec_at() + off;
    codec_spec c = cfg.batch ? codec_spec{codec_id::raw, 0} : cfg.page_codec;
    std::size_t len = kPageSize;
    if (c.id != codec_id::raw) {
      // Accept the compressed form only when it saves at least 1/16.
      const std::uint64_t c0 = cycles_now();
      auto r = codecs.compress(c, {data, kPageSize}, {d, kPageSize - kPageSize / 16});
      st.codec_ns[static_cast<std::size_t>(c.id)] +=
          static_cast<std::uint64_t>(static_cast<double>(cycles_now() - c0) * ns_per_cycle);
      if (r.ok()) {
        len = r.value;
        account_codec(c.id, kPageSize, len);
      } else {
        c = {codec_id::raw, 0};
      }
    }
    const bool direct = c.id == codec_id::raw && !cfg.batch;  // the page goes from here into frames
    if (c.id == codec_id::raw) {
      if (!direct)
        std::memcpy(d, data, kPageSize);
      else
        account_codec(codec_id::raw, kPageSize, kPageSize);
    }
    auto fill = cache->fill(key, h, data);
    std::byte *w = begin_record(rec_at(), record_type::page, sizeof(page_body) + len);
    page_body b{key.vm, fill ? fill->slot : kNoSlot, key.gfn, static_cast<std::uint8_t>(c.id), {}};
    put(w, b);
    ++st.rung_pages[static_cast<std::size_t>(rung::page)];
    if (direct)
      emit(off, rung::page, data, kPageSize);
    else
      emit(off + len, rung::page);
  }

  void account_codec(codec_id id, std::size_t in, std::size_t outn) {
    auto i = static_cast<std::size_t>(id);
    ++st.codec_pages[i];
    st.codec_bytes_in[i] += in;
    st.codec_bytes_out[i] += outn;
  }
};

encoder::encoder(const encoder_config &cfg, frame_output &out)
    : p_(std::make_unique<impl>(cfg, out)) {}
encoder::~encoder() = default;

void encoder::encode(const page_in *pages, std::size_t n) {
  auto one = [&](std::size_t i) {
    if (i + 1 < n)
      prefetch_page(pages[i + 1].data);
    p_->encode_one(pages[i]);
  };
  if (!p_->hybrid) {
    for (std::size_t i = 0; i < n; ++i)
      one(i);
    return;
  }
  // Hybrid: the ladder work counts too. Cycles run from here; each segment
  // closed on the way takes them up to its close (end_segment moves the
  // mark), the rest goes to the segment still open.
  p_->mark = cycles_now();
  p_->timing = true;
  for (std::size_t i = 0; i < n; ++i)
    one(i);
  p_->timing = false;
  p_->seg_cycles += cycles_now() - p_->mark;
}

void encoder::repair(const page_in *pages, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    const page_in &pg = pages[i];
    ++p_->st.repairs;
    if (is_zero_page(pg.data)) {
      p_->encode_one(pg);  // the ZERO rung refers to nothing
      continue;
    }
    ++p_->st.pages_in;
    p_->close_zero_run();
    p_->cache->drop_key(pg.key);
    p_->encode_page(pg.key, hash_page(pg.data), pg.data);
  }
}

void encoder::mark_round(std::uint32_t vm, std::uint32_t round, std::uint64_t pages, bool last) {
  p_->close_zero_run();
  p_->close_batch();
  std::byte *w = p_->begin_record(p_->rec.get(), record_type::mark, sizeof(mark_body));
  put(w, mark_body{vm, round, pages, last ? kMarkFlagLast : 0u, 0});
  p_->send_record(p_->rec.get(), kRecordHeaderSize + sizeof(mark_body));
  ++p_->st.marks;
  p_->close_frame();
}

void encoder::opaque(std::uint32_t vm, std::uint32_t chunk, std::uint32_t flags, bytes_view bytes) {
  p_->close_zero_run();
  std::size_t off = 0;
  do {
    const std::size_t n = std::min(bytes.size() - off, kMaxOpaquePiece);
    const bool last = off + n == bytes.size();
    // Into the batch when batching (device state compresses well), else
    // straight into frames; either way after the records before it.
    std::byte *rec = p_->cfg.batch ? p_->batch_raw.get() + p_->batch_len : p_->rec.get();
    std::byte *w = p_->begin_record(rec, record_type::opaque, sizeof(opaque_body) + n);
    w = put(w, opaque_body{vm, chunk, last ? flags : 0u, 0});
    if (n != 0)
      std::memcpy(w, bytes.data() + off, n);
    const std::size_t len = kRecordHeaderSize + sizeof(opaque_body) + n;
    if (p_->cfg.batch) {
      p_->batch_len += len;
      if (p_->batch_len >= p_->cfg.batch_bytes)
        p_->close_batch();
    } else {
      p_->send_record(rec, len);
    }
    off += n;
  } while (off < bytes.size());
  p_->st.opaque_bytes += bytes.size();
}

void encoder::flush() {
  p_->close_zero_run();
  p_->close_batch();
  p_->close_frame();
}

const encoder_stats &encoder::stats() const { return p_->st; }
baseline_cache &encoder::baselines() { return *p_->cache; }

void encoder::set_grace_domain(grace_domain *d) {
  p_->grace = d;
  p_->cache->set_grace_domain(d);
}

std::unique_ptr<baseline_cache> encoder::resize_cache(std::size_t bytes) {
  p_->close_zero_run();
  p_->close_batch();
  p_->close_frame();
  p_->cfg.cache_bytes = bytes;
  auto old = std::exchange(p_->cache, std::make_unique<baseline_cache>(bytes));
  p_->cache->set_grace_domain(p_->grace);
  // The INIT resets the receiver's mirror (and its zstd stream): ours too.
  p_->stream_fresh = true;
  p_->emit_init();
  return old;
}
const encoder_config &encoder::config() const { return p_->cfg; }
void encoder::set_codec(codec_spec c) {
  p_->close_zero_run();
  p_->close_batch();
  p_->cfg.codec() = c;
}

void encoder::reconfigure(const encoder_config &c) {
  p_->close_zero_run();
  p_->close_batch();
  p_->close_frame();
  // What the stream already fixed stays: frame size, cache, identity.
  encoder_config &k = p_->cfg;
  k.m = c.m;
  k.page_codec = c.page_codec;
  k.batch = c.batch;
  k.batch_codec = c.batch_codec;
  k.batch_bytes = c.batch_bytes;
  k.xbzrle_budget = c.xbzrle_budget;
  k.try_xor = c.try_xor;
  k.link_bytes_per_s = c.link_bytes_per_s;
  p_->clamp_config();
  p_->stream_fresh = true;  // a zstd stream restarts on both sides
  if (k.m == mode::hybrid && !p_->hybrid)
    p_->start_selector();
  else if (k.m != mode::hybrid && p_->hybrid)
    p_->stop_selector();
  else if (p_->hybrid)
    p_->use_arm(p_->arm);  // the mode's fields were overwritten: the arm's again
}

void encoder::set_selector_port(const selector_port &port) {
  const bool was = p_->hybrid;
  if (was) {
    p_->close_zero_run();
    p_->close_batch();
    p_->stop_selector();
  }
  p_->port = port;
  if (was)
    p_->start_selector();
}

void encoder::set_link_rate(double bytes_per_s) { p_->cfg.link_bytes_per_s = bytes_per_s; }

const selector_learner *encoder::own_learner() const { return p_->own ? &p_->own->learner : nullptr; }

}  // namespace hde
