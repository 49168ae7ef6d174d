// feeder.h — where the source's pages come from. A loader thread (not an
// lcore: it reads files and decompresses) loads snapshot after snapshot of a
// trace, works out which pages each round offers (all of them in the bulk
// round, the changed ones after), and hands complete rounds to the ingress
// task. It runs at most one round ahead: snapshot i is loaded only once the
// workers have finished round i-2, whose image it replaces.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/page.h"
#include "generator.h"
#include "trace/trace.h"

struct rte_mempool;

namespace hde::dp {

// One unit of work on a worker ring: a page, the end of a round, or a piece
// of a VM's hypervisor stream that is not pages (QEMU ingress).
struct work_item {
  page_in page;             // page.data == nullptr: end-of-round marker (or opaque)
  std::uint32_t round = 0;  // marker: the round (QEMU: the barrier); opaque: its chunk
  std::uint64_t round_pages = 0;  // marker: pages of the round sent to this worker
  bool last = false;              // marker: last round
  bool repair = false;            // the destination lost this page: send it whole again
  // Opaque bytes (QEMU): opaque_len bytes at opaque, flags kOpaque* (wire).
  const std::byte *opaque = nullptr;
  std::uint32_t opaque_len = 0, opaque_flags = 0;
  bool is_opaque = false;
  // The item came from this pool (QEMU ingress): the worker puts it back
  // once encoded (its page buffer with it).
  rte_mempool *pool = nullptr;
};

struct round_batch {
  std::uint32_t index = 0;
  bool last = false;
  std::vector<work_item> pages;
  const std::byte *image = nullptr;  // the round's snapshot (VM 0), for repairs
  std::uint64_t image_pages = 0;
};

class feeder {
public:
  // Opens the trace (errors are reported by open()).
  bool open(const std::vector<std::string> &paths, std::string &err);
  // Load every round now, keeping all images in memory (benchmarks: no
  // loading competes with the data path). Otherwise start() streams them.
  bool preload(std::string &err);
  // A synthetic trace instead of a file one (made in memory up front).
  void generate(const gen_spec &g);
  // Pages offered over all rounds, when every round is listed up front
  // (generated or preloaded traces); 0 otherwise.
  std::uint64_t total_pages() const;
  // Generated or preloaded traces: the last image (else nullptr).
  const std::byte *last_image() const;
  void start();
  void stop();
  ~feeder() { stop(); }

  std::size_t rounds() const { return rounds_; }
  // Size of the guest's memory image (VM 0).
  std::uint64_t ram_bytes() const { return ram_bytes_; }
  // Round r if the loader has it ready, else nullptr.
  const round_batch *ready(std::uint32_t r) const;
  // All workers are done with round r: its image may be replaced.
  void release(std::uint32_t r) { released_.store(static_cast<int>(r), std::memory_order_release); }
  bool failed(std::string &err) const;

private:
  void run();
  bool load_round(std::size_t i, const std::byte *&prev, std::string &err);
  void list_round(std::size_t slot, std::size_t round, const std::byte *prev, const std::byte *cur,
                  std::size_t npages, bool last);
  std::size_t rounds_ = 0;
  std::uint64_t ram_bytes_ = 0;
  std::unique_ptr<trace_reader> tr_;
  std::vector<round_batch> batches_ = std::vector<round_batch>(2);
  std::vector<std::vector<std::byte>> images_;  // preload: every image
  bool preloaded_ = false;
  std::atomic<int> published_{-1};
  std::atomic<int> released_{-1};
  std::atomic<bool> stop_{false}, failed_{false};
  std::string err_;
  std::thread th_;
};

}  // namespace hde::dp
