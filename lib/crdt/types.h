// types.h — the CRDTs HDE's gateways share (delta-state: every mutator
// returns the delta it made, which is itself a state to join anywhere):
//
//   gcounter        grow-only counter: per-replica contributions, join = max.
//                   Selector statistics (samples, bytes, cycles) are sums of
//                   gcounters, so merging two gateways' views never counts a
//                   sample twice.
//   pncounter       two gcounters, increments and decrements.
//   lww_register    last writer wins, by (timestamp, replica). Only where a
//                   value has one writer, or where losing a concurrent write
//                   is the intended outcome: a gateway's own address and
//                   epoch (only that gateway writes them), a migration's
//                   progress figures (written by its source gateway alone).
//                   Concurrent writes lose all but one silently — so never
//                   for who owns a migration.
//   mv_register     multi-value register: concurrent writes all survive
//                   until a later write that has seen them replaces them.
//                   Who migrates a VM: two gateways starting the same VM at
//                   once leave two values, which every replica sees as a
//                   conflict (and resolves the same way, see resolve()).
//   aw_map          add-wins observed-remove map of keys to CRDT values: a
//                   remove deletes only the additions it has seen, so an
//                   update concurrent with a remove keeps the key. Values
//                   are joined with their own join.
//
// Every join is commutative, associative and idempotent; the property tests
// in tests/unit/crdt_test.cpp check it, and convergence under loss,
// duplication and reordering of deltas.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "crdt/causal.h"

namespace hde::crdt {

class gcounter {
public:
  // Add n (>= 0) as replica r; returns the delta.
  gcounter add(replica_id r, std::uint64_t n) {
    std::uint64_t &v = c_[r];
    v += n;
    gcounter d;
    d.c_[r] = v;
    return d;
  }
  std::uint64_t value() const {
    std::uint64_t s = 0;
    for (const auto &[r, v] : c_)
      s += v;
    return s;
  }
  std::uint64_t of(replica_id r) const {
    const auto it = c_.find(r);
    return it == c_.end() ? 0 : it->second;
  }
  void join(const gcounter &o) {
    for (const auto &[r, v] : o.c_) {
      std::uint64_t &m = c_[r];
      m = std::max(m, v);
    }
  }
  const std::map<replica_id, std::uint64_t> &entries() const { return c_; }
  friend bool operator==(const gcounter &, const gcounter &) = default;

private:
  friend struct codec_access;
  std::map<replica_id, std::uint64_t> c_;
};

class pncounter {
public:
  pncounter add(replica_id r, std::int64_t n) {
    pncounter d;
    if (n >= 0)
      d.p_ = p_.add(r, static_cast<std::uint64_t>(n));
    else
      d.n_ = n_.add(r, static_cast<std::uint64_t>(-n));
    return d;
  }
  std::int64_t value() const { return static_cast<std::int64_t>(p_.value() - n_.value()); }
  void join(const pncounter &o) {
    p_.join(o.p_);
    n_.join(o.n_);
  }
  friend bool operator==(const pncounter &, const pncounter &) = default;

private:
  friend struct codec_access;
  gcounter p_, n_;
};

template <typename T> class lww_register {
public:
  struct stamp {
    std::uint64_t time = 0;  // the writer's clock (ms); ties broken by replica
    replica_id replica = 0;
    friend auto operator<=>(const stamp &, const stamp &) = default;
  };
  lww_register set(replica_id r, std::uint64_t time, T v) {
    const stamp s{time, r};
    if (!val_ || at_ < s) {
      at_ = s;
      val_ = std::move(v);
    }
    return *this;
  }
  const std::optional<T> &get() const { return val_; }
  stamp when() const { return at_; }
  void join(const lww_register &o) {
    if (o.val_ && (!val_ || at_ < o.at_ || (at_ == o.at_ && *val_ < *o.val_))) {
      at_ = o.at_;
      val_ = o.val_;
    }
  }
  friend bool operator==(const lww_register &, const lww_register &) = default;

private:
  friend struct codec_access;
  stamp at_;
  std::optional<T> val_;
};

// A multi-value register over a causal context of its own.
template <typename T> class mv_register {
public:
  // Write v as replica r, replacing every value this replica has seen.
  mv_register set(replica_id r, T v) {
    mv_register d;
    for (const auto &[dt, x] : vals_)
      d.ctx_.insert(dt);  // removed: the delta's context says they are seen
    vals_.clear();
    const dot n = ctx_.next(r);
    vals_[n] = v;
    d.vals_[n] = std::move(v);
    d.ctx_.insert(n);
    return d;
  }
  // The values written concurrently (one when there is no conflict),
  // ordered by their dots.
  std::vector<T> values() const {
    std::vector<T> v;
    for (const auto &[d, x] : vals_)
      v.push_back(x);
    return v;
  }
  bool conflict() const { return vals_.size() > 1; }
  // The value every replica picks in a conflict: the one written by the
  // lowest replica id (then its lowest counter). Deterministic, and visible:
  // callers report conflict() beside it.
  std::optional<T> resolve() const {
    if (vals_.empty())
      return std::nullopt;
    return vals_.begin()->second;
  }
  // The writer of resolve()'s value.
  std::optional<dot> resolved_dot() const {
    if (vals_.empty())
      return std::nullopt;
    return vals_.begin()->first;
  }
  void join(const mv_register &o) {
    std::map<dot, T> out;
    for (const auto &[d, x] : vals_)
      if (o.vals_.count(d) != 0 || !o.ctx_.contains(d))
        out.emplace(d, x);
    for (const auto &[d, x] : o.vals_)
      if (vals_.count(d) == 0 && !ctx_.contains(d))
        out.emplace(d, x);
    vals_ = std::move(out);
    ctx_.join(o.ctx_);
  }
  const dot_context &context() const { return ctx_; }
  friend bool operator==(const mv_register &, const mv_register &) = default;

private:
  friend struct codec_access;
  std::map<dot, T> vals_;
  dot_context ctx_;
};

// Add-wins observed-remove map: K -> V, V a CRDT with join(const V &) and
// operator==. Each key holds a dot kernel: values tagged by the dot of the
// write that made them, immutable once written. update() folds the values
// the writer sees into one, applies f, and stores the result under a new
// dot, superseding the dots it folded; remove() supersedes them all. A key
// is present while a dot of it survives; its value is the join of its
// surviving values. An update concurrent with a remove keeps the key (add
// wins) with what the updater wrote. Because values ride on dots, the join
// is a dot-kernel join, so it is commutative, associative and idempotent
// whatever V is.
template <typename K, typename V> class aw_map {
public:
  // f(V &value) is applied to the key's current value (default-constructed
  // when absent). Returns the delta.
  template <typename F> aw_map update(replica_id r, const K &k, F &&f) {
    aw_map d;
    V cur{};
    auto it = m_.find(k);
    if (it != m_.end()) {
      for (const auto &[dt, x] : it->second) {
        cur.join(x);
        d.ctx_.insert(dt);  // superseded by the new write
      }
      it->second.clear();
    } else {
      it = m_.emplace(k, std::map<dot, V>{}).first;
    }
    f(cur);
    const dot n = ctx_.next(r);
    it->second.emplace(n, cur);
    d.m_[k].emplace(n, std::move(cur));
    d.ctx_.insert(n);
    return d;
  }
  aw_map remove(const K &k) {
    aw_map d;
    const auto it = m_.find(k);
    if (it == m_.end())
      return d;
    for (const auto &[dt, x] : it->second)
      d.ctx_.insert(dt);
    m_.erase(it);
    return d;
  }
  bool contains(const K &k) const { return m_.count(k) != 0; }
  // The key's value: the join of its surviving writes.
  std::optional<V> get(const K &k) const {
    const auto it = m_.find(k);
    if (it == m_.end())
      return std::nullopt;
    V v{};
    for (const auto &[dt, x] : it->second)
      v.join(x);
    return v;
  }
  // Writes that survive concurrently for k (more than one: concurrent updates).
  std::size_t writes(const K &k) const {
    const auto it = m_.find(k);
    return it == m_.end() ? 0 : it->second.size();
  }
  std::size_t size() const { return m_.size(); }
  template <typename F> void for_each(F &&f) const {
    for (const auto &[k, w] : m_) {
      V v{};
      for (const auto &[dt, x] : w)
        v.join(x);
      f(k, v);
    }
  }
  void join(const aw_map &o) {
    for (auto it = m_.begin(); it != m_.end();) {
      const auto oi = o.m_.find(it->first);
      std::map<dot, V> &mine = it->second;
      // Mine: kept if the other has it too, or has not seen it.
      std::erase_if(mine, [&](const auto &e) {
        return !(oi != o.m_.end() && oi->second.count(e.first) != 0) && o.ctx_.contains(e.first);
      });
      it = mine.empty() && oi == o.m_.end() ? m_.erase(it) : std::next(it);
    }
    for (const auto &[k, theirs] : o.m_) {
      std::map<dot, V> add;
      for (const auto &[dt, x] : theirs)
        if (!ctx_.contains(dt))
          add.emplace(dt, x);
      auto it = m_.find(k);
      if (it == m_.end()) {
        if (!add.empty())
          m_.emplace(k, std::move(add));
        continue;
      }
      it->second.insert(add.begin(), add.end());
      if (it->second.empty())
        m_.erase(it);
    }
    ctx_.join(o.ctx_);
  }
  // Join a fragment of another replica's state: every entry it has for the
  // keys k with lo < k <= hi (nullopt: unbounded), and its whole causal
  // context. Keys outside the range are left alone; only the dots of the
  // fragment's entries join this context — the rest of the other's context
  // joins with join_context() once every fragment of it is in (before that
  // it would hide entries of fragments still to come). Each step is a join
  // with a state the other replica has (its entries and removals in the
  // range), so it is as safe as join().
  void join_range(const aw_map &o, const std::optional<K> &lo, const std::optional<K> &hi) {
    auto in = [&](const K &k) { return (!lo || *lo < k) && (!hi || !(*hi < k)); };
    for (auto it = lo ? m_.upper_bound(*lo) : m_.begin(); it != m_.end() && in(it->first);) {
      const auto oi = o.m_.find(it->first);
      std::erase_if(it->second, [&](const auto &e) {
        return !(oi != o.m_.end() && oi->second.count(e.first) != 0) && o.ctx_.contains(e.first);
      });
      it = it->second.empty() ? m_.erase(it) : std::next(it);
    }
    for (const auto &[k, theirs] : o.m_) {
      if (!in(k))
        continue;
      for (const auto &[dt, x] : theirs)
        if (!ctx_.contains(dt)) {
          m_[k].emplace(dt, x);
          ctx_.insert(dt);
        }
    }
  }
  void join_context(const dot_context &c) { ctx_.join(c); }
  // The fragment join_range() takes: the entries of the keys in (lo, hi]
  // and the whole causal context.
  aw_map range(const std::optional<K> &lo, const std::optional<K> &hi) const {
    aw_map f;
    f.ctx_ = ctx_;
    for (auto it = lo ? m_.upper_bound(*lo) : m_.begin(); it != m_.end() && (!hi || !(*hi < it->first)); ++it)
      f.m_.insert(*it);
    return f;
  }
  // The keys, in order.
  std::vector<K> keys() const {
    std::vector<K> v;
    for (const auto &e : m_)
      v.push_back(e.first);
    return v;
  }
  const dot_context &context() const { return ctx_; }
  friend bool operator==(const aw_map &, const aw_map &) = default;

private:
  friend struct codec_access;
  std::map<K, std::map<dot, V>> m_;
  dot_context ctx_;
};

}  // namespace hde::crdt
