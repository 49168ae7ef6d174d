// dest.h — the destination gateway's receive task. It polls the RX queues,
// checks each frame's envelope and HDE header (every drop counted by
// reason), puts data frames into their stream's reorder window, decodes the
// in-order prefix into the VM images, and acknowledges selectively. A page
// the decoder cannot rebuild (its baseline is gone or stale) is never
// guessed: it is listed as missing and asked for again in REPAIR frames,
// repeated until the page arrives; ACKs carry how many are missing. When
// every stream of the source has marked its last round and nothing is
// missing, the images are written out and the migration is complete.
#pragma once

#include <array>
#include <memory>
#include <rte_ethdev.h>
#include <rte_mempool.h>

#include "engine/decoder.h"
#include "image_sink.h"
#include "lcore.h"
#include "options.h"
#include "packet.h"
#include "window.h"

namespace hde::dp {

struct alignas(64) dest_stats {
  std::uint64_t frames = 0;
  std::uint64_t data_frames = 0;
  std::uint64_t decoded = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t too_far = 0;
  std::uint64_t acks_sent = 0;
  std::uint64_t ack_alloc_fail = 0;
  std::uint64_t decode_errors = 0;    // frames that could not be decoded whole (unrecoverable)
  std::uint64_t pages_lost = 0;       // pages the decoder could not rebuild: asked for again
  std::uint64_t pages_repaired = 0;   // ... and rebuilt from a later record
  std::uint64_t repair_frames = 0;    // REPAIR frames sent
  std::uint64_t repair_requests = 0;  // page requests in them (a page may be asked again)
  std::uint64_t faults_injected = 0;  // --fault-forget-every: baselines dropped on purpose
  std::uint64_t new_epoch = 0;     // a source restarted (seq 0 with a new epoch)
  std::uint64_t stale_epoch = 0;   // frames of an unknown epoch past seq 0: dropped
  std::uint64_t bad_stream = 0;    // stream id out of range
  std::uint64_t drops[kRxDropCount] = {};
  std::uint64_t header_errors[kErrorCount] = {};  // frames rejected by parse_frame_header
};

class dest_rx final : public task {
public:
  dest_rx(const options &o, std::uint16_t port, std::uint16_t nrxq, rte_mempool *pool);
  ~dest_rx() override;
  unsigned poll(std::uint64_t now) override;
  const char *name() const override { return "dest-rx"; }

  bool complete() const { return complete_; }
  bool failed() const { return failed_; }
  const dest_stats &stats() const { return st_; }
  // Decoder figures summed over streams.
  decoder_stats decoded() const;

private:
  struct stream;
  void on_frame(rte_mbuf *m, std::uint64_t now);
  void send_ack(std::uint16_t id, stream &s);
  void send_repairs(std::uint16_t id, stream &s, std::uint64_t now);
  void check_complete();

  const options &o_;
  std::uint16_t port_, nrxq_;
  rte_mempool *pool_;
  image_sink sink_;
  std::array<std::unique_ptr<stream>, 256> streams_;
  endpoint_pair reply_{};   // toward the source, learnt from its frames
  bool have_peer_ = false;
  std::uint64_t ack_delay_tsc_, repair_retry_tsc_;
  bool complete_ = false, failed_ = false;
  dest_stats st_;
};

}  // namespace hde::dp
