// codec.h — compact binary form of the CRDTs in causal.h and types.h, for
// the sync datagrams (docs/sync.md). Integers are LEB128 varints, strings a
// varint length and the bytes, containers a varint count and their elements
// in key order (strictly increasing: one encoding per state, so equal states
// encode alike and a duplicate key is an error, not a silent overwrite).
//
// Decoding never trusts the input: every read is bounds-checked, a count
// larger than the bytes left is refused before anything is allocated, and a
// decoded state must be well formed (no replica 0 or counter 0 in a dot, every
// value's dot inside its causal context, no dot used twice). Any error leaves
// reader::ok() false; the caller then drops the whole input.
//
// A value type T of a register or map is encoded by the overloads
// encode(writer &, const T &) and decode(reader &, T &): the basic ones are
// below, a struct of the caller's declares its own beside it (found by ADL).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "crdt/causal.h"
#include "crdt/types.h"

namespace hde::crdt {

class writer {
public:
  explicit writer(std::vector<std::uint8_t> &out) : out_(out) {}
  void u8(std::uint8_t v) { out_.push_back(v); }
  void varint(std::uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<std::uint8_t>(v | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<std::uint8_t>(v));
  }
  void bytes(std::span<const std::uint8_t> b) { out_.insert(out_.end(), b.begin(), b.end()); }
  void str(const std::string &s) {
    varint(s.size());
    out_.insert(out_.end(), s.begin(), s.end());
  }
  std::size_t size() const { return out_.size(); }

private:
  std::vector<std::uint8_t> &out_;
};

class reader {
public:
  explicit reader(std::span<const std::uint8_t> in) : p_(in.data()), end_(in.data() + in.size()) {}
  bool ok() const { return ok_; }
  bool fail() { return ok_ = false; }
  std::size_t left() const { return ok_ ? static_cast<std::size_t>(end_ - p_) : 0; }
  bool done() const { return ok_ && p_ == end_; }
  bool u8(std::uint8_t &v) {
    if (left() < 1)
      return fail();
    v = *p_++;
    return true;
  }
  bool varint(std::uint64_t &v) {
    v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
      std::uint8_t b;
      if (!u8(b))
        return false;
      if (shift == 63 && b > 1)
        return fail();  // more than 64 bits
      v |= std::uint64_t(b & 0x7f) << shift;
      if ((b & 0x80) == 0)
        return true;
    }
    return fail();
  }
  bool u32(std::uint32_t &v) {
    std::uint64_t x;
    if (!varint(x) || x > 0xFFFFFFFFull)
      return fail();
    v = static_cast<std::uint32_t>(x);
    return true;
  }
  // A count of elements of at least min_bytes each: never more than the
  // bytes left can hold, so a forged count allocates nothing.
  bool count(std::size_t &n, std::size_t min_bytes = 1) {
    std::uint64_t x;
    if (!varint(x) || x > left() / (min_bytes ? min_bytes : 1))
      return fail();
    n = static_cast<std::size_t>(x);
    return true;
  }
  bool bytes(std::size_t n, std::span<const std::uint8_t> &out) {
    if (left() < n)
      return fail();
    out = {p_, n};
    p_ += n;
    return true;
  }
  bool str(std::string &s, std::size_t max = 4096) {
    std::size_t n;
    std::span<const std::uint8_t> b;
    if (!count(n) || n > max || !bytes(n, b))
      return fail();
    s.assign(b.begin(), b.end());
    return true;
  }

private:
  const std::uint8_t *p_, *end_;
  bool ok_ = true;
};

// The basic value types.
inline void encode(writer &w, std::uint64_t v) { w.varint(v); }
inline void encode(writer &w, std::uint32_t v) { w.varint(v); }
inline void encode(writer &w, std::uint8_t v) { w.u8(v); }
inline void encode(writer &w, const std::string &s) { w.str(s); }
inline bool decode(reader &r, std::uint64_t &v) { return r.varint(v); }
inline bool decode(reader &r, std::uint32_t &v) { return r.u32(v); }
inline bool decode(reader &r, std::uint8_t &v) { return r.u8(v); }
inline bool decode(reader &r, std::string &s) { return r.str(s); }

struct codec_access {
  static void put(writer &w, const dot &d) {
    w.varint(d.replica);
    w.varint(d.counter);
  }
  static bool get(reader &r, dot &d) {
    if (!r.u32(d.replica) || !r.varint(d.counter) || d.replica == 0 || d.counter == 0)
      return r.fail();
    return true;
  }

  static void put(writer &w, const dot_context &c) {
    w.varint(c.vv_.size());
    for (const auto &[rep, n] : c.vv_) {
      w.varint(rep);
      w.varint(n);
    }
    w.varint(c.cloud_.size());
    for (const dot &d : c.cloud_)
      put(w, d);
  }
  static bool get(reader &r, dot_context &c) {
    c = {};
    std::size_t n;
    if (!r.count(n, 2))
      return false;
    for (std::size_t i = 0; i < n; ++i) {
      dot d;
      if (!get(r, d) || (!c.vv_.empty() && c.vv_.rbegin()->first >= d.replica))
        return r.fail();
      c.vv_.emplace(d.replica, d.counter);
    }
    if (!r.count(n, 2))
      return false;
    for (std::size_t i = 0; i < n; ++i) {
      dot d;
      if (!get(r, d) || (!c.cloud_.empty() && !(*c.cloud_.rbegin() < d)))
        return r.fail();
      c.cloud_.insert(d);
    }
    // The canonical form: a cloud dot the vector covers or extends is an
    // encoding no join produces.
    dot_context canon = c;
    canon.compact();
    if (!(canon == c))
      return r.fail();
    return true;
  }

  static void put(writer &w, const gcounter &g) {
    w.varint(g.c_.size());
    for (const auto &[rep, v] : g.c_) {
      w.varint(rep);
      w.varint(v);
    }
  }
  static bool get(reader &r, gcounter &g) {
    g = {};
    std::size_t n;
    if (!r.count(n, 2))
      return false;
    for (std::size_t i = 0; i < n; ++i) {
      std::uint32_t rep;
      std::uint64_t v;
      if (!r.u32(rep) || !r.varint(v) || rep == 0 || (!g.c_.empty() && g.c_.rbegin()->first >= rep))
        return r.fail();
      g.c_.emplace(rep, v);
    }
    return true;
  }

  static void put(writer &w, const pncounter &c) {
    put(w, c.p_);
    put(w, c.n_);
  }
  static bool get(reader &r, pncounter &c) { return get(r, c.p_) && get(r, c.n_); }

  template <typename T> static void put(writer &w, const lww_register<T> &x) {
    w.u8(x.val_ ? 1 : 0);
    if (!x.val_)
      return;
    w.varint(x.at_.time);
    w.varint(x.at_.replica);
    encode(w, *x.val_);
  }
  template <typename T> static bool get(reader &r, lww_register<T> &x) {
    x = {};
    std::uint8_t has;
    if (!r.u8(has) || has > 1)
      return r.fail();
    if (has == 0)
      return true;
    T v{};
    if (!r.varint(x.at_.time) || !r.u32(x.at_.replica) || !decode(r, v))
      return r.fail();
    x.val_ = std::move(v);
    return true;
  }

  template <typename T> static void put(writer &w, const mv_register<T> &x) {
    w.varint(x.vals_.size());
    for (const auto &[d, v] : x.vals_) {
      put(w, d);
      encode(w, v);
    }
    put(w, x.ctx_);
  }
  template <typename T> static bool get(reader &r, mv_register<T> &x) {
    x = {};
    std::size_t n;
    if (!r.count(n, 3))
      return false;
    for (std::size_t i = 0; i < n; ++i) {
      dot d;
      T v{};
      if (!get(r, d) || (!x.vals_.empty() && !(x.vals_.rbegin()->first < d)) || !decode(r, v))
        return r.fail();
      x.vals_.emplace(d, std::move(v));
    }
    if (!get(r, x.ctx_))
      return false;
    for (const auto &[d, v] : x.vals_)
      if (!x.ctx_.contains(d))
        return r.fail();
    return true;
  }

  template <typename K, typename V> static void put(writer &w, const aw_map<K, V> &m) {
    w.varint(m.m_.size());
    for (const auto &[k, vals] : m.m_) {
      encode(w, k);
      w.varint(vals.size());
      for (const auto &[d, v] : vals) {
        put(w, d);
        encode(w, v);
      }
    }
    put(w, m.ctx_);
  }
  template <typename K, typename V> static bool get(reader &r, aw_map<K, V> &m) {
    m = {};
    std::size_t n;
    if (!r.count(n, 3))
      return false;
    std::vector<dot> all;
    for (std::size_t i = 0; i < n; ++i) {
      K k{};
      std::size_t nv;
      if (!decode(r, k) || (!m.m_.empty() && !(m.m_.rbegin()->first < k)) || !r.count(nv, 3) || nv == 0)
        return r.fail();
      std::map<dot, V> &vals = m.m_[k];
      for (std::size_t j = 0; j < nv; ++j) {
        dot d;
        V v{};
        if (!get(r, d) || (!vals.empty() && !(vals.rbegin()->first < d)) || !decode(r, v))
          return r.fail();
        all.push_back(d);
        vals.emplace(d, std::move(v));
      }
    }
    if (!get(r, m.ctx_))
      return false;
    std::sort(all.begin(), all.end());
    for (std::size_t i = 0; i < all.size(); ++i)
      if (!m.ctx_.contains(all[i]) || (i > 0 && all[i - 1] == all[i]))
        return r.fail();  // a value outside the context, or one write under two keys
    return true;
  }
};

inline void encode(writer &w, const dot &d) { codec_access::put(w, d); }
inline bool decode(reader &r, dot &d) { return codec_access::get(r, d); }
inline void encode(writer &w, const dot_context &c) { codec_access::put(w, c); }
inline bool decode(reader &r, dot_context &c) { return codec_access::get(r, c); }
inline void encode(writer &w, const gcounter &g) { codec_access::put(w, g); }
inline bool decode(reader &r, gcounter &g) { return codec_access::get(r, g); }
inline void encode(writer &w, const pncounter &c) { codec_access::put(w, c); }
inline bool decode(reader &r, pncounter &c) { return codec_access::get(r, c); }
template <typename T> void encode(writer &w, const lww_register<T> &x) { codec_access::put(w, x); }
template <typename T> bool decode(reader &r, lww_register<T> &x) { return codec_access::get(r, x); }
template <typename T> void encode(writer &w, const mv_register<T> &x) { codec_access::put(w, x); }
template <typename T> bool decode(reader &r, mv_register<T> &x) { return codec_access::get(r, x); }
template <typename K, typename V> void encode(writer &w, const aw_map<K, V> &m) { codec_access::put(w, m); }
template <typename K, typename V> bool decode(reader &r, aw_map<K, V> &m) { return codec_access::get(r, m); }

// A whole value: its bytes, and back (nullopt unless the bytes are exactly
// one well-formed value).
template <typename T> std::vector<std::uint8_t> to_bytes(const T &x) {
  std::vector<std::uint8_t> out;
  writer w(out);
  encode(w, x);
  return out;
}
template <typename T> std::optional<T> from_bytes(std::span<const std::uint8_t> in) {
  reader r(in);
  T x{};
  if (!decode(r, x) || !r.done())
    return std::nullopt;
  return x;
}

}  // namespace hde::crdt
