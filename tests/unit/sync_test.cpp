// sync_test.cpp — control/sync over a simulated network (sync_sim.h):
// 3-5 gateways doing random things while their datagrams are lost,
// duplicated and reordered and the fleet is partitioned, then healed: every
// replica equal, no migration that nobody removed lost, every selector
// sample counted once (RapidCheck). A gateway joining a fleet with 1000
// migrations over a lossy link gets the state in fragments. Bad datagrams
// (wrong key, truncated, garbage, replayed, oversize, malformed under the
// right key) are counted by reason and change nothing. Restarts, ownership
// conflicts, log collection.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <set>

#include "sync_sim.h"

using namespace hde::sync;

namespace {

const std::vector<std::uint8_t> kKey(32, 0x5a);

bool all_equal(sim_net &net) {
  for (std::size_t i = 1; i < net.size(); ++i)
    if (!(without_heartbeats(net.node(i).state().state()) == without_heartbeats(net.node(0).state().state())))
      return false;
  return true;
}

fleet_state snapshot_of(const sync_node &n) { return n.state().state(); }

}  // namespace

RC_GTEST_PROP(Sync, RandomFleetOverLossyPartitionedNetworkConverges, ()) {
  const std::size_t n = *rc::gen::inRange<std::size_t>(3, 6);
  sim_link link;
  link.loss = *rc::gen::inRange(0, 30) / 100.0;
  link.dup = *rc::gen::inRange(0, 20) / 100.0;
  link.delay_max_ms = *rc::gen::inRange<std::uint64_t>(1, 300);
  // A short log horizon: peers across the partition fall out of the
  // logs, and the heal goes through state transfers.
  const std::uint32_t horizon = *rc::gen::element(5u, 600u);
  sim_net net(n, link, 100, kKey, *rc::gen::arbitrary<std::uint32_t>(), 3, true, horizon);
  std::set<std::size_t> side;
  for (std::size_t i = 0; i < n; ++i)
    if (*rc::gen::arbitrary<bool>())
      side.insert(i);
  net.partition(side);
  std::set<std::string> started, removed;
  std::uint64_t samples = 0;
  const int steps = *rc::gen::inRange(5, 60);
  for (int s = 0; s < steps; ++s) {
    if (s == steps / 2)
      net.heal();
    sync_node &g = net.node(*rc::gen::inRange<std::size_t>(0, n));
    const std::string vm = "vm" + std::to_string(*rc::gen::inRange(0, 8));
    const std::uint64_t now = net.now();
    switch (*rc::gen::inRange(0, 5)) {
    case 0:
      g.update([&](fleet &f) { return f.start_migration(vm, "gw9", now, now); });
      started.insert(vm);
      break;
    case 1:
      g.update([&](fleet &f) {
        return f.report(vm, {mig_state::dirty, static_cast<std::uint32_t>(s), 100u * static_cast<unsigned>(s), 7, now, {}}, now);
      });
      started.insert(vm);  // a report of an absent VM adds it
      break;
    case 2:
      g.update([&](fleet &f) { return f.remove_migration(vm); });
      removed.insert(vm);
      break;
    case 3: g.update([&](fleet &f) { return f.resolve_conflicts(now); }); break;
    default:
      g.update([&](fleet &f) { return f.add_selector_sample("c1", "lz4", 8, 100, 5); });
      ++samples;
    }
    net.run(*rc::gen::inRange<std::uint64_t>(0, 400));
  }
  net.heal();
  net.link().loss = std::min(net.link().loss, 0.1);
  net.run(6000);  // 60 rounds after the heal
  RC_ASSERT(all_equal(net));
  const fleet &f = net.node(0).state();
  std::set<std::string> present;
  for (const auto &r : f.migrations())
    present.insert(r.vm);
  for (const std::string &vm : started)
    if (!removed.count(vm))
      RC_ASSERT(present.count(vm) == 1u);  // never removed by anyone: still there
  std::uint64_t counted = 0;
  for (const auto &r : f.selector())
    counted += r.samples;
  RC_ASSERT(counted == samples);
  // Everyone is alive at the end (suspicions during the partition refuted).
  for (const auto &m : f.members())
    RC_ASSERT(m.st.kind == status_kind::alive);
}

TEST(Sync, NewGatewayGetsAThousandMigrationsInFragmentsOverALossyLink) {
  // A log horizon of 5 rounds: node 2, never heard, stops holding the log.
  sim_net net(3, {0.1, 0.05, 1, 40}, 500, kKey, 7, 3, true, 5);
  net.isolate(2, true);  // not up yet
  for (int i = 0; i < 1000; ++i)
    net.node(0).update([&](fleet &f) {
      return f.start_migration("vm-" + std::to_string(i), "gw-b", static_cast<std::uint64_t>(i), 1700000000000ull);
    });
  net.run(10000);
  // Node 1 has everything, so node 0's log is collected: the deltas are gone.
  EXPECT_EQ(net.node(1).state().migrations().size(), 1000u);
  EXPECT_LE(net.node(0).log_entries(), 2u);
  net.isolate(2, false);
  net.run(15000);
  EXPECT_TRUE(all_equal(net));
  EXPECT_EQ(net.node(2).state().migrations().size(), 1000u);
  EXPECT_GE(net.node(2).stats().snapshots_completed, 1u);
  EXPECT_GT(net.node(0).stats().snapshot_pieces_out + net.node(1).stats().snapshot_pieces_out, 30u);
}

TEST(Sync, BadDatagramsAreCountedByReasonAndChangeNothing) {
  sim_net net(2, {}, 100, kKey, 3);
  net.run(1000);
  ASSERT_TRUE(all_equal(net));
  sync_node &a = net.node(0);
  const std::string from = sim_net::addr(1);
  // A real datagram of node 2 carrying a delta a lacks: a new migration.
  std::vector<std::vector<std::uint8_t>> sent;
  sync_config cb;
  cb.node = 2;
  cb.epoch = 2000000;
  cb.key = kKey;
  sync_node b(cb, [&](const std::string &, std::span<const std::uint8_t> d) { sent.emplace_back(d.begin(), d.end()); });
  b.add_peer(sim_net::addr(0));
  b.update([](fleet &f) { return f.start_migration("vm-x", "gw", 1, 1); });
  b.poll(1);
  ASSERT_FALSE(sent.empty());
  const std::vector<std::uint8_t> good = sent.back();
  const fleet_state before = snapshot_of(a);
  const auto have_before = a.have();
  auto drops = [&](drop d) { return a.stats().drops[static_cast<std::size_t>(d)]; };
  // Wrong key.
  const std::vector<std::uint8_t> other(32, 0x11);
  opened o;
  ASSERT_EQ(open(kKey, good, o), drop::count);
  const auto forged = seal(other, o.node, o.epoch, o.counter, o.payload);
  a.receive(from, forged, 1);
  EXPECT_EQ(drops(drop::auth), 1u);
  // A flipped bit anywhere in the payload or the tag.
  for (std::size_t i = kHeaderBytes; i < good.size(); i += 7) {
    auto bad = good;
    bad[i] ^= 0x20;
    a.receive(from, bad, 1);
  }
  EXPECT_GT(drops(drop::auth), 1u);
  // Truncated: every proper prefix.
  for (std::size_t n = 0; n < good.size(); ++n)
    a.receive(from, std::span(good.data(), n), 1);
  EXPECT_EQ(drops(drop::truncated), good.size());
  // Garbage, and too big.
  std::mt19937 rng(5);
  for (int i = 0; i < 200; ++i) {
    std::vector<std::uint8_t> g(rng() % 1400);
    for (auto &x : g)
      x = static_cast<std::uint8_t>(rng());
    a.receive(from, g, 1);
  }
  a.receive(from, std::vector<std::uint8_t>(1401, 0), 1);
  EXPECT_EQ(drops(drop::oversize), 1u);
  // Authentic but malformed: records that do not parse, under the right key.
  for (const std::vector<std::uint8_t> &payload :
       {std::vector<std::uint8_t>{9, 0}, std::vector<std::uint8_t>{2, 5, 1, 1, 1, 1}, std::vector<std::uint8_t>{1, 1}}) {
    ASSERT_FALSE(parse_payload(payload));
    a.receive(from, seal(kKey, 2, 2000000, 1000 + payload.size(), payload), 1);
  }
  EXPECT_EQ(drops(drop::malformed) >= 3u, true);
  EXPECT_EQ(snapshot_of(a), before);  // nothing changed
  EXPECT_EQ(a.have(), have_before);
  // The real one is taken once; the same datagram again is a replay.
  a.receive(from, good, 2);
  EXPECT_NE(snapshot_of(a), before);
  const fleet_state after = snapshot_of(a);
  a.receive(from, good, 3);
  EXPECT_EQ(drops(drop::replay), 1u);
  EXPECT_EQ(snapshot_of(a), after);
  // An older epoch of the sender is a replay too, even with a new counter.
  a.receive(from, seal(kKey, 2, 1999999, 1u << 30, o.payload), 4);
  EXPECT_EQ(drops(drop::replay), 2u);
  EXPECT_EQ(snapshot_of(a), after);
}

TEST(Sync, RestartIsANewEpochTheOthersSee) {
  sim_net net(3, {0.05, 0.0, 1, 30}, 200, kKey, 11);
  net.run(3000);
  ASSERT_TRUE(all_equal(net));
  const std::uint64_t old_epoch = net.node(0).state().member_of(3)->st.epoch;
  net.isolate(2, true);
  net.run(6000);  // 30 rounds silent: suspected, then dead
  EXPECT_EQ(net.node(0).state().member_of(3)->st.kind, status_kind::dead);
  net.restart(2, 200, kKey, 3, 11, 5000);
  net.isolate(2, false);
  net.run(4000);
  EXPECT_TRUE(all_equal(net));
  const auto m = net.node(0).state().member_of(3);
  EXPECT_GT(m->st.epoch, old_epoch);
  EXPECT_EQ(m->st.kind, status_kind::alive);
  EXPECT_EQ(m->info.epoch, m->st.epoch);
}

TEST(Sync, ConcurrentStartsOfOneVmEndWithOneOwnerEverywhere) {
  sim_net net(3, {0.05, 0.05, 1, 50}, 100, kKey, 21);
  net.run(500);
  net.node(2).update([](fleet &f) { return f.start_migration("vm-7", "east", 600, 600); });
  net.node(1).update([](fleet &f) { return f.start_migration("vm-7", "west", 600, 600); });
  net.run(1000);
  ASSERT_TRUE(all_equal(net));
  auto rows = net.node(0).state().migrations();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_TRUE(rows[0].conflict());
  EXPECT_EQ(rows[0].owner.source, 2u);  // node 2 (index 1) is the lower id
  for (std::size_t i = 0; i < 3; ++i)
    net.node(i).update([&](fleet &f) { return f.resolve_conflicts(net.now()); });
  net.run(1000);
  ASSERT_TRUE(all_equal(net));
  rows = net.node(0).state().migrations();
  EXPECT_FALSE(rows[0].conflict());
  EXPECT_EQ(rows[0].owner.source, 2u);
  EXPECT_EQ(rows[0].owner.destination, "west");
}

TEST(Sync, DeltasEveryPeerHasAreCollected) {
  sim_net net(3, {}, 100, kKey, 5);
  for (int i = 0; i < 50; ++i)
    net.node(static_cast<std::size_t>(i % 3)).update([&](fleet &f) {
      return f.start_migration("vm" + std::to_string(i), "d", 1, 1);
    });
  net.run(3000);
  ASSERT_TRUE(all_equal(net));
  for (std::size_t i = 0; i < 3; ++i) {
    // What is left is at most the last round's heartbeats (one per stream).
    EXPECT_LE(net.node(i).log_entries(), 3u);
    EXPECT_GT(net.node(i).stats().log_collected, 0u);
    EXPECT_EQ(net.node(i).stats().snapshots_started, 0u);
  }
}

TEST(Sync, SeqSetRanges) {
  seq_set s;
  EXPECT_TRUE(s.add(1, 3));
  EXPECT_FALSE(s.add(2, 3));
  EXPECT_TRUE(s.add(6, 8));
  EXPECT_EQ(s.hi, 3u);
  EXPECT_TRUE(s.covers(7, 8));
  EXPECT_FALSE(s.covers(4, 6));
  EXPECT_TRUE(s.add(4, 5));
  EXPECT_EQ(s.hi, 8u);
  EXPECT_TRUE(s.extra.empty());
  EXPECT_FALSE(s.add(0, 2));
}

TEST(Sync, TenGatewaysHealWithinTenRounds) {
  // 500 ms rounds, fanout 3, 2 % loss: the fleet forms, splits in two for
  // 30 s while both halves change things, heals. (perf/sync/bench_sync has
  // the figures for 3, 10 and 100 gateways.)
  sim_net net(10, {0.02, 0.01, 20, 60}, 500, kKey, 99);
  net.run(10000, 10);
  net.partition({0, 1, 2, 3, 4});
  for (std::size_t i = 0; i < 10; ++i)
    net.node(i).update([&](fleet &f) { return f.start_migration("vm" + std::to_string(i), "d", net.now(), 1); });
  net.run(30000, 10);
  EXPECT_FALSE(all_equal(net));
  net.heal();
  auto all_alive = [&] {
    for (const auto &m : net.node(0).state().members())
      if (m.st.kind != status_kind::alive)
        return false;
    return true;
  };
  std::uint64_t t = 0;
  while (t < 5000 && !(all_equal(net) && all_alive())) {
    net.run(100, 10);
    t += 100;
  }
  EXPECT_TRUE(all_equal(net)) << "not converged 10 rounds after the heal";
  EXPECT_TRUE(all_alive()) << "the suspicions of the partition not all refuted 10 rounds after the heal";
  EXPECT_EQ(net.node(0).state().members().size(), 10u);
  EXPECT_EQ(net.node(0).state().migrations().size(), 10u);
}
