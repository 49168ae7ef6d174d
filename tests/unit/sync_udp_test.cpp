// sync_udp_test.cpp — three sync nodes over real UDP sockets on loopback in
// one process (each told of one other only: they find the third through
// the membership), driven by poll() and the steady clock: they agree on
// membership and on a migration started on one of them; a key file that
// others may read is refused with a clear message.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sync.h"
#include "sync_udp.h"

using namespace hde::sync;

namespace {

struct instance {
  udp_endpoint ep;
  std::unique_ptr<sync_node> node;
};

}  // namespace

TEST(SyncUdp, ThreeNodesOnLoopbackConverge) {
  const std::vector<std::uint8_t> key(32, 7);
  std::vector<std::unique_ptr<instance>> xs;
  for (int i = 0; i < 3; ++i) {
    auto x = std::make_unique<instance>();
    std::string err;
    ASSERT_TRUE(x->ep.bind("127.0.0.1:0", err)) << err;
    sync_config c;
    c.node = static_cast<replica_id>(i + 1);
    c.epoch = wall_ms();
    c.self.sync_addr = x->ep.local_addr();
    c.key = key;
    c.interval_ms = 50;
    udp_endpoint *ep = &x->ep;
    x->node = std::make_unique<sync_node>(c, [ep](const std::string &a, std::span<const std::uint8_t> d) { ep->send(a, d); });
    xs.push_back(std::move(x));
  }
  for (int i = 0; i < 3; ++i)  // a ring of one peer each
    xs[static_cast<std::size_t>(i)]->node->add_peer(xs[static_cast<std::size_t>((i + 1) % 3)]->ep.local_addr());
  xs[1]->node->update([](fleet &f) { return f.start_migration("vm-1", "dst", 1, wall_ms()); });
  auto converged = [&] {
    for (auto &x : xs) {
      if (x->node->state().members().size() != 3 || x->node->state().migrations().size() != 1 ||
          x->node->peers().size() != 2)
        return false;
      for (const auto &m : x->node->state().members())
        if (m.st.kind != status_kind::alive)
          return false;
    }
    return true;
  };
  const std::uint64_t t0 = steady_ms();
  while (!converged() && steady_ms() - t0 < 10000) {
    std::uint64_t wait = 1000;
    for (auto &x : xs)
      wait = std::min(wait, x->node->poll(steady_ms()));
    std::vector<pollfd> fds;
    for (auto &x : xs)
      fds.push_back({x->ep.fd(), POLLIN, 0});
    ::poll(fds.data(), fds.size(), static_cast<int>(wait));
    for (auto &x : xs)
      x->ep.drain([&](const std::string &from, std::span<const std::uint8_t> d) { x->node->receive(from, d, steady_ms()); });
  }
  ASSERT_TRUE(converged()) << "not converged in 10 s";
  for (auto &x : xs) {
    EXPECT_EQ(x->node->state().migrations()[0].owner.source, 2u);
    for (std::size_t d = 0; d < static_cast<std::size_t>(drop::count); ++d)
      EXPECT_EQ(x->node->stats().drops[d], 0u) << to_string(static_cast<drop>(d));
    EXPECT_EQ(x->ep.send_errors(), 0u);
  }
}

TEST(SyncUdp, KeyFileMustBePrivate) {
  char path[] = "/tmp/hde-sync-key.XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "0123456789abcdef0123456789abcdef\n", 33), 33);
  close(fd);
  std::vector<std::uint8_t> key;
  std::string err;
  chmod(path, 0644);
  EXPECT_FALSE(read_key_file(path, key, err));
  EXPECT_NE(err.find("must not be readable or writable by group or others"), std::string::npos) << err;
  EXPECT_NE(err.find("0644"), std::string::npos) << err;
  chmod(path, 0600);
  EXPECT_TRUE(read_key_file(path, key, err)) << err;
  EXPECT_EQ(key.size(), 32u);  // the newline dropped
  std::ofstream(path) << "short";
  EXPECT_FALSE(read_key_file(path, key, err));
  EXPECT_NE(err.find("16 to 4096 bytes"), std::string::npos) << err;
  unlink(path);
  EXPECT_FALSE(read_key_file(path, key, err));
  EXPECT_FALSE(valid_addr("1.2.3.4"));
  EXPECT_FALSE(valid_addr("1.2.3.4:0"));
  EXPECT_FALSE(valid_addr("host:80"));
  EXPECT_TRUE(valid_addr("10.1.2.3:7400"));
}
