// window_test.cpp — reliable delivery (dataplane/window.h, sack.h,
// sender.h, rate_model.h) on scripted traces and in a discrete-time link
// simulation: selective-ack blocks; RACK loss detection (reordering alone
// never causes a retransmit, a hole does after the reordering window);
// DSACK widening the window; the rate model finding the bottleneck rate and
// the minimum RTT; goodput on lossy long links; two senders sharing a
// bottleneck; every frame delivered once, in order.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <queue>
#include <random>
#include <set>
#include <vector>

#include "sender.h"
#include "window.h"

using namespace hde::dp;

namespace {

constexpr double kHz = 1e9;  // ticks are nanoseconds
constexpr std::uint64_t kMs = 1000000;
constexpr std::uint32_t kLen = 1500;

sender<int>::config cfg(std::uint32_t cap = 4096) {
  sender<int>::config c;
  c.capacity = cap;
  c.hz = kHz;
  c.mss = kLen;
  c.rto_min = 5 * kMs;
  return c;
}

ack_info ack(std::uint64_t cum, std::initializer_list<sack_block> blocks = {}) {
  ack_info a;
  a.cum = cum;
  for (const auto &b : blocks)
    a.blocks[a.nblocks++] = b;
  return a;
}

}  // namespace

// --- receive window and the ACK payload ------------------------------------------

TEST(RecvWindow, ReordersAndRejectsDuplicates) {
  recv_window<int> r(8);
  std::vector<int> got;
  auto take = [&](int v) { got.push_back(v); };
  EXPECT_EQ(r.offer(1, 11), recv_window<int>::verdict::stored);
  EXPECT_EQ(r.drain(take), 0u);
  ack_info a;
  r.fill_ack(a);
  EXPECT_EQ(a.cum, 0u);
  ASSERT_EQ(a.nblocks, 1u);
  EXPECT_EQ(a.blocks[0].start, 1u);
  EXPECT_EQ(a.blocks[0].end, 2u);
  EXPECT_EQ(r.offer(1, 11), recv_window<int>::verdict::duplicate);
  EXPECT_EQ(r.offer(0, 10), recv_window<int>::verdict::stored);
  EXPECT_EQ(r.drain(take), 2u);
  EXPECT_EQ(got, (std::vector<int>{10, 11}));
  EXPECT_EQ(r.offer(0, 10), recv_window<int>::verdict::duplicate);
  EXPECT_EQ(r.offer(2 + 8, 0), recv_window<int>::verdict::too_far);
  r.fill_ack(a);
  EXPECT_EQ(a.cum, 2u);
  EXPECT_EQ(a.nblocks, 0u);
}

// The block of the frame stored last comes first, then the highest blocks.
TEST(RecvWindow, AckBlocksFreshFirstThenInRotation) {
  recv_window<int> r(1024);
  for (std::uint64_t s : {2, 3, 6, 7, 8, 12, 20, 21})
    r.offer(s, 0);
  r.offer(4, 0);  // joins 2..3 into 2..4
  ack_info a;
  r.fill_ack(a);
  EXPECT_EQ(a.cum, 0u);
  ASSERT_EQ(a.nblocks, 4u);
  EXPECT_EQ(a.blocks[0].start, 2u);
  EXPECT_EQ(a.blocks[0].end, 5u);
  EXPECT_EQ(a.blocks[1].start, 6u);
  EXPECT_EQ(a.blocks[1].end, 9u);
  EXPECT_EQ(a.blocks[2].start, 12u);
  EXPECT_EQ(a.blocks[3].start, 20u);
  EXPECT_EQ(a.blocks[3].end, 22u);
  // More blocks than one ACK holds (a long fat path with random loss):
  // what arrived since the last ACK comes first, whole blocks; the others
  // rotate, so each block is reported within a few ACKs.
  for (std::size_t room : {std::size_t{4}, std::size_t{37}, kMaxSackBlocks}) {
    recv_window<int> big(4096);
    for (std::uint64_t s = 1; s < 800; s += 2)  // 400 blocks of one frame
      big.offer(s, 0);
    std::set<std::uint64_t> seen;
    // Fresh and recent blocks take at most half of each ACK, the rotation
    // the rest: 400 blocks within 400 / (room / 2) ACKs and a few.
    const std::size_t acks = 400 / (room / 2) + 3;
    for (std::size_t k = 0; k < acks; ++k) {
      big.fill_ack(a, room);
      ASSERT_EQ(a.nblocks, room);
      for (std::size_t i = 0; i < a.nblocks; ++i) {
        EXPECT_EQ(a.blocks[i].end, a.blocks[i].start + 1);
        seen.insert(a.blocks[i].start);
      }
    }
    EXPECT_EQ(seen.size(), 400u) << "room " << room;
    // New arrivals are in the very next ACK, however many blocks wait.
    big.offer(900, 0);
    big.offer(302, 0);  // joins 301 and 303 into 301..303
    big.fill_ack(a, room);
    bool joined = false, high = false;
    for (std::size_t i = 0; i < a.nblocks; ++i) {
      joined |= a.blocks[i].start == 301 && a.blocks[i].end == 304;
      high |= a.blocks[i].start == 900 && a.blocks[i].end == 901;
    }
    EXPECT_TRUE(joined && high) << "room " << room;
  }
  // Frames received in order but not drained (decoded) yet are acked.
  recv_window<int> nd(64);
  for (std::uint64_t q : {0, 1, 2, 5})
    nd.offer(q, 0);
  EXPECT_EQ(nd.next_expected(), 0u);
  EXPECT_EQ(nd.next_missing(), 3u);
  nd.fill_ack(a);
  EXPECT_EQ(a.cum, 3u);
  ASSERT_EQ(a.nblocks, 1u);
  EXPECT_EQ(a.blocks[0].start, 5u);
  EXPECT_EQ(nd.drain([](int) {}), 3u);
  nd.offer(3, 0);
  EXPECT_EQ(nd.next_missing(), 4u);
  EXPECT_EQ(ack_blocks_for(1472, 32), kMaxSackBlocks);
  EXPECT_EQ(ack_blocks_for(548, 32), (548u - 32 - 24) / 8);
  EXPECT_EQ(ack_blocks_for(40, 32), 0u);
}

TEST(AckPayload, RoundTripAndMalformed) {
  ack_info a = ack(100, {{105, 110}, {101, 103}});
  a.dup_count = 7;
  a.last_dup_seq = 42;
  a.fec_rebuilt = 3;
  std::byte buf[kMaxAckPayload];
  const std::size_t n = write_ack_payload(a, buf);
  EXPECT_EQ(n, ack_payload_size(2));
  ack_info b;
  ASSERT_TRUE(parse_ack_payload(buf, n, 100, b));
  EXPECT_EQ(b.nblocks, 2u);
  EXPECT_EQ(b.blocks[0].start, 105u);
  EXPECT_EQ(b.blocks[0].end, 110u);
  EXPECT_EQ(b.dup_count, 7u);
  EXPECT_EQ(b.last_dup_seq, 42u);
  EXPECT_EQ(b.fec_rebuilt, 3u);
  EXPECT_FALSE(parse_ack_payload(buf, n - 1, 100, b));       // truncated
  EXPECT_FALSE(parse_ack_payload(buf, 8, 100, b));           // shorter than the fixed part
  std::byte bad[kMaxAckPayload];
  std::memcpy(bad, buf, n);
  bad[16] = std::byte{200};                                  // nblocks beyond the limit
  EXPECT_FALSE(parse_ack_payload(bad, n, 100, b));
  std::memcpy(bad, buf, n);
  std::memset(bad + sizeof(ack_fixed), 0, 4);                // block at the cumulative ack
  EXPECT_FALSE(parse_ack_payload(bad, n, 100, b));
  // Blocks at or below cum are left out when writing.
  ack_info c = ack(100, {{90, 95}, {101, 102}});
  EXPECT_EQ(write_ack_payload(c, buf), ack_payload_size(1));
}

// --- loss detection on scripted traces ---------------------------------------------

// Frames 0..9 sent 10 us apart; the ACK says all but 3 arrived. Frame 3 is
// lost only once the reordering window has passed, and goes out first.
TEST(Rack, HoleIsLostAfterReorderWindowAndResentFirst) {
  sender<int> s(cfg());
  for (int i = 0; i < 12; ++i)
    s.push(i, kLen);
  std::vector<std::uint64_t> out;
  auto tx = [&](int, std::uint64_t seq, bool) { out.push_back(seq); };
  for (int i = 0; i < 10; ++i)
    ASSERT_EQ(s.pump(1000 + i * 20000, 1, tx), 1u);
  out.clear();
  // RTT 20 ms: the ack for 0..9 less 3 arrives at 20.1 ms.
  const std::uint64_t t = 20 * kMs + 100000;
  int freed = 0;
  s.on_ack(t, ack(3, {{4, 10}}), [&](int) { ++freed; });
  EXPECT_EQ(freed, 9);
  EXPECT_EQ(s.stats().lost_frames, 0u) << "lost before the reordering window passed";
  s.on_timer(t + 1 * kMs);
  EXPECT_EQ(s.stats().lost_frames, 0u);
  s.on_timer(t + s.reo_wnd() + 1 * kMs);
  EXPECT_EQ(s.stats().lost_frames, 1u);
  s.pump(t + s.reo_wnd() + 1 * kMs, 2, tx);
  ASSERT_GE(out.size(), 1u);
  EXPECT_EQ(out[0], 3u);  // the lost frame first, then new data
  EXPECT_EQ(s.stats().retransmits, 1u);
}

// Reordering alone: frames arrive out of order but within the window.
// Nothing is retransmitted.
TEST(Rack, ReorderingWithinWindowIsNotLoss) {
  sender<int> s(cfg());
  for (int i = 0; i < 8; ++i)
    s.push(i, kLen);
  auto tx = [&](int, std::uint64_t, bool) {};
  for (int i = 0; i < 8; ++i)
    s.pump(i * 20000, 1, tx);
  std::uint64_t t = 20 * kMs;
  s.on_ack(t, ack(0, {{1, 2}}), [](int) {});  // 1 overtook 0
  s.on_timer(t + 1000);
  s.on_ack(t + 2000, ack(2, {{3, 5}}), [](int) {});
  s.on_ack(t + 3000, ack(8), [](int) {});
  s.on_timer(t + 50 * kMs);
  EXPECT_EQ(s.stats().lost_frames, 0u);
  EXPECT_EQ(s.stats().retransmits, 0u);
  EXPECT_TRUE(s.empty());
}

// A duplicate reported for a retransmitted frame: the retransmit was
// needless, counted as spurious, and the reordering window widens.
TEST(Rack, DsackOfRetransmitWidensWindow) {
  sender<int> s(cfg());
  for (int i = 0; i < 6; ++i)
    s.push(i, kLen);
  auto tx = [&](int, std::uint64_t, bool) {};
  for (int i = 0; i < 6; ++i)
    s.pump(i * 20000, 1, tx);
  std::uint64_t t = 20 * kMs;
  s.on_ack(t, ack(0, {{1, 6}}), [](int) {});
  const std::uint64_t w0 = s.reo_wnd();
  t += w0 + kMs;
  s.on_timer(t);
  ASSERT_EQ(s.stats().lost_frames, 1u);
  s.pump(t, 1, tx);
  ASSERT_EQ(s.stats().retransmits, 1u);
  ack_info a = ack(6);
  a.dup_count = 1;
  a.last_dup_seq = 0;  // the original arrived late; the resend was a duplicate
  s.on_ack(t + 20 * kMs, a, [](int) {});
  EXPECT_EQ(s.stats().dup_reports, 1u);
  EXPECT_EQ(s.stats().spurious, 1u);
  EXPECT_GT(s.reo_wnd(), w0);
  // A duplicate of a frame never retransmitted (the network duplicated it)
  // is not a spurious retransmit.
  a.dup_count = 2;
  a.last_dup_seq = 4;
  s.on_ack(t + 21 * kMs, a, [](int) {});
  EXPECT_EQ(s.stats().dup_reports, 2u);
  EXPECT_EQ(s.stats().spurious, 1u);
}

// The last frames lost with nothing sent after them: a tail-loss probe
// resends the last one before any timeout.
TEST(Rack, TailLossProbeBeforeTimeout) {
  sender<int> s(cfg());
  for (int i = 0; i < 4; ++i)
    s.push(i, kLen);
  std::vector<std::uint64_t> out;
  auto tx = [&](int, std::uint64_t seq, bool) { out.push_back(seq); };
  for (int i = 0; i < 4; ++i)
    s.pump(i * 20000, 1, tx);
  s.on_ack(20 * kMs, ack(2), [](int) {});  // 2 and 3 lost, nothing after them
  out.clear();
  std::uint64_t t = 20 * kMs;
  for (; t < 200 * kMs && s.stats().tlp_probes == 0; t += 100000)
    s.on_timer(t);
  ASSERT_EQ(s.stats().tlp_probes, 1u);
  EXPECT_EQ(s.stats().rto_events, 0u);
  EXPECT_LT(t, 20 * kMs + 3 * s.srtt());
  s.pump(t, 1, tx);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], 3u);
}

// Nobody answers (a destination that comes up late): each timeout resends
// the oldest frame first — the INIT at seq 0 the receiver waits for — never
// a later one, and the backed-off timeout stays within its ceiling.
TEST(Rack, TimeoutsResendTheOldestFirst) {
  sender<int> s(cfg());
  for (int i = 0; i < 8; ++i)
    s.push(i, kLen);
  std::vector<std::uint64_t> out;
  auto tx = [&](int, std::uint64_t seq, bool) { out.push_back(seq); };
  s.pump(0, 8, tx);
  ASSERT_FALSE(out.empty());
  std::uint64_t t = 0, last = 0;
  for (int r = 0; r < 6; ++r) {
    const std::uint64_t before = s.stats().rto_events;
    for (; s.stats().rto_events == before; t += kMs)
      s.on_timer(t);
    EXPECT_LE(t - last, static_cast<std::uint64_t>(2.0 * kHz) + 2 * kMs) << "timeout " << r;
    last = t;
    out.clear();
    s.pump(t, 8, tx);
    ASSERT_FALSE(out.empty()) << "timeout " << r;
    EXPECT_EQ(out[0], 0u) << "timeout " << r;
  }
  // The receiver answers at last: everything is delivered.
  s.on_ack(t + kMs, ack(1), [](int) {});
  for (int i = 0; i < 100 && !s.empty(); ++i) {
    t += kMs;
    out.clear();
    s.pump(t, 8, tx);
    if (!out.empty())
      s.on_ack(t + kMs, ack(out.back() + 1), [](int) {});
    s.on_timer(t);
  }
  EXPECT_TRUE(s.empty());
}

// A timeout that was not a loss (the receiver was descheduled, its ACKs
// late): the first ACK after it acknowledges originals sent before it, so
// the frames it marked lost go back in flight instead of being resent.
TEST(Rack, SpuriousTimeoutIsUndone) {
  sender<int> s(cfg());
  for (int i = 0; i < 8; ++i)
    s.push(i, kLen);
  std::vector<std::uint64_t> out;
  auto tx = [&](int, std::uint64_t seq, bool) { out.push_back(seq); };
  for (int i = 0; i < 8; ++i)
    s.pump(i * 20000, 1, tx);
  ASSERT_EQ(out.size(), 8u);
  s.on_ack(20 * kMs, ack(1), [](int) {});  // an RTT sample: 20 ms
  std::uint64_t t = 20 * kMs;
  for (; s.stats().rto_events == 0; t += kMs)
    s.on_timer(t);
  out.clear();
  s.pump(t, 8, tx);
  // The tail-loss probe (frame 7) that was due, then one frame at a time.
  ASSERT_GE(out.size(), 1u);
  ASSERT_LE(out.size(), 2u);
  // The first ACK after the timeout acknowledges only frame 1 (it could be
  // the resent copy): no verdict yet. The next one brings originals 2..3.
  s.on_ack(t + 1 * kMs, ack(2), [](int) {});
  out.clear();
  s.pump(t + 1 * kMs, 1, tx);  // one more frame resent meanwhile
  s.on_ack(t + 2 * kMs, ack(4), [](int) {});
  EXPECT_EQ(s.stats().spurious_rto, 1u);
  const std::uint64_t resent = s.stats().retransmits;
  out.clear();
  s.pump(t + 3 * kMs, 8, tx);
  EXPECT_TRUE(out.empty()) << "the frames not resent yet are in flight again, not resent";
  s.on_ack(t + 4 * kMs, ack(8), [](int) {});
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.stats().retransmits, resent);
}

// --- a link simulation ---------------------------------------------------------------

namespace {

struct link_spec {
  double rate_bps = 100e6;
  std::uint64_t delay = 20 * kMs;   // one way
  double loss = 0;                  // data direction
  double ack_loss = 0;
  double reorder = 0;               // share of frames delayed by reorder_extra
  std::uint64_t reorder_extra = 1 * kMs;
  std::uint64_t queue_bytes = 0;    // 0: one BDP
  double ceiling_bps = 0;           // the senders' --link-rate
};

struct sim_result {
  double goodput_share = 0;         // delivered bytes / (link rate x time)
  std::uint64_t frames = 0, retransmits = 0, spurious = 0, lost = 0, queue_drops = 0, tlp = 0, rto = 0;
  double seconds = 0;
  std::vector<std::uint64_t> delivered_by;  // per flow, bytes in the measured interval
  std::vector<double> btl_bw_bps, min_rtt_ms;
  std::vector<cc_state> states;
};

// Flows send `frames` frames each through one bottleneck (rate, queue,
// delay, loss) to a receiver that acks as the gateway's destination does
// (every 16 frames, at once on a gap or duplicate, else within 200 us).
// Time advances in 20 us steps, the poll interval of a busy gateway.
sim_result simulate(const link_spec &l, unsigned flows, std::uint64_t frames, std::uint64_t seed,
                    std::uint64_t measure_from = 0, std::uint64_t measure_to = ~0ull) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  const double bytes_per_ns = l.rate_bps / 8 / kHz;
  const std::uint64_t bdp = static_cast<std::uint64_t>(bytes_per_ns * 2 * l.delay);
  const std::uint64_t qmax = l.queue_bytes != 0 ? l.queue_bytes : std::max<std::uint64_t>(bdp, 64 * kLen);
  struct pkt {
    std::uint64_t at;
    unsigned flow;
    std::uint64_t seq;
    bool operator>(const pkt &o) const { return at > o.at; }
  };
  struct ackp {
    std::uint64_t at;
    unsigned flow;
    ack_info a;
  };
  struct flow_state {
    std::unique_ptr<sender<int>> s;
    recv_window<int> rx{1 << 15};
    std::uint64_t pushed = 0, delivered = 0;
    std::uint32_t unacked = 0, dups = 0;
    std::uint64_t last_dup = 0, first_unacked = 0;
    bool ack_due = false, done = false;
    std::uint64_t done_at = 0;
  };
  std::vector<flow_state> f(flows);
  for (auto &x : f) {
    auto c = cfg(1 << 15);
    c.ceiling_bps = l.ceiling_bps;
    x.s = std::make_unique<sender<int>>(c);
  }
  std::priority_queue<pkt, std::vector<pkt>, std::greater<pkt>> wire;
  std::deque<ackp> acks;
  std::uint64_t link_free = 0;
  sim_result r;
  r.delivered_by.assign(flows, 0);
  const std::uint64_t step = 20000;
  std::uint64_t now = 0;
  unsigned done = 0;
  while (done < flows && now < 600ull * 1000 * kMs) {
    now += step;
    // Acks reaching the senders.
    while (!acks.empty() && acks.front().at <= now) {
      auto &x = f[acks.front().flow];
      x.s->on_ack(now, acks.front().a, [](int) {});
      acks.pop_front();
    }
    for (unsigned i = 0; i < flows; ++i) {
      auto &x = f[i];
      while (x.pushed < frames && x.s->free_slots() > 0)
        x.s->push(static_cast<int>(x.pushed++), kLen);
      x.s->on_timer(now);
      x.s->pump(now, 64, [&](int, std::uint64_t seq, bool) {
        if (u(rng) < l.loss)
          return;
        const std::uint64_t queued = link_free > now ? static_cast<std::uint64_t>((link_free - now) * bytes_per_ns) : 0;
        if (queued + kLen > qmax) {
          ++r.queue_drops;
          return;
        }
        link_free = std::max(link_free, now) + static_cast<std::uint64_t>(kLen / bytes_per_ns);
        std::uint64_t at = link_free + l.delay;
        if (u(rng) < l.reorder)
          at += l.reorder_extra;
        wire.push({at, i, seq});
      });
    }
    // Frames reaching the receiver.
    while (!wire.empty() && wire.top().at <= now) {
      const pkt p = wire.top();
      wire.pop();
      auto &x = f[p.flow];
      const auto v = x.rx.offer(p.seq, static_cast<int>(p.seq));
      if (v == recv_window<int>::verdict::duplicate) {
        ++x.dups;
        x.last_dup = p.seq;
        x.ack_due = true;
        continue;
      }
      if (v == recv_window<int>::verdict::too_far)
        continue;
      if (p.seq != x.rx.next_expected())
        x.ack_due = true;
      x.rx.drain([&](int item) {
        EXPECT_EQ(static_cast<std::uint64_t>(item), x.delivered) << "out of order";
        ++x.delivered;
        if (now >= measure_from && now < measure_to)
          r.delivered_by[p.flow] += kLen;
      });
      if (x.unacked++ == 0)
        x.first_unacked = now;
    }
    for (unsigned i = 0; i < flows; ++i) {
      auto &x = f[i];
      if (x.ack_due || x.unacked >= 16 || (x.unacked > 0 && now - x.first_unacked >= 200000)) {
        ackp a{now + l.delay, i, {}};
        x.rx.fill_ack(a.a);
        a.a.dup_count = x.dups;
        a.a.last_dup_seq = x.last_dup;
        if (u(rng) >= l.ack_loss)
          acks.push_back(a);
        x.unacked = 0;
        x.ack_due = false;
      }
      if (!x.done && x.delivered == frames) {
        x.done = true;
        x.done_at = now;
        ++done;
      }
    }
  }
  std::uint64_t end = 0;
  for (auto &x : f) {
    EXPECT_TRUE(x.done) << "flow did not finish";
    end = std::max(end, x.done_at);
    r.frames += x.s->stats().frames_sent;
    r.retransmits += x.s->stats().retransmits;
    r.spurious += x.s->stats().spurious;
    r.lost += x.s->stats().lost_frames;
    r.tlp += x.s->stats().tlp_probes;
    r.rto += x.s->stats().rto_events;
    r.btl_bw_bps.push_back(x.s->model().btl_bw() * kHz * 8);
    r.min_rtt_ms.push_back(static_cast<double>(x.s->model().min_rtt()) / kMs);
    r.states.push_back(x.s->model().state());
  }
  r.seconds = static_cast<double>(end) / kHz;
  r.goodput_share = static_cast<double>(frames * flows * kLen) / (bytes_per_ns * static_cast<double>(end));
  return r;
}

void print(const char *name, const sim_result &r) {
  std::printf("%s: %.3f s, goodput %.1f %% of the link, %llu frames, %llu retransmits, %llu lost, %llu "
              "spurious, %llu tlp, %llu rto, %llu queue drops, btl_bw %.1f Mbit/s, min RTT %.2f ms, state %s\n",
              name, r.seconds, 100 * r.goodput_share, (unsigned long long)r.frames,
              (unsigned long long)r.retransmits, (unsigned long long)r.lost, (unsigned long long)r.spurious,
              (unsigned long long)r.tlp, (unsigned long long)r.rto, (unsigned long long)r.queue_drops, r.btl_bw_bps[0] / 1e6, r.min_rtt_ms[0],
              cc_state_name(r.states[0]));
}

}  // namespace

// A clean link: the model finds the rate and the RTT, the transfer takes
// little more than bytes / rate + startup, and nothing is resent needlessly.
TEST(LinkSim, CleanLinkFillsIt) {
  link_spec l;
  l.queue_bytes = 8 * 250000;  // deep enough that STARTUP does not overflow it
  const sim_result r = simulate(l, 1, 20000, 1);  // 30 MB at 100 Mbit/s: 2.4 s
  print("clean 100 Mbit/s 40 ms", r);
  EXPECT_GT(r.goodput_share, 0.85);
  EXPECT_NEAR(r.btl_bw_bps[0], 100e6 * 1500 / 1500, 10e6);
  EXPECT_NEAR(r.min_rtt_ms[0], 40.0, 2.0);
  EXPECT_EQ(r.retransmits, 0u);
  EXPECT_EQ(r.states[0], cc_state::probe_bw);
}

// Reordering only (5 % of frames 2 ms late), no loss, and no queue (the
// sender's ceiling is below the link rate): no retransmit at all.
TEST(LinkSim, ReorderingOnlyNoRetransmit) {
  link_spec l;
  l.reorder = 0.05;
  l.reorder_extra = 2 * kMs;
  l.ceiling_bps = 95e6;
  const sim_result r = simulate(l, 1, 10000, 2);
  print("reorder 5 % by 2 ms, no queue", r);
  EXPECT_EQ(r.retransmits, 0u);
  EXPECT_EQ(r.spurious, 0u);
  EXPECT_GT(r.goodput_share, 0.8);
  // With a deep queue that STARTUP fills and DRAIN empties, RTTs fall fast
  // and a late frame can look lost: rare, and counted.
  l.ceiling_bps = 0;
  l.queue_bytes = 8 * 250000;
  const sim_result d = simulate(l, 1, 10000, 2);
  print("reorder 5 % by 2 ms, deep queue", d);
  EXPECT_LE(static_cast<double>(d.spurious), 0.005 * static_cast<double>(d.frames));
}

// Random loss is not congestion: at 1 % the link stays full, at 5 % it
// stays mostly full; every retransmit was needed.
TEST(LinkSim, RandomLossKeepsTheLinkFull) {
  for (double loss : {0.01, 0.05}) {
    link_spec l;
    l.loss = loss;
    const sim_result r = simulate(l, 1, 100000, 3);  // about 13 s: many probe cycles
    char name[64];
    std::snprintf(name, sizeof name, "loss %.0f %% 100 Mbit/s 40 ms", loss * 100);
    print(name, r);
    EXPECT_GT(r.goodput_share, loss < 0.02 ? 0.88 : 0.85) << name;
    EXPECT_LE(static_cast<double>(r.spurious), 0.005 * static_cast<double>(r.frames)) << name;
  }
}

// A long lossy path (RTT 200 ms, 5 % loss): the link stays mostly full.
TEST(LinkSim, LongLossyPath) {
  link_spec l;
  l.delay = 100 * kMs;
  l.loss = 0.05;
  const sim_result r = simulate(l, 1, 100000, 4);
  print("loss 5 % 100 Mbit/s 200 ms", r);
  EXPECT_GT(r.goodput_share, 0.65);
  EXPECT_LE(static_cast<double>(r.spurious), 0.005 * static_cast<double>(r.frames));
}

// Loss on the ACK path costs nothing but ACKs.
TEST(LinkSim, AckLossIsHarmless) {
  link_spec l;
  l.ack_loss = 0.05;
  l.queue_bytes = 4 * 250000;
  const sim_result r = simulate(l, 1, 10000, 4);
  print("ack loss 5 %", r);
  EXPECT_GT(r.goodput_share, 0.8);
  EXPECT_LE(static_cast<double>(r.spurious), 0.005 * static_cast<double>(r.frames));
}

// Two senders through one bottleneck each get 40-60 % of it once both run.
TEST(LinkSim, TwoSendersShareTheBottleneck) {
  link_spec l;
  l.rate_bps = 50e6;
  l.delay = 10 * kMs;
  const sim_result r = simulate(l, 2, 40000, 5, 2000 * kMs, 8000 * kMs);
  print("two flows 50 Mbit/s 20 ms", r);
  const double a = static_cast<double>(r.delivered_by[0]), b = static_cast<double>(r.delivered_by[1]);
  ASSERT_GT(a + b, 0);
  std::printf("shares: %.1f %% / %.1f %%, link use %.1f %%\n", 100 * a / (a + b), 100 * b / (a + b),
              100 * (a + b) * 8 / (l.rate_bps * 6));
  EXPECT_GT(a / (a + b), 0.4);
  EXPECT_LT(a / (a + b), 0.6);
  EXPECT_GT((a + b) * 8 / (l.rate_bps * 6), 0.85);
}

// A random lossy, duplicating, reordering channel: every frame comes out
// once, in order (the property the decoder relies on).
TEST(LinkSim, EveryFrameOnceInOrder) {
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    link_spec l;
    l.rate_bps = 20e6;
    l.delay = 2 * kMs;
    l.loss = 0.1;
    l.ack_loss = 0.1;
    l.reorder = 0.1;
    const sim_result r = simulate(l, 1, 3000, seed);
    EXPECT_GT(r.goodput_share, 0.3) << "seed " << seed;
  }
}
