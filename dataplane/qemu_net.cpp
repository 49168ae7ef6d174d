// qemu_net.cpp — see qemu_net.h.
#include "qemu_net.h"

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

namespace hde::dp {

bool parse_qemu_addr(const std::string &s, qemu_addr &a, std::string &err) {
  a = qemu_addr{};
  a.text = s;
  if (s.rfind("unix:", 0) == 0) {
    a.is_unix = true;
    a.path = s.substr(5);
    if (a.path.empty() || a.path.size() >= sizeof(sockaddr_un{}.sun_path)) {
      err = "bad QEMU address '" + s + "': unix:PATH with a path of 1.." +
            std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " characters";
      return false;
    }
    return true;
  }
  if (s.rfind("tcp:", 0) == 0) {
    const std::string rest = s.substr(4);
    const auto c = rest.rfind(':');
    char *end = nullptr;
    const unsigned long port = c == std::string::npos ? 0 : std::strtoul(rest.c_str() + c + 1, &end, 10);
    if (c == std::string::npos || c == 0 || port == 0 || port > 65535 || end == nullptr || *end != '\0') {
      err = "bad QEMU address '" + s + "': tcp:HOST:PORT";
      return false;
    }
    a.is_unix = false;
    a.host = rest.substr(0, c);
    if (a.host.size() > 2 && a.host.front() == '[' && a.host.back() == ']')
      a.host = a.host.substr(1, a.host.size() - 2);
    a.port = static_cast<std::uint16_t>(port);
    return true;
  }
  err = "bad QEMU address '" + s + "': unix:PATH or tcp:HOST:PORT (QEMU's migration URIs)";
  return false;
}

namespace {
std::vector<std::string> split(const std::string &s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    auto c = s.find(',', start);
    if (c == std::string::npos)
      c = s.size();
    out.push_back(s.substr(start, c - start));
    start = c + 1;
  }
  return out;
}
std::string subst(const std::string &s, std::uint32_t vm) {
  std::string out;
  std::size_t from = 0;
  for (auto p = s.find("{vm}"); p != std::string::npos; p = s.find("{vm}", from)) {
    out.append(s, from, p - from);
    out += std::to_string(vm);
    from = p + 4;
  }
  out.append(s, from, std::string::npos);
  return out;
}
}  // namespace

bool check_qemu_addrs(const std::string &list, std::string &err) {
  qemu_addr a;
  for (const auto &e : split(list))
    if (!parse_qemu_addr(subst(e, 0), a, err))
      return false;
  return true;
}

bool qemu_addr_for_vm(const std::string &list, std::uint32_t vm, qemu_addr &a, std::string &err) {
  const auto v = split(list);
  std::string e;
  if (vm < v.size())
    e = v[vm];
  else if (v.back().find("{vm}") != std::string::npos)
    e = v.back();
  else {
    err = "no --qemu-connect address for VM " + std::to_string(vm) + " (give a list, or {vm} in the last entry)";
    return false;
  }
  return parse_qemu_addr(subst(e, vm), a, err);
}

namespace {
bool resolve(const qemu_addr &a, bool passive, addrinfo *&res, std::string &err) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  const std::string port = std::to_string(a.port);
  if (int rc = getaddrinfo(a.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    err = a.text + ": " + gai_strerror(rc);
    return false;
  }
  return true;
}
}  // namespace

int qemu_listen(const qemu_addr &a, std::string &err) {
  if (a.is_unix) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, a.path.c_str(), a.path.size() + 1);
    unlink(a.path.c_str());
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) != 0 || listen(fd, 64) != 0) {
      err = "cannot listen on " + a.text + ": " + std::strerror(errno);
      if (fd >= 0)
        close(fd);
      return -1;
    }
    return fd;
  }
  addrinfo *res = nullptr;
  if (!resolve(a, true, res, err))
    return -1;
  int fd = -1;
  for (addrinfo *r = res; r != nullptr; r = r->ai_next) {
    fd = socket(r->ai_family, r->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, r->ai_protocol);
    if (fd < 0)
      continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, r->ai_addr, r->ai_addrlen) == 0 && listen(fd, 64) == 0)
      break;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0)
    err = "cannot listen on " + a.text + ": " + std::strerror(errno);
  return fd;
}

int qemu_connect(const qemu_addr &a, unsigned retry_ms, std::string &err) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(retry_ms);
  for (;;) {
    int fd = -1;
    if (a.is_unix) {
      fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_un sa{};
      sa.sun_family = AF_UNIX;
      std::memcpy(sa.sun_path, a.path.c_str(), a.path.size() + 1);
      if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) == 0)
        return fd;
    } else {
      addrinfo *res = nullptr;
      if (!resolve(a, false, res, err))
        return -1;
      for (addrinfo *r = res; r != nullptr; r = r->ai_next) {
        fd = socket(r->ai_family, r->ai_socktype | SOCK_CLOEXEC, r->ai_protocol);
        if (fd >= 0 && connect(fd, r->ai_addr, r->ai_addrlen) == 0) {
          int one = 1;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          freeaddrinfo(res);
          return fd;
        }
        if (fd >= 0)
          close(fd);
        fd = -1;
      }
      freeaddrinfo(res);
    }
    const int e = errno;
    if (fd >= 0)
      close(fd);
    if (std::chrono::steady_clock::now() >= until) {
      err = "cannot connect to " + a.text + ": " + std::strerror(e);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

bool write_all(int fd, const std::byte *p, std::size_t n, std::string &err) {
  while (n > 0) {
    const ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      err = std::strerror(errno);
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

bool fd_writer::write(std::span<const std::byte> b) {
  if (!err_.empty())
    return false;
  bytes_ += b.size();
  if (buf_.size() + b.size() > cap_ && !flush())
    return false;
  if (b.size() >= cap_)
    return write_all(fd_, b.data(), b.size(), err_);
  buf_.insert(buf_.end(), b.begin(), b.end());
  return true;
}

bool fd_writer::flush() {
  if (!err_.empty())
    return false;
  if (!buf_.empty() && !write_all(fd_, buf_.data(), buf_.size(), err_))
    return false;
  buf_.clear();
  return true;
}

}  // namespace hde::dp
