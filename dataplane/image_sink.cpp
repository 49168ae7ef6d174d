// image_sink.cpp — sparse per-VM images and writing them out.
#include "image_sink.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trace/trace.h"

namespace hde::dp {

image_sink::~image_sink() {
  for (auto &v : vms_) {
    if (std::byte *b = v.base.load(); b != nullptr)
      munmap(b, max_bytes_);
    if (v.dirty != nullptr)
      munmap(v.dirty, bitmap_bytes());
  }
}

void image_sink::set_dirty(std::uint32_t vm, std::uint64_t gfn, std::uint64_t count) {
  std::atomic<std::uint64_t> *d = vms_[vm].dirty;
  for (std::uint64_t g = gfn, end = gfn + count; g < end;) {
    const std::uint64_t w = g / 64, lo = g % 64, n = std::min<std::uint64_t>(64 - lo, end - g);
    const std::uint64_t bits = (n == 64 ? ~0ull : ((1ull << n) - 1)) << lo;
    d[w].fetch_or(bits, std::memory_order_release);
    g += n;
  }
}

std::uint64_t image_sink::take_dirty(std::uint32_t vm, std::uint64_t w) {
  std::atomic<std::uint64_t> *d = vms_[vm].dirty;
  if (d == nullptr || d[w].load(std::memory_order_relaxed) == 0)
    return 0;
  return d[w].exchange(0, std::memory_order_acq_rel);
}

std::byte *image_sink::base(std::uint32_t vm) {
  if (std::byte *b = vms_[vm].base.load(std::memory_order_acquire); b != nullptr)
    return b;
  // First page of a VM: reserve its address space once (no memory until
  // written). Two decoders may race here; the lock makes one reservation.
  std::lock_guard<std::mutex> g(reserve_mu_);
  if (std::byte *b = vms_[vm].base.load(std::memory_order_acquire); b != nullptr)
    return b;
  void *p = mmap(nullptr, max_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED)
    return nullptr;
  // A migration writes nearly every page: take memory 2 MiB at a time (one
  // fault per huge page instead of 512) when the kernel grants it.
  madvise(p, max_bytes_, MADV_HUGEPAGE);
  if (track_) {
    void *d = mmap(nullptr, bitmap_bytes(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (d == MAP_FAILED) {
      munmap(p, max_bytes_);
      return nullptr;
    }
    vms_[vm].dirty = static_cast<std::atomic<std::uint64_t> *>(d);
  }
  vms_[vm].base.store(static_cast<std::byte *>(p), std::memory_order_release);
  return static_cast<std::byte *>(p);
}

void image_sink::extend(std::uint32_t vm, std::uint64_t pages) {
  std::atomic<std::uint64_t> &n = vms_[vm].pages;
  std::uint64_t cur = n.load(std::memory_order_relaxed);
  while (pages > cur && !n.compare_exchange_weak(cur, pages, std::memory_order_relaxed))
    ;
}

error image_sink::put_page(page_key key, const std::byte *page) {
  if (key.vm >= kMaxVms || key.gfn >= max_bytes_ / kPageSize)
    return error::bad_input;
  std::byte *b = base(key.vm);
  if (b == nullptr)
    return error::no_space;
  std::memcpy(b + key.gfn * kPageSize, page, kPageSize);
  extend(key.vm, key.gfn + 1);
  if (track_)
    set_dirty(key.vm, key.gfn, 1);
  return error::ok;
}

error image_sink::put_zero(std::uint32_t vm, std::uint64_t gfn, std::uint32_t count) {
  const std::uint64_t limit = max_bytes_ / kPageSize;
  if (vm >= kMaxVms || gfn >= limit || count > limit - gfn)
    return error::bad_input;
  std::byte *b = base(vm);
  if (b == nullptr)
    return error::no_space;
  // Pages beyond the highest written one are still untouched zeros. Another
  // decoder may raise the extent meanwhile, but never over pages of this
  // run: each page belongs to one stream, and this decoder's own writes are
  // in the extent it reads.
  const std::uint64_t written = vms_[vm].pages.load(std::memory_order_relaxed);
  if (gfn < written) {
    std::uint64_t n = std::min<std::uint64_t>(count, written - gfn);
    std::memset(b + gfn * kPageSize, 0, n * kPageSize);
  }
  extend(vm, gfn + count);
  if (track_)
    set_dirty(vm, gfn, count);
  return error::ok;
}

bool image_sink::write_all(const std::string &dir, std::string &err) {
  mkdir(dir.c_str(), 0755);
  for (std::uint32_t vm = 0; vm < kMaxVms; ++vm) {
    std::byte *const b = vms_[vm].base.load(std::memory_order_acquire);
    if (b == nullptr)
      continue;
    const std::string path = dir + "/vm-" + std::to_string(vm) + ".raw";
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
      err = path + ": " + std::strerror(errno);
      return false;
    }
    const std::size_t len = vms_[vm].pages.load(std::memory_order_acquire) * kPageSize;
    for (std::size_t off = 0; off < len;) {
      ssize_t w = ::write(fd, b + off, std::min<std::size_t>(len - off, 8u << 20));
      if (w <= 0) {
        err = path + ": write: " + std::strerror(errno);
        ::close(fd);
        return false;
      }
      off += static_cast<std::size_t>(w);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
      err = path + ": " + std::strerror(errno);
      return false;
    }
    std::printf("hde-gateway: vm %u: %zu bytes -> %s sha256 %s\n", vm, len, path.c_str(),
                sha256_hex(b, len).c_str());
  }
  std::fflush(stdout);
  return true;
}

}  // namespace hde::dp
