// fec.h — forward error correction for groups of frames, on ISA-L erasure
// codes, free of DPDK so it is unit-tested on its own.
//
// After every k data frames of a stream the sender adds m parity frames; the
// receiver rebuilds up to m lost data frames of the group from any k of the
// k + m frames, without waiting a round trip for a retransmission.
//
// Shards. A data frame is a byte string of up to 65535 bytes (lens are
// uint16); its shard is the frame zero-padded to the group's shard_len, a
// multiple of kFecAlign (64: ISA-L's AVX-512 kernels take blocks of 64
// bytes) at least as long as the group's longest frame — fec_shard_len(max
// frame length). Parity shards are shard_len bytes. Data buffers need only
// their frame's bytes readable: the codec never copies a whole frame, it
// splits the shard into column ranges at the frames' ends, points ISA-L at
// the frames themselves where they have bytes, at a zero block past their
// end, and copies at most the last 63 bytes of each frame into a scratch
// block (zero-padded) for the one range that holds a frame's end.
//
// The code. Systematic Reed–Solomon over GF(2^8) with a Cauchy parity
// matrix: parity row i, data column j holds 1 / ((64 + i) xor j), i.e. rows
// 64.. of gf_gen_cauchy1_matrix(80, 64). Every square submatrix of a Cauchy
// matrix is invertible, so any k of the k + m shards rebuild the group. The
// coefficients do not depend on the codec's k_max and m_max, nor on how many
// frames a group holds: a group of k data and m parity frames is the same
// code for every sender and receiver, which need agree only on (k, m) —
// carried in the parity frame's header. A short group (k < k_max, e.g. the
// last frames before the stream goes idle) is the full group with the
// missing data shards all zero, which contribute nothing: the codec just
// uses the first k columns.
//
// Limits: 1 <= k <= 64 data and 1 <= m <= 16 parity shards a group, frames
// of up to the max_frame_len given at creation (<= 65535).
//
// Cost. Everything is allocated by create() for (k_max, m_max, max frame):
// encode and decode never touch the heap and make no system call. ISA-L's
// multiplication tables for (k_max, m_max) are built once; another (k, m)
// (short group, fewer parity) builds its tables on first use and keeps
// them until a different (k, m) comes — construct the codec for the (k, m)
// the stream uses. Decoding solves only for the missing frames: it inverts
// the e x e Cauchy submatrix (e = missing data frames, gf_invert_matrix),
// folds it into an e x k matrix over the survivors and runs one
// ec_encode_data pass; the last erasure pattern's tables are kept (a
// repeated pattern costs no set-up).
//
// A codec holds scratch state: one per thread (lcore), not shared.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string_view>

namespace hde::dp {

inline constexpr unsigned kFecMaxK = 64;           // data shards a group, at most
inline constexpr unsigned kFecMaxM = 16;           // parity shards a group, at most
inline constexpr std::size_t kFecAlign = 64;       // shard_len is a multiple of this
inline constexpr std::size_t kFecMaxFrame = 65535; // lens are uint16

enum class fec_error : std::uint8_t {
  ok,
  bad_k,             // k (or k_max) outside 1..64, or k > the codec's k_max
  bad_m,             // m (or m_max) outside 1..16, or m > the codec's m_max
  bad_frame_len,     // max_frame_len at creation outside 1..65535
  bad_shard_len,     // shard_len 0, not a multiple of kFecAlign, or above max_shard_len()
  frame_too_long,    // a frame's len > shard_len
  null_buffer,       // a parity/output buffer, or a data frame with len > 0, is nullptr
  too_many_erasures, // fewer than k of the group's k + m shards survive
  no_memory,         // create() could not allocate
};

constexpr std::string_view to_string(fec_error e) {
  switch (e) {
  case fec_error::ok: return "ok";
  case fec_error::bad_k: return "k out of range (1..64, and at most the codec's k_max)";
  case fec_error::bad_m: return "m out of range (1..16, and at most the codec's m_max)";
  case fec_error::bad_frame_len: return "max frame length out of range (1..65535)";
  case fec_error::bad_shard_len: return "shard_len not a positive multiple of 64 within the codec's maximum";
  case fec_error::frame_too_long: return "frame longer than shard_len";
  case fec_error::null_buffer: return "missing buffer";
  case fec_error::too_many_erasures: return "too few shards survive to rebuild the group";
  case fec_error::no_memory: return "out of memory";
  }
  return "unknown fec error";
}

// The shard length for frames of up to max_frame_len bytes: rounded up to
// kFecAlign, at least kFecAlign.
constexpr std::size_t fec_shard_len(std::size_t max_frame_len) {
  const std::size_t n = (max_frame_len + kFecAlign - 1) / kFecAlign * kFecAlign;
  return n == 0 ? kFecAlign : n;
}

struct fec_decode_result {
  fec_error error = fec_error::ok;
  unsigned rebuilt = 0; // data shards written (0: none was missing)
  bool ok() const { return error == fec_error::ok; }
};

class fec_codec {
public:
  // The limits alone: ok, bad_k, bad_m or bad_frame_len.
  static fec_error check(unsigned k_max, unsigned m_max, std::size_t max_frame_len);

  // A codec for groups of up to k_max data and m_max parity frames of up to
  // max_frame_len bytes; nullopt (and *why, if given) when a limit is broken
  // or memory runs out.
  static std::optional<fec_codec> create(unsigned k_max, unsigned m_max, std::size_t max_frame_len,
                                         fec_error *why = nullptr);

  unsigned k_max() const { return k_max_; }
  unsigned m_max() const { return m_max_; }
  std::size_t max_shard_len() const { return max_shard_; }

  // Parity of one group: data[0..k) are the frames (lens[j] bytes readable
  // at data[j]; data[j] may be nullptr when lens[j] == 0), k <= k_max;
  // parity[0..m) receive m shards of shard_len bytes each. This form makes
  // m = m_max parity shards.
  fec_error encode(const std::byte *const *data, const std::uint16_t *lens, unsigned k,
                   std::byte *const *parity, std::size_t shard_len);
  fec_error encode(const std::byte *const *data, const std::uint16_t *lens, unsigned k, unsigned m,
                   std::byte *const *parity, std::size_t shard_len);

  // Rebuild the lost data frames of a group of k data and m parity shards.
  // data[j] is the frame j when it arrived (lens[j] bytes readable, lens[j]
  // <= shard_len), nullptr when lost (lens[j] then unused); parity[i] is
  // parity shard i (shard_len bytes) or nullptr. For every lost j, out[j]
  // receives the whole shard: shard_len bytes, the frame followed by zeros
  // (its true length is in its own header); out[j] for frames present is not
  // touched and may be nullptr. Returns how many frames were rebuilt (0 when
  // only parity was lost: no work done), or an error — too_many_erasures
  // when more data frames are lost than parity shards arrived — and then
  // nothing is written.
  fec_decode_result decode(const std::byte *const *data, const std::uint16_t *lens, unsigned k,
                           const std::byte *const *parity, unsigned m, std::byte *const *out,
                           std::size_t shard_len);

private:
  struct free_deleter {
    void operator()(unsigned char *p) const { std::free(p); }
  };

  fec_codec() = default;
  const unsigned char *tables_for(unsigned k, unsigned m);
  // out[r] = sum over j of coefficient (r, j) * src[j] zero-padded to
  // shard_len, for rows r < nout, through ISA-L tables for (nsrc, nout).
  void multiply(const unsigned char *tbls, unsigned nsrc, unsigned nout, const unsigned char *const *src,
                const std::uint32_t *lens, unsigned char *const *out, std::size_t shard_len);

  unsigned k_max_ = 0, m_max_ = 0;
  std::size_t max_shard_ = 0;
  std::unique_ptr<unsigned char, free_deleter> mem_;
  unsigned char *coef_ = nullptr;      // m_max x k_max parity coefficients
  unsigned char *enc_tbls_ = nullptr;  // ISA-L tables for (k_max, m_max)
  unsigned char *alt_tbls_ = nullptr;  // tables for (alt_k_, alt_m_)
  unsigned char *dec_tbls_ = nullptr;  // tables of the last erasure pattern
  unsigned char *tails_ = nullptr;     // k_max blocks of kFecAlign: frames' last bytes
  unsigned char *zero_ = nullptr;      // max_shard_ zero bytes
  unsigned alt_k_ = 0, alt_m_ = 0;     // 0: alt_tbls_ empty
  // The erasure pattern dec_tbls_ solves: k, lost data, parity used.
  unsigned dec_k_ = 0;
  std::uint64_t dec_lost_ = 0;
  std::uint32_t dec_used_ = 0;
};

// Whether FEC pays on a path, and with which group: {k, m}, or {0, 0} off.
struct fec_choice {
  unsigned k = 0, m = 0;
  bool on() const { return k != 0; }
  friend bool operator==(const fec_choice &, const fec_choice &) = default;
};

// loss_rate: fraction of frames lost (0..1); rtt_s: round-trip time in
// seconds; rate_bps: the link's rate in bits per second; frame_bytes: the
// typical frame on the wire. Derivation in fec.cpp.
fec_choice fec_auto(double loss_rate, double rtt_s, double rate_bps, double frame_bytes);

// P(a group of k data + m parity frames loses more than m of its k + m),
// losses independent with probability p each: the group then needs ARQ.
double fec_group_failure(unsigned k, unsigned m, double p);

} // namespace hde::dp
