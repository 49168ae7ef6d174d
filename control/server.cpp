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

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59  // Linux 4.13
#endif

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
  std::uint64_t last_ms = 0;  // last bytes in or out: idle and slow clients
  bool eof = false;          // it sent its last request: answer those left, then close
  bool closing = false;      // close once out is written
};

// One error line to a client turned away, then close. What it already sent
// is read first (a little, without waiting): a socket closed with unread
// data resets the client's end, which could then lose the line.
void refuse(int fd, const std::string &line) {
  (void)!send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  char sink[4096];
  for (int i = 0; i < 16 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; ++i) {
  }
  close(fd);
}

}  // namespace

bool server::start(std::string &err) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (cfg_.path.size() >= sizeof addr.sun_path) {
    err = "control socket path too long: " + cfg_.path;
    return false;
  }
  std::memcpy(addr.sun_path, cfg_.path.c_str(), cfg_.path.size() + 1);
  // Whatever is at the path and is not a socket (a typo naming a file) stays.
  struct stat st{};
  if (lstat(cfg_.path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode)) {
    err = "control socket " + cfg_.path + ": exists and is not a socket (not replacing it; give --ctl-sock PATH)";
    return false;
  }
  // Someone answering on the path: another gateway owns it.
  int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe >= 0 && connect(probe, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0) {
    close(probe);
    err = "control socket " + cfg_.path + " is in use by another gateway (give --ctl-sock PATH)";
    return false;
  }
  if (probe >= 0)
    close(probe);
  unlink(cfg_.path.c_str());  // a stale socket of a gateway that died
  const bool grouped = cfg_.group != static_cast<gid_t>(-1);
  const mode_t mode = grouped ? 0660 : 0600;
  auto fail = [&](const char *what, bool bound) {
    err = "control socket " + cfg_.path + ": " + what + ": " + std::strerror(errno);
    if (fd_ >= 0)
      close(fd_);
    fd_ = -1;
    if (bound)
      unlink(cfg_.path.c_str());
    return false;
  };
  fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0)
    return fail("socket", false);
  // Linux creates the file with the socket's own mode less the umask: 0600
  // here, so it is never wider than that, not for an instant, whatever the
  // umask. The group and 0660 (--ctl-group) follow once it has its group.
  if (fchmod(fd_, 0600) != 0)
    return fail("fchmod", false);
  if (bind(fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0)
    return fail("bind", false);
  if (grouped && lchown(cfg_.path.c_str(), static_cast<uid_t>(-1), cfg_.group) != 0)
    return fail("chown to the control group", true);
  if (chmod(cfg_.path.c_str(), mode) != 0)
    return fail("chmod", true);
  if (listen(fd_, 128) != 0 || !set_nonblock(fd_))
    return fail("listen", true);
  if (pipe2(wake_, O_CLOEXEC) != 0)
    return fail("pipe", true);
  th_ = std::thread([this] { run(); });
  return true;
}

// SO_PEERCRED: the credentials the client connected with. Root, the
// gateway's own user and, with --ctl-group, the group's members (primary or
// supplementary, SO_PEERGROUPS) may use the socket.
bool server::peer_allowed(int fd, std::string &why) const {
  ucred cr{};
  socklen_t len = sizeof cr;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0) {
    why = std::string("cannot read the client's credentials: ") + std::strerror(errno);
    return false;
  }
  const uid_t self = geteuid();
  if (cr.uid == 0 || cr.uid == self)
    return true;
  const bool grouped = cfg_.group != static_cast<gid_t>(-1);
  if (grouped) {
    if (cr.gid == cfg_.group)
      return true;
    std::vector<gid_t> groups(64);
    for (int tries = 0; tries < 2; ++tries) {
      socklen_t glen = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
      if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &glen) == 0) {
        groups.resize(glen / sizeof(gid_t));
        if (std::find(groups.begin(), groups.end(), cfg_.group) != groups.end())
          return true;
        break;
      }
      if (errno != ERANGE)
        break;
      groups.resize(glen / sizeof(gid_t) + 1);
    }
  }
  why = "permission denied: uid " + std::to_string(cr.uid) +
        (grouped ? " is neither root, the gateway's user (uid " + std::to_string(self) +
                       ") nor in its control group (gid " + std::to_string(cfg_.group) + ")"
                 : " is neither root nor the gateway's user (uid " + std::to_string(self) +
                       "); hde-gateway --ctl-group NAME lets a group in");
  return false;
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
  auto error_line = [](const std::string &msg) {
    return json{{"ok", false}, {"error", msg}}.dump() + "\n";
  };
  for (;;) {
    pfds.clear();
    pfds.push_back({wake_[0], POLLIN, 0});
    pfds.push_back({fd_, POLLIN, 0});
    pfds.push_back({task_ ? task_fd_ : -1, POLLIN, 0});  // fd -1: ignored by poll()
    for (const client &c : clients) {
      // No more requests read from a client that is leaving or has not
      // taken its replies yet; what it owes stays in the kernel's buffer.
      const bool reading = !c.eof && !c.closing && c.out.size() < cfg_.max_pending;
      pfds.push_back({c.fd, static_cast<short>((reading ? POLLIN : 0) | (c.out.empty() ? 0 : POLLOUT)), 0});
    }
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
      if (!drop && (rev & POLLHUP) && (c.eof || c.closing || c.out.size() >= cfg_.max_pending))
        drop = true;  // gone both ways: nobody reads what is left
      if (!drop && !c.eof && (rev & (POLLIN | POLLHUP))) {
        char buf[4096];
        ssize_t n = recv(c.fd, buf, sizeof buf, 0);
        if (n == 0) {
          c.eof = true;
        } else if (n < 0) {
          drop = errno != EAGAIN && errno != EINTR;
        } else {
          c.last_ms = now;
          c.in.append(buf, static_cast<std::size_t>(n));
        }
      }
      // Answer complete lines while the replies waiting stay under the bound.
      std::size_t nl;
      while (!drop && !c.closing && c.out.size() < cfg_.max_pending && (nl = c.in.find('\n')) != std::string::npos) {
        if (nl > cfg_.max_request)
          break;
        c.out += reg_.handle(std::string_view(c.in).substr(0, nl));
        c.out += '\n';
        ++st_.replies;
        c.in.erase(0, nl + 1);
      }
      if (!drop && !c.closing && c.eof && c.in.find('\n') == std::string::npos)
        c.closing = true;  // every request it sent is answered (a last one without newline is not one)
      if (!drop && !c.closing) {
        nl = c.in.find('\n');
        if ((nl == std::string::npos ? c.in.size() : nl) > cfg_.max_request) {
          ++st_.oversized;
          c.out += error_line("request longer than " + std::to_string(cfg_.max_request) + " bytes");
          c.in.clear();
          c.closing = true;
        }
      }
      if (!drop && !c.out.empty()) {
        ssize_t n = send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
          c.out.erase(0, static_cast<std::size_t>(n));
          c.last_ms = now;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
          ++st_.write_failed;
          drop = true;
        }
      }
      if (!drop && c.closing && c.out.empty())
        drop = true;
      if (!drop && now - c.last_ms > cfg_.idle_timeout_ms) {
        ++(c.out.empty() ? st_.idle_dropped : st_.slow_dropped);
        drop = true;
      }
      if (drop) {
        close(c.fd);
        c.fd = -1;
      }
    }
    if (pfds[1].revents & POLLIN) {
      // A bounded number per turn: a flood of connections cannot hold the
      // thread here (the rest wait in the backlog for the next turn).
      for (unsigned k = 0; k < cfg_.accept_burst; ++k) {
        int cfd = accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0)
          break;
        std::string why;
        if (!peer_allowed(cfd, why)) {
          ++st_.refused_peer;
          refuse(cfd, error_line(why));
          continue;
        }
        if (std::count_if(clients.begin(), clients.end(), [](const client &c) { return c.fd >= 0; }) >=
            static_cast<std::ptrdiff_t>(cfg_.max_clients)) {
          ++st_.rejected_busy;
          refuse(cfd, error_line("too many control clients (at most " + std::to_string(cfg_.max_clients) +
                                 " at once)"));
          continue;
        }
        ++st_.accepted;
        clients.push_back({cfd, {}, {}, now, false, false});
      }
    }
    std::erase_if(clients, [](const client &c) { return c.fd < 0; });
    st_.connected = clients.size();
  }
  for (client &c : clients)
    close(c.fd);
}

}  // namespace hde::ctl
