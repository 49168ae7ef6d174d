// main.cpp — hde-gateway: EAL and ports, the tasks of a role placed on
// lcores, a supervisor on the main lcore, and a testpmd-style summary.
//   hde-gateway [EAL args] -- --role source|dest|loopback [options]
#include <algorithm>
#include <cstring>
#include <csignal>
#include <functional>
#include <cstdio>
#include <memory>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <string>
#include <unistd.h>
#include <vector>

#include "arp_port.h"
#include "control_glue.h"
#include "frame_crypto.h"
#include "dest.h"
#include "feeder.h"
#include "generator.h"
#include "lcore.h"
#include "negotiate.h"
#include "options.h"
#include "qemu_ingress.h"
#include "selector_service.h"
#include "source.h"
#include "sync_glue.h"
#include "wire/format.h"

using namespace hde;
using namespace hde::dp;

namespace {

std::atomic<bool> g_stop{false};  // SIGINT/SIGTERM: drain and stop

void on_signal(int) { g_stop.store(true); }

std::vector<std::string> split_paths(const std::string &s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    std::size_t c = s.find(',', start);
    if (c == std::string::npos)
      c = s.size();
    if (c > start)
      out.push_back(s.substr(start, c - start));
    start = c + 1;
  }
  return out;
}

// Configure and start a port with at least nrx RX queues (every queue the
// device has, up to 16: net_af_packet with qpairs=N spreads received frames
// over all N, and each must be polled) and ntx TX queues. nrx is updated.
bool port_setup(std::uint16_t port, std::uint16_t &nrx, std::uint16_t ntx, rte_mempool *pool,
                const options &o) {
  rte_eth_dev_info info;
  if (rte_eth_dev_info_get(port, &info) != 0) {
    std::fprintf(stderr, "hde-gateway: port %u: no device info\n", port);
    return false;
  }
  if (info.max_rx_queues > nrx)
    nrx = std::min<std::uint16_t>(info.max_rx_queues, std::max<std::uint16_t>(nrx, 16));
  // net_memif pairs the client's TX queue i with the server's RX queue i and
  // back, and drops the connection ("invalid ring index") when a side has
  // fewer queues than its peer sends on: give both sides as many TX queues
  // as RX queues (the extra ones stay idle).
  if (std::strcmp(info.driver_name, "net_memif") == 0)
    ntx = std::max(ntx, nrx);
  if (nrx > info.max_rx_queues || ntx > info.max_tx_queues) {
    std::fprintf(stderr,
                 "hde-gateway: port %u (%s) has %u RX / %u TX queues, %u / %u needed "
                 "(net_af_packet: add qpairs=%u to the --vdev)\n",
                 port, info.driver_name, info.max_rx_queues, info.max_tx_queues, nrx, ntx,
                 std::max(nrx, ntx));
    return false;
  }
  rte_eth_conf conf{};
  // No MBUF_FAST_FREE: frames in flight are shared (reference counted).
  if (rte_eth_dev_configure(port, nrx, ntx, &conf) != 0) {
    std::fprintf(stderr, "hde-gateway: port %u: configure failed\n", port);
    return false;
  }
  std::uint16_t nrxd = 1024, ntxd = 1024;
  rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrxd, &ntxd);
  for (std::uint16_t q = 0; q < nrx; ++q)
    if (rte_eth_rx_queue_setup(port, q, nrxd, rte_eth_dev_socket_id(port), nullptr, pool) != 0) {
      std::fprintf(stderr, "hde-gateway: port %u: RX queue %u setup failed\n", port, q);
      return false;
    }
  for (std::uint16_t q = 0; q < ntx; ++q)
    if (rte_eth_tx_queue_setup(port, q, ntxd, rte_eth_dev_socket_id(port), nullptr) != 0) {
      std::fprintf(stderr, "hde-gateway: port %u: TX queue %u setup failed\n", port, q);
      return false;
    }
  if (o.mtu != 1500 && rte_eth_dev_set_mtu(port, static_cast<std::uint16_t>(o.mtu)) != 0)
    std::fprintf(stderr, "hde-gateway: port %u: cannot set MTU %zu (continuing)\n", port, o.mtu);
  if (rte_eth_dev_start(port) != 0) {
    std::fprintf(stderr, "hde-gateway: port %u: start failed\n", port);
    return false;
  }
  rte_eth_promiscuous_enable(port);
  // Like testpmd: give the link a few seconds to come up, say so if not.
  rte_eth_link link{};
  for (int i = 0; i < 50; ++i) {
    if (rte_eth_link_get_nowait(port, &link) == 0 && link.link_status == RTE_ETH_LINK_UP)
      break;
    rte_delay_us_sleep(100 * 1000);  // sleep, not spin: the peer may need this core to start
  }
  if (link.link_status != RTE_ETH_LINK_UP)
    std::fprintf(stderr, "hde-gateway: port %u (%s): link is down; sending anyway (frames are resent)\n", port,
                 info.driver_name);
  return true;
}

// A net_ring pair for --role loopback: the source port's TX queue i feeds
// the destination port's RX queue i; one ring carries the acks back.
bool make_ring_pair(std::uint16_t nstreams, std::uint16_t &src_port, std::uint16_t &dst_port) {
  std::vector<rte_ring *> data(nstreams);
  for (std::uint16_t i = 0; i < nstreams; ++i) {
    char name[RTE_RING_NAMESIZE];
    std::snprintf(name, sizeof name, "hde_wire_%u", i);
    data[i] = rte_ring_create(name, 8192, static_cast<int>(rte_socket_id()), RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (data[i] == nullptr)
      return false;
  }
  rte_ring *ack = rte_ring_create("hde_wire_ack", 4096, static_cast<int>(rte_socket_id()),
                                  RING_F_SP_ENQ | RING_F_SC_DEQ);
  if (ack == nullptr)
    return false;
  int a = rte_eth_from_rings("hde_src", &ack, 1, data.data(), nstreams, rte_socket_id());
  int b = rte_eth_from_rings("hde_dst", data.data(), nstreams, &ack, 1, rte_socket_id());
  if (a < 0 || b < 0)
    return false;
  src_port = static_cast<std::uint16_t>(a);
  dst_port = static_cast<std::uint16_t>(b);
  return true;
}

int lcore_entry(void *arg) {
  backoff_config bo;
  auto *pair = static_cast<std::pair<lcore_plan *, backoff_config> *>(arg);
  bo = pair->second;
  return run_lcore(*pair->first, bo);
}

void print_port_stats(std::uint16_t port, const char *label) {
  rte_eth_stats s{};
  rte_eth_stats_get(port, &s);
  std::printf("  port %u (%s): RX %llu frames %llu bytes, missed %llu, errors %llu | TX %llu frames "
              "%llu bytes, errors %llu\n",
              port, label, (unsigned long long)s.ipackets, (unsigned long long)s.ibytes,
              (unsigned long long)s.imissed, (unsigned long long)s.ierrors, (unsigned long long)s.opackets,
              (unsigned long long)s.obytes, (unsigned long long)s.oerrors);
}

}  // namespace

int main(int argc, char **argv) {
  const int eal = rte_eal_init(argc, argv);
  if (eal < 0) {
    std::fprintf(stderr, "hde-gateway: EAL initialisation failed%s%s (see the EAL lines above; EAL "
                 "arguments go before --)\n", rte_errno ? ": " : "", rte_errno ? rte_strerror(rte_errno) : "");
    return 1;
  }
  argc -= eal;
  argv += eal;
  argv[0] = const_cast<char *>("hde-gateway");
  options o;
  if (!parse_options(argc, argv, o)) {
    rte_eal_cleanup();
    return 1;
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGPIPE, SIG_IGN);  // a QEMU that goes away is an error value (EPIPE), not a kill

  const bool is_src = o.r != role::dest, is_dst = o.r != role::source;
  const std::uint16_t nstreams = static_cast<std::uint16_t>(is_src ? o.workers : 0);
  std::uint16_t src_port = o.port, dst_port = o.port;
  if (o.r == role::loopback) {
    if (!make_ring_pair(static_cast<std::uint16_t>(o.workers), src_port, dst_port)) {
      std::fprintf(stderr, "hde-gateway: cannot create the net_ring pair: %s\n", rte_strerror(rte_errno));
      return 1;
    }
    // Ring ports have no MAC (all zeros): locally administered ones, so
    // that each side's ARP finds the other (arp_port.h).
    set_port_mac(src_port, rte_ether_addr{{0x02, 0x48, 0x44, 0x45, 0x00, 0x01}});
    set_port_mac(dst_port, rte_ether_addr{{0x02, 0x48, 0x44, 0x45, 0x00, 0x02}});
  } else if (!rte_eth_dev_is_valid_port(o.port)) {
    std::fprintf(stderr, "hde-gateway: no DPDK port %u (give one with --vdev=net_af_packet0,iface=IF or "
                 "--vdev=net_memif0,..., or use --role loopback)\n", o.port);
    return 1;
  }

  const std::size_t frame = wire::frame_size_for_mtu(o.mtu);
  const std::uint32_t room = static_cast<std::uint32_t>(RTE_PKTMBUF_HEADROOM + kL2L4 + frame);
  const std::uint16_t data_room = static_cast<std::uint16_t>(std::max<std::uint32_t>(room, RTE_MBUF_DEFAULT_BUF_SIZE));
  const unsigned nmbufs = nstreams * o.window + 4 * 2048 + (is_dst ? dest_rx::mbufs_needed(o) : 0) + 4096;
  rte_mempool *pool = rte_pktmbuf_pool_create("hde_mbufs", nmbufs, 256, 0, data_room,
                                              static_cast<int>(rte_socket_id()));
  if (pool == nullptr) {
    std::fprintf(stderr, "hde-gateway: cannot create a pool of %u mbufs of %u bytes: %s (give EAL more "
                 "memory: -m MB)\n", nmbufs, data_room, rte_strerror(rte_errno));
    return 1;
  }
  std::uint16_t src_rxq = 1, dst_rxq = o.r == role::loopback ? nstreams : 1;
  if (is_src && !port_setup(src_port, src_rxq, nstreams, pool, o))
    return 1;
  if (is_dst && !port_setup(dst_port, dst_rxq, 1, pool, o))
    return 1;

  endpoint_pair ep;
  ep.src_mac = port_mac(src_port);  // dst_mac: the next hop's, from ARP (arp_port.h)
  ep.src_ip = o.src_ip;
  ep.dst_ip = o.dst_ip;
  ep.src_port = o.udp_port;
  ep.dst_port = o.udp_port;
  const std::uint32_t epoch = static_cast<std::uint32_t>(rte_rdtsc() ^ (std::uint64_t(getpid()) << 16)) | 1u;

  // --key-file: frames sealed with AES-256-GCM. Lanes (one queue pair each):
  // the source's workers, its ACK receiver, then the destination's decoders.
  std::unique_ptr<frame_crypto> crypto;
  const unsigned src_lanes = is_src ? nstreams + 1u : 0u;
  if (!o.key_file.empty()) {
    crypto = std::make_unique<frame_crypto>();
    frame_crypto::config cc;
    cc.key_file = o.key_file;
    cc.device = o.crypto_dev;
    cc.lanes = src_lanes + (is_dst ? o.decoders : 0u);
    cc.grace_s = o.key_grace_s;
    std::string err;
    if (!crypto->init(cc, err)) {
      std::fprintf(stderr, "hde-gateway: %s\n", err.c_str());
      return 1;
    }
    if (!o.quiet) {
      const frame_crypto::status st = crypto->get_status();
      std::printf("hde-gateway: frames sealed with AES-256-GCM on %s (%s), key id %d\n", st.device.c_str(),
                  st.driver.c_str(), st.newest_id);
    }
  } else if (!o.quiet && o.no_encrypt) {
    std::printf("hde-gateway: --no-encrypt: frames travel in clear\n");
  }

  // Live configuration, read by workers through RCU, written by the control thread.
  auto live_ptr = std::make_unique<live_config_store>();
  live_config_store &live = *live_ptr;

  feeder feed;
  const bool qemu_src = is_src && !o.qemu_listen.empty();
  std::unique_ptr<selector_service> sel;  // outlives the workers' encoders
  std::vector<std::unique_ptr<worker>> workers;
  std::unique_ptr<ingress> ing;
  std::vector<std::unique_ptr<qemu_ingress>> qings;  // --qemu-listen: one per address (VM i on entry i)
  std::unique_ptr<ack_rx> acks;
  std::unique_ptr<dest_rx> drx;
  if (is_src) {
    std::string err;
    if (!o.gen.empty()) {
      gen_spec g;
      parse_gen_spec(o.gen, g, err);  // checked by parse_options
      feed.generate(g);
      // What the destination must end up holding.
      std::printf("hde-gateway: synthetic trace %s: final image sha256 %s\n", to_string(g).c_str(),
                  sha256_hex(feed.last_image(), g.mib << 20).c_str());
      std::fflush(stdout);
    } else if (qemu_src) {
      // Pages come from QEMU (qemu_ingress): the guest's size is not known
      // before its stream starts, so the cache is sized for a 1 GiB guest by
      // default (--cache-mb for larger ones).
    } else if (!feed.open(split_paths(o.trace), err) || (o.preload && !feed.preload(err))) {
      std::fprintf(stderr, "hde-gateway: %s\n", err.c_str());
      return 1;
    }
    if (o.cache_auto)
      o.cache_mb = default_cache_mb(qemu_src ? std::uint64_t(1) << 30 : feed.ram_bytes(), nstreams);
    if (!o.quiet)
      std::printf("hde-gateway: baseline cache %zu MiB per stream%s\n", o.cache_mb,
                  o.cache_auto ? " (sized to the guest)" : "");
    live_config first;
    first.enc = encoder_config::for_mode(o.m);
    if (!o.codec.empty())
      first.enc.codec() = *parse_codec(o.codec);
    first.link_rate_bps = o.link_rate_bps;
    first.cache_bytes = o.cache_mb << 20;
    if (!live.init(nstreams, first)) {
      std::fprintf(stderr, "hde-gateway: cannot set up RCU for %u workers\n", nstreams);
      return 1;
    }
    std::vector<worker *> raw;
    sel = std::make_unique<selector_service>(nstreams, &live, static_cast<double>(rte_get_tsc_hz()));
    for (std::uint16_t i = 0; i < nstreams; ++i) {
      workers.push_back(std::make_unique<worker>(o, i, src_port, i, pool, ep, epoch, &live,
                                                 crypto ? &crypto->lane(i) : nullptr));
      workers.back()->set_selector_port(sel->port(i));
      raw.push_back(workers.back().get());
    }
    ing = std::make_unique<ingress>(feed, raw);
    acks = std::make_unique<ack_rx>(src_port, src_rxq, o, raw, *ing, crypto ? &crypto->lane(nstreams) : nullptr);
    if (qemu_src)
      for (const std::string &a : split_paths(o.qemu_listen))
        qings.push_back(std::make_unique<qemu_ingress>(o, raw, static_cast<std::uint32_t>(qings.size()), a));
  }
  if (is_dst) {
    drx = std::make_unique<dest_rx>(o, dst_port, dst_rxq, pool, crypto.get(), src_lanes);
    if (!drx->setup_error().empty()) {
      std::fprintf(stderr, "hde-gateway: %s\n", drx->setup_error().c_str());
      return 1;
    }
  }

  // Addressing (arp_port.h): each port answers ARP for its own address and
  // resolves the MAC of its next hop (the peer, or --gateway-ip), unless
  // --peer-mac gives it; nothing but ARP leaves a port before it is known.
  // A source's ARP frames leave through worker 0 (the TX queues are the
  // workers'); a destination's on TX queue 0, which dest-rx owns on the
  // same lcore.
  std::unique_ptr<arp_port> src_arp, dst_arp;
  {
    arp_port::config a;
    a.pool = pool;
    a.gateway_ip = o.gateway_ip;
    a.have_static = o.have_peer_mac;
    a.static_mac = o.peer_mac;
    a.quiet = o.quiet;
    if (is_src) {
      a.side = "source";
      a.peer_side = "destination";
      a.port = src_port;
      a.our_ip = o.src_ip;
      a.peer_ip = o.dst_ip;
      src_arp = std::make_unique<arp_port>(a);
      rte_ring *ctl = src_arp->make_tx_ring();
      if (ctl == nullptr) {
        std::fprintf(stderr, "hde-gateway: cannot create the ARP ring: %s\n", rte_strerror(rte_errno));
        return 1;
      }
      for (std::size_t i = 0; i < workers.size(); ++i)
        workers[i]->set_addressing(&src_arp->next_hop(), i == 0 ? ctl : nullptr);
      acks->set_arp(src_arp.get());
    }
    if (is_dst) {
      a.side = "dest";
      a.peer_side = "source";
      a.port = dst_port;
      a.our_ip = o.dst_ip;
      a.peer_ip = o.check_peer ? o.src_ip : 0;  // --any-peer: the first frame's
      dst_arp = std::make_unique<arp_port>(a);
      dst_arp->transmit_on(0);
      drx->set_arp(dst_arp.get());
    }
  }

  // Place tasks: the main lcore takes ingress, ack reception and the
  // destination; workers go round-robin over the other lcores.
  std::vector<unsigned> lcores{rte_get_main_lcore()};
  unsigned lc;
  RTE_LCORE_FOREACH_WORKER(lc) { lcores.push_back(lc); }
  std::vector<lcore_plan> plans(lcores.size());
  for (std::size_t i = 0; i < lcores.size(); ++i)
    plans[i].lcore_id = lcores[i];
  if (ing) {
    if (qings.empty())  // with QEMU, its threads are the producers on the worker rings
      plans[0].tasks.push_back(ing.get());
    plans[0].tasks.push_back(acks.get());
  }
  if (drx)
    plans[0].tasks.push_back(drx.get());
  for (arp_port *a : {src_arp.get(), dst_arp.get()})
    if (a != nullptr)
      plans[0].tasks.push_back(a);
  for (std::size_t i = 0; i < workers.size(); ++i)
    plans[lcores.size() > 1 ? 1 + i % (lcores.size() - 1) : 0].tasks.push_back(workers[i].get());
  if (sel)  // workers sharing an lcore share its CPU
    sel->set_worker_lcores(static_cast<unsigned>(
        std::min<std::size_t>(workers.size(), lcores.size() > 1 ? lcores.size() - 1 : 1)));
  // Decoders: one decoder shares the main lcore with dest-rx (receive and
  // decode run to completion there, which suits small machines and leaves
  // the other lcores to a co-located source's workers); with --decoders N > 1
  // they go round robin over the other lcores, after the source's workers.
  if (drx) {
    const auto &dec = drx->decoders();
    const bool spread = lcores.size() > 1 && dec.size() > 1;
    for (std::size_t i = 0; i < dec.size(); ++i)
      plans[spread ? 1 + (workers.size() + i) % (lcores.size() - 1) : 0].tasks.push_back(dec[i].get());
  }

  backoff_config bo;
  g_idle_sleep_us.store(o.idle_sleep_us);
  if (!o.quiet) {
    std::printf("hde-gateway: role %s, %u lcore(s), %u stream(s), mode %s, MTU %zu, window %u\n",
                role_name(o.r), static_cast<unsigned>(lcores.size()), static_cast<unsigned>(nstreams),
                mode_name(o.m), o.mtu, o.window);
    for (const auto &p : plans) {
      std::printf("  lcore %u:", p.lcore_id);
      for (task *t : p.tasks)
        std::printf(" %s", t->name());
      std::printf("\n");
    }
    std::fflush(stdout);
  }
  if (!qings.empty()) {
    for (auto &q : qings) {
      std::string err;
      if (!q->start(err)) {
        std::fprintf(stderr, "hde-gateway: %s\n", err.c_str());
        return 1;
      }
      std::printf("hde-gateway: qemu: VM %u: waiting for a migration on %s (QMP: migrate uri=%s), buffer %zu MiB\n",
                  q->vm(), q->address().c_str(), q->address().c_str(), q->buffer_mb());
    }
    std::fflush(stdout);
  } else if (is_src) {
    feed.start();
  }

  // Control thread: the control socket (hdectl) and DPDK telemetry.
  gateway_view view;
  view.opt = &o;
  for (auto &w : workers)
    view.workers.push_back(w.get());
  view.ing = ing.get();
  for (auto &q : qings)
    view.qings.push_back(q.get());
  view.acks = acks.get();
  view.drx = drx.get();
  view.src_arp = src_arp.get();
  view.dst_arp = dst_arp.get();
  view.plans = &plans;
  view.src_port = src_port;
  view.dst_port = dst_port;
  view.live = is_src ? &live : nullptr;
  view.stop = &g_stop;
  view.rounds = is_src ? feed.rounds() : 0;
  view.start_tsc = rte_rdtsc();
  view.total_pages = is_src ? feed.total_pages() : 0;
  ctl::registry reg("hde-gateway 0.1.0");
  ctl::server_config scfg;
  scfg.path = o.ctl_sock.empty() ? ctl::default_socket_path(rte_eal_get_runtime_dir()) : o.ctl_sock;
  if (o.ctl_gid >= 0)
    scfg.group = static_cast<gid_t>(o.ctl_gid);
  fleet_sync fsync;  // before srv: the control thread (srv) runs it until srv stops
  ctl::server srv(reg, scfg);
  view.srv = &srv;
  view.reg = &reg;
  view.sel = sel.get();
  view.crypto = crypto.get();
  if (crypto)  // key rotation's grace period, and retired keys freed
    srv.add_timer(100, [&crypto] { crypto->tick(); });
  if (sel)  // the learning selector runs on the control thread
    srv.add_timer(10, [&sel, &view] { sel->tick(view.workers, rte_rdtsc()); });
  register_commands(reg, view);
  register_telemetry(view);
  {
    std::string err;
    if (!fsync.start(o, view, err)) {
      std::fprintf(stderr, "hde-gateway: %s\n", err.c_str());
      return 1;
    }
    fsync.register_commands(reg);
    fsync.register_telemetry();
    if (fsync.on()) {
      srv.set_task(fsync.fd(), [&fsync] { return fsync.tick(); });
      if (!o.quiet)
        std::printf("hde-gateway: fleet sync: node %u on %s every %u ms\n", o.node_id, o.sync_listen.c_str(),
                    o.sync_interval_ms);
    }
  }
  {
    std::string err;
    if (!srv.start(err)) {
      std::fprintf(stderr, "hde-gateway: %s\n", err.c_str());
      return 1;
    }
    if (!o.quiet)
      std::printf("hde-gateway: control socket %s (mode %s)\n", srv.path().c_str(),
                  o.ctl_group.empty() ? "0600" : ("0660, group " + o.ctl_group).c_str());
  }

  // Supervisor: completion, failure, timeout, progress, signals.
  int rc = 0;
  const std::uint64_t hz = rte_get_tsc_hz();
  const std::uint64_t t0 = rte_rdtsc();
  struct supervisor final : task {
    unsigned poll(std::uint64_t now) override { return fn(now); }
    const char *name() const override { return "supervisor"; }
    std::function<unsigned(std::uint64_t)> fn;
  } sup;
  std::uint64_t next_check = 0, next_print = t0 + hz, complete_at = 0, last_rx = t0, last_frames = 0, failed_at = 0;
  std::uint64_t refused_at = 0;
  bool draining = false;
  // Why a gateway gives up: the peer may be down, or it may drop our frames
  // (another key, no key): NOTICE frames and authentication failures say so.
  auto why_no_ack = [&]() -> std::string {
    if (!acks)
      return "is the destination up?";
    const std::uint32_t n = acks->peer_notice();
    if (n == static_cast<std::uint32_t>(wire::notice_reason::auth_fail))
      return "the destination rejects our frames: they fail authentication there (another key?)";
    if (n == static_cast<std::uint32_t>(wire::notice_reason::unknown_key))
      return "the destination rejects our frames: it does not hold our key id (rotate the key there too)";
    if (n == static_cast<std::uint32_t>(wire::notice_reason::need_sealed))
      return "the destination rejects our frames: it requires sealed frames (give --key-file here too)";
    if (n == static_cast<std::uint32_t>(wire::notice_reason::cannot_open))
      return "the destination rejects our frames: it has no key to open them (give it --key-file)";
    if (acks->stats().not_opened != 0)
      return std::to_string(acks->stats().not_opened) +
             " replies from the destination failed authentication here (another key?)";
    return "is the destination up?";
  };
  auto why_no_frames = [&]() -> std::string {
    const dest_stats d = drx->stats();
    const std::string head = "no authentic frames for " + std::to_string(o.timeout_s) + " s: ";
    if (d.sealed_no_key != 0)
      return head + std::to_string(d.sealed_no_key) + " sealed frames arrived, and this gateway has no --key-file";
    if (d.not_opened != 0)
      return head + std::to_string(d.not_opened) + " frames failed authentication (another key, or frames in "
             "clear from a source without --key-file; hdectl show crypto)";
    return "no frames for " + std::to_string(o.timeout_s) + " s: is the source up?";
  };
  sup.fn = [&](std::uint64_t now) -> unsigned {
    if (now < next_check)
      return 0;
    next_check = now + hz / 100;
    std::string err;
    if (is_src && feed.failed(err)) {
      std::fprintf(stderr, "hde-gateway: %s\n", err.c_str());
      rc = 1;
      g_quit = true;
      return 0;
    }
    if (g_stop.load() && !draining) {
      draining = true;
      if (is_src)
        ing->stop();
      else
        g_quit = true;
      std::printf("hde-gateway: signal: draining in-flight frames\n");
      std::fflush(stdout);
    }
    // Addressing and the stream's terms (arp_port.h, negotiate.h): a next
    // hop that never answers ARP (a destination only once frames come, else
    // it is the source that is missing), and a refusal, each one clear line.
    if (src_arp && src_arp->gave_up(now, o.timeout_s * hz, err)) {
      std::fprintf(stderr, "hde-gateway: %s\n", err.c_str());
      rc = 1;
      g_quit = true;
      return 0;
    }
    if (dst_arp && dst_arp->gave_up(now, o.timeout_s * hz, err) && drx->stats().data_frames != 0) {
      std::fprintf(stderr, "hde-gateway: %s\n", err.c_str());
      rc = 1;
      g_quit = true;
      return 0;
    }
    for (auto &w : workers) {
      std::uint32_t ours = 0, theirs = 0;
      if (const std::uint8_t r = w->refused(ours, theirs); r != 0) {
        const std::string why = refusal_text(static_cast<refusal>(r), ours, theirs, true);
        std::fprintf(stderr, "hde-gateway: stream %u: %s\n", w->id(), why.c_str());
        for (auto &q : qings)
          q->abort(why);
        rc = 1;
        g_quit = true;
        return 0;
      }
    }
    if (is_dst && drx->refused()) {  // answer a while longer: the source hears why from the ACKs
      if (refused_at == 0)
        refused_at = now;
      if (now - refused_at > 2 * hz) {
        rc = 1;
        g_quit = true;
      }
      return 0;
    }
    qemu_egress *eg = is_dst ? drx->egress() : nullptr;
    if (eg != nullptr && eg->failed()) {
      // Answer for a while longer: ACKs now say so, and the source gateway
      // fails its QEMU's migration at once instead of timing out.
      if (failed_at == 0)
        failed_at = now;
      if (o.r == role::loopback || now - failed_at > 2 * hz) {
        rc = 1;
        g_quit = true;
      }
      return 0;
    }
    if (!qings.empty()) {
      bool any_failed = false, all_finished = true, all_listening = true;
      for (auto &q : qings) {
        if (acks->peer_aborted())
          q->abort("the destination gateway gave up on the migration (its QEMU side failed; see its log)");
        any_failed = any_failed || q->failed();
        all_finished = all_finished && q->finished();
        all_listening = all_listening && q->stats().state.load() == static_cast<int>(qemu_state::listening);
      }
      if (any_failed) {
        rc = 1;
        g_quit = true;
        return 0;
      }
      if (ing->repairs_pending() != 0) {  // pages are not kept for repair on the QEMU path
        std::fprintf(stderr, "hde-gateway: qemu: the destination lost pages it could not rebuild; failing the "
                     "migration (the source QEMU keeps its guest)\n");
        rc = 1;
        g_quit = true;
        return 0;
      }
      bool all_drained = all_finished;
      std::uint64_t progress = 0;
      for (auto &w : workers) {
        all_drained = all_drained && w->drained();
        progress = std::max(progress, w->last_progress_tsc());
      }
      if (all_drained && (o.r == role::source || (eg != nullptr && eg->done()))) {
        if (!o.quiet)
          std::printf("hde-gateway: qemu: migration delivered\n");
        g_quit = true;
      } else if (draining) {
        g_quit = true;
      } else if (!all_listening && now > progress &&
                 now - progress > o.timeout_s * hz) {
        std::fprintf(stderr, "hde-gateway: no acknowledgement for %u s: %s\n", o.timeout_s, why_no_ack().c_str());
        rc = 1;
        g_quit = true;
      }
    } else if (is_src) {
      bool all_drained = true, all_rounds = ing->all_pushed();
      bool repaired = ing->repairs_pending() == 0;  // nothing the destination lost is still unsent...
      std::uint64_t progress = 0;
      for (auto &w : workers) {
        all_drained = all_drained && w->drained();
        repaired = repaired && w->peer_missing() == 0;  // ...or still missing there
        all_rounds = all_rounds && w->rounds_done() == feed.rounds();
        progress = std::max(progress, w->last_progress_tsc());
      }
      if ((all_rounds || draining) && all_drained && (repaired || draining) &&
          (o.r == role::source || draining || drx->complete())) {
        if (!draining && !o.quiet)
          std::printf("hde-gateway: source: every frame of the last round acknowledged\n");
        g_quit = true;
      } else if (now > progress && now - progress > o.timeout_s * hz) {
        std::fprintf(stderr, "hde-gateway: no acknowledgement for %u s: %s\n", o.timeout_s, why_no_ack().c_str());
        rc = 1;
        g_quit = true;
      }
    }
    if (o.r == role::dest) {
      if (const std::uint64_t f = drx->stats().accepted; f != last_frames) {
        last_frames = f;
        last_rx = now;
      }
      if (drx->failed()) {
        rc = 1;
        g_quit = true;
      } else if (eg != nullptr) {
        // QEMU: done once its QEMU has the whole stream; frames keep coming
        // only while a migration runs.
        if (eg->done()) {
          if (complete_at == 0)
            complete_at = now;
          if (now - complete_at > hz)
            g_quit = true;
        } else if (eg->vms() != 0 && now > last_rx && now - last_rx > o.timeout_s * hz) {
          std::fprintf(stderr, "hde-gateway: %s\n", why_no_frames().c_str());
          rc = 1;
          g_quit = true;
        }
      } else if (drx->complete()) {
        if (complete_at == 0)
          complete_at = now;
        // Linger so that a lost final ack is answered when the source resends.
        if (o.exit_on_complete && now - complete_at > hz)
          g_quit = true;
      } else if (now > last_rx && now - last_rx > o.timeout_s * hz) {
        std::fprintf(stderr, "hde-gateway: %s\n", why_no_frames().c_str());
        rc = 1;
        g_quit = true;
      }
    }
    if (!o.quiet && now >= next_print) {
      next_print = now + hz;
      if (is_src) {
        std::uint64_t pages = 0, frames = 0, rtx = 0;
        for (auto &w : workers) {
          pages += w->enc_stats().pages_in;
          frames += w->stats().frames_sent;
          rtx += w->stats().retransmits;
        }
        std::printf("hde-gateway: %.1f s: source round %u, %llu pages, %llu frames, %llu retransmits\n",
                    double(now - t0) / hz, ing->rounds_pushed(), (unsigned long long)pages,
                    (unsigned long long)frames, (unsigned long long)rtx);
      }
      if (is_dst) {
        const dest_stats d = drx->stats();
        std::printf("hde-gateway: %.1f s: dest %llu frames, %llu decoded, %llu duplicates\n",
                    double(now - t0) / hz, (unsigned long long)d.frames, (unsigned long long)d.decoded,
                    (unsigned long long)d.duplicates);
      }
      std::fflush(stdout);
    }
    return 0;
  };
  plans[0].tasks.push_back(&sup);

  std::vector<std::pair<lcore_plan *, backoff_config>> args;
  args.reserve(plans.size());
  for (auto &p : plans)
    args.emplace_back(&p, bo);
  for (std::size_t i = 1; i < plans.size(); ++i)
    if (!plans[i].tasks.empty())
      rte_eal_remote_launch(lcore_entry, &args[i], plans[i].lcore_id);
  run_lcore(plans[0], bo);
  rte_eal_mp_wait_lcore();
  srv.stop();
  feed.stop();
  for (auto &q : qings) {
    q->stop();
    if (q->failed())
      rc = 1;
  }
  if (drx && drx->egress() != nullptr) {
    drx->egress()->stop();
    if (drx->egress()->failed())
      rc = 1;
  }

  // Summary, like testpmd's.
  const double secs = double(rte_rdtsc() - t0) / hz;
  std::printf("\n---------------------- hde-gateway summary (%.2f s) ----------------------\n", secs);
  if (is_src) {
    {  // what the source ran with at the end (live changes included)
      const live_config *c = live.get();
      std::printf("  source: mode %s, codec %s, link rate %s\n", mode_name(c->enc.m), to_string(c->enc.codec()).c_str(),
                  c->link_rate_bps ? (std::to_string(c->link_rate_bps / 1000000) + " Mbit/s").c_str() : "unlimited");
    }
    print_port_stats(src_port, "source");
    for (auto &qi : qings) {
      const qemu_migration_stats &q = qi->stats();
      std::printf("  qemu source VM %u (%s): %s, %llu pages (%llu zero), %llu opaque bytes, %u RAM sections, %u dirty "
                  "rounds, %u multifd channel(s), %.3f s waiting for buffers%s%s\n",
                  qi->vm(), qi->address().c_str(), to_string(static_cast<qemu_state>(q.state.load())),
                  (unsigned long long)q.pages.load(), (unsigned long long)q.zero_pages.load(),
                  (unsigned long long)q.opaque_bytes.load(), q.barriers.load(), q.round.load(), q.channels.load(),
                  double(q.stall_us.load()) / 1e6, qi->failed() ? ": " : "", qi->reason().c_str());
    }
    for (auto &w : workers) {
      const auto &e = w->enc_stats();
      const auto &s = w->stats();
      std::printf("  stream %u: %llu pages (zero %llu, ref %llu, delta %llu, page %llu), %llu frames "
                  "%.2f MB, acks %llu, tx-full %llu\n",
                  w->id(), (unsigned long long)e.pages_in, (unsigned long long)e.rung_pages[0],
                  (unsigned long long)e.rung_pages[1], (unsigned long long)e.rung_pages[2],
                  (unsigned long long)e.rung_pages[3], (unsigned long long)s.frames_sent,
                  e.frame_bytes / 1e6, (unsigned long long)s.acks, (unsigned long long)s.tx_full);
      const double tx = double(s.frames_sent + s.retransmits);
      std::printf("  stream %u transport: retransmits %llu (lost %llu, tail probes %llu, timeouts %llu, %llu undone), "
                  "spurious %llu (%.3f %% of frames), loss rate %.3f %%, delivery %.1f Mbit/s, bottleneck "
                  "estimate %.1f Mbit/s, pacing %.1f Mbit/s, RTT min %.0f us smoothed %.0f us, cwnd %llu B, "
                  "state %s, heavy-loss rounds %llu\n",
                  w->id(), (unsigned long long)s.retransmits, (unsigned long long)s.lost_frames,
                  (unsigned long long)s.tlp_probes, (unsigned long long)s.rto_events, (unsigned long long)s.spurious_rto,
                  (unsigned long long)s.spurious, tx > 0 ? 100.0 * double(s.spurious) / tx : 0.0,
                  tx > 0 ? 100.0 * double(s.lost_frames) / tx : 0.0, s.delivery_bps / 1e6, s.btl_bw_bps / 1e6,
                  s.pacing_bps / 1e6, s.min_rtt_ns / 1e3, s.srtt_ns / 1e3, (unsigned long long)s.cwnd_bytes,
                  cc_state_name(static_cast<cc_state>(s.cc_state)), (unsigned long long)s.loss_rounds);
      if (s.fec_groups != 0 || o.fec_k != 0 || o.fec_auto)
        std::printf("  stream %u fec: %s%llu,%llu now, %llu groups, %llu parity frames %.2f MB (%.2f %% of the "
                    "wire), %llu frames rebuilt at the destination\n",
                    w->id(), o.fec_auto ? "auto, " : "", (unsigned long long)s.fec_k, (unsigned long long)s.fec_m,
                    (unsigned long long)s.fec_groups, (unsigned long long)s.fec_parity_frames,
                    s.fec_parity_bytes / 1e6,
                    s.bytes_sent + s.fec_parity_bytes > 0
                        ? 100.0 * double(s.fec_parity_bytes) / double(s.bytes_sent + s.fec_parity_bytes)
                        : 0.0,
                    (unsigned long long)s.fec_rebuilt);
    }
    std::uint64_t pages = 0, busy = 0;
    for (auto &w : workers) {
      pages += w->enc_stats().pages_in;
      busy += w->busy_tsc;
    }
    const double busy_s = double(busy) / hz;
    std::printf("  workers: %llu pages in %.3f busy lcore-s: %.0f pages/s, %.1f MB/s of input per busy "
                "worker lcore\n",
                (unsigned long long)pages, busy_s, busy_s > 0 ? pages / busy_s : 0.0,
                busy_s > 0 ? pages * 4096.0 / busy_s / 1e6 : 0.0);
    const auto &a = acks->stats();
    std::printf("  ack-rx: %llu frames, %llu acks, %llu not HDE acks, %llu bad stream, %llu ring full\n",
                (unsigned long long)a.frames, (unsigned long long)a.acks, (unsigned long long)a.not_hde,
                (unsigned long long)a.bad_stream, (unsigned long long)a.ring_full);
    if (a.repair_frames != 0)
      std::printf("  repairs: %llu REPAIR frames asked for %llu pages, %llu of no known round\n",
                  (unsigned long long)a.repair_frames, (unsigned long long)a.repair_pages,
                  (unsigned long long)ing->repairs_unknown());
  }
  if (is_dst) {
    print_port_stats(dst_port, "dest");
    if (const qemu_egress *e = drx->egress(); e != nullptr)
      for (std::uint32_t vm = 0; vm < e->vms(); ++vm) {
        const qemu_egress_stats &q = e->stats(vm);
        static const char *names[] = {"waiting", "streaming", "done", "failed"};
        std::printf("  qemu dest VM %u: %s, %llu pages (%llu zero), %llu opaque bytes, %llu bytes to QEMU, %u RAM "
                    "sections, %u multifd channel(s), %.3f s waiting at barriers\n",
                    vm, names[std::clamp(q.state.load(), 0, 3)], (unsigned long long)q.pages.load(),
                    (unsigned long long)q.zero_pages.load(), (unsigned long long)q.opaque_bytes.load(),
                    (unsigned long long)q.bytes_out.load(), q.barriers.load(), q.channels.load(),
                    double(q.barrier_wait_us.load()) / 1e6);
      }
    const dest_stats d = drx->stats();
    const auto dec = drx->decoded();
    std::printf("  dest: %llu frames, %llu data, %llu decoded, %llu duplicates, %llu beyond window, "
                "%llu acks, %llu decode errors, %llu source restarts\n",
                (unsigned long long)d.frames, (unsigned long long)d.data_frames, (unsigned long long)d.decoded,
                (unsigned long long)d.duplicates, (unsigned long long)d.too_far, (unsigned long long)d.acks_sent,
                (unsigned long long)d.decode_errors, (unsigned long long)d.new_epoch);
    if (d.fec_parity != 0)
      std::printf("  dest fec: %llu parity frames, %llu frames rebuilt, %llu groups past repair (retransmitted), "
                  "%llu parity spare or too late, %llu bad\n",
                  (unsigned long long)d.fec_parity, (unsigned long long)d.fec_rebuilt,
                  (unsigned long long)d.fec_unrecoverable, (unsigned long long)d.fec_too_late,
                  (unsigned long long)d.fec_bad);
    std::printf("  dest pages: zero %llu, ref %llu, delta %llu, page %llu\n",
                (unsigned long long)dec.rung_pages[0], (unsigned long long)dec.rung_pages[1],
                (unsigned long long)dec.rung_pages[2], (unsigned long long)dec.rung_pages[3]);
    {
      std::uint64_t busy = 0, pages = 0;
      for (const auto &dd : drx->decoders())
        busy += dd->busy_tsc;
      for (std::size_t k = 0; k < kRungCount; ++k)
        pages += dec.rung_pages[k];
      const double busy_s = double(busy) / hz;
      std::printf("  decoders: %zu, %llu pages in %.3f busy lcore-s: %.0f pages/s, %.1f MB/s of output per "
                  "busy decoder lcore\n", drx->decoders().size(), (unsigned long long)pages, busy_s,
                  busy_s > 0 ? pages / busy_s : 0.0, busy_s > 0 ? pages * 4096.0 / busy_s / 1e6 : 0.0);
    }
    if (d.pages_lost != 0 || d.faults_injected != 0)
      std::printf("  dest repairs: %llu pages lost, %llu repaired, %llu REPAIR frames (%llu page requests), "
                  "%llu baselines dropped by --fault-forget-every\n",
                  (unsigned long long)d.pages_lost, (unsigned long long)d.pages_repaired,
                  (unsigned long long)d.repair_frames, (unsigned long long)d.repair_requests,
                  (unsigned long long)d.faults_injected);
    std::printf("  dest drops: stale_epoch %llu bad_stream %llu decoder_ring_full %llu reply_ring_full %llu "
                "low_mbufs %llu after_seal %llu",
                (unsigned long long)d.stale_epoch, (unsigned long long)d.bad_stream,
                (unsigned long long)d.dispatch_full, (unsigned long long)d.reply_full,
                (unsigned long long)d.low_mbufs, (unsigned long long)d.after_seal);
    for (std::size_t i = 0; i < kRxDropCount; ++i)
      std::printf(" %s %llu", rx_drop_name[i], (unsigned long long)d.drops[i]);
    for (std::size_t i = 1; i < kErrorCount; ++i)
      if (d.header_errors[i] != 0)
        std::printf(" %s %llu", std::string(to_string(static_cast<error>(i))).c_str(),
                    (unsigned long long)d.header_errors[i]);
    std::printf("\n");
    if (!drx->complete() && rc == 0 && !g_stop.load())
      rc = 1;
    if (d.decode_errors != 0)
      rc = 1;
  }
  if (crypto) {
    const frame_crypto::status st = crypto->get_status();
    const crypto_lane_stats &t = st.total;
    std::printf("  crypto: AES-256-GCM on %s (%s), key id %d, rotations %llu; sealed %llu opened %llu, "
                "%.2f MB; auth_fail %llu unknown_key %llu unsealed %llu bad_seal %llu seal_fail %llu",
                st.device.c_str(), st.driver.c_str(), st.newest_id, (unsigned long long)st.rotations,
                (unsigned long long)t.sealed, (unsigned long long)t.opened, t.bytes / 1e6,
                (unsigned long long)t.auth_fail, (unsigned long long)t.unknown_key, (unsigned long long)t.unsealed,
                (unsigned long long)t.bad_seal, (unsigned long long)t.seal_fail);
    if (drx)
      std::printf(", replayed %llu, notices sent %llu", (unsigned long long)drx->stats().replayed,
                  (unsigned long long)drx->stats().notices);
    std::printf("\n");
  } else if (drx && (drx->stats().sealed_no_key != 0)) {
    std::printf("  crypto: none here; %llu sealed frames dropped (no --key-file)\n",
                (unsigned long long)drx->stats().sealed_no_key);
  }
  if (acks && (acks->stats().notices != 0 || acks->stats().not_opened != 0))
    std::printf("  source: %llu NOTICE frames from the destination (last reason %u), %llu replies not opened\n",
                (unsigned long long)acks->stats().notices, acks->peer_notice(),
                (unsigned long long)acks->stats().not_opened);
  // Addressing: ARP on each port, and the destination's terms as the source heard them.
  if (src_arp)
    std::printf("  arp (source port %u): %s\n", src_port, src_arp->summary().c_str());
  if (dst_arp)
    std::printf("  arp (dest port %u): %s; %llu replies dropped before the peer's MAC was known\n", dst_port,
                dst_arp->summary().c_str(), (unsigned long long)drx->unaddressed());
  for (auto &w : workers)
    if (w->peer_window() != 0 && w->peer_window() < o.window)
      std::printf("  stream %u: the destination's reorder window is %u frames (ours %u): in flight kept to it\n",
                  w->id(), w->peer_window(), o.window);
  if (o.impair.any()) {  // tests: what --impair did to this gateway's frames
    impair_stats t{};
    for (auto &w : workers) {
      t.dropped += w->impaired().dropped;
      t.duplicated += w->impaired().duplicated;
      t.reordered += w->impaired().reordered;
    }
    if (drx) {
      t.dropped += drx->impaired().dropped;
      t.duplicated += drx->impaired().duplicated;
      t.reordered += drx->impaired().reordered;
    }
    std::printf("  impair (%s): %llu frames dropped, %llu duplicated, %llu reordered\n", to_string(o.impair).c_str(),
                (unsigned long long)t.dropped, (unsigned long long)t.duplicated, (unsigned long long)t.reordered);
  }
  for (const auto &p : plans) {
    std::printf("  lcore %u: %llu loops, %.1f%% idle, %llu sleeps, %.3f s CPU;", p.lcore_id,
                (unsigned long long)p.stats.loops,
                p.stats.loops ? 100.0 * p.stats.idle_loops / p.stats.loops : 0.0,
                (unsigned long long)p.stats.sleeps, p.stats.cpu_s);
    for (task *t : p.tasks)
      std::printf(" %s busy %.3f s", t->name(), double(t->busy_tsc) / hz);
    std::printf("\n");
  }
  if (fsync.on()) {
    const ctl::json j = fsync.sync_json();
    std::printf("  fleet sync: node %u, %llu rounds, %llu datagrams out (%llu bytes), %llu in, control thread busy "
                "%.1f ms (%.3f %% of the run)\n",
                o.node_id, (unsigned long long)j["rounds"].get<std::uint64_t>(),
                (unsigned long long)j["datagrams_out"].get<std::uint64_t>(),
                (unsigned long long)j["bytes_out"].get<std::uint64_t>(),
                (unsigned long long)j["datagrams_in"].get<std::uint64_t>(), j["busy_ms"].get<double>(),
                j["cpu_share_pct"].get<double>());
  }
  std::printf("---------------------------------------------------------------------------\n");
  std::fflush(stdout);
  workers.clear();  // frees the frames still held in send windows
  drx.reset();
  src_arp.reset();  // their rings and mbufs, while EAL is up
  dst_arp.reset();
  qings.clear();    // their page pools, before EAL goes
  live_ptr.reset();  // its RCU state lives in DPDK memory
  crypto.reset();    // sessions and pools, and the device stopped before EAL closes it
  for (std::uint16_t port : {src_port, dst_port})
    if (rte_eth_dev_is_valid_port(port) && (port == src_port ? is_src : is_dst)) {
      rte_eth_dev_stop(port);
      rte_eth_dev_close(port);
    }
  rte_eal_cleanup();
  return rc;
}
