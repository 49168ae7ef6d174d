// causal.h — the causal bookkeeping of HDE's state-based CRDTs (delta-state,
// Almeida, Shoker and Baquero, "Delta State Replicated Data Types", 2018):
//
//   dot            one event: (replica, counter), counters from 1 per replica;
//   dot_context    the events a replica has seen: a compact version vector
//                  (every dot up to vv[r] for each replica r) plus a cloud of
//                  dots beyond it, folded into the vector once contiguous.
//
// Pure values: no clocks, no I/O. Joins are commutative, associative and
// idempotent (tests/unit/crdt_test.cpp checks these laws with RapidCheck).
// Replica ids are the gateways' node ids (u32); 0 is not a replica.
#pragma once

#include <algorithm>
#include <compare>
#include <cstdint>
#include <map>
#include <set>

namespace hde::crdt {

using replica_id = std::uint32_t;

// lib/crdt/codec.h reads and builds the private parts of every type.
struct codec_access;

struct dot {
  replica_id replica = 0;
  std::uint64_t counter = 0;
  friend auto operator<=>(const dot &, const dot &) = default;
};

class dot_context {
public:
  // Has this event been seen?
  bool contains(const dot &d) const {
    const auto it = vv_.find(d.replica);
    return (it != vv_.end() && d.counter <= it->second) || cloud_.count(d) != 0;
  }
  // A new event of replica r (the next counter after everything seen of r).
  dot next(replica_id r) {
    const dot d{r, ++vv_[r]};
    return d;
  }
  // Record an event seen elsewhere.
  void insert(const dot &d) {
    if (contains(d))
      return;
    cloud_.insert(d);
    compact();
  }
  void join(const dot_context &o) {
    for (const auto &[r, c] : o.vv_) {
      std::uint64_t &mine = vv_[r];
      mine = std::max(mine, c);
    }
    for (const dot &d : o.cloud_)
      if (!contains(d))
        cloud_.insert(d);
    compact();
  }
  // Highest contiguous counter seen of replica r (0: none).
  std::uint64_t seen(replica_id r) const {
    const auto it = vv_.find(r);
    return it == vv_.end() ? 0 : it->second;
  }
  const std::map<replica_id, std::uint64_t> &vector() const { return vv_; }
  const std::set<dot> &cloud() const { return cloud_; }
  friend bool operator==(const dot_context &, const dot_context &) = default;

private:
  friend struct codec_access;
  // Fold cloud dots that extend the vector; drop those it already covers.
  void compact() {
    for (auto it = cloud_.begin(); it != cloud_.end();) {
      std::uint64_t &c = vv_[it->replica];
      if (it->counter == c + 1) {
        c = it->counter;
        it = cloud_.erase(it);
      } else if (it->counter <= c) {
        it = cloud_.erase(it);
      } else {
        ++it;  // a gap before it: stays in the cloud
      }
    }
    std::erase_if(vv_, [](const auto &e) { return e.second == 0; });
  }
  std::map<replica_id, std::uint64_t> vv_;
  std::set<dot> cloud_;
};

}  // namespace hde::crdt
