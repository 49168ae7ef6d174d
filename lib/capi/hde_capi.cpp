// hde_capi.cpp — the C ABI (capi/hde.h) over the C++ engine.
#include "hde.h"

#include <cstring>
#include <new>
#include <vector>

#include "engine/decoder.h"
#include "engine/encoder.h"
#include "wire/format.h"

using namespace hde;

static_assert(static_cast<int>(error::bad_input) == HDE_E_BAD_INPUT, "hde_error mirrors hde::error");

namespace {

int rc(error e) { return -static_cast<int>(e); }

class callback_output final : public frame_output {
public:
  callback_output(std::size_t cap, hde_frame_fn fn, void *user) : buf_(cap), fn_(fn), user_(user) {}
  bytes_buf acquire() override { return {buf_.data(), buf_.size()}; }
  void commit(bytes_buf f, std::size_t len) override { fn_(user_, f.data(), len); }

private:
  std::vector<std::byte> buf_;
  hde_frame_fn fn_;
  void *user_;
};

class callback_sink final : public page_sink {
public:
  explicit callback_sink(const hde_sink &s) : s_(s) {}
  error put_page(page_key k, const std::byte *p) override {
    return s_.put_page(s_.user, k.vm, k.gfn, p) == 0 ? error::ok : error::bad_input;
  }
  error put_zero(std::uint32_t vm, std::uint64_t gfn, std::uint32_t n) override {
    return s_.put_zero(s_.user, vm, gfn, n) == 0 ? error::ok : error::bad_input;
  }
  void on_mark(std::uint32_t vm, std::uint32_t round, std::uint64_t pages, bool last) override {
    if (s_.on_mark)
      s_.on_mark(s_.user, vm, round, pages, last ? 1 : 0);
  }
  void on_lost(page_key k, error e) override {
    if (s_.on_lost)
      s_.on_lost(s_.user, k.vm, k.gfn, rc(e));
  }

private:
  hde_sink s_;
};

}  // namespace

struct hde_encoder {
  callback_output out;
  encoder enc;
  hde_encoder(const encoder_config &c, hde_frame_fn fn, void *user)
      : out(c.max_frame, fn, user), enc(c, out) {}
};

struct hde_decoder {
  callback_sink sink;
  decoder dec;
  hde_decoder(const hde_sink &s, const decoder_config &c) : sink(s), dec(c, sink) {}
};

extern "C" {

__attribute__((visibility("default"))) void hde_encoder_config_init(hde_encoder_config *cfg,
                                                                    hde_mode m) {
  encoder_config d = encoder_config::for_mode(static_cast<mode>(m));
  cfg->mode = m;
  cfg->codec = nullptr;
  cfg->max_frame = d.max_frame;
  cfg->cache_bytes = d.cache_bytes;
  cfg->stream = d.stream;
  cfg->epoch = d.epoch;
}

__attribute__((visibility("default"))) hde_encoder *
hde_encoder_create(const hde_encoder_config *cfg, hde_frame_fn fn, void *user) {
  if (cfg == nullptr || fn == nullptr)
    return nullptr;
  // A C caller may store any int in the enum field: read it as an int.
  int m;
  static_assert(sizeof m == sizeof cfg->mode);
  std::memcpy(&m, &cfg->mode, sizeof m);
  if (m < HDE_MODE_DATACENTER || m > HDE_MODE_HYBRID)
    return nullptr;
  if (cfg->max_frame < wire::kMinFrameSize || cfg->max_frame > wire::kMaxFrameSize)
    return nullptr;
  encoder_config c = encoder_config::for_mode(static_cast<mode>(m));
  if (cfg->codec != nullptr) {
    auto spec = parse_codec(cfg->codec);
    if (!spec)
      return nullptr;
    c.codec() = *spec;
  }
  c.max_frame = cfg->max_frame;
  c.cache_bytes = cfg->cache_bytes;
  c.stream = cfg->stream;
  c.epoch = cfg->epoch;
  return new (std::nothrow) hde_encoder(c, fn, user);
}

__attribute__((visibility("default"))) void hde_encoder_destroy(hde_encoder *e) { delete e; }

__attribute__((visibility("default"))) int hde_encode_pages(hde_encoder *e, const hde_page *pages,
                                                            size_t n) {
  if (e == nullptr || (pages == nullptr && n != 0))
    return rc(error::bad_input);
  page_in burst[32];
  for (size_t i = 0; i < n;) {
    size_t k = 0;
    for (; k < 32 && i < n; ++k, ++i) {
      if (pages[i].data == nullptr)
        return rc(error::bad_input);
      burst[k] = {{pages[i].vm, pages[i].gfn}, static_cast<const std::byte *>(pages[i].data)};
    }
    e->enc.encode(burst, k);
  }
  return 0;
}

__attribute__((visibility("default"))) int hde_encoder_repair_pages(hde_encoder *e, const hde_page *pages,
                                                                    size_t n) {
  if (e == nullptr || (pages == nullptr && n != 0))
    return rc(error::bad_input);
  for (size_t i = 0; i < n; ++i) {
    if (pages[i].data == nullptr)
      return rc(error::bad_input);
    const page_in p{{pages[i].vm, pages[i].gfn}, static_cast<const std::byte *>(pages[i].data)};
    e->enc.repair(&p, 1);
  }
  return 0;
}

__attribute__((visibility("default"))) int hde_encoder_mark_round(hde_encoder *e, uint32_t vm,
                                                                  uint32_t round, uint64_t pages,
                                                                  int last) {
  if (e == nullptr)
    return rc(error::bad_input);
  e->enc.mark_round(vm, round, pages, last != 0);
  return 0;
}

__attribute__((visibility("default"))) int hde_encoder_flush(hde_encoder *e) {
  if (e == nullptr)
    return rc(error::bad_input);
  e->enc.flush();
  return 0;
}

__attribute__((visibility("default"))) int hde_encoder_set_codec(hde_encoder *e, const char *codec) {
  if (e == nullptr || codec == nullptr)
    return rc(error::bad_input);
  auto spec = parse_codec(codec);
  if (!spec)
    return rc(error::bad_codec);
  e->enc.set_codec(*spec);
  return 0;
}

__attribute__((visibility("default"))) void hde_encoder_get_stats(const hde_encoder *e,
                                                                  hde_encoder_stats *out) {
  const encoder_stats &s = e->enc.stats();
  out->pages_in = s.pages_in;
  out->zero_pages = s.rung_pages[0];
  out->ref_pages = s.rung_pages[1];
  out->delta_pages = s.rung_pages[2];
  out->page_pages = s.rung_pages[3];
  out->frames = s.frames;
  out->frame_bytes = s.frame_bytes;
}

__attribute__((visibility("default"))) hde_decoder *hde_decoder_create(const hde_sink *sink,
                                                                      uint32_t max_slots) {
  if (sink == nullptr || sink->put_page == nullptr || sink->put_zero == nullptr)
    return nullptr;
  decoder_config c;
  if (max_slots != 0)
    c.max_slots = max_slots;
  return new (std::nothrow) hde_decoder(*sink, c);
}

__attribute__((visibility("default"))) void hde_decoder_destroy(hde_decoder *d) { delete d; }

__attribute__((visibility("default"))) int hde_decode_frame(hde_decoder *d, const void *frame,
                                                            size_t len) {
  if (d == nullptr || (frame == nullptr && len != 0))
    return rc(error::bad_input);
  return rc(d->dec.on_frame({static_cast<const std::byte *>(frame), len}));
}

__attribute__((visibility("default"))) void hde_decoder_get_stats(const hde_decoder *d,
                                                                  hde_decoder_stats *out) {
  const decoder_stats &s = d->dec.stats();
  out->frames = s.frames;
  out->zero_pages = s.rung_pages[0];
  out->ref_pages = s.rung_pages[1];
  out->delta_pages = s.rung_pages[2];
  out->page_pages = s.rung_pages[3];
  out->errors = 0;
  for (auto n : s.errors)
    out->errors += n;
  out->pages_lost = s.pages_lost;
}

__attribute__((visibility("default"))) const char *hde_strerror(int err) {
  // Unsigned magnitude: -INT_MIN would overflow.
  const unsigned e = err < 0 ? 0u - static_cast<unsigned>(err) : static_cast<unsigned>(err);
  if (e >= static_cast<unsigned>(error::count_))
    return "unknown error";
  return to_string(static_cast<error>(e)).data();  // string literals: NUL-terminated
}

__attribute__((visibility("default"))) const char *hde_version(void) { return "0.1.0"; }

}  // extern "C"
