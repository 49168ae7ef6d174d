// migration_stream.cpp — QEMU 7.2 main-channel and multifd parsers and
// writers (migration_stream.h).
#include "qemu/migration_stream.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace hde::qemu {

namespace {

std::uint16_t be16(const std::byte *p) {
  return static_cast<std::uint16_t>(std::to_integer<unsigned>(p[0]) << 8 | std::to_integer<unsigned>(p[1]));
}
std::uint32_t be32(const std::byte *p) { return std::uint32_t{be16(p)} << 16 | be16(p + 2); }
std::uint64_t be64(const std::byte *p) { return std::uint64_t{be32(p)} << 32 | be32(p + 4); }
void put32(std::byte *p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i)
    p[i] = static_cast<std::byte>(v >> (24 - 8 * i));
}
void put64(std::byte *p, std::uint64_t v) {
  put32(p, static_cast<std::uint32_t>(v >> 32));
  put32(p + 4, static_cast<std::uint32_t>(v));
}
std::string_view str(const std::byte *p, std::size_t n) { return {reinterpret_cast<const char *>(p), n}; }

// Append bytes to a parser buffer, first dropping what was consumed.
void append(std::vector<std::byte> &buf, std::size_t &pos, std::span<const std::byte> bytes) {
  if (pos != 0) {
    buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(pos));
    pos = 0;
  }
  buf.insert(buf.end(), bytes.begin(), bytes.end());
}

}  // namespace

std::string_view to_string(stream_error e) {
  switch (e) {
  case stream_error::ok: return "ok";
  case stream_error::bad_magic: return "not a QEMU migration stream (bad magic)";
  case stream_error::bad_version: return "unsupported QEMU stream version";
  case stream_error::bad_record: return "malformed or unknown record";
  case stream_error::bad_section: return "unexpected section";
  case stream_error::unknown_block: return "RAM record names an unknown RAM block";
  case stream_error::too_large: return "record too large";
  case stream_error::unsupported_xbzrle: return "the xbzrle capability is not supported through HDE (HDE does its own delta encoding): turn it off";
  case stream_error::unsupported_compress: return "compression in QEMU (compress capability, multifd zlib/zstd) is not supported through HDE (HDE compresses): use multifd-compression none";
  case stream_error::unsupported_postcopy: return "postcopy is not supported through HDE";
  case stream_error::unsupported_colo: return "COLO is not supported through HDE";
  case stream_error::unsupported_rdma: return "RDMA migration is not supported through HDE";
  case stream_error::unsupported_section: return "an iterative section beside RAM (block migration, dirty bitmaps) is not supported through HDE";
  case stream_error::trailing_bytes: return "bytes after the end of the stream";
  }
  return "unknown stream error";
}

int ram_layout::find(std::string_view id) const {
  for (std::size_t i = 0; i < blocks.size(); ++i)
    if (blocks[i].id == id)
      return static_cast<int>(i);
  return -1;
}

bool ram_layout::locate(std::uint64_t gfn, std::size_t &block, std::uint64_t &offset) const {
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const ram_block &b = blocks[i];
    if (gfn >= b.first_page && gfn < b.first_page + b.used_length / kTargetPage) {
      block = i;
      offset = (gfn - b.first_page) * kTargetPage;
      return true;
    }
  }
  return false;
}

// --- main channel ------------------------------------------------------------------

stream_error main_parser::fail(stream_error e, std::string why) {
  st_ = state::failed;
  err_ = e;
  detail_ = std::string(to_string(e)) + " at stream offset " + std::to_string(consumed_) + (why.empty() ? "" : ": " + why);
  return e;
}

void main_parser::opaque(std::size_t n) {
  ev_.on_opaque({buf_.data() + pos_, n});
  pos_ += n;
  consumed_ += n;
}

stream_error main_parser::feed(std::span<const std::byte> bytes) {
  if (st_ == state::failed)
    return err_;
  if (st_ == state::passthrough && pos_ == buf_.size()) {  // no copy: straight through
    if (!bytes.empty())
      ev_.on_opaque(bytes);
    consumed_ += bytes.size();
    return stream_error::ok;
  }
  append(buf_, pos_, bytes);
  while (st_ != state::failed && step()) {
  }
  if (st_ == state::failed)
    return err_;
  if (buf_.size() - pos_ > kMaxRecord + kTargetPage + 4096)
    return fail(stream_error::too_large, "a record larger than 1 MiB");
  return stream_error::ok;
}

bool main_parser::step() {
  const std::size_t have = buf_.size() - pos_;
  const std::byte *p = buf_.data() + pos_;
  switch (st_) {
  case state::header:
    if (have < 8)
      return false;
    if (be32(p) != kFileMagic) {
      fail(stream_error::bad_magic, "");
      return false;
    }
    if (be32(p + 4) != kFileVersion) {
      fail(stream_error::bad_version, "version " + std::to_string(be32(p + 4)));
      return false;
    }
    opaque(8);
    st_ = state::record;
    return true;
  case state::record:
    return step_record();
  case state::ram:
    return step_ram();
  case state::footer:
    if (have < 1)
      return false;
    if (p[0] != std::byte{kVmSectionFooter}) {  // old machine types send no footer
      st_ = state::record;
      return true;
    }
    if (have < 5)
      return false;
    if (be32(p + 1) != ram_section_) {
      fail(stream_error::bad_section, "footer of section " + std::to_string(be32(p + 1)) + " after RAM");
      return false;
    }
    opaque(5);
    st_ = state::record;
    return true;
  case state::passthrough:
    if (have == 0)
      return false;
    opaque(have);
    return false;
  case state::failed:
    return false;
  }
  return false;
}

bool main_parser::parse_configuration(std::size_t &n) {
  const std::size_t have = buf_.size() - pos_;
  const std::byte *p = buf_.data() + pos_;
  std::size_t i = 1;
  if (have < i + 4)
    return false;
  const std::uint32_t len = be32(p + i);
  if (len > 256) {
    fail(stream_error::bad_record, "configuration name of " + std::to_string(len) + " bytes");
    return false;
  }
  i += 4 + len;
  for (;;) {
    if (have < i + 1)
      return false;
    if (p[i] != std::byte{kVmSubsection})
      break;
    if (have < i + 2)
      return false;
    const std::size_t nlen = std::to_integer<std::size_t>(p[i + 1]);
    if (have < i + 2 + nlen + 4)
      return false;
    const std::string_view name = str(p + i + 2, nlen);
    i += 2 + nlen + 4;
    if (name == "configuration/target-page-bits") {
      if (have < i + 4)
        return false;
      if (be32(p + i) != 12) {
        fail(stream_error::bad_record, "target page bits " + std::to_string(be32(p + i)) + " (4 KiB pages only)");
        return false;
      }
      i += 4;
    } else if (name == "configuration/capabilities") {
      if (have < i + 4)
        return false;
      const std::uint32_t ncap = be32(p + i);
      i += 4;
      if (ncap > 64) {
        fail(stream_error::bad_record, "configuration lists " + std::to_string(ncap) + " capabilities");
        return false;
      }
      for (std::uint32_t c = 0; c < ncap; ++c) {
        if (have < i + 1)
          return false;
        const std::size_t clen = std::to_integer<std::size_t>(p[i]);
        if (have < i + 1 + clen)
          return false;
        if (str(p + i + 1, clen) == "x-ignore-shared")
          ignore_shared_ = true;
        i += 1 + clen;
      }
    } else if (name == "configuration/uuid") {
      if (have < i + 16)
        return false;
      i += 16;
    } else {
      fail(stream_error::bad_record, "unknown configuration subsection '" + std::string(name) + "'");
      return false;
    }
  }
  n = i;
  return true;
}

bool main_parser::step_record() {
  const std::size_t have = buf_.size() - pos_;
  const std::byte *p = buf_.data() + pos_;
  if (have < 1)
    return false;
  const auto type = std::to_integer<std::uint8_t>(p[0]);
  switch (type) {
  case kVmConfiguration: {
    std::size_t n = 0;
    if (!parse_configuration(n))
      return false;
    opaque(n);
    return true;
  }
  case kVmSectionStart:
  case kVmSectionFull: {
    if (have < 6)
      return false;
    const std::uint32_t id = be32(p + 1);
    const std::size_t len = std::to_integer<std::size_t>(p[5]);
    if (have < 6 + len + 8)
      return false;
    const std::string_view name = str(p + 6, len);
    if (name == "ram") {
      if (type != kVmSectionStart || ram_section_ != ~0u) {
        fail(stream_error::bad_section, "a second RAM section");
        return false;
      }
      ram_section_ = id;
      in_end_ = false;
      opaque(6 + len + 8);
      st_ = state::ram;
      return true;
    }
    if (ram_done_) {  // device state: not parsed (no lengths), passed on to the end
      st_ = state::passthrough;
      return true;
    }
    fail(stream_error::unsupported_section,
         std::string(type == kVmSectionStart ? "iterative section '" : "device section '") + std::string(name) +
             "' before RAM has ended");
    return false;
  }
  case kVmSectionPart:
  case kVmSectionEnd: {
    if (have < 5)
      return false;
    const std::uint32_t id = be32(p + 1);
    if (id != ram_section_ || ram_done_) {
      fail(stream_error::unsupported_section, "part of section " + std::to_string(id) + " (not RAM's)");
      return false;
    }
    in_end_ = type == kVmSectionEnd;
    opaque(5);
    st_ = state::ram;
    return true;
  }
  case kVmCommand: {
    if (have < 5)
      return false;
    const std::uint16_t cmd = be16(p + 1), len = be16(p + 3);
    switch (cmd) {
    case 1:  // OPEN_RETURN_PATH
    case 2:  // PING
      break;
    case 8:
      fail(stream_error::unsupported_colo, "");
      return false;
    case 3: case 4: case 5: case 6: case 7: case 9: case 10:
      postcopy_ = true;
      fail(stream_error::unsupported_postcopy, "command " + std::to_string(cmd));
      return false;
    default:
      fail(stream_error::bad_record, "command " + std::to_string(cmd));
      return false;
    }
    if (have < 5u + len)
      return false;
    opaque(5u + len);
    return true;
  }
  case kVmEof:
    opaque(1);
    st_ = state::passthrough;  // the VM description, then the socket closes
    return true;
  default:
    fail(stream_error::bad_record, "record type " + std::to_string(type));
    return false;
  }
}

// A RAM record's block: CONTINUE, or u8 len + idstr at `at`. len: bytes used.
bool main_parser::read_block_ref(std::size_t at, std::uint32_t flags, std::size_t &block, std::size_t &len) {
  if (flags & kRamContinue) {
    if (last_block_ >= layout_.blocks.size()) {
      fail(stream_error::bad_record, "CONTINUE with no block before");
      return false;
    }
    block = last_block_;
    len = 0;
    return true;
  }
  const std::size_t have = buf_.size() - pos_;
  const std::byte *p = buf_.data() + pos_;
  if (have < at + 1)
    return false;
  const std::size_t n = std::to_integer<std::size_t>(p[at]);
  if (have < at + 1 + n)
    return false;
  const int b = layout_.find(str(p + at + 1, n));
  if (b < 0) {
    std::string name(1, '\'');
    name.append(str(p + at + 1, n));
    name.push_back('\'');
    fail(stream_error::unknown_block, std::move(name));
    return false;
  }
  block = static_cast<std::size_t>(b);
  len = 1 + n;
  return true;
}

bool main_parser::step_ram() {
  const std::size_t have = buf_.size() - pos_;
  const std::byte *p = buf_.data() + pos_;
  if (have < 8)
    return false;
  const std::uint64_t v = be64(p);
  const auto flags = static_cast<std::uint32_t>(v & kRamFlagMask);
  const std::uint64_t offset = v & ~kRamFlagMask;
  const std::uint32_t kind = flags & ~std::uint32_t{kRamContinue};
  switch (kind) {
  case kRamMemSize: {
    if (have_layout_) {
      fail(stream_error::bad_record, "a second MEM_SIZE");
      return false;
    }
    if (offset == 0 || offset > (std::uint64_t{1} << 44)) {
      fail(stream_error::bad_record, "MEM_SIZE of " + std::to_string(offset) + " bytes");
      return false;
    }
    ram_layout l;
    l.total_bytes = offset;
    std::size_t i = 8;
    std::uint64_t sum = 0;
    while (sum < l.total_bytes) {
      if (have < i + 1)
        return false;
      const std::size_t n = std::to_integer<std::size_t>(p[i]);
      const std::size_t extra = ignore_shared_ ? 8 : 0;
      if (have < i + 1 + n + 8 + extra)
        return false;
      ram_block b;
      b.id.assign(str(p + i + 1, n));
      b.used_length = be64(p + i + 1 + n);
      if (b.used_length == 0 || b.used_length % kTargetPage != 0 || b.used_length > l.total_bytes - sum ||
          l.blocks.size() >= 1024) {
        fail(stream_error::bad_record, "RAM block '" + b.id + "' of " + std::to_string(b.used_length) + " bytes");
        return false;
      }
      b.first_page = sum / kTargetPage;
      sum += b.used_length;
      l.blocks.push_back(std::move(b));
      i += 1 + n + 8 + extra;
    }
    layout_ = std::move(l);
    have_layout_ = true;
    opaque(i);
    ev_.on_layout(layout_);
    return true;
  }
  case kRamZero:
  case kRamPage: {
    if (!have_layout_) {
      fail(stream_error::bad_record, "a page before MEM_SIZE");
      return false;
    }
    std::size_t block = 0, len = 0;
    if (!read_block_ref(8, flags, block, len))
      return false;
    const std::size_t body = kind == kRamZero ? 1 : kTargetPage;
    if (have < 8 + len + body)
      return false;
    if (offset >= layout_.blocks[block].used_length) {
      fail(stream_error::bad_record, "page offset " + std::to_string(offset) + " past block '" +
                                         layout_.blocks[block].id + "'");
      return false;
    }
    last_block_ = block;
    if (kind == kRamZero)
      ev_.on_zero(block, offset, std::to_integer<std::uint8_t>(p[8 + len]));
    else
      ev_.on_page(block, offset, p + 8 + len);
    pos_ += 8 + len + body;
    consumed_ += 8 + len + body;
    return true;
  }
  case kRamEos:
    if (flags != kRamEos) {
      fail(stream_error::bad_record, "EOS with flags");
      return false;
    }
    opaque(8);
    ev_.on_ram_eos(in_end_);
    if (in_end_)
      ram_done_ = true;
    st_ = state::footer;
    return true;
  case kRamMultifdFlush:  // QEMU 8.0+: a sync point, passed on
    opaque(8);
    return true;
  case kRamXbzrle:
    fail(stream_error::unsupported_xbzrle, "");
    return false;
  case kRamCompressPage:
    fail(stream_error::unsupported_compress, "");
    return false;
  case kRamHook:
    fail(stream_error::unsupported_rdma, "");
    return false;
  default:
    fail(stream_error::bad_record, "RAM record flags 0x" + [&] {
      char b[16];
      std::snprintf(b, sizeof b, "%x", flags);
      return std::string(b);
    }());
    return false;
  }
}

// --- main writer -----------------------------------------------------------------------

std::size_t main_writer::header(std::byte *p, std::size_t block, std::uint64_t offset, std::uint32_t flag) {
  const bool cont = block == last_block_;
  put64(p, offset | flag | (cont ? std::uint32_t{kRamContinue} : 0u));
  std::size_t n = 8;
  if (!cont) {
    const std::string &id = layout_.blocks[block].id;
    p[n++] = static_cast<std::byte>(id.size());
    std::memcpy(p + n, id.data(), id.size());
    n += id.size();
    last_block_ = block;
  }
  return n;
}

void main_writer::page(std::size_t block, std::uint64_t offset, const std::byte *data) {
  std::byte h[8 + 1 + 256];
  const std::size_t n = header(h, block, offset, kRamPage);
  out_.write({h, n});
  out_.write({data, kTargetPage});
}

void main_writer::zero(std::size_t block, std::uint64_t offset, std::uint8_t fill) {
  std::byte h[8 + 1 + 256 + 1];
  std::size_t n = header(h, block, offset, kRamZero);
  h[n++] = static_cast<std::byte>(fill);
  out_.write({h, n});
}

// --- multifd ---------------------------------------------------------------------------

stream_error multifd_parser::fail(stream_error e, std::string why) {
  err_ = e;
  detail_ = std::string(to_string(e)) + " on a multifd channel, packet " + std::to_string(packets_) +
            (why.empty() ? "" : ": " + why);
  return e;
}

stream_error multifd_parser::feed(std::span<const std::byte> bytes) {
  if (err_ != stream_error::ok)
    return err_;
  append(buf_, pos_, bytes);
  for (;;) {
    const std::size_t have = buf_.size() - pos_;
    const std::byte *p = buf_.data() + pos_;
    if (!have_init_) {
      if (have < kMultifdInitSize)
        return stream_error::ok;
      if (be32(p) != kMultifdMagic)
        return fail(stream_error::bad_magic, "");
      if (be32(p + 4) != kMultifdVersion)
        return fail(stream_error::bad_version, "version " + std::to_string(be32(p + 4)));
      ev_.on_init({p, kMultifdInitSize}, std::to_integer<std::uint8_t>(p[24]));
      pos_ += kMultifdInitSize;
      have_init_ = true;
      continue;
    }
    if (have < kMultifdHeaderSize)
      return stream_error::ok;
    if (be32(p) != kMultifdMagic)
      return fail(stream_error::bad_magic, "");
    if (be32(p + 4) != kMultifdVersion)
      return fail(stream_error::bad_version, "version " + std::to_string(be32(p + 4)));
    multifd_packet k;
    k.flags = be32(p + 8);
    const std::uint32_t alloc = be32(p + 12);
    k.pages = be32(p + 16);
    k.packet_num = be64(p + 24);
    const std::uint32_t comp = (k.flags >> 1) & 0x7;
    if (k.flags & ~std::uint32_t{0xF})
      return fail(stream_error::bad_record, "flags 0x" + std::to_string(k.flags));
    if (alloc > kMultifdPages || k.pages > alloc)
      return fail(stream_error::bad_record, std::to_string(k.pages) + " pages of " + std::to_string(alloc));
    if (k.pages != 0 && comp != 0)
      return fail(stream_error::unsupported_compress, comp == 1 ? "multifd zlib" : comp == 2 ? "multifd zstd" : "multifd compression");
    const std::size_t need = kMultifdHeaderSize + std::size_t{k.pages} * kTargetPage;
    if (have < need)
      return stream_error::ok;
    if (k.pages != 0) {
      const std::byte *name = p + 64;
      const auto *end = static_cast<const std::byte *>(std::memchr(name, 0, 256));
      if (end == nullptr)
        return fail(stream_error::bad_record, "RAM block name not terminated");
      k.block = str(name, static_cast<std::size_t>(end - name));
      for (std::uint32_t i = 0; i < k.pages; ++i) {
        offsets_[i] = be64(p + 320 + 8 * i);
        if (offsets_[i] % kTargetPage != 0)
          return fail(stream_error::bad_record, "page offset not aligned");
      }
      k.offsets = offsets_;
      k.data = p + kMultifdHeaderSize;
    }
    ++packets_;
    ev_.on_packet(k);
    pos_ += need;
  }
}

void write_multifd_init(std::byte *out, std::uint8_t id, const std::byte *uuid16) {
  std::memset(out, 0, kMultifdInitSize);
  put32(out, kMultifdMagic);
  put32(out + 4, kMultifdVersion);
  std::memcpy(out + 8, uuid16, 16);
  out[24] = static_cast<std::byte>(id);
}

void write_multifd_header(std::byte *hdr, std::uint32_t flags, std::uint64_t packet_num, std::string_view block,
                          std::span<const std::uint64_t> offsets) {
  std::memset(hdr, 0, kMultifdHeaderSize);
  put32(hdr, kMultifdMagic);
  put32(hdr + 4, kMultifdVersion);
  put32(hdr + 8, flags);
  put32(hdr + 12, static_cast<std::uint32_t>(kMultifdPages));
  put32(hdr + 16, static_cast<std::uint32_t>(offsets.size()));
  put32(hdr + 20, static_cast<std::uint32_t>(offsets.size() * kTargetPage));
  put64(hdr + 24, packet_num);
  if (!block.empty())  // an empty view may have no data() (memcpy from null is undefined)
    std::memcpy(hdr + 64, block.data(), std::min<std::size_t>(block.size(), 255));
  for (std::size_t i = 0; i < offsets.size() && i < kMultifdPages; ++i)
    put64(hdr + 320 + 8 * i, offsets[i]);
}

}  // namespace hde::qemu
