// fleet_test.cpp — lib/sync/fleet: the fleet state of 3-5 gateways doing
// random things (announce, heartbeats, SWIM detection, migrations started,
// reported and removed, selector samples), deltas delivered over links that
// lose, duplicate and reorder them, partitioned for a while, then healed by
// full states cut into datagram-sized fragments delivered in any order: all
// replicas equal and every selector sample counted once. Also: the binary
// form, ownership conflicts resolved alike everywhere, SWIM suspicion,
// refutation, death and a restart's new epoch.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <deque>
#include <string>
#include <vector>

#include "sync/fleet.h"

using namespace hde::sync;
using hde::crdt::from_bytes;
using hde::crdt::to_bytes;

namespace {

fleet_state op(fleet &f, std::uint64_t now, std::uint64_t &samples) {
  const std::string vm = "vm" + std::to_string(*rc::gen::inRange(0, 6));
  switch (*rc::gen::inRange(0, 8)) {
  case 0: return f.announce({"127.0.0.1:" + std::to_string(7000 + f.self()), "", "", 0}, now);
  case 1: return f.beat();
  case 2: return f.detect(now, 1500, 3000);
  case 3: return f.start_migration(vm, "gw" + std::to_string(*rc::gen::inRange(1, 4)), now, 1000 + now);
  case 4: {
    progress p{static_cast<mig_state>(*rc::gen::inRange(0, 6)), *rc::gen::inRange<std::uint32_t>(0, 9),
               *rc::gen::inRange<std::uint64_t>(0, 1 << 20), *rc::gen::inRange<std::uint64_t>(0, 1 << 30), now, "r"};
    return f.report(vm, p, now);
  }
  case 5: return f.remove_migration(vm);
  case 6: return f.resolve_conflicts(now);
  default:
    ++samples;
    return f.add_selector_sample("class" + std::to_string(*rc::gen::inRange(0, 3)),
                                 *rc::gen::element<std::string>("lz4", "zstd:3", "raw"), 10, 4000, 99);
  }
}

// The full state of a, cut into fragments of at most 600 bytes, delivered to
// b in a random order (each perhaps twice), then the context.
void full_sync(const fleet &a, fleet &b) {
  auto frags = split(a.state(), 600);
  for (std::size_t i = frags.size(); i > 1; --i)
    std::swap(frags[i - 1], frags[*rc::gen::inRange<std::size_t>(0, i)]);
  for (const fragment &f : frags) {
    const auto bytes = [&] {
      std::vector<std::uint8_t> out;
      hde::crdt::writer w(out);
      encode(w, f);
      return out;
    }();
    RC_ASSERT(bytes.size() <= 600u);
    hde::crdt::reader r(bytes);
    fragment g;
    RC_ASSERT(decode(r, g) && r.done());
    b.apply(g);
    if (*rc::gen::inRange(0, 4) == 0)
      b.apply(g);
  }
  b.finish(a.state().migrations.context());
}

}  // namespace

RC_GTEST_PROP(Fleet, ReplicasConvergeOverLossyPartitionedLinks, ()) {
  const int n = *rc::gen::inRange(3, 6);
  std::vector<fleet> fs;
  for (int i = 0; i < n; ++i)
    fs.emplace_back(static_cast<replica_id>(i + 1), 1000 + static_cast<std::uint64_t>(i));
  std::vector<std::deque<fleet_state>> links(static_cast<std::size_t>(n * n));
  const int cut = *rc::gen::inRange(1, n);
  const int steps = *rc::gen::inRange(10, 150);
  std::uint64_t samples = 0, now = 0;
  for (int s = 0; s < steps; ++s) {
    now += *rc::gen::inRange(0, 700);
    const bool partitioned = s < steps / 2;
    const int i = *rc::gen::inRange(0, n);
    const fleet_state d = op(fs[static_cast<std::size_t>(i)], now, samples);
    for (int j = 0; j < n; ++j) {
      if (j == i || (partitioned && (i < cut) != (j < cut)))
        continue;
      const int fate = *rc::gen::inRange(0, 10);
      auto &q = links[static_cast<std::size_t>(i * n + j)];
      if (fate == 0)
        continue;  // lost
      q.push_back(*from_bytes<fleet_state>(to_bytes(d)));  // through the wire form
      if (fate == 1)
        q.push_back(d);  // duplicated
      if (fate == 2 && q.size() > 1)
        std::swap(q.back(), q[static_cast<std::size_t>(*rc::gen::inRange<int>(0, static_cast<int>(q.size())))]);
    }
    for (int k = *rc::gen::inRange(0, 4); k > 0; --k) {
      const int l = *rc::gen::inRange(0, n * n);
      auto &q = links[static_cast<std::size_t>(l)];
      if (!q.empty()) {
        fs[static_cast<std::size_t>(l % n)].join(q.front());
        q.pop_front();
      }
    }
  }
  // Healed: full states, fragment by fragment, around a ring twice.
  for (int round = 0; round < 2; ++round)
    for (int i = 0; i < n; ++i)
      full_sync(fs[static_cast<std::size_t>(i)], fs[static_cast<std::size_t>((i + 1) % n)]);
  for (int i = 1; i < n; ++i)
    RC_ASSERT(fs[static_cast<std::size_t>(i)].state() == fs[0].state());
  std::uint64_t counted = 0;
  for (const selector_row &r : fs[0].selector())
    counted += r.samples;
  RC_ASSERT(counted == samples);
}

RC_GTEST_PROP(Fleet, StatesAndFragmentsRoundTrip, ()) {
  fleet a(3, 77);
  std::uint64_t samples = 0;
  for (int s = *rc::gen::inRange(0, 60); s > 0; --s)
    op(a, static_cast<std::uint64_t>(s) * 100, samples);
  const auto b = to_bytes(a.state());
  const auto back = from_bytes<fleet_state>(b);
  RC_ASSERT(back.has_value());
  RC_ASSERT(*back == a.state());
  for (std::size_t n = 0; n < b.size(); ++n)
    RC_ASSERT(!from_bytes<fleet_state>(std::span(b.data(), n)).has_value());
}

TEST(Fleet, ThousandMigrationsSplitIntoDatagramsAndRebuildTheState) {
  fleet a(1, 5), b(2, 6);
  for (int i = 0; i < 1000; ++i) {
    a.start_migration("vm-" + std::to_string(i), "gw2", static_cast<std::uint64_t>(i), 1700000000000ull);
    a.report("vm-" + std::to_string(i), {mig_state::dirty, 3, 262144, 123456789, 1700000000000ull, {}},
             static_cast<std::uint64_t>(i));
  }
  for (int i = 0; i < 1000; i += 3)
    a.remove_migration("vm-" + std::to_string(i));
  // b holds keys a has removed, and one a never had.
  for (int i = 0; i < 30; ++i)
    b.join(a.start_migration("vm-" + std::to_string(i), "gw2", 1, 1));
  a.remove_migration("vm-1");
  b.start_migration("zz-only-b", "gw1", 1, 1);
  fleet_state want = b.state();
  want.join(a.state());
  const auto frags = split(a.state(), 1300);
  std::size_t total = 0;
  for (const fragment &f : frags) {
    std::vector<std::uint8_t> out;
    hde::crdt::writer w(out);
    encode(w, f);
    EXPECT_LE(out.size(), 1300u);
    total += out.size();
  }
  EXPECT_GT(frags.size(), 20u);
  for (auto it = frags.rbegin(); it != frags.rend(); ++it)
    b.apply(*it);
  b.finish(a.state().migrations.context());
  EXPECT_EQ(b.state(), want);
  EXPECT_EQ(b.migrations().size(), a.migrations().size() + 1);  // and zz-only-b
  EXPECT_LT(total, to_bytes(a.state()).size() * 11 / 10);  // cutting costs little
}

TEST(Fleet, TwoGatewaysStartingOneVmAreAConflictResolvedAlikeEverywhere) {
  fleet a(4, 1), b(9, 1), c(2, 1);
  const auto da = a.start_migration("vm-7", "gw-east", 10, 100);
  const auto db = b.start_migration("vm-7", "gw-west", 10, 100);
  for (fleet *f : {&a, &b, &c}) {
    f->join(da);
    f->join(db);
    const auto rows = f->migrations();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_TRUE(rows[0].conflict());
    EXPECT_EQ(rows[0].claims.size(), 2u);
    EXPECT_EQ(rows[0].owner.source, 4u);  // the lowest node id
    EXPECT_EQ(rows[0].owner.destination, "gw-east");
  }
  // The winner has nothing to do; the loser gives up, visibly.
  EXPECT_TRUE(a.resolve_conflicts(20).empty());
  std::vector<std::string> lost;
  const auto dl = b.resolve_conflicts(20, &lost);
  ASSERT_EQ(lost, std::vector<std::string>{"vm-7"});
  a.join(dl);
  c.join(dl);
  for (fleet *f : {&a, &b, &c}) {
    const auto rows = f->migrations();
    EXPECT_FALSE(rows[0].conflict());
    EXPECT_EQ(rows[0].owner.source, 4u);
    EXPECT_EQ(f->state(), a.state());
  }
  bool saw_failure = false;
  b.state().migrations.for_each([&](const std::string &, const migration &m) {
    const auto r = m.reports.m.at(9).get();
    saw_failure = r && r->state == mig_state::failed && r->reason.find("node 4") != std::string::npos;
  });
  EXPECT_TRUE(saw_failure);
}

TEST(Fleet, SwimSuspicionRefutationDeathAndANewEpoch) {
  fleet a(1, 100), b(2, 200);
  a.join(b.announce({"10.0.0.2:7000", "", "", 0}, 0));
  b.join(a.announce({"10.0.0.1:7000", "", "", 0}, 0));
  EXPECT_TRUE(a.detect(0, 1500, 3000).empty());
  a.join(b.beat());
  EXPECT_TRUE(a.detect(1000, 1500, 3000).empty());
  // b goes quiet: suspected after 1.5 s without a heartbeat.
  const auto sus = a.detect(2600, 1500, 3000);
  ASSERT_EQ(a.member_of(2)->st.kind, status_kind::suspect);
  EXPECT_EQ(a.member_of(2)->st.incarnation, 0u);
  // b hears of it and refutes with a higher incarnation.
  b.join(sus);
  const auto ref = b.detect(2700, 1500, 3000);
  a.join(ref);
  EXPECT_EQ(a.member_of(2)->st.kind, status_kind::alive);
  EXPECT_EQ(a.member_of(2)->st.incarnation, 1u);
  a.join(b.beat());
  EXPECT_TRUE(a.detect(2800, 1500, 3000).empty());
  // Silent for good: suspect, then dead once the suspicion has stood 3 s.
  a.detect(4400, 1500, 3000);
  EXPECT_EQ(a.member_of(2)->st.kind, status_kind::suspect);
  a.detect(6000, 1500, 3000);
  EXPECT_EQ(a.member_of(2)->st.kind, status_kind::suspect);
  a.detect(7500, 1500, 3000);
  EXPECT_EQ(a.member_of(2)->st.kind, status_kind::dead);
  // b restarts: a new epoch overrides the old one's death.
  fleet b2(2, 300);
  a.join(b2.announce({"10.0.0.2:7000", "", "", 0}, 8000));
  EXPECT_EQ(a.member_of(2)->st.kind, status_kind::alive);
  EXPECT_EQ(a.member_of(2)->st.epoch, 300u);
  EXPECT_EQ(a.member_of(2)->info.epoch, 300u);
}

TEST(Fleet, SelectorSamplesMergeWithoutDoubleCounting) {
  fleet a(1, 1), b(2, 1);
  a.add_selector_sample("text", "zstd:3", 64, 30000, 5000);
  const auto d = a.add_selector_sample("text", "zstd:3", 64, 20000, 7000);
  b.add_selector_sample("text", "zstd:3", 32, 1000, 10);
  b.join(d);
  b.join(d);
  b.join(a.state());
  const auto rows = b.selector();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].cls, "text");
  EXPECT_EQ(rows[0].arm, "zstd:3");
  EXPECT_EQ(rows[0].samples, 3u);
  EXPECT_EQ(rows[0].pages, 160u);
  EXPECT_EQ(rows[0].wire_bytes, 51000u);
  EXPECT_EQ(rows[0].cycles, 12010u);
}

// A gateway adds its segments in batches (one call per sync round): the
// count of samples is the batch's, and merging still counts each once.
TEST(Fleet, SelectorSampleBatchesCountTheirSamples) {
  fleet a(1, 1), b(2, 1);
  const auto d1 = a.add_selector_sample("bulk", "lz4:4", 640, 300000, 50000, 10);
  const auto d2 = a.add_selector_sample("bulk", "lz4:4", 64, 30000, 5000, 1);
  b.add_selector_sample("bulk", "lz4:4", 128, 1000, 10, 2);
  b.join(d2);
  b.join(d1);
  b.join(d1);
  b.join(a.state());
  const auto rows = b.selector();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].samples, 13u);
  EXPECT_EQ(rows[0].pages, 832u);
  EXPECT_EQ(rows[0].wire_bytes, 331000u);
  a.join(b.state());
  EXPECT_EQ(a.selector()[0].samples, 13u);
}
