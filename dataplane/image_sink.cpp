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
  for (auto &v : vms_)
    if (v.base != nullptr)
      munmap(v.base, max_bytes_);
}

bool image_sink::reserve(std::uint32_t vm) {
  // First page of a VM: reserve its address space once (no memory until written).
  void *p = mmap(nullptr, max_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED)
    return false;
  vms_[vm].base = static_cast<std::byte *>(p);
  return true;
}

error image_sink::put_page(page_key key, const std::byte *page) {
  if (key.vm >= kMaxVms || key.gfn >= max_bytes_ / kPageSize)
    return error::bad_input;
  image &v = vms_[key.vm];
  if (v.base == nullptr && !reserve(key.vm))
    return error::no_space;
  std::memcpy(v.base + key.gfn * kPageSize, page, kPageSize);
  if (key.gfn + 1 > v.pages)
    v.pages = key.gfn + 1;
  return error::ok;
}

error image_sink::put_zero(std::uint32_t vm, std::uint64_t gfn, std::uint32_t count) {
  const std::uint64_t limit = max_bytes_ / kPageSize;
  if (vm >= kMaxVms || gfn >= limit || count > limit - gfn)
    return error::bad_input;
  image &v = vms_[vm];
  if (v.base == nullptr && !reserve(vm))
    return error::no_space;
  // Pages beyond the highest written one are still untouched zeros.
  if (gfn < v.pages) {
    std::uint64_t n = std::min<std::uint64_t>(count, v.pages - gfn);
    std::memset(v.base + gfn * kPageSize, 0, n * kPageSize);
  }
  if (gfn + count > v.pages)
    v.pages = gfn + count;
  return error::ok;
}

bool image_sink::write_all(const std::string &dir, std::string &err) {
  mkdir(dir.c_str(), 0755);
  for (std::uint32_t vm = 0; vm < kMaxVms; ++vm) {
    const image &v = vms_[vm];
    if (v.base == nullptr)
      continue;
    const std::string path = dir + "/vm-" + std::to_string(vm) + ".raw";
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
      err = path + ": " + std::strerror(errno);
      return false;
    }
    const std::size_t len = v.pages * kPageSize;
    for (std::size_t off = 0; off < len;) {
      ssize_t w = ::write(fd, v.base + off, std::min<std::size_t>(len - off, 8u << 20));
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
                sha256_hex(v.base, len).c_str());
  }
  std::fflush(stdout);
  return true;
}

}  // namespace hde::dp
