// server.h — the control socket: a Unix stream socket served by the control
// thread (never an lcore). Newline-delimited JSON requests, one reply line
// each (registry.h). Guards, each with a counter:
//  - the socket file is created 0600 whatever the umask (0660 and group
//    `group` with --ctl-group), and every client's credentials (SO_PEERCRED)
//    are checked: uid 0, the gateway's own uid, or (with a group) a member
//    of it; anyone else gets one error line and is closed;
//  - at most max_clients at once (others get an error and are closed), at
//    most accept_burst accepted per turn of the loop;
//  - a request line longer than max_request is refused and the client closed;
//  - a client silent for idle_timeout is dropped, and so is one that leaves
//    its replies unread that long; while max_pending reply bytes wait for
//    it, its further requests are not read;
//  - a client that disconnects mid-reply is dropped.
// Every socket is non-blocking: the control thread never waits for a client.
// A second gateway on the same path is refused; a path that is not a socket
// is never replaced.
#pragma once

#include <atomic>
#include <cstdint>
#include <sys/types.h>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "registry.h"

namespace hde::ctl {

struct server_config {
  std::string path;
  // -1: the socket is 0600 and only uid 0 and the gateway's uid may use it;
  // else 0660, owned by this group, whose members may use it too.
  gid_t group = static_cast<gid_t>(-1);
  unsigned max_clients = 32;
  unsigned accept_burst = 64;
  std::size_t max_request = 64 * 1024;
  std::size_t max_pending = 1 << 20;  // reply bytes waiting for a client
  unsigned idle_timeout_ms = 10000;
};

struct server_stats {
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> rejected_busy{0};   // over max_clients
  std::atomic<std::uint64_t> refused_peer{0};    // credentials not allowed
  std::atomic<std::uint64_t> oversized{0};
  std::atomic<std::uint64_t> idle_dropped{0};    // silent for idle_timeout
  std::atomic<std::uint64_t> slow_dropped{0};    // left its replies unread for idle_timeout
  std::atomic<std::uint64_t> write_failed{0};    // client gone mid-reply
  std::atomic<std::uint64_t> replies{0};
  std::atomic<std::uint64_t> connected{0};       // now
};

class server {
public:
  server(registry &reg, server_config cfg) : reg_(reg), cfg_(std::move(cfg)) {}
  ~server() { stop(); }
  // Work the control thread does every period_ms besides serving requests
  // (the learning selector, state sync), between requests, never
  // concurrently with them. Add before start().
  void add_timer(unsigned period_ms, std::function<void()> fn) {
    timers_.push_back({period_ms, std::move(fn), 0});
  }
  // Bind and start the control thread; false with err on failure.
  bool start(std::string &err);
  void stop();
  const server_stats &stats() const { return st_; }
  const server_config &config() const { return cfg_; }
  const std::string &path() const { return cfg_.path; }
  // One more job for the control thread (the fleet sync), set before
  // start(): fn() runs when fd (-1: none) is readable and when the ms it
  // returned last time have passed; it returns the ms until it is due again.
  void set_task(int fd, std::function<std::uint64_t()> fn) {
    task_fd_ = fd;
    task_ = std::move(fn);
  }

private:
  void run();
  bool peer_allowed(int fd, std::string &who) const;
  registry &reg_;
  server_config cfg_;
  int fd_ = -1;
  int wake_[2] = {-1, -1};
  std::thread th_;
  server_stats st_;
  int task_fd_ = -1;
  std::function<std::uint64_t()> task_;
  struct timer {
    unsigned period_ms;
    std::function<void()> fn;
    std::uint64_t next_ms;
  };
  std::vector<timer> timers_;
};

// The default socket path: DIR/hde.sock in the DPDK runtime directory.
std::string default_socket_path(const std::string &runtime_dir);

}  // namespace hde::ctl
