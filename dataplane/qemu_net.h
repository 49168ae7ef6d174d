// qemu_net.h — the sockets between a gateway and QEMU: the address forms
// QEMU's `migrate` and `-incoming` take (unix:PATH, tcp:HOST:PORT), a
// listener, a connector, and a buffered blocking writer. Control-rate code
// on plain threads, never on an lcore.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace hde::dp {

struct qemu_addr {
  bool is_unix = true;
  std::string path;   // unix
  std::string host;   // tcp
  std::uint16_t port = 0;
  std::string text;   // as given
};

// One address; false with err when it is not unix:PATH or tcp:HOST:PORT.
bool parse_qemu_addr(const std::string &s, qemu_addr &a, std::string &err);
// A comma list of addresses (--qemu-connect); every entry must parse.
bool check_qemu_addrs(const std::string &list, std::string &err);
// Entry vm of a comma list ({vm} replaced by the id; the last entry serves
// higher ids when it has {vm}); false when there is none for vm.
bool qemu_addr_for_vm(const std::string &list, std::uint32_t vm, qemu_addr &a, std::string &err);

// A listening socket, non-blocking (accept4 returns EAGAIN when no one
// waits; the accepted sockets block); unix: the file is replaced. -1 with err.
int qemu_listen(const qemu_addr &a, std::string &err);
// Connect, retrying for up to retry_ms while the peer is not there yet; -1 with err.
int qemu_connect(const qemu_addr &a, unsigned retry_ms, std::string &err);

// Writes everything or fails (EPIPE when QEMU went away: no SIGPIPE).
bool write_all(int fd, const std::byte *p, std::size_t n, std::string &err);

// A buffered writer on a blocking socket.
class fd_writer {
public:
  explicit fd_writer(int fd = -1, std::size_t cap = 256 * 1024) : fd_(fd) { buf_.reserve(cap); cap_ = cap; }
  void reset(int fd) { fd_ = fd; buf_.clear(); }
  bool write(std::span<const std::byte> b);
  bool flush();
  bool ok() const { return err_.empty(); }
  const std::string &error() const { return err_; }
  std::uint64_t bytes() const { return bytes_; }
  int fd() const { return fd_; }

private:
  int fd_;
  std::size_t cap_;
  std::vector<std::byte> buf_;
  std::string err_;
  std::uint64_t bytes_ = 0;
};

}  // namespace hde::dp
