// format.h — the HDE wire format, version 1 (docs/wire-format.md is the
// prose form of this file). All multi-byte fields are little-endian.
//
//   frame   = frame_header (32 B) + records
//   record  = record_header (8 B) + body (body_len bytes)
//
// A frame is one UDP payload. Frames of one stream are applied in sequence
// order; a record larger than the room left in a frame travels as FRAG
// records in consecutive frames of the same stream.
#pragma once

#include <cstdint>
#include <cstring>

#include "common/error.h"
#include "common/page.h"

namespace hde::wire {

inline constexpr std::uint16_t kMagic = 0x4448;  // bytes 'H','D' on the wire
inline constexpr std::uint8_t kVersion = 1;
inline constexpr std::size_t kFrameHeaderSize = 32;
inline constexpr std::size_t kRecordHeaderSize = 8;
// Ethernet (14) + IPv4 (20) + UDP (8) in front of every frame on the link.
inline constexpr std::size_t kL2L4Overhead = 42;
inline constexpr std::uint32_t kNoSlot = 0xFFFFFFFFu;
// Upper bound of a reassembled record (a BATCH of up to 1 MiB raw).
inline constexpr std::size_t kMaxRecordSize = (1u << 21);
inline constexpr std::size_t kMinFrameSize = 128;
inline constexpr std::size_t kMaxFrameSize = 65507;  // largest UDP payload over IPv4

// UDP payload size for a link MTU (IPv4 + UDP headers subtracted).
constexpr std::size_t frame_size_for_mtu(std::size_t mtu) { return mtu - 28; }

enum class frame_type : std::uint8_t {
  data = 1,    // records of one stream
  ack = 2,     // receiver -> sender: selective acknowledgement (data plane)
  repair = 3,  // receiver -> sender: pages it could not rebuild (repair_entry list)
  fec = 4,     // sender -> receiver: a parity shard over a group of DATA frames
               // (seq = the group's first DATA seq, ack = k | m << 8 | index << 16)
  notice = 5,  // receiver -> sender, never sealed: why it drops the sender's frames
               // (ack = notice_reason); advisory only, it changes no state
};

// NOTICE reasons (frame_header::ack).
enum class notice_reason : std::uint32_t {
  auth_fail = 1,     // sealed frames fail authentication here (another key?)
  need_sealed = 2,   // this receiver requires sealed frames (it has a key)
  cannot_open = 3,   // sealed frames arrive but this receiver has no key
  unknown_key = 4,   // sealed with a key id this receiver does not hold
};

// One page of a REPAIR frame: the sender sends it again whole.
struct repair_entry {
  std::uint64_t gfn;
  std::uint32_t vm;
  std::uint32_t reserved;  // 0
};
static_assert(sizeof(repair_entry) == 16);

// Frame header flags.
inline constexpr std::uint16_t kFrameFlagRetransmit = 1u << 0;  // a resent copy
inline constexpr std::uint16_t kFrameFlagAbort = 1u << 1;       // ACK: the destination gave up (its QEMU side failed)
inline constexpr std::uint16_t kFrameFlagSealed = 1u << 2;      // AES-256-GCM: seal_header, ciphertext, tag

// A sealed frame (kFrameFlagSealed) is
//   frame_header | seal_header | ciphertext of the records | 16-byte GCM tag
// with payload_len counting all three. The associated data is the frame
// header (crc = 0) followed by the seal header: both travel in clear and are
// authenticated. The nonce (12 bytes) is key_id | dir | stream (LE16) |
// nonce (LE64): unique per key because every sealing takes the next value of
// its (direction, stream) counter, which starts at a random 64-bit value
// whenever the sender starts (a new epoch); a retransmission is sealed again
// under the next value. The CRC is computed over the sealed frame: it tells
// corruption on the link (bad_crc) from tampering (auth_fail).
inline constexpr std::uint8_t kSealFromSource = 0;  // seal_header::dir: DATA, FEC
inline constexpr std::uint8_t kSealFromDest = 1;    // ACK, REPAIR
struct seal_header {
  std::uint8_t key_id;    // the key that sealed this frame
  std::uint8_t accepts;   // newest key id the sender accepts (key rotation)
  std::uint8_t dir;       // kSealFrom*
  std::uint8_t reserved;  // 0
  std::uint32_t time_s;   // sender's wall clock (Unix seconds, low 32 bits): a
                          // stream start (seq 0, new epoch) older than the
                          // replay window is a replay, not a restart
  std::uint64_t nonce;    // per (dir, stream) counter value of this sealing
};
static_assert(sizeof(seal_header) == 16);
inline constexpr std::size_t kSealTagSize = 16;
inline constexpr std::size_t kSealOverhead = sizeof(seal_header) + kSealTagSize;  // 32

struct frame_header {
  std::uint16_t magic;         // kMagic
  std::uint8_t version;        // kVersion
  std::uint8_t type;           // frame_type
  std::uint16_t flags;         // kFrameFlag*
  std::uint16_t stream;        // sender's stream (one per worker lcore)
  std::uint32_t epoch;         // sender's epoch: changes when it restarts
  std::uint16_t record_count;  // records in this frame
  std::uint16_t payload_len;   // bytes after this header
  std::uint64_t seq;           // per-stream sequence number, from 0
  std::uint32_t ack;           // reserved (0): piggy-backed ack / FEC group
  std::uint32_t crc;           // CRC32C of header (crc = 0) + payload
};
static_assert(sizeof(frame_header) == kFrameHeaderSize);

enum class record_type : std::uint8_t {
  init = 1,   // stream start: slot count the receiver must mirror
  zero = 2,   // run of all-zero pages
  ref = 3,    // page equal to the content of a baseline slot
  delta = 4,  // page as a delta against a baseline slot
  page = 5,   // page, compressed with a codec (or raw)
  batch = 6,  // several records compressed together
  frag = 7,   // a piece of a record too large for one frame
  mark = 8,   // end of a round for a VM
  opaque = 9, // bytes of a VM's migration stream that are not pages (QEMU), in order
  count_
};

struct record_header {
  std::uint8_t type;  // record_type
  std::uint8_t flags;
  std::uint16_t reserved;
  std::uint32_t body_len;
};
static_assert(sizeof(record_header) == kRecordHeaderSize);

// --- record bodies (fixed part; variable data follows) ---------------------

struct init_body {
  std::uint32_t slot_count;  // baseline slots the receiver mirrors for this stream
  std::uint32_t page_size;   // kPageSize
  std::uint32_t max_record;  // largest reassembled record the sender emits
  std::uint32_t streams;     // streams the sender runs in parallel (>= 1)
  // What the receiver checks against its own (docs/wire-format.md, INIT):
  std::uint32_t max_frame;   // largest frame (UDP payload) the sender transmits; 0: not said
  std::uint32_t window;      // frames the sender may hold unacknowledged; 0: not said
};
static_assert(sizeof(init_body) == 24);

struct zero_body {
  std::uint32_t vm;
  std::uint32_t count;  // pages gfn .. gfn+count-1 are all zero
  std::uint64_t gfn;
};
static_assert(sizeof(zero_body) == 16);

// Every page record may fill a baseline slot with the rebuilt page
// (fill_slot != kNoSlot): the receiver copies it there and bumps the slot's
// generation, exactly as the sender did.
struct ref_body {
  std::uint32_t vm;
  std::uint32_t src_slot;  // slot holding the content
  std::uint64_t gfn;
  std::uint32_t src_gen;   // generation of src_slot the sender means
  std::uint32_t fill_slot;
  std::uint64_t hash_lo;   // low 64 bits of the XXH3-128 of the content
};
static_assert(sizeof(ref_body) == 32);

enum class delta_kind : std::uint8_t {
  xbzrle = 1,     // data = XBZRLE runs against the base page
  xor_codec = 2,  // data = codec(base ^ page)
};

struct delta_body {
  std::uint32_t vm;
  std::uint32_t base_slot;
  std::uint64_t gfn;
  std::uint32_t base_gen;
  std::uint32_t fill_slot;
  std::uint8_t kind;   // delta_kind
  std::uint8_t codec;  // codec_id for xor_codec, else 0
  std::uint16_t reserved;
  std::uint32_t reserved2;
};
static_assert(sizeof(delta_body) == 32);

struct page_body {
  std::uint32_t vm;
  std::uint32_t fill_slot;
  std::uint64_t gfn;
  std::uint8_t codec;  // codec_id; raw means data is the page itself
  std::uint8_t reserved[7];
};
static_assert(sizeof(page_body) == 24);

inline constexpr std::uint8_t kBatchFlagStream = 1u << 0;  // zstd stream: window runs on across batches
inline constexpr std::uint8_t kBatchFlagReset = 1u << 1;   // zstd stream starts afresh at this batch

struct batch_body {
  std::uint8_t codec;  // codec_id
  std::uint8_t flags;  // kBatchFlag*
  std::uint16_t reserved;
  std::uint32_t raw_len;  // size of the decompressed inner records
};
static_assert(sizeof(batch_body) == 8);

struct frag_body {
  std::uint32_t total;   // size of the whole record being carried
  std::uint32_t offset;  // where this piece starts in it
};
static_assert(sizeof(frag_body) == 8);

inline constexpr std::uint32_t kMarkFlagLast = 1u << 0;  // last round: migration complete

struct mark_body {
  std::uint32_t vm;
  std::uint32_t round;
  std::uint64_t pages;  // pages of this VM carried in the round
  std::uint32_t flags;  // kMarkFlag*
  std::uint32_t reserved;
};
static_assert(sizeof(mark_body) == 24);

// OPAQUE: a piece of the bytes a hypervisor's migration stream carries
// besides pages (QEMU: header, section headers, device state, commands),
// carried in order on stream 0. Pieces of one VM are numbered by `chunk`:
// chunk k ends at the k-th barrier (QEMU: before a RAM EOS record), where
// the receiver must have written every page sent before the barrier's MARK
// (round = k) on every stream before it writes chunk k + 1.
inline constexpr std::uint32_t kOpaqueChunkEnd = 1u << 0;   // last piece of chunk k: barrier k follows
inline constexpr std::uint32_t kOpaqueStreamEnd = 1u << 1;  // last piece of the VM's stream
inline constexpr std::uint32_t kOpaqueAbort = 1u << 2;      // the source gave up: drop the VM's stream
inline constexpr std::uint32_t kOpaqueMultifd = 1u << 3;    // not stream bytes: multifd_meta follows
inline constexpr std::size_t kMaxOpaquePiece = 3072;        // bytes per OPAQUE record at most

struct opaque_body {
  std::uint32_t vm;
  std::uint32_t chunk;   // from 1
  std::uint32_t flags;   // kOpaque*
  std::uint32_t reserved;
};
static_assert(sizeof(opaque_body) == 16);

// kOpaqueMultifd: the source QEMU opened this many multifd channels; the
// destination gateway opens as many to its QEMU (MultiFDInit_t uuid as given).
struct multifd_meta {
  std::uint32_t channels;
  std::uint8_t uuid[16];
};
static_assert(sizeof(multifd_meta) == 20);

// --- helpers ----------------------------------------------------------------
// x86-64 and arm64 are little-endian; a big-endian port would swap here.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "wire structs assume little-endian");

template <typename T> inline T load(const std::byte *p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename T> inline void store(std::byte *p, const T &v) { std::memcpy(p, &v, sizeof v); }

std::uint32_t crc32c(const void *data, std::size_t len, std::uint32_t seed = 0);

// Check magic, version, type, lengths and CRC of a received frame. On success
// fills hdr; the records are frame[kFrameHeaderSize, +payload_len).
error parse_frame_header(bytes_view frame, frame_header &hdr);

// Compute and store the CRC of a complete frame (header + payload).
void seal_frame(bytes_buf frame);

}  // namespace hde::wire
