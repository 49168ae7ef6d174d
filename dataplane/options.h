// options.h — hde-gateway's application options (the arguments after `--`).
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "engine/encoder.h"
#include "impair.h"

namespace hde::dp {

enum class role { source, dest, loopback };

struct options {
  role r = role::source;
  // Source: pages come from a trace directory (corpus format) or raw images.
  std::string trace;
  bool preload = false;            // load the whole trace before sending (benchmarks)
  std::string gen;                 // synthetic trace spec instead of --trace (generator.h)
  // Destination: one image file per VM is written here on completion.
  std::string sink;
  // QEMU (qemu_ingress.h, qemu_egress.h): the source listens for a QEMU
  // migration, the destination feeds its QEMU. Empty: trace mode.
  std::string qemu_listen;         // unix:PATH or tcp:HOST:PORT
  std::string qemu_connect;        // the same forms; a comma list (VM id i takes entry i; "{vm}" is replaced)
  std::size_t qemu_buffer_mb = 64;
  std::string qemu_record;         // tests: write every byte read from QEMU to DIR/vm-<id>/main.bin, .../multifd-<i>.bin // source: pages read from QEMU and not yet encoded, per VM
  bool exit_on_complete = false;
  std::uint32_t workers = 1;       // worker lcores (= streams) on the source
  std::uint32_t decoders = 1;      // decode lcores on the destination (streams spread over them)
  mode m = mode::datacenter;
  std::string codec;               // empty: the mode's default
  std::size_t cache_mb = 256;      // baseline cache per stream
  bool cache_auto = true;          // no --cache-mb: the guest's RAM (<= 4 GiB) over the streams, >= 256 MiB each
  std::size_t mtu = 1500;
  std::uint16_t port = 0;          // DPDK port id (source side in loopback)
  std::uint16_t udp_port = 47000;  // UDP port on both sides
  std::uint32_t src_ip = 0xC6120001;  // 198.18.0.1 (RFC 2544 benchmarking range)
  std::uint32_t dst_ip = 0xC6120002;  // 198.18.0.2
  bool check_peer = true;          // destination: drop frames from other IPs
  // Addressing (arp_port.h): frames go to the peer's MAC, given here or
  // resolved by ARP for the peer's IP (or for gateway_ip, a router towards it).
  bool have_peer_mac = false;
  std::array<std::uint8_t, 6> peer_mac{};
  std::uint32_t gateway_ip = 0;    // 0: the peer is on this Ethernet segment
  std::uint32_t window = 16384;    // frames held per stream (power of two): >= 2 BDP of the link
  std::uint32_t rto_us = 200000;   // minimum retransmit timeout (RTT-based above it); RACK and
                                   // tail-loss probes repair loss long before it
  std::uint32_t idle_sleep_us = 50;  // back-off sleep when idle (0: busy poll)
  std::uint32_t timeout_s = 60;    // give up after this long without progress
  std::size_t max_vm_mb = 16384;   // destination: largest VM image
  std::uint32_t fault_forget_every = 0;  // dest, tests: drop a baseline every N frames (0: never)
  impair_spec impair;              // tests: drop/duplicate/reorder transmitted frames
  bool quiet = false;
  std::string ctl_sock;            // control socket; empty: <DPDK runtime dir>/hde.sock
  std::string ctl_group;           // control socket 0660 for this group (name or gid); empty: 0600
  std::int64_t ctl_gid = -1;       // ctl_group resolved
  std::uint64_t link_rate_bps = 0; // pace the source to this rate; 0 = unlimited
  // Source: forward error correction (fec_stream.h). fec_k = 0: off;
  // fec_auto: on and sized from the measured loss and RTT (fec_auto()).
  unsigned fec_k = 0, fec_m = 0;
  bool fec_auto = false;
  // Fleet sync between gateways (control/sync.h, docs/sync.md): on with
  // --sync-listen; without it the gateway runs alone, as before.
  std::uint32_t node_id = 0;       // unique in the fleet, 1..2^32-1
  std::string sync_listen;         // IP:PORT of the sync's UDP socket
  std::string peers;               // IP:PORT,... of other gateways' sync sockets
  std::string sync_key_file;       // the fleet's pre-shared key (mode 0600 or stricter)
  std::uint32_t sync_interval_ms = 500;
  // Frames sealed with AES-256-GCM (frame_crypto.h): on with --key-file.
  // Internet and hybrid modes refuse to run without one unless --no-encrypt.
  std::string key_file;
  bool no_encrypt = false;
  std::string crypto_dev;          // cryptodev name; empty: first with AES-GCM, else a software vdev
  std::uint32_t key_grace_s = 60;  // the old key stays accepted this long after `key rotate`
  std::uint32_t replay_window_s = 300;  // dest: a sealed stream start older (clock skew) is a replay; 0: off
};

// "off", "auto" or "K,M" (1 <= K <= 64, 1 <= M <= 16, M <= K).
bool parse_fec(const std::string &s, unsigned &k, unsigned &m, bool &automatic);

// "10g", "100m", "1.5g", "0" (unlimited): bits per second.
bool parse_rate(const std::string &s, std::uint64_t &bps);

// Parse argv (the part after EAL's); with --config FILE, the file's settings
// first, then the command line over them. Returns false and prints a clear
// error.
bool parse_options(int argc, char **argv, options &o);
void print_usage(const char *prog);
const char *role_name(role r);

}  // namespace hde::dp
