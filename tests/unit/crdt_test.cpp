// crdt_test.cpp — property tests (RapidCheck) of lib/crdt: the join laws
// (commutative, associative, idempotent) for every type on states reached by
// random histories, convergence of 3-5 replicas exchanging deltas over links
// that lose, duplicate and reorder them and are partitioned for a while,
// then healed; and add-wins: no update observed by no remove is lost.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <deque>
#include <string>
#include <vector>

#include "crdt/types.h"

using namespace hde::crdt;

namespace {

// A value with a join, for maps: a migration's figures as a site would
// keep them (grow-only counters and a progress register).
struct figures {
  gcounter pages;
  lww_register<std::uint32_t> round;
  void join(const figures &o) {
    pages.join(o.pages);
    round.join(o.round);
  }
  friend bool operator==(const figures &, const figures &) = default;
};

using registry = aw_map<std::uint32_t, figures>;

// One replica: the states of every type, mutated together.
struct replica {
  replica_id id;
  gcounter g;
  pncounter pn;
  lww_register<std::uint32_t> lww;
  mv_register<std::uint32_t> mv;
  registry map;
  std::uint64_t clock = 0;
  void join(const replica &o) {
    g.join(o.g);
    pn.join(o.pn);
    lww.join(o.lww);
    mv.join(o.mv);
    map.join(o.map);
  }
  bool same_state(const replica &o) const {
    return g == o.g && pn == o.pn && lww == o.lww && mv == o.mv && map == o.map;
  }
};

struct delta {
  gcounter g;
  pncounter pn;
  lww_register<std::uint32_t> lww;
  mv_register<std::uint32_t> mv;
  registry map;
};

// Apply a random operation to r; return its delta.
delta random_op(replica &r) {
  delta d;
  const int kind = *rc::gen::inRange(0, 6);
  const auto key = *rc::gen::inRange<std::uint32_t>(0, 4);
  const auto n = *rc::gen::inRange<std::uint32_t>(1, 100);
  ++r.clock;
  switch (kind) {
  case 0: d.g = r.g.add(r.id, n); break;
  case 1: d.pn = r.pn.add(r.id, *rc::gen::element(1, -1) * static_cast<std::int64_t>(n)); break;
  case 2: d.lww = r.lww.set(r.id, r.clock + *rc::gen::inRange<std::uint64_t>(0, 3), n); break;
  case 3: d.mv = r.mv.set(r.id, n); break;
  case 4:
    d.map = r.map.update(r.id, key, [&](figures &f) {
      f.pages.add(r.id, n);
      f.round.set(r.id, r.clock, n % 7);
    });
    break;
  default: d.map = r.map.remove(key); break;
  }
  return d;
}

void apply(replica &r, const delta &d) {
  r.g.join(d.g);
  r.pn.join(d.pn);
  r.lww.join(d.lww);
  r.mv.join(d.mv);
  r.map.join(d.map);
}

// n replicas after a random history: random operations, and deltas handed
// to random other replicas now and then (so states have partial, causally
// mixed views).
std::vector<replica> random_history(int n) {
  std::vector<replica> rs;
  for (int i = 0; i < n; ++i)
    rs.push_back(replica{static_cast<replica_id>(i + 1), {}, {}, {}, {}, {}, 0});
  const int steps = *rc::gen::inRange(1, 40);
  for (int s = 0; s < steps; ++s) {
    const int i = *rc::gen::inRange(0, n);
    const delta d = random_op(rs[static_cast<std::size_t>(i)]);
    const int j = *rc::gen::inRange(0, n);
    if (*rc::gen::arbitrary<bool>())
      apply(rs[static_cast<std::size_t>(j)], d);
    if (*rc::gen::inRange(0, 5) == 0) {  // a full-state sync between two
      const int k = *rc::gen::inRange(0, n);
      rs[static_cast<std::size_t>(j)].join(rs[static_cast<std::size_t>(k)]);
    }
  }
  return rs;
}

}  // namespace

RC_GTEST_PROP(CrdtLaws, JoinIsCommutativeAssociativeIdempotent, ()) {
  auto rs = random_history(3);
  const replica &a = rs[0], &b = rs[1], &c = rs[2];
  replica ab = a, ba = b;
  ab.join(b);
  ba.join(a);
  RC_ASSERT(ab.same_state(ba));
  replica ab_c = ab, bc = b;
  ab_c.join(c);
  bc.join(c);
  replica a_bc = a;
  a_bc.join(bc);
  RC_ASSERT(ab_c.same_state(a_bc));
  replica aa = a;
  aa.join(a);
  RC_ASSERT(aa.same_state(a));
  // A delta joined twice changes nothing the second time.
  replica x = a;
  const delta d = random_op(x);
  replica y = b;
  apply(y, d);
  replica y2 = y;
  apply(y2, d);
  RC_ASSERT(y2.same_state(y));
}

// Replicas exchange deltas over links that lose, duplicate and reorder them,
// with a partition for part of the run; then the partition heals and a round
// of full-state anti-entropy runs: every replica ends with the same state,
// and the counters hold every increment exactly once.
RC_GTEST_PROP(CrdtConvergence, DeltasOverLossyLinksThenAntiEntropy, ()) {
  const int n = *rc::gen::inRange(3, 6);
  std::vector<replica> rs;
  for (int i = 0; i < n; ++i)
    rs.push_back(replica{static_cast<replica_id>(i + 1), {}, {}, {}, {}, {}, 0});
  std::vector<std::deque<delta>> links(static_cast<std::size_t>(n * n));
  const int cut = *rc::gen::inRange(0, n);  // replicas < cut vs the rest, while partitioned
  const int steps = *rc::gen::inRange(10, 120);
  std::uint64_t g_total = 0;
  for (int s = 0; s < steps; ++s) {
    const bool partitioned = s < steps / 2;
    const int i = *rc::gen::inRange(0, n);
    replica &r = rs[static_cast<std::size_t>(i)];
    const std::uint64_t before = r.g.value();
    const delta d = random_op(r);
    g_total += r.g.value() - before;
    for (int j = 0; j < n; ++j) {
      if (j == i || (partitioned && (i < cut) != (j < cut)))
        continue;
      const int fate = *rc::gen::inRange(0, 10);
      auto &q = links[static_cast<std::size_t>(i * n + j)];
      if (fate == 0)
        continue;  // lost
      q.push_back(d);
      if (fate == 1)
        q.push_back(d);  // duplicated
      if (fate == 2 && q.size() > 1)
        std::swap(q.back(), q[static_cast<std::size_t>(*rc::gen::inRange<int>(0, static_cast<int>(q.size())))]);
    }
    // Deliver some queued deltas.
    const int deliveries = *rc::gen::inRange(0, 4);
    for (int k = 0; k < deliveries; ++k) {
      const int l = *rc::gen::inRange(0, n * n);
      auto &q = links[static_cast<std::size_t>(l)];
      if (!q.empty()) {
        apply(rs[static_cast<std::size_t>(l % n)], q.front());
        q.pop_front();
      }
    }
  }
  // Healed: every replica joins every other's full state (one round suffices).
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      rs[static_cast<std::size_t>(i)].join(rs[static_cast<std::size_t>(j)]);
  for (int i = 1; i < n; ++i)
    RC_ASSERT(rs[static_cast<std::size_t>(i)].same_state(rs[0]));
  RC_ASSERT(rs[0].g.value() == g_total);  // every increment once, none twice
}

// Add wins: whatever the interleaving, a key is present at the end exactly
// when some update of it was not seen by any later remove or update — the
// reference model below tracks which writes survive, replica by replica,
// from what each replica had seen when it acted.
RC_GTEST_PROP(CrdtAddWins, NoObservedAddIsLost, ()) {
  const int n = *rc::gen::inRange(2, 5);
  std::vector<registry> maps(static_cast<std::size_t>(n));
  std::map<std::uint32_t, std::set<dot>> live;  // the reference: surviving writes per key
  std::vector<std::deque<registry>> inbox(static_cast<std::size_t>(n));
  const int steps = *rc::gen::inRange(1, 60);
  for (int s = 0; s < steps; ++s) {
    const int i = *rc::gen::inRange(0, n);
    registry &m = maps[static_cast<std::size_t>(i)];
    const auto key = *rc::gen::inRange<std::uint32_t>(0, 3);
    // The reference: the surviving writes of this key that replica i has
    // seen are gone after its remove or update; an update adds its own.
    std::set<dot> seen;
    for (const dot &x : live[key])
      if (m.context().contains(x))
        seen.insert(x);
    registry d;
    const bool remove = *rc::gen::inRange(0, 3) == 0;
    if (remove)
      d = m.remove(key);
    else
      d = m.update(static_cast<replica_id>(i + 1), key, [](figures &f) { f.pages.add(1, 1); });
    for (const dot &x : seen)
      live[key].erase(x);
    if (!remove)
      live[key].insert(dot{static_cast<replica_id>(i + 1), m.context().seen(static_cast<replica_id>(i + 1))});
    for (int j = 0; j < n; ++j)
      if (j != i && *rc::gen::inRange(0, 3) != 0)
        inbox[static_cast<std::size_t>(j)].push_back(d);
    const int j = *rc::gen::inRange(0, n);
    while (!inbox[static_cast<std::size_t>(j)].empty() && *rc::gen::arbitrary<bool>()) {
      maps[static_cast<std::size_t>(j)].join(inbox[static_cast<std::size_t>(j)].front());
      inbox[static_cast<std::size_t>(j)].pop_front();
    }
  }
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      maps[static_cast<std::size_t>(i)].join(maps[static_cast<std::size_t>(j)]);
  for (std::uint32_t key = 0; key < 3; ++key)
    RC_ASSERT(maps[0].contains(key) == !live[key].empty());
}

TEST(Crdt, ConcurrentOwnersAreAConflictEveryReplicaResolvesAlike) {
  // Two gateways start VM 7 at once: both writes survive, each replica sees
  // the conflict and picks the same owner (the lower node id).
  mv_register<std::uint32_t> a, b;
  const auto da = a.set(10, 100);  // node 10 claims: destination 100
  const auto db = b.set(4, 200);   // node 4 claims: destination 200
  a.join(db);
  b.join(da);
  ASSERT_TRUE(a.conflict());
  ASSERT_TRUE(b.conflict());
  EXPECT_EQ(a.values().size(), 2u);
  EXPECT_EQ(*a.resolve(), 200u);
  EXPECT_EQ(*b.resolve(), 200u);
  EXPECT_EQ(a.resolved_dot()->replica, 4u);
  // Node 10, having seen the conflict, writes again: the conflict is over.
  const auto d2 = a.set(10, 200);
  b.join(d2);
  EXPECT_FALSE(a.conflict());
  EXPECT_FALSE(b.conflict());
  EXPECT_EQ(a, b);
}

TEST(Crdt, DotContextCompacts) {
  dot_context c;
  c.insert({1, 2});
  c.insert({1, 3});
  EXPECT_EQ(c.seen(1), 0u);
  EXPECT_EQ(c.cloud().size(), 2u);
  c.insert({1, 1});
  EXPECT_EQ(c.seen(1), 3u);
  EXPECT_TRUE(c.cloud().empty());
  EXPECT_TRUE(c.contains({1, 2}));
  EXPECT_FALSE(c.contains({2, 1}));
  EXPECT_EQ(c.next(1).counter, 4u);
}
