// server.h — the control socket: a Unix stream socket served by the control
// thread (never an lcore). Newline-delimited JSON requests, one reply line
// each (registry.h). Guards, each with a counter: at most max_clients at
// once (others get an error and are closed), a request line longer than
// max_request is refused and the client closed, a client silent for
// idle_timeout is dropped, a client that disconnects mid-reply is dropped.
// The socket is created 0660; a second gateway on the same path is refused.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "registry.h"

namespace hde::ctl {

struct server_config {
  std::string path;
  unsigned max_clients = 256;
  std::size_t max_request = 64 * 1024;
  unsigned idle_timeout_ms = 10000;
};

struct server_stats {
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> rejected_busy{0};   // over max_clients
  std::atomic<std::uint64_t> oversized{0};
  std::atomic<std::uint64_t> idle_dropped{0};
  std::atomic<std::uint64_t> write_failed{0};    // client gone mid-reply
  std::atomic<std::uint64_t> replies{0};
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
