// options.h — hde-wanem's application options (after EAL's `--`), parsed
// without DPDK so they can be checked before EAL starts and unit tested.
//   --ab SPEC --ba SPEC [--both SPEC] [--stats-period S] [--quiet]
//   [--hold N] [--mtu N] [--idle-sleep-us N] [--help]
#pragma once

#include <cstdint>
#include <string>

#include "link_model.h"

namespace hde::wanem {

struct options {
  link_spec ab, ba;            // port 0 -> port 1, port 1 -> port 0
  double stats_period_s = 1;   // 0: no periodic stats lines
  bool quiet = false;          // no banner, no stats lines (the summary stays)
  std::uint32_t hold = 0;      // frames in flight per direction; 0: default_hold(mtu)
  std::uint32_t mtu = 1500;    // largest L3 packet: sizes the mbufs
  std::uint32_t idle_sleep_us = 50;  // longest sleep of an idle lcore; 0: busy polling
};

enum class parse_status { ok, help, error };

// argv[0] is the program name. --both applies to both directions first,
// then --ab and --ba refine it key by key, whatever the order on the
// command line. On error, err is one line (the caller prints it and exits 2).
parse_status parse_options(int argc, char **argv, options &o, std::string &err);
std::string usage();

// Data room of one mbuf for frames of this MTU: at least 2048 bytes (a
// net_af_packet frame of the default framesz=2048 fits), else MTU + 200
// rounded up to 1 KiB (give net_af_packet framesz= at most this).
std::uint32_t frame_room(std::uint32_t mtu);
// Frames held per direction by default: the largest power of two whose
// mbufs take at most 32 MiB, at least 1024 (16384 at MTU 1500).
std::uint32_t default_hold(std::uint32_t mtu);

}  // namespace hde::wanem
