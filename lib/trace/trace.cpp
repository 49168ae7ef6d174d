// trace.cpp — the trace reader: validates a corpus manifest (or a list of raw
// images) when the trace is opened, then loads snapshots in order, undoing
// zstd --patch-from against the previous image and checking each image's size
// and SHA-256. Nothing throws out of the API: every failure becomes one line
// in err, starting with the file in question.

// ZSTD_d_stableOutBuffer lets zstd decode straight into the image buffer
// (no internal window buffer of up to ram_bytes, no extra copy).
#define ZSTD_STATIC_LINKING_ONLY
#include "trace/trace.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <exception>
#include <span>
#include <utility>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <zstd.h>
#include <zstd_errors.h>

namespace hde {
namespace {

using json = nlohmann::json;

constexpr std::size_t kMaxManifestBytes = 16u << 20;

std::string errno_text() { return std::strerror(errno); }

// A read-only file descriptor, closed when it goes out of scope.
class input_file {
public:
  input_file() = default;
  input_file(const input_file &) = delete;
  input_file &operator=(const input_file &) = delete;
  ~input_file() {
    if (fd_ >= 0)
      ::close(fd_);
  }

  // Opens path, which must be a regular file; sets size. On failure what
  // says what is wrong (without the path).
  bool open(const std::string &path, std::string &what) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      what = "cannot open: " + errno_text();
      return false;
    }
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      what = "cannot stat: " + errno_text();
      return false;
    }
    if (S_ISDIR(st.st_mode)) {
      what = "is a directory (a trace directory must be given on its own)";
      return false;
    }
    if (!S_ISREG(st.st_mode)) {
      what = "not a regular file";
      return false;
    }
    size_ = static_cast<std::uint64_t>(st.st_size);
    return true;
  }

  std::uint64_t size() const { return size_; }

  // Reads until dst is full or the file ends; returns the byte count, or -1
  // with errno set.
  long long read_some(std::byte *dst, std::size_t len) {
    std::size_t got = 0;
    while (got < len) {
      ssize_t n = ::read(fd_, dst + got, len - got);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        return -1;
      }
      if (n == 0)
        break;
      got += static_cast<std::size_t>(n);
    }
    return static_cast<long long>(got);
  }

private:
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

bool is_directory(const std::string &path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string join_path(const std::string &dir, const std::string &name) {
  if (dir.empty() || dir.back() == '/')
    return dir + name;
  return dir + "/" + name;
}

bool read_text(const std::string &path, std::string &text, std::string &err) {
  input_file f;
  std::string what;
  if (!f.open(path, what)) {
    err = path + ": " + what;
    return false;
  }
  if (f.size() > kMaxManifestBytes) {
    err = path + ": " + std::to_string(f.size()) + " bytes is too large for a manifest";
    return false;
  }
  text.resize(f.size());
  long long n = f.read_some(reinterpret_cast<std::byte *>(text.data()), text.size());
  if (n < 0) {
    err = path + ": read failed: " + errno_text();
    return false;
  }
  text.resize(static_cast<std::size_t>(n));
  return true;
}

// Reads obj[key] as a non-negative integer. On failure err says what is
// wrong with the field (without a prefix).
bool get_u64(const json &obj, const char *key, std::uint64_t &out, std::string &err) {
  auto it = obj.find(key);
  if (it == obj.end()) {
    err = std::string(key) + " is missing";
    return false;
  }
  if (!it->is_number_unsigned()) {
    err = std::string(key) + " must be a non-negative integer, not " + it->dump();
    return false;
  }
  out = it->get<std::uint64_t>();
  return true;
}

bool is_plain_file_name(const std::string &name) {
  return !name.empty() && name != "." && name != ".." &&
         name.find('/') == std::string::npos && name.find('\0') == std::string::npos;
}

bool is_sha256_hex(const std::string &s) {
  if (s.size() != 64)
    return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c)))
      return false;
  return true;
}

std::string to_lower(std::string s) {
  for (char &c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Checks that a snapshot's file can be opened; a raw (uncompressed) file
// must already have the right size.
bool check_snapshot_file(const snapshot_info &s, std::string &err) {
  input_file f;
  std::string what;
  if (!f.open(s.path, what)) {
    err = s.path + ": " + what;
    return false;
  }
  if (!s.compressed && f.size() != s.raw_bytes) {
    err = s.path + ": size " + std::to_string(f.size()) + " differs from raw_bytes " +
          std::to_string(s.raw_bytes);
    return false;
  }
  return true;
}

// Parses and checks dir/manifest.json and every snapshot file it names.
bool open_directory(const std::string &dir, std::vector<snapshot_info> &snaps,
                    std::uint64_t &ram_bytes, std::string &err) {
  const std::string manifest_path = join_path(dir, "manifest.json");
  std::string text;
  if (!read_text(manifest_path, text, err))
    return false;
  auto fail = [&](const std::string &what) {
    err = manifest_path + ": " + what;
    return false;
  };

  const json m = json::parse(text, nullptr, false);
  if (m.is_discarded())
    return fail("not valid JSON");
  if (!m.is_object())
    return fail("must be a JSON object");

  std::string what;
  if (!get_u64(m, "ram_bytes", ram_bytes, what))
    return fail(what);
  if (ram_bytes == 0 || ram_bytes % kPageSize != 0)
    return fail("ram_bytes " + std::to_string(ram_bytes) + " is not a positive multiple of " +
                std::to_string(kPageSize));
  if (m.contains("page_size")) {
    std::uint64_t page_size = 0;
    if (!get_u64(m, "page_size", page_size, what))
      return fail(what);
    if (page_size != kPageSize)
      return fail("page_size " + std::to_string(page_size) + " is not supported (only " +
                  std::to_string(kPageSize) + ")");
  }

  auto list = m.find("snapshots");
  if (list == m.end())
    return fail("snapshots is missing");
  if (!list->is_array() || list->empty())
    return fail("snapshots must be a non-empty array");

  for (std::size_t i = 0; i < list->size(); ++i) {
    const json &e = (*list)[i];
    const std::string at = "snapshot " + std::to_string(i) + ": ";
    if (!e.is_object())
      return fail(at + "must be a JSON object");
    if (e.contains("index")) {
      std::uint64_t index = 0;
      if (!get_u64(e, "index", index, what))
        return fail(at + what);
      if (index != i)
        return fail(at + "index " + std::to_string(index) + " is out of order");
    }

    auto file = e.find("file");
    if (file == e.end())
      return fail(at + "file is missing");
    if (!file->is_string())
      return fail(at + "file must be a string, not " + file->dump());
    const std::string &name = file->get_ref<const std::string &>();
    if (!is_plain_file_name(name))
      return fail(at + "file " + file->dump() + " must be a plain file name inside the trace directory");

    snapshot_info s;
    s.path = join_path(dir, name);
    s.compressed = name.ends_with(".zst");
    if (!get_u64(e, "raw_bytes", s.raw_bytes, what))
      return fail(at + what);
    if (s.raw_bytes != ram_bytes)
      return fail(at + "raw_bytes " + std::to_string(s.raw_bytes) + " differs from ram_bytes " +
                  std::to_string(ram_bytes));
    if (auto sha = e.find("raw_sha256"); sha != e.end()) {
      if (!sha->is_string() || !is_sha256_hex(sha->get_ref<const std::string &>()))
        return fail(at + "raw_sha256 must be 64 hex digits, not " + sha->dump());
      s.raw_sha256 = to_lower(sha->get<std::string>());
    }
    if (!check_snapshot_file(s, err))
      return false;
    snaps.push_back(std::move(s));
  }
  return true;
}

// Checks a list of raw images: all readable, the same size, a positive
// multiple of the page size.
bool open_images(const std::vector<std::string> &paths, std::vector<snapshot_info> &snaps,
                 std::uint64_t &ram_bytes, std::string &err) {
  for (const std::string &path : paths) {
    input_file f;
    std::string what;
    if (!f.open(path, what)) {
      err = path + ": " + what;
      return false;
    }
    if (f.size() == 0 || f.size() % kPageSize != 0) {
      err = path + ": size " + std::to_string(f.size()) + " is not a positive multiple of " +
            std::to_string(kPageSize);
      return false;
    }
    if (snaps.empty()) {
      ram_bytes = f.size();
    } else if (f.size() != ram_bytes) {
      err = path + ": size " + std::to_string(f.size()) + " differs from " + snaps.front().path +
            " (" + std::to_string(ram_bytes) + ")";
      return false;
    }
    snapshot_info s;
    s.path = path;
    s.raw_bytes = f.size();
    snaps.push_back(std::move(s));
  }
  return true;
}

// Reads a raw image that must fill dst exactly. err gets no path prefix.
bool read_image(const std::string &path, std::span<std::byte> dst, std::string &err) {
  input_file f;
  if (!f.open(path, err))
    return false;
  long long n = f.read_some(dst.data(), dst.size());
  if (n < 0) {
    err = "read failed: " + errno_text();
    return false;
  }
  if (static_cast<std::size_t>(n) != dst.size()) {
    err = "short image (read " + std::to_string(n) + " of " + std::to_string(dst.size()) + " bytes)";
    return false;
  }
  std::byte extra;
  if (f.read_some(&extra, 1) != 0) {
    err = "image is larger than " + std::to_string(dst.size()) + " bytes";
    return false;
  }
  return true;
}

using dctx_ptr = std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)>;

// Decompresses one zstd frame from path into exactly dst, referencing prefix
// (the previous raw image; empty for none) as zstd --patch-from does. err
// gets no path prefix.
bool decompress_image(const std::string &path, std::span<const std::byte> prefix,
                      std::span<std::byte> dst, std::string &err) {
  input_file f;
  if (!f.open(path, err))
    return false;
  dctx_ptr dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!dctx) {
    err = "cannot create a zstd context";
    return false;
  }
  std::size_t rc = ZSTD_DCtx_setParameter(dctx.get(), ZSTD_d_windowLogMax, ZSTD_WINDOWLOG_MAX);
  if (!ZSTD_isError(rc))
    rc = ZSTD_DCtx_setParameter(dctx.get(), ZSTD_d_stableOutBuffer, 1);
  if (!ZSTD_isError(rc) && !prefix.empty())
    rc = ZSTD_DCtx_refPrefix(dctx.get(), prefix.data(), prefix.size());
  if (ZSTD_isError(rc)) {
    err = std::string("zstd setup failed: ") + ZSTD_getErrorName(rc);
    return false;
  }

  std::vector<std::byte> in_buf(ZSTD_DStreamInSize());
  ZSTD_outBuffer out{dst.data(), dst.size(), 0};
  std::size_t remaining = 1;  // 0 once the frame is complete
  std::uint64_t consumed = 0;
  for (;;) {
    long long n = f.read_some(in_buf.data(), in_buf.size());
    if (n < 0) {
      err = "read failed: " + errno_text();
      return false;
    }
    if (n == 0)
      break;
    ZSTD_inBuffer in{in_buf.data(), static_cast<std::size_t>(n), 0};
    while (in.pos < in.size) {
      if (remaining == 0) {
        err = "trailing data after the zstd frame (at byte " + std::to_string(consumed + in.pos) + ")";
        return false;
      }
      remaining = ZSTD_decompressStream(dctx.get(), &out, &in);
      if (ZSTD_isError(remaining)) {
        ZSTD_ErrorCode code = ZSTD_getErrorCode(remaining);
        if (code == ZSTD_error_dstSize_tooSmall || code == ZSTD_error_noForwardProgress_destFull)
          err = "decompresses to more than raw_bytes " + std::to_string(dst.size()) + " bytes";
        else
          err = std::string("corrupt zstd data: ") + ZSTD_getErrorName(remaining);
        return false;
      }
    }
    consumed += in.size;
  }
  if (consumed == 0) {
    err = "empty file (no zstd frame)";
    return false;
  }
  if (remaining != 0) {
    err = "truncated zstd data (the frame ends early after " + std::to_string(consumed) + " bytes)";
    return false;
  }
  if (out.pos != dst.size()) {
    err = "decompresses to " + std::to_string(out.pos) + " bytes, not raw_bytes " +
          std::to_string(dst.size());
    return false;
  }
  return true;
}

}  // namespace

std::unique_ptr<trace_reader> trace_reader::open(const std::vector<std::string> &paths,
                                                 std::string &err) {
  try {
    if (paths.empty()) {
      err = "no trace given (need a trace directory or raw image files)";
      return nullptr;
    }
    std::unique_ptr<trace_reader> r(new trace_reader());
    bool ok = paths.size() == 1 && is_directory(paths[0])
                  ? open_directory(paths[0], r->snaps_, r->ram_bytes_, err)
                  : open_images(paths, r->snaps_, r->ram_bytes_, err);
    if (!ok)
      return nullptr;
    return r;
  } catch (const std::exception &e) {
    err = paths.empty() ? std::string("trace") : paths[0];
    err += ": cannot open the trace: ";
    err += e.what();
    return nullptr;
  }
}

trace_reader::~trace_reader() = default;

const std::byte *trace_reader::load(std::size_t i, std::string &err) {
  if (i >= snaps_.size()) {
    err = "snapshot " + std::to_string(i) + " requested but the trace has " +
          std::to_string(snaps_.size());
    return nullptr;
  }
  const snapshot_info &s = snaps_[i];
  const std::string where = s.path + ": snapshot " + std::to_string(i) + ": ";
  if (i != next_) {
    err = where + "loaded out of order (snapshot " + std::to_string(next_) + " is next)";
    return nullptr;
  }
  try {
    std::vector<std::byte> &buf = bufs_[i % 2];
    buf.resize(ram_bytes_);  // allocates once per buffer; later calls are no-ops
    std::string what;
    bool ok = s.compressed
                  ? decompress_image(s.path, i > 0 ? std::span<const std::byte>(bufs_[(i - 1) % 2])
                                                   : std::span<const std::byte>(),
                                     buf, what)
                  : read_image(s.path, buf, what);
    if (!ok) {
      err = where + what;
      return nullptr;
    }
    if (!s.raw_sha256.empty()) {
      std::string got = sha256_hex(buf.data(), buf.size());
      if (got.empty()) {
        err = where + "cannot compute sha256 (OpenSSL failed)";
        return nullptr;
      }
      if (got != s.raw_sha256) {
        err = where + "sha256 mismatch (manifest says " + s.raw_sha256 + ", data is " + got + ")";
        return nullptr;
      }
    }
    ++next_;
    return buf.data();
  } catch (const std::exception &e) {
    err = where + "load failed: " + e.what();
    return nullptr;
  }
}

std::string sha256_hex(const std::byte *data, std::size_t len) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (EVP_Digest(data, len, md, &md_len, EVP_sha256(), nullptr) != 1)
    return {};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex(2 * md_len, '\0');
  for (unsigned int k = 0; k < md_len; ++k) {
    hex[2 * k] = kHex[md[k] >> 4];
    hex[2 * k + 1] = kHex[md[k] & 0xf];
  }
  return hex;
}

}  // namespace hde
