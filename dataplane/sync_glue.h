// sync_glue.h — the fleet sync inside hde-gateway: the CRDT sync
// (control/sync.h) on a UDP socket, run by the control thread (the control
// socket server's task), publishing this gateway's migrations into the
// fleet's registry; the commands `show peers`, `show fleet`, `show sync`,
// `peers add|remove|block|unblock` and the telemetry /hde/peers. Off
// (commands answer so) without --sync-listen.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "control_glue.h"
#include "registry.h"
#include "sync.h"
#include "sync_udp.h"

namespace hde::dp {

class fleet_sync {
public:
  // Read the key, open the socket, add the --peers: false with err.
  bool start(const options &o, gateway_view &v, std::string &err);
  bool on() const { return node_ != nullptr; }
  int fd() const { return ep_ ? ep_->fd() : -1; }
  // The control thread's step: datagrams in, this gateway's migrations
  // published, a round when due. Returns the ms until it is due again.
  std::uint64_t tick();
  void register_commands(ctl::registry &reg);
  void register_telemetry();

  ctl::json peers_json();
  ctl::json fleet_json();
  ctl::json sync_json();

private:
  void publish_migrations();
  void publish_selector();
  std::mutex mu_;  // the control thread and DPDK's telemetry thread
  std::unique_ptr<sync::udp_endpoint> ep_;
  std::unique_ptr<sync::sync_node> node_;
  gateway_view *v_ = nullptr;
  const options *o_ = nullptr;
  std::map<std::string, sync::progress> published_;
  std::uint64_t next_publish_ms_ = 0, start_ms_ = 0, busy_ns_ = 0, conflicts_lost_ = 0;
};

}  // namespace hde::dp
