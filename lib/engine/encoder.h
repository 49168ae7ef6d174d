// encoder.h — the page-encoding ladder of one stream.
//
// For each page, the first rung that applies:
//   1 ZERO   all-zero page (runs of consecutive gfns share one record)
//   2 REF    content already in a baseline slot (hash hit, bytes compared)
//   3 DELTA  against the page's own baseline: XBZRLE, or XOR then codec,
//            whichever is smaller, and only when smaller than a PAGE
//   4 PAGE   compressed with the page codec, or raw when that does not pay
// Records go into frames of at most max_frame bytes handed out by a
// frame_output; a record too big for the room left is split into FRAG pieces.
//
// With batching on, records are first gathered raw into a batch of up to
// batch_bytes, which is then compressed as one unit; with zstd the
// compressor's window also runs on across batches of the stream. In hybrid
// mode the learning selector (selector.h) picks the arm (no compression, LZ4
// or zstd batches) of each segment: the encoder reports what every segment
// cost and looks the next arm up in a decision table.
//
// One encoder per stream, owned by one thread. encode() does not allocate.
#pragma once

#include <cstdint>
#include <memory>

#include "baseline/cache.h"
#include "codec/codec.h"
#include "common/page.h"
#include "engine/selector.h"
#include "engine/stats.h"

namespace hde {

enum class mode : std::uint8_t { datacenter, internet, hybrid };
const char *mode_name(mode m);
bool parse_mode(std::string_view s, mode &out);

// Where frames go. acquire() returns a writable buffer of at least
// max_frame bytes; commit() hands back the first len bytes as a sealed frame.
class frame_output {
public:
  virtual ~frame_output() = default;
  virtual bytes_buf acquire() = 0;
  virtual void commit(bytes_buf frame, std::size_t len) = 0;
};

struct encoder_config {
  mode m = mode::datacenter;
  codec_spec page_codec{codec_id::lz4, 1};  // PAGE and XOR deltas (no batching)
  bool batch = false;                       // gather records, compress together
  codec_spec batch_codec{codec_id::zstd, 3};
  std::size_t batch_bytes = 256 * 1024;     // raw bytes per batch
  std::size_t max_frame = 1472;             // UDP payload (MTU 1500)
  std::size_t cache_bytes = 256u << 20;     // baseline cache budget
  std::size_t xbzrle_budget = 2048;         // give up an XBZRLE delta past this
  bool try_xor = true;                      // also try XOR+codec for dense deltas
  double link_bytes_per_s = 0;              // hybrid: this stream's share of the link (0: unknown)
  std::uint16_t stream = 0;
  std::uint16_t streams = 1;                // streams of this sender, told to the receiver
  std::uint32_t epoch = 1;
  // Told to the receiver in INIT, which checks them against its own: the
  // largest frame this sender transmits (0: max_frame; a link's frame when
  // FEC parity may be longer than the data frames) and the frames it may
  // hold unacknowledged (0: not said).
  std::uint32_t wire_max_frame = 0;
  std::uint32_t window = 0;

  // Defaults of a mode (codec, batching) applied on top of this config.
  static encoder_config for_mode(mode m);
  // The codec on the mode's path: the batch codec when batching, else the
  // page codec. What --codec and `hdectl set codec` force.
  codec_spec &codec() { return batch ? batch_codec : page_codec; }
  const codec_spec &codec() const { return batch ? batch_codec : page_codec; }
};

class encoder {
public:
  encoder(const encoder_config &cfg, frame_output &out);
  ~encoder();
  encoder(const encoder &) = delete;
  encoder &operator=(const encoder &) = delete;

  // Encode a burst of pages.
  void encode(const page_in *pages, std::size_t n);
  void encode(const page_in &p) { encode(&p, 1); }
  // Send pages again whole, because the receiver lost them (decoder
  // on_lost): ZERO or PAGE only, never relative to a baseline, and each
  // page's baseline is filled afresh. Counted in pages_in and repairs.
  void repair(const page_in *pages, std::size_t n);
  // End of a round for vm; pages = how many of its pages the round carried.
  void mark_round(std::uint32_t vm, std::uint32_t round, std::uint64_t pages, bool last);
  // Bytes of vm's hypervisor stream that are not pages (wire OPAQUE),
  // after everything encoded so far: split into pieces of at most
  // kMaxOpaquePiece bytes; `flags` (kOpaque*) go on the last piece.
  void opaque(std::uint32_t vm, std::uint32_t chunk, std::uint32_t flags, bytes_view bytes);
  // Close the open batch and frame so that everything encoded so far is sent.
  void flush();

  const encoder_stats &stats() const;
  baseline_cache &baselines();
  const encoder_config &config() const;
  // Force the codec of the current path (encoder_config::codec()): closes
  // the open batch first, takes effect at the next page. In hybrid mode the
  // selector picks again at the next batch.
  void set_codec(codec_spec c);
  // Switch mode, codecs and batching live: closes the open batch and frame
  // first; allocation-free (buffers are sized for the largest batch).
  void reconfigure(const encoder_config &c);
  // Other threads read the baselines (baseline_cache::lookup) under d's RCU:
  // slots are retired and reused after grace periods. Also applies to caches
  // made by resize_cache(). d outlives the encoder; nullptr: no readers.
  void set_grace_domain(grace_domain *d);
  // A baseline cache of another size; a new INIT tells the receiver to resize
  // its mirror. Returns the old cache: readers may still be in it, so with a
  // grace domain free it only after a grace period. Allocates (the caller's
  // lcore stalls for it): a control action, never per page.
  [[nodiscard]] std::unique_ptr<baseline_cache> resize_cache(std::size_t bytes);
  // Hybrid mode: samples go to port.samples, decisions are read from
  // *port.table once per segment (selector.h). Without a port the encoder
  // runs a learner of its own inline (own_learner()). The port's ring and
  // table outlive the encoder; a port with no table drops back to inline.
  void set_selector_port(const selector_port &port);
  // Hybrid mode: the link this stream's choice is for (bytes/s, 0 unknown);
  // the inline learner takes it at the next segment.
  void set_link_rate(double bytes_per_s);
  const selector_learner *own_learner() const;

private:
  struct impl;
  std::unique_ptr<impl> p_;
};

}  // namespace hde
