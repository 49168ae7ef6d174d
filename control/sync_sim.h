// sync_sim.h — a simulated network and clock for sync_node (sync.h), for
// tests and benchmarks: n nodes at "10.0.0.<i>:7000", each datagram lost,
// duplicated or delayed (hence reordered) at random, links cut in
// partitions. Virtual time in ms; every node polls when it is due.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "sync.h"

namespace hde::sync {

struct sim_link {
  double loss = 0, dup = 0;
  std::uint64_t delay_min_ms = 1, delay_max_ms = 20;
};

class sim_net {
public:
  sim_net(std::size_t n, sim_link link, std::uint32_t interval_ms, std::vector<std::uint8_t> key, std::uint64_t seed,
          unsigned fanout = 3, bool full_mesh = true, std::uint32_t gc_horizon_rounds = 600)
      : link_(link), rng_(seed), gc_horizon_rounds_(gc_horizon_rounds) {
    for (std::size_t i = 0; i < n; ++i)
      add_node(interval_ms, key, fanout, seed);
    if (full_mesh)
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j)
          if (i != j)
            nodes_[i]->add_peer(addr(j));
  }
  static std::string addr(std::size_t i) { return "10.0.0." + std::to_string(i + 1) + ":7000"; }
  std::size_t add_node(std::uint32_t interval_ms, const std::vector<std::uint8_t> &key, unsigned fanout,
                       std::uint64_t seed) {
    const std::size_t i = nodes_.size();
    nodes_.push_back(nullptr);
    restart(i, interval_ms, key, fanout, seed, 1000);
    return i;
  }
  // A new node (or a restart: a new epoch, state lost) at index i.
  void restart(std::size_t i, std::uint32_t interval_ms, const std::vector<std::uint8_t> &key, unsigned fanout,
               std::uint64_t seed, std::uint64_t epoch) {
    sync_config c;
    c.node = static_cast<replica_id>(i + 1);
    c.epoch = epoch + now_;
    c.self.sync_addr = addr(i);
    c.key = key;
    c.interval_ms = interval_ms;
    c.fanout = fanout;
    c.seed = seed + i;
    c.gc_horizon_rounds = gc_horizon_rounds_;
    nodes_[i] = std::make_unique<sync_node>(c, [this, i](const std::string &to, std::span<const std::uint8_t> d) {
      send(i, to, d);
    });
  }
  sync_node &node(std::size_t i) { return *nodes_[i]; }
  std::size_t size() const { return nodes_.size(); }
  std::uint64_t now() const { return now_; }
  sim_link &link() { return link_; }
  // Cut (or heal) every link between the two sides.
  void partition(const std::set<std::size_t> &side) { side_ = side; }
  void heal() { side_.clear(); }
  void isolate(std::size_t i, bool on) {
    if (on)
      down_.insert(i);
    else
      down_.erase(i);
  }
  std::uint64_t bytes() const { return bytes_; }
  std::uint64_t datagrams() const { return datagrams_; }

  // Advance virtual time by ms, in steps of step_ms.
  void run(std::uint64_t ms, std::uint64_t step_ms = 5) {
    const std::uint64_t end = now_ + ms;
    while (now_ < end) {
      now_ += step_ms;
      while (!q_.empty() && q_.top().at <= now_) {
        packet p = q_.top();
        q_.pop();
        const auto it = index_.find(p.to);
        if (it != index_.end() && !down_.count(it->second))
          nodes_[it->second]->receive(addr(p.from), p.bytes, now_);
      }
      for (std::size_t i = 0; i < nodes_.size(); ++i)
        if (!down_.count(i))
          nodes_[i]->poll(now_);
    }
  }

private:
  struct packet {
    std::uint64_t at = 0, seq = 0;
    std::size_t from = 0;
    std::string to;
    std::vector<std::uint8_t> bytes;
    bool operator>(const packet &o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };
  void send(std::size_t from, const std::string &to, std::span<const std::uint8_t> d) {
    if (index_.empty())
      for (std::size_t i = 0; i < nodes_.size(); ++i)
        index_[addr(i)] = i;
    if (index_.size() != nodes_.size())
      for (std::size_t i = 0; i < nodes_.size(); ++i)
        index_[addr(i)] = i;
    const auto it = index_.find(to);
    ++datagrams_;
    bytes_ += d.size();
    if (it == index_.end() || down_.count(from) ||
        (!side_.empty() && side_.count(from) != side_.count(it->second)))
      return;
    std::uniform_real_distribution<double> u(0, 1);
    if (u(rng_) < link_.loss)
      return;
    const int copies = u(rng_) < link_.dup ? 2 : 1;
    for (int c = 0; c < copies; ++c) {
      std::uniform_int_distribution<std::uint64_t> delay(link_.delay_min_ms, link_.delay_max_ms);
      q_.push({now_ + delay(rng_), ++seq_, from, to, std::vector<std::uint8_t>(d.begin(), d.end())});
    }
  }
  sim_link link_;
  std::mt19937_64 rng_;
  std::vector<std::unique_ptr<sync_node>> nodes_;
  std::map<std::string, std::size_t> index_;
  std::priority_queue<packet, std::vector<packet>, std::greater<>> q_;
  std::set<std::size_t> side_, down_;
  std::uint32_t gc_horizon_rounds_;
  std::uint64_t now_ = 0, seq_ = 0, bytes_ = 0, datagrams_ = 0;
};

// A fleet state without the heartbeats (which move every round).
inline fleet_state without_heartbeats(fleet_state s) {
  for (auto &[n, m] : s.members.m)
    m.hb = {};
  return s;
}

}  // namespace hde::sync
