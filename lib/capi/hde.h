/* hde.h — C ABI of the HDE engine, for embedding the page encoder and
 * decoder in a hypervisor or any C program. No DPDK needed.
 *
 * An encoder turns 4 KiB guest pages into sealed wire frames, handed to a
 * callback; a decoder takes those frames, in order, and hands rebuilt pages
 * to a sink. Each object belongs to one thread at a time. Functions return
 * 0 or a negative hde_error; hde_strerror() names it.
 */
#ifndef HDE_H
#define HDE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HDE_PAGE_SIZE 4096u

/* Negative return values. Mirrors hde::error in lib/common/error.h. */
enum hde_error {
  HDE_OK = 0,
  HDE_E_TRUNCATED = 1,
  HDE_E_BAD_MAGIC,
  HDE_E_BAD_VERSION,
  HDE_E_BAD_CRC,
  HDE_E_BAD_FRAME_TYPE,
  HDE_E_BAD_RECORD_TYPE,
  HDE_E_BAD_LENGTH,
  HDE_E_BAD_CODEC,
  HDE_E_CODEC_FAILED,
  HDE_E_BAD_SIZE,
  HDE_E_BAD_SLOT,
  HDE_E_STALE_BASELINE,
  HDE_E_BAD_DELTA,
  HDE_E_BAD_FRAGMENT,
  HDE_E_SEQUENCE_GAP,
  HDE_E_NO_SPACE,
  HDE_E_IO,
  HDE_E_BAD_INPUT,
};

typedef enum hde_mode { HDE_MODE_DATACENTER = 0, HDE_MODE_INTERNET = 1, HDE_MODE_HYBRID = 2 } hde_mode;

typedef struct hde_encoder_config {
  hde_mode mode;
  const char *codec;  /* NULL: the mode's default; else "lz4:1", "zstd:9", "igzip:2", "raw" */
  size_t max_frame;   /* UDP payload bytes per frame, 128..65507 (1472 for MTU 1500) */
  size_t cache_bytes; /* baseline cache budget; 0 disables REF and DELTA */
  uint16_t stream;
  uint32_t epoch;
} hde_encoder_config;

typedef struct hde_page {
  uint32_t vm;
  uint64_t gfn;
  const void *data; /* HDE_PAGE_SIZE bytes */
} hde_page;

typedef struct hde_encoder_stats {
  uint64_t pages_in;
  uint64_t zero_pages, ref_pages, delta_pages, page_pages;
  uint64_t frames;
  uint64_t frame_bytes; /* UDP payload bytes, HDE headers included */
} hde_encoder_stats;

typedef struct hde_decoder_stats {
  uint64_t frames;
  uint64_t zero_pages, ref_pages, delta_pages, page_pages;
  uint64_t errors;     /* errors of all reasons: broken frames and lost pages */
  uint64_t pages_lost; /* page records that could not be applied (on_lost) */
} hde_decoder_stats;

/* Called with each sealed frame; the bytes are valid during the call only. */
typedef void (*hde_frame_fn)(void *user, const void *frame, size_t len);

typedef struct hde_encoder hde_encoder;
typedef struct hde_decoder hde_decoder;

/* Defaults of a mode (codec, batching, MTU 1500, 256 MiB cache). */
void hde_encoder_config_init(hde_encoder_config *cfg, hde_mode mode);
/* NULL on a bad configuration (unknown codec, frame size out of range). */
hde_encoder *hde_encoder_create(const hde_encoder_config *cfg, hde_frame_fn fn, void *user);
void hde_encoder_destroy(hde_encoder *enc);
int hde_encode_pages(hde_encoder *enc, const hde_page *pages, size_t n);
/* End of a round for vm; last = nonzero when the migration is complete. */
int hde_encoder_mark_round(hde_encoder *enc, uint32_t vm, uint32_t round, uint64_t pages, int last);
/* Send everything encoded so far. */
int hde_encoder_flush(hde_encoder *enc);
/* Send pages again whole, because the destination lost them (hde_sink
 * on_lost): ZERO or PAGE, never relative to a baseline; each page's baseline
 * is filled afresh. */
int hde_encoder_repair_pages(hde_encoder *enc, const hde_page *pages, size_t n);
/* Force the codec of the mode's path (the batch codec when the mode batches);
 * closes the open batch first. */
int hde_encoder_set_codec(hde_encoder *enc, const char *codec);
void hde_encoder_get_stats(const hde_encoder *enc, hde_encoder_stats *out);

typedef struct hde_sink {
  void *user;
  /* Return 0, or nonzero to reject the page: it is then lost (on_lost), the
   * frame's other records still apply and hde_decode_frame reports the error. */
  int (*put_page)(void *user, uint32_t vm, uint64_t gfn, const void *page);
  /* A rejected run of zero pages makes the frame fail. */
  int (*put_zero)(void *user, uint32_t vm, uint64_t gfn, uint32_t count);
  /* Optional: end of a round. */
  void (*on_mark)(void *user, uint32_t vm, uint32_t round, uint64_t pages, int last);
  /* Optional: a page record arrived but could not be applied (its baseline
   * is gone or stale, its data does not decode, put_page rejected it). The
   * page is never guessed: ask the source to send it again
   * (hde_encoder_repair_pages on the sending side). err: a negative hde_error. */
  void (*on_lost)(void *user, uint32_t vm, uint64_t gfn, int err);
} hde_sink;

/* max_slots bounds the baseline mirror (0: 1 Mi slots = 4 GiB). */
hde_decoder *hde_decoder_create(const hde_sink *sink, uint32_t max_slots);
void hde_decoder_destroy(hde_decoder *dec);
/* Apply one frame (frames of a stream in sequence order). */
int hde_decode_frame(hde_decoder *dec, const void *frame, size_t len);
void hde_decoder_get_stats(const hde_decoder *dec, hde_decoder_stats *out);

const char *hde_strerror(int err);
const char *hde_version(void);

#ifdef __cplusplus
}
#endif

#endif /* HDE_H */
