// main.cpp — hde-wanem: a DPDK WAN emulator. Bridges port 0 and port 1
// frame by frame (every frame: ARP, IPv4, IPv6, anything) and emulates a
// WAN link in each direction (rate, delay, jitter, loss, bursts, reordering,
// duplication, corruption, a bottleneck buffer; link_model.h). EAL, ports,
// lcores, the stats lines and the summary live here; the data path is in
// bridge.cpp. docs/wanem.md has the usage.
//   hde-wanem [EAL args] -- --ab SPEC --ba SPEC [--both SPEC] [--stats-period S] [--quiet]
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <net/if.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include "bridge.h"
#include "options.h"

using namespace hde::wanem;

namespace {

void on_signal(int) { g_quit.store(true); }

// Configure and start `port`: every RX queue the device has (up to 16:
// net_af_packet with qpairs=N spreads frames over N queues, each must be
// polled), one TX queue. Sets nrxq. A one-line error on failure.
bool port_setup(std::uint16_t port, std::uint16_t &nrxq, rte_mempool *pool) {
  rte_eth_dev_info info{};
  if (rte_eth_dev_info_get(port, &info) != 0) {
    std::fprintf(stderr, "hde-wanem: port %u: no device info\n", port);
    return false;
  }
  nrxq = std::min<std::uint16_t>(std::max<std::uint16_t>(info.max_rx_queues, 1), 16);
  rte_eth_conf conf{};
  if (int r = rte_eth_dev_configure(port, nrxq, 1, &conf); r != 0) {
    std::fprintf(stderr, "hde-wanem: port %u (%s): configure failed: %s\n", port, info.driver_name, rte_strerror(-r));
    return false;
  }
  std::uint16_t nrxd = 1024, ntxd = 1024;
  rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrxd, &ntxd);
  for (std::uint16_t q = 0; q < nrxq; ++q)
    if (int r = rte_eth_rx_queue_setup(port, q, nrxd, rte_eth_dev_socket_id(port), nullptr, pool); r != 0) {
      std::fprintf(stderr, "hde-wanem: port %u (%s): RX queue %u setup failed: %s (net_af_packet: framesz= "
                   "must fit the mbuf room, see --mtu)\n", port, info.driver_name, q, rte_strerror(-r));
      return false;
    }
  if (int r = rte_eth_tx_queue_setup(port, 0, ntxd, rte_eth_dev_socket_id(port), nullptr); r != 0) {
    std::fprintf(stderr, "hde-wanem: port %u (%s): TX queue setup failed: %s\n", port, info.driver_name,
                 rte_strerror(-r));
    return false;
  }
  if (int r = rte_eth_dev_start(port); r != 0) {
    std::fprintf(stderr, "hde-wanem: port %u (%s): start failed: %s\n", port, info.driver_name, rte_strerror(-r));
    return false;
  }
  // A bridge takes every frame, whatever its destination address.
  if (rte_eth_promiscuous_enable(port) != 0)
    std::fprintf(stderr, "hde-wanem: port %u (%s): cannot enable promiscuous mode (continuing)\n", port,
                 info.driver_name);
  rte_eth_link link{};
  for (int i = 0; i < 50; ++i) {
    if (rte_eth_link_get_nowait(port, &link) == 0 && link.link_status == RTE_ETH_LINK_UP)
      break;
    rte_delay_us_sleep(100 * 1000);
  }
  if (link.link_status != RTE_ETH_LINK_UP)
    std::fprintf(stderr, "hde-wanem: port %u (%s): link is down (forwarding anyway)\n", port, info.driver_name);
  return true;
}

// "net_af_packet0 wa": the DPDK name, and the kernel interface when there is one.
std::string port_name(std::uint16_t port) {
  char name[RTE_ETH_NAME_MAX_LEN] = "?";
  rte_eth_dev_get_name_by_port(port, name);
  std::string r = name;
  rte_eth_dev_info info{};
  char ifname[IF_NAMESIZE];
  if (rte_eth_dev_info_get(port, &info) == 0 && info.if_index > 0 && if_indextoname(info.if_index, ifname))
    r += std::string(" ") + ifname;
  return r;
}

std::string describe(const link_model &m) {
  const link_spec &s = m.spec();
  std::string r = to_string(s);
  if (r.empty())
    r = "no impairment";
  if (s.rate_bps > 0)
    r += " (bottleneck queue " + std::to_string(m.queue_limit()) + " B)";
  else
    r += " (rate unlimited)";
  return r;
}

int lcore_entry(void *arg) { return run_lcore(*static_cast<lcore_job *>(arg)); }

struct snapshot {
  std::uint64_t in = 0, in_bytes = 0, out = 0, out_bytes = 0;
};
struct lcore_snapshot {
  std::uint64_t busy_tsc = 0, total_tsc = 0, cpu_us = 0;
};

}  // namespace

int main(int argc, char **argv) {
  // Application options first, so a bad option costs no EAL start-up.
  int sep = 1;
  while (sep < argc && std::strcmp(argv[sep], "--") != 0)
    ++sep;
  options o;
  {
    std::vector<char *> app{argv[0]};
    for (int i = sep + 1; i < argc; ++i)
      app.push_back(argv[i]);
    std::string err;
    switch (parse_options(static_cast<int>(app.size()), app.data(), o, err)) {
    case parse_status::help:
      std::fputs(usage().c_str(), stdout);
      return 0;
    case parse_status::error:
      std::fprintf(stderr, "hde-wanem: %s\n", err.c_str());
      return 2;
    case parse_status::ok:
      break;
    }
  }

  const int eal = rte_eal_init(sep < argc ? sep : argc, argv);
  if (eal < 0) {
    std::fprintf(stderr, "hde-wanem: EAL initialisation failed%s%s (see the EAL lines above; EAL arguments go "
                 "before --)\n", rte_errno ? ": " : "", rte_errno ? rte_strerror(rte_errno) : "");
    return rte_errno == EINVAL ? 2 : 1;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  int rc = 0;
  const double hz = static_cast<double>(rte_get_tsc_hz());
  const unsigned nports = rte_eth_dev_count_avail();
  if (nports < 2 || !rte_eth_dev_is_valid_port(0) || !rte_eth_dev_is_valid_port(1)) {
    std::fprintf(stderr, "hde-wanem: needs DPDK ports 0 and 1, found %u (give two, e.g. "
                 "--vdev=net_af_packet0,iface=wa --vdev=net_af_packet1,iface=wb)\n", nports);
    rte_eal_cleanup();
    return 2;
  }

  // The pool: every frame each direction may hold, plus what RX bursts,
  // TX bursts and the per-lcore mempool caches keep.
  const std::uint32_t room = frame_room(o.mtu);
  const std::uint32_t held = o.hold + std::max<std::uint32_t>(64, o.hold / 8);
  const unsigned nmbufs = 2 * held + 2 * 16 * direction::kBurst + 2 * 1024 + 256 * rte_lcore_count();
  rte_mempool *pool = rte_pktmbuf_pool_create("wanem_mbufs", nmbufs, 256, 0,
                                              static_cast<std::uint16_t>(RTE_PKTMBUF_HEADROOM + room),
                                              static_cast<int>(rte_socket_id()));
  if (pool == nullptr) {
    std::fprintf(stderr, "hde-wanem: cannot create a pool of %u mbufs of %u bytes: %s (give EAL more memory "
                 "with -m MB, or lower --hold)\n", nmbufs, room, rte_strerror(rte_errno));
    rte_eal_cleanup();
    return 1;
  }
  std::uint16_t nrxq[2] = {1, 1};
  bool started[2] = {false, false};
  for (std::uint16_t p = 0; p < 2 && rc == 0; ++p) {
    if (!port_setup(p, nrxq[p], pool))
      rc = 1;
    else
      started[p] = true;
  }

  std::unique_ptr<direction> ab, ba;
  std::vector<std::unique_ptr<lcore_job>> jobs;
  snapshot last[2];
  lcore_snapshot last_lcore[2];
  std::uint64_t last_tsc = rte_rdtsc();
  const std::uint64_t t0 = last_tsc;
  if (rc == 0) {
    ab = std::make_unique<direction>("a->b", 0, nrxq[0], 1, o.ab, o.hold, hz, 0, pool);
    ba = std::make_unique<direction>("b->a", 1, nrxq[1], 0, o.ba, o.hold, hz, 1, pool);
    direction *dirs[2] = {ab.get(), ba.get()};

    // One lcore runs both directions; with two or more, one each.
    const unsigned main_id = rte_get_main_lcore();
    const unsigned worker_id = rte_get_next_lcore(main_id, 1, 0);
    const bool two = worker_id < RTE_MAX_LCORE;
    jobs.push_back(std::make_unique<lcore_job>());
    jobs[0]->dirs.push_back(dirs[0]);
    if (two) {
      jobs.push_back(std::make_unique<lcore_job>());
      jobs[1]->dirs.push_back(dirs[1]);
    } else {
      jobs[0]->dirs.push_back(dirs[1]);
    }
    for (auto &j : jobs)
      j->max_sleep_us = o.idle_sleep_us;
    std::vector<unsigned> lcore_ids{main_id};
    if (two)
      lcore_ids.push_back(worker_id);

    if (!o.quiet) {
      std::printf("hde-wanem: port 0 (%s) <-> port 1 (%s); %zu lcore(s); hold %zu frames per direction; "
                  "%u mbufs of %u B\n", port_name(0).c_str(), port_name(1).c_str(), jobs.size(),
                  ab->hold_capacity(), nmbufs, room);
      std::printf("hde-wanem: a->b (port 0 -> port 1): %s\n", describe(ab->model()).c_str());
      std::printf("hde-wanem: b->a (port 1 -> port 0): %s\n", describe(ba->model()).c_str());
      if (rte_lcore_count() > 2)
        std::printf("hde-wanem: %u lcores given, 2 used\n", rte_lcore_count());
    }

    // The stats lines, printed by the main lcore between polls.
    if (!o.quiet && o.stats_period_s > 0) {
      jobs[0]->tick_tsc = static_cast<std::uint64_t>(o.stats_period_s * hz);
      jobs[0]->on_tick = [&, dirs, lcore_ids](std::uint64_t now) {
        const double secs = double(now - last_tsc) / hz;
        last_tsc = now;
        for (int i = 0; i < 2; ++i) {
          const direction_stats &s = dirs[i]->stats();
          const snapshot cur{s.in.get(), s.in_bytes.get(), s.out.get(), s.out_bytes.get()};
          std::printf("%s  in %9.0f pps %9.2f Mbit/s | out %9.0f pps %9.2f Mbit/s | lost %llu qdrop %llu "
                      "holddrop %llu dup %llu reord %llu corrupt %llu txfail %llu | held %llu, queue %.1f KiB\n",
                      dirs[i]->name(), double(cur.in - last[i].in) / secs,
                      double(cur.in_bytes - last[i].in_bytes) * 8 / secs / 1e6, double(cur.out - last[i].out) / secs,
                      double(cur.out_bytes - last[i].out_bytes) * 8 / secs / 1e6, (unsigned long long)s.lost.get(),
                      (unsigned long long)s.queue_drops.get(), (unsigned long long)s.hold_drops.get(),
                      (unsigned long long)s.duplicated.get(), (unsigned long long)s.reordered.get(),
                      (unsigned long long)s.corrupted.get(), (unsigned long long)s.tx_fail.get(),
                      (unsigned long long)s.in_flight.get(), double(s.backlog.get()) / 1024);
          last[i] = cur;
        }
        for (std::size_t j = 0; j < jobs.size(); ++j) {
          const lcore_stats &l = jobs[j]->stats;
          const lcore_snapshot cur{l.busy_tsc.get(), l.total_tsc.get(), l.cpu_us.get()};
          const double total = double(cur.total_tsc - last_lcore[j].total_tsc);
          // CPU time is refreshed by the lcore about once a second: over
          // short periods it moves in steps.
          std::printf("lcore %u  busy %5.1f %% (polls that moved frames), cpu %5.1f %%, sleeps %llu\n",
                      lcore_ids[j], total > 0 ? 100.0 * double(cur.busy_tsc - last_lcore[j].busy_tsc) / total : 0.0,
                      total > 0 ? 100.0 * double(cur.cpu_us - last_lcore[j].cpu_us) / 1e6 / (total / hz) : 0.0,
                      (unsigned long long)l.sleeps.get());
          last_lcore[j] = cur;
        }
        std::fflush(stdout);
      };
    }
    if (!o.quiet) {
      std::printf("hde-wanem: forwarding (Ctrl-C or SIGTERM to stop)\n");
      std::fflush(stdout);
    }
    if (two)
      rte_eal_remote_launch(lcore_entry, jobs[1].get(), worker_id);
    run_lcore(*jobs[0]);
    rte_eal_mp_wait_lcore();

    // Summary, like testpmd's.
    const double secs = double(rte_rdtsc() - t0) / hz;
    for (direction *d : dirs)
      d->flush();
    std::printf("\n---------------------- hde-wanem summary (%.2f s) ----------------------\n", secs);
    for (direction *d : dirs) {
      const direction_stats &s = d->stats();
      std::printf("  %s (port %u -> port %u): %s\n", d->name(), d->in_port(), d->out_port(),
                  describe(d->model()).c_str());
      std::printf("  %s: in %llu (%llu B) out %llu (%llu B) lost %llu queue_drops %llu hold_drops %llu "
                  "duplicated %llu dup_nombuf %llu reordered %llu corrupted %llu tx_failures %llu flushed %llu; "
                  "%.2f Mbit/s out on average\n",
                  d->name(), (unsigned long long)s.in.get(), (unsigned long long)s.in_bytes.get(),
                  (unsigned long long)s.out.get(), (unsigned long long)s.out_bytes.get(),
                  (unsigned long long)s.lost.get(), (unsigned long long)s.queue_drops.get(),
                  (unsigned long long)s.hold_drops.get(), (unsigned long long)s.duplicated.get(),
                  (unsigned long long)s.dup_nombuf.get(), (unsigned long long)s.reordered.get(),
                  (unsigned long long)s.corrupted.get(), (unsigned long long)s.tx_fail.get(),
                  (unsigned long long)s.flushed.get(), secs > 0 ? double(s.out_bytes.get()) * 8 / secs / 1e6 : 0.0);
      const std::uint64_t sent = s.out.get() + s.tx_fail.get();
      std::printf("  %s: frames left %.1f us after their due time on average, %.1f us at most\n", d->name(),
                  sent ? double(s.late_tsc.get()) / double(sent) / hz * 1e6 : 0.0,
                  double(s.late_max_tsc.get()) / hz * 1e6);
    }
    for (std::uint16_t p = 0; p < 2; ++p) {
      rte_eth_stats ps{};
      rte_eth_stats_get(p, &ps);
      std::printf("  port %u (%s): RX %llu frames, missed %llu, errors %llu, no mbuf %llu | TX %llu frames, "
                  "errors %llu\n", p, port_name(p).c_str(), (unsigned long long)ps.ipackets,
                  (unsigned long long)ps.imissed, (unsigned long long)ps.ierrors, (unsigned long long)ps.rx_nombuf,
                  (unsigned long long)ps.opackets, (unsigned long long)ps.oerrors);
    }
    for (std::size_t j = 0; j < jobs.size(); ++j) {
      const lcore_stats &l = jobs[j]->stats;
      const double total = double(l.total_tsc.get());
      std::printf("  lcore %u: %llu loops, busy %.1f %% (polls that moved frames), %llu sleeps, %.3f s CPU "
                  "(%.1f %% of %.2f s)\n", lcore_ids[j], (unsigned long long)l.loops.get(),
                  total > 0 ? 100.0 * double(l.busy_tsc.get()) / total : 0.0, (unsigned long long)l.sleeps.get(),
                  double(l.cpu_us.get()) / 1e6, total > 0 ? 100.0 * double(l.cpu_us.get()) / 1e6 / (total / hz) : 0.0,
                  total / hz);
    }
    std::printf("-------------------------------------------------------------------------\n");
    std::fflush(stdout);
  }

  ab.reset();
  ba.reset();
  for (std::uint16_t p = 0; p < 2; ++p) {
    if (started[p])
      rte_eth_dev_stop(p);
    rte_eth_dev_close(p);
  }
  rte_mempool_free(pool);
  rte_eal_cleanup();
  return rc;
}
