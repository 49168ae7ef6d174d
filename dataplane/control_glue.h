// control_glue.h — the gateway's control commands and DPDK telemetry: what
// `hdectl` and `dpdk-telemetry.py` see. Runs on the control thread; reads
// the per-lcore counters with relaxed atomic loads (never stops the data
// path) and changes behaviour only through the RCU-published live config.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "arp_port.h"
#include "dest.h"
#include "lcore.h"
#include "live_config.h"
#include "options.h"
#include "qemu_ingress.h"
#include "registry.h"
#include "selector_service.h"
#include "server.h"
#include "source.h"

namespace hde::dp {

class frame_crypto;

struct gateway_view {
  const options *opt = nullptr;
  std::vector<worker *> workers;  // source side, may be empty
  ingress *ing = nullptr;
  ack_rx *acks = nullptr;
  dest_rx *drx = nullptr;         // destination side, may be null
  arp_port *src_arp = nullptr, *dst_arp = nullptr;  // ARP on each side's port (arp_port.h)
  std::vector<qemu_ingress *> qings;  // --qemu-listen, one per VM
  std::vector<lcore_plan> *plans = nullptr;
  std::uint16_t src_port = 0, dst_port = 0;
  live_config_store *live = nullptr;
  std::atomic<bool> *stop = nullptr;  // graceful drain, like SIGTERM
  std::size_t rounds = 0;
  std::uint64_t start_tsc = 0;
  std::uint64_t total_pages = 0;  // pages of all rounds when known up front, else 0
  ctl::server *srv = nullptr;
  ctl::registry *reg = nullptr;
  selector_service *sel = nullptr;  // source side
  frame_crypto *crypto = nullptr;   // --key-file, may be null
};

void register_commands(ctl::registry &reg, gateway_view &v);
// What `show migrations` answers (the fleet sync publishes it, sync_glue.h).
ctl::json migration_rows(const gateway_view &v);
// /hde/stats, /hde/lcores, /hde/baselines, /hde/codecs for dpdk-telemetry.py.
void register_telemetry(gateway_view &v);

}  // namespace hde::dp
