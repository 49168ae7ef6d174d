// fuzz_sync.cpp — libFuzzer target for the sync datagram decoder
// (control/sync.cpp). Byte 0 picks the layer: even, the input is a whole
// datagram for open() and a node's receive() (it must fail authentication
// unless it is one of the seeds); odd, the rest is a payload sealed with the
// right key, so the record parser and everything a well-authenticated peer
// can make a node do are reached: no crash, and a payload that does not
// parse changes nothing. Built with -DHDE_SYNC_SEEDS it is instead a program
// that writes seeds (payloads of a simulated fleet) into the directory argv[1].
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "sync.h"
#include "sync_sim.h"

using namespace hde::sync;

namespace {

const std::vector<std::uint8_t> kKey(32, 0x42);

sync_node &target() {
  static sync_node n(
      [] {
        sync_config c;
        c.node = 1;
        c.epoch = 1000;
        c.key = kKey;
        c.self.sync_addr = "10.0.0.1:7000";
        return c;
      }(),
      [](const std::string &, std::span<const std::uint8_t>) {});
  return n;
}

}  // namespace

#ifndef HDE_SYNC_SEEDS
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  if (size == 0)
    return 0;
  static std::uint64_t counter = 0, now = 0;
  sync_node &n = target();
  const std::span<const std::uint8_t> in(data + 1, size - 1);
  if ((data[0] & 1) == 0) {
    opened o;
    (void)open(kKey, in, o);
    n.receive("10.0.0.2:7000", in, ++now);
  } else {
    if (in.size() > kMaxDatagram - kHeaderBytes - kTagBytes)
      return 0;
    const bool ok = parse_payload(in);
    const fleet_state before = n.state().state();
    const auto have = n.have();
    n.receive("10.0.0.2:7000", seal(kKey, 2, 5000, ++counter, in), ++now);
    if (!ok && (!(n.state().state() == before) || !(n.have() == have)))
      __builtin_trap();  // a payload that does not parse changed something
  }
  n.poll(now);
  return 0;
}
#else
// Seeds: the payloads of a small simulated fleet (digests, deltas, state
// transfer pieces, acknowledgements), each prefixed by 1 (the sealed layer).
int main(int argc, char **argv) {
  if (argc < 2)
    return 2;
  int k = 0;
  auto save = [&](std::span<const std::uint8_t> d) {
    opened o;
    if (k >= 64 || open(kKey, d, o) != drop::count)
      return;
    const std::string path = std::string(argv[1]) + "/seed" + std::to_string(k++);
    if (FILE *f = std::fopen(path.c_str(), "wb")) {
      std::fputc(1, f);
      std::fwrite(o.payload.data(), 1, o.payload.size(), f);
      std::fclose(f);
    }
  };
  // Two nodes wired back to back; a's log is too small to serve b, so b
  // gets a's state in pieces (and acknowledges them).
  std::vector<std::pair<int, std::vector<std::uint8_t>>> q;
  sync_config ca, cb;
  ca.node = 1, cb.node = 2;
  ca.epoch = 1000, cb.epoch = 2000;
  ca.key = cb.key = kKey;
  ca.self.sync_addr = "10.0.0.1:7000", cb.self.sync_addr = "10.0.0.2:7000";
  ca.log_max_bytes = 256;
  sync_node a(ca, [&](const std::string &, std::span<const std::uint8_t> d) {
    save(d);
    q.emplace_back(1, std::vector<std::uint8_t>(d.begin(), d.end()));
  });
  sync_node b(cb, [&](const std::string &, std::span<const std::uint8_t> d) {
    save(d);
    q.emplace_back(0, std::vector<std::uint8_t>(d.begin(), d.end()));
  });
  for (int i = 0; i < 60; ++i)
    a.update([&](fleet &f) { return f.start_migration("vm" + std::to_string(i), "d", 1, 1); });
  b.update([](fleet &f) { return f.add_selector_sample("c", "lz4", 1, 2, 3); });
  a.add_peer(cb.self.sync_addr);
  b.add_peer(ca.self.sync_addr);
  for (std::uint64_t t = 0; t < 3000; t += 100) {
    a.poll(t);
    b.poll(t);
    for (std::size_t i = 0; i < q.size(); ++i)  // replies append to q
      (q[i].first == 0 ? a : b).receive(q[i].first == 0 ? cb.self.sync_addr : ca.self.sync_addr, q[i].second, t);
    q.clear();
  }
  std::printf("%d seeds, b has %zu migrations\n", k, b.state().migrations().size());
  return k > 0 ? 0 : 1;
}
#endif
