// decoder.h — rebuilds pages from the frames of one stream.
//
// Frames must be given in sequence order (the data plane reorders them);
// each is checked (magic, version, lengths, CRC) before any record is
// applied. Every record is bounds-checked; DELTA and REF check the
// (slot, generation) they name and REF also the content hash. Nothing is
// ever guessed:
//   - a page record that parses but cannot be applied (its baseline is
//     missing or stale, its data does not decode) loses only that page: the
//     sink is told (on_lost, so the data plane can ask for the page again),
//     the slot it would have filled moves on a generation, empty, so the
//     mirror stays in step with the sender, and the frame's other records
//     are still applied;
//   - a frame whose structure is broken (lengths, record types, a batch that
//     does not decompress) stops at the first such error: the pages in the
//     rest of it are unknown.
// Both are counted (stats().errors) and on_frame returns the first error.
#pragma once

#include <cstdint>
#include <memory>

#include "common/error.h"
#include "common/page.h"
#include "engine/stats.h"

namespace hde {

// Where rebuilt pages go.
class page_sink {
public:
  virtual ~page_sink() = default;
  virtual error put_page(page_key key, const std::byte *page) = 0;
  virtual error put_zero(std::uint32_t vm, std::uint64_t gfn, std::uint32_t count) = 0;
  virtual void on_mark(std::uint32_t /*vm*/, std::uint32_t /*round*/, std::uint64_t /*pages*/,
                       bool /*last*/) {}
  // A piece of a VM's hypervisor stream that is not pages (wire OPAQUE;
  // flags kOpaque*), in the order the sender encoded it.
  virtual void on_opaque(std::uint32_t /*vm*/, std::uint32_t /*chunk*/, std::uint32_t /*flags*/,
                         bytes_view /*bytes*/) {}
  // A page record that could not be applied (why: e); the page keeps
  // whatever it had and must be sent again.
  virtual void on_lost(page_key /*key*/, error /*e*/) {}
};

struct decoder_config {
  std::uint32_t max_slots = (1u << 20);  // refuse an INIT asking for more (4 GiB)
  bool check_sequence = true;            // require seq = previous + 1
  // Populate a new mirror from a helper thread while decoding goes on
  // (baseline_mirror::populate_in_background): for a receiver's lcore,
  // which must not stall for seconds on a large INIT.
  bool populate_in_background = false;
};

class decoder {
public:
  decoder(const decoder_config &cfg, page_sink &sink);
  ~decoder();
  decoder(const decoder &) = delete;
  decoder &operator=(const decoder &) = delete;

  // Apply one frame. On error the frame's remaining records are skipped and
  // the error is counted in stats().errors.
  error on_frame(bytes_view frame);

  const decoder_stats &stats() const;
  // Streams the sender runs, from its INIT (0 before the INIT).
  std::uint32_t peer_streams() const;
  // Fault injection (tests, --fault-forget-every): drop the mirror's copy of
  // a baseline slot, as if it had been lost. Records that refer to it fail
  // and their pages are reported lost; the slot's next fill restores it.
  void forget_slot(std::uint32_t slot);
  std::uint32_t mirror_slots() const;

private:
  struct impl;
  std::unique_ptr<impl> p_;
};

}  // namespace hde
