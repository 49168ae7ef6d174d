// addressing_test.cpp — real addressing without DPDK: ARP packets built and
// parsed byte for byte (dataplane/arp.h), the resolver's table, retries
// with back-off, refresh, learning rules and static MACs; the terms a
// destination settles from a source's INIT (negotiate.h); the ACK fields
// that carry them (sack.h); a sender keeping to the receiver's window
// (sender.h); and the INIT an encoder writes.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "arp.h"
#include "engine/encoder.h"
#include "negotiate.h"
#include "sack.h"
#include "sender.h"

using namespace hde;
using namespace hde::dp;

namespace {

constexpr double kHz = 1e9;  // ticks are nanoseconds
constexpr std::uint64_t kMs = 1000000;
constexpr std::uint32_t kOurIp = 0xC6120001, kPeerIp = 0xC6120002, kOtherIp = 0xC6120009;
const arp::mac kOurMac{0x02, 0, 0, 0, 0, 0x01};
const arp::mac kPeerMac{0x02, 0, 0, 0, 0, 0x02};
const arp::mac kOtherMac{0x02, 0, 0, 0, 0, 0x09};

arp::resolver make(double refresh_s = 30.0) {
  arp::resolver::config c;
  c.our_mac = kOurMac;
  c.our_ip = kOurIp;
  c.hz = kHz;
  c.refresh_s = refresh_s;
  return arp::resolver(c);
}

// p as it travels: written to bytes and parsed back.
arp::packet on_wire(const arp::packet &p) {
  std::byte b[arp::kFrameLen];
  EXPECT_EQ(arp::write(p, b), arp::kFrameLen);
  arp::packet q;
  EXPECT_TRUE(arp::parse(b, sizeof b, q));
  return q;
}

}  // namespace

// --- packets -----------------------------------------------------------------------

TEST(Arp, RequestBytesAreRfc826) {
  const arp::packet p = arp::make_request(kOurMac, kOurIp, kPeerIp);
  std::byte b[arp::kFrameLen];
  ASSERT_EQ(arp::write(p, b), 60u);
  const std::uint8_t want[42] = {
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff,  // broadcast
      0x02, 0, 0, 0, 0, 0x01,              // us
      0x08, 0x06,                          // ARP
      0x00, 0x01, 0x08, 0x00, 6, 4,        // Ethernet, IPv4, lengths
      0x00, 0x01,                          // request
      0x02, 0, 0, 0, 0, 0x01, 198, 18, 0, 1,  // sender
      0, 0, 0, 0, 0, 0, 198, 18, 0, 2,        // target
  };
  EXPECT_EQ(std::memcmp(b, want, sizeof want), 0);
  for (std::size_t i = 42; i < 60; ++i)
    EXPECT_EQ(b[i], std::byte{0}) << "padding byte " << i;
}

TEST(Arp, ReplyRoundTrip) {
  const arp::packet q = on_wire(arp::make_request(kPeerMac, kPeerIp, kOurIp));
  EXPECT_EQ(q.oper, arp::op::request);
  EXPECT_EQ(q.sha, kPeerMac);
  EXPECT_EQ(q.spa, kPeerIp);
  EXPECT_EQ(q.tpa, kOurIp);
  EXPECT_EQ(q.eth_dst, arp::kBroadcast);
  const arp::packet r = on_wire(arp::make_reply(q, kOurMac));
  EXPECT_EQ(r.oper, arp::op::reply);
  EXPECT_EQ(r.eth_dst, kPeerMac);  // unicast, to the asker
  EXPECT_EQ(r.eth_src, kOurMac);
  EXPECT_EQ(r.sha, kOurMac);
  EXPECT_EQ(r.spa, kOurIp);
  EXPECT_EQ(r.tha, kPeerMac);
  EXPECT_EQ(r.tpa, kPeerIp);
}

TEST(Arp, ParseRejectsWhatIsNotIpv4OverEthernetArp) {
  std::byte b[arp::kFrameLen];
  arp::write(arp::make_request(kOurMac, kOurIp, kPeerIp), b);
  arp::packet p;
  EXPECT_FALSE(arp::parse(b, 41, p));  // truncated
  auto mutate = [&](std::size_t at, std::uint8_t v) {
    std::byte c[arp::kFrameLen];
    std::memcpy(c, b, sizeof c);
    c[at] = std::byte{v};
    return arp::parse(c, sizeof c, p);
  };
  EXPECT_FALSE(mutate(12, 0x86));  // EtherType IPv6
  EXPECT_FALSE(mutate(15, 6));     // hardware type 6
  EXPECT_FALSE(mutate(16, 0x86));  // protocol type
  EXPECT_FALSE(mutate(18, 8));     // hardware length
  EXPECT_FALSE(mutate(19, 16));    // protocol length
  EXPECT_FALSE(mutate(21, 3));     // RARP request
  EXPECT_TRUE(mutate(21, 2));      // a reply
  EXPECT_TRUE(arp::is_arp(b, 14));
  EXPECT_FALSE(arp::is_arp(b, 13));
}

TEST(Arp, MacStrings) {
  arp::mac m;
  ASSERT_TRUE(arp::parse_mac("02:1a:2B:3c:4d:5e", m));
  EXPECT_EQ(arp::to_string(m), "02:1a:2b:3c:4d:5e");
  ASSERT_TRUE(arp::parse_mac("02-1a-2b-3c-4d-5f", m));
  EXPECT_EQ(m[5], 0x5f);
  EXPECT_FALSE(arp::parse_mac("ff:ff:ff:ff:ff:ff", m));  // broadcast: never a peer
  EXPECT_FALSE(arp::parse_mac("01:00:5e:00:00:01", m));  // multicast
  EXPECT_FALSE(arp::parse_mac("00:00:00:00:00:00", m));
  EXPECT_FALSE(arp::parse_mac("02:1a:2b:3c:4d", m));
  EXPECT_FALSE(arp::parse_mac("02:1a:2b:3c:4d:5g", m));
  EXPECT_FALSE(arp::parse_mac("02:1a:2b:3c:4d:5e:", m));
  EXPECT_EQ(arp::ip_string(kPeerIp), "198.18.0.2");
}

TEST(Arp, MacCellPublishes) {
  arp::mac_cell c;
  arp::mac m;
  EXPECT_FALSE(c.load(m));
  EXPECT_FALSE(c.known());
  c.store(kPeerMac);
  ASSERT_TRUE(c.load(m));
  EXPECT_EQ(m, kPeerMac);
  c.store(kOtherMac);
  ASSERT_TRUE(c.load(m));
  EXPECT_EQ(m, kOtherMac);
}

// --- resolver ----------------------------------------------------------------------

TEST(Resolver, RetriesWithBackoffUntilAnswered) {
  arp::resolver r = make();
  r.set_target(kPeerIp, 0);
  arp::packet req;
  std::vector<std::uint64_t> sent;
  // Ten seconds without an answer, polled every millisecond.
  for (std::uint64_t t = 0; t <= 10000 * kMs; t += kMs)
    if (r.poll(t, req)) {
      sent.push_back(t);
      EXPECT_EQ(req.eth_dst, arp::kBroadcast);
      EXPECT_EQ(req.tpa, kPeerIp);
      EXPECT_EQ(req.spa, kOurIp);
    }
  // 0, 0.1, 0.3, 0.7, 1.5 s, then every second: 0.1 0.2 0.4 0.8 1 1 ...
  ASSERT_GE(sent.size(), 6u);
  EXPECT_EQ(sent[0], 0u);
  EXPECT_EQ(sent[1], 100 * kMs);
  EXPECT_EQ(sent[2], 300 * kMs);
  EXPECT_EQ(sent[3], 700 * kMs);
  EXPECT_EQ(sent[4], 1500 * kMs);
  EXPECT_EQ(sent[5], 2500 * kMs);
  EXPECT_EQ(sent.back(), 9500 * kMs);
  EXPECT_EQ(r.st().requests_sent, sent.size());
  EXPECT_FALSE(r.resolved());
  EXPECT_TRUE(r.waiting());
  EXPECT_EQ(r.waiting_since(), 0u);

  // The answer: resolved, and no more requests until the refresh is due.
  const arp::packet ans = on_wire(arp::make_reply(arp::make_request(kOurMac, kOurIp, kPeerIp), kPeerMac));
  EXPECT_FALSE(r.on_packet(ans, 10000 * kMs + 1, nullptr));
  EXPECT_TRUE(r.resolved());
  EXPECT_FALSE(r.waiting());
  EXPECT_EQ(r.peer_mac(), kPeerMac);
  EXPECT_EQ(r.st().resolved, 1u);
  EXPECT_EQ(r.st().replies_received, 1u);
  EXPECT_EQ(r.st().resolve_ns, 10000 * kMs + 1);
  const std::uint64_t before = r.st().requests_sent;
  for (std::uint64_t t = 10001 * kMs; t < 40000 * kMs; t += kMs)
    EXPECT_FALSE(r.poll(t, req));
  EXPECT_EQ(r.st().requests_sent, before);
}

TEST(Resolver, RefreshKeepsTheEntryAndFollowsAChange) {
  arp::resolver r = make(30.0);
  r.set_target(kPeerIp, 0);
  arp::packet req;
  ASSERT_TRUE(r.poll(0, req));
  r.on_packet(arp::make_reply(req, kPeerMac), 5 * kMs, nullptr);
  ASSERT_TRUE(r.resolved());
  EXPECT_FALSE(r.poll(30000 * kMs, req));
  ASSERT_TRUE(r.poll(30005 * kMs, req));  // 30 s after the answer
  EXPECT_EQ(req.eth_dst, arp::kBroadcast);
  // Unanswered: the entry stays, one request per period.
  EXPECT_FALSE(r.poll(40000 * kMs, req));
  EXPECT_TRUE(r.resolved());
  EXPECT_EQ(r.peer_mac(), kPeerMac);
  ASSERT_TRUE(r.poll(60005 * kMs, req));
  // The peer moved (a failover): the next answer says so.
  r.on_packet(arp::make_reply(req, kOtherMac), 60010 * kMs, nullptr);
  EXPECT_EQ(r.peer_mac(), kOtherMac);
  EXPECT_EQ(r.st().mac_changes, 1u);
  EXPECT_EQ(r.st().resolved, 1u);
}

TEST(Resolver, AnswersRequestsForOurAddressAndLearnsTheAsker) {
  arp::resolver r = make();
  r.set_target(kPeerIp, 0);
  arp::packet reply;
  // The peer asks for us first (it has something to send): we answer it, and
  // learn its MAC on the way (RFC 826): no request of ours is needed.
  ASSERT_TRUE(r.on_packet(on_wire(arp::make_request(kPeerMac, kPeerIp, kOurIp)), 7, &reply));
  EXPECT_EQ(reply.oper, arp::op::reply);
  EXPECT_EQ(reply.eth_dst, kPeerMac);
  EXPECT_EQ(reply.sha, kOurMac);
  EXPECT_EQ(reply.spa, kOurIp);
  EXPECT_TRUE(r.resolved());
  EXPECT_EQ(r.peer_mac(), kPeerMac);
  EXPECT_EQ(r.st().requests_received, 1u);
  EXPECT_EQ(r.st().replies_sent, 1u);
  arp::packet req;
  EXPECT_FALSE(r.poll(8, req));
  // A request for another address: not answered, nobody learnt.
  EXPECT_FALSE(r.on_packet(arp::make_request(kOtherMac, kOtherIp, kPeerIp), 9, &reply));
  EXPECT_EQ(r.lookup(kOtherIp), nullptr);
  EXPECT_EQ(r.st().ignored, 1u);
  // A probe for our address (RFC 5227, sender 0.0.0.0) is answered, learns nothing.
  ASSERT_TRUE(r.on_packet(arp::make_request(kOtherMac, 0, kOurIp), 10, &reply));
  EXPECT_EQ(reply.eth_dst, kOtherMac);
  EXPECT_EQ(reply.tpa, 0u);
  EXPECT_EQ(r.lookup(0), nullptr);
  // A request whose sender is a group address is not answered (the answer
  // would go to the group).
  EXPECT_FALSE(r.on_packet(arp::make_request(arp::kBroadcast, kOtherIp, kOurIp), 11, &reply));
}

TEST(Resolver, IgnoresItsOwnFramesAndClaimsOnOurAddress) {
  arp::resolver r = make();
  r.set_target(kPeerIp, 0);
  arp::packet reply;
  // Our own request, seen again on a shared medium.
  EXPECT_FALSE(r.on_packet(arp::make_request(kOurMac, kOurIp, kPeerIp), 1, &reply));
  // Someone else saying it is us: not learnt.
  EXPECT_FALSE(r.on_packet(arp::make_reply(arp::make_request(kPeerMac, kPeerIp, kOurIp), kOtherMac), 2, &reply));
  EXPECT_EQ(r.lookup(kOurIp), nullptr);
  EXPECT_FALSE(r.resolved());
  EXPECT_EQ(r.st().ignored, 2u);
}

TEST(Resolver, GratuitousArpUpdatesAKnownPeer) {
  arp::resolver r = make();
  r.set_target(kPeerIp, 0);
  r.on_packet(arp::make_reply(arp::make_request(kOurMac, kOurIp, kPeerIp), kPeerMac), 1, nullptr);
  ASSERT_EQ(r.peer_mac(), kPeerMac);
  arp::packet g = arp::make_request(kOtherMac, kPeerIp, kPeerIp);  // gratuitous: "198.18.0.2 is here now"
  EXPECT_FALSE(r.on_packet(g, 2, nullptr));
  EXPECT_EQ(r.peer_mac(), kOtherMac);
  EXPECT_EQ(r.st().mac_changes, 1u);
}

TEST(Resolver, StaticMacIsNeverAskedNorChanged) {
  arp::resolver r = make();
  r.set_static(kPeerMac);
  r.set_target(kPeerIp, 0);
  arp::packet req, reply;
  for (std::uint64_t t = 0; t < 100000 * kMs; t += 100 * kMs)
    EXPECT_FALSE(r.poll(t, req));
  EXPECT_TRUE(r.resolved());
  // A reply claiming another MAC for the peer changes nothing.
  r.on_packet(arp::make_reply(arp::make_request(kOurMac, kOurIp, kPeerIp), kOtherMac), 1, nullptr);
  EXPECT_EQ(r.peer_mac(), kPeerMac);
  // We still answer for our own address.
  EXPECT_TRUE(r.on_packet(arp::make_request(kPeerMac, kPeerIp, kOurIp), 2, &reply));
  EXPECT_EQ(r.st().requests_sent, 0u);
}

TEST(Resolver, TableLearnsOnlyWhatItNeedsAndReplacesLeastRecentlyUsed) {
  arp::resolver r = make();
  // No target yet (a destination with --any-peer): nothing is asked.
  arp::packet req, reply;
  EXPECT_FALSE(r.poll(0, req));
  // Hosts asking for us are learnt; the table holds kEntries of them.
  for (std::uint32_t i = 0; i < arp::resolver::kEntries + 3; ++i) {
    arp::mac m = kOtherMac;
    m[5] = static_cast<std::uint8_t>(0x40 + i);
    ASSERT_TRUE(r.on_packet(arp::make_request(m, 0x0A000001 + i, kOurIp), 10 + i, &reply));
  }
  EXPECT_EQ(r.lookup(0x0A000001), nullptr);  // the oldest went
  EXPECT_EQ(r.lookup(0x0A000003), nullptr);
  ASSERT_NE(r.lookup(0x0A000004), nullptr);
  EXPECT_EQ(r.lookup(0x0A000004)->m[5], 0x43);
  // The peer shows up (its first frame): it asked for us before, so its MAC
  // is known at once.
  r.set_target(0x0A000000 + arp::resolver::kEntries + 3, 100);
  EXPECT_TRUE(r.resolved());
  EXPECT_EQ(r.peer_mac()[5], 0x40 + arp::resolver::kEntries + 2);
  EXPECT_FALSE(r.poll(101, req));
  // A new target that nobody announced is asked for.
  r.set_target(kPeerIp, 200);
  EXPECT_FALSE(r.resolved());
  ASSERT_TRUE(r.poll(200, req));
  EXPECT_EQ(req.tpa, kPeerIp);
  // Its (incomplete) entry is not replaced while more hosts ask for us.
  for (std::uint32_t i = 0; i < 2 * arp::resolver::kEntries; ++i)
    r.on_packet(arp::make_request(kOtherMac, 0x0B000001 + i, kOurIp), 300 + i, &reply);
  ASSERT_NE(r.lookup(kPeerIp), nullptr);
  r.on_packet(arp::make_reply(req, kPeerMac), 400, nullptr);
  EXPECT_TRUE(r.resolved());
  EXPECT_EQ(r.peer_mac(), kPeerMac);
}

TEST(Resolver, GatewayIsTheTarget) {
  arp::resolver r = make();
  const std::uint32_t gw = 0xC6120101;
  r.set_target(gw, 0);
  arp::packet req;
  ASSERT_TRUE(r.poll(0, req));
  EXPECT_EQ(req.tpa, gw);
  // The peer itself answering is of no use: the frames go to the router.
  r.on_packet(arp::make_reply(arp::make_request(kOurMac, kOurIp, kPeerIp), kPeerMac), 1, nullptr);
  EXPECT_FALSE(r.resolved());
  r.on_packet(arp::make_reply(req, kOtherMac), 2, nullptr);
  EXPECT_TRUE(r.resolved());
  EXPECT_EQ(r.peer_mac(), kOtherMac);
}

// --- terms of a stream (negotiate.h) ---------------------------------------------

namespace {
wire::init_body init(std::uint32_t max_frame, std::uint32_t window, std::uint32_t slots = 1024) {
  return wire::init_body{slots, static_cast<std::uint32_t>(kPageSize), static_cast<std::uint32_t>(wire::kMaxRecordSize),
                         1, max_frame, window};
}
}  // namespace

TEST(Terms, SameSettingsAreTaken) {
  const stream_terms t = negotiate(init(1472, 16384), 1472, 16384, 1u << 20);
  EXPECT_EQ(t.why, refusal::none);
  EXPECT_EQ(t.reply_frame, 1472u);
  EXPECT_FALSE(t.window_capped);
  EXPECT_FALSE(t.frame_smaller);
}

TEST(Terms, SmallerFramesAreTakenAndRepliesFitThem) {
  const stream_terms t = negotiate(init(1472, 16384), 8972, 16384, 1u << 20);
  EXPECT_EQ(t.why, refusal::none);
  EXPECT_TRUE(t.frame_smaller);
  EXPECT_EQ(t.reply_frame, 1472u);  // an ACK or REPAIR of ours never exceeds the source's MTU
  EXPECT_LE(ack_payload_size(ack_blocks_for(t.reply_frame, wire::kFrameHeaderSize)) + wire::kFrameHeaderSize, 1472u);
}

TEST(Terms, LargerFramesAreRefusedWithBothFigures) {
  const stream_terms t = negotiate(init(8972, 16384), 1472, 16384, 1u << 20);
  EXPECT_EQ(t.why, refusal::frame_too_large);
  EXPECT_EQ(t.ours, 1472u);
  EXPECT_EQ(t.theirs, 8972u);
  const std::string d = refusal_text(t.why, t.ours, t.theirs, false);
  EXPECT_NE(d.find("8972"), std::string::npos) << d;
  EXPECT_NE(d.find("--mtu 1500"), std::string::npos) << d;
  const std::string s = refusal_text(t.why, t.ours, t.theirs, true);
  EXPECT_NE(s.find("refused"), std::string::npos) << s;
  EXPECT_NE(s.find("MTU 9000"), std::string::npos) << s;
}

TEST(Terms, LargerWindowIsCappedToOurs) {
  const stream_terms t = negotiate(init(1472, 65536), 1472, 4096, 1u << 20);
  EXPECT_EQ(t.why, refusal::none);
  EXPECT_TRUE(t.window_capped);
  EXPECT_EQ(t.window, 4096u);
  EXPECT_EQ(log2_window(4096), 12);
  EXPECT_EQ(log2_window(64), 6);
  EXPECT_EQ(log2_window(65536), 16);
}

TEST(Terms, TooLargeCacheAndBadInitAreRefused) {
  EXPECT_EQ(negotiate(init(1472, 16384, (1u << 20) + 1), 1472, 16384, 1u << 20).why, refusal::cache_too_large);
  EXPECT_EQ(negotiate(init(64, 16384), 1472, 16384, 1u << 20).why, refusal::bad_init);
  // An INIT that does not say (0) is taken as it is.
  EXPECT_EQ(negotiate(init(0, 0), 1472, 16384, 1u << 20).why, refusal::none);
  EXPECT_NE(refusal_text(refusal::cache_too_large, 1u << 20, 1u << 21, true).find("--cache-mb"), std::string::npos);
}

TEST(Terms, EncoderTellsItsFrameAndWindowInInit) {
  struct out final : frame_output {
    std::vector<std::byte> buf = std::vector<std::byte>(9000);
    std::vector<std::vector<std::byte>> frames;
    bytes_buf acquire() override { return {buf.data(), buf.size()}; }
    void commit(bytes_buf f, std::size_t len) override { frames.emplace_back(f.data(), f.data() + len); }
  } o;
  encoder_config c = encoder_config::for_mode(mode::datacenter);
  c.cache_bytes = 1u << 20;
  c.max_frame = 1408;        // FEC: data frames shorter than the link's
  c.wire_max_frame = 1472;   // ... whose frames (parity) go up to this
  c.window = 8192;
  encoder e(c, o);
  ASSERT_EQ(o.frames.size(), 1u);
  wire::init_body b;
  ASSERT_TRUE(peek_init(o.frames[0].data(), o.frames[0].size(), b));
  EXPECT_EQ(b.max_frame, 1472u);
  EXPECT_EQ(b.window, 8192u);
  EXPECT_EQ(b.slot_count, 256u);
  EXPECT_EQ(b.streams, 1u);
  // Not an INIT first: no terms.
  std::vector<std::byte> f = o.frames[0];
  f[wire::kFrameHeaderSize] = std::byte{2};
  EXPECT_FALSE(peek_init(f.data(), f.size(), b));
  EXPECT_FALSE(peek_init(f.data(), wire::kFrameHeaderSize + 8, b));
}

// --- the ACK carries the terms (sack.h) -------------------------------------------

TEST(AckTerms, WindowAndRefusalRoundTrip) {
  ack_info a;
  a.cum = 5;
  a.window_log2 = 14;
  std::byte buf[kMaxAckPayload];
  std::size_t n = write_ack_payload(a, buf);
  ack_info b;
  ASSERT_TRUE(parse_ack_payload(buf, n, 5, b));
  EXPECT_EQ(b.window_log2, 14);
  EXPECT_EQ(b.refuse, 0);
  a.refuse = static_cast<std::uint8_t>(refusal::frame_too_large);
  a.refuse_value = 1472;
  n = write_ack_payload(a, buf);
  ASSERT_TRUE(parse_ack_payload(buf, n, 5, b));
  EXPECT_EQ(b.refuse, 1);
  EXPECT_EQ(b.refuse_value, 1472u);
  // Malformed: a window outside 2^6..2^16, a value without a refusal.
  ack_fixed f;
  std::memcpy(&f, buf, sizeof f);
  f.window_log2 = 5;
  std::memcpy(buf, &f, sizeof f);
  EXPECT_FALSE(parse_ack_payload(buf, n, 5, b));
  f.window_log2 = 17;
  std::memcpy(buf, &f, sizeof f);
  EXPECT_FALSE(parse_ack_payload(buf, n, 5, b));
  f.window_log2 = 0;
  f.refuse = 0;
  f.refuse_value = 9;
  std::memcpy(buf, &f, sizeof f);
  EXPECT_FALSE(parse_ack_payload(buf, n, 5, b));
}

TEST(AckTerms, SenderKeepsToTheReceiversWindow) {
  // In flight at most, per round of pump then ACK, with and without a
  // receiver window of 16 frames (below the model's first window, 32).
  auto run = [](std::uint64_t peer_window, unsigned &sent) {
    sender<int>::config c;
    c.capacity = 1024;
    c.hz = kHz;
    c.mss = 1500;
    c.rto_min = 5 * kMs;
    sender<int> s(c);
    if (peer_window != 0)
      s.set_peer_window(static_cast<std::uint32_t>(peer_window));
    for (int i = 0; i < 1000; ++i)
      s.push(i, 1500);
    std::uint64_t now = 0, most = 0;
    sent = 0;
    for (int round = 0; round < 5000 && s.base() < 1000; ++round) {
      now += kMs;
      s.pump(now, 256, [&](int, std::uint64_t, bool) { ++sent; });
      most = std::max(most, s.sent() - s.base());
      ack_info a;
      a.cum = s.sent();
      now += kMs;
      s.on_ack(now, a, [](int) {});
    }
    EXPECT_EQ(s.base(), 1000u);
    return most;
  };
  unsigned sent = 0;
  EXPECT_GT(run(0, sent), 16u);  // the model alone would send more
  EXPECT_EQ(sent, 1000u);
  EXPECT_EQ(run(16, sent), 16u);  // the receiver's window binds
  EXPECT_EQ(sent, 1000u);          // and everything still goes, once
}
