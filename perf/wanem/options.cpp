// options.cpp — hde-wanem's command line after `--` (see options.h).
#include "options.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <vector>

namespace hde::wanem {

std::string usage() {
  return "usage: hde-wanem [EAL args] -- [--ab SPEC] [--ba SPEC] [--both SPEC] [--stats-period S] [--quiet]\n"
         "                 [--hold N] [--mtu N] [--idle-sleep-us N]\n"
         "  Bridges DPDK port 0 and port 1 and emulates a WAN link in each direction:\n"
         "  --ab SPEC          port 0 -> port 1       --ba SPEC   port 1 -> port 0\n"
         "  --both SPEC        both directions (--ab / --ba refine it key by key)\n"
         "  SPEC: key=value,... with rate=100m (bits/s, k/m/g; 0 = unlimited) delay_ms=20\n"
         "        jitter_ms=2 jitter_dist=uniform|normal loss=0.01 burst=4 reorder=0.01\n"
         "        reorder_ms=1 dup=0.001 corrupt=0.0001 queue_kb=256 seed=1\n"
         "  --stats-period S   a stats line per direction every S seconds (default 1; 0 = off)\n"
         "  --quiet            no banner and no stats lines (the summary at exit stays)\n"
         "  --hold N           frames in flight per direction (default: 16384 at MTU 1500)\n"
         "  --mtu N            largest L3 packet, sizes the mbufs (default 1500)\n"
         "  --idle-sleep-us N  longest sleep of an idle lcore (default 50; 0 = busy polling)\n"
         "  docs/wanem.md has the details.\n";
}

std::uint32_t frame_room(std::uint32_t mtu) {
  const std::uint32_t r = (mtu + 200 + 1023) / 1024 * 1024;
  return r < 2048 ? 2048 : r;
}

std::uint32_t default_hold(std::uint32_t mtu) {
  const std::uint32_t room = frame_room(mtu);
  std::uint32_t h = 1024;
  while (std::uint64_t(h) * 2 * room <= (32u << 20))
    h *= 2;
  return h;
}

namespace {

bool parse_uint(const std::string &v, std::uint64_t lo, std::uint64_t hi, std::uint32_t &out) {
  if (v.empty() || v[0] < '0' || v[0] > '9')
    return false;
  char *e = nullptr;
  errno = 0;
  const unsigned long long x = std::strtoull(v.c_str(), &e, 10);
  if (*e != '\0' || errno == ERANGE || x < lo || x > hi)
    return false;
  out = static_cast<std::uint32_t>(x);
  return true;
}

}  // namespace

parse_status parse_options(int argc, char **argv, options &o, std::string &err) {
  std::vector<std::string> both, ab, ba;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i], val;
    bool has_val = false;
    if (a.rfind("--", 0) == 0) {
      const std::size_t eq = a.find('=');
      if (eq != std::string::npos) {
        val = a.substr(eq + 1);
        a = a.substr(0, eq);
        has_val = true;
      }
    }
    auto need = [&](std::string &v) {
      if (has_val) {
        v = val;
        return true;
      }
      if (i + 1 >= argc) {
        err = a + " needs a value";
        return false;
      }
      v = argv[++i];
      return true;
    };
    std::string v;
    if (a == "--help" || a == "-h")
      return parse_status::help;
    if (a == "--quiet") {
      o.quiet = true;
    } else if (a == "--ab" || a == "--ba" || a == "--both") {
      if (!need(v))
        return parse_status::error;
      (a == "--ab" ? ab : a == "--ba" ? ba : both).push_back(v);
    } else if (a == "--stats-period") {
      if (!need(v))
        return parse_status::error;
      char *e = nullptr;
      const double s = std::strtod(v.c_str(), &e);
      if (v.empty() || *e != '\0' || !std::isfinite(s) || s < 0 || s > 86400) {
        err = "--stats-period: '" + v + "' is not a number of seconds (0 = off ... 86400)";
        return parse_status::error;
      }
      o.stats_period_s = s;
    } else if (a == "--hold") {
      if (!need(v))
        return parse_status::error;
      if (!parse_uint(v, 64, 1u << 20, o.hold)) {
        err = "--hold: '" + v + "' is not a frame count (64 ... 1048576)";
        return parse_status::error;
      }
    } else if (a == "--mtu") {
      if (!need(v))
        return parse_status::error;
      if (!parse_uint(v, 68, 65000, o.mtu)) {
        err = "--mtu: '" + v + "' is not an MTU (68 ... 65000)";
        return parse_status::error;
      }
    } else if (a == "--idle-sleep-us") {
      if (!need(v))
        return parse_status::error;
      if (!parse_uint(v, 0, 10000, o.idle_sleep_us)) {
        err = "--idle-sleep-us: '" + v + "' is not a number of microseconds (0 ... 10000)";
        return parse_status::error;
      }
    } else {
      err = "unknown option '" + std::string(argv[i]) + "' (--help lists them)";
      return parse_status::error;
    }
  }
  for (const auto &s : both)
    if (!parse_link_spec(s, o.ab, err, "--both") || !parse_link_spec(s, o.ba, err, "--both"))
      return parse_status::error;
  for (const auto &s : ab)
    if (!parse_link_spec(s, o.ab, err, "--ab"))
      return parse_status::error;
  for (const auto &s : ba)
    if (!parse_link_spec(s, o.ba, err, "--ba"))
      return parse_status::error;
  if (o.hold == 0)
    o.hold = default_hold(o.mtu);
  return parse_status::ok;
}

}  // namespace hde::wanem
