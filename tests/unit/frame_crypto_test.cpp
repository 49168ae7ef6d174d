// frame_crypto_test.cpp — sealing and opening frames on the software
// cryptodev PMD (crypto_aesni_gcm, else crypto_openssl): round trips, a new
// nonce for every transmission, tampering, another key, the wrong
// direction, frames in clear, key rotation; and the key file rules.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <rte_eal.h>
#include <rte_mbuf.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frame_crypto.h"
#include "frame_key.h"
#include "packet.h"
#include "wire/format.h"

using namespace hde;
using namespace hde::dp;

namespace {

rte_mempool *g_pool = nullptr;
bool g_eal = false;

std::string write_key(const std::string &name, const std::string &secret, mode_t mode = 0600) {
  const std::string path = ::testing::TempDir() + name;
  {
    std::ofstream f(path, std::ios::trunc);
    f << secret;
  }
  chmod(path.c_str(), mode);
  return path;
}

// A clear DATA frame of `len` payload bytes (pattern from seed) in a new mbuf.
rte_mbuf *make_frame(std::uint16_t stream, std::uint64_t seq, std::size_t len, unsigned seed) {
  rte_mbuf *m = rte_pktmbuf_alloc(g_pool);
  auto *p = rte_pktmbuf_mtod_offset(m, std::byte *, kL2L4);
  wire::frame_header h{};
  h.magic = wire::kMagic;
  h.version = wire::kVersion;
  h.type = static_cast<std::uint8_t>(wire::frame_type::data);
  h.stream = stream;
  h.epoch = 77;
  h.payload_len = static_cast<std::uint16_t>(len);
  h.seq = seq;
  wire::store(p, h);
  for (std::size_t i = 0; i < len; ++i)
    p[wire::kFrameHeaderSize + i] = static_cast<std::byte>((i * 31 + seed) & 0xff);
  wire::seal_frame({p, wire::kFrameHeaderSize + len});
  m->data_len = static_cast<std::uint16_t>(kL2L4 + wire::kFrameHeaderSize + len);
  m->pkt_len = m->data_len;
  return m;
}

std::vector<std::byte> frame_bytes(const rte_mbuf *m) {
  const auto *p = rte_pktmbuf_mtod_offset(m, const std::byte *, kL2L4);
  return {p, p + (m->data_len - kL2L4)};
}

class FrameCrypto : public ::testing::Test {
protected:
  void SetUp() override {
    if (!g_eal)
      GTEST_SKIP() << "EAL did not start";
  }
  std::unique_ptr<frame_crypto> make(const std::string &key, unsigned lanes = 2, double grace = 60) {
    static int n = 0;  // a device of its own per instance (a vdev of the software PMD)
    auto c = std::make_unique<frame_crypto>();
    frame_crypto::config cc;
    cc.device = "crypto_aesni_gcm_t" + std::to_string(n++);
    cc.key_file = key;
    cc.lanes = lanes;
    cc.grace_s = grace;
    std::string err;
    EXPECT_TRUE(c->init(cc, err)) << err;
    return c;
  }
};

}  // namespace

TEST(FrameKey, DerivedKeyAndIdAreStableAndDiffer) {
  const std::vector<std::uint8_t> a(32, 1), b(32, 2);
  EXPECT_EQ(derive_frame_key(a).aes, derive_frame_key(a).aes);
  EXPECT_EQ(derive_frame_key(a).id, derive_frame_key(a).id);
  EXPECT_NE(derive_frame_key(a).aes, derive_frame_key(b).aes);
  EXPECT_FALSE(std::equal(a.begin(), a.end(), derive_frame_key(a).aes.begin()));  // the secret is not the key
}

TEST(FrameKey, FileReadableByOthersIsRefused) {
  frame_key k;
  std::string err;
  EXPECT_FALSE(load_frame_key(write_key("open.key", "0123456789abcdef0123456789abcdef", 0644), k, err));
  EXPECT_NE(err.find("chmod 600"), std::string::npos) << err;
  EXPECT_FALSE(load_frame_key(write_key("short.key", "short"), k, err));
  EXPECT_TRUE(load_frame_key(write_key("ok.key", "0123456789abcdef0123456789abcdef\n"), k, err)) << err;
  EXPECT_FALSE(load_frame_key("/nonexistent/key", k, err));
}

TEST_F(FrameCrypto, SealOpenRoundTripAndFreshNoncePerTransmission) {
  auto c = make(write_key("a.key", "secret-a-secret-a-secret-a-secret-a"));
  crypto_lane &tx = c->lane(0), &rx = c->lane(1);
  rte_mbuf *clear = make_frame(3, 42, 1200, 5);
  const auto want = frame_bytes(clear);
  // Two transmissions of one frame: sealed copies, the clear frame untouched.
  rte_mbuf *in[2] = {clear, clear}, *out[2];
  const bool copy[2] = {true, true};
  ASSERT_EQ(tx.seal(in, 2, out, wire::kSealFromSource, copy, g_pool), 2u);
  EXPECT_EQ(frame_bytes(clear), want);
  const auto s0 = frame_bytes(out[0]), s1 = frame_bytes(out[1]);
  ASSERT_EQ(s0.size(), want.size() + wire::kSealOverhead);
  const auto n0 = wire::load<wire::seal_header>(s0.data() + wire::kFrameHeaderSize).nonce;
  const auto n1 = wire::load<wire::seal_header>(s1.data() + wire::kFrameHeaderSize).nonce;
  EXPECT_EQ(n1, n0 + 1);  // the retransmission takes the next nonce
  EXPECT_NE(std::memcmp(s0.data() + 48, s1.data() + 48, 1200), 0);  // and so another keystream
  EXPECT_EQ(std::memcmp(s0.data() + 48, want.data() + 32, 64) == 0, false);  // not in clear
  wire::frame_header h;
  EXPECT_EQ(wire::parse_frame_header({s0.data(), s0.size()}, h), error::ok);  // the CRC covers the sealed frame
  bool ok[2];
  EXPECT_EQ(rx.open(out, 2, wire::kSealFromSource, ok), 2u);
  EXPECT_TRUE(ok[0] && ok[1]);
  EXPECT_EQ(frame_bytes(out[0]), want);  // the clear frame again, CRC included
  EXPECT_EQ(frame_bytes(out[1]), want);
  rte_pktmbuf_free(out[0]);
  rte_pktmbuf_free(out[1]);
  rte_pktmbuf_free(clear);
  EXPECT_EQ(rx.stats().opened, 2u);
  EXPECT_EQ(rx.stats().auth_fail, 0u);
}

TEST_F(FrameCrypto, TamperingWrongDirectionClearAndOtherKeyAreRefused) {
  auto a = make(write_key("a2.key", "secret-a-secret-a-secret-a-secret-a"));
  auto b = make(write_key("b2.key", "secret-b-secret-b-secret-b-secret-b"));
  crypto_lane &tx = a->lane(0), &rx = a->lane(1);
  rte_mbuf *f[4];
  for (int i = 0; i < 3; ++i) {
    rte_mbuf *m = make_frame(1, 10 + i, 700, i);
    ASSERT_EQ(tx.seal(&m, 1, &f[i], wire::kSealFromSource), 1u);
  }
  // 0: a ciphertext bit flipped and the CRC recomputed; 1: a header bit
  // (the sequence number, associated data) flipped, CRC recomputed.
  auto *p0 = rte_pktmbuf_mtod_offset(f[0], std::byte *, kL2L4);
  p0[100] ^= std::byte{1};
  wire::seal_frame({p0, static_cast<std::size_t>(f[0]->data_len - kL2L4)});
  auto *p1 = rte_pktmbuf_mtod_offset(f[1], std::byte *, kL2L4);
  p1[16] ^= std::byte{1};
  wire::seal_frame({p1, static_cast<std::size_t>(f[1]->data_len - kL2L4)});
  rte_mbuf *m = make_frame(1, 20, 700, 9);  // sealed with key B
  ASSERT_EQ(b->lane(0).seal(&m, 1, &f[3], wire::kSealFromSource), 1u);
  bool ok[4];
  EXPECT_EQ(rx.open(f, 4, wire::kSealFromSource, ok), 1u);
  EXPECT_FALSE(ok[0]);
  EXPECT_FALSE(ok[1]);
  EXPECT_TRUE(ok[2]);
  EXPECT_FALSE(ok[3]);
  EXPECT_EQ(rx.stats().auth_fail + rx.stats().unknown_key, 3u);  // B's id equals A's 1 time in 256
  // A DATA frame offered as an ACK (reflected): wrong direction.
  rte_mbuf *r = make_frame(1, 30, 100, 1), *rs;
  ASSERT_EQ(tx.seal(&r, 1, &rs, wire::kSealFromSource), 1u);
  EXPECT_EQ(rx.open(&rs, 1, wire::kSealFromDest, ok), 0u);
  EXPECT_EQ(rx.stats().bad_seal, 1u);
  // A frame in clear.
  rte_mbuf *c = make_frame(1, 31, 100, 1);
  EXPECT_EQ(rx.open(&c, 1, wire::kSealFromSource, ok), 0u);
  EXPECT_EQ(rx.stats().unsealed, 1u);
  for (rte_mbuf *x : {f[0], f[1], f[2], f[3], rs, c})
    rte_pktmbuf_free(x);
}

TEST_F(FrameCrypto, RotationSwitchesOnlyOnceThePeerHoldsTheNewKey) {
  const std::string ka = write_key("ra.key", "secret-a-secret-a-secret-a-secret-a");
  const std::string kb = write_key("rb.key", "secret-b-secret-b-secret-b-secret-b");
  auto src = make(ka), dst = make(ka);
  const int id_a = src->get_status().newest_id;
  std::string err;
  EXPECT_FALSE(src->rotate(ka, err));  // the key in use
  ASSERT_TRUE(dst->rotate(kb, err)) << err;
  const int id_b = dst->get_status().newest_id;
  if (id_b == id_a)
    GTEST_SKIP() << "the two test keys share an id (1 in 256)";
  // dst holds both, but src does not have B yet: dst keeps sealing with A.
  auto roundtrip = [&](frame_crypto &from, frame_crypto &to, std::uint8_t dir) {
    rte_mbuf *m = make_frame(0, 1, 200, 3), *s;
    EXPECT_EQ(from.lane(0).seal(&m, 1, &s, dir), 1u);
    const int used = wire::load<wire::seal_header>(rte_pktmbuf_mtod_offset(s, std::byte *, kL2L4 + 32)).key_id;
    bool ok;
    const bool opened = to.lane(1).open(&s, 1, dir, &ok) == 1;
    rte_pktmbuf_free(s);
    return std::make_pair(used, opened);
  };
  auto r = roundtrip(*dst, *src, wire::kSealFromDest);
  EXPECT_EQ(r.first, id_a);
  EXPECT_TRUE(r.second);
  // src learns dst accepts B only once it rotates too; then it seals with B...
  ASSERT_TRUE(src->rotate(kb, err)) << err;
  r = roundtrip(*src, *dst, wire::kSealFromSource);  // src saw dst's "accepts B" above
  EXPECT_EQ(r.first, id_b);
  EXPECT_TRUE(r.second);
  // ... and dst, having seen src accept B, seals with B too.
  r = roundtrip(*dst, *src, wire::kSealFromDest);
  EXPECT_EQ(r.first, id_b);
  EXPECT_TRUE(r.second);
  EXPECT_EQ(src->get_status().old_id, id_a);  // A still accepted during the grace period
}

int main(int argc, char **argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const std::string prefix = "--file-prefix=hdefct" + std::to_string(getpid());
  const char *eal[] = {"test", "--no-huge", "-m", "256", "--no-pci", "-l", "0",
                       "--log-level=lib.eal:error", "--log-level=crypto:error", prefix.c_str()};
  if (rte_eal_init(static_cast<int>(std::size(eal)), const_cast<char **>(eal)) >= 0) {
    g_eal = true;
    g_pool = rte_pktmbuf_pool_create("fct", 1024, 0, 0, 4096, 0);
  }
  const int rc = RUN_ALL_TESTS();
  return rc;
}
