// sync_udp.cpp — UDP socket, key file and clocks for the sync (sync_udp.h).
#include "sync_udp.h"

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

namespace hde::sync {

namespace {

bool to_sockaddr(const std::string &addr, sockaddr_in &sa, bool any_port = false) {
  const auto colon = addr.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= addr.size())
    return false;
  const std::string ip = addr.substr(0, colon), port = addr.substr(colon + 1);
  char *end = nullptr;
  const unsigned long p = std::strtoul(port.c_str(), &end, 10);
  if (*end != '\0' || (p == 0 && !any_port) || p > 65535 || port[0] == '-' || port[0] == '+')
    return false;
  sa = {};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(p));
  return inet_pton(AF_INET, ip.c_str(), &sa.sin_addr) == 1;
}

std::string to_string(const sockaddr_in &sa) {
  char ip[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
  return std::string(ip) + ":" + std::to_string(ntohs(sa.sin_port));
}

}  // namespace

bool valid_addr(const std::string &addr) {
  sockaddr_in sa;
  return to_sockaddr(addr, sa);
}

bool read_key_file(const std::string &path, std::vector<std::uint8_t> &key, std::string &err, const char *what) {
  const std::string label = what;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    err = label + " " + path + ": " + std::strerror(errno);
    return false;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    err = label + " " + path + ": not a regular file";
    return false;
  }
  if ((st.st_mode & 077) != 0) {
    close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    err = label + " " + path + " has mode " + mode +
          ": it must not be readable or writable by group or others (chmod 600 " + path + ")";
    return false;
  }
  std::vector<std::uint8_t> b(4097);
  std::size_t n = 0;
  for (ssize_t r; n < b.size() && (r = read(fd, b.data() + n, b.size() - n)) > 0;)
    n += static_cast<std::size_t>(r);
  close(fd);
  while (n > 0 && (b[n - 1] == '\n' || b[n - 1] == '\r'))
    --n;
  if (n < 16 || n > 4096) {
    err = label + " " + path + ": the key must be 16 to 4096 bytes (e.g. head -c 32 /dev/urandom | base64 > FILE), it is " +
          std::to_string(n);
    return false;
  }
  key.assign(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
  return true;
}

std::uint64_t steady_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

std::uint64_t wall_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

udp_endpoint::~udp_endpoint() {
  if (fd_ >= 0)
    close(fd_);
}

bool udp_endpoint::bind(const std::string &addr, std::string &err) {
  sockaddr_in sa;
  if (!to_sockaddr(addr, sa, true)) {
    err = "bad sync address '" + addr + "' (IPv4 IP:PORT)";
    return false;
  }
  fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr *>(&sa), sizeof sa) != 0) {
    err = "sync socket " + addr + ": " + std::strerror(errno);
    if (fd_ >= 0)
      close(fd_);
    fd_ = -1;
    return false;
  }
  return true;
}

std::string udp_endpoint::local_addr() const {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  if (fd_ < 0 || getsockname(fd_, reinterpret_cast<sockaddr *>(&sa), &len) != 0)
    return {};
  return to_string(sa);
}

void udp_endpoint::send(const std::string &addr, std::span<const std::uint8_t> d) {
  sockaddr_in sa;
  if (fd_ < 0 || !to_sockaddr(addr, sa) ||
      sendto(fd_, d.data(), d.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr *>(&sa), sizeof sa) < 0)
    ++send_errors_;
}

void udp_endpoint::drain(const std::function<void(const std::string &, std::span<const std::uint8_t>)> &fn) {
  std::uint8_t buf[2048];
  for (;;) {
    sockaddr_in sa{};
    socklen_t len = sizeof sa;
    const ssize_t n = recvfrom(fd_, buf, sizeof buf, MSG_TRUNC, reinterpret_cast<sockaddr *>(&sa), &len);
    if (n < 0)
      return;
    fn(to_string(sa), std::span<const std::uint8_t>(buf, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof buf)));
  }
}

}  // namespace hde::sync
