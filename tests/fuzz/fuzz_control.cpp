// fuzz_control.cpp — libFuzzer target for the control socket's request
// parser and command dispatch (control/registry.cpp): any bytes in, one
// well-formed JSON reply out, no crash. The registry has commands shaped like
// the gateway's (multi-word names, argument counts, failing handlers).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "registry.h"

using namespace hde::ctl;

namespace {
registry &reg() {
  static registry r("fuzz");
  static bool once = [] {
    r.add({"show stats", "show stats", "", 0, 0, true, [](const std::vector<std::string> &, reply &o) {
             o.result = {{"pages", 1}};
           }});
    r.add({"set mode", "set mode M", "", 1, 1, true, [](const std::vector<std::string> &a, reply &o) {
             if (a[0] != "internet")
               o.fail("unknown mode");
           }});
    r.add({"baselines flush", "baselines flush [VM]", "", 0, 1, true,
           [](const std::vector<std::string> &a, reply &o) { o.result = {{"n", a.size()}}; }});
    return true;
  }();
  (void)once;
  return r;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const std::string out = reg().handle(std::string_view(reinterpret_cast<const char *>(data), size));
  const json j = json::parse(out, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("ok"))
    __builtin_trap();  // every request must get a well-formed reply
  return 0;
}
