/* capi_test.c — CMocka tests of the C ABI (lib/capi/hde.h), written in C11.
 *
 * Round trips: an encoder per mode and codec whose frame callback feeds each
 * frame straight into a decoder; the decoder's sink writes into a destination
 * memory image that must equal the source after every round mark. Then the
 * error paths: bad configurations, bad sinks, corrupt or reordered frames,
 * rejecting sinks, bad codec names and hde_strerror().
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hde.h"

#define NPAGES 320u
#define PAGE HDE_PAGE_SIZE
#define VM 7u
#define ROUNDS 3u

/* --- deterministic page generator ----------------------------------------- */

static uint64_t rng_next(uint64_t *s) {
  /* xorshift64* */
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

static void fill_random(uint8_t *p, uint64_t *rng) {
  for (size_t i = 0; i < PAGE; i += 8) {
    uint64_t v = rng_next(rng);
    memcpy(p + i, &v, 8);
  }
}

static void fill_text(uint8_t *p, uint64_t *rng) {
  static const char *const words[] = {"the ",     "page ",   "migration ", "guest ", "kernel ",
                                      "memory ",  "round ",  "dirty ",     "frame ", "vm ",
                                      "baseline ", "delta\n", "zero ",     "of ",    "and "};
  const size_t nwords = sizeof words / sizeof words[0];
  size_t i = 0;
  while (i < PAGE) {
    const char *w = words[rng_next(rng) % nwords];
    size_t n = strlen(w);
    if (n > PAGE - i)
      n = PAGE - i;
    memcpy(p + i, w, n);
    i += n;
  }
}

/* Overwrite a few short spans of a page with text: a sparse change, which
 * the encoder should send as a DELTA against the page's baseline. */
static void mutate_sparse(uint8_t *p, uint64_t *rng) {
  for (int k = 0; k < 4; ++k) {
    size_t off = (size_t)(rng_next(rng) % (PAGE - 16));
    for (size_t j = 0; j < 12; ++j)
      p[off + j] = (uint8_t)('a' + rng_next(rng) % 26);
  }
}

/* Page kinds of the initial image, by gfn. */
static void build_image(uint8_t *img, uint64_t seed) {
  uint64_t rng = seed;
  for (uint32_t g = 0; g < NPAGES; ++g) {
    uint8_t *p = img + (size_t)g * PAGE;
    switch (g % 8) {
    case 0:
    case 5: memset(p, 0, PAGE); break;                       /* zero */
    case 1:                                                  /* duplicate of page 3 */
    case 4:                                                  /* duplicate of the page 8 back */
      if (g >= 8)
        memcpy(p, img + (size_t)(g % 8 == 1 ? 3 : g - 8) * PAGE, PAGE);
      else
        fill_text(p, &rng);
      break;
    case 6: fill_random(p, &rng); break;                     /* incompressible */
    default: fill_text(p, &rng); break;                      /* text-like */
    }
  }
}

/* Mutate some pages in place for a later round; marks them in dirty[]. */
static void mutate_image(uint8_t *img, uint8_t *dirty, uint32_t round, uint64_t *rng) {
  memset(dirty, 0, NPAGES);
  for (uint32_t g = 0; g < NPAGES; ++g) {
    uint8_t *p = img + (size_t)g * PAGE;
    uint32_t r = (uint32_t)(rng_next(rng) % 16);
    if (r < 5) {          /* small change: DELTA */
      if (g % 8 == 0 || g % 8 == 5)
        continue;
      mutate_sparse(p, rng);
    } else if (r == 5) {  /* rewritten completely */
      fill_random(p, rng);
    } else if (r == 6) {  /* becomes zero */
      memset(p, 0, PAGE);
    } else if (r == 7) {  /* becomes a copy of another page: REF */
      uint32_t src = (g + 1 + round) % NPAGES;
      memmove(p, img + (size_t)src * PAGE, PAGE);
    } else if (r == 8) {  /* new text */
      fill_text(p, rng);
    } else {
      continue;
    }
    dirty[g] = 1;
  }
}

/* --- decoder side: a sink writing into a destination image ------------------ */

struct dest {
  uint8_t *mem;       /* NPAGES pages */
  uint64_t npages;
  int reject;         /* put_page refuses every page */
  unsigned reject_every; /* put_page refuses every n-th call (0: never) */
  unsigned puts;
  uint64_t lost[4 * NPAGES]; /* on_lost reports, in order */
  unsigned nlost;
  unsigned bad_keys;  /* pages outside the image or of another VM */
  unsigned marks;
  uint32_t mark_vm, mark_round;
  uint64_t mark_pages;
  int mark_last;
};

static int dest_put_page(void *user, uint32_t vm, uint64_t gfn, const void *page) {
  struct dest *d = user;
  if (d->reject)
    return 1;
  if (d->reject_every != 0 && ++d->puts % d->reject_every == 0)
    return 1;
  if (vm != VM || gfn >= d->npages) {
    ++d->bad_keys;
    return 1;
  }
  memcpy(d->mem + gfn * PAGE, page, PAGE);
  return 0;
}

static int dest_put_zero(void *user, uint32_t vm, uint64_t gfn, uint32_t count) {
  struct dest *d = user;
  if (vm != VM || gfn >= d->npages || count > d->npages - gfn) {
    ++d->bad_keys;
    return 1;
  }
  memset(d->mem + gfn * PAGE, 0, (size_t)count * PAGE);
  return 0;
}

static void dest_on_mark(void *user, uint32_t vm, uint32_t round, uint64_t pages, int last) {
  struct dest *d = user;
  ++d->marks;
  d->mark_vm = vm;
  d->mark_round = round;
  d->mark_pages = pages;
  d->mark_last = last;
}

static void dest_on_lost(void *user, uint32_t vm, uint64_t gfn, int err) {
  struct dest *d = user;
  assert_int_equal(vm, VM);
  assert_true(err < 0);
  assert_true(d->nlost < sizeof d->lost / sizeof d->lost[0]);
  d->lost[d->nlost++] = gfn;
}

static hde_sink dest_sink(struct dest *d) {
  hde_sink s;
  memset(&s, 0, sizeof s);
  s.user = d;
  s.put_page = dest_put_page;
  s.put_zero = dest_put_zero;
  s.on_mark = dest_on_mark;
  s.on_lost = dest_on_lost;
  return s;
}

/* --- encoder side: frames go straight to a decoder, or into a list ---------- */

struct link {
  hde_decoder *dec;
  unsigned frames;
  unsigned failures;
  int last_rc;
  size_t max_len;
};

static void link_frame(void *user, const void *frame, size_t len) {
  struct link *l = user;
  ++l->frames;
  if (len > l->max_len)
    l->max_len = len;
  l->last_rc = hde_decode_frame(l->dec, frame, len);
  if (l->last_rc != 0)
    ++l->failures;
}

struct capture {
  unsigned n, cap;
  size_t *len;
  uint8_t **data;
};

static void capture_frame(void *user, const void *frame, size_t len) {
  struct capture *c = user;
  if (c->n == c->cap) {
    c->cap = c->cap ? 2 * c->cap : 256;
    c->len = realloc(c->len, c->cap * sizeof *c->len);
    c->data = realloc(c->data, c->cap * sizeof *c->data);
    assert_non_null(c->len);
    assert_non_null(c->data);
  }
  c->data[c->n] = malloc(len);
  assert_non_null(c->data[c->n]);
  memcpy(c->data[c->n], frame, len);
  c->len[c->n] = len;
  ++c->n;
}

static void capture_free(struct capture *c) {
  for (unsigned i = 0; i < c->n; ++i)
    free(c->data[i]);
  free(c->len);
  free(c->data);
  memset(c, 0, sizeof *c);
}

/* Encode the pages of img flagged in sel (all when sel is NULL), in bursts. */
static uint64_t encode_selected(hde_encoder *enc, const uint8_t *img, const uint8_t *sel) {
  hde_page burst[37];
  size_t k = 0;
  uint64_t sent = 0;
  for (uint32_t g = 0; g < NPAGES; ++g) {
    if (sel != NULL && !sel[g])
      continue;
    burst[k].vm = VM;
    burst[k].gfn = g;
    burst[k].data = img + (size_t)g * PAGE;
    ++k;
    ++sent;
    if (k == sizeof burst / sizeof burst[0]) {
      assert_int_equal(hde_encode_pages(enc, burst, k), 0);
      k = 0;
    }
  }
  if (k > 0)
    assert_int_equal(hde_encode_pages(enc, burst, k), 0);
  return sent;
}

/* Round 1 offers every page; later rounds dirty some and offer those. */
static uint64_t encode_round(hde_encoder *enc, uint8_t *src, uint8_t *dirty, uint32_t round, uint64_t *rng) {
  if (round == 1)
    return encode_selected(enc, src, NULL);
  mutate_image(src, dirty, round, rng);
  return encode_selected(enc, src, dirty);
}

/* Frames of the last capture_session(). */
static struct capture g_cap;

/* --- round trips --------------------------------------------------------------- */

struct roundtrip_params {
  hde_mode mode;
  const char *codec; /* NULL: the mode's default */
  size_t max_frame;  /* 0: the mode's default */
  size_t cache_bytes;
};

static void run_roundtrip(const struct roundtrip_params *prm) {
  uint8_t *src = malloc((size_t)NPAGES * PAGE);
  uint8_t *dst = malloc((size_t)NPAGES * PAGE);
  uint8_t dirty[NPAGES];
  assert_non_null(src);
  assert_non_null(dst);
  build_image(src, 0x9E3779B97F4A7C15ULL + (uint64_t)prm->mode);
  memset(dst, 0xEE, (size_t)NPAGES * PAGE); /* not zero: ZERO records must land */

  struct dest d;
  memset(&d, 0, sizeof d);
  d.mem = dst;
  d.npages = NPAGES;
  hde_sink sink = dest_sink(&d);
  struct link l;
  memset(&l, 0, sizeof l);
  l.dec = hde_decoder_create(&sink, 0);
  assert_non_null(l.dec);

  hde_encoder_config cfg;
  hde_encoder_config_init(&cfg, prm->mode);
  assert_int_equal(cfg.mode, prm->mode);
  assert_true(cfg.max_frame >= 128 && cfg.max_frame <= 65507);
  cfg.codec = prm->codec;
  if (prm->max_frame != 0)
    cfg.max_frame = prm->max_frame;
  cfg.cache_bytes = prm->cache_bytes;
  cfg.stream = 3;
  cfg.epoch = 11;
  hde_encoder *enc = hde_encoder_create(&cfg, link_frame, &l);
  assert_non_null(enc);

  uint64_t rng = 12345u + (uint64_t)prm->mode;
  uint64_t total = 0;
  for (uint32_t round = 1; round <= ROUNDS; ++round) {
    const uint64_t sent = encode_round(enc, src, dirty, round, &rng);
    assert_true(sent > 0);
    total += sent;
    int last = round == ROUNDS;
    unsigned marks_before = d.marks;
    assert_int_equal(hde_encoder_mark_round(enc, VM, round, sent, last), 0);

    assert_int_equal(l.failures, 0);
    assert_int_equal(d.bad_keys, 0);
    assert_int_equal(d.marks, marks_before + 1);
    assert_int_equal(d.mark_vm, VM);
    assert_int_equal(d.mark_round, round);
    assert_int_equal(d.mark_pages, sent);
    assert_int_equal(d.mark_last, last);
    assert_memory_equal(dst, src, (size_t)NPAGES * PAGE);
  }
  assert_true(l.max_len <= cfg.max_frame);

  hde_encoder_stats es;
  hde_decoder_stats ds;
  hde_encoder_get_stats(enc, &es);
  hde_decoder_get_stats(l.dec, &ds);
  assert_int_equal(es.pages_in, total);
  assert_int_equal(es.pages_in, es.zero_pages + es.ref_pages + es.delta_pages + es.page_pages);
  assert_true(es.zero_pages > 0);
  assert_true(es.page_pages > 0);
  if (prm->cache_bytes > 0) {
    assert_true(es.ref_pages > 0);
    assert_true(es.delta_pages > 0);
  } else {
    assert_int_equal(es.ref_pages, 0);
    assert_int_equal(es.delta_pages, 0);
  }
  assert_int_equal(es.frames, l.frames);
  assert_true(es.frame_bytes > 0 && es.frame_bytes <= (uint64_t)es.frames * cfg.max_frame);

  assert_int_equal(ds.frames, es.frames);
  assert_int_equal(ds.zero_pages, es.zero_pages);
  assert_int_equal(ds.ref_pages, es.ref_pages);
  assert_int_equal(ds.delta_pages, es.delta_pages);
  assert_int_equal(ds.page_pages, es.page_pages);
  assert_int_equal(ds.errors, 0);

  /* Idle flush: nothing left, nothing sent, decoder still happy. */
  unsigned frames_before = l.frames;
  assert_int_equal(hde_encoder_flush(enc), 0);
  assert_int_equal(l.frames, frames_before);

  hde_encoder_destroy(enc);
  hde_decoder_destroy(l.dec);
  free(src);
  free(dst);
}

static void test_roundtrip(void **state) { run_roundtrip(*state); }

/* A page the destination cannot take is reported lost (on_lost), never
 * guessed; the source sends it again whole (hde_encoder_repair_pages) until
 * nothing is lost, and the images agree after every round. */
static void test_lost_pages_repaired(void **state) {
  (void)state;
  for (int mode = HDE_MODE_DATACENTER; mode <= HDE_MODE_INTERNET; ++mode) {
    uint8_t *src = malloc((size_t)NPAGES * PAGE);
    uint8_t *dst = malloc((size_t)NPAGES * PAGE);
    uint8_t dirty[NPAGES];
    assert_non_null(src);
    assert_non_null(dst);
    build_image(src, 77u + (uint64_t)mode);
    memset(dst, 0xEE, (size_t)NPAGES * PAGE);
    struct dest d;
    memset(&d, 0, sizeof d);
    d.mem = dst;
    d.npages = NPAGES;
    d.reject_every = 7;
    hde_sink sink = dest_sink(&d);
    struct link l;
    memset(&l, 0, sizeof l);
    l.dec = hde_decoder_create(&sink, 0);
    hde_encoder_config cfg;
    hde_encoder_config_init(&cfg, (hde_mode)mode);
    cfg.cache_bytes = 8u << 20;
    hde_encoder *enc = hde_encoder_create(&cfg, link_frame, &l);
    assert_non_null(enc);
    uint64_t rng = 99u, repaired = 0;
    for (uint32_t round = 1; round <= ROUNDS; ++round) {
      const uint64_t sent = encode_round(enc, src, dirty, round, &rng);
      assert_int_equal(hde_encoder_mark_round(enc, VM, round, sent, round == ROUNDS), 0);
      for (int tries = 0; d.nlost != 0; ++tries) {
        assert_true(tries < 50);
        hde_page again[64];
        unsigned n = 0;
        unsigned nlost = d.nlost;
        d.nlost = 0;
        for (unsigned i = 0; i < nlost; ++i) {
          again[n].vm = VM;
          again[n].gfn = d.lost[i];
          again[n].data = src + d.lost[i] * PAGE;
          if (++n == 64 || i + 1 == nlost) {
            assert_int_equal(hde_encoder_repair_pages(enc, again, n), 0);
            repaired += n;
            n = 0;
          }
        }
        assert_int_equal(hde_encoder_flush(enc), 0);
      }
      assert_memory_equal(dst, src, (size_t)NPAGES * PAGE);
    }
    hde_decoder_stats ds;
    hde_decoder_get_stats(l.dec, &ds);
    assert_true(repaired > 0);
    assert_int_equal(ds.pages_lost, repaired);
    assert_int_equal(d.bad_keys, 0);
    hde_encoder_destroy(enc);
    hde_decoder_destroy(l.dec);
    free(src);
    free(dst);
  }
}

#define CACHE (8u << 20)
static struct roundtrip_params rt_params[] = {
    {HDE_MODE_DATACENTER, NULL, 0, CACHE},     {HDE_MODE_DATACENTER, "lz4:1", 0, CACHE},
    {HDE_MODE_DATACENTER, "zstd:3", 0, CACHE}, {HDE_MODE_DATACENTER, "igzip:1", 0, CACHE},
    {HDE_MODE_DATACENTER, "raw", 0, CACHE},    {HDE_MODE_INTERNET, NULL, 0, CACHE},
    {HDE_MODE_INTERNET, "lz4:1", 0, CACHE},    {HDE_MODE_INTERNET, "zstd:3", 0, CACHE},
    {HDE_MODE_INTERNET, "igzip:1", 0, CACHE},  {HDE_MODE_INTERNET, "raw", 0, CACHE},
    {HDE_MODE_HYBRID, NULL, 0, CACHE},         {HDE_MODE_HYBRID, "lz4:1", 0, CACHE},
    {HDE_MODE_HYBRID, "zstd:3", 0, CACHE},     {HDE_MODE_HYBRID, "igzip:1", 0, CACHE},
    {HDE_MODE_HYBRID, "raw", 0, CACHE},
    /* Small frames: every page record travels as FRAG pieces. */
    {HDE_MODE_DATACENTER, "lz4:1", 128, CACHE}, {HDE_MODE_INTERNET, "zstd:3", 200, CACHE},
    /* Jumbo frames. */
    {HDE_MODE_HYBRID, "lz4:1", 9000, CACHE},
    /* No baseline cache: no REF, no DELTA. */
    {HDE_MODE_DATACENTER, "lz4:1", 0, 0},      {HDE_MODE_INTERNET, NULL, 0, 0},
};

/* hde_encoder_set_codec mid-stream: the decoder follows without being told. */
static void test_set_codec(void **state) {
  (void)state;
  uint8_t *src = malloc((size_t)NPAGES * PAGE);
  uint8_t *dst = calloc(NPAGES, PAGE);
  assert_non_null(src);
  assert_non_null(dst);
  build_image(src, 77);

  struct dest d;
  memset(&d, 0, sizeof d);
  d.mem = dst;
  d.npages = NPAGES;
  hde_sink sink = dest_sink(&d);
  struct link l;
  memset(&l, 0, sizeof l);
  l.dec = hde_decoder_create(&sink, 0);
  assert_non_null(l.dec);
  hde_encoder_config cfg;
  hde_encoder_config_init(&cfg, HDE_MODE_DATACENTER);
  cfg.cache_bytes = CACHE;
  hde_encoder *enc = hde_encoder_create(&cfg, link_frame, &l);
  assert_non_null(enc);

  assert_int_equal(hde_encoder_set_codec(enc, "zstd:99"), -HDE_E_BAD_CODEC);
  assert_int_equal(hde_encoder_set_codec(enc, "foo"), -HDE_E_BAD_CODEC);
  assert_int_equal(hde_encoder_set_codec(enc, ""), -HDE_E_BAD_CODEC);
  assert_int_equal(hde_encoder_set_codec(enc, NULL), -HDE_E_BAD_INPUT);
  assert_int_equal(hde_encoder_set_codec(NULL, "lz4:1"), -HDE_E_BAD_INPUT);

  const char *codecs[] = {"zstd:3", "igzip:1", "raw", "lz4:1"};
  uint8_t sel[NPAGES];
  for (unsigned c = 0; c < 4; ++c) {
    assert_int_equal(hde_encoder_set_codec(enc, codecs[c]), 0);
    for (uint32_t g = 0; g < NPAGES; ++g)
      sel[g] = (uint8_t)(g % 4 == c);
    uint64_t sent = encode_selected(enc, src, sel);
    assert_int_equal(hde_encoder_mark_round(enc, VM, c + 1, sent, c == 3), 0);
    assert_int_equal(l.failures, 0);
    assert_int_equal(d.mark_round, c + 1);
    assert_int_equal(d.mark_last, c == 3);
  }
  assert_memory_equal(dst, src, (size_t)NPAGES * PAGE);
  hde_encoder_destroy(enc);
  hde_decoder_destroy(l.dec);
  free(src);
  free(dst);
}

/* --- error paths ------------------------------------------------------------------ */

static void null_frame_fn(void *user, const void *frame, size_t len) {
  (void)user;
  (void)frame;
  (void)len;
}

static void test_encoder_create_errors(void **state) {
  (void)state;
  hde_encoder_config cfg;
  hde_encoder_config_init(&cfg, HDE_MODE_DATACENTER);
  cfg.cache_bytes = 1u << 20;

  assert_null(hde_encoder_create(NULL, null_frame_fn, NULL));
  assert_null(hde_encoder_create(&cfg, NULL, NULL));

  const char *bad_codecs[] = {"zstd:99", "foo", "lz4:0", "igzip:4", "zstd:", "", "raw:3x"};
  for (size_t i = 0; i < sizeof bad_codecs / sizeof bad_codecs[0]; ++i) {
    hde_encoder_config c = cfg;
    c.codec = bad_codecs[i];
    assert_null(hde_encoder_create(&c, null_frame_fn, NULL));
  }

  const size_t bad_sizes[] = {0, 10, 127, 65508, 70000};
  for (size_t i = 0; i < sizeof bad_sizes / sizeof bad_sizes[0]; ++i) {
    hde_encoder_config c = cfg;
    c.max_frame = bad_sizes[i];
    assert_null(hde_encoder_create(&c, null_frame_fn, NULL));
  }

  /* 3 is the only bad mode C++ can load from an hde_mode without undefined
   * behaviour (its enum range is 0..3), so UBSan builds stay clean. */
  hde_encoder_config c = cfg;
  c.mode = (hde_mode)3;
  assert_null(hde_encoder_create(&c, null_frame_fn, NULL));

  /* The bounds themselves are fine. */
  const size_t good_sizes[] = {128, 65507};
  for (size_t i = 0; i < 2; ++i) {
    c = cfg;
    c.max_frame = good_sizes[i];
    hde_encoder *e = hde_encoder_create(&c, null_frame_fn, NULL);
    assert_non_null(e);
    hde_encoder_destroy(e);
  }
  hde_encoder_destroy(NULL); /* no-op */
}

static void test_encoder_call_errors(void **state) {
  (void)state;
  hde_encoder_config cfg;
  hde_encoder_config_init(&cfg, HDE_MODE_DATACENTER);
  cfg.cache_bytes = 1u << 20;
  hde_encoder *e = hde_encoder_create(&cfg, null_frame_fn, NULL);
  assert_non_null(e);

  uint8_t page[PAGE];
  memset(page, 1, sizeof page);
  hde_page p = {VM, 0, NULL};
  assert_int_equal(hde_encode_pages(e, &p, 1), -HDE_E_BAD_INPUT);
  assert_int_equal(hde_encode_pages(e, NULL, 1), -HDE_E_BAD_INPUT);
  assert_int_equal(hde_encode_pages(e, NULL, 0), 0);
  p.data = page;
  assert_int_equal(hde_encode_pages(NULL, &p, 1), -HDE_E_BAD_INPUT);
  assert_int_equal(hde_encode_pages(e, &p, 1), 0);
  assert_int_equal(hde_encoder_mark_round(NULL, VM, 1, 1, 0), -HDE_E_BAD_INPUT);
  assert_int_equal(hde_encoder_flush(NULL), -HDE_E_BAD_INPUT);
  assert_int_equal(hde_encoder_repair_pages(NULL, &p, 1), -HDE_E_BAD_INPUT);
  assert_int_equal(hde_encoder_repair_pages(e, NULL, 1), -HDE_E_BAD_INPUT);
  assert_int_equal(hde_encoder_repair_pages(e, NULL, 0), 0);

  hde_encoder_stats st;
  hde_encoder_get_stats(e, &st);
  assert_int_equal(st.pages_in, 1);
  assert_int_equal(st.page_pages, 1);
  hde_encoder_destroy(e);
}

static void test_decoder_create_errors(void **state) {
  (void)state;
  struct dest d;
  memset(&d, 0, sizeof d);
  assert_null(hde_decoder_create(NULL, 0));
  hde_sink s = dest_sink(&d);
  s.put_page = NULL;
  assert_null(hde_decoder_create(&s, 0));
  s = dest_sink(&d);
  s.put_zero = NULL;
  assert_null(hde_decoder_create(&s, 0));
  s = dest_sink(&d);
  s.on_mark = NULL; /* optional */
  hde_decoder *dec = hde_decoder_create(&s, 16);
  assert_non_null(dec);
  hde_decoder_destroy(dec);
  hde_decoder_destroy(NULL); /* no-op */
}

/* Encode a few pages (of each kind) and a mark into g_cap. */
static void capture_session(size_t max_frame, size_t cache_bytes) {
  capture_free(&g_cap);
  hde_encoder_config cfg;
  hde_encoder_config_init(&cfg, HDE_MODE_DATACENTER);
  cfg.max_frame = max_frame;
  cfg.cache_bytes = cache_bytes;
  hde_encoder *e = hde_encoder_create(&cfg, capture_frame, &g_cap);
  assert_non_null(e);
  uint8_t *img = malloc((size_t)NPAGES * PAGE);
  assert_non_null(img);
  build_image(img, 4242);
  uint64_t sent = encode_selected(e, img, NULL);
  assert_int_equal(hde_encoder_mark_round(e, VM, 1, sent, 1), 0);
  hde_encoder_destroy(e);
  free(img);
  assert_true(g_cap.n >= 4);
}

static hde_decoder *new_decoder(struct dest *d, uint8_t *mem) {
  memset(d, 0, sizeof *d);
  d->mem = mem;
  d->npages = NPAGES;
  hde_sink s = dest_sink(d);
  hde_decoder *dec = hde_decoder_create(&s, 0);
  assert_non_null(dec);
  return dec;
}

static void test_decode_corrupt(void **state) {
  (void)state;
  uint8_t *mem = calloc(NPAGES, PAGE);
  assert_non_null(mem);
  capture_session(1472, CACHE);
  struct dest d;
  hde_decoder *dec = new_decoder(&d, mem);
  const uint8_t *f0 = g_cap.data[0];
  size_t n0 = g_cap.len[0];
  assert_true(n0 > 40);

  /* Garbage. */
  uint8_t junk[256];
  uint64_t rng = 99;
  for (size_t i = 0; i < sizeof junk; ++i)
    junk[i] = (uint8_t)rng_next(&rng);
  junk[0] = 0x00; /* surely not the magic */
  assert_int_equal(hde_decode_frame(dec, junk, sizeof junk), -HDE_E_BAD_MAGIC);
  memset(junk, 0, sizeof junk);
  assert_true(hde_decode_frame(dec, junk, sizeof junk) < 0);

  /* Shorter than a header; header promising more than there is. */
  assert_int_equal(hde_decode_frame(dec, f0, 0), -HDE_E_TRUNCATED);
  assert_int_equal(hde_decode_frame(dec, f0, 31), -HDE_E_TRUNCATED);
  assert_int_equal(hde_decode_frame(dec, f0, 32), -HDE_E_TRUNCATED);
  assert_int_equal(hde_decode_frame(dec, f0, n0 - 1), -HDE_E_TRUNCATED);
  assert_int_equal(hde_decode_frame(dec, NULL, 10), -HDE_E_BAD_INPUT);
  assert_int_equal(hde_decode_frame(NULL, f0, n0), -HDE_E_BAD_INPUT);

  /* Trailing junk after the declared payload. */
  uint8_t *buf = malloc(n0 + 8);
  assert_non_null(buf);
  memcpy(buf, f0, n0);
  memset(buf + n0, 0, 8);
  assert_int_equal(hde_decode_frame(dec, buf, n0 + 8), -HDE_E_BAD_LENGTH);

  /* One bit flipped: in the payload, in the CRC, in the magic, version, type. */
  memcpy(buf, f0, n0);
  buf[n0 - 5] ^= 0x10;
  assert_int_equal(hde_decode_frame(dec, buf, n0), -HDE_E_BAD_CRC);
  memcpy(buf, f0, n0);
  buf[28] ^= 0x01;
  assert_int_equal(hde_decode_frame(dec, buf, n0), -HDE_E_BAD_CRC);
  memcpy(buf, f0, n0);
  buf[16] ^= 0x01; /* seq */
  assert_int_equal(hde_decode_frame(dec, buf, n0), -HDE_E_BAD_CRC);
  memcpy(buf, f0, n0);
  buf[0] ^= 0x01;
  assert_int_equal(hde_decode_frame(dec, buf, n0), -HDE_E_BAD_MAGIC);
  memcpy(buf, f0, n0);
  buf[2] ^= 0x02;
  assert_int_equal(hde_decode_frame(dec, buf, n0), -HDE_E_BAD_VERSION);
  memcpy(buf, f0, n0);
  buf[3] = 0x09;
  assert_int_equal(hde_decode_frame(dec, buf, n0), -HDE_E_BAD_FRAME_TYPE);
  free(buf);

  /* Nothing of that reached the sink, and every rejection was counted. */
  hde_decoder_stats ds;
  hde_decoder_get_stats(dec, &ds);
  assert_int_equal(ds.frames, 0);
  assert_int_equal(ds.page_pages + ds.zero_pages + ds.ref_pages + ds.delta_pages, 0);
  assert_int_equal(ds.errors, 13);

  /* The intact stream still decodes after all that. */
  for (unsigned i = 0; i < g_cap.n; ++i)
    assert_int_equal(hde_decode_frame(dec, g_cap.data[i], g_cap.len[i]), 0);
  assert_int_equal(d.marks, 1);
  assert_int_equal(d.mark_last, 1);
  uint8_t *img = malloc((size_t)NPAGES * PAGE);
  assert_non_null(img);
  build_image(img, 4242);
  assert_memory_equal(mem, img, (size_t)NPAGES * PAGE);
  free(img);

  hde_decoder_destroy(dec);
  capture_free(&g_cap);
  free(mem);
}

static void test_decode_sequence_gap(void **state) {
  (void)state;
  uint8_t *mem = calloc(NPAGES, PAGE);
  assert_non_null(mem);
  capture_session(1472, CACHE);
  struct dest d;
  hde_decoder *dec = new_decoder(&d, mem);

  assert_int_equal(hde_decode_frame(dec, g_cap.data[0], g_cap.len[0]), 0);
  assert_int_equal(hde_decode_frame(dec, g_cap.data[2], g_cap.len[2]), -HDE_E_SEQUENCE_GAP);
  assert_int_equal(hde_decode_frame(dec, g_cap.data[0], g_cap.len[0]), -HDE_E_SEQUENCE_GAP);
  /* In order again: the rest of the stream goes through. */
  for (unsigned i = 1; i < g_cap.n; ++i)
    assert_int_equal(hde_decode_frame(dec, g_cap.data[i], g_cap.len[i]), 0);
  /* A replay of the last frame is a gap too. */
  assert_int_equal(hde_decode_frame(dec, g_cap.data[g_cap.n - 1], g_cap.len[g_cap.n - 1]),
                   -HDE_E_SEQUENCE_GAP);

  hde_decoder_stats ds;
  hde_decoder_get_stats(dec, &ds);
  assert_int_equal(ds.frames, g_cap.n);
  assert_int_equal(ds.errors, 3);
  assert_int_equal(d.marks, 1);
  hde_decoder_destroy(dec);
  capture_free(&g_cap);
  free(mem);
}

static void test_decode_sink_rejects(void **state) {
  (void)state;
  uint8_t *mem = calloc(NPAGES, PAGE);
  assert_non_null(mem);
  capture_session(1472, CACHE);
  struct dest d;
  hde_decoder *dec = new_decoder(&d, mem);
  d.reject = 1;

  /* The frame holding the first complete page record fails; frames before
   * it (INIT, the ZERO run of gfn 0, FRAG pieces of a batch of up to
   * 64 KiB, that is at most ~50 frames of 1472 bytes) go through. */
  int rc = 0;
  unsigned i = 0;
  for (; i < g_cap.n && rc == 0; ++i)
    rc = hde_decode_frame(dec, g_cap.data[i], g_cap.len[i]);
  assert_int_equal(rc, -HDE_E_BAD_INPUT);
  assert_true(i <= 64);

  /* Every page record of that frame is lost (reported, never guessed); the
   * frame's other records still applied. */
  hde_decoder_stats ds;
  hde_decoder_get_stats(dec, &ds);
  assert_true(ds.errors >= 1);
  assert_int_equal(ds.errors, ds.pages_lost);
  assert_int_equal(d.nlost, ds.pages_lost);
  assert_true(ds.zero_pages >= 1); /* the ZERO runs around the lost pages still apply */
  assert_int_equal(ds.page_pages + ds.ref_pages + ds.delta_pages, 0);
  hde_decoder_destroy(dec);

  /* A sink whose put_zero fails makes the frame fail as well: the ZERO run
   * of gfn 0 is the first record after the INIT (in datacenter mode at the
   * head of the first batch, which may span many frames). */
  dec = new_decoder(&d, mem);
  d.npages = 0; /* every key out of range */
  rc = 0;
  for (i = 0; i < g_cap.n && rc == 0; ++i)
    rc = hde_decode_frame(dec, g_cap.data[i], g_cap.len[i]);
  assert_int_equal(rc, -HDE_E_BAD_INPUT);
  assert_true(i <= 64);
  assert_int_equal(d.bad_keys, 1);
  hde_decoder_get_stats(dec, &ds);
  assert_int_equal(ds.zero_pages, 0);
  assert_int_equal(ds.errors, 1);
  hde_decoder_destroy(dec);
  capture_free(&g_cap);
  free(mem);
}

/* Frames of a fragmented stream (tiny max_frame) also reject corruption. */
static void test_decode_fragment_corrupt(void **state) {
  (void)state;
  uint8_t *mem = calloc(NPAGES, PAGE);
  assert_non_null(mem);
  capture_session(128, CACHE);
  assert_true(g_cap.n > 100);
  struct dest d;
  hde_decoder *dec = new_decoder(&d, mem);
  unsigned bad = g_cap.n / 2;
  for (unsigned i = 0; i < g_cap.n; ++i) {
    if (i == bad) {
      uint8_t buf[128];
      assert_true(g_cap.len[i] <= sizeof buf);
      memcpy(buf, g_cap.data[i], g_cap.len[i]);
      buf[g_cap.len[i] - 1] ^= 0x80;
      assert_int_equal(hde_decode_frame(dec, buf, g_cap.len[i]), -HDE_E_BAD_CRC);
    }
    assert_int_equal(hde_decode_frame(dec, g_cap.data[i], g_cap.len[i]), 0);
  }
  assert_int_equal(d.marks, 1);
  hde_decoder_destroy(dec);
  capture_free(&g_cap);
  free(mem);
}

static void test_strerror_version(void **state) {
  (void)state;
  for (int e = -18; e <= 0; ++e) {
    const char *s = hde_strerror(e);
    assert_non_null(s);
    assert_true(strlen(s) > 0);
    assert_string_not_equal(s, "unknown error");
  }
  /* Distinct names for distinct errors. */
  for (int a = -18; a <= 0; ++a)
    for (int b = a + 1; b <= 0; ++b)
      assert_string_not_equal(hde_strerror(a), hde_strerror(b));
  assert_string_equal(hde_strerror(0), "ok");
  assert_string_equal(hde_strerror(-HDE_E_BAD_CRC), "bad crc");
  assert_string_equal(hde_strerror(-HDE_E_SEQUENCE_GAP), "sequence gap");

  const int out_of_range[] = {-19, -100, 19, 1000, -1000000};
  for (size_t i = 0; i < sizeof out_of_range / sizeof out_of_range[0]; ++i) {
    const char *s = hde_strerror(out_of_range[i]);
    assert_non_null(s);
    assert_true(strlen(s) > 0);
    assert_string_equal(s, "unknown error");
  }

  const char *v = hde_version();
  assert_non_null(v);
  assert_true(strlen(v) > 0);
  assert_non_null(strchr(v, '.'));
}

int main(void) {
  enum { NRT = sizeof rt_params / sizeof rt_params[0] };
  static const char *const mode_names[] = {"datacenter", "internet", "hybrid"};
  static char names[NRT][96];
  struct CMUnitTest tests[NRT + 16];
  size_t n = 0;
  for (size_t i = 0; i < NRT; ++i) {
    const struct roundtrip_params *p = &rt_params[i];
    snprintf(names[i], sizeof names[i], "roundtrip %s codec=%s frame=%zu cache=%zu",
             mode_names[p->mode], p->codec ? p->codec : "default", p->max_frame, p->cache_bytes);
    struct CMUnitTest t = cmocka_unit_test_prestate(test_roundtrip, &rt_params[i]);
    t.name = names[i];
    tests[n++] = t;
  }
  const struct CMUnitTest rest[] = {
      cmocka_unit_test(test_set_codec),
      cmocka_unit_test(test_lost_pages_repaired),
      cmocka_unit_test(test_encoder_create_errors),
      cmocka_unit_test(test_encoder_call_errors),
      cmocka_unit_test(test_decoder_create_errors),
      cmocka_unit_test(test_decode_corrupt),
      cmocka_unit_test(test_decode_sequence_gap),
      cmocka_unit_test(test_decode_sink_rejects),
      cmocka_unit_test(test_decode_fragment_corrupt),
      cmocka_unit_test(test_strerror_version),
  };
  for (size_t i = 0; i < sizeof rest / sizeof rest[0]; ++i)
    tests[n++] = rest[i];
  return _cmocka_run_group_tests("capi", tests, n, NULL, NULL);
}
