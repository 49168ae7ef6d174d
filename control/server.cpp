// server.cpp — poll()-based Unix socket server for the control commands.
#include "server.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <vector>

namespace hde::ctl {

std::string default_socket_path(const std::string &runtime_dir) { return runtime_dir + "/hde.sock"; }

namespace {

bool set_nonblock(int fd) { return fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0; }

std::uint64_t now_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

struct client {
  int fd = -1;
  std::string in, out;
  std::uint64_t last_ms = 0;
  bool closing = false;  // close once out is written
};

}  // namespace

bool server::start(std::string &err) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (cfg_.path.size() >= sizeof addr.sun_path) {
    err = "control socket path too long: " + cfg_.path;
    return false;
  }
  std::memcpy(addr.sun_path, cfg_.path.c_str(), cfg_.path.size() + 1);
  // Someone answering on the path: another gateway owns it.
  int probe = socket(AF_UNIX, SOCK_STREAM, 0);
  if (probe >= 0 && connect(probe, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0) {
    close(probe);
    err = "control socket " + cfg_.path + " is in use by another gateway (give --ctl-sock PATH)";
    return false;
  }
  if (probe >= 0)
    close(probe);
  unlink(cfg_.path.c_str());  // a stale socket of a gateway that died
  fd_ = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
      chmod(cfg_.path.c_str(), 0660) != 0 || listen(fd_, 64) != 0 || !set_nonblock(fd_) ||
      pipe(wake_) != 0) {
    err = "control socket " + cfg_.path + ": " + std::strerror(errno);
    if (fd_ >= 0)
      close(fd_);
    fd_ = -1;
    return false;
  }
  th_ = std::thread([this] { run(); });
  return true;
}

void server::stop() {
  if (!th_.joinable())
    return;
  const char c = 'q';
  (void)!write(wake_[1], &c, 1);
  th_.join();
  close(fd_);
  close(wake_[0]);
  close(wake_[1]);
  unlink(cfg_.path.c_str());
  fd_ = -1;
}

void server::run() {
  std::vector<client> clients;
  std::vector<pollfd> pfds;
  std::uint64_t task_due = 0;  // set_task(): when its fn runs next (ms)
  for (;;) {
    pfds.clear();
    pfds.push_back({wake_[0], POLLIN, 0});
    pfds.push_back({fd_, POLLIN, 0});
    pfds.push_back({task_ ? task_fd_ : -1, POLLIN, 0});  // fd -1: ignored by poll()
    for (const client &c : clients)
      pfds.push_back({c.fd, static_cast<short>(POLLIN | (c.out.empty() ? 0 : POLLOUT)), 0});
    int timeout = 500;
    {
      const std::uint64_t t = now_ms();
      if (task_)
        timeout = task_due <= t ? 0 : static_cast<int>(std::min<std::uint64_t>(500, task_due - t));
      for (const timer &tm : timers_)
        timeout = std::min(timeout, tm.next_ms <= t ? 0 : static_cast<int>(std::min<std::uint64_t>(500, tm.next_ms - t)));
    }
    if (poll(pfds.data(), pfds.size(), timeout) < 0 && errno != EINTR) {
      // Not silent: with the socket go the selector's and the sync's ticks.
      std::fprintf(stderr, "hde-gateway: control thread: poll: %s; control socket, selector and sync stopped\n",
                   std::strerror(errno));
      break;
    }
    if (pfds[0].revents & POLLIN)
      break;
    const std::uint64_t now = now_ms();
    if (task_ && ((pfds[2].revents & POLLIN) || now >= task_due))
      task_due = now_ms() + task_();
    for (timer &t : timers_)
      if (now >= t.next_ms) {
        t.next_ms = now + t.period_ms;
        t.fn();
      }
    const std::size_t polled = clients.size();  // clients accepted below were not polled
    for (std::size_t i = 0; i < polled; ++i) {
      client &c = clients[i];
      const short rev = pfds[3 + i].revents;
      bool drop = (rev & (POLLERR | POLLNVAL)) != 0;
      if (!drop && (rev & (POLLIN | POLLHUP))) {
        char buf[4096];
        ssize_t n = recv(c.fd, buf, sizeof buf, 0);
        if (n <= 0) {
          drop = n == 0 || (errno != EAGAIN && errno != EINTR);
        } else {
          c.last_ms = now;
          c.in.append(buf, static_cast<std::size_t>(n));
          std::size_t nl;
          while (!c.closing && (nl = c.in.find('\n')) != std::string::npos) {
            c.out += reg_.handle(std::string_view(c.in).substr(0, nl));
            c.out += '\n';
            ++st_.replies;
            c.in.erase(0, nl + 1);
          }
          if (!c.closing && c.in.size() > cfg_.max_request) {
            ++st_.oversized;
            c.out += "{\"ok\":false,\"error\":\"request longer than " + std::to_string(cfg_.max_request) +
                     " bytes\"}\n";
            c.in.clear();
            c.closing = true;
          }
        }
      }
      if (!drop && !c.out.empty()) {
        ssize_t n = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0)
          c.out.erase(0, static_cast<std::size_t>(n));
        else if (n < 0 && errno != EAGAIN && errno != EINTR) {
          ++st_.write_failed;
          drop = true;
        }
      }
      if (!drop && c.closing && c.out.empty())
        drop = true;
      if (!drop && c.out.empty() && now - c.last_ms > cfg_.idle_timeout_ms) {
        ++st_.idle_dropped;
        drop = true;
      }
      if (drop) {
        close(c.fd);
        c.fd = -1;
      }
    }
    if (pfds[1].revents & POLLIN) {
      for (;;) {
        int cfd = accept(fd_, nullptr, nullptr);
        if (cfd < 0)
          break;
        if (clients.size() >= cfg_.max_clients) {
          ++st_.rejected_busy;
          static const char busy[] = "{\"ok\":false,\"error\":\"too many control clients\"}\n";
          (void)!send(cfd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
          close(cfd);
          continue;
        }
        set_nonblock(cfd);
        ++st_.accepted;
        clients.push_back({cfd, {}, {}, now, false});
      }
    }
    std::erase_if(clients, [](const client &c) { return c.fd < 0; });
  }
  for (client &c : clients)
    close(c.fd);
}

}  // namespace hde::ctl
