// sync_glue.cpp — the fleet sync in the gateway (sync_glue.h).
#include "sync_glue.h"

#include <arpa/inet.h>
#include <chrono>
#include <cstdio>
#include <rte_telemetry.h>

namespace hde::dp {

using ctl::json;

namespace {

fleet_sync *g_sync = nullptr;  // for the telemetry callback

std::uint64_t steady_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

std::string ip_port(std::uint32_t ip, std::uint16_t port) {
  in_addr a{htonl(ip)};
  char b[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &a, b, sizeof b);
  return std::string(b) + ":" + std::to_string(port);
}

// A row of `show migrations` (source side) as the registry's progress.
sync::progress to_progress(const json &row) {
  sync::progress p;
  const std::string st = row.value("state", std::string());
  if (st == "bulk") {
    p.state = sync::mig_state::bulk;
  } else if (st.rfind("dirty round ", 0) == 0) {
    p.state = sync::mig_state::dirty;
    p.round = static_cast<std::uint32_t>(std::strtoul(st.c_str() + 12, nullptr, 10));
  } else if (st == "sending") {  // a trace: its rounds are the dirty rounds
    const std::uint32_t r = row.value("rounds_encoded", 0u);
    p.state = r == 0 ? sync::mig_state::bulk : sync::mig_state::dirty;
    p.round = r;
  } else if (st == "switchover") {
    p.state = sync::mig_state::switchover;
  } else if (st == "done" || st == "sent") {
    p.state = sync::mig_state::done;
    p.round = row.value("rounds_encoded", row.value("dirty_rounds", 0u));
  } else if (st == "failed") {
    p.state = sync::mig_state::failed;
    p.reason = row.value("reason", std::string());
  } else {
    p.state = sync::mig_state::planned;  // listening, setup
  }
  p.pages = row.value("pages_sent", row.value("pages", std::uint64_t(0)));
  p.wire_bytes = row.value("bytes_sent", row.value("wire_bytes", std::uint64_t(0)));
  return p;
}

}  // namespace

bool fleet_sync::start(const options &o, gateway_view &v, std::string &err) {
  if (o.sync_listen.empty())
    return true;
  sync::sync_config c;
  if (!sync::read_key_file(o.sync_key_file, c.key, err))
    return false;
  ep_ = std::make_unique<sync::udp_endpoint>();
  if (!ep_->bind(o.sync_listen, err))
    return false;
  o_ = &o;
  v_ = &v;
  c.node = o.node_id;
  c.epoch = sync::wall_ms();
  c.self.sync_addr = o.sync_listen;
  c.self.ctl_addr = v.srv != nullptr ? v.srv->path() : "";
  c.self.data_addr = o.r == role::dest ? ip_port(o.dst_ip, o.udp_port) : ip_port(o.src_ip, o.udp_port);
  c.interval_ms = o.sync_interval_ms;
  c.seed = c.epoch;
  sync::udp_endpoint *ep = ep_.get();
  node_ = std::make_unique<sync::sync_node>(c, [ep](const std::string &a, std::span<const std::uint8_t> d) { ep->send(a, d); });
  for (std::size_t a = 0; a <= o.peers.size();) {
    std::size_t e = o.peers.find(',', a);
    if (e == std::string::npos)
      e = o.peers.size();
    if (e > a)
      node_->add_peer(o.peers.substr(a, e - a));
    a = e + 1;
  }
  start_ms_ = sync::steady_ms();
  return true;
}

void fleet_sync::publish_migrations() {
  const std::uint64_t now = sync::steady_ms();
  const json rows = migration_rows(*v_);
  const std::string dest = o_->r == role::loopback ? "loopback" : ip_port(o_->dst_ip, o_->udp_port);
  for (const json &row : rows) {
    if (row.value("side", std::string()) != "source" || row.value("state", std::string()) == "listening")
      continue;
    // This gateway's VM numbers are its own: the key names the gateway.
    std::string vm = "n";
    vm += std::to_string(o_->node_id);
    vm += "/vm";
    vm += std::to_string(row.value("vm", 0u));
    sync::progress p = to_progress(row);
    auto it = published_.find(vm);
    if (it == published_.end()) {
      const std::uint64_t wall = sync::wall_ms();
      node_->update([&](sync::fleet &f) { return f.start_migration(vm, dest, now, wall); });
      sync::progress first;
      first.start_ms = wall;
      it = published_.emplace(vm, first).first;
    }
    p.start_ms = it->second.start_ms;
    if (!(p == it->second)) {
      node_->update([&](sync::fleet &f) { return f.report(vm, p, now); });
      it->second = p;
    }
  }
  std::vector<std::string> lost;
  node_->update([&](sync::fleet &f) { return f.resolve_conflicts(now, &lost); });
  for (const std::string &vm : lost) {
    ++conflicts_lost_;
    std::fprintf(stderr, "hde-gateway: sync: %s was claimed at the same time by a gateway of lower node id; "
                 "this gateway's claim is marked failed in the fleet registry\n", vm.c_str());
  }
}

// What this gateway's workers measured since the last round goes into the
// fleet's selector statistics: grow-only counters with one contribution per
// gateway, so each segment is counted once however often the state is
// merged (lib/sync/fleet.h).
void fleet_sync::publish_selector() {
  if (v_->sel == nullptr)
    return;
  v_->sel->take_totals([&](const char *cls, const char *arm, std::uint64_t samples, std::uint64_t pages,
                           std::uint64_t wire, std::uint64_t cycles) {
    node_->update([&](sync::fleet &f) { return f.add_selector_sample(cls, arm, pages, wire, cycles, samples); });
  });
}

std::uint64_t fleet_sync::tick() {
  std::lock_guard lk(mu_);
  const std::uint64_t t0 = steady_ns();
  ep_->drain([&](const std::string &from, std::span<const std::uint8_t> d) { node_->receive(from, d, sync::steady_ms()); });
  const std::uint64_t now = sync::steady_ms();
  if (now >= next_publish_ms_) {
    next_publish_ms_ = now + o_->sync_interval_ms;
    publish_migrations();
    publish_selector();
  }
  const std::uint64_t wait = std::min<std::uint64_t>(node_->poll(sync::steady_ms()), next_publish_ms_ - now);
  busy_ns_ += steady_ns() - t0;
  return wait;
}

json fleet_sync::peers_json() {
  std::lock_guard lk(mu_);
  json rows = json::array();
  const std::uint64_t now = sync::steady_ms();
  const auto peers = node_->peers();
  for (const sync::member_row &m : node_->state().members()) {
    json r = {{"node", m.node},
              {"addr", m.info.sync_addr},
              {"epoch", m.st.epoch},
              {"state", m.node == o_->node_id ? std::string("self") : std::string(sync::to_string(m.st.kind))},
              {"incarnation", m.st.incarnation},
              {"heartbeat", m.hb.beat}};
    for (const sync::peer_row &p : peers)
      if (p.node == m.node) {
        r["addr"] = p.addr;
        r["link"] = p.configured ? "configured" : "learned";
        if (p.last_heard_ms != 0)
          r["last_heard_ms"] = now - p.last_heard_ms;  // ago
        r["bytes_in"] = p.bytes_in;
        r["bytes_out"] = p.bytes_out;
        r["blocked"] = p.blocked;
        if (p.epoch != m.st.epoch)
          r["epoch_heard"] = p.epoch;  // its datagrams say a newer epoch than the fleet has yet
      }
    rows.push_back(r);
  }
  for (const sync::peer_row &p : peers)
    if (p.node == 0)
      rows.push_back({{"node", 0}, {"addr", p.addr}, {"state", "unheard"}, {"link", p.configured ? "configured" : "learned"},
                      {"bytes_out", p.bytes_out}, {"blocked", p.blocked}});
  return rows;
}

json fleet_sync::fleet_json() {
  std::lock_guard lk(mu_);
  json migs = json::array();
  const std::uint64_t wall = sync::wall_ms();
  for (const sync::migration_row &m : node_->state().migrations()) {
    std::string claims;
    for (const sync::claim &c : m.claims)
    {
      if (!claims.empty())
        claims += ',';
      claims += std::to_string(c.source);
      claims += "->";
      claims += c.destination;
    }
    json r = {{"vm", m.vm},
              {"source", m.owner.source},
              {"destination", m.owner.destination},
              {"conflict", m.conflict()},
              {"claims", claims}};
    if (m.report) {
      r["state"] = sync::to_string(m.report->state);
      r["round"] = m.report->round;
      r["pages"] = m.report->pages;
      r["wire_bytes"] = m.report->wire_bytes;
      r["age_s"] = m.report->start_ms && wall > m.report->start_ms ? double(wall - m.report->start_ms) / 1e3 : 0.0;
      if (!m.report->reason.empty())
        r["reason"] = m.report->reason;
    }
    migs.push_back(r);
  }
  json sel = json::array();
  for (const sync::selector_row &s : node_->state().selector())
    sel.push_back({{"class", s.cls}, {"codec", s.arm}, {"samples", s.samples}, {"pages", s.pages},
                   {"bytes_per_page", s.pages ? double(s.wire_bytes) / double(s.pages) : 0.0},
                   {"cycles_per_page", s.pages ? double(s.cycles) / double(s.pages) : 0.0}});
  return {{"migrations", migs}, {"selector", sel}};
}

json fleet_sync::sync_json() {
  std::lock_guard lk(mu_);
  const sync::sync_stats &s = node_->stats();
  json drops = json::object();
  for (std::size_t d = 0; d < static_cast<std::size_t>(sync::drop::count); ++d)
    drops[sync::to_string(static_cast<sync::drop>(d))] = s.drops[d];
  const double up_ms = double(sync::steady_ms() - start_ms_);
  return {{"node", o_->node_id},
          {"epoch", node_->state().epoch()},
          {"listen", o_->sync_listen},
          {"interval_ms", o_->sync_interval_ms},
          {"peers", node_->peers().size()},
          {"members", node_->state().members().size()},
          {"rounds", s.rounds},
          {"datagrams_in", s.datagrams_in},
          {"datagrams_out", s.datagrams_out},
          {"bytes_in", s.bytes_in},
          {"bytes_out", s.bytes_out},
          {"digests_in", s.digests_in},
          {"digests_out", s.digests_out},
          {"deltas_in", s.deltas_in},
          {"deltas_new", s.deltas_new},
          {"deltas_duplicate", s.deltas_duplicate},
          {"deltas_out", s.deltas_out},
          {"snapshots_started", s.snapshots_started},
          {"snapshots_completed", s.snapshots_completed},
          {"snapshot_pieces_in", s.snapshot_pieces_in},
          {"snapshot_pieces_out", s.snapshot_pieces_out},
          {"log_entries", node_->log_entries()},
          {"log_bytes", node_->log_bytes()},
          {"log_collected", s.log_collected},
          {"log_evicted", s.log_evicted},
          {"oversize_deltas", s.oversize_deltas},
          {"send_errors", ep_->send_errors()},
          {"conflicts_lost", conflicts_lost_},
          {"busy_ms", double(busy_ns_) / 1e6},
          {"cpu_share_pct", up_ms > 0 ? 100.0 * double(busy_ns_) / 1e6 / up_ms : 0.0},
          {"drops", drops}};
}

void fleet_sync::register_commands(ctl::registry &reg) {
  using args = const std::vector<std::string> &;
  auto need_on = [this](ctl::reply &r) {
    if (!on())
      r.fail("the fleet sync is off: start hde-gateway with --sync-listen IP:PORT --node-id N --sync-key-file FILE");
    return on();
  };
  reg.add({"show peers", "show peers", "fleet sync: every gateway known: node, epoch, state (SWIM), last heard, bytes in/out",
           0, 0, true, [this, need_on](args, ctl::reply &r) {
             if (need_on(r))
               r.result = peers_json();
           }});
  reg.add({"show fleet", "show fleet", "fleet sync: every migration of the fleet (source, destination, state, round, "
           "pages, conflicts) and the selector's shared statistics", 0, 0, true, [this, need_on](args, ctl::reply &r) {
             if (need_on(r))
               r.result = fleet_json();
           }});
  reg.add({"show sync", "show sync", "fleet sync: rounds, digests, deltas, state transfers, log, drops by reason", 0, 0,
           true, [this, need_on](args, ctl::reply &r) {
             if (need_on(r))
               r.result = sync_json();
           }});
  auto peer_cmd = [this, need_on](const char *verb) {
    return [this, need_on, verb = std::string(verb)](args a, ctl::reply &r) {
      if (!sync::valid_addr(a[0])) {
        r.fail("bad address '" + a[0] + "' (IPv4 IP:PORT of a gateway's --sync-listen)");
        return;
      }
      if (!need_on(r))
        return;
      std::lock_guard lk(mu_);
      if (verb == "add") {
        node_->add_peer(a[0]);
        r.result = {{"added", a[0]}};
      } else if (verb == "remove") {
        r.result = {{"removed", a[0]}, {"was_a_peer", node_->remove_peer(a[0])}};
      } else {
        node_->block(a[0], verb == "block");
        r.result = {{verb == "block" ? "blocked" : "unblocked", a[0]}};
      }
    };
  };
  reg.add({"peers add", "peers add IP:PORT", "fleet sync: gossip with this gateway too", 1, 1, true, peer_cmd("add")});
  reg.add({"peers remove", "peers remove IP:PORT", "fleet sync: stop gossiping with it (and do not learn it again)", 1,
           1, true, peer_cmd("remove")});
  reg.add({"peers block", "peers block IP:PORT", "fleet sync, for tests: drop every datagram to and from it (a "
           "partition; counted as drops 'blocked')", 1, 1, true, peer_cmd("block")});
  reg.add({"peers unblock", "peers unblock IP:PORT", "fleet sync, for tests: end `peers block`", 1, 1, true,
           peer_cmd("unblock")});
}

void fleet_sync::register_telemetry() {
  if (!on())
    return;
  g_sync = this;
  rte_telemetry_register_cmd(
      "/hde/peers",
      [](const char *, const char *, rte_tel_data *d) {
        const json rows = g_sync->peers_json();
        rte_tel_data_start_dict(d);
        int budget = RTE_TEL_MAX_DICT_ENTRIES;
        for (std::size_t i = 0; i < rows.size(); ++i)
          for (const auto &[k, x] : rows[i].items()) {
            if (budget-- <= 0)
              return 0;
            const std::string key = std::to_string(i) + "_" + k;
            if (x.is_number_unsigned() || x.is_number_integer())
              rte_tel_data_add_dict_u64(d, key.c_str(), x.get<std::uint64_t>());
            else if (x.is_string())
              rte_tel_data_add_dict_string(d, key.c_str(), x.get<std::string>().c_str());
            else if (x.is_boolean())
              rte_tel_data_add_dict_int(d, key.c_str(), x.get<bool>() ? 1 : 0);
          }
        return 0;
      },
      "HDE fleet sync: per gateway node, addr, epoch, state, last heard (ms ago), bytes in/out");
}

}  // namespace hde::dp
