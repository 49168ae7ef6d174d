// make_seeds.cpp — writes the seed corpus of fuzz_decoder: real encoder
// sessions in the fuzzer's input format (mode byte, then [u16 len][frame]...).
//
// usage: make_seeds DIR
//
// One session per (mode, codec, frame size): INIT, zero runs, duplicated
// (REF), text and random pages, a second round of mutated pages (XBZRLE and
// XOR deltas) and round marks. Each session is written twice, as plain frames and in reseal
// mode, and is first checked to decode cleanly with the fuzzer's decoder
// settings, so the seeds stay valid as the format evolves.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "engine/decoder.h"
#include "engine/encoder.h"

namespace {

using namespace hde;

constexpr std::size_t kSlots = 32;  // fuzz_decoder allows 64
constexpr std::uint64_t kPages = 24;

std::uint64_t g_rungs[kRungCount], g_xor_deltas, g_frags;  // over all sessions

struct collect final : frame_output {
  std::vector<std::byte> buf;
  std::vector<std::vector<std::byte>> frames;
  explicit collect(std::size_t cap) : buf(cap) {}
  bytes_buf acquire() override { return {buf.data(), buf.size()}; }
  void commit(bytes_buf f, std::size_t len) override { frames.emplace_back(f.data(), f.data() + len); }
};

struct null_sink final : page_sink {
  error put_page(page_key k, const std::byte *) override { return k.gfn < kPages ? error::ok : error::bad_input; }
  error put_zero(std::uint32_t, std::uint64_t gfn, std::uint32_t n) override {
    return gfn + n <= kPages ? error::ok : error::bad_input;
  }
};

std::uint64_t rng_next(std::uint64_t &s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

void fill_text(std::byte *p, std::uint64_t &rng) {
  static const char *const words[] = {"page ", "guest ", "memory ", "delta ", "frame\n", "the "};
  std::size_t i = 0;
  while (i < kPageSize) {
    const char *w = words[rng_next(rng) % 6];
    std::size_t n = std::min(std::strlen(w), kPageSize - i);
    std::memcpy(p + i, w, n);
    i += n;
  }
}

void fill_page(std::byte *p, std::uint64_t g, std::uint64_t &rng, std::byte *img) {
  switch (g % 6) {
  case 0: std::memset(p, 0, kPageSize); break;
  case 1: std::memset(p, 0, kPageSize); break;
  case 3:
    if (g >= 6) {
      std::memcpy(p, img + (g - 6) * kPageSize, kPageSize);  // duplicate
      break;
    }
    [[fallthrough]];
  case 2:
  case 4: fill_text(p, rng); break;
  default:
    for (std::size_t i = 0; i < kPageSize; ++i)
      p[i] = static_cast<std::byte>(rng_next(rng));
  }
}

std::vector<std::vector<std::byte>> session(mode m, const char *codec, std::size_t max_frame,
                                            std::uint64_t seed) {
  encoder_config c = encoder_config::for_mode(m);
  auto spec = parse_codec(codec);
  c.codec() = *spec;
  c.max_frame = max_frame;
  c.cache_bytes = kSlots * kPageSize;
  c.try_xor = !c.batch && spec->id != codec_id::raw;  // also XOR+codec deltas
  collect out(max_frame);
  encoder enc(c, out);

  std::vector<std::byte> img(kPages * kPageSize);
  std::uint64_t rng = seed;
  for (std::uint64_t g = 0; g < kPages; ++g)
    fill_page(img.data() + g * kPageSize, g, rng, img.data());
  for (std::uint64_t g = 0; g < kPages; ++g)
    enc.encode(page_in{{0, g}, img.data() + g * kPageSize});
  enc.mark_round(0, 1, kPages, false);

  // Round 2: small edits (XBZRLE DELTA), dense edits (XOR DELTA where
  // enabled), a page turned zero, a copy (REF).
  std::uint64_t sent = 0;
  for (std::uint64_t g = 2; g < kPages; g += 3) {
    std::byte *p = img.data() + g * kPageSize;
    if (g % 4 == 0)
      std::memset(p, 0, kPageSize);
    else if (g % 4 == 1)
      std::memcpy(p, img.data() + 2 * kPageSize, kPageSize);
    else if (g % 8 == 3)
      for (std::size_t i = 0; i < kPageSize; i += 6)
        p[i] ^= std::byte{1};
    else
      for (int k = 0; k < 5; ++k)
        p[rng_next(rng) % kPageSize] = static_cast<std::byte>(rng_next(rng));
    enc.encode(page_in{{g % 4 == 1 ? 1u : 0u, g}, p});  // copies go to VM 1 too
    ++sent;
  }
  enc.mark_round(0, 2, sent, true);
  for (std::size_t r = 0; r < kRungCount; ++r)
    g_rungs[r] += enc.stats().rung_pages[r];
  g_xor_deltas += enc.stats().delta_xor;
  g_frags += enc.stats().frags;
  return out.frames;
}

bool write_seed(const std::string &path, std::uint8_t mode_byte,
                const std::vector<std::vector<std::byte>> &frames) {
  std::FILE *f = std::fopen(path.c_str(), "wb");
  if (f == nullptr)
    return false;
  bool ok = std::fputc(mode_byte, f) != EOF;
  for (const auto &fr : frames) {
    const unsigned char len[2] = {static_cast<unsigned char>(fr.size()),
                                  static_cast<unsigned char>(fr.size() >> 8)};
    ok = ok && std::fwrite(len, 1, 2, f) == 2 && std::fwrite(fr.data(), 1, fr.size(), f) == fr.size();
  }
  return std::fclose(f) == 0 && ok;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const char *codecs[] = {"lz4:1", "zstd:3", "igzip:1", "raw"};
  const std::size_t sizes[] = {128, 512, 1472};
  int n = 0, frames = 0;
  for (mode m : {mode::datacenter, mode::internet, mode::hybrid})
    for (const char *codec : codecs)
      for (std::size_t sz : sizes) {
        auto fr = session(m, codec, sz, 0x1234u + static_cast<unsigned>(n));
        // The seeds must be valid input: decode with the fuzzer's settings.
        null_sink sink;
        decoder dec(decoder_config{64, false}, sink);
        for (const auto &f : fr)
          if (error e = dec.on_frame({f.data(), f.size()}); e != error::ok) {
            std::fprintf(stderr, "make_seeds: %s %s %zu: frame rejected: %s\n", mode_name(m), codec,
                         sz, std::string(to_string(e)).c_str());
            return 1;
          }
        std::string base = dir + "/seed-" + mode_name(m) + "-" + codec + "-" + std::to_string(sz);
        for (char &ch : base)
          if (ch == ':')
            ch = '_';
        if (!write_seed(base, 0, fr) || !write_seed(base + "-reseal", 1, fr)) {
          std::fprintf(stderr, "make_seeds: cannot write %s\n", base.c_str());
          return 1;
        }
        frames += static_cast<int>(fr.size());
        ++n;
      }
  std::printf("make_seeds: %d sessions, %d frames (pages: %llu zero, %llu ref, %llu delta of "
              "which %llu xor, %llu page; %llu frags) in %s\n",
              n, frames, static_cast<unsigned long long>(g_rungs[0]),
              static_cast<unsigned long long>(g_rungs[1]), static_cast<unsigned long long>(g_rungs[2]),
              static_cast<unsigned long long>(g_xor_deltas), static_cast<unsigned long long>(g_rungs[3]),
              static_cast<unsigned long long>(g_frags), dir.c_str());
  return 0;
}
