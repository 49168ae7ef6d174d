// bench_sync.cpp — the fleet sync (control/sync.h) in simulation
// (control/sync_sim.h: virtual time, lossy links): 
//   heal   convergence after a partition heals, for 3, 10 and 100 gateways
//          gossiping every 500 ms (fanout 3): time and rounds until every
//          replica holds the same state and sees every gateway alive, and
//          the bytes all gateways sent meanwhile;
//   steady bytes per gateway per round with 1000 migrations in the
//          registry and 10 of them reporting progress each round, against
//          sending the full state to the same peers every round.
//   bench_sync [heal|steady|all] [--seeds N]
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "sync_sim.h"

using namespace hde::sync;

namespace {

const std::vector<std::uint8_t> kKey(32, 0x33);

// "n<node>/vm<i>" (appends: GCC 12 warns falsely on "literal" + std::string).
std::string vm_name(std::size_t node, std::size_t i) {
  std::string s = "n";
  s += std::to_string(node);
  s += "/vm";
  s += std::to_string(i);
  return s;
}
constexpr std::uint32_t kInterval = 500;

bool converged(sim_net &net) {
  const auto ref = hde::crdt::to_bytes(without_heartbeats(net.node(0).state().state()));
  for (std::size_t i = 0; i < net.size(); ++i) {
    if (i > 0 && hde::crdt::to_bytes(without_heartbeats(net.node(i).state().state())) != ref)
      return false;
  }
  const auto members = net.node(0).state().members();
  if (members.size() != net.size())
    return false;
  for (const auto &m : members)
    if (m.st.kind != status_kind::alive)
      return false;
  return true;
}

struct heal_result {
  double seconds = -1;  // -1: not converged
  double mbytes = 0;
  std::uint64_t transfers = 0;  // state transfers started, all gateways
};

heal_result heal_once(std::size_t n, std::uint64_t seed, std::uint32_t horizon) {
  sim_net net(n, {0.01, 0.0, 20, 60}, kInterval, kKey, seed, 3, true, horizon);
  net.run(20000, 10);  // the fleet forms
  std::set<std::size_t> half;
  for (std::size_t i = 0; i < n / 2; ++i)
    half.insert(i);
  net.partition(half);
  // 30 s apart: every gateway starts 2 migrations, reports progress on
  // them 5 times, and adds selector samples.
  for (int step = 0; step < 10; ++step) {
    for (std::size_t i = 0; i < n; ++i) {
      sync_node &g = net.node(i);
      const std::uint64_t now = net.now();
      for (int k = 0; k < 2; ++k) {
        const std::string vm = vm_name(i + 1, static_cast<std::size_t>(k));
        if (step == 0)
          g.update([&](fleet &f) { return f.start_migration(vm, "gw", now, now); });
        else if (step % 2 == 0)
          g.update([&](fleet &f) {
            return f.report(vm, {mig_state::dirty, static_cast<std::uint32_t>(step), 1000u * step, 4000u * step, 1, {}}, now);
          });
      }
      const std::string cls{'c', static_cast<char>('0' + step % 3)};
      g.update([&](fleet &f) { return f.add_selector_sample(cls, "zstd:3", 64, 9000, 100000); });
    }
    net.run(3000, 10);
  }
  const std::uint64_t b0 = net.bytes(), t0 = net.now();
  std::uint64_t s0 = 0;
  for (std::size_t i = 0; i < n; ++i)
    s0 += net.node(i).stats().snapshots_started;
  net.heal();
  heal_result r;
  while (net.now() - t0 < 300000) {
    net.run(100, 10);
    if (converged(net)) {
      r.seconds = double(net.now() - t0) / 1e3;
      break;
    }
  }
  r.mbytes = double(net.bytes() - b0) / 1e6;
  for (std::size_t i = 0; i < n; ++i)
    r.transfers += net.node(i).stats().snapshots_started;
  r.transfers -= s0;
  return r;
}

void heal(int seeds, std::uint32_t horizon) {
  std::printf("heal: convergence after a 30 s partition into two halves heals (gossip every %u ms, fanout 3,\n"
              "      1 %% loss, 20-60 ms one-way delay; converged: every replica's state equal and every\n"
              "      gateway alive in it, checked every 100 ms of virtual time); log horizon %u rounds: %s\n",
              kInterval, horizon, horizon >= 60 ? "the other side's deltas still in the logs" :
              "the logs dropped them, state transfers");
  std::printf("%10s %8s %22s %16s %18s %22s\n", "gateways", "runs", "seconds (median, range)", "rounds (median)",
              "MB sent (median)", "state transfers (median)");
  for (std::size_t n : {3, 10, 100}) {
    std::vector<double> secs, mb, tr;
    for (int s = 0; s < seeds; ++s) {
      const heal_result r = heal_once(n, 1000 + static_cast<std::uint64_t>(s), horizon);
      secs.push_back(r.seconds);
      mb.push_back(r.mbytes);
      tr.push_back(double(r.transfers));
    }
    std::sort(secs.begin(), secs.end());
    std::sort(mb.begin(), mb.end());
    std::sort(tr.begin(), tr.end());
    const double med = secs[secs.size() / 2];
    char range[64];
    std::snprintf(range, sizeof range, "%.1f (%.1f-%.1f)", med, secs.front(), secs.back());
    std::printf("%10zu %8d %22s %16.1f %18.2f %22.0f\n", n, seeds, range, med * 1000 / kInterval, mb[mb.size() / 2],
                tr[tr.size() / 2]);
    std::fflush(stdout);
  }
}

void steady(std::size_t n) {
  sim_net net(n, {0.01, 0.0, 20, 60}, kInterval, kKey, 77, 3, true);
  for (int i = 0; i < 1000; ++i) {
    sync_node &g = net.node(static_cast<std::size_t>(i) % n);
    const std::string vm = vm_name(i % n + 1, static_cast<std::size_t>(i));
    const std::uint64_t now = net.now();
    g.update([&](fleet &f) { return f.start_migration(vm, "gw-dst", now, 1700000000000ull); });
    g.update([&](fleet &f) { return f.report(vm, {mig_state::dirty, 2, 262144, 300000000, 1700000000000ull, {}}, now); });
  }
  net.run(30000, 10);
  if (!converged(net))
    std::printf("steady: %zu gateways: NOT converged after 30 s\n", n);
  const fleet_state &st = net.node(0).state().state();
  const std::size_t full = hde::crdt::to_bytes(st).size();
  // The full state as datagrams (fragments of the sync's size, each with
  // its 26-byte header and 32-byte tag).
  std::size_t full_wire = 0, full_datagrams = 0;
  for (const fragment &f : split(st, 1300)) {
    std::vector<std::uint8_t> b;
    hde::crdt::writer w(b);
    encode(w, f);
    full_wire += b.size() + kHeaderBytes + kTagBytes + 8;
    ++full_datagrams;
  }
  const unsigned peers = static_cast<unsigned>(std::min<std::size_t>(3, n - 1));
  auto measure = [&](int updates_per_round) {
    const int rounds = 60;
    const std::uint64_t b0 = net.bytes(), d0 = net.datagrams();
    std::uint64_t k = 0;
    for (int r = 0; r < rounds; ++r) {
      for (int u = 0; u < updates_per_round; ++u, ++k) {
        const std::size_t i = (k * 7919) % 1000;
        sync_node &g = net.node(i % n);
        const std::string vm = vm_name(i % n + 1, static_cast<std::size_t>(i));
        const std::uint64_t now = net.now();
        g.update([&](fleet &f) {
          return f.report(vm, {mig_state::dirty, 3, 262144 + k, 300000000 + k * 4096, 1700000000000ull, {}}, now);
        });
      }
      net.run(kInterval, 10);
    }
    const double per = double(net.bytes() - b0) / rounds / double(n);
    const double dg = double(net.datagrams() - d0) / rounds / double(n);
    std::printf("%10zu %10d %16.0f %14.1f %18zu %14.0f %10.1f %%\n", n, updates_per_round, per, dg, full,
                double(full_wire) * peers, 100.0 * per / (double(full_wire) * peers));
  };
  measure(0);
  measure(10);
  measure(100);
  (void)full_datagrams;
}

}  // namespace

int main(int argc, char **argv) {
  const std::string what = argc > 1 ? argv[1] : "all";
  int seeds = 5;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--seeds") == 0)
      seeds = std::max(1, std::atoi(argv[i + 1]));
  if (what == "heal" || what == "all") {
    heal(seeds, 600);
    heal(seeds, 20);
  }
  if (what == "steady" || what == "all") {
    std::printf("steady: 1000 migrations in the registry; bytes each gateway sends per 500 ms round (60 rounds,\n"
                "        1 %% loss) with U progress reports per round fleet-wide, against sending the full\n"
                "        state to its 3 peers (or all, when fewer) every round\n");
    std::printf("%10s %10s %16s %14s %18s %14s %12s\n", "gateways", "U/round", "bytes/gw/round", "datagrams", "full state bytes",
                "full x peers", "share");
    for (std::size_t n : {3, 10})
      steady(n);
  }
  return 0;
}
