// sync_udp.h — the sync protocol's real wire: a non-blocking UDP socket
// (IPv4 "IP:PORT" addresses), the pre-shared key file, and a steady clock.
// The owner polls fd() for input, calls drain() then sync_node::poll().
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace hde::sync {

// "IP:PORT" with a dotted IPv4 address and a port 1..65535.
bool valid_addr(const std::string &addr);

// The key: the file's bytes (a trailing newline dropped), 16..4096 bytes.
// Refused when the file is readable or writable by group or others.
bool read_key_file(const std::string &path, std::vector<std::uint8_t> &key, std::string &err,
                   const char *what = "sync key file");

// Milliseconds of a steady clock, and of the wall clock (epochs).
std::uint64_t steady_ms();
std::uint64_t wall_ms();

class udp_endpoint {
public:
  udp_endpoint() = default;
  udp_endpoint(const udp_endpoint &) = delete;
  udp_endpoint &operator=(const udp_endpoint &) = delete;
  ~udp_endpoint();
  // Port 0: the kernel picks one (local_addr() says which).
  bool bind(const std::string &addr, std::string &err);
  std::string local_addr() const;
  int fd() const { return fd_; }
  void send(const std::string &addr, std::span<const std::uint8_t> d);
  // Every datagram waiting, to fn(from, bytes); a datagram larger than the
  // buffer arrives cut at 2048 bytes (so it reads as oversize).
  void drain(const std::function<void(const std::string &, std::span<const std::uint8_t>)> &fn);
  std::uint64_t send_errors() const { return send_errors_; }

private:
  int fd_ = -1;
  std::uint64_t send_errors_ = 0;
};

}  // namespace hde::sync
