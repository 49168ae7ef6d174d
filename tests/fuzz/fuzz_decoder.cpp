// fuzz_decoder.cpp — libFuzzer target for the frame and record decoder.
//
// Input layout:
//   byte 0        mode; bit 0 set = "reseal", bit 1 = reseal keeps the
//                 frame type (see below)
//   then frames   each as [len: u16 little-endian][len bytes]; a length past
//                 the end of the input takes what is left
// Every frame of one input goes to the same hde::decoder, so state carried
// from frame to frame (FRAG reassembly, the zstd stream of batches, the
// baseline mirror sized by an INIT) is exercised.
//
// Random bytes almost never pass the CRC. In reseal mode each frame of at
// least a header's size gets the right magic, version, type and payload_len
// and a fresh CRC before it is decoded, so mutations reach the record parsers.
//
// The sink bounds-checks every page against a small image and rejects pages
// outside it. tests/fuzz/run_fuzz.sh builds and runs this target;
// tests/fuzz/make_seeds.cpp writes its seed corpus.
//
// One decoder serves every input: building one costs ~25 ms under ASan (the
// codec contexts are sized for zstd level 19), which would cap the fuzzer at
// ~40 runs/s. Each input starts with a sealed INIT of 0 slots instead, which
// returns the decoder to its initial state as far as decoding goes: no
// baseline slots (so every REF, DELTA and fill is bad_slot, as before any
// INIT), no open fragment, a fresh zstd stream; with check_sequence off,
// epoch and sequence numbers are not looked at. So a crash reproduces from
// its input alone. Build with -DHDE_FUZZ_FRESH_DECODER for a new decoder per
// input.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include "engine/decoder.h"
#include "wire/format.h"

namespace {

using namespace hde;

constexpr std::uint32_t kVms = 2;
constexpr std::uint64_t kPages = 256;
constexpr std::uint8_t kModeReseal = 1u << 0;
constexpr std::uint8_t kModeKeepType = 1u << 1;

// Destination image: kVms x kPages pages.
std::byte g_image[kVms][kPages][kPageSize];

class image_sink final : public page_sink {
public:
  error put_page(page_key key, const std::byte *page) override {
    if (key.vm >= kVms || key.gfn >= kPages)
      return error::bad_input;
    std::memcpy(g_image[key.vm][key.gfn], page, kPageSize);
    return error::ok;
  }
  error put_zero(std::uint32_t vm, std::uint64_t gfn, std::uint32_t count) override {
    if (vm >= kVms || gfn >= kPages || count == 0 || count > kPages - gfn)
      return error::bad_input;
    std::memset(g_image[vm][gfn], 0, std::size_t{count} * kPageSize);
    return error::ok;
  }
};

// Give a frame a valid header (magic, version, type unless keep_type,
// payload_len) and CRC.
void reseal(std::byte *f, std::size_t len, bool keep_type = false) {
  wire::store<std::uint16_t>(f + offsetof(wire::frame_header, magic), wire::kMagic);
  wire::store<std::uint8_t>(f + offsetof(wire::frame_header, version), wire::kVersion);
  if (!keep_type)
    wire::store<std::uint8_t>(f + offsetof(wire::frame_header, type),
                              static_cast<std::uint8_t>(wire::frame_type::data));
  wire::store<std::uint16_t>(f + offsetof(wire::frame_header, payload_len),
                             static_cast<std::uint16_t>(len - wire::kFrameHeaderSize));
  wire::seal_frame({f, len});
}

// A frame holding one INIT record for 0 slots: resets the shared decoder.
struct reset_frame {
  std::byte bytes[wire::kFrameHeaderSize + wire::kRecordHeaderSize + sizeof(wire::init_body)];
  reset_frame() {
    wire::frame_header h{};
    h.record_count = 1;
    std::memcpy(bytes, &h, sizeof h);
    wire::record_header rh{static_cast<std::uint8_t>(wire::record_type::init), 0, 0,
                           sizeof(wire::init_body)};
    std::memcpy(bytes + wire::kFrameHeaderSize, &rh, sizeof rh);
    wire::init_body ib{0, static_cast<std::uint32_t>(kPageSize),
                       static_cast<std::uint32_t>(wire::kMaxRecordSize), 0};
    std::memcpy(bytes + wire::kFrameHeaderSize + sizeof rh, &ib, sizeof ib);
    reseal(bytes, sizeof bytes);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  if (size < 1)
    return 0;
  const std::uint8_t mode = data[0];
  const std::uint8_t *p = data + 1;
  const std::uint8_t *end = data + size;

  static image_sink sink;
  static const decoder_config cfg{.max_slots = 64, .check_sequence = false};
#ifdef HDE_FUZZ_FRESH_DECODER
  decoder fresh(cfg, sink);
  decoder &dec = fresh;
#else
  static decoder &dec = *new decoder(cfg, sink);
  static const reset_frame reset;
  if (dec.on_frame({reset.bytes, sizeof reset.bytes}) != error::ok)
    __builtin_trap();
#endif
  const decoder_stats before = dec.stats();

  // Each frame is copied into a buffer of exactly its size, so that ASan
  // catches any read past its end, and so that reseal mode can patch it.
  std::uint64_t fed = 0, accepted = 0;
  while (p < end) {
    std::size_t len = 0;
    if (end - p >= 2) {
      len = std::size_t{p[0]} | std::size_t{p[1]} << 8;
      p += 2;
    } else {
      len = 1;  // a lone trailing byte is a 1-byte frame
    }
    len = std::min<std::size_t>(len, static_cast<std::size_t>(end - p));
    std::unique_ptr<std::byte[]> frame(new std::byte[len]);
    if (len != 0)
      std::memcpy(frame.get(), p, len);
    p += len;
    if ((mode & kModeReseal) && len >= wire::kFrameHeaderSize)
      reseal(frame.get(), len, (mode & kModeKeepType) != 0);
    ++fed;
    if (dec.on_frame({frame.get(), len}) == error::ok)
      ++accepted;
  }

  // Every error is either a broken frame or a lost page (its frame's other
  // records still applied); every frame not accepted had one or the other.
  const decoder_stats &st = dec.stats();
  std::uint64_t errors = 0;
  for (std::size_t i = 0; i < kErrorCount; ++i)
    errors += st.errors[i] - before.errors[i];
  const std::uint64_t broken = st.broken_frames - before.broken_frames;
  const std::uint64_t lost = st.pages_lost - before.pages_lost;
  const std::uint64_t rejected = fed - accepted;
  if (st.errors[0] != 0 || errors != broken + lost || rejected < broken || rejected > broken + lost ||
      st.frames - before.frames < accepted)
    __builtin_trap();
  return 0;
}
