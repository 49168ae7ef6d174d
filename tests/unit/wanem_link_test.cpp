// wanem_link_test.cpp — hde-wanem's link model (perf/wanem/link_model.h,
// delay_line.h, options.h) without DPDK: exact serialization and delay,
// tail drop at the configured buffer, jitter that never reorders,
// Gilbert-Elliott loss rate and burst length, reorder/dup/corrupt
// probabilities, and clear errors for bad specs and options.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "delay_line.h"
#include "link_model.h"
#include "options.h"

using namespace hde::wanem;

namespace {

constexpr double kNs = 1e9;  // tests count time in nanoseconds

link_spec spec_of(const std::string &text) {
  link_spec s;
  std::string err;
  EXPECT_TRUE(parse_link_spec(text, s, err)) << err;
  return s;
}

std::string spec_error(const std::string &text) {
  link_spec s;
  std::string err;
  EXPECT_FALSE(parse_link_spec(text, s, err, "--ab")) << text;
  return err;
}

}  // namespace

// ------------------------------------------------------------ rate, delay

TEST(WanemLink, BackToBackFramesDepartAtTheExactRate) {
  // 100 Mbit/s, 1500-byte frames: (1500 + 24) * 8 bits = 121.92 us each.
  link_model m(spec_of("rate=100m,queue_kb=100000"), kNs);
  for (int i = 0; i < 1000; ++i) {
    const verdict v = m.on_frame(0, 1500);
    ASSERT_EQ(v.f, fate::deliver);
    EXPECT_EQ(v.departure, std::uint64_t(121920) * (i + 1)) << i;
    EXPECT_EQ(v.due, v.departure);  // no delay
  }
}

TEST(WanemLink, FractionalTicksDoNotDrift) {
  // 3 Mbit/s, 100-byte frames: 124 * 8 / 3e6 s = 330666.67 ns, not a whole
  // number of ticks; after 3000 frames the link has worked exactly 992 ms.
  link_model m(spec_of("rate=3m,queue_kb=100000"), kNs);
  verdict v;
  for (int i = 0; i < 3000; ++i)
    v = m.on_frame(0, 100);
  EXPECT_NEAR(double(v.departure), 992e6, 1.0);
}

TEST(WanemLink, IdleLinkStartsSerializingOnArrival) {
  link_model m(spec_of("rate=8m,delay_ms=20"), kNs);  // 1 byte per us
  verdict v = m.on_frame(1000, 976);                   // 1000 wire bytes: 1 ms
  EXPECT_EQ(v.departure, 1000u + 1000000u);
  EXPECT_EQ(v.due, v.departure + 20000000u);
  v = m.on_frame(50000000, 76);  // long after: the link is idle again
  EXPECT_EQ(v.departure, 50000000u + 100000u);
  EXPECT_EQ(v.due, v.departure + 20000000u);
}

TEST(WanemLink, UnlimitedRateOnlyDelays) {
  link_model m(spec_of("delay_ms=12.5"), kNs);
  EXPECT_TRUE(m.unlimited());
  for (std::uint64_t t = 0; t < 100; ++t) {
    const verdict v = m.on_frame(t, 1500);
    EXPECT_EQ(v.departure, t);
    EXPECT_EQ(v.due, t + 12500000u);
  }
  EXPECT_EQ(m.backlog_bytes(100), 0.0);
}

TEST(WanemLink, TailDropAtTheConfiguredBuffer) {
  // 10 Mbit/s (800 ns per byte), 1000-byte frames (1024 wire bytes),
  // a 15.5 KiB buffer: 15 frames fit, the 16th and later are dropped.
  link_model m(spec_of("rate=10m,queue_kb=15.5"), kNs);
  EXPECT_EQ(m.queue_limit(), 15872u);
  int ok = 0, dropped = 0;
  for (int i = 0; i < 40; ++i)
    (m.on_frame(0, 1000).f == fate::deliver ? ok : dropped)++;
  EXPECT_EQ(ok, 15);
  EXPECT_EQ(dropped, 25);
  EXPECT_NEAR(m.backlog_bytes(0), 15 * 1024, 1e-6);
  // Five frame times later five more fit, not six.
  const std::uint64_t t = 5 * 1024 * 800;
  EXPECT_NEAR(m.backlog_bytes(t), 10 * 1024, 1e-6);
  ok = 0;
  for (int i = 0; i < 10; ++i)
    ok += m.on_frame(t, 1000).f == fate::deliver;
  EXPECT_EQ(ok, 5);
}

TEST(WanemLink, DefaultQueueIsBdpBased) {
  // 1.5 x 50 Mbit/s x (10 + 5) ms = 140625 bytes.
  EXPECT_EQ(queue_bytes(spec_of("rate=50m,delay_ms=10")), 140625u);
  EXPECT_EQ(queue_bytes(spec_of("rate=1m")), 32u * 1024);       // the floor
  EXPECT_EQ(queue_bytes(spec_of("delay_ms=10")), 1u << 20);     // unlimited rate
  EXPECT_EQ(queue_bytes(spec_of("rate=1g,queue_kb=64")), 65536u);
}

// ------------------------------------------------------------ jitter

TEST(WanemLink, JitterKeepsOrderAndStaysInRange) {
  // Frames 5 ms apart, delay 10 ms +- 2 ms uniform: never clamped, so the
  // delays are the distribution itself.
  link_model m(spec_of("delay_ms=10,jitter_ms=2,seed=3"), kNs);
  std::uint64_t last = 0;
  double sum = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const std::uint64_t now = std::uint64_t(i) * 5000000;
    const verdict v = m.on_frame(now, 200);
    ASSERT_GE(v.due, last) << "jitter reordered frame " << i;
    last = v.due;
    const double d = double(v.due - now) / 1e6;
    ASSERT_GE(d, 8.0 - 1e-6);
    ASSERT_LE(d, 12.0 + 1e-6);
    sum += d;
  }
  EXPECT_NEAR(sum / n, 10.0, 0.03);
}

TEST(WanemLink, DenseFramesWithJitterAreClampedNotReordered) {
  link_model m(spec_of("delay_ms=5,jitter_ms=3,jitter_dist=normal,seed=9"), kNs);
  std::uint64_t last = 0;
  for (int i = 0; i < 100000; ++i) {
    const verdict v = m.on_frame(std::uint64_t(i) * 1000, 64);  // 1 us apart
    ASSERT_GE(v.due, last);
    ASSERT_GE(v.due, std::uint64_t(i) * 1000);  // never before its arrival
    last = v.due;
  }
}

TEST(WanemLink, NormalJitterHasTheGivenSpread) {
  rng r(11);
  double s = 0, s2 = 0;
  const int n = 1000000;
  for (int i = 0; i < n; ++i) {
    const double x = r.normal();
    s += x;
    s2 += x * x;
  }
  EXPECT_NEAR(s / n, 0.0, 0.005);
  EXPECT_NEAR(std::sqrt(s2 / n - (s / n) * (s / n)), 1.0, 0.005);
}

// ------------------------------------------------------------ loss

namespace {

struct loss_stats {
  double rate;
  double mean_burst;
};

loss_stats run_loss(double loss, double burst, std::uint64_t seed, int n) {
  gilbert_elliott ge(loss, burst);
  rng r(seed);
  long lost = 0, bursts = 0;
  bool prev = false;
  for (int i = 0; i < n; ++i) {
    const bool l = ge.lose(r);
    lost += l;
    if (l && !prev)
      ++bursts;
    prev = l;
  }
  return {double(lost) / n, bursts ? double(lost) / double(bursts) : 0};
}

}  // namespace

TEST(WanemLink, GilbertElliottLossRateAndBurstLength) {
  for (const auto &[loss, burst] : std::vector<std::pair<double, double>>{{0.05, 4}, {0.01, 2}, {0.2, 10}}) {
    gilbert_elliott ge(loss, burst);
    EXPECT_TRUE(ge.bursty());
    EXPECT_NEAR(ge.p_bad_to_good(), 1 / burst, 1e-12);
    const loss_stats st = run_loss(loss, burst, 42, 2000000);
    EXPECT_NEAR(st.rate, loss, loss * 0.05) << "loss=" << loss << " burst=" << burst;
    EXPECT_NEAR(st.mean_burst, burst, burst * 0.05) << "loss=" << loss << " burst=" << burst;
  }
}

TEST(WanemLink, IndependentLossWithoutBurst) {
  const loss_stats st = run_loss(0.1, 1, 7, 1000000);
  EXPECT_NEAR(st.rate, 0.1, 0.002);
  // Bernoulli losses: runs of mean length 1 / (1 - p).
  EXPECT_NEAR(st.mean_burst, 1 / 0.9, 0.01);
}

TEST(WanemLink, LossThroughTheModelAndSeeds) {
  auto count = [](const std::string &spec, std::uint64_t salt) {
    link_model m(spec_of(spec), kNs, salt);
    std::vector<bool> lost;
    for (int i = 0; i < 100000; ++i)
      lost.push_back(m.on_frame(std::uint64_t(i) * 10000, 100).f == fate::lost);
    return lost;
  };
  const auto a = count("loss=0.02,burst=3,seed=5", 0);
  EXPECT_EQ(a, count("loss=0.02,burst=3,seed=5", 0));  // reproducible
  EXPECT_NE(a, count("loss=0.02,burst=3,seed=6", 0));  // the seed matters
  EXPECT_NE(a, count("loss=0.02,burst=3,seed=5", 1));  // and so does the direction
  long n = 0;
  for (bool l : a)
    n += l;
  EXPECT_NEAR(double(n) / double(a.size()), 0.02, 0.004);
  EXPECT_EQ(count("loss=0", 0), std::vector<bool>(100000, false));
  EXPECT_EQ(count("loss=1", 0), std::vector<bool>(100000, true));
}

// ------------------------------------------------------------ reorder, dup, corrupt

TEST(WanemLink, ReorderDupAndCorruptProbabilities) {
  link_model m(spec_of("delay_ms=1,reorder=0.01,reorder_ms=3,dup=0.001,corrupt=0.002,seed=13"), kNs);
  const int n = 1000000;
  long held = 0, dups = 0, corrupt = 0;
  for (int i = 0; i < n; ++i) {
    const std::uint64_t now = std::uint64_t(i) * 1000;
    const verdict v = m.on_frame(now, 100);
    ASSERT_EQ(v.f, fate::deliver);
    if (v.held) {
      ++held;
      EXPECT_EQ(v.held_due, v.due + 3000000u);
    }
    dups += v.dup;
    if (v.corrupt_bit >= 0) {
      ++corrupt;
      ASSERT_GE(v.corrupt_bit, 14 * 8);  // never the Ethernet header
      ASSERT_LT(v.corrupt_bit, 100 * 8);
    }
  }
  EXPECT_NEAR(double(held) / n, 0.01, 0.0005);
  EXPECT_NEAR(double(dups) / n, 0.001, 0.0002);
  EXPECT_NEAR(double(corrupt) / n, 0.002, 0.0003);
}

TEST(WanemLink, CorruptionCoversEveryBitPastTheHeader) {
  link_model m(spec_of("corrupt=1,seed=2"), kNs);
  std::vector<int> hits(20 * 8, 0);
  for (int i = 0; i < 100000; ++i) {
    const verdict v = m.on_frame(0, 20);
    ASSERT_GE(v.corrupt_bit, 14 * 8);
    ASSERT_LT(v.corrupt_bit, 20 * 8);
    ++hits[v.corrupt_bit];
  }
  for (int b = 14 * 8; b < 20 * 8; ++b)
    EXPECT_GT(hits[b], 1500) << b;  // 100000 / 48 = 2083 expected each
  EXPECT_EQ(m.on_frame(0, 14).corrupt_bit, -1);  // nothing past the header
}

TEST(WanemLink, DuplicateIsSerializedAfterTheOriginal) {
  link_model m(spec_of("rate=8m,dup=1"), kNs);  // 1 us per byte
  const verdict v = m.on_frame(0, 976);
  ASSERT_TRUE(v.dup);
  const verdict c = m.on_copy(0, 976);
  EXPECT_FALSE(c.dup);
  EXPECT_EQ(v.departure, 1000000u);
  EXPECT_EQ(c.departure, 2000000u);
}

// ------------------------------------------------------------ delay line

TEST(WanemDelayLine, MergesHeldFramesByDueTime) {
  delay_line<int> dl(8, 4);
  EXPECT_EQ(dl.next_due(), delay_line<int>::kNever);
  ASSERT_TRUE(dl.push(10, 1));
  ASSERT_TRUE(dl.push_held(25, 2));  // held back: due after 3 and 4
  ASSERT_TRUE(dl.push(20, 3));
  ASSERT_TRUE(dl.push(30, 4));
  EXPECT_EQ(dl.next_due(), 10u);
  std::vector<int> out;
  EXPECT_EQ(dl.pop_due(5, 32, [&](int x, std::uint64_t) { out.push_back(x); }), 0u);
  EXPECT_EQ(dl.pop_due(26, 32, [&](int x, std::uint64_t) { out.push_back(x); }), 3u);
  EXPECT_EQ(out, (std::vector<int>{1, 3, 2}));
  std::uint64_t due = 0;
  EXPECT_EQ(dl.pop_due(30, 1, [&](int, std::uint64_t d) { due = d; }), 1u);
  EXPECT_EQ(due, 30u);
  dl.push(40, 4);
  EXPECT_EQ(dl.pop_due(100, 32, [&](int x, std::uint64_t) { out.push_back(x); }), 1u);
  EXPECT_EQ(out, (std::vector<int>{1, 3, 2, 4}));
  EXPECT_EQ(dl.size(), 0u);
}

TEST(WanemDelayLine, CapacityAndBurstLimit) {
  delay_line<int> dl(4, 2);
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(dl.push(std::uint64_t(i), i));
  EXPECT_TRUE(dl.full());
  EXPECT_FALSE(dl.push(9, 9));
  ASSERT_TRUE(dl.push_held(5, 5));
  ASSERT_TRUE(dl.push_held(6, 6));
  EXPECT_FALSE(dl.push_held(7, 7));
  int n = 0;
  EXPECT_EQ(dl.pop_due(100, 3, [&](int, std::uint64_t) { ++n; }), 3u);  // at most `max`
  int drained = 0;
  dl.drain([&](int) { ++drained; });
  EXPECT_EQ(drained, 3);
}

TEST(WanemDelayLine, ReorderEndToEnd) {
  // Frames every 100 us, 1 % held back 1 ms: each held frame comes out
  // after the frames that arrived within the next millisecond.
  link_model m(spec_of("delay_ms=2,reorder=0.01,reorder_ms=1,seed=4"), kNs);
  delay_line<int> dl(1 << 17, 1 << 11);
  const int n = 100000;
  int held = 0;
  for (int i = 0; i < n; ++i) {
    const verdict v = m.on_frame(std::uint64_t(i) * 100000, 100);
    if (v.held) {
      ASSERT_TRUE(dl.push_held(v.held_due, i));
      ++held;
    } else {
      ASSERT_TRUE(dl.push(v.due, i));
    }
  }
  std::vector<int> out;
  dl.pop_due(~0ULL - 1, std::size_t(n), [&](int x, std::uint64_t) { out.push_back(x); });
  ASSERT_EQ(out.size(), std::size_t(n));
  int late = 0, max_seen = -1;
  for (int x : out) {
    if (x < max_seen)
      ++late;
    max_seen = std::max(max_seen, x);
  }
  // Every held frame is overtaken (frames 100 us apart, held 1 ms), but
  // perhaps one in the last millisecond; nothing else is out of order.
  EXPECT_LE(late, held);
  EXPECT_GE(late, held - 1);
  EXPECT_NEAR(double(held) / n, 0.01, 0.001);
}

// ------------------------------------------------------------ parsing

TEST(WanemSpec, ParsesEveryKey) {
  const link_spec s = spec_of(
      "rate=1.5g,delay_ms=20.5,jitter_ms=2,jitter_dist=normal,loss=0.01,burst=4,reorder=0.02,reorder_ms=3,"
      "dup=0.001,corrupt=0.0001,queue_kb=512,seed=18446744073709551615");
  EXPECT_EQ(s.rate_bps, 1.5e9);
  EXPECT_EQ(s.delay_ms, 20.5);
  EXPECT_EQ(s.jitter_ms, 2);
  EXPECT_EQ(s.dist, jitter_dist::normal);
  EXPECT_EQ(s.loss, 0.01);
  EXPECT_EQ(s.burst, 4);
  EXPECT_EQ(s.reorder, 0.02);
  EXPECT_EQ(s.reorder_ms, 3);
  EXPECT_EQ(s.dup, 0.001);
  EXPECT_EQ(s.corrupt, 0.0001);
  EXPECT_EQ(s.queue_kb, 512);
  EXPECT_EQ(s.seed, 18446744073709551615ULL);
  // And back: to_string gives a spec that parses to the same thing.
  const link_spec t = spec_of(to_string(s));
  EXPECT_EQ(to_string(t), to_string(s));
}

TEST(WanemSpec, RateSuffixes) {
  double r = 0;
  EXPECT_TRUE(parse_rate("100m", r));
  EXPECT_EQ(r, 100e6);
  EXPECT_TRUE(parse_rate("64k", r));
  EXPECT_EQ(r, 64e3);
  EXPECT_TRUE(parse_rate("2G", r));
  EXPECT_EQ(r, 2e9);
  EXPECT_TRUE(parse_rate("12345", r));
  EXPECT_EQ(r, 12345);
  EXPECT_TRUE(parse_rate("0", r));
  EXPECT_EQ(r, 0);
  EXPECT_EQ(spec_of("rate=0").rate_bps, 0);
  EXPECT_EQ(format_rate(50e6), "50m");
  EXPECT_EQ(format_rate(1.5e9), "1.5g");
}

TEST(WanemSpec, LaterSpecRefinesEarlierAndEmptyIsNothing) {
  link_spec s = spec_of("rate=10m,delay_ms=5");
  std::string err;
  ASSERT_TRUE(parse_link_spec("delay_ms=7,", s, err)) << err;
  EXPECT_EQ(s.rate_bps, 10e6);
  EXPECT_EQ(s.delay_ms, 7);
  ASSERT_TRUE(parse_link_spec("", s, err));
  EXPECT_EQ(s.delay_ms, 7);
}

TEST(WanemSpec, ErrorsSayWhatIsWrong) {
  auto has = [](const std::string &err, const std::string &what) {
    return err.find(what) != std::string::npos;
  };
  std::string e = spec_error("rate=10m,foo=1");
  EXPECT_TRUE(has(e, "--ab: unknown key 'foo'")) << e;
  EXPECT_TRUE(has(e, "delay_ms")) << e;  // lists the keys
  e = spec_error("delay_ms=abc");
  EXPECT_TRUE(has(e, "delay_ms: 'abc' is not a number")) << e;
  e = spec_error("delay_ms=10ms");
  EXPECT_TRUE(has(e, "delay_ms: '10ms' is not a number")) << e;
  e = spec_error("loss=nan");
  EXPECT_TRUE(has(e, "loss: 'nan'")) << e;
  e = spec_error("jitter_ms=inf");
  EXPECT_TRUE(has(e, "jitter_ms: 'inf'")) << e;
  e = spec_error("delay_ms=1e999");
  EXPECT_TRUE(has(e, "not a finite number")) << e;
  e = spec_error("delay_ms=-1");
  EXPECT_TRUE(has(e, "delay_ms: -1 is negative")) << e;
  e = spec_error("rate=-5m");
  EXPECT_TRUE(has(e, "rate: -5m is negative")) << e;
  e = spec_error("rate=10x");
  EXPECT_TRUE(has(e, "rate: '10x' is not a rate")) << e;
  e = spec_error("rate=0x10");
  EXPECT_TRUE(has(e, "rate")) << e;
  e = spec_error("loss=1.5");
  EXPECT_TRUE(has(e, "loss: 1.5 is not a probability")) << e;
  e = spec_error("burst=0.5");
  EXPECT_TRUE(has(e, "burst: 0.5")) << e;
  e = spec_error("loss=0.9,burst=2");
  EXPECT_TRUE(has(e, "Gilbert-Elliott")) << e;
  e = spec_error("rate");
  EXPECT_TRUE(has(e, "'rate' is not key=value")) << e;
  e = spec_error("=5");
  EXPECT_TRUE(has(e, "not key=value")) << e;
  e = spec_error("delay_ms=");
  EXPECT_TRUE(has(e, "delay_ms: no value")) << e;
  e = spec_error("delay_ms=1,delay_ms=2");
  EXPECT_TRUE(has(e, "key 'delay_ms' given twice")) << e;
  e = spec_error("seed=1.5");
  EXPECT_TRUE(has(e, "seed: '1.5'")) << e;
  e = spec_error("seed=99999999999999999999");
  EXPECT_TRUE(has(e, "seed")) << e;
  e = spec_error("jitter_dist=pareto");
  EXPECT_TRUE(has(e, "jitter_dist: 'pareto'")) << e;
  e = spec_error("delay_ms=100000");
  EXPECT_TRUE(has(e, "delay_ms: 100000 is out of range")) << e;
  e = spec_error("queue_kb=0");
  EXPECT_TRUE(has(e, "queue_kb")) << e;
  e = spec_error("reorder=0.1,reorder_ms=0");
  EXPECT_TRUE(has(e, "reorder_ms")) << e;
  e = spec_error("delay_ms= 5");
  EXPECT_TRUE(has(e, "delay_ms: ' 5' is not a number")) << e;
  // A failed parse leaves the spec as it was.
  link_spec s = spec_of("delay_ms=3");
  std::string err;
  EXPECT_FALSE(parse_link_spec("delay_ms=9,loss=2", s, err));
  EXPECT_EQ(s.delay_ms, 3);
}

// ------------------------------------------------------------ options

namespace {

parse_status parse(std::vector<std::string> args, options &o, std::string &err) {
  args.insert(args.begin(), "hde-wanem");
  std::vector<char *> argv;
  for (auto &a : args)
    argv.push_back(a.data());
  return parse_options(static_cast<int>(argv.size()), argv.data(), o, err);
}

}  // namespace

TEST(WanemOptions, BothThenPerDirection) {
  options o;
  std::string err;
  ASSERT_EQ(parse({"--ab", "rate=50m", "--both", "delay_ms=10,loss=0.01", "--ba=loss=0", "--stats-period", "0.5"},
                  o, err),
            parse_status::ok)
      << err;
  EXPECT_EQ(o.ab.rate_bps, 50e6);
  EXPECT_EQ(o.ab.delay_ms, 10);
  EXPECT_EQ(o.ab.loss, 0.01);
  EXPECT_EQ(o.ba.rate_bps, 0);
  EXPECT_EQ(o.ba.delay_ms, 10);
  EXPECT_EQ(o.ba.loss, 0);
  EXPECT_EQ(o.stats_period_s, 0.5);
  EXPECT_EQ(o.hold, 16384u);
  EXPECT_EQ(o.idle_sleep_us, 50u);
  EXPECT_FALSE(o.quiet);
  options q;
  ASSERT_EQ(parse({"--quiet", "--idle-sleep-us=0", "--hold", "4096", "--mtu", "9000"}, q, err), parse_status::ok) << err;
  EXPECT_TRUE(q.quiet);
  EXPECT_EQ(q.idle_sleep_us, 0u);
  EXPECT_EQ(q.hold, 4096u);
  EXPECT_EQ(q.mtu, 9000u);
}

TEST(WanemOptions, Errors) {
  options o;
  std::string err;
  EXPECT_EQ(parse({"--bogus"}, o, err), parse_status::error);
  EXPECT_NE(err.find("unknown option '--bogus'"), std::string::npos) << err;
  EXPECT_EQ(parse({"--ab"}, o, err), parse_status::error);
  EXPECT_NE(err.find("--ab needs a value"), std::string::npos) << err;
  EXPECT_EQ(parse({"--ab", "delay_ms=x"}, o, err), parse_status::error);
  EXPECT_NE(err.find("--ab: delay_ms: 'x' is not a number"), std::string::npos) << err;
  EXPECT_EQ(parse({"--both", "loss=2"}, o, err), parse_status::error);
  EXPECT_NE(err.find("--both: loss"), std::string::npos) << err;
  EXPECT_EQ(parse({"--stats-period", "-1"}, o, err), parse_status::error);
  EXPECT_NE(err.find("--stats-period"), std::string::npos) << err;
  EXPECT_EQ(parse({"--stats-period", "nan"}, o, err), parse_status::error);
  EXPECT_EQ(parse({"--hold", "10"}, o, err), parse_status::error);
  EXPECT_EQ(parse({"--mtu", "9000x"}, o, err), parse_status::error);
  EXPECT_EQ(parse({"--idle-sleep-us", "20000"}, o, err), parse_status::error);
  EXPECT_NE(err.find("--idle-sleep-us"), std::string::npos) << err;
  EXPECT_EQ(parse({"--help"}, o, err), parse_status::help);
}

TEST(WanemOptions, MbufRoomAndHold) {
  EXPECT_EQ(frame_room(1500), 2048u);
  EXPECT_EQ(frame_room(9000), 9216u);
  EXPECT_EQ(default_hold(1500), 16384u);
  EXPECT_EQ(default_hold(9000), 2048u);
}
