// image_sink.h — the destination's memory images, one per VM: a sparse
// reservation of --max-vm-mb (only written pages take memory), filled by
// the decoders, written to DIR/vm-<id>.raw with its SHA-256 on completion.
// Several decode lcores write into it at once: each page belongs to one
// source stream and so to one decoder; a VM's reservation is made once under
// a lock (first page only) and its extent grows with an atomic maximum.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "engine/decoder.h"

namespace hde::dp {

inline constexpr std::uint32_t kMaxVms = 64;

class image_sink final : public page_sink {
public:
  explicit image_sink(std::size_t max_vm_bytes) : max_bytes_(max_vm_bytes) {}
  // Keep a dirty bitmap per VM (QEMU egress, qemu_egress.h): every page
  // written sets its bit after its bytes (release); take_dirty() clears and
  // returns a word of it (acquire). Call before the first page.
  void track_dirty() { track_ = true; }
  // 64 pages' bits from word w of vm's bitmap, cleared (0 when none).
  std::uint64_t take_dirty(std::uint32_t vm, std::uint64_t w);
  // Words of vm's bitmap that may hold a bit (highest page written / 64, rounded up).
  std::uint64_t dirty_words(std::uint32_t vm) const { return (vms_[vm].pages.load(std::memory_order_acquire) + 63) / 64; }
  // The page's bytes in vm's image (nullptr: no image yet).
  const std::byte *page(std::uint32_t vm, std::uint64_t gfn) const {
    const std::byte *b = vms_[vm].base.load(std::memory_order_acquire);
    return b == nullptr ? nullptr : b + gfn * kPageSize;
  }
  ~image_sink() override;
  error put_page(page_key key, const std::byte *page) override;
  error put_zero(std::uint32_t vm, std::uint64_t gfn, std::uint32_t count) override;

  // Write every VM's image (size: highest page written + 1) to dir; print
  // one line per VM with its SHA-256. Returns false with err on failure.
  // Call once the decoders have published that they are done (acquire).
  bool write_all(const std::string &dir, std::string &err);

private:
  std::byte *base(std::uint32_t vm);  // reserves on first use; nullptr: out of address space
  void extend(std::uint32_t vm, std::uint64_t pages);
  std::size_t bitmap_bytes() const { return (max_bytes_ / kPageSize + 63) / 64 * 8; }
  void set_dirty(std::uint32_t vm, std::uint64_t gfn, std::uint64_t count);
  struct image {
    std::atomic<std::byte *> base{nullptr};
    std::atomic<std::uint64_t> pages{0};  // highest gfn written + 1
    std::atomic<std::uint64_t> *dirty = nullptr;  // track_dirty(): one bit per page
  };
  bool track_ = false;
  std::size_t max_bytes_;
  std::mutex reserve_mu_;  // first page of a VM only
  image vms_[kMaxVms];
};

}  // namespace hde::dp
