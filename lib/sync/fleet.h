// fleet.h — the state a fleet of gateways shares, as one delta-state CRDT
// (lib/crdt), with no clocks of its own, no DPDK and no sockets:
//
//   members     node id -> what the node says of itself (addresses, epoch:
//               an LWW register only that node writes), its SWIM status
//               (alive / suspect / dead, ordered by epoch, incarnation,
//               status: a max register, so a suspicion at incarnation i is
//               refuted by alive at i + 1, and a restart's new epoch
//               overrides everything of the old one) and its heartbeat.
//               A grow-only map: a node id stays (one small entry).
//   migrations  VM -> who migrates it (a multi-value register of claims:
//               two gateways starting the same VM at once leave both claims,
//               a visible conflict resolved the same way everywhere — the
//               lowest node id keeps it, the other fails its claim and says
//               so) and the progress each claimant reports (an LWW register
//               per writer: only that gateway writes it). An add-wins
//               observed-remove map: removed VMs leave only their dots in
//               the causal context (a version vector), no per-key tombstone.
//   selector    "class/arm" -> samples, pages, wire bytes, cycles, as
//               grow-only counters per gateway: merging never counts a
//               sample twice, so a new gateway starts warm.
//
// Every mutator applies its change and returns the delta to ship. A state
// larger than one datagram is cut into fragments (split()), each itself a
// state below the whole, joined on arrival (apply()), plus the causal
// context of the migrations once every fragment is in (finish()).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "crdt/codec.h"
#include "crdt/types.h"

namespace hde::sync {

using crdt::replica_id;

// A grow-only map of lattices: join is pointwise.
template <typename K, typename V> struct gmap {
  std::map<K, V> m;
  void join(const gmap &o) {
    for (const auto &[k, v] : o.m)
      m[k].join(v);
  }
  friend bool operator==(const gmap &, const gmap &) = default;
};

enum class status_kind : std::uint8_t { alive = 0, suspect = 1, dead = 2 };
const char *to_string(status_kind s);

// SWIM status as a lattice: (epoch, incarnation, status), join = max.
struct status {
  std::uint64_t epoch = 0, incarnation = 0;
  status_kind kind = status_kind::alive;
  void join(const status &o) {
    if (*this < o)
      *this = o;
  }
  friend auto operator<=>(const status &, const status &) = default;
};

struct heartbeat {
  std::uint64_t epoch = 0, beat = 0;
  void join(const heartbeat &o) {
    if (*this < o)
      *this = o;
  }
  friend auto operator<=>(const heartbeat &, const heartbeat &) = default;
};

struct node_info {
  std::string sync_addr, ctl_addr, data_addr;  // "IP:PORT"; empty when not known
  std::uint64_t epoch = 0;                     // the node's start (ms since 1970): a restart is a new epoch
  friend auto operator<=>(const node_info &, const node_info &) = default;
};

struct member {
  crdt::lww_register<node_info> info;
  status st;
  heartbeat hb;
  void join(const member &o) {
    info.join(o.info);
    st.join(o.st);
    hb.join(o.hb);
  }
  friend bool operator==(const member &, const member &) = default;
};

enum class mig_state : std::uint8_t { planned = 0, bulk, dirty, switchover, done, failed };
const char *to_string(mig_state s);

struct claim {
  replica_id source = 0;     // the gateway that migrates the VM out
  std::string destination;   // the destination gateway ("IP:PORT" or node name)
  std::uint64_t epoch = 0;   // the source's epoch when it claimed
  friend auto operator<=>(const claim &, const claim &) = default;
};

struct progress {
  mig_state state = mig_state::planned;
  std::uint32_t round = 0;
  std::uint64_t pages = 0, wire_bytes = 0;
  std::uint64_t start_ms = 0;  // wall clock, ms since 1970
  std::string reason;          // failed: why (at most kMaxReason bytes)
  friend auto operator<=>(const progress &, const progress &) = default;
};

struct migration {
  crdt::mv_register<claim> owner;
  gmap<replica_id, crdt::lww_register<progress>> reports;  // per writer
  void join(const migration &o) {
    owner.join(o.owner);
    reports.join(o.reports);
  }
  friend bool operator==(const migration &, const migration &) = default;
};

struct selector_stat {
  crdt::gcounter samples, pages, wire_bytes, cycles;
  void join(const selector_stat &o) {
    samples.join(o.samples);
    pages.join(o.pages);
    wire_bytes.join(o.wire_bytes);
    cycles.join(o.cycles);
  }
  friend bool operator==(const selector_stat &, const selector_stat &) = default;
};

struct fleet_state {
  gmap<replica_id, member> members;
  crdt::aw_map<std::string, migration> migrations;
  gmap<std::string, selector_stat> selector;
  void join(const fleet_state &o) {
    members.join(o.members);
    migrations.join(o.migrations);
    selector.join(o.selector);
  }
  bool empty() const {
    return members.m.empty() && migrations.size() == 0 && migrations.context().vector().empty() &&
           migrations.context().cloud().empty() && selector.m.empty();
  }
  friend bool operator==(const fleet_state &, const fleet_state &) = default;
};

// A piece of a state: members and selector entries, and the migrations of
// the keys in (lo, hi] with the whole causal context (in_range false: none).
struct fragment {
  fleet_state part;
  bool in_range = false;
  std::optional<std::string> lo, hi;
};

inline constexpr std::size_t kMaxString = 200;  // addresses, VM names, destinations, reasons

// Binary forms (crdt/codec.h); decode refuses malformed input.
void encode(crdt::writer &w, const fleet_state &s);
bool decode(crdt::reader &r, fleet_state &s);
void encode(crdt::writer &w, const fragment &f);
bool decode(crdt::reader &r, fragment &f);

// Cut s into fragments of at most max_bytes encoded each (an entry that
// alone is larger still gets a fragment of its own); their join, with
// finish(), is s.
std::vector<fragment> split(const fleet_state &s, std::size_t max_bytes);
void apply(fleet_state &s, const fragment &f);
void finish(fleet_state &s, const crdt::dot_context &migrations_context);

// Rows for people (show peers, show fleet, the selector's warm start).
struct member_row {
  replica_id node = 0;
  node_info info;
  status st;
  heartbeat hb;
};
struct migration_row {
  std::string vm;
  std::vector<claim> claims;  // distinct claims; more than one: a conflict
  claim owner;                // the claim every replica picks (lowest node id)
  std::optional<progress> report;  // the owner's progress
  bool conflict() const { return claims.size() > 1; }
};
struct selector_row {
  std::string cls, arm;
  std::uint64_t samples = 0, pages = 0, wire_bytes = 0, cycles = 0;
};

// One gateway's replica of the fleet state and its mutators. Times are
// passed in (ms), so tests drive it with a simulated clock.
class fleet {
public:
  fleet(replica_id self, std::uint64_t epoch) : self_(self), epoch_(epoch) {}
  replica_id self() const { return self_; }
  std::uint64_t epoch() const { return epoch_; }
  const fleet_state &state() const { return s_; }
  // Join a delta or a state from elsewhere.
  void join(const fleet_state &d) { s_.join(d); }
  void apply(const fragment &f) { sync::apply(s_, f); }
  void finish(const crdt::dot_context &c) { sync::finish(s_, c); }

  // Membership. announce: this node, its addresses, a new epoch (alive at
  // incarnation 0). beat: the heartbeat, once per sync round.
  fleet_state announce(const node_info &info, std::uint64_t now_ms);
  fleet_state beat();
  // SWIM: a node whose heartbeat has not moved for suspect_ms (local time)
  // is suspected; a suspect still silent dead_ms after its suspicion was
  // seen here is declared dead; this node refutes a suspicion of itself by
  // a higher incarnation. Returns the delta (empty: nothing to say).
  fleet_state detect(std::uint64_t now_ms, std::uint64_t suspect_ms, std::uint64_t dead_ms);
  std::vector<member_row> members() const;
  std::optional<member_row> member_of(replica_id n) const;

  // The migration registry.
  fleet_state start_migration(const std::string &vm, const std::string &destination, std::uint64_t now_ms,
                              std::uint64_t wall_ms);
  fleet_state report(const std::string &vm, const progress &p, std::uint64_t now_ms);
  fleet_state remove_migration(const std::string &vm);
  // Claims this node lost to a concurrent one: its report says failed (and
  // why), and its owner write takes the winner's claim, which ends the
  // conflict everywhere. Returns the VMs it gave up in *lost.
  fleet_state resolve_conflicts(std::uint64_t now_ms, std::vector<std::string> *lost = nullptr);
  std::vector<migration_row> migrations() const;

  // The selector's statistics (class of page, arm = codec).
  // samples: how many segments these totals sum (a gateway adds its own in
  // batches, each sync round).
  fleet_state add_selector_sample(const std::string &cls, const std::string &arm, std::uint64_t pages,
                                  std::uint64_t wire_bytes, std::uint64_t cycles, std::uint64_t samples = 1);
  std::vector<selector_row> selector() const;

private:
  std::uint64_t tick(std::uint64_t now_ms) {  // a writer clock that never goes back
    clock_ = std::max(clock_ + 1, now_ms);
    return clock_;
  }
  replica_id self_;
  std::uint64_t epoch_;
  std::uint64_t clock_ = 0;
  fleet_state s_;
  struct seen {
    heartbeat hb;
    std::uint64_t moved_ms = 0;      // local time the heartbeat last moved
    std::uint64_t suspected_ms = 0;  // local time a suspicion of it was first seen (0: none)
    status st;
  };
  std::map<replica_id, seen> seen_;
};

}  // namespace hde::sync
