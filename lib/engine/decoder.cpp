// decoder.cpp — frame checks, record parsing, reassembly and page rebuild.
#include "engine/decoder.h"

#include <cstring>

#include "baseline/cache.h"
#include "codec/codec.h"
#include "delta/xbzrle.h"
#include "page/hash.h"
#include "wire/format.h"

namespace hde {

using namespace wire;

struct decoder::impl {
  decoder_config cfg;
  page_sink &sink;
  codec_set codecs;
  baseline_mirror mirror;
  decoder_stats st;

  bool started = false;  // an INIT has been applied
  std::uint32_t peer_streams = 0;
  std::uint32_t epoch = 0;
  std::uint64_t next_seq = 0;
  error first_lost = error::ok;  // the frame's first lost page, if any

  std::unique_ptr<std::byte[]> reasm, batch;
  std::size_t reasm_len = 0, reasm_total = 0;
  alignas(64) std::byte page[kPageSize];
  alignas(64) std::byte xbuf[kPageSize];

  impl(const decoder_config &c, page_sink &s)
      : cfg(c), sink(s), reasm(std::make_unique<std::byte[]>(kMaxRecordSize)),
        batch(std::make_unique<std::byte[]>(kMaxRecordSize)) {
    mirror.populate_in_background(c.populate_in_background);
  }

  error fail(error e) {
    ++st.errors[static_cast<std::size_t>(e)];
    return e;
  }

  // A frame that cannot be (fully) applied: the pages in the rest of it are
  // unknown.
  error broken(error e) {
    ++st.broken_frames;
    return fail(e);
  }

  // A page record that parsed but cannot be applied: only this page is lost.
  // The sink is told (the data plane asks for it again), the slot the sender
  // filled moves on a generation without content so that the mirror stays in
  // step, and decoding goes on with the next record.
  error lost(page_key key, std::uint32_t fill_slot, error e) {
    fail(e);
    if (first_lost == error::ok)
      first_lost = e;
    if (fill_slot != kNoSlot)
      mirror.fill_lost(fill_slot);
    ++st.pages_lost;
    sink.on_lost(key, e);
    return error::ok;
  }

  error on_frame(bytes_view f) {
    frame_header h;
    if (error e = parse_frame_header(f, h); e != error::ok)
      return broken(e);
    if (h.type != static_cast<std::uint8_t>(frame_type::data))
      return broken(error::bad_frame_type);
    if (cfg.check_sequence && started) {
      if (h.epoch != epoch && h.seq == 0) {
        started = false;  // the sender restarted: a new stream begins
      } else if (h.epoch != epoch) {
        return broken(error::stale_baseline);
      } else if (h.seq != next_seq) {
        return broken(error::sequence_gap);
      }
    }
    epoch = h.epoch;
    next_seq = h.seq + 1;
    ++st.frames;
    st.frame_bytes += f.size();

    const std::byte *p = f.data() + kFrameHeaderSize;
    const std::byte *end = f.data() + f.size();
    first_lost = error::ok;
    for (std::uint16_t i = 0; i < h.record_count; ++i) {
      if (error e = next_record(p, end, false); e != error::ok) {
        reasm_len = reasm_total = 0;
        return broken(e);
      }
    }
    if (p != end)
      return broken(error::bad_length);
    return first_lost;
  }

  // Parse the record at p (advancing p) and apply it.
  error next_record(const std::byte *&p, const std::byte *end, bool in_batch) {
    if (static_cast<std::size_t>(end - p) < kRecordHeaderSize)
      return error::truncated;
    auto rh = load<record_header>(p);
    p += kRecordHeaderSize;
    if (rh.body_len > static_cast<std::size_t>(end - p))
      return error::truncated;
    bytes_view body{p, rh.body_len};
    p += rh.body_len;
    return apply(static_cast<record_type>(rh.type), body, in_batch);
  }

  error apply(record_type t, bytes_view body, bool in_batch) {
    switch (t) {
    case record_type::init: return in_batch ? error::bad_record_type : on_init(body);
    case record_type::zero: return on_zero(body);
    case record_type::ref: return on_ref(body);
    case record_type::delta: return on_delta(body);
    case record_type::page: return on_page(body);
    case record_type::batch: return in_batch ? error::bad_record_type : on_batch(body);
    case record_type::frag: return in_batch ? error::bad_record_type : on_frag(body);
    case record_type::mark: return on_mark(body);
    case record_type::opaque: return on_opaque(body);
    default: return error::bad_record_type;
    }
  }

  error on_init(bytes_view body) {
    if (body.size() != sizeof(init_body))
      return error::bad_length;
    auto b = load<init_body>(body.data());
    if (b.page_size != kPageSize || b.max_record > kMaxRecordSize)
      return error::bad_length;
    if (!mirror.reset(b.slot_count, cfg.max_slots))
      return error::bad_slot;
    codecs.reset_stream();
    reasm_len = reasm_total = 0;
    peer_streams = b.streams == 0 ? 1 : b.streams;
    started = true;
    return error::ok;
  }

  error on_zero(bytes_view body) {
    if (body.size() != sizeof(zero_body))
      return error::bad_length;
    auto b = load<zero_body>(body.data());
    if (b.count == 0)
      return error::bad_length;
    if (error e = sink.put_zero(b.vm, b.gfn, b.count); e != error::ok)
      return e;
    st.rung_pages[static_cast<std::size_t>(rung::zero)] += b.count;
    return error::ok;
  }

  // Deliver a rebuilt page and mirror the sender's fill.
  error deliver(page_key key, const std::byte *pg, std::uint32_t fill_slot, rung r) {
    if (!started && fill_slot != kNoSlot)
      return lost(key, fill_slot, error::bad_slot);
    if (fill_slot != kNoSlot && fill_slot >= mirror.slot_count())
      return lost(key, fill_slot, error::bad_slot);
    if (error e = sink.put_page(key, pg); e != error::ok)
      return lost(key, fill_slot, e);
    if (fill_slot != kNoSlot)
      mirror.fill(fill_slot, pg);
    ++st.rung_pages[static_cast<std::size_t>(r)];
    return error::ok;
  }

  error on_ref(bytes_view body) {
    if (body.size() != sizeof(ref_body))
      return error::bad_length;
    auto b = load<ref_body>(body.data());
    const page_key key{b.vm, b.gfn};
    const std::byte *src = mirror.get(b.src_slot, b.src_gen);
    if (src == nullptr)
      return lost(key, b.fill_slot, b.src_slot >= mirror.slot_count() ? error::bad_slot : error::stale_baseline);
    if (hash_page(src).lo != b.hash_lo)
      return lost(key, b.fill_slot, error::stale_baseline);
    std::memcpy(page, src, kPageSize);  // src may be the slot being refilled
    return deliver({b.vm, b.gfn}, page, b.fill_slot, rung::ref);
  }

  error on_delta(bytes_view body) {
    if (body.size() < sizeof(delta_body))
      return error::truncated;
    auto b = load<delta_body>(body.data());
    bytes_view data = body.subspan(sizeof(delta_body));
    const page_key key{b.vm, b.gfn};
    const std::byte *base = mirror.get(b.base_slot, b.base_gen);
    if (base == nullptr)
      return lost(key, b.fill_slot, b.base_slot >= mirror.slot_count() ? error::bad_slot : error::stale_baseline);
    switch (static_cast<delta_kind>(b.kind)) {
    case delta_kind::xbzrle:
      std::memcpy(page, base, kPageSize);
      if (error e = xbzrle_apply(data, page_buf{page, kPageSize}); e != error::ok)
        return lost(key, b.fill_slot, e);
      break;
    case delta_kind::xor_codec:
      if (b.codec >= static_cast<std::uint8_t>(codec_id::count_))
        return lost(key, b.fill_slot, error::bad_codec);
      if (error e = codecs.decompress(static_cast<codec_id>(b.codec), data, {xbuf, kPageSize});
          e != error::ok)
        return lost(key, b.fill_slot, e);
      xor_page(base, xbuf, page);
      break;
    default:
      return lost(key, b.fill_slot, error::bad_delta);
    }
    return deliver({b.vm, b.gfn}, page, b.fill_slot, rung::delta);
  }

  error on_page(bytes_view body) {
    if (body.size() < sizeof(page_body))
      return error::truncated;
    auto b = load<page_body>(body.data());
    bytes_view data = body.subspan(sizeof(page_body));
    const page_key key{b.vm, b.gfn};
    if (b.codec >= static_cast<std::uint8_t>(codec_id::count_))
      return lost(key, b.fill_slot, error::bad_codec);
    auto c = static_cast<codec_id>(b.codec);
    if (c == codec_id::raw) {
      if (data.size() != kPageSize)
        return lost(key, b.fill_slot, error::bad_size);
      return deliver(key, data.data(), b.fill_slot, rung::page);
    }
    if (error e = codecs.decompress(c, data, {page, kPageSize}); e != error::ok)
      return lost(key, b.fill_slot, e);
    return deliver({b.vm, b.gfn}, page, b.fill_slot, rung::page);
  }

  error on_batch(bytes_view body) {
    if (body.size() < sizeof(batch_body))
      return error::truncated;
    auto b = load<batch_body>(body.data());
    bytes_view data = body.subspan(sizeof(batch_body));
    if (b.raw_len == 0 || b.raw_len > kMaxRecordSize)
      return error::bad_length;
    if (b.codec >= static_cast<std::uint8_t>(codec_id::count_))
      return error::bad_codec;
    bytes_buf out{batch.get(), b.raw_len};
    auto c = static_cast<codec_id>(b.codec);
    error e;
    if (b.flags & kBatchFlagStream) {
      if (c != codec_id::zstd)
        return error::bad_codec;
      if (b.flags & kBatchFlagReset)
        codecs.reset_stream();
      e = codecs.decompress_stream(data, out);
    } else {
      e = codecs.decompress(c, data, out);
    }
    if (e != error::ok)
      return e;
    ++st.batches;
    const std::byte *p = out.data();
    const std::byte *end = p + out.size();
    while (p != end)
      if (error re = next_record(p, end, true); re != error::ok)
        return re;
    return error::ok;
  }

  error on_frag(bytes_view body) {
    if (body.size() < sizeof(frag_body))
      return error::truncated;
    auto b = load<frag_body>(body.data());
    bytes_view chunk = body.subspan(sizeof(frag_body));
    if (b.total < kRecordHeaderSize || b.total > kMaxRecordSize || chunk.empty())
      return error::bad_fragment;
    if (b.offset == 0) {
      if (reasm_total != 0)
        return error::bad_fragment;  // a new record while one is open
      reasm_total = b.total;
      reasm_len = 0;
    } else if (b.offset != reasm_len || b.total != reasm_total) {
      return error::bad_fragment;
    }
    if (chunk.size() > reasm_total - reasm_len)
      return error::bad_fragment;
    std::memcpy(reasm.get() + reasm_len, chunk.data(), chunk.size());
    reasm_len += chunk.size();
    if (reasm_len < reasm_total)
      return error::ok;
    const std::byte *p = reasm.get();
    const std::byte *end = p + reasm_total;
    reasm_len = reasm_total = 0;
    if (load<record_header>(p).type == static_cast<std::uint8_t>(record_type::frag))
      return error::bad_fragment;
    if (error e = next_record(p, end, false); e != error::ok)
      return e;
    return p == end ? error::ok : error::bad_length;
  }

  error on_opaque(bytes_view body) {
    if (body.size() < sizeof(opaque_body) || body.size() > sizeof(opaque_body) + kMaxOpaquePiece)
      return error::bad_length;
    auto b = load<opaque_body>(body.data());
    if (b.chunk == 0 || (b.flags & ~(kOpaqueChunkEnd | kOpaqueStreamEnd | kOpaqueAbort | kOpaqueMultifd)) != 0)
      return error::bad_record_type;
    st.opaque_bytes += body.size() - sizeof(opaque_body);
    sink.on_opaque(b.vm, b.chunk, b.flags, body.subspan(sizeof(opaque_body)));
    return error::ok;
  }

  error on_mark(bytes_view body) {
    if (body.size() != sizeof(mark_body))
      return error::bad_length;
    auto b = load<mark_body>(body.data());
    ++st.marks;
    sink.on_mark(b.vm, b.round, b.pages, (b.flags & kMarkFlagLast) != 0);
    return error::ok;
  }
};

decoder::decoder(const decoder_config &cfg, page_sink &sink)
    : p_(std::make_unique<impl>(cfg, sink)) {}
decoder::~decoder() = default;
error decoder::on_frame(bytes_view frame) { return p_->on_frame(frame); }
const decoder_stats &decoder::stats() const { return p_->st; }
std::uint32_t decoder::peer_streams() const { return p_->peer_streams; }
void decoder::forget_slot(std::uint32_t slot) { p_->mirror.forget(slot); }
std::uint32_t decoder::mirror_slots() const { return p_->mirror.slot_count(); }

}  // namespace hde
