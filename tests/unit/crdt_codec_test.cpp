// crdt_codec_test.cpp — lib/crdt/codec.h: every CRDT type survives
// encode/decode unchanged for states reached by random histories
// (RapidCheck), every proper prefix of an encoding is refused, random
// corruption never crashes and anything it still decodes is well formed,
// and the hand-made malformed cases are each refused for their reason.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <string>
#include <vector>

#include "crdt/codec.h"

using namespace hde::crdt;

namespace {

struct figures {
  gcounter pages;
  lww_register<std::string> state;
  mv_register<std::uint32_t> owner;
  void join(const figures &o) {
    pages.join(o.pages);
    state.join(o.state);
    owner.join(o.owner);
  }
  friend bool operator==(const figures &, const figures &) = default;
};
void encode(writer &w, const figures &f) {
  encode(w, f.pages);
  encode(w, f.state);
  encode(w, f.owner);
}
bool decode(reader &r, figures &f) { return decode(r, f.pages) && decode(r, f.state) && decode(r, f.owner); }

using registry = aw_map<std::string, figures>;

struct replica {
  replica_id id = 0;
  gcounter g;
  pncounter pn;
  lww_register<std::uint64_t> lww;
  mv_register<std::string> mv;
  registry map;
  std::uint64_t clock = 0;
  void join(const replica &o) {
    g.join(o.g);
    pn.join(o.pn);
    lww.join(o.lww);
    mv.join(o.mv);
    map.join(o.map);
  }
};

void random_op(replica &r) {
  const int kind = *rc::gen::inRange(0, 6);
  const std::string key = "vm" + std::to_string(*rc::gen::inRange(0, 5));
  const auto n = *rc::gen::inRange<std::uint32_t>(1, 1u << 20);
  ++r.clock;
  switch (kind) {
  case 0: r.g.add(r.id, n); break;
  case 1: r.pn.add(r.id, *rc::gen::element(1, -1) * static_cast<std::int64_t>(n)); break;
  case 2: r.lww.set(r.id, r.clock, std::uint64_t(n) << 30); break;
  case 3: r.mv.set(r.id, std::string(static_cast<std::size_t>(n % 7), 'x')); break;
  case 4:
    r.map.update(r.id, key, [&](figures &f) {
      f.pages.add(r.id, n);
      f.state.set(r.id, r.clock, "round " + std::to_string(n % 9));
      if (n % 3 == 0)
        f.owner.set(r.id, n);
    });
    break;
  default: r.map.remove(key); break;
  }
}

// Three replicas after random operations and random full syncs: states with
// several writers, concurrent values, clouds and removed keys.
std::vector<replica> random_states() {
  std::vector<replica> rs(3);
  for (int i = 0; i < 3; ++i)
    rs[static_cast<std::size_t>(i)].id = static_cast<replica_id>(i + 1 + *rc::gen::inRange(0, 1000) * 3);
  const int steps = *rc::gen::inRange(0, 40);
  for (int s = 0; s < steps; ++s) {
    random_op(rs[static_cast<std::size_t>(*rc::gen::inRange(0, 3))]);
    if (*rc::gen::inRange(0, 4) == 0)
      rs[static_cast<std::size_t>(*rc::gen::inRange(0, 3))].join(rs[static_cast<std::size_t>(*rc::gen::inRange(0, 3))]);
  }
  return rs;
}

template <typename T> void check_round_trip(const T &x) {
  const auto b = to_bytes(x);
  const auto y = from_bytes<T>(b);
  RC_ASSERT(y.has_value());
  RC_ASSERT(*y == x);
  RC_ASSERT(to_bytes(*y) == b);  // one encoding per state
  for (std::size_t n = 0; n < b.size(); ++n)
    RC_ASSERT(!from_bytes<T>(std::span(b.data(), n)).has_value());
}

// Corrupt an encoding at random: no crash; what still decodes is a state
// that encodes and decodes again to itself.
template <typename T> void check_corruption(const T &x) {
  auto b = to_bytes(x);
  if (b.empty())
    return;
  const int flips = *rc::gen::inRange(1, 4);
  for (int i = 0; i < flips; ++i)
    b[static_cast<std::size_t>(*rc::gen::inRange<std::size_t>(0, b.size()))] = *rc::gen::arbitrary<std::uint8_t>();
  if (*rc::gen::arbitrary<bool>())
    b.push_back(*rc::gen::arbitrary<std::uint8_t>());
  if (const auto y = from_bytes<T>(b)) {
    const auto z = from_bytes<T>(to_bytes(*y));
    RC_ASSERT(z.has_value());
    RC_ASSERT(*z == *y);
  }
}

}  // namespace

RC_GTEST_PROP(CrdtCodec, EveryTypeRoundTripsAndPrefixesAreRefused, ()) {
  for (const replica &r : random_states()) {
    check_round_trip(r.g);
    check_round_trip(r.pn);
    check_round_trip(r.lww);
    check_round_trip(r.mv);
    check_round_trip(r.map);
    check_round_trip(r.map.context());
  }
}

RC_GTEST_PROP(CrdtCodec, CorruptionIsRefusedOrDecodesToAWellFormedState, ()) {
  for (const replica &r : random_states()) {
    check_corruption(r.g);
    check_corruption(r.mv);
    check_corruption(r.map);
  }
}

RC_GTEST_PROP(CrdtCodec, DecodedStatesJoinLikeTheOriginals, ()) {
  auto rs = random_states();
  const auto a = *from_bytes<registry>(to_bytes(rs[0].map));
  const auto b = *from_bytes<registry>(to_bytes(rs[1].map));
  registry x = rs[0].map, y = a;
  x.join(rs[1].map);
  y.join(b);
  RC_ASSERT(x == y);
}

TEST(CrdtCodec, VarintLimits) {
  std::vector<std::uint8_t> out;
  writer w(out);
  w.varint(~std::uint64_t(0));
  ASSERT_EQ(out.size(), 10u);
  reader r(out);
  std::uint64_t v = 0;
  ASSERT_TRUE(r.varint(v));
  EXPECT_EQ(v, ~std::uint64_t(0));
  // An 11-byte varint and a 10th byte above 1 overflow 64 bits.
  const std::vector<std::uint8_t> eleven(11, 0x80), tenth{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
  reader r2(eleven), r3(tenth);
  EXPECT_FALSE(r2.varint(v));
  EXPECT_FALSE(r3.varint(v));
  // A u32 field holding 2^32.
  std::vector<std::uint8_t> big;
  writer(big).varint(1ull << 32);
  reader r4(big);
  std::uint32_t u;
  EXPECT_FALSE(r4.u32(u));
}

TEST(CrdtCodec, MalformedCasesAreRefused) {
  using B = std::vector<std::uint8_t>;
  // A count far beyond the bytes left: refused before any allocation.
  EXPECT_FALSE(from_bytes<gcounter>(B{0xff, 0xff, 0xff, 0xff, 0x0f, 1, 1}));
  // gcounter: replica 0; replicas out of order; a duplicate replica.
  EXPECT_FALSE(from_bytes<gcounter>(B{1, 0, 5}));
  EXPECT_FALSE(from_bytes<gcounter>(B{2, 3, 1, 2, 1}));
  EXPECT_FALSE(from_bytes<gcounter>(B{2, 3, 1, 3, 1}));
  EXPECT_TRUE(from_bytes<gcounter>(B{2, 2, 1, 3, 1}));
  // Trailing bytes.
  EXPECT_FALSE(from_bytes<gcounter>(B{0, 0}));
  // dot_context: a cloud dot the vector already covers (not canonical).
  EXPECT_FALSE(from_bytes<dot_context>(B{1, 1, 5, 1, 1, 3}));
  EXPECT_TRUE(from_bytes<dot_context>(B{1, 1, 5, 1, 1, 7}));
  // A counter of 0 in a dot.
  EXPECT_FALSE(from_bytes<dot_context>(B{0, 1, 1, 0}));
  // mv_register: a value whose dot is outside the context.
  EXPECT_FALSE(from_bytes<mv_register<std::uint32_t>>(B{1, 1, 1, 9, 0, 0}));
  EXPECT_TRUE(from_bytes<mv_register<std::uint32_t>>(B{1, 1, 1, 9, 1, 1, 1, 0}));
  // lww_register: a presence byte that is neither 0 nor 1.
  EXPECT_FALSE(from_bytes<lww_register<std::uint32_t>>(B{2}));
  // aw_map: an empty key (no writes), and one write under two keys.
  EXPECT_FALSE((from_bytes<aw_map<std::uint32_t, gcounter>>(B{1, 4, 0, 1, 1, 1, 0})));
  EXPECT_TRUE((from_bytes<aw_map<std::uint32_t, gcounter>>(B{1, 4, 1, 1, 1, 0, 1, 1, 1, 0})));
  EXPECT_FALSE((from_bytes<aw_map<std::uint32_t, gcounter>>(B{2, 4, 1, 1, 1, 0, 5, 1, 1, 1, 0, 1, 1, 1, 0})));
  // A string longer than the bytes left.
  EXPECT_FALSE(from_bytes<std::string>(B{5, 'a', 'b'}));
}

// join_range: a state split into key ranges, each joined on its own and the
// context last, gives the same state as one join, also when the receiver
// holds keys the sender removed.
RC_GTEST_PROP(CrdtCodec, RangeFragmentsJoinLikeTheWholeState, ()) {
  auto rs = random_states();
  const registry &sender = rs[0].map;
  registry whole = rs[1].map, parts = rs[1].map;
  whole.join(sender);
  std::vector<std::string> keys;
  sender.for_each([&](const std::string &k, const figures &) { keys.push_back(k); });
  // Cut points: after random keys (and keys the sender does not have).
  std::vector<std::optional<std::string>> cuts{std::nullopt};
  for (int i = 0; i < 5; ++i)
    if (*rc::gen::arbitrary<bool>())
      cuts.push_back("vm" + std::to_string(i));
  std::sort(cuts.begin() + 1, cuts.end());
  cuts.push_back(std::nullopt);
  std::vector<std::size_t> order(cuts.size() - 1);
  for (std::size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  for (std::size_t i = order.size(); i > 1; --i)
    std::swap(order[i - 1], order[*rc::gen::inRange<std::size_t>(0, i)]);
  for (std::size_t i : order)
    parts.join_range(sender, cuts[i], cuts[i + 1]);
  parts.join_context(sender.context());
  RC_ASSERT(parts == whole);
}
