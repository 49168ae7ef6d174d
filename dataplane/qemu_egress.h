// qemu_egress.h — the destination gateway's QEMU side (--qemu-connect ADDR).
//
// Decoders write every page into the VM's image (image_sink, with a dirty
// bitmap) and hand over the OPAQUE pieces (stream 0) and each stream's
// MARKs. A thread per VM connects to the destination QEMU (started with
// -incoming ADDR) and writes its stream:
//   chunk 1 (QEMU's header, configuration, RAM setup), then, at barrier 1
//   (every stream has passed MARK 1: all pages sent before it are in the
//   image), every page dirtied since (its current bytes: PAGE, or ZERO for a
//   zero page), then chunk 2 (from the RAM EOS on), and so on; the final
//   chunk (device state, EOF) after the last barrier.
// A page written by a decoder ahead of its barrier goes out early with
// newer bytes, and again after its own barrier: QEMU keeps the last write,
// and the last barrier (RAM's END) comes after every page, so the
// destination ends with exactly the source's final RAM, and device state
// never comes before the pages that preceded it.
// Multifd: when the source QEMU used multifd (kOpaqueMultifd), the thread
// opens as many channels to the destination QEMU (MultiFDInit_t with the
// source's uuid), sends dirtied pages in canonical packets over them and a
// SYNC packet on each before the EOS; zero pages go on the main channel as
// QEMU 7.2 sends them.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/page.h"
#include "image_sink.h"
#include "options.h"

namespace hde::dp {

struct qemu_egress_stats {
  std::atomic<int> state{0};  // 0 waiting, 1 streaming, 2 done, 3 failed
  std::atomic<std::uint32_t> barriers{0}, channels{0};
  std::atomic<std::uint64_t> pages{0}, zero_pages{0}, opaque_bytes{0}, bytes_out{0};
  std::atomic<std::uint64_t> barrier_wait_us{0};  // time waiting for streams to reach a barrier
};

class qemu_egress {
public:
  // streams(): how many streams the source runs (from its INITs; 0 unknown).
  qemu_egress(const options &o, image_sink &img, std::function<std::uint32_t()> streams);
  ~qemu_egress();

  // Decode lcores (not per page: per piece and per mark).
  void on_opaque(std::uint32_t vm, std::uint32_t chunk, std::uint32_t flags, const std::byte *p, std::size_t n);
  void on_barrier(std::uint16_t stream, std::uint32_t vm, std::uint32_t round) {
    if (vm < kMaxVms && stream < kStreams)
      passed_[vm][stream].store(round, std::memory_order_release);
  }

  // Every VM expected (one per --qemu-connect entry) and every VM begun is
  // done (its QEMU has the whole stream).
  bool done() const;
  std::uint32_t expected_vms() const { return expected_; }
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  std::string reason() const;
  const qemu_egress_stats &stats(std::uint32_t vm) const { return st_[vm]; }
  std::uint32_t vms() const { return vms_.load(std::memory_order_acquire); }
  void stop();

private:
  static constexpr std::size_t kStreams = 256;
  struct piece {
    std::uint32_t chunk, flags;
    std::vector<std::byte> bytes;
  };
  struct session;
  void run(std::uint32_t vm);
  void fail(std::uint32_t vm, const std::string &why);

  const options &o_;
  image_sink &img_;
  std::function<std::uint32_t()> streams_;
  std::atomic<std::uint32_t> passed_[kMaxVms][kStreams] = {};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<session>> sessions_;  // by vm (mu_)
  std::atomic<std::uint32_t> vms_{0}, finished_{0};
  std::uint32_t expected_ = 1;
  std::atomic<bool> stop_{false}, failed_{false};
  std::string reason_;  // mu_
  qemu_egress_stats st_[kMaxVms];
};

}  // namespace hde::dp
