// registry.h — the control commands of a gateway, in one table: name,
// usage, argument counts, whether it is safe while workers run, handler.
// Requests and replies are JSON (docs/control.md):
//   request  {"argv": ["show", "stats"]}   or   {"cmd": "show stats", "args": []}
//   reply    {"ok": true, "result": ...}   or   {"ok": false, "error": "..."}
// Argument counts are checked here, once, for every command. list-commands,
// help and version are built in. No DPDK: unit-tested on its own.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace hde::ctl {

using json = nlohmann::json;

struct reply {
  bool ok = true;
  json result = json::object();
  std::string error;
  void fail(std::string e) {
    ok = false;
    error = std::move(e);
  }
};

using handler = std::function<void(const std::vector<std::string> &args, reply &)>;

struct command {
  std::string name;         // "show stats", "set mode"
  std::string usage;        // "set mode datacenter|internet|hybrid"
  std::string help;         // one line
  int min_args = 0, max_args = 0;
  bool safe_while_running = true;  // false: the handler pauses workers itself
  handler fn;
};

struct registry_stats {
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> bad_json{0};
  std::atomic<std::uint64_t> unknown{0};
  std::atomic<std::uint64_t> bad_args{0};
  std::atomic<std::uint64_t> failed{0};
};

class registry {
public:
  explicit registry(std::string version);
  void add(command c);
  // One request (a JSON text) in, one reply (JSON text, no newline) out.
  std::string handle(std::string_view request);
  json dispatch(const json &request);
  const registry_stats &stats() const { return st_; }
  std::vector<std::string> names() const;

private:
  std::map<std::string, command> cmds_;
  std::string version_;
  registry_stats st_;
};

}  // namespace hde::ctl
