// trace.h — reads VM memory traces for offline replay (hde-estimate, the
// source gateway's --trace, benchmarks):
//   * a trace directory in the format of shared/corpus: manifest.json plus
//     snap-NN.raw.zst, where NN >= 1 is zstd-compressed against the raw bytes
//     of snapshot NN-1 (--patch-from); or
//   * a list of plain raw images of equal size.
// Snapshots are loaded in order; each is checked against the manifest's
// raw_bytes and raw_sha256. Every failure is a one-line message, never a crash.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/page.h"

namespace hde {

struct snapshot_info {
  std::string path;        // file on disk
  std::uint64_t raw_bytes = 0;
  std::string raw_sha256;  // hex, empty when unknown (plain images)
  bool compressed = false; // zstd (patch-from the previous snapshot when index > 0)
};

class trace_reader {
public:
  // A directory with manifest.json, or one or more raw image files.
  // Returns nullptr and sets err on failure.
  static std::unique_ptr<trace_reader> open(const std::vector<std::string> &paths, std::string &err);
  ~trace_reader();

  std::size_t snapshot_count() const { return snaps_.size(); }
  std::uint64_t ram_bytes() const { return ram_bytes_; }
  std::uint64_t page_count() const { return ram_bytes_ / kPageSize; }
  const snapshot_info &info(std::size_t i) const { return snaps_[i]; }

  // Load snapshot i (calls must go 0, 1, 2, ...). The returned image stays
  // valid until the next-but-one call (the reader keeps the previous image as
  // the patch-from prefix). Returns nullptr and sets err on failure.
  const std::byte *load(std::size_t i, std::string &err);

private:
  trace_reader() = default;
  std::vector<snapshot_info> snaps_;
  std::uint64_t ram_bytes_ = 0;
  std::vector<std::byte> bufs_[2];
  std::size_t next_ = 0;
};

// SHA-256 of data as lower-case hex (OpenSSL).
std::string sha256_hex(const std::byte *data, std::size_t len);

}  // namespace hde
