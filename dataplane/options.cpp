// options.cpp — getopt_long parsing of hde-gateway's application options.
#include "options.h"
#include "arp.h"
#include "qemu_net.h"

#include "fec.h"
#include "generator.h"
#include "sync_udp.h"

#include <arpa/inet.h>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <getopt.h>
#include <grp.h>
#include <string>
#define TOML_EXCEPTIONS 0   // parse errors as values
#define TOML_HEADER_ONLY 1  // the shared library is built for exceptions
#include <toml++/toml.h>
#include <vector>

namespace hde::dp {

bool parse_argv(int argc, char **argv, options &o);

const char *role_name(role r) {
  switch (r) {
  case role::source: return "source";
  case role::dest: return "dest";
  case role::loopback: return "loopback";
  }
  return "?";
}

void print_usage(const char *prog) {
  std::printf(
      "usage: %s [EAL args] -- --role source|dest|loopback [options]\n"
      "  --role R             source: send a trace; dest: rebuild images;\n"
      "                       loopback: both in one process over a net_ring pair it creates\n"
      "  --trace DIR|IMG,...  source: trace directory (manifest.json) or raw images, comma-separated\n"
      "  --preload            source: load the whole trace before sending (benchmarks)\n"
      "  --gen SPEC           source: a synthetic trace instead of --trace, e.g.\n"
      "                       mib=64,rounds=4,dirty=0.08,zero=0.25,dup=0.05,entropy=0.3,seed=1\n"
      "  --qemu-listen ADDR   source: take a live migration from QEMU (QMP migrate uri=ADDR);\n"
      "                       ADDR unix:PATH or tcp:HOST:PORT; instead of --trace\n"
      "  --qemu-connect ADDR  dest: feed the migration to the QEMU started with -incoming ADDR\n"
      "                       (a comma list: VM i takes entry i; {vm} is replaced by the id)\n"
      "  --qemu-buffer-mb N   source: pages read from QEMU not yet encoded, MiB per VM (default:\n"
      "                       0.1 s of --link-rate, 2..256; 64 without a link rate)\n"
      "  --qemu-record DIR    source, for tests: record every byte read from QEMU (DIR/vm-<id>/main.bin,\n"
      "                       DIR/vm-<id>/multifd-<i>.bin, i in accept order) for hde-qemu-dump\n"
      "  --sink DIR           dest: write DIR/vm-<id>.raw on completion\n"
      "  --exit-on-complete   dest: exit 0 once the last round is complete\n"
      "  --workers N          source: worker lcores, one stream each (default 1)\n"
      "  --decoders N         dest: decode lcores; stream s is decoded by s mod N (default 1)\n"
      "  --mode M             datacenter | internet | hybrid (default datacenter)\n"
      "  --codec C            raw | lz4[:accel] | zstd[:1-19] | igzip[:0-3] (not with hybrid)\n"
      "  --cache-mb N         baseline cache per stream, MiB (default: the guest's RAM, at most\n"
      "                       4096, over the streams, at least 256 each)\n"
      "  --mtu N              link MTU (default 1500)\n"
      "  --port N             DPDK port id (default 0)\n"
      "  --udp-port N         UDP port on both sides (default 47000)\n"
      "  --src-ip A --dst-ip A  IPv4 addresses of source and destination\n"
      "                       (default 198.18.0.1 and 198.18.0.2)\n"
      "  --any-peer           dest: accept frames from any source address\n"
      "  --peer-mac MAC       the peer gateway's MAC (source: the destination's; dest: the source's):\n"
      "                       frames go there, no ARP for it (default: resolved by ARP)\n"
      "  --gateway-ip A       an IP router towards the peer: ARP for it, and frames go to its MAC\n"
      "                       (default: the peer is on this Ethernet segment)\n"
      "  --window N           frames held per stream (sent or queued), power of two (default 16384)\n"
      "  --rto-us N           minimum retransmit timeout; above it the timeout follows\n"
      "                       the measured round trip (default 200000; RACK and tail-loss\n"
      "                       probes repair loss first)\n"
      "  --idle-sleep-us N    sleep when idle, 0 = busy poll (default 50)\n"
      "  --timeout N          give up after N s without progress (default 60)\n"
      "  --max-vm-mb N        dest: largest VM image (default 16384)\n"
      "  --impair SPEC        tests: impair what this gateway transmits, e.g.\n"
      "                       loss=0.02,dup=0.01,reorder=0.05,seed=7 (each 0..0.5)\n"
      "  --fault-forget-every N  dest, for tests: drop a baseline every N frames; the pages\n"
      "                       that needed it are asked for again (REPAIR) (default 0: never)\n"
      "  --quiet              no progress lines\n"
      "  --ctl-sock PATH      control socket for hdectl (default <DPDK runtime dir>/hde.sock); mode\n"
      "                       0600: root and this gateway's user may use it\n"
      "  --ctl-group NAME     the control socket 0660 with group NAME (or a gid): its members may\n"
      "                       use it too\n"
      "  --link-rate RATE     source: pace to RATE bits/s (0 = unlimited, 500m, 10g)\n"
      "  --fec off|auto|K,M   source: after every K frames of a stream send M parity frames\n"
      "                       (ISA-L Reed-Solomon); the destination rebuilds up to M lost\n"
      "                       frames of the group without a round trip. auto: on when the\n"
      "                       measured loss x RTT makes retransmission costly (default off)\n"
      "  --node-id N          fleet sync: this gateway's node id, unique in the fleet (1..4294967295)\n"
      "  --sync-listen IP:PORT  fleet sync: the UDP socket of the CRDT sync (docs/sync.md); without\n"
      "                       it the gateway runs alone\n"
      "  --peers IP:PORT,...  fleet sync: other gateways' sync sockets (more are learned from them)\n"
      "  --sync-key-file F    fleet sync: the fleet's pre-shared key (16..4096 bytes; refused when\n"
      "                       group or others may read it)\n"
      "  --sync-interval-ms N fleet sync: gossip round (default 500)\n"
      "  --key-file F         seal every frame with AES-256-GCM under the key derived from F's\n"
      "                       secret (16..4096 bytes, e.g. head -c 32 /dev/urandom | base64 > F;\n"
      "                       refused when group or others may read it); both gateways need it\n"
      "  --no-encrypt         internet or hybrid mode without --key-file: frames travel in clear\n"
      "  --crypto-dev NAME    cryptodev to use (default: the first with AES-256-GCM from EAL's\n"
      "                       --vdev/-a, else crypto_aesni_gcm, else crypto_openssl)\n"
      "  --key-grace-s N      after `hdectl key rotate`, the old key stays accepted N s (default 60)\n"
      "  --replay-window-s N  dest, sealed: a stream start whose seal is more than N s off our\n"
      "                       clock is a replay (default 300; 0: epochs seen before only)\n"
      "  --config FILE        settings from a TOML file (keys are these option names with\n"
      "                       '_' for '-'); options on the command line override it\n",
      prog);
}

bool parse_fec(const std::string &s, unsigned &k, unsigned &m, bool &automatic) {
  automatic = false;
  if (s == "off" || s == "0") {
    k = m = 0;
    return true;
  }
  if (s == "auto") {
    k = m = 0;
    automatic = true;
    return true;
  }
  unsigned long kk = 0, mm = 0;
  char *end = nullptr;
  errno = 0;
  kk = std::strtoul(s.c_str(), &end, 10);
  if (errno != 0 || end == s.c_str() || *end != ',' || !std::isdigit(static_cast<unsigned char>(end[1])))
    return false;
  const char *p = end + 1;
  mm = std::strtoul(p, &end, 10);
  if (errno != 0 || *end != '\0' || kk < 1 || kk > kFecMaxK || mm < 1 || mm > kFecMaxM || mm > kk)
    return false;
  k = static_cast<unsigned>(kk);
  m = static_cast<unsigned>(mm);
  return true;
}

namespace {

bool parse_u64(const char *s, std::uint64_t lo, std::uint64_t hi, std::uint64_t &out) {
  char *end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
    return false;
  out = v;
  return true;
}

// A group name, or a number (a gid, which need not have a name).
bool resolve_group(const char *s, std::int64_t &gid) {
  std::uint64_t v = 0;
  if (parse_u64(s, 0, 0xFFFFFFFEull, v)) {
    gid = static_cast<std::int64_t>(v);
    return true;
  }
  std::vector<char> buf(16384);
  group g{}, *res = nullptr;
  if (getgrnam_r(s, &g, buf.data(), buf.size(), &res) != 0 || res == nullptr)
    return false;
  gid = static_cast<std::int64_t>(res->gr_gid);
  return true;
}

bool parse_ip(const char *s, std::uint32_t &out) {
  in_addr a{};
  if (inet_pton(AF_INET, s, &a) != 1)
    return false;
  out = ntohl(a.s_addr);
  return true;
}

}  // namespace

bool parse_rate(const std::string &s, std::uint64_t &bps) {
  char *end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || v < 0)
    return false;
  const std::string unit(end);
  double mul = 1;
  if (unit == "k" || unit == "K")
    mul = 1e3;
  else if (unit == "m" || unit == "M")
    mul = 1e6;
  else if (unit == "g" || unit == "G")
    mul = 1e9;
  else if (!unit.empty())
    return false;
  bps = static_cast<std::uint64_t>(v * mul);
  return true;
}

namespace {

// The TOML file as command-line words: key = value -> --key value, true ->
// --key, false -> nothing. Every value then goes through the same checks.
bool config_args(const std::string &path, std::vector<std::string> &words) {
  toml::parse_result res = toml::parse_file(path);
  if (!res) {
    const auto &e = res.error();
    std::fprintf(stderr, "hde-gateway: %s:%u:%u: %s\n", path.c_str(), e.source().begin.line,
                 e.source().begin.column, std::string(e.description()).c_str());
    return false;
  }
  for (const auto &[k, v] : res.table()) {
    std::string key(k.str());
    for (char &c : key)
      if (c == '_')
        c = '-';
    if (key == "config") {
      std::fprintf(stderr, "hde-gateway: %s: 'config' cannot name another file\n", path.c_str());
      return false;
    }
    if (auto b = v.value<bool>(); b && v.is_boolean()) {
      if (*b)
        words.push_back("--" + key);
    } else if (auto i = v.value<std::int64_t>(); i && v.is_integer()) {
      words.push_back("--" + key);
      words.push_back(std::to_string(*i));
    } else if (auto s = v.value<std::string>(); s && v.is_string()) {
      words.push_back("--" + key);
      words.push_back(*s);
    } else {
      std::fprintf(stderr, "hde-gateway: %s: '%s' must be a string, an integer or a boolean\n", path.c_str(),
                   std::string(k.str()).c_str());
      return false;
    }
  }
  return true;
}

}  // namespace

bool parse_options(int argc, char **argv, options &o) {
  // --config FILE: its settings go first, the command line after (wins).
  std::vector<std::string> words{argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    std::string file;
    if (a == "--config" && i + 1 < argc)
      file = argv[i + 1];
    else if (a.rfind("--config=", 0) == 0)
      file = a.substr(9);
    if (!file.empty() && !config_args(file, words))
      return false;
  }
  if (words.size() == 1)
    return parse_argv(argc, argv, o);
  for (int i = 1; i < argc; ++i)
    words.push_back(argv[i]);
  std::vector<char *> av;
  for (auto &w : words)
    av.push_back(w.data());
  av.push_back(nullptr);
  return parse_argv(static_cast<int>(words.size()), av.data(), o);
}

bool parse_argv(int argc, char **argv, options &o) {
  enum {
    o_role = 256, o_trace, o_sink, o_exit, o_workers, o_decoders, o_mode, o_codec, o_cache, o_mtu, o_port,
    o_udp, o_src, o_dst, o_peer_mac, o_gateway, o_any, o_window, o_rto, o_idle, o_timeout, o_maxvm, o_quiet, o_help, o_preload, o_gen, o_ctl, o_rate, o_config,
    o_fault, o_impair, o_fec, o_qlisten, o_qconnect, o_qbuffer, o_qrecord,
    o_node_id, o_sync_listen, o_peers, o_sync_key, o_sync_interval, o_ctl_group,
    o_key_file, o_no_encrypt, o_crypto_dev, o_key_grace, o_replay_window
  };
  static const option longopts[] = {
      {"role", required_argument, nullptr, o_role},       {"trace", required_argument, nullptr, o_trace},
      {"sink", required_argument, nullptr, o_sink},       {"exit-on-complete", no_argument, nullptr, o_exit},
      {"workers", required_argument, nullptr, o_workers},
      {"decoders", required_argument, nullptr, o_decoders}, {"mode", required_argument, nullptr, o_mode},
      {"codec", required_argument, nullptr, o_codec},     {"cache-mb", required_argument, nullptr, o_cache},
      {"mtu", required_argument, nullptr, o_mtu},         {"port", required_argument, nullptr, o_port},
      {"udp-port", required_argument, nullptr, o_udp},    {"src-ip", required_argument, nullptr, o_src},
      {"dst-ip", required_argument, nullptr, o_dst},      {"any-peer", no_argument, nullptr, o_any},
      {"peer-mac", required_argument, nullptr, o_peer_mac}, {"gateway-ip", required_argument, nullptr, o_gateway},
      {"window", required_argument, nullptr, o_window},   {"rto-us", required_argument, nullptr, o_rto},
      {"idle-sleep-us", required_argument, nullptr, o_idle},
      {"timeout", required_argument, nullptr, o_timeout}, {"max-vm-mb", required_argument, nullptr, o_maxvm},
      {"quiet", no_argument, nullptr, o_quiet},           {"preload", no_argument, nullptr, o_preload},
      {"gen", required_argument, nullptr, o_gen},         {"ctl-sock", required_argument, nullptr, o_ctl},
      {"ctl-group", required_argument, nullptr, o_ctl_group},
      {"link-rate", required_argument, nullptr, o_rate},   {"config", required_argument, nullptr, o_config},
      {"fault-forget-every", required_argument, nullptr, o_fault},
      {"impair", required_argument, nullptr, o_impair}, {"help", no_argument, nullptr, o_help},
      {"fec", required_argument, nullptr, o_fec},
      {"qemu-listen", required_argument, nullptr, o_qlisten},
      {"qemu-connect", required_argument, nullptr, o_qconnect},
      {"qemu-buffer-mb", required_argument, nullptr, o_qbuffer},
      {"qemu-record", required_argument, nullptr, o_qrecord},
      {"node-id", required_argument, nullptr, o_node_id},
      {"sync-listen", required_argument, nullptr, o_sync_listen},
      {"peers", required_argument, nullptr, o_peers},
      {"sync-key-file", required_argument, nullptr, o_sync_key},
      {"key-file", required_argument, nullptr, o_key_file},
      {"no-encrypt", no_argument, nullptr, o_no_encrypt},
      {"crypto-dev", required_argument, nullptr, o_crypto_dev},
      {"key-grace-s", required_argument, nullptr, o_key_grace},
      {"replay-window-s", required_argument, nullptr, o_replay_window},
      {"sync-interval-ms", required_argument, nullptr, o_sync_interval},
      {nullptr, 0, nullptr, 0}};
  bool have_role = false;
  optind = 1;
  opterr = 0;
  int c;
  auto bad = [&](const char *what, const char *val) {
    std::fprintf(stderr, "hde-gateway: bad %s '%s' (see --help)\n", what, val ? val : "");
    return false;
  };
  while ((c = getopt_long(argc, argv, "", longopts, nullptr)) != -1) {
    std::uint64_t v = 0;
    switch (c) {
    case o_role:
      have_role = true;
      if (std::string_view(optarg) == "source")
        o.r = role::source;
      else if (std::string_view(optarg) == "dest")
        o.r = role::dest;
      else if (std::string_view(optarg) == "loopback")
        o.r = role::loopback;
      else
        return bad("--role", optarg);
      break;
    case o_trace: o.trace = optarg; break;
    case o_sink: o.sink = optarg; break;
    case o_qlisten: o.qemu_listen = optarg; break;
    case o_qconnect: o.qemu_connect = optarg; break;
    case o_qrecord: o.qemu_record = optarg; break;
    case o_qbuffer:
      if (!parse_u64(optarg, 4, 65536, v))
        return bad("--qemu-buffer-mb (4..65536)", optarg);
      o.qemu_buffer_mb = v;
      break;
    case o_exit: o.exit_on_complete = true; break;
    case o_workers:
      if (!parse_u64(optarg, 1, 64, v))
        return bad("--workers (1..64)", optarg);
      o.workers = static_cast<std::uint32_t>(v);
      break;
    case o_decoders:
      if (!parse_u64(optarg, 1, 64, v))
        return bad("--decoders (1..64)", optarg);
      o.decoders = static_cast<std::uint32_t>(v);
      break;
    case o_mode:
      if (!parse_mode(optarg, o.m))
        return bad("--mode (datacenter, internet, hybrid)", optarg);
      break;
    case o_codec:
      if (!parse_codec(optarg))
        return bad("--codec (raw, lz4[:accel], zstd[:1-19], igzip[:0-3])", optarg);
      o.codec = optarg;
      break;
    case o_cache:
      if (!parse_u64(optarg, 0, 1 << 20, v))
        return bad("--cache-mb", optarg);
      o.cache_mb = v;
      o.cache_auto = false;
      break;
    case o_mtu:
      if (!parse_u64(optarg, 576, 9000, v))
        return bad("--mtu (576..9000)", optarg);
      o.mtu = v;
      break;
    case o_port:
      if (!parse_u64(optarg, 0, 1023, v))
        return bad("--port", optarg);
      o.port = static_cast<std::uint16_t>(v);
      break;
    case o_udp:
      if (!parse_u64(optarg, 1, 65535, v))
        return bad("--udp-port", optarg);
      o.udp_port = static_cast<std::uint16_t>(v);
      break;
    case o_src:
      if (!parse_ip(optarg, o.src_ip))
        return bad("--src-ip", optarg);
      break;
    case o_dst:
      if (!parse_ip(optarg, o.dst_ip))
        return bad("--dst-ip", optarg);
      break;
    case o_peer_mac:
      if (!arp::parse_mac(optarg, o.peer_mac))
        return bad("--peer-mac (a unicast MAC, aa:bb:cc:dd:ee:ff)", optarg);
      o.have_peer_mac = true;
      break;
    case o_gateway:
      if (!parse_ip(optarg, o.gateway_ip) || o.gateway_ip == 0)
        return bad("--gateway-ip", optarg);
      break;
    case o_any: o.check_peer = false; break;
    case o_window:
      if (!parse_u64(optarg, 64, 1 << 16, v) || (v & (v - 1)) != 0)
        return bad("--window (power of two, 64..65536)", optarg);
      o.window = static_cast<std::uint32_t>(v);
      break;
    case o_rto:
      if (!parse_u64(optarg, 100, 10000000, v))
        return bad("--rto-us", optarg);
      o.rto_us = static_cast<std::uint32_t>(v);
      break;
    case o_idle:
      if (!parse_u64(optarg, 0, 100000, v))
        return bad("--idle-sleep-us", optarg);
      o.idle_sleep_us = static_cast<std::uint32_t>(v);
      break;
    case o_timeout:
      if (!parse_u64(optarg, 1, 86400, v))
        return bad("--timeout", optarg);
      o.timeout_s = static_cast<std::uint32_t>(v);
      break;
    case o_maxvm:
      if (!parse_u64(optarg, 1, 1 << 22, v))
        return bad("--max-vm-mb", optarg);
      o.max_vm_mb = v;
      break;
    case o_fault:
      if (!parse_u64(optarg, 0, 1u << 30, v))
        return bad("--fault-forget-every", optarg);
      o.fault_forget_every = static_cast<std::uint32_t>(v);
      break;
    case o_impair: {
      std::string err;
      if (!parse_impair(optarg, o.impair, err)) {
        std::fprintf(stderr, "hde-gateway: %s\n", err.c_str());
        return false;
      }
      break;
    }
    case o_quiet: o.quiet = true; break;
    case o_preload: o.preload = true; break;
    case o_ctl: o.ctl_sock = optarg; break;
    case o_ctl_group:
      if (!resolve_group(optarg, o.ctl_gid)) {
        std::fprintf(stderr, "hde-gateway: --ctl-group '%s': no such group (a name in /etc/group, or a gid)\n",
                     optarg);
        return false;
      }
      o.ctl_group = optarg;
      break;
    case o_rate:
      if (!parse_rate(optarg, o.link_rate_bps))
        return bad("--link-rate (e.g. 0, 500m, 10g)", optarg);
      break;
    case o_fec:
      if (!parse_fec(optarg, o.fec_k, o.fec_m, o.fec_auto))
        return bad("--fec (off, auto, or K,M with 1 <= M <= K <= 64, M <= 16)", optarg);
      break;
    case o_node_id:
      if (!parse_u64(optarg, 1, 0xFFFFFFFFull, v))
        return bad("--node-id (1..4294967295)", optarg);
      o.node_id = static_cast<std::uint32_t>(v);
      break;
    case o_sync_listen:
      if (!sync::valid_addr(optarg))
        return bad("--sync-listen (IPv4 IP:PORT)", optarg);
      o.sync_listen = optarg;
      break;
    case o_peers: {
      const std::string all = optarg;
      for (std::size_t a = 0; a <= all.size();) {
        std::size_t c = all.find(',', a);
        if (c == std::string::npos)
          c = all.size();
        if (c > a && !sync::valid_addr(all.substr(a, c - a)))
          return bad("--peers (IP:PORT,...)", all.substr(a, c - a).c_str());
        a = c + 1;
      }
      o.peers = all;
      break;
    }
    case o_sync_key: o.sync_key_file = optarg; break;
    case o_key_file: o.key_file = optarg; break;
    case o_no_encrypt: o.no_encrypt = true; break;
    case o_crypto_dev: o.crypto_dev = optarg; break;
    case o_key_grace:
      if (!parse_u64(optarg, 0, 86400, v))
        return bad("--key-grace-s", optarg);
      o.key_grace_s = static_cast<std::uint32_t>(v);
      break;
    case o_replay_window:
      if (!parse_u64(optarg, 0, 86400, v))
        return bad("--replay-window-s", optarg);
      o.replay_window_s = static_cast<std::uint32_t>(v);
      break;
    case o_sync_interval:
      if (!parse_u64(optarg, 10, 60000, v))
        return bad("--sync-interval-ms (10..60000)", optarg);
      o.sync_interval_ms = static_cast<std::uint32_t>(v);
      break;
    case o_config: break;  // read before the command line (config_args)
    case o_gen: {
      gen_spec g;
      std::string err;
      if (!parse_gen_spec(optarg, g, err)) {
        std::fprintf(stderr, "hde-gateway: %s\n", err.c_str());
        return false;
      }
      o.gen = optarg;
      break;
    }
    case o_help: print_usage(argv[0]); std::exit(0);
    default:
      std::fprintf(stderr, "hde-gateway: unknown or incomplete option '%s' (see --help)\n",
                   argv[optind - 1]);
      return false;
    }
  }
  if (optind < argc)
    return bad("argument", argv[optind]);
  if (!have_role) {
    std::fprintf(stderr, "hde-gateway: --role source|dest|loopback is required (see --help)\n");
    return false;
  }
  if (o.m == mode::hybrid && !o.codec.empty()) {
    std::fprintf(stderr, "hde-gateway: --codec cannot be used with --mode hybrid (its selector picks the codec "
                 "for every batch)\n");
    return false;
  }
  const bool qemu_src = !o.qemu_listen.empty(), qemu_dst = !o.qemu_connect.empty();
  if (o.r != role::dest && (o.trace.empty() ? 0 : 1) + (o.gen.empty() ? 0 : 1) + (qemu_src ? 1 : 0) != 1) {
    std::fprintf(stderr, "hde-gateway: --role %s needs one of --trace DIR, --gen SPEC, --qemu-listen ADDR\n",
                 role_name(o.r));
    return false;
  }
  if (o.r == role::dest && qemu_src) {
    std::fprintf(stderr, "hde-gateway: --qemu-listen is for --role source or loopback\n");
    return false;
  }
  if (o.r == role::source && qemu_dst) {
    std::fprintf(stderr, "hde-gateway: --qemu-connect is for --role dest or loopback\n");
    return false;
  }
  if (o.r == role::loopback && qemu_src != qemu_dst) {
    std::fprintf(stderr, "hde-gateway: --role loopback takes --qemu-listen and --qemu-connect together\n");
    return false;
  }
  for (const std::string *a : {&o.qemu_listen, &o.qemu_connect}) {
    std::string err;
    if (!a->empty() && !check_qemu_addrs(*a, err)) {
      std::fprintf(stderr, "hde-gateway: %s\n", err.c_str());
      return false;
    }
  }
  if (o.sync_listen.empty() && (!o.peers.empty() || !o.sync_key_file.empty() || o.node_id != 0)) {
    std::fprintf(stderr, "hde-gateway: --peers, --sync-key-file and --node-id are for the fleet sync: give "
                 "--sync-listen IP:PORT too\n");
    return false;
  }
  if (!o.sync_listen.empty() && (o.node_id == 0 || o.sync_key_file.empty())) {
    std::fprintf(stderr, "hde-gateway: --sync-listen needs --node-id N and --sync-key-file FILE\n");
    return false;
  }
  if (!o.key_file.empty() && o.no_encrypt) {
    std::fprintf(stderr, "hde-gateway: --key-file and --no-encrypt contradict each other\n");
    return false;
  }
  if (o.r != role::dest && o.key_file.empty() && !o.no_encrypt && o.m != mode::datacenter) {
    std::fprintf(stderr, "hde-gateway: %s mode sends guest memory across networks you do not control: give "
                 "--key-file FILE (both gateways; head -c 32 /dev/urandom | base64 > FILE; chmod 600 FILE) or "
                 "--no-encrypt\n", o.m == mode::hybrid ? "hybrid" : "internet");
    return false;
  }
  if (o.r == role::loopback && (o.have_peer_mac || o.gateway_ip != 0)) {
    std::fprintf(stderr, "hde-gateway: --peer-mac and --gateway-ip are for --role source or dest (loopback's two "
                 "ports find each other by ARP)\n");
    return false;
  }
  if (o.r != role::source && o.sink.empty() && !qemu_dst) {
    std::fprintf(stderr, "hde-gateway: --role %s needs --sink DIR (or --qemu-connect ADDR)\n", role_name(o.r));
    return false;
  }
  return true;
}

}  // namespace hde::dp
