// image_sink.h — the destination's memory images, one per VM: a sparse
// reservation of --max-vm-mb (only written pages take memory), filled by
// the decoders, written to DIR/vm-<id>.raw with its SHA-256 on completion.
#pragma once

#include <cstdint>
#include <string>

#include "engine/decoder.h"

namespace hde::dp {

inline constexpr std::uint32_t kMaxVms = 64;

class image_sink final : public page_sink {
public:
  explicit image_sink(std::size_t max_vm_bytes) : max_bytes_(max_vm_bytes) {}
  ~image_sink() override;
  error put_page(page_key key, const std::byte *page) override;
  error put_zero(std::uint32_t vm, std::uint64_t gfn, std::uint32_t count) override;

  // Write every VM's image (size: highest page written + 1) to dir; print
  // one line per VM with its SHA-256. Returns false with err on failure.
  bool write_all(const std::string &dir, std::string &err);

private:
  bool reserve(std::uint32_t vm);
  struct image {
    std::byte *base = nullptr;
    std::uint64_t pages = 0;  // highest gfn written + 1
  };
  std::size_t max_bytes_;
  image vms_[kMaxVms];
};

}  // namespace hde::dp
