// sync.h — delta-state anti-entropy of the fleet state (lib/sync/fleet.h)
// between gateways, over datagrams (docs/sync.md has the wire format).
//
// Every change a gateway makes is a delta numbered in the stream of its
// origin (node id, epoch). A node keeps the deltas it made or received in a
// log, and a digest of what it holds: for each origin, the highest number up
// to which it has every delta. Each round it sends its digest to a few
// peers; a peer answers with the deltas the digest lacks, or, when its log
// no longer holds them (a new gateway, a long partition), with its whole
// state cut into fragments, resent until the receiver acknowledges every
// one. New deltas are also pushed at once to a few peers. A delta every
// current peer's digest covers is dropped from the log.
//
// Every datagram is at most 1 400 bytes and authenticated with
// HMAC-SHA-256 under a pre-shared key; a per-sender epoch and counter drop
// replays. A datagram that fails any check is counted by reason and changes
// nothing (it is parsed whole before anything is applied).
//
// Single-threaded and clock-free: the owner calls receive() for each
// datagram and poll(now) when it is due, with a real socket and clock
// (sync_udp.h, the gateway's control thread) or a simulated network and
// clock (tests, perf/sync).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "sync/fleet.h"

namespace hde::sync {

inline constexpr std::size_t kMaxDatagram = 1400;
inline constexpr std::size_t kHeaderBytes = 26;  // magic, version, flags, node, epoch, counter, payload length
inline constexpr std::size_t kTagBytes = 32;     // HMAC-SHA-256

enum class drop : std::uint8_t { auth, replay, truncated, malformed, oversize, blocked, count };
const char *to_string(drop d);

struct sync_config {
  replica_id node = 0;
  std::uint64_t epoch = 0;  // the start of this run (ms since 1970): a restart is a new epoch
  node_info self;           // addresses announced to the fleet
  std::vector<std::uint8_t> key;  // pre-shared, at least 16 bytes
  std::uint32_t interval_ms = 500;
  unsigned fanout = 3;            // peers a round's digest (and a push of a local change) goes to
  unsigned forward_fanout = 1;    // peers a delta new here (from elsewhere) is pushed on to
  std::uint32_t suspect_rounds = 6, dead_rounds = 12;  // SWIM timers, in rounds
  std::size_t log_max_bytes = 4 << 20;
  // A peer not heard for this many rounds no longer holds deltas in the
  // log (it gets the state when it comes back); the log is bounded by
  // log_max_bytes anyway.
  std::uint32_t gc_horizon_rounds = 600;
  std::uint64_t seed = 1;
};

struct origin {
  replica_id node = 0;
  std::uint64_t epoch = 0;
  friend auto operator<=>(const origin &, const origin &) = default;
};

// The numbers of an origin's deltas held: all up to hi, and ranges beyond.
struct seq_set {
  std::uint64_t hi = 0;
  std::map<std::uint64_t, std::uint64_t> extra;  // lo -> hi, disjoint, above hi + 1
  bool covers(std::uint64_t lo, std::uint64_t h) const;
  bool add(std::uint64_t lo, std::uint64_t h);  // true when something was new
  friend bool operator==(const seq_set &, const seq_set &) = default;
};

struct sync_stats {
  std::uint64_t rounds = 0, datagrams_out = 0, datagrams_in = 0, bytes_out = 0, bytes_in = 0;
  std::uint64_t digests_out = 0, digests_in = 0;
  std::uint64_t deltas_out = 0, deltas_in = 0, deltas_new = 0, deltas_duplicate = 0;
  std::uint64_t snapshots_started = 0, snapshots_completed = 0, snapshot_pieces_out = 0, snapshot_pieces_in = 0;
  std::uint64_t log_collected = 0, log_evicted = 0, oversize_deltas = 0;
  std::uint64_t drops[static_cast<std::size_t>(drop::count)] = {};
};

struct peer_row {
  std::string addr;
  bool configured = false;  // from --peers or `peers add` (else learned)
  bool blocked = false;
  replica_id node = 0;      // 0: not heard yet
  std::uint64_t epoch = 0;
  std::uint64_t last_heard_ms = 0;
  std::uint64_t bytes_in = 0, bytes_out = 0, datagrams_in = 0, datagrams_out = 0;
  bool snapshot_out = false;  // a state transfer to it is under way
};

class sync_node {
public:
  using send_fn = std::function<void(const std::string &addr, std::span<const std::uint8_t>)>;
  sync_node(sync_config cfg, send_fn send);

  // The fleet state, and changes to it: f(fleet &) returns the delta.
  const fleet &state() const { return fleet_; }
  template <typename F> void update(F &&f) { publish(f(fleet_)); }

  void receive(const std::string &from, std::span<const std::uint8_t> datagram, std::uint64_t now_ms);
  // Run what is due; returns the ms until something is due again.
  std::uint64_t poll(std::uint64_t now_ms);

  void add_peer(const std::string &addr);
  bool remove_peer(const std::string &addr);
  // Tests: drop every datagram to and from addr (a partition).
  void block(const std::string &addr, bool on);
  std::vector<peer_row> peers() const;
  const sync_stats &stats() const { return st_; }
  std::size_t log_entries() const;
  std::size_t log_bytes() const { return log_bytes_; }
  const std::map<origin, seq_set> &have() const { return have_; }

private:
  struct entry {
    std::uint64_t hi = 0;
    fleet_state delta;
    std::vector<std::uint8_t> bytes;
    std::uint64_t order = 0;  // insertion order, for eviction
  };
  struct outgoing_snapshot {
    std::uint32_t id = 0;
    std::vector<std::vector<std::uint8_t>> pieces;  // encoded SNAP records
    std::vector<bool> acked;
    std::uint64_t started_round = 0;
  };
  struct incoming_snapshot {
    std::uint32_t id = 0, count = 0;
    std::vector<bool> got;
    std::map<origin, std::uint64_t> vv;
    crdt::dot_context ctx;
    bool done = false;
  };
  struct peer {
    std::string addr;
    bool configured = false;
    replica_id node = 0;
    std::uint64_t epoch = 0, last_heard_ms = 0, added_ms = 0;
    std::map<origin, std::uint64_t> known;  // its last digest
    std::map<origin, std::pair<std::uint64_t, std::uint64_t>> sent;  // hi sent to it, when (ms)
    bool have_digest = false;
    outgoing_snapshot out;
    bool snapshot_wanted = false;
    std::uint64_t bytes_in = 0, bytes_out = 0, datagrams_in = 0, datagrams_out = 0;
  };
  struct replay_window {
    std::uint64_t epoch = 0, top = 0, bits = 0;
  };

  void publish(const fleet_state &delta);
  void store(const origin &o, std::uint64_t lo, std::uint64_t hi, const fleet_state &d, bool local);
  void push(std::vector<std::pair<origin, std::uint64_t>> &entries, unsigned fanout, std::uint64_t now_ms,
            replica_id skip_a = 0, replica_id skip_b = 0);
  peer &peer_at(const std::string &addr, bool configured);
  void round(std::uint64_t now_ms);
  void discover();
  void collect();
  // What p lacks that the log holds; false when the log cannot cover it.
  bool lacking(peer &p, std::vector<std::vector<std::uint8_t>> &records, std::uint64_t now_ms);
  void start_snapshot(peer &p);
  void send_records(peer &p, const std::vector<std::vector<std::uint8_t>> &records);
  void seal_and_send(peer &p, std::span<const std::uint8_t> payload);
  std::vector<std::vector<std::uint8_t>> digest_records(const peer &p) const;
  // Up to n peers at random, not blocked, not the nodes skip_a or skip_b.
  std::vector<peer *> pick(std::size_t n, replica_id skip_a = 0, replica_id skip_b = 0);

  sync_config cfg_;
  send_fn send_;
  fleet fleet_;
  std::uint64_t seq_ = 0;        // this node's deltas, in its stream (node, epoch)
  std::uint64_t counter_ = 0;    // datagrams sent (replay protection)
  std::map<origin, seq_set> have_;
  std::map<origin, std::map<std::uint64_t, entry>> log_;  // lo -> entry
  std::size_t log_bytes_ = 0;
  std::uint64_t order_ = 0;
  std::vector<std::pair<origin, std::uint64_t>> fresh_;      // local entries to push at once
  // Received entries to push on, by (origin node, sender node): neither
  // of them gets the push.
  std::map<std::pair<replica_id, replica_id>, std::vector<std::pair<origin, std::uint64_t>>> forward_;
  std::map<std::string, peer> peers_;
  std::set<std::string> removed_;  // not to be learned again
  std::set<std::string> blocked_;  // block(): nothing to or from them
  std::map<replica_id, replay_window> replay_;
  std::map<replica_id, incoming_snapshot> rx_snap_;
  std::uint64_t next_round_ms_ = 0, now_ms_ = 0;
  std::uint64_t rounds_ = 0;
  std::mt19937_64 rng_;
  sync_stats st_;
};

// Datagram framing, public for the fuzzer and the tests: seal a payload
// (header, payload, tag) and open one (checks in order: size, tag, header).
std::vector<std::uint8_t> seal(std::span<const std::uint8_t> key, replica_id node, std::uint64_t epoch,
                               std::uint64_t counter, std::span<const std::uint8_t> payload);
struct opened {
  replica_id node = 0;
  std::uint64_t epoch = 0, counter = 0;
  std::span<const std::uint8_t> payload;
};
// Returns drop::count when the datagram is authentic and well framed.
drop open(std::span<const std::uint8_t> key, std::span<const std::uint8_t> datagram, opened &out);
// Parse a payload's records without applying them: true when well formed.
bool parse_payload(std::span<const std::uint8_t> payload);

}  // namespace hde::sync
