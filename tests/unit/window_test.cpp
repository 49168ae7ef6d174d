// window_test.cpp — reliable-delivery windows (dataplane/window.h): in-order
// release under loss, reordering and duplication; selective acks; resend on
// timeout; a random lossy channel delivers every frame exactly once.
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <random>
#include <set>

#include "window.h"

using namespace hde::dp;

TEST(SendWindow, CumulativeAndSelectiveAcks) {
  send_window<int> w(16);
  for (int i = 0; i < 10; ++i)
    w.push(i);
  EXPECT_EQ(w.unsent(), 10u);
  for (int i = 0; i < 6; ++i)
    EXPECT_EQ(w.send_next(100), i);
  EXPECT_EQ(w.in_flight(), 6u);
  sack_info a;
  a.cum = 2;             // 0, 1 arrived
  a.sack[0] = 0b101;     // 3 and 5 arrived (cum + 1 + 0, cum + 1 + 2)
  std::vector<int> freed;
  EXPECT_EQ(w.ack(a, [&](auto &s) { freed.push_back(s.item); }), 4u);
  std::sort(freed.begin(), freed.end());
  EXPECT_EQ(freed, (std::vector<int>{0, 1, 3, 5}));
  EXPECT_EQ(w.base(), 2u);
  // The same ack again frees nothing.
  EXPECT_EQ(w.ack(a, [&](auto &) { ADD_FAILURE(); }), 0u);
  // Frames never sent cannot be acked.
  a.cum = 9;
  freed.clear();
  w.ack(a, [&](auto &s) { freed.push_back(s.item); });
  std::sort(freed.begin(), freed.end());
  EXPECT_EQ(freed, (std::vector<int>{2, 4}));
  EXPECT_EQ(w.base(), 6u);
  EXPECT_EQ(w.unsent(), 4u);
}

TEST(SendWindow, ExpireResendsOnlyUnackedOldFrames) {
  send_window<int> w(16);
  for (int i = 0; i < 4; ++i) {
    w.push(i);
    w.send_next(10 * (i + 1));  // sent at 10, 20, 30, 40
  }
  sack_info a;
  a.cum = 0;
  a.sack[0] = 0b1;  // seq 1 acked
  w.ack(a, [](auto &) {});
  std::vector<std::uint64_t> resent;
  EXPECT_EQ(w.expire(35, 10, [&](std::uint64_t seq, auto &) { resent.push_back(seq); }), 2u);
  EXPECT_EQ(resent, (std::vector<std::uint64_t>{0, 2}));
}

TEST(RecvWindow, ReordersAndRejectsDuplicates) {
  recv_window<int> r(8);
  std::vector<int> got;
  auto take = [&](int v) { got.push_back(v); };
  EXPECT_EQ(r.offer(1, 11), recv_window<int>::verdict::stored);
  EXPECT_EQ(r.drain(take), 0u);
  auto s = r.sack();
  EXPECT_EQ(s.cum, 0u);
  EXPECT_EQ(s.sack[0], 0b1u);  // seq 1 held
  EXPECT_EQ(r.offer(1, 11), recv_window<int>::verdict::duplicate);
  EXPECT_EQ(r.offer(0, 10), recv_window<int>::verdict::stored);
  EXPECT_EQ(r.drain(take), 2u);
  EXPECT_EQ(got, (std::vector<int>{10, 11}));
  EXPECT_EQ(r.offer(0, 10), recv_window<int>::verdict::duplicate);
  EXPECT_EQ(r.offer(2 + 8, 0), recv_window<int>::verdict::too_far);
  EXPECT_EQ(r.sack().cum, 2u);
}

// A channel that drops, duplicates and reorders both ways; the sender
// resends on timeout. Every frame must come out once, in order.
TEST(Windows, LossyChannelDeliversEverythingInOrder) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    send_window<std::uint64_t> tx(64);
    recv_window<std::uint64_t> rx(64);
    std::deque<std::uint64_t> wire;       // frames in flight (seq)
    std::deque<sack_info> back;           // acks in flight
    std::vector<std::uint64_t> delivered;
    const std::uint64_t total = 2000;
    std::uint64_t queued = 0, now = 0;
    while (delivered.size() < total && now < 200000) {
      ++now;
      while (queued < total && tx.free_slots() > 0)
        tx.push(queued++);
      while (tx.unsent() > 0 && tx.in_flight() < 32)
        wire.push_back(tx.send_next(now));
      tx.expire(now > 50 ? now - 50 : 0, 8, [&](std::uint64_t seq, auto &s) {
        s.sent_tsc = now;
        wire.push_back(seq);
      });
      // Channel: lose 10 %, duplicate 5 %, reorder by swapping.
      if (wire.size() > 1 && rng() % 4 == 0)
        std::swap(wire[0], wire[1 + rng() % (wire.size() - 1)]);
      if (!wire.empty()) {
        std::uint64_t f = wire.front();
        wire.pop_front();
        if (rng() % 20 == 0)
          wire.push_back(f);
        if (rng() % 10 != 0) {
          rx.offer(f, f);
          rx.drain([&](std::uint64_t v) { delivered.push_back(v); });
          if (rng() % 10 != 0)
            back.push_back(rx.sack());
        }
      }
      if (!back.empty() && rng() % 2 == 0) {
        tx.ack(back.front(), [](auto &) {});
        back.pop_front();
      }
    }
    ASSERT_EQ(delivered.size(), total) << "seed " << seed;
    for (std::uint64_t i = 0; i < total; ++i)
      ASSERT_EQ(delivered[i], i) << "seed " << seed;
  }
}
