// migration_stream.h — QEMU 7.2's live-migration stream, taken apart and put
// back together (../shared/qemu/NOTES.md has the formats). DPDK-free, no
// sockets: the gateway feeds it the bytes it reads from QEMU.
//
//   main_parser     the main channel, incrementally: RAM pages (PAGE and
//                   ZERO records of the "ram" section) come out as pages;
//                   every other byte (header, configuration, section
//                   headers and footers, EOS, commands, device state, EOF,
//                   VM description) comes out as opaque bytes, in order.
//                   What a gateway cannot carry (xbzrle, compress, postcopy,
//                   COLO, RDMA, iterative sections other than RAM before
//                   RAM ends) stops the parse with a named refusal.
//   main_writer     the other way: opaque bytes and pages back into a main
//                   channel a destination QEMU accepts (RAM records are
//                   rebuilt in canonical form, CONTINUE where it applies).
//   multifd_parser  one multifd channel: its MultiFDInit_t, then packets of
//                   up to 128 pages of one RAM block, each marked SYNC or not.
//                   Compressed packets (zlib, zstd) are refused.
//   write_multifd_packet  a canonical packet (stale fields of 0-page packets
//                   are not reproduced: the destination ignores them).
//
// Pages are named by (RAM block index, offset in the block); the blocks come
// from the MEM_SIZE record at the start of the RAM section (ram_layout), and
// a gateway maps them to one flat page number space (ram_layout::gfn).
//
// Cost: the parsers copy nothing they do not have to — a page's bytes are
// handed out where they lie in the parser's buffer (valid during the
// callback) — and allocate only when a record is larger than any seen
// before (the buffer grows, bounded by kMaxRecord).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hde::qemu {

inline constexpr std::uint32_t kFileMagic = 0x5145564D;  // 'QEVM'
inline constexpr std::uint32_t kFileVersion = 3;
inline constexpr std::uint32_t kMultifdMagic = 0x11223344;
inline constexpr std::uint32_t kMultifdVersion = 1;
inline constexpr std::size_t kTargetPage = 4096;          // x86 target pages (TARGET_PAGE_BITS 12)
inline constexpr std::size_t kMultifdInitSize = 64;
inline constexpr std::size_t kMultifdPages = 128;         // 512 KiB / 4 KiB
inline constexpr std::size_t kMultifdHeaderSize = 320 + 8 * kMultifdPages;  // 1344
inline constexpr std::size_t kMaxRecord = 1u << 20;       // largest non-page record buffered whole

// Main-channel record types (savevm.c) and RAM record flags (ram.c).
enum : std::uint8_t {
  kVmEof = 0x00, kVmSectionStart = 0x01, kVmSectionPart = 0x02, kVmSectionEnd = 0x03,
  kVmSectionFull = 0x04, kVmSubsection = 0x05, kVmVmdescription = 0x06, kVmConfiguration = 0x07,
  kVmCommand = 0x08, kVmSectionFooter = 0x7E,
};
enum : std::uint32_t {
  kRamFull = 0x01, kRamZero = 0x02, kRamMemSize = 0x04, kRamPage = 0x08, kRamEos = 0x10,
  kRamContinue = 0x20, kRamXbzrle = 0x40, kRamHook = 0x80, kRamCompressPage = 0x100,
  kRamMultifdFlush = 0x200,
};
inline constexpr std::uint64_t kRamFlagMask = kTargetPage - 1;

enum class stream_error : std::uint8_t {
  ok,
  bad_magic,          // not a QEMU migration stream (or a multifd channel)
  bad_version,        // stream or multifd version this gateway does not know
  bad_record,         // an unknown record type or RAM flag, or a field out of range
  bad_section,        // a section id or name that does not fit the stream so far
  unknown_block,      // a RAM record names a block MEM_SIZE did not announce
  too_large,          // a record larger than kMaxRecord
  unsupported_xbzrle,     // migrate-set-capabilities xbzrle on
  unsupported_compress,   // migrate-set-capabilities compress on (or multifd zlib/zstd)
  unsupported_postcopy,   // postcopy-ram (POSTCOPY_ADVISE, PACKAGED)
  unsupported_colo,       // x-colo
  unsupported_rdma,       // rdma: transport (RAM_SAVE_FLAG_HOOK)
  unsupported_section,    // another iterative section (block migration, dirty bitmaps) beside RAM
  trailing_bytes,     // bytes after the end of a multifd channel or a finished stream
};

std::string_view to_string(stream_error e);

// RAM blocks as the MEM_SIZE record lists them.
struct ram_block {
  std::string id;
  std::uint64_t used_length = 0;
  std::uint64_t first_page = 0;  // flat page number of its offset 0 (blocks end to end)
};

struct ram_layout {
  std::vector<ram_block> blocks;
  std::uint64_t total_bytes = 0;
  std::uint64_t pages() const { return total_bytes / kTargetPage; }
  // The block called id; -1 when none.
  int find(std::string_view id) const;
  // (block, offset) <-> flat page number.
  std::uint64_t gfn(std::size_t block, std::uint64_t offset) const { return blocks[block].first_page + offset / kTargetPage; }
  bool locate(std::uint64_t gfn, std::size_t &block, std::uint64_t &offset) const;
};

// What the main-channel parser finds, in stream order.
class main_events {
public:
  virtual ~main_events() = default;
  // Bytes to pass on unchanged.
  virtual void on_opaque(std::span<const std::byte> bytes) = 0;
  // The RAM section's MEM_SIZE record was read (its bytes went on_opaque).
  virtual void on_layout(const ram_layout &layout) = 0;
  // A PAGE record: 4096 bytes (valid during the call).
  virtual void on_page(std::size_t block, std::uint64_t offset, const std::byte *data) = 0;
  // A ZERO record: the page is filled with `fill` (QEMU sends 0).
  virtual void on_zero(std::size_t block, std::uint64_t offset, std::uint8_t fill) = 0;
  // The end of a RAM section's payload (EOS). `complete`: it was the END
  // section (the last RAM pages before device state).
  virtual void on_ram_eos(bool complete) = 0;
};

class main_parser {
public:
  explicit main_parser(main_events &ev) : ev_(ev) {}
  // Parse what can be parsed of these bytes (the rest waits for more).
  // After an error, the parser stays failed and every call returns it.
  stream_error feed(std::span<const std::byte> bytes);
  stream_error error() const { return err_; }
  // A human line about the error (what was found where).
  const std::string &detail() const { return detail_; }
  // Past the pages: device state (sections the parser cannot read without
  // QEMU's vmstate schema), EOF and the VM description pass through opaque
  // to the end. The RAM END section comes before any device section.
  bool passing_through() const { return st_ == state::passthrough; }
  // RAM's END section seen: the pages are all out; device state follows.
  bool ram_complete() const { return ram_done_; }
  const ram_layout &layout() const { return layout_; }
  std::uint64_t offset() const { return consumed_; }  // stream bytes consumed so far

private:
  enum class state : std::uint8_t { header, record, ram, footer, passthrough, failed };
  stream_error fail(stream_error e, std::string why);
  // Each step parses one unit from buf_[pos_..], returning false when more
  // bytes are needed (nothing consumed).
  bool step();
  bool step_record();
  bool step_ram();
  bool parse_configuration(std::size_t &n);
  bool read_block_ref(std::size_t at, std::uint32_t flags, std::size_t &block, std::size_t &len);
  void opaque(std::size_t n);

  main_events &ev_;
  state st_ = state::header;
  stream_error err_ = stream_error::ok;
  std::string detail_;
  std::vector<std::byte> buf_;
  std::size_t pos_ = 0;           // parse position in buf_
  std::uint64_t consumed_ = 0;
  ram_layout layout_;
  bool have_layout_ = false;
  std::uint32_t ram_section_ = ~0u;
  bool ram_done_ = false, in_end_ = false;
  bool ignore_shared_ = false, postcopy_ = false;
  std::size_t last_block_ = ~std::size_t{0};  // CONTINUE's block
};

// Puts a main channel back together: opaque bytes as they are, pages as
// canonical RAM records. The output goes to a byte sink.
class main_writer {
public:
  struct sink {
    virtual ~sink() = default;
    virtual void write(std::span<const std::byte> bytes) = 0;
  };
  main_writer(sink &out) : out_(out) {}
  void set_layout(const ram_layout &l) { layout_ = l; last_block_ = ~std::size_t{0}; }
  void opaque(std::span<const std::byte> bytes) { out_.write(bytes); }
  void page(std::size_t block, std::uint64_t offset, const std::byte *data);
  void zero(std::size_t block, std::uint64_t offset, std::uint8_t fill = 0);

private:
  std::size_t header(std::byte *p, std::size_t block, std::uint64_t offset, std::uint32_t flag);
  sink &out_;
  ram_layout layout_;
  std::size_t last_block_ = ~std::size_t{0};
};

// One multifd packet, as parsed (pages point into the parser's buffer and
// are valid during the callback).
struct multifd_packet {
  std::uint32_t flags = 0;        // bit 0: SYNC
  std::uint64_t packet_num = 0;
  std::string_view block;         // RAM block id (meaningful when pages > 0)
  std::uint32_t pages = 0;        // normal pages
  const std::uint64_t *offsets = nullptr;  // host order, `pages` of them
  const std::byte *data = nullptr;          // pages x 4096 bytes
  bool sync() const { return (flags & 1) != 0; }
};

class multifd_events {
public:
  virtual ~multifd_events() = default;
  // The channel's MultiFDInit_t (64 bytes, passed on unchanged), its id.
  virtual void on_init(std::span<const std::byte> init, std::uint8_t channel) = 0;
  virtual void on_packet(const multifd_packet &p) = 0;
};

class multifd_parser {
public:
  explicit multifd_parser(multifd_events &ev) : ev_(ev) {}
  stream_error feed(std::span<const std::byte> bytes);
  stream_error error() const { return err_; }
  const std::string &detail() const { return detail_; }
  std::uint64_t packets() const { return packets_; }

private:
  stream_error fail(stream_error e, std::string why);
  multifd_events &ev_;
  bool have_init_ = false;
  stream_error err_ = stream_error::ok;
  std::string detail_;
  std::vector<std::byte> buf_;
  std::size_t pos_ = 0;
  std::uint64_t packets_ = 0;
  std::uint64_t offsets_[kMultifdPages];
};

// A MultiFDInit_t for channel `id` with this uuid (16 bytes; zeros when the
// QEMUs have no -uuid).
void write_multifd_init(std::byte *out /* kMultifdInitSize */, std::uint8_t id, const std::byte *uuid16);
// A canonical multifd packet: header (kMultifdHeaderSize bytes) into hdr;
// the caller sends `pages` x 4096 bytes of page data after it.
void write_multifd_header(std::byte *hdr, std::uint32_t flags, std::uint64_t packet_num, std::string_view block,
                          std::span<const std::uint64_t> offsets);

}  // namespace hde::qemu
