// control_glue.cpp — control commands and telemetry over the gateway's state.
#include "control_glue.h"
#include "frame_crypto.h"

#include <chrono>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_telemetry.h>

#include "codec/codec.h"
#include "page/hash.h"

namespace hde::dp {

using ctl::json;

namespace {

gateway_view *g_view = nullptr;  // for telemetry callbacks (C function pointers)

// A copy of a counters struct written by another lcore: word by word with
// relaxed atomic loads (all fields are 64-bit counters).
template <typename T> T snap(const T &src) {
  static_assert(sizeof(T) % 8 == 0);
  T out;
  auto *d = reinterpret_cast<std::uint64_t *>(&out);
  const auto *s = reinterpret_cast<const std::uint64_t *>(&src);
  for (std::size_t i = 0; i < sizeof(T) / 8; ++i)
    d[i] = __atomic_load_n(s + i, __ATOMIC_RELAXED);
  return out;
}

// "stats reset" keeps the counters as they were and reports differences.
struct totals {
  encoder_stats enc{};
  std::uint64_t frames_sent = 0, retransmits = 0, acks = 0;
  dest_stats dst{};
};
totals g_zero;

totals read_totals(const gateway_view &v) {
  totals t;
  for (worker *w : v.workers) {
    const encoder_stats e = snap(w->enc_stats());
    const worker_stats s = snap(w->stats());
    t.enc.pages_in += e.pages_in;
    for (std::size_t k = 0; k < kRungCount; ++k) {
      t.enc.rung_pages[k] += e.rung_pages[k];
      t.enc.rung_bytes[k] += e.rung_bytes[k];
    }
    for (std::size_t c = 0; c < kCodecCount; ++c) {
      t.enc.codec_pages[c] += e.codec_pages[c];
      t.enc.codec_bytes_in[c] += e.codec_bytes_in[c];
      t.enc.codec_bytes_out[c] += e.codec_bytes_out[c];
      t.enc.codec_ns[c] += e.codec_ns[c];
    }
    t.enc.frames += e.frames;
    t.enc.frame_bytes += e.frame_bytes;
    t.enc.batches += e.batches;
    t.enc.batch_raw_bytes += e.batch_raw_bytes;
    t.enc.batch_wire_bytes += e.batch_wire_bytes;
    t.frames_sent += s.frames_sent;
    t.retransmits += s.retransmits;
    t.acks += s.acks;
  }
  if (v.drx != nullptr)
    t.dst = snap(v.drx->stats());
  return t;
}

std::uint64_t minus(std::uint64_t a, std::uint64_t b) { return a >= b ? a - b : 0; }

// Rates: against the previous "show stats" (or telemetry read) at least
// 0.2 s ago, else against the start.
struct sample {
  std::uint64_t tsc = 0, pages = 0, bytes_out = 0, frames = 0;
};
sample g_last;

json stats_json(const gateway_view &v) {
  const totals now = read_totals(v);
  const totals &z = g_zero;
  json j;
  const std::uint64_t tsc = rte_rdtsc();
  const double hz = static_cast<double>(rte_get_tsc_hz());
  if (g_last.tsc == 0)
    g_last.tsc = v.start_tsc;
  const double dt = double(tsc - g_last.tsc) / hz;
  const sample cur{tsc, now.enc.pages_in, now.enc.frame_bytes, now.frames_sent + now.dst.frames};
  if (dt > 0)
    j["rates"] = {{"interval_s", dt},
                  {"pages_per_s", double(minus(cur.pages, g_last.pages)) / dt},
                  {"input_mb_per_s", double(minus(cur.pages, g_last.pages)) * kPageSize / dt / 1e6},
                  {"wire_mbit_per_s", double(minus(cur.bytes_out, g_last.bytes_out)) * 8 / dt / 1e6},
                  {"frames_per_s", double(minus(cur.frames, g_last.frames)) / dt}};
  if (dt >= 0.2)
    g_last = cur;
  j["role"] = role_name(v.opt->r);
  if (!v.workers.empty()) {
    json rungs = json::object();
    for (std::size_t k = 0; k < kRungCount; ++k)
      rungs[rung_name(static_cast<rung>(k))] = {
          {"pages", minus(now.enc.rung_pages[k], z.enc.rung_pages[k])},
          {"wire_bytes", minus(now.enc.rung_bytes[k], z.enc.rung_bytes[k])}};
    const std::uint64_t pages = minus(now.enc.pages_in, z.enc.pages_in);
    const std::uint64_t wire = minus(now.enc.frame_bytes, z.enc.frame_bytes);
    j["source"] = {{"pages", pages},
                   {"bytes_in", pages * kPageSize},
                   {"bytes_out", wire},
                   {"ratio", pages ? double(wire) / double(pages * kPageSize) : 0.0},
                   {"frames", minus(now.frames_sent, z.frames_sent)},
                   {"retransmits", minus(now.retransmits, z.retransmits)},
                   {"acks", minus(now.acks, z.acks)},
                   {"rungs", rungs}};
  }
  if (!v.workers.empty()) {
    // The transport, per stream (gauges now, counters since the start):
    // what the sender measures of the path and how it drives it.
    json rows = json::array();
    for (worker *w : v.workers) {
      const worker_stats s = snap(w->stats());
      const double tx = double(s.frames_sent + s.retransmits);
      rows.push_back({{"stream", w->id()},
                      {"state", cc_state_name(static_cast<cc_state>(s.cc_state))},
                      {"delivery_mbps", s.delivery_bps / 1e6},
                      {"bottleneck_mbps", s.btl_bw_bps / 1e6},
                      {"pacing_mbps", s.pacing_bps / 1e6},
                      {"min_rtt_us", s.min_rtt_ns / 1e3},
                      {"srtt_us", s.srtt_ns / 1e3},
                      {"inflight_cap_bytes", s.cwnd_bytes},
                      {"inflight_bytes", s.inflight_bytes},
                      {"frames", s.frames_sent},
                      {"retransmits", s.retransmits},
                      {"loss_rate", tx > 0 ? double(s.lost_frames + s.fec_rebuilt) / tx : 0.0},
                      {"spurious", s.spurious},
                      {"tail_probes", s.tlp_probes},
                      {"timeouts", s.rto_events},
                      {"heavy_loss_rounds", s.loss_rounds},
                      {"fec", s.fec_k != 0 ? std::to_string(s.fec_k) + "," + std::to_string(s.fec_m) : "off"},
                      {"fec_parity_frames", s.fec_parity_frames},
                      {"fec_rebuilt", s.fec_rebuilt}});
    }
    j["transport"] = rows;
  }
  if (v.drx != nullptr) {
    const dest_stats &d = now.dst;
    json drops = json::object();
    for (std::size_t i = 0; i < kRxDropCount; ++i)
      drops[rx_drop_name[i]] = minus(d.drops[i], z.dst.drops[i]);
    for (std::size_t i = 1; i < kErrorCount; ++i)
      if (d.header_errors[i] != 0)
        drops[std::string(to_string(static_cast<error>(i)))] = minus(d.header_errors[i], z.dst.header_errors[i]);
    drops["duplicate"] = minus(d.duplicates, z.dst.duplicates);
    drops["beyond_window"] = minus(d.too_far, z.dst.too_far);
    drops["decode_error"] = minus(d.decode_errors, z.dst.decode_errors);
    drops["stale_epoch"] = minus(d.stale_epoch, z.dst.stale_epoch);
    drops["bad_stream"] = minus(d.bad_stream, z.dst.bad_stream);
    drops["decoder_ring_full"] = minus(d.dispatch_full, z.dst.dispatch_full);
    drops["reply_ring_full"] = minus(d.reply_full, z.dst.reply_full);
    drops["low_mbufs"] = minus(d.low_mbufs, z.dst.low_mbufs);
    drops["after_seal"] = minus(d.after_seal, z.dst.after_seal);
    j["dest"] = {{"frames", minus(d.frames, z.dst.frames)},
                 {"decoded", minus(d.decoded, z.dst.decoded)},
                 {"acks", minus(d.acks_sent, z.dst.acks_sent)},
                 // Pages that could not be rebuilt, asked for again and rebuilt since.
                 {"pages_lost", minus(d.pages_lost, z.dst.pages_lost)},
                 {"pages_repaired", minus(d.pages_repaired, z.dst.pages_repaired)},
                 {"repair_frames", minus(d.repair_frames, z.dst.repair_frames)},
                 {"fec_parity", minus(d.fec_parity, z.dst.fec_parity)},
                 {"fec_rebuilt", minus(d.fec_rebuilt, z.dst.fec_rebuilt)},
                 {"fec_unrecoverable", minus(d.fec_unrecoverable, z.dst.fec_unrecoverable)},
                 {"complete", v.drx->complete()},
                 {"drops", drops}};
  }
  // Addressing: ARP on each side's port (counters since the start).
  json arp_j = json::object();
  for (const auto &[side, a] : {std::pair<const char *, arp_port *>{"source", v.src_arp}, {"dest", v.dst_arp}}) {
    if (a == nullptr)
      continue;
    const arp::stats s = snap(a->stats());
    arp::mac m;
    const bool known = a->next_hop().load(m);
    arp_j[side] = {{"target", a->target() != 0 ? arp::ip_string(a->target()) : ""},
                   {"peer", a->peer_ip() != 0 ? arp::ip_string(a->peer_ip()) : ""},
                   {"peer_mac", known ? arp::to_string(m) : ""},
                   {"static", a->is_static()},
                   {"resolved", known},
                   {"resolve_us", s.resolve_ns / 1000},
                   {"requests_sent", s.requests_sent},
                   {"requests_received", s.requests_received},
                   {"replies_sent", s.replies_sent},
                   {"replies_received", s.replies_received},
                   {"resolutions", s.resolved},
                   {"mac_changes", s.mac_changes},
                   {"ignored", s.ignored},
                   {"malformed", s.malformed},
                   {"tx_failed", a->tx_failed()}};
  }
  if (!arp_j.empty())
    j["arp"] = arp_j;
  return j;
}

json lcores_json(const gateway_view &v) {
  json rows = json::array();
  const double hz = static_cast<double>(rte_get_tsc_hz());
  const double up = static_cast<double>(rte_rdtsc() - v.start_tsc);
  for (const lcore_plan &p : *v.plans) {
    const lcore_stats s = snap(p.stats);
    std::string tasks;
    std::uint64_t busy = 0, pages = 0, frames = 0, rtx = 0;
    for (const task *t : p.tasks) {
      if (!tasks.empty())
        tasks.append(1, ',');
      tasks.append(t->name());
      busy += __atomic_load_n(&t->busy_tsc, __ATOMIC_RELAXED);
    }
    for (worker *w : v.workers)
      for (const task *t : p.tasks)
        if (t == w) {
          pages += snap(w->enc_stats()).pages_in;
          const worker_stats ws = snap(w->stats());
          frames += ws.frames_sent;
          rtx += ws.retransmits;
        }
    rows.push_back({{"lcore", p.lcore_id},
                    {"role", tasks},
                    {"load_pct", up > 0 ? 100.0 * double(busy) / up : 0.0},
                    {"idle_pct", s.loops ? 100.0 * double(s.idle_loops) / double(s.loops) : 0.0},
                    {"loops", s.loops},
                    {"sleeps", s.sleeps},
                    {"busy_s", double(busy) / hz},
                    {"pages", pages},
                    {"frames", frames},
                    {"retransmits", rtx}});
  }
  return rows;
}

json ports_json(const gateway_view &v) {
  json rows = json::array();
  auto add = [&](std::uint16_t port, const char *label) {
    rte_eth_stats s{};
    rte_eth_stats_get(port, &s);
    rte_eth_dev_info info{};
    rte_eth_dev_info_get(port, &info);
    rows.push_back({{"port", port}, {"side", label}, {"driver", info.driver_name ? info.driver_name : "?"},
                    {"rx_frames", s.ipackets}, {"rx_bytes", s.ibytes}, {"rx_missed", s.imissed},
                    {"tx_frames", s.opackets}, {"tx_bytes", s.obytes}, {"tx_errors", s.oerrors}});
  };
  if (!v.workers.empty())
    add(v.src_port, "source");
  if (v.drx != nullptr && (v.workers.empty() || v.dst_port != v.src_port))
    add(v.dst_port, "dest");
  return rows;
}

json codecs_json(const gateway_view &v) {
  const totals t = read_totals(v);
  json rows = json::array();
  for (std::size_t c = 0; c < kCodecCount; ++c) {
    if (t.enc.codec_bytes_in[c] == 0)
      continue;
    rows.push_back({{"codec", std::string(codec_name(static_cast<codec_id>(c)))},
                    {"pages", t.enc.codec_pages[c]},
                    {"bytes_in", t.enc.codec_bytes_in[c]},
                    {"bytes_out", t.enc.codec_bytes_out[c]},
                    {"ratio", double(t.enc.codec_bytes_out[c]) / double(t.enc.codec_bytes_in[c])},
                    // Compression time per page of input (batches: their pages' share).
                    {"ns_per_page", double(t.enc.codec_ns[c]) /
                                        (double(t.enc.codec_bytes_in[c]) / double(kPageSize))}});
  }
  return rows;
}

json baselines_json(const gateway_view &v) {
  json rows = json::array();
  for (worker *w : v.workers) {
    baseline_stats b;
    w->read_baselines([&b](const baseline_cache &c) { b = snap(c.stats()); });
    const std::uint64_t lookups = b.key_hits + b.key_misses;
    rows.push_back({{"stream", w->id()},
                    {"slots", b.slots},
                    {"entries", b.entries},
                    {"bytes", b.entries * kPageSize},
                    {"hit_rate", lookups ? double(b.key_hits) / double(lookups) : 0.0},
                    {"dedup_hits", b.content_hits},
                    {"evictions", b.evictions},
                    // RCU: slots waiting for readers to pass, reclaimed, and
                    // fills that found no slot back in time.
                    {"retired", b.retired},
                    {"reclaimed", b.reclaimed},
                    {"fill_deferred", b.fill_deferred}});
  }
  return rows;
}

// A QEMU migration (--qemu-listen / --qemu-connect).
json qemu_rows(const gateway_view &v) {
  json rows = json::array();
  const auto now_ns = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                    std::chrono::steady_clock::now().time_since_epoch())
                                                    .count());
  for (qemu_ingress *qi : v.qings) {
    const qemu_migration_stats &q = qi->stats();
    const auto st = static_cast<qemu_state>(q.state.load());
    std::uint64_t bytes = 0;
    for (worker *w : v.workers)
      bytes += snap(w->stats()).bytes_sent;
    const std::uint64_t t0 = q.start_ns.load(), t1 = q.end_ns.load() ? q.end_ns.load() : now_ns;
    const double secs = t0 != 0 && t1 > t0 ? double(t1 - t0) / 1e9 : 0;
    std::string state = to_string(st);
    if (st == qemu_state::iterating)
      state = q.round.load() == 0 ? "bulk" : "dirty round " + std::to_string(q.round.load());
    json row = {{"vm", qi->vm()},
                {"side", "source"},
                {"qemu", qi->address()},
                {"state", state},
                {"dirty_rounds", q.round.load()},
                {"ram_sections", q.barriers.load()},
                {"multifd_channels", q.channels.load()},
                {"pages", q.pages.load()},
                {"zero_pages", q.zero_pages.load()},
                {"opaque_bytes", q.opaque_bytes.load()},
                {"bytes_from_qemu", q.bytes_in.load()},
                {"wire_bytes", bytes},
                {"seconds", secs},
                {"wire_mbps", secs > 0 ? double(bytes) * 8 / secs / 1e6 : 0.0},
                {"backpressure_s", double(q.stall_us.load()) / 1e6}};
    if (q.switchover_ns.load() != 0 && q.end_ns.load() > q.switchover_ns.load())
      row["switchover_to_end_ms"] = double(q.end_ns.load() - q.switchover_ns.load()) / 1e6;
    if (st == qemu_state::failed)
      row["reason"] = qi->reason();
    rows.push_back(row);
  }
  if (v.drx != nullptr && v.drx->egress() != nullptr) {
    const qemu_egress &e = *v.drx->egress();
    static const char *names[] = {"waiting", "streaming", "done", "failed"};
    for (std::uint32_t vm = 0; vm < std::max<std::uint32_t>(e.vms(), 1); ++vm) {
      const qemu_egress_stats &q = e.stats(vm);
      json row = {{"vm", vm},
                  {"side", "dest"},
                  {"state", names[std::clamp(q.state.load(), 0, 3)]},
                  {"ram_sections", q.barriers.load()},
                  {"multifd_channels", q.channels.load()},
                  {"pages", q.pages.load()},
                  {"zero_pages", q.zero_pages.load()},
                  {"opaque_bytes", q.opaque_bytes.load()},
                  {"bytes_to_qemu", q.bytes_out.load()},
                  {"barrier_wait_s", double(q.barrier_wait_us.load()) / 1e6}};
      if (q.state.load() == 3)
        row["reason"] = e.reason();
      rows.push_back(row);
    }
  }
  return rows;
}

json migrations_json(const gateway_view &v) {
  if (!v.qings.empty() || (v.drx != nullptr && v.drx->egress() != nullptr))
    return qemu_rows(v);
  json rows = json::array();
  if (!v.workers.empty()) {
    std::uint32_t done = ~0u;
    std::uint64_t pages = 0, in_flight = 0, bytes = 0, acked = 0;
    for (worker *w : v.workers) {
      done = std::min(done, w->rounds_done());
      const encoder_stats e = snap(w->enc_stats());
      pages += e.pages_in;
      bytes += e.frame_bytes;
      in_flight += w->in_flight();
      acked += snap(w->stats()).frames_acked;
    }
    const double up = double(rte_rdtsc() - v.start_tsc) / double(rte_get_tsc_hz());
    json row = {{"vm", 0},
                {"side", "source"},
                {"rounds", v.rounds},
                {"rounds_encoded", done},
                {"pages_sent", pages},
                {"bytes_sent", bytes},
                {"frames_acked", acked},
                {"frames_in_flight", in_flight},
                {"state", done == v.rounds ? "sent" : "sending"}};
    // ETA when the pages still to send are known (generated or preloaded trace).
    if (v.total_pages != 0 && pages > 0 && up > 0) {
      const double rate = double(pages) / up;
      row["eta_s"] = double(minus(v.total_pages, pages)) / rate;
    }
    rows.push_back(row);
  }
  if (v.drx != nullptr)
    rows.push_back({{"vm", 0}, {"side", "dest"}, {"state", v.drx->complete() ? "complete" : "receiving"}});
  return rows;
}

}  // namespace

json migration_rows(const gateway_view &v) { return migrations_json(v); }

void register_commands(ctl::registry &reg, gateway_view &v) {
  using args = const std::vector<std::string> &;
  reg.add({"show stats", "show stats", "totals: pages per rung, bytes in/out, ratio, frames, retransmits, drops",
           0, 0, true, [&v](args, ctl::reply &r) { r.result = stats_json(v); }});
  reg.add({"show lcores", "show lcores", "per lcore: tasks, loops, idle share, busy time; per worker stream",
           0, 0, true, [&v](args, ctl::reply &r) { r.result = lcores_json(v); }});
  reg.add({"show ports", "show ports", "DPDK port counters", 0, 0, true,
           [&v](args, ctl::reply &r) { r.result = ports_json(v); }});
  reg.add({"show codecs", "show codecs", "per codec: pages, bytes in/out, ratio", 0, 0, true,
           [&v](args, ctl::reply &r) { r.result = codecs_json(v); }});
  reg.add({"show baselines", "show baselines", "per stream: slots, entries, bytes, hit rate, evictions", 0, 0,
           true, [&v](args, ctl::reply &r) { r.result = baselines_json(v); }});
  reg.add({"show migrations", "show migrations", "per VM: rounds, pages sent, frames in flight, state", 0, 0,
           true, [&v](args, ctl::reply &r) { r.result = migrations_json(v); }});
  reg.add({"show config", "show config", "the live configuration", 0, 0, true, [&v](args, ctl::reply &r) {
             if (v.live == nullptr) {
               r.fail("no live configuration on this role");
               return;
             }
             const live_config c = v.live->snapshot();
             r.result = {{"version", c.version},
                         {"mode", mode_name(c.enc.m)},
                         {"batch", c.enc.batch},
                         {"codec", to_string(c.enc.codec())},
                         {"link_rate_bps", c.link_rate_bps},
                         {"cache_mb", c.cache_bytes >> 20},
                         {"idle_sleep_us", g_idle_sleep_us.load()}};
           }});
  auto need_source = [&v](ctl::reply &r) {
    if (v.live == nullptr)
      r.fail("only a source gateway encodes: this one is a destination");
    return v.live != nullptr;
  };
  auto need_selector = [&v](ctl::reply &r) {
    if (v.sel == nullptr)
      r.fail("no selector here: the learning selector runs on the source side");
    return v.sel != nullptr;
  };
  reg.add({"show selector", "show selector",
           "hybrid mode's learning selector: link, decision and exploration per class, estimates per arm", 0, 0,
           true, [&v, need_selector](args, ctl::reply &r) {
             if (!need_selector(r))
               return;
             r.result = v.sel->show();
             r.result["mode"] = mode_name(v.live->snapshot().enc.m);
           }});
  reg.add({"selector export", "selector export PATH",
           "write the selector's learned estimates as JSON (another gateway can import them)", 1, 1, true,
           [&v, need_selector](args a, ctl::reply &r) {
             if (!need_selector(r))
               return;
             const ctl::json doc = v.sel->export_estimates();
             std::FILE *f = std::fopen(a[0].c_str(), "w");
             if (f == nullptr) {
               r.fail("cannot write '" + a[0] + "': " + std::strerror(errno));
               return;
             }
             const std::string text = doc.dump(1) + "\n";
             const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
             if (std::fclose(f) != 0 || !ok) {
               r.fail("cannot write '" + a[0] + "': " + std::strerror(errno));
               return;
             }
             r.result = {{"path", a[0]}, {"estimates", doc["estimates"].size()}};
           }});
  reg.add({"selector import", "selector import PATH",
           "merge estimates exported by another gateway or an earlier run (arms not yet tried need no exploration)",
           1, 1, true, [&v, need_selector](args a, ctl::reply &r) {
             if (!need_selector(r))
               return;
             std::FILE *f = std::fopen(a[0].c_str(), "r");
             if (f == nullptr) {
               r.fail("cannot read '" + a[0] + "': " + std::strerror(errno));
               return;
             }
             std::string text;
             char buf[4096];
             std::size_t n;
             while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && text.size() < (1u << 20))
               text.append(buf, n);
             std::fclose(f);
             const ctl::json doc = ctl::json::parse(text, nullptr, false);
             std::string err;
             if (doc.is_discarded() || !v.sel->import_estimates(doc, err)) {
               r.fail("'" + a[0] + "': " + (doc.is_discarded() ? std::string("not JSON") : err));
               return;
             }
             r.result = {{"path", a[0]}, {"estimates", doc["estimates"].size()}};
           }});
  reg.add({"show crypto", "show crypto",
           "frame encryption: device, key ids (newest, old in its grace period), the peer's, counters", 0, 0, true,
           [&v](args, ctl::reply &r) {
             if (v.crypto == nullptr) {
               r.result = {{"enabled", false},
                           {"reason", v.opt->no_encrypt ? "--no-encrypt" : "no --key-file"}};
               if (v.drx != nullptr)
                 r.result["sealed_no_key"] = v.drx->stats().sealed_no_key;
               return;
             }
             const frame_crypto::status st = v.crypto->get_status();
             const crypto_lane_stats &t = st.total;
             r.result = {{"enabled", true},
                         {"cipher", "AES-256-GCM"},
                         {"device", st.device},
                         {"driver", st.driver},
                         {"key_id", st.newest_id},
                         {"old_key_id", st.old_id},
                         {"peer_accepts", st.peer_accepts},
                         {"sending_with", st.sending_newest ? st.newest_id : st.old_id},
                         {"grace_left_s", st.grace_left_s},
                         {"rotations", st.rotations},
                         {"sealed", t.sealed},
                         {"opened", t.opened},
                         {"bytes", t.bytes},
                         {"auth_fail", t.auth_fail},
                         {"unknown_key", t.unknown_key},
                         {"unsealed", t.unsealed},
                         {"bad_seal", t.bad_seal},
                         {"seal_fail", t.seal_fail}};
             if (v.drx != nullptr) {
               const dest_stats d = v.drx->stats();
               r.result["replayed"] = d.replayed;
               r.result["notices_sent"] = d.notices;
             }
             if (v.acks != nullptr) {
               r.result["notices_received"] = v.acks->stats().notices;
               r.result["peer_notice"] = v.acks->peer_notice();
             }
           }});
  reg.add({"key rotate", "key rotate PATH",
           "switch to the key in PATH: both keys are accepted for --key-grace-s; frames go under the new one "
           "once the peer holds it too (rotate both gateways)",
           1, 1, true, [&v](args a, ctl::reply &r) {
             if (v.crypto == nullptr) {
               r.fail("frames are not encrypted here (no --key-file): there is no key to rotate");
               return;
             }
             std::string err;
             if (!v.crypto->rotate(a[0], err)) {
               r.fail(err);
               return;
             }
             const frame_crypto::status st = v.crypto->get_status();
             r.result = {{"key_id", st.newest_id}, {"old_key_id", st.old_id}, {"grace_s", v.opt->key_grace_s}};
           }});
  reg.add({"set mode", "set mode datacenter|internet|hybrid", "switch mode live (codec and batching follow)", 1, 1,
           true, [&v, need_source](args a, ctl::reply &r) {
             mode m;
             if (!parse_mode(a[0], m)) {
               r.fail("unknown mode '" + a[0] + "' (datacenter, internet, hybrid)");
               return;
             }
             if (!need_source(r))
               return;
             // The rule of the command line (options.cpp) holds live too: guest
             // memory does not leave in clear for a network nobody controls
             // unless the operator said so at start.
             if (m != mode::datacenter && v.crypto == nullptr && !v.opt->no_encrypt) {
               r.fail(std::string(a[0]) + " mode sends guest memory across networks you do not control, and "
                      "this gateway seals no frames: start it with --key-file FILE (both gateways), or with "
                      "--no-encrypt to allow frames in clear");
               return;
             }
             v.live->update([&](live_config &c) { c.enc = encoder_config::for_mode(m); });
             r.result = {{"mode", a[0]}, {"version", v.live->snapshot().version}};
           }});
  reg.add({"set codec", "set codec lz4[:N]|zstd[:N]|igzip[:N]|raw", "force the codec of the current mode (not hybrid: its selector picks)", 1, 1,
           true, [&v, need_source](args a, ctl::reply &r) {
             auto c = parse_codec(a[0]);
             if (!c) {
               r.fail("unknown codec '" + a[0] + "' (raw, lz4[:accel], zstd[:1-19], igzip[:0-3])");
               return;
             }
             if (!need_source(r))
               return;
             if (v.live->snapshot().enc.m == mode::hybrid) {
               r.fail("hybrid mode: the selector picks the codec for every batch; 'set mode datacenter' or "
                      "'set mode internet' first to force one");
               return;
             }
             v.live->update([&](live_config &k) { k.enc.codec() = *c; });
             r.result = {{"codec", to_string(*c)}, {"version", v.live->snapshot().version}};
           }});
  reg.add({"set link-rate", "set link-rate RATE (bits/s: 0 = unlimited, 100m, 1g, 10g)",
           "pace all streams together to RATE", 1, 1, true, [&v, need_source](args a, ctl::reply &r) {
             std::uint64_t bps;
             if (!parse_rate(a[0], bps)) {
               r.fail("bad rate '" + a[0] + "' (e.g. 0, 500m, 10g)");
               return;
             }
             if (!need_source(r))
               return;
             v.live->update([&](live_config &c) { c.link_rate_bps = bps; });
             r.result = {{"link_rate_bps", bps}};
           }});
  reg.add({"set cache-mb", "set cache-mb MIB (baseline cache per stream, 0 = none)",
           "resize the baseline caches: each worker stalls while it allocates the new one, the "
           "destination resizes its mirror in step (a new INIT on each stream)",
           1, 1, false, [&v, need_source](args a, ctl::reply &r) {
             char *end = nullptr;
             const unsigned long mb = std::strtoul(a[0].c_str(), &end, 10);
             if (end == a[0].c_str() || *end != '\0' || mb > (1ul << 20)) {
               r.fail("bad size '" + a[0] + "' (MiB, 0..1048576)");
               return;
             }
             if (!need_source(r))
               return;
             v.live->update([&](live_config &c) { c.cache_bytes = static_cast<std::size_t>(mb) << 20; });
             r.result = {{"cache_mb", mb}};
           }});
  reg.add({"set idle-sleep", "set idle-sleep MICROSECONDS (0 = busy polling)",
           "back-off sleep of idle lcores", 1, 1, true, [](args a, ctl::reply &r) {
             char *end = nullptr;
             const unsigned long us = std::strtoul(a[0].c_str(), &end, 10);
             if (end == a[0].c_str() || *end != '\0' || us > 100000) {
               r.fail("bad idle sleep '" + a[0] + "' (0..100000 microseconds)");
               return;
             }
             g_idle_sleep_us.store(static_cast<std::uint32_t>(us));
             r.result = {{"idle_sleep_us", us}};
           }});
  reg.add({"baselines lookup", "baselines lookup VM GFN",
           "the baseline one page has now: stream, slot, generation, content hash (read under RCU "
           "while the worker runs; the bytes are hashed again to show they are whole)",
           2, 2, true, [&v, need_source](args a, ctl::reply &r) {
             char *end = nullptr;
             const unsigned long long vm = std::strtoull(a[0].c_str(), &end, 0);
             if (end == a[0].c_str() || *end != '\0' || vm >= 0xFFFFFFFFull) {
               r.fail("bad VM id '" + a[0] + "'");
               return;
             }
             const unsigned long long gfn = std::strtoull(a[1].c_str(), &end, 0);
             if (end == a[1].c_str() || *end != '\0' || a[1][0] == '-') {
               r.fail("bad guest frame number '" + a[1] + "'");
               return;
             }
             if (!need_source(r) || v.workers.empty())
               return;
             const page_key key{static_cast<std::uint32_t>(vm), gfn};
             const worker *w = v.workers[worker_of(key, v.workers.size())];
             r.result = {{"vm", vm}, {"gfn", gfn}, {"stream", w->id()}, {"found", false}};
             w->read_baselines([&](const baseline_cache &c) {
               auto b = c.lookup(key);
               if (!b)
                 return;
               char hex[33];
               std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(b->hash.hi),
                             static_cast<unsigned long long>(b->hash.lo));
               r.result["found"] = true;
               r.result["slot"] = b->ref.slot;
               r.result["generation"] = b->ref.gen;
               r.result["hash"] = hex;
               r.result["verified"] = hash_page(b->data) == b->hash;
             });
           }});
  reg.add({"baselines flush", "baselines flush [VM]", "forget baselines (of one VM): later pages go as PAGE", 0, 1,
           true, [&v, need_source](args a, ctl::reply &r) {
             std::uint32_t vm = ~0u;
             if (!a.empty()) {
               char *end = nullptr;
               unsigned long x = std::strtoul(a[0].c_str(), &end, 10);
               if (end == a[0].c_str() || *end != '\0' || x >= 0xFFFFFFFFul) {
                 r.fail("bad VM id '" + a[0] + "'");
                 return;
               }
               vm = static_cast<std::uint32_t>(x);
             }
             if (!need_source(r))
               return;
             v.live->update([&](live_config &c) {
               ++c.flush_gen;
               c.flush_vm = vm;
             });
             r.result = {{"flushed", a.empty() ? "all" : a[0]}};
           }});
  reg.add({"stats reset", "stats reset", "count from zero again (show stats, telemetry)", 0, 0, true,
           [&v](args, ctl::reply &r) {
             g_zero = read_totals(v);
             r.result = {{"reset", true}};
           }});
  reg.add({"shutdown", "shutdown", "drain in-flight frames and exit, like SIGTERM", 0, 0, true,
           [&v](args, ctl::reply &r) {
             v.stop->store(true);
             r.result = {{"shutdown", "draining"}};
           }});
  reg.add({"show control", "show control",
           "control socket: its mode, limits and counters (clients, refusals, malformed, oversized, idle drops)", 0, 0,
           true, [&v](args, ctl::reply &r) {
             const auto &s = v.srv->stats();
             const auto &c = v.srv->config();
             const auto &g = v.reg->stats();
             const bool grouped = c.group != static_cast<gid_t>(-1);
             r.result = {{"socket", c.path},
                         {"socket_mode", grouped ? "0660" : "0600"},
                         {"socket_group", grouped ? json(v.opt->ctl_group) : json(nullptr)},
                         {"max_clients", c.max_clients},
                         {"max_request_bytes", c.max_request},
                         {"idle_timeout_ms", c.idle_timeout_ms},
                         {"clients_connected", s.connected.load()},
                         {"clients_accepted", s.accepted.load()},
                         {"clients_rejected_busy", s.rejected_busy.load()},
                         {"clients_refused_credentials", s.refused_peer.load()},
                         {"oversized_requests", s.oversized.load()},
                         {"idle_dropped", s.idle_dropped.load()},
                         {"slow_dropped", s.slow_dropped.load()},
                         {"write_failed", s.write_failed.load()},
                         {"requests", g.requests.load()},
                         {"malformed", g.bad_json.load()},
                         {"unknown_command", g.unknown.load()},
                         {"bad_arguments", g.bad_args.load()},
                         {"failed", g.failed.load()}};
           }});
}

namespace {

// Flatten JSON into a telemetry dict: nested keys joined with '_' (telemetry
// names take only letters, digits and '_').
void flatten(rte_tel_data *d, const json &j, const std::string &prefix, int &budget) {
  for (const auto &[k, x] : j.items()) {
    if (budget <= 0)
      return;
    std::string key = prefix;
    if (!key.empty())
      key.append(1, '_');
    key.append(k);
    for (char &c : key)
      if (!std::isalnum(static_cast<unsigned char>(c)))
        c = '_';
    if (x.is_object()) {
      flatten(d, x, key, budget);
    } else if (x.is_number_unsigned() || x.is_number_integer()) {
      rte_tel_data_add_dict_u64(d, key.c_str(), x.get<std::uint64_t>());
      --budget;
    } else if (x.is_string()) {
      rte_tel_data_add_dict_string(d, key.c_str(), x.get<std::string>().c_str());
      --budget;
    } else if (x.is_boolean()) {
      rte_tel_data_add_dict_int(d, key.c_str(), x.get<bool>() ? 1 : 0);
      --budget;
    }
  }
}

int tel_reply(rte_tel_data *d, const json &j) {
  rte_tel_data_start_dict(d);
  int budget = RTE_TEL_MAX_DICT_ENTRIES;
  if (j.is_array()) {
    for (std::size_t i = 0; i < j.size(); ++i)
      flatten(d, j[i], std::to_string(i), budget);
  } else {
    flatten(d, j, "", budget);
  }
  return 0;
}

}  // namespace

void register_telemetry(gateway_view &v) {
  g_view = &v;
  rte_telemetry_register_cmd("/hde/stats",
                             [](const char *, const char *, rte_tel_data *d) { return tel_reply(d, stats_json(*g_view)); },
                             "HDE totals: pages per rung, bytes, ratio, frames, retransmits, drops");
  rte_telemetry_register_cmd("/hde/lcores",
                             [](const char *, const char *, rte_tel_data *d) { return tel_reply(d, lcores_json(*g_view)); },
                             "HDE per lcore and per stream counters");
  rte_telemetry_register_cmd("/hde/baselines",
                             [](const char *, const char *, rte_tel_data *d) { return tel_reply(d, baselines_json(*g_view)); },
                             "HDE baseline caches per stream");
  rte_telemetry_register_cmd("/hde/codecs",
                             [](const char *, const char *, rte_tel_data *d) { return tel_reply(d, codecs_json(*g_view)); },
                             "HDE per codec pages and bytes");
}

}  // namespace hde::dp
