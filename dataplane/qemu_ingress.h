// qemu_ingress.h — the source gateway's QEMU side (--qemu-listen ADDR).
//
// A plain thread (socket I/O, never an lcore) plays the migration
// destination for a source QEMU: it accepts the main channel and, for
// multifd, the channels QEMU opens to the same address right after it. It
// takes QEMU's stream apart with lib/qemu (main_parser, multifd_parser):
//   - pages (PAGE and ZERO records, multifd packets) go to the worker rings
//     as work items (sharded like trace pages, worker_of), each page copied
//     into an item of a per-VM mempool of --qemu-buffer-mb: when the pool
//     is empty the thread stops reading, so QEMU's socket fills and QEMU
//     sends only as fast as the encoded pages leave over the link;
//   - every other byte goes as OPAQUE pieces on stream 0, in order;
//   - at every RAM EOS (a barrier; with multifd, once every channel has
//     delivered its SYNC for it) the bytes before the EOS close a chunk and
//     each worker gets a MARK (round = barrier number): the destination
//     writes all pages sent before a barrier before the chunk after it.
// What lib/qemu refuses (xbzrle, compress, postcopy, ...) closes QEMU's
// sockets at once, so its migration fails and the guest runs on; the
// destination is told to drop the VM (kOpaqueAbort). One migration per
// address and gateway run: --qemu-listen A,B,... takes VM 0 on A, VM 1 on
// B, ... at once (the worker rings then take several producers).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "options.h"
#include "qemu/migration_stream.h"
#include "qemu_net.h"

struct rte_mempool;

namespace hde::dp {

class worker;
struct work_item;

// What `show migrations` and the summary print (written by the thread,
// read anywhere).
struct qemu_migration_stats {
  std::atomic<int> state{0};                // qemu_state
  std::atomic<std::uint32_t> barriers{0};   // RAM sections ended (EOS)
  std::atomic<std::uint32_t> round{0};      // 0: bulk pass; N: dirty round N (a page sent again starts one)
  std::atomic<std::uint32_t> channels{0};   // multifd channels
  std::atomic<std::uint64_t> pages{0}, zero_pages{0}, opaque_bytes{0}, bytes_in{0}, multifd_packets{0};
  std::atomic<std::uint64_t> stall_us{0};   // time waiting for free buffers (backpressure)
  std::atomic<std::uint64_t> start_ns{0}, switchover_ns{0}, end_ns{0};  // steady clock
};

enum class qemu_state : int { listening, setup, iterating, switchover, done, failed };
const char *to_string(qemu_state s);

class qemu_ingress {
public:
  // The migration on listen address `addr` is VM `vm`.
  qemu_ingress(const options &o, std::vector<worker *> workers, std::uint32_t vm, std::string addr);
  ~qemu_ingress();
  // Listen (the address is usable when this returns) and start the thread.
  bool start(std::string &err);
  void stop();
  // Fail the migration from another thread (the destination gave up): the
  // thread closes QEMU's sockets with this reason.
  void abort(const std::string &why);
  // Every item of the migration is on the rings, final marks included.
  bool finished() const { return finished_.load(std::memory_order_acquire); }
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  std::string reason() const;  // why it failed (after failed())
  const qemu_migration_stats &stats() const { return st_; }
  const std::string &address() const { return addr_.text; }
  std::uint32_t vm() const { return vm_; }
  std::size_t buffer_mb() const { return buffer_mb_; }

private:
  struct channel;
  struct events;
  void run();
  bool serve(int main_fd);
  void fail(const std::string &why);
  work_item *get_item();
  bool push(std::uint32_t w, work_item *it);
  work_item *make_page(std::size_t block, std::uint64_t offset, const std::byte *data);
  bool push_counted(work_item *it);
  bool push_page(std::size_t block, std::uint64_t offset, const std::byte *data);
  bool push_piece(const std::byte *bytes, std::size_t n, std::uint32_t flags);
  bool push_opaque(std::size_t upto, std::uint32_t flags);
  bool push_marks(bool last);
  bool barrier(bool complete);
  bool pump_multifd(int timeout_ms);
  void accept_channels();
  void note_page(std::uint64_t gfn);
  bool read_channel(channel &c);

  const options &o_;
  std::vector<worker *> w_;
  std::uint32_t vm_;
  std::size_t buffer_mb_ = 0;
  std::string addr_text_;
  qemu_addr addr_;
  int lfd_ = -1;
  rte_mempool *pool_ = nullptr;
  std::thread th_;
  std::atomic<bool> stop_{false}, finished_{false}, failed_{false}, abort_{false};
  std::mutex abort_mu_;
  std::string abort_why_;  // abort_mu_
  mutable std::atomic<bool> reason_set_{false};
  std::string reason_;
  // Per migration (the thread's own).
  std::unique_ptr<events> ev_;
  std::vector<std::unique_ptr<channel>> chans_;
  std::vector<std::byte> pend_;        // opaque bytes not yet sent
  std::vector<std::uint64_t> counts_;  // pages per worker since the last barrier
  std::uint32_t chunk_ = 1;
  std::uint32_t round_section_ = 0;         // the section in which the last round began
  std::vector<std::uint16_t> sent_round_;  // per page: 1 + the round it was last sent in (0: never)
  std::byte uuid_[16] = {};
  qemu_migration_stats st_;
};

}  // namespace hde::dp
