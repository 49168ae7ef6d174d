// malformed_test.cpp — every field of every record, made wrong on purpose:
// the decoder answers with the matching error, counts it, writes no page,
// and carries on with the next good frame.
#include <gtest/gtest.h>

#include <cstring>

#include "codec/codec.h"
#include "engine/decoder.h"
#include "page/hash.h"
#include "test_pages.h"
#include "test_wire.h"
#include "wire/format.h"

using namespace hde;
using namespace hde::wire;

namespace {

using bytes = std::vector<std::byte>;

template <typename T> void append(bytes &b, const T &v) {
  auto *p = reinterpret_cast<const std::byte *>(&v);
  b.insert(b.end(), p, p + sizeof v);
}

bytes record(record_type t, const bytes &body) {
  bytes r;
  append(r, record_header{static_cast<std::uint8_t>(t), 0, 0, static_cast<std::uint32_t>(body.size())});
  r.insert(r.end(), body.begin(), body.end());
  return r;
}

template <typename T> bytes body_of(const T &v, const bytes &tail = {}) {
  bytes b;
  append(b, v);
  b.insert(b.end(), tail.begin(), tail.end());
  return b;
}

class Malformed : public testing::Test {
protected:
  void SetUp() override {
    std::mt19937_64 rng(77);
    page_ = test::make_page(test::page_kind::text, rng);
    // A stream that starts with INIT (8 slots) and fills slot 2 with page_.
    ASSERT_EQ(send({record(record_type::init, body_of(init_body{8, kPageSize, kMaxRecordSize, 0, 0, 0})),
                    record(record_type::page, body_of(page_body{0, 2, 10, 0, {}}, page_))}),
              error::ok);
    ASSERT_EQ(sink_.pages.size(), 1u);
  }

  error send(const std::vector<bytes> &records, int count_adjust = 0) {
    bytes f(kFrameHeaderSize);
    for (const auto &r : records)
      f.insert(f.end(), r.begin(), r.end());
    frame_header h{};
    h.magic = kMagic;
    h.version = kVersion;
    h.type = static_cast<std::uint8_t>(frame_type::data);
    h.epoch = 1;
    h.seq = seq_++;
    h.record_count = static_cast<std::uint16_t>(records.size() + count_adjust);
    h.payload_len = static_cast<std::uint16_t>(f.size() - kFrameHeaderSize);
    std::memcpy(f.data(), &h, sizeof h);
    seal_frame(f);
    return dec_.on_frame(f);
  }

  // Expect err for this record, no new page, then a good frame still applies.
  void expect(const bytes &rec, error err) {
    auto before = sink_.pages.size();
    EXPECT_EQ(send({rec}), err);
    EXPECT_EQ(sink_.pages.size(), before);
    EXPECT_GE(dec_.stats().errors[static_cast<std::size_t>(err)], 1u);
    EXPECT_EQ(send({record(record_type::mark, body_of(mark_body{0, 1, 0, 0, 0}))}), error::ok);
  }

  test::page_bytes page_;
  test::map_sink sink_;
  decoder dec_{decoder_config{64, true}, sink_};
  std::uint64_t seq_ = 0;
};

TEST_F(Malformed, GoodRefAndDeltaApply) {
  EXPECT_EQ(send({record(record_type::ref, body_of(ref_body{0, 2, 11, 1, kNoSlot, hash_page(page_.data()).lo}))}),
            error::ok);
  EXPECT_EQ(sink_.pages[std::make_pair(0u, std::uint64_t{11})], page_);
}

TEST_F(Malformed, RecordFraming) {
  expect(record(static_cast<record_type>(0), {}), error::bad_record_type);
  expect(record(static_cast<record_type>(99), {}), error::bad_record_type);
  auto r = record(record_type::mark, body_of(mark_body{}));
  r[4] = std::byte{0xff};  // body_len past the frame
  expect(r, error::truncated);
  // record_count larger than the records present; smaller leaves bytes over.
  EXPECT_EQ(send({record(record_type::mark, body_of(mark_body{}))}, +1), error::truncated);
  EXPECT_EQ(send({record(record_type::mark, body_of(mark_body{})), record(record_type::mark, body_of(mark_body{}))}, -1),
            error::bad_length);
}

TEST_F(Malformed, Init) {
  expect(record(record_type::init, body_of(std::uint32_t{8})), error::bad_length);
  expect(record(record_type::init, body_of(init_body{8, 512, kMaxRecordSize, 0, 0, 0})), error::bad_length);
  expect(record(record_type::init, body_of(init_body{8, kPageSize, kMaxRecordSize * 2, 0, 0, 0})), error::bad_length);
  expect(record(record_type::init, body_of(init_body{65, kPageSize, kMaxRecordSize, 0, 0, 0})), error::bad_slot);
}

TEST_F(Malformed, Zero) {
  expect(record(record_type::zero, body_of(zero_body{0, 0, 5})), error::bad_length);
  expect(record(record_type::zero, body_of(std::uint64_t{5})), error::bad_length);
}

TEST_F(Malformed, Ref) {
  const auto h = hash_page(page_.data()).lo;
  expect(record(record_type::ref, body_of(ref_body{0, 9, 11, 1, kNoSlot, h})), error::bad_slot);
  expect(record(record_type::ref, body_of(ref_body{0, 2, 11, 2, kNoSlot, h})), error::stale_baseline);
  expect(record(record_type::ref, body_of(ref_body{0, 3, 11, 1, kNoSlot, h})), error::stale_baseline);
  expect(record(record_type::ref, body_of(ref_body{0, 2, 11, 1, kNoSlot, h ^ 1})), error::stale_baseline);
  expect(record(record_type::ref, body_of(ref_body{0, 2, 11, 1, 64, h})), error::bad_slot);
  expect(record(record_type::ref, body_of(ref_body{}, {std::byte{1}})), error::bad_length);
}

TEST_F(Malformed, Delta) {
  const bytes ok_delta = {std::byte{0}, std::byte{1}, std::byte{0x42}};
  expect(record(record_type::delta, body_of(std::uint32_t{0})), error::truncated);
  expect(record(record_type::delta, body_of(delta_body{0, 9, 11, 1, kNoSlot, 1, 0, 0, 0}, ok_delta)), error::bad_slot);
  expect(record(record_type::delta, body_of(delta_body{0, 2, 11, 7, kNoSlot, 1, 0, 0, 0}, ok_delta)),
         error::stale_baseline);
  expect(record(record_type::delta, body_of(delta_body{0, 2, 11, 1, kNoSlot, 9, 0, 0, 0}, ok_delta)), error::bad_delta);
  expect(record(record_type::delta, body_of(delta_body{0, 2, 11, 1, kNoSlot, 1, 0, 0, 0}, {std::byte{0}, std::byte{9}})),
         error::bad_delta);
  expect(record(record_type::delta, body_of(delta_body{0, 2, 11, 1, kNoSlot, 2, 77, 0, 0}, ok_delta)), error::bad_codec);
  expect(record(record_type::delta, body_of(delta_body{0, 2, 11, 1, kNoSlot, 2, 1, 0, 0}, ok_delta)),
         error::codec_failed);
  // And the good one applies.
  EXPECT_EQ(send({record(record_type::delta, body_of(delta_body{0, 2, 11, 1, kNoSlot, 1, 0, 0, 0}, ok_delta))}),
            error::ok);
  auto want = page_;
  want[0] = std::byte{0x42};
  EXPECT_EQ(sink_.pages[std::make_pair(0u, std::uint64_t{11})], want);
}

TEST_F(Malformed, Page) {
  expect(record(record_type::page, body_of(std::uint64_t{0})), error::truncated);
  expect(record(record_type::page, body_of(page_body{0, kNoSlot, 12, 0, {}}, bytes(100))), error::bad_size);
  expect(record(record_type::page, body_of(page_body{0, kNoSlot, 12, 42, {}}, bytes(100))), error::bad_codec);
  for (std::uint8_t c = 1; c < static_cast<std::uint8_t>(codec_id::count_); ++c)
    expect(record(record_type::page, body_of(page_body{0, kNoSlot, 12, c, {}}, bytes(100, std::byte{0xee}))),
           error::codec_failed);
  expect(record(record_type::page, body_of(page_body{0, 8, 12, 0, {}}, page_)), error::bad_slot);
}

TEST_F(Malformed, Batch) {
  auto inner = record(record_type::mark, body_of(mark_body{}));
  expect(record(record_type::batch, body_of(std::uint32_t{0})), error::truncated);
  expect(record(record_type::batch, body_of(batch_body{0, 0, 0, 0})), error::bad_length);
  expect(record(record_type::batch, body_of(batch_body{0, 0, 0, std::uint32_t(kMaxRecordSize + 1)})), error::bad_length);
  expect(record(record_type::batch, body_of(batch_body{50, 0, 0, 32}, inner)), error::bad_codec);
  expect(record(record_type::batch, body_of(batch_body{0, 0, 0, 99}, inner)), error::bad_size);
  expect(record(record_type::batch, body_of(batch_body{1, kBatchFlagStream, 0, 32}, inner)), error::bad_codec);
  expect(record(record_type::batch, body_of(batch_body{2, kBatchFlagStream, 0, 32}, inner)), error::codec_failed);
  expect(record(record_type::batch, body_of(batch_body{2, 0, 0, 32}, inner)), error::codec_failed);
  // Nesting: a batch or a fragment inside a batch.
  auto nested = record(record_type::batch, body_of(batch_body{0, 0, 0, std::uint32_t(inner.size())}, inner));
  expect(record(record_type::batch, body_of(batch_body{0, 0, 0, std::uint32_t(nested.size())}, nested)),
         error::bad_record_type);
  auto frag = record(record_type::frag, body_of(frag_body{8, 0}, bytes(8)));
  expect(record(record_type::batch, body_of(batch_body{0, 0, 0, std::uint32_t(frag.size())}, frag)),
         error::bad_record_type);
  // A raw batch with a good inner record applies.
  EXPECT_EQ(send({record(record_type::batch, body_of(batch_body{0, 0, 0, std::uint32_t(inner.size())}, inner))}),
            error::ok);
}

TEST_F(Malformed, Fragments) {
  auto whole = record(record_type::mark, body_of(mark_body{0, 2, 0, 0, 0}));
  bytes first(whole.begin(), whole.begin() + 10), rest(whole.begin() + 10, whole.end());
  const auto total = static_cast<std::uint32_t>(whole.size());
  expect(record(record_type::frag, body_of(std::uint32_t{0})), error::truncated);
  expect(record(record_type::frag, body_of(frag_body{4, 0}, first)), error::bad_fragment);
  expect(record(record_type::frag, body_of(frag_body{std::uint32_t(kMaxRecordSize + 1), 0}, first)),
         error::bad_fragment);
  expect(record(record_type::frag, body_of(frag_body{total, 5}, first)), error::bad_fragment);  // no start
  expect(record(record_type::frag, body_of(frag_body{total, 0}, {})), error::bad_fragment);    // empty piece
  expect(record(record_type::frag, body_of(frag_body{10, 0}, whole)), error::bad_fragment);    // piece > total
  // Start, then a wrong offset.
  EXPECT_EQ(send({record(record_type::frag, body_of(frag_body{total, 0}, first))}), error::ok);
  expect(record(record_type::frag, body_of(frag_body{total, 11}, rest)), error::bad_fragment);
  // A fragment that carries a fragment.
  auto inner = record(record_type::frag, body_of(frag_body{8, 0}, bytes(8)));
  bytes a(inner.begin(), inner.begin() + 4), b(inner.begin() + 4, inner.end());
  const auto it = static_cast<std::uint32_t>(inner.size());
  EXPECT_EQ(send({record(record_type::frag, body_of(frag_body{it, 0}, a))}), error::ok);
  expect(record(record_type::frag, body_of(frag_body{it, 4}, b)), error::bad_fragment);
  // The good sequence reassembles.
  auto marks = sink_.marks.size();
  EXPECT_EQ(send({record(record_type::frag, body_of(frag_body{total, 0}, first))}), error::ok);
  EXPECT_EQ(send({record(record_type::frag, body_of(frag_body{total, 10}, rest))}), error::ok);
  ASSERT_EQ(sink_.marks.size(), marks + 1);
  EXPECT_EQ(sink_.marks.back().round, 2u);
}

TEST_F(Malformed, Mark) { expect(record(record_type::mark, body_of(std::uint32_t{1})), error::bad_length); }

TEST_F(Malformed, Opaque) {
  expect(record(record_type::opaque, body_of(std::uint32_t{1})), error::bad_length);  // shorter than its body
  expect(record(record_type::opaque, body_of(opaque_body{0, 0, 0, 0})), error::bad_record_type);  // chunk 0
  expect(record(record_type::opaque, body_of(opaque_body{0, 1, 1u << 7, 0})), error::bad_record_type);  // flag
  std::vector<std::byte> too_long(kMaxOpaquePiece + 1);
  expect(record(record_type::opaque, body_of(opaque_body{0, 1, 0, 0}, too_long)), error::bad_length);
}

TEST(MalformedStream, RecordsBeforeInitCannotFillSlots) {
  test::map_sink sink;
  decoder dec({}, sink);
  std::vector<std::byte> page(kPageSize, std::byte{1});
  bytes f(kFrameHeaderSize);
  auto r = record(record_type::page, body_of(page_body{0, 0, 1, 0, {}}, page));
  f.insert(f.end(), r.begin(), r.end());
  frame_header h{kMagic, kVersion, 1, 0, 0, 1, 1, static_cast<std::uint16_t>(r.size()), 0, 0, 0};
  std::memcpy(f.data(), &h, sizeof h);
  seal_frame(f);
  EXPECT_EQ(dec.on_frame(f), error::bad_slot);
  EXPECT_TRUE(sink.pages.empty());
}

TEST(MalformedStream, RandomFramesNeverCrash) {
  test::map_sink sink;
  sink.max_gfn = 1024;
  decoder dec({16, false}, sink);
  std::mt19937_64 rng(99);
  int ok = 0, bad = 0;
  for (int i = 0; i < 20000; ++i) {
    bytes f(kFrameHeaderSize + rng() % 200);
    for (auto &b : f)
      b = std::byte(rng());
    frame_header h{kMagic, kVersion, 1, 0, 0, 1, static_cast<std::uint16_t>(1 + rng() % 4),
                   static_cast<std::uint16_t>(f.size() - kFrameHeaderSize), 0, 0, 0};
    std::memcpy(f.data(), &h, sizeof h);
    if (f.size() >= kFrameHeaderSize + kRecordHeaderSize && rng() % 2) {  // a plausible record
      f[kFrameHeaderSize] = std::byte(1 + rng() % 8);
      std::uint32_t len = static_cast<std::uint32_t>(rng() % (f.size() - kFrameHeaderSize));
      std::memcpy(f.data() + kFrameHeaderSize + 4, &len, 4);
    }
    seal_frame(f);
    (dec.on_frame(f) == error::ok ? ok : bad)++;
  }
  std::uint64_t counted = 0;
  for (auto n : dec.stats().errors)
    counted += n;
  EXPECT_EQ(ok + bad, 20000);
  // Every rejection is counted; a frame may also lose several pages, each
  // counted, while its other records still apply.
  EXPECT_GE(counted, static_cast<std::uint64_t>(bad));
  EXPECT_LE(counted, static_cast<std::uint64_t>(bad) + dec.stats().pages_lost);
  EXPECT_GT(bad, 15000);
}

}  // namespace
