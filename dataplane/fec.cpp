// fec.cpp — the group FEC codec (fec.h) and the rule deciding whether FEC
// pays (fec_auto).
#include "fec.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <isa-l/erasure_code.h>

namespace hde::dp {

namespace {

constexpr std::size_t kTbl = 32; // ISA-L table bytes per coefficient

constexpr std::size_t round64(std::size_t n) { return (n + 63) / 64 * 64; }

bool shard_len_ok(std::size_t shard_len, std::size_t max_shard) {
  return shard_len != 0 && shard_len % kFecAlign == 0 && shard_len <= max_shard;
}

} // namespace

fec_error fec_codec::check(unsigned k_max, unsigned m_max, std::size_t max_frame_len) {
  if (k_max < 1 || k_max > kFecMaxK)
    return fec_error::bad_k;
  if (m_max < 1 || m_max > kFecMaxM)
    return fec_error::bad_m;
  if (max_frame_len < 1 || max_frame_len > kFecMaxFrame)
    return fec_error::bad_frame_len;
  return fec_error::ok;
}

std::optional<fec_codec> fec_codec::create(unsigned k_max, unsigned m_max, std::size_t max_frame_len,
                                           fec_error *why) {
  auto fail = [why](fec_error e) {
    if (why != nullptr)
      *why = e;
    return std::nullopt;
  };
  if (const fec_error e = check(k_max, m_max, max_frame_len); e != fec_error::ok)
    return fail(e);

  fec_codec c;
  c.k_max_ = k_max;
  c.m_max_ = m_max;
  c.max_shard_ = fec_shard_len(max_frame_len);

  const std::size_t coef = round64(std::size_t{m_max} * k_max);
  const std::size_t tbls = kTbl * k_max * m_max; // a multiple of 32; rounded below
  const std::size_t tails = kFecAlign * k_max;
  const std::size_t total = coef + 3 * round64(tbls) + tails + c.max_shard_;
  auto *p = static_cast<unsigned char *>(std::aligned_alloc(64, total));
  if (p == nullptr)
    return fail(fec_error::no_memory);
  std::memset(p, 0, total);
  c.mem_.reset(p);
  c.coef_ = p;
  c.enc_tbls_ = c.coef_ + coef;
  c.alt_tbls_ = c.enc_tbls_ + round64(tbls);
  c.dec_tbls_ = c.alt_tbls_ + round64(tbls);
  c.tails_ = c.dec_tbls_ + round64(tbls);
  c.zero_ = c.tails_ + tails;

  // The full Cauchy matrix for the absolute limits, so the coefficients of
  // a (k, m) group are the same whatever the codec's k_max and m_max.
  unsigned char full[(kFecMaxK + kFecMaxM) * kFecMaxK];
  gf_gen_cauchy1_matrix(full, kFecMaxK + kFecMaxM, kFecMaxK);
  for (unsigned i = 0; i < m_max; ++i)
    std::memcpy(c.coef_ + std::size_t{i} * k_max, full + std::size_t{kFecMaxK + i} * kFecMaxK, k_max);
  ec_init_tables(static_cast<int>(k_max), static_cast<int>(m_max), c.coef_, c.enc_tbls_);
  return c;
}

const unsigned char *fec_codec::tables_for(unsigned k, unsigned m) {
  if (k == k_max_ && m == m_max_)
    return enc_tbls_;
  if (k != alt_k_ || m != alt_m_) {
    // Built through ec_init_tables rather than by slicing enc_tbls_: the
    // table layout is ISA-L's business (newer releases have GFNI forms).
    unsigned char a[kFecMaxM * kFecMaxK];
    for (unsigned i = 0; i < m; ++i)
      std::memcpy(a + std::size_t{i} * k, coef_ + std::size_t{i} * k_max_, k);
    ec_init_tables(static_cast<int>(k), static_cast<int>(m), a, alt_tbls_);
    alt_k_ = k;
    alt_m_ = m;
  }
  return alt_tbls_;
}

void fec_codec::multiply(const unsigned char *tbls, unsigned nsrc, unsigned nout, const unsigned char *const *src,
                         const std::uint32_t *lens, unsigned char *const *out, std::size_t shard_len) {
  // Column ranges: ISA-L takes equal-length sources, the frames are not.
  // Source j has real bytes in [0, full[j]) (whole blocks), its last partial
  // block (if any) at [full[j], full[j] + kFecAlign) — copied, zero-padded,
  // into its tail block — and zeros after. Cutting the shard at every
  // full[j] and full[j] + kFecAlign gives ranges in which every source is one
  // contiguous buffer: the frame itself, its tail block, or the zero block.
  constexpr std::uint32_t A = kFecAlign;
  const auto S = static_cast<std::uint32_t>(shard_len);
  std::uint32_t full[kFecMaxK];
  std::uint32_t cut[2 * kFecMaxK + 2];
  unsigned nc = 0;
  cut[nc++] = 0;
  cut[nc++] = S;
  for (unsigned j = 0; j < nsrc; ++j) {
    const std::uint32_t f = lens[j] / A * A;
    full[j] = f;
    if (f != 0 && f != S)
      cut[nc++] = f;
    if (lens[j] != f) {
      unsigned char *t = tails_ + std::size_t{j} * A;
      std::memcpy(t, src[j] + f, lens[j] - f);
      std::memset(t + (lens[j] - f), 0, A - (lens[j] - f));
      cut[nc++] = f + A; // <= S: lens[j] <= S and S is a multiple of A
    }
  }
  std::sort(cut, cut + nc);
  nc = static_cast<unsigned>(std::unique(cut, cut + nc) - cut);

  unsigned char *ps[kFecMaxK];
  unsigned char *po[kFecMaxM];
  for (unsigned c = 0; c + 1 < nc; ++c) {
    const std::uint32_t s = cut[c], e = cut[c + 1];
    for (unsigned j = 0; j < nsrc; ++j) {
      const unsigned char *p;
      if (e <= full[j])
        p = src[j] + s;
      else if (s == full[j] && lens[j] != full[j])
        p = tails_ + std::size_t{j} * A; // e == s + A
      else
        p = zero_;
      ps[j] = const_cast<unsigned char *>(p); // ISA-L takes unsigned char **, reads only
    }
    for (unsigned r = 0; r < nout; ++r)
      po[r] = out[r] + s;
    ec_encode_data(static_cast<int>(e - s), static_cast<int>(nsrc), static_cast<int>(nout),
                   const_cast<unsigned char *>(tbls), ps, po);
  }
}

fec_error fec_codec::encode(const std::byte *const *data, const std::uint16_t *lens, unsigned k,
                            std::byte *const *parity, std::size_t shard_len) {
  return encode(data, lens, k, m_max_, parity, shard_len);
}

fec_error fec_codec::encode(const std::byte *const *data, const std::uint16_t *lens, unsigned k, unsigned m,
                            std::byte *const *parity, std::size_t shard_len) {
  if (k < 1 || k > k_max_)
    return fec_error::bad_k;
  if (m < 1 || m > m_max_)
    return fec_error::bad_m;
  if (!shard_len_ok(shard_len, max_shard_))
    return fec_error::bad_shard_len;
  if (data == nullptr || lens == nullptr || parity == nullptr)
    return fec_error::null_buffer;
  const unsigned char *src[kFecMaxK];
  std::uint32_t len[kFecMaxK];
  for (unsigned j = 0; j < k; ++j) {
    if (lens[j] > shard_len)
      return fec_error::frame_too_long;
    if (lens[j] != 0 && data[j] == nullptr)
      return fec_error::null_buffer;
    src[j] = lens[j] != 0 ? reinterpret_cast<const unsigned char *>(data[j]) : zero_;
    len[j] = lens[j];
  }
  unsigned char *out[kFecMaxM];
  for (unsigned i = 0; i < m; ++i) {
    if (parity[i] == nullptr)
      return fec_error::null_buffer;
    out[i] = reinterpret_cast<unsigned char *>(parity[i]);
  }
  multiply(tables_for(k, m), k, m, src, len, out, shard_len);
  return fec_error::ok;
}

fec_decode_result fec_codec::decode(const std::byte *const *data, const std::uint16_t *lens, unsigned k,
                                    const std::byte *const *parity, unsigned m, std::byte *const *out,
                                    std::size_t shard_len) {
  if (k < 1 || k > k_max_)
    return {fec_error::bad_k, 0};
  if (m < 1 || m > m_max_)
    return {fec_error::bad_m, 0};
  if (!shard_len_ok(shard_len, max_shard_))
    return {fec_error::bad_shard_len, 0};
  if (data == nullptr || lens == nullptr || parity == nullptr)
    return {fec_error::null_buffer, 0};

  unsigned lost[kFecMaxK];
  unsigned e = 0;
  std::uint64_t lost_mask = 0;
  for (unsigned j = 0; j < k; ++j) {
    if (data[j] == nullptr) {
      lost[e++] = j;
      lost_mask |= std::uint64_t{1} << j;
    } else if (lens[j] > shard_len) {
      return {fec_error::frame_too_long, 0};
    }
  }
  if (e == 0)
    return {fec_error::ok, 0}; // only parity (or nothing) lost
  if (e > m)
    return {fec_error::too_many_erasures, 0};
  unsigned used[kFecMaxM];
  unsigned nu = 0;
  std::uint32_t used_mask = 0;
  for (unsigned i = 0; i < m && nu < e; ++i)
    if (parity[i] != nullptr) {
      used[nu++] = i;
      used_mask |= std::uint32_t{1} << i;
    }
  if (nu < e)
    return {fec_error::too_many_erasures, 0};
  if (out == nullptr)
    return {fec_error::null_buffer, 0};
  for (unsigned s = 0; s < e; ++s)
    if (out[lost[s]] == nullptr)
      return {fec_error::null_buffer, 0};

  // Survivors, in the order the decode matrix's columns take them: the data
  // frames that arrived, then the e parity shards used.
  const unsigned char *src[kFecMaxK];
  std::uint32_t len[kFecMaxK];
  unsigned ns = 0;
  for (unsigned j = 0; j < k; ++j)
    if (data[j] != nullptr) {
      src[ns] = reinterpret_cast<const unsigned char *>(data[j]);
      len[ns++] = lens[j];
    }
  for (unsigned r = 0; r < e; ++r) {
    src[ns] = reinterpret_cast<const unsigned char *>(parity[used[r]]);
    len[ns++] = static_cast<std::uint32_t>(shard_len);
  }

  if (k != dec_k_ || lost_mask != dec_lost_ || used_mask != dec_used_) {
    // Parity shard used[r] = sum over lost s of C[used r][lost s] d[lost s]
    //                      + sum over arrived j of C[used r][j] d[j].
    // With a = C[used][lost] (e x e, invertible: a Cauchy submatrix) and S
    // the parity minus the known part, d[lost] = a^-1 S, so row s of the
    // decode matrix is a^-1[s][r] on parity used[r] and
    // sum over r of a^-1[s][r] C[used r][j] on arrived frame j.
    unsigned char a[kFecMaxM * kFecMaxM], inv[kFecMaxM * kFecMaxM];
    for (unsigned r = 0; r < e; ++r)
      for (unsigned s = 0; s < e; ++s)
        a[r * e + s] = coef_[std::size_t{used[r]} * k_max_ + lost[s]];
    if (gf_invert_matrix(a, inv, static_cast<int>(e)) != 0)
      return {fec_error::too_many_erasures, 0}; // cannot happen with a Cauchy matrix
    unsigned char dm[kFecMaxM * kFecMaxK];
    for (unsigned s = 0; s < e; ++s) {
      unsigned char *row = dm + std::size_t{s} * k;
      unsigned c = 0;
      for (unsigned j = 0; j < k; ++j) {
        if ((lost_mask >> j) & 1)
          continue;
        unsigned char v = 0;
        for (unsigned r = 0; r < e; ++r)
          v ^= gf_mul(inv[s * e + r], coef_[std::size_t{used[r]} * k_max_ + j]);
        row[c++] = v;
      }
      for (unsigned r = 0; r < e; ++r)
        row[c++] = inv[s * e + r];
    }
    ec_init_tables(static_cast<int>(k), static_cast<int>(e), dm, dec_tbls_);
    dec_k_ = k;
    dec_lost_ = lost_mask;
    dec_used_ = used_mask;
  }

  unsigned char *dst[kFecMaxM];
  for (unsigned s = 0; s < e; ++s)
    dst[s] = reinterpret_cast<unsigned char *>(out[lost[s]]);
  multiply(dec_tbls_, k, e, src, len, dst, shard_len);
  return {fec_error::ok, e};
}

// --- when FEC pays -----------------------------------------------------------

double fec_group_failure(unsigned k, unsigned m, double p) {
  if (!(p > 0))
    return 0;
  if (p >= 1)
    return 1;
  const unsigned n = k + m;
  const double lp = std::log(p), lq = std::log1p(-p);
  double tail = 0;
  for (unsigned i = m + 1; i <= n; ++i)
    tail += std::exp(std::lgamma(n + 1.0) - std::lgamma(i + 1.0) - std::lgamma(n - i + 1.0) + i * lp + (n - i) * lq);
  return std::min(tail, 1.0);
}

// What each repair costs. ARQ sends only what is lost (about loss x the
// bytes) but every loss holds up in-order delivery — the receiver's reorder
// buffer holds everything after the hole, the sender's window stays full —
// for at least one RTT until the retransmission lands. FEC costs m/k of the
// link all the time, and repairs within the group's own time on the wire.
//
// With W = rate x RTT / frame bits, the frames sent per RTT, losses come at
// loss x W per RTT, and each keeps a hole open for about an RTT: loss x W is
// the fraction of the time delivery is stalled behind a hole (while < 1).
//
//  - Off below 0.1% loss: ARQ's cost (~loss of the bytes) is then less than
//    the smallest FEC overhead worth having (1/64 = 1.6%).
//  - Off when loss x W < 0.1: delivery stalls less than a tenth of the time.
//  - k: the largest of 64, 32, 16 whose group is on the wire within half an
//    RTT (k <= W / 2), so FEC repairs well before a retransmission could;
//    off when even 16 frames take longer (W < 32): ARQ is as quick.
//  - m: the smallest with P(more than m of the k + m frames lost) < 1e-3,
//    losses binomial at twice the measured rate (padding for bursts: loss
//    on real paths clusters) — the rare failed group falls back to ARQ;
//  - but FEC may spend at most twice the measured loss plus 1/16 of the
//    link: m <= k (2 loss + 1/16); at high loss the parity spent grows with
//    the loss rather than chasing the 1e-3 target, and ARQ repairs the rest.
//    m is capped at 16.
// For fixed RTT, rate and frame size, k is fixed and both bounds on m grow
// with loss, so more loss never means less parity.
fec_choice fec_auto(double loss_rate, double rtt_s, double rate_bps, double frame_bytes) {
  if (!std::isfinite(loss_rate) || !std::isfinite(rtt_s) || !std::isfinite(rate_bps) ||
      !std::isfinite(frame_bytes) || rtt_s <= 0 || rate_bps <= 0 || frame_bytes <= 0)
    return {};
  const double loss = std::clamp(loss_rate, 0.0, 1.0);
  constexpr double kMinLoss = 1e-3, kMinStall = 0.1, kTarget = 1e-3, kBurst = 2.0, kMargin = 1.0 / 16;
  if (loss < kMinLoss)
    return {};
  const double w = rate_bps * rtt_s / (8 * frame_bytes);
  if (loss * w < kMinStall)
    return {};
  unsigned k;
  if (w >= 2 * 64)
    k = 64;
  else if (w >= 2 * 32)
    k = 32;
  else if (w >= 2 * 16)
    k = 16;
  else
    return {};
  const double p = std::min(1.0, kBurst * loss);
  const auto cap = static_cast<unsigned>(std::clamp(std::floor(k * (kBurst * loss + kMargin)), 1.0, double{kFecMaxM}));
  unsigned m = 1;
  while (m < cap && fec_group_failure(k, m, p) >= kTarget)
    ++m;
  return {k, m};
}

} // namespace hde::dp
