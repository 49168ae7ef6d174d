// sync.cpp — the sync protocol (sync.h): datagram framing and
// authentication, records, the delta log, digests, state transfer, rounds.
#include "sync.h"

#include <algorithm>
#include <cstring>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace hde::sync {

using crdt::reader;
using crdt::writer;

const char *to_string(drop d) {
  switch (d) {
  case drop::auth: return "auth";
  case drop::replay: return "replay";
  case drop::truncated: return "truncated";
  case drop::malformed: return "malformed";
  case drop::oversize: return "oversize";
  case drop::blocked: return "blocked";
  case drop::count: break;
  }
  return "?";
}

namespace {

constexpr std::uint8_t kMagic0 = 'H', kMagic1 = 'S', kVersion = 1;
constexpr std::size_t kPayloadBudget = kMaxDatagram - kHeaderBytes - kTagBytes;
constexpr std::size_t kRecordOverhead = 3;  // type, length (2-byte varint)
constexpr std::size_t kFragmentBudget = kPayloadBudget - kRecordOverhead - 16;  // SNAP id, index, count, kind
constexpr std::size_t kCoalesceBytes = 512;  // a log entry grows by joins up to this size
constexpr std::uint32_t kMaxPieces = 65535;
constexpr std::size_t kMaxExtraRanges = 1024;

enum record_type : std::uint8_t { rec_digest = 1, rec_delta = 2, rec_snap = 3, rec_snapack = 4 };
enum snap_kind : std::uint8_t { piece_state = 0, piece_vv = 1, piece_ctx = 2 };

void put_be(std::uint8_t *p, std::uint64_t v, int n) {
  for (int i = n - 1; i >= 0; --i, v >>= 8)
    p[i] = static_cast<std::uint8_t>(v);
}
std::uint64_t get_be(const std::uint8_t *p, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i)
    v = v << 8 | p[i];
  return v;
}

void hmac(std::span<const std::uint8_t> key, std::span<const std::uint8_t> data, std::uint8_t out[kTagBytes]) {
  unsigned len = kTagBytes;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), data.data(), data.size(), out, &len);
}

std::vector<std::uint8_t> record(std::uint8_t type, const std::vector<std::uint8_t> &body) {
  std::vector<std::uint8_t> r;
  writer w(r);
  w.u8(type);
  w.varint(body.size());
  w.bytes(body);
  return r;
}

template <typename T> std::vector<std::uint8_t> bytes_of(const T &x) {
  std::vector<std::uint8_t> b;
  writer w(b);
  encode(w, x);
  return b;
}

bool get_origin(reader &r, origin &o) { return r.u32(o.node) && r.varint(o.epoch) && o.node != 0; }

}  // namespace

// ---- seq_set ----

bool seq_set::covers(std::uint64_t lo, std::uint64_t h) const {
  if (h <= hi)
    return true;
  if (lo <= hi)
    lo = hi + 1;
  auto it = extra.upper_bound(lo);
  if (it == extra.begin())
    return false;
  --it;
  return it->first <= lo && it->second >= h;
}

bool seq_set::add(std::uint64_t lo, std::uint64_t h) {
  if (lo == 0 || h < lo || covers(lo, h))
    return false;
  if (lo <= hi + 1) {
    hi = std::max(hi, h);
  } else {
    // Merge with overlapping or adjacent ranges beyond.
    auto it = extra.lower_bound(lo);
    if (it != extra.begin() && std::prev(it)->second + 1 >= lo)
      --it;
    while (it != extra.end() && it->first <= h + 1) {
      lo = std::min(lo, it->first);
      h = std::max(h, it->second);
      it = extra.erase(it);
    }
    if (extra.size() >= kMaxExtraRanges)
      return false;  // too fragmented: not recorded (it comes again)
    extra.emplace(lo, h);
  }
  // Ranges now contiguous with hi fold into it.
  for (auto it = extra.begin(); it != extra.end() && it->first <= hi + 1; it = extra.erase(it))
    hi = std::max(hi, it->second);
  return true;
}

// ---- framing ----

std::vector<std::uint8_t> seal(std::span<const std::uint8_t> key, replica_id node, std::uint64_t epoch,
                               std::uint64_t counter, std::span<const std::uint8_t> payload) {
  std::vector<std::uint8_t> d(kHeaderBytes + payload.size() + kTagBytes);
  d[0] = kMagic0;
  d[1] = kMagic1;
  d[2] = kVersion;
  d[3] = 0;
  put_be(&d[4], node, 4);
  put_be(&d[8], epoch, 8);
  put_be(&d[16], counter, 8);
  put_be(&d[24], payload.size(), 2);
  std::memcpy(&d[kHeaderBytes], payload.data(), payload.size());
  hmac(key, std::span(d.data(), kHeaderBytes + payload.size()), &d[kHeaderBytes + payload.size()]);
  return d;
}

drop open(std::span<const std::uint8_t> key, std::span<const std::uint8_t> g, opened &out) {
  if (g.size() > kMaxDatagram)
    return drop::oversize;
  if (g.size() < kHeaderBytes + kTagBytes)
    return drop::truncated;
  const std::size_t len = get_be(&g[24], 2);
  if (g.size() < kHeaderBytes + len + kTagBytes)
    return drop::truncated;
  if (g.size() > kHeaderBytes + len + kTagBytes || g[0] != kMagic0 || g[1] != kMagic1 || g[2] != kVersion || g[3] != 0)
    return drop::malformed;
  std::uint8_t tag[kTagBytes];
  hmac(key, g.first(kHeaderBytes + len), tag);
  if (CRYPTO_memcmp(tag, &g[kHeaderBytes + len], kTagBytes) != 0)
    return drop::auth;
  out.node = static_cast<replica_id>(get_be(&g[4], 4));
  out.epoch = get_be(&g[8], 8);
  out.counter = get_be(&g[16], 8);
  out.payload = g.subspan(kHeaderBytes, len);
  if (out.node == 0)
    return drop::malformed;
  return drop::count;
}

// ---- records ----

namespace {

struct vv_list {
  std::vector<std::pair<origin, std::uint64_t>> e;
};

// A datagram's records, decoded whole before any is applied.
struct parsed {
  struct delta_rec {
    origin o;
    std::uint64_t lo = 0, hi = 0;
    fleet_state d;
  };
  struct snap_rec {
    std::uint32_t id = 0, index = 0, count = 0;
    std::uint8_t kind = 0;
    fragment frag;
    vv_list vv;
    crdt::dot_context ctx;
  };
  struct ack_rec {
    std::uint32_t id = 0, count = 0;
    std::vector<bool> bits;
  };
  std::vector<vv_list> digests;
  std::vector<delta_rec> deltas;
  std::vector<snap_rec> snaps;
  std::vector<ack_rec> acks;
};

bool get_vv(reader &r, vv_list &v) {
  std::size_t n;
  if (!r.count(n, 3))
    return false;
  for (std::size_t i = 0; i < n; ++i) {
    origin o;
    std::uint64_t h;
    if (!get_origin(r, o) || !r.varint(h) || (!v.e.empty() && !(v.e.back().first < o)))
      return r.fail();
    v.e.emplace_back(o, h);
  }
  return true;
}

void put_vv(writer &w, const vv_list &v) {
  w.varint(v.e.size());
  for (const auto &[o, h] : v.e) {
    w.varint(o.node);
    w.varint(o.epoch);
    w.varint(h);
  }
}

bool parse(std::span<const std::uint8_t> payload, parsed &out) {
  reader top(payload);
  while (top.left() > 0) {
    std::uint8_t type;
    std::size_t len;
    std::span<const std::uint8_t> body;
    if (!top.u8(type) || !top.count(len) || !top.bytes(len, body))
      return false;
    reader r(body);
    switch (type) {
    case rec_digest: {
      vv_list v;
      if (!get_vv(r, v))
        return false;
      out.digests.push_back(std::move(v));
      break;
    }
    case rec_delta: {
      parsed::delta_rec d;
      if (!get_origin(r, d.o) || !r.varint(d.lo) || !r.varint(d.hi) || d.lo == 0 || d.hi < d.lo ||
          !decode(r, d.d))
        return false;
      out.deltas.push_back(std::move(d));
      break;
    }
    case rec_snap: {
      parsed::snap_rec s;
      if (!r.u32(s.id) || !r.u32(s.index) || !r.u32(s.count) || s.count == 0 || s.count > kMaxPieces ||
          s.index >= s.count || !r.u8(s.kind))
        return false;
      const bool ok = s.kind == piece_state ? decode(r, s.frag)
                      : s.kind == piece_vv  ? get_vv(r, s.vv)
                      : s.kind == piece_ctx ? decode(r, s.ctx)
                                            : false;
      if (!ok)
        return false;
      out.snaps.push_back(std::move(s));
      break;
    }
    case rec_snapack: {
      parsed::ack_rec a;
      std::span<const std::uint8_t> bits;
      if (!r.u32(a.id) || !r.u32(a.count) || a.count == 0 || a.count > kMaxPieces ||
          !r.bytes((a.count + 7) / 8, bits))
        return false;
      a.bits.resize(a.count);
      for (std::uint32_t i = 0; i < a.count; ++i)
        a.bits[i] = (bits[i / 8] >> (i % 8)) & 1;
      out.acks.push_back(std::move(a));
      break;
    }
    default: return false;
    }
    if (!r.done())
      return false;  // trailing bytes inside a record
  }
  return top.ok();
}

}  // namespace

bool parse_payload(std::span<const std::uint8_t> payload) {
  parsed p;
  return parse(payload, p);
}

// ---- the node ----

sync_node::sync_node(sync_config cfg, send_fn send)
    : cfg_(std::move(cfg)), send_(std::move(send)), fleet_(cfg_.node, cfg_.epoch), rng_(cfg_.seed ^ cfg_.node) {
  publish(fleet_.announce(cfg_.self, cfg_.epoch));
}

void sync_node::publish(const fleet_state &delta) {
  if (delta.empty())
    return;
  const origin o{cfg_.node, cfg_.epoch};
  ++seq_;
  have_[o].add(seq_, seq_);
  // Grow the last entry of this stream while it stays small (heartbeats
  // and repeated progress reports of one VM fold into one).
  auto &lg = log_[o];
  if (!lg.empty()) {
    auto last = std::prev(lg.end());
    if (last->second.hi + 1 == seq_) {
      fleet_state joined = last->second.delta;
      joined.join(delta);
      std::vector<std::uint8_t> b = bytes_of(joined);
      // Only when the new delta (nearly) covers the old: a heartbeat after
      // a heartbeat, a VM's report after its report. Otherwise every peer
      // missing the new one would get the old one again with it.
      if (b.size() <= kCoalesceBytes && b.size() <= bytes_of(delta).size() + 8) {
        log_bytes_ += b.size() - last->second.bytes.size();
        last->second.hi = seq_;
        last->second.delta = std::move(joined);
        last->second.bytes = std::move(b);
        fresh_.emplace_back(o, last->first);
        return;
      }
    }
  }
  store(o, seq_, seq_, delta, true);
}

void sync_node::store(const origin &o, std::uint64_t lo, std::uint64_t hi, const fleet_state &d, bool local) {
  entry e;
  e.hi = hi;
  e.delta = d;
  e.bytes = bytes_of(d);
  if (e.bytes.size() > kFragmentBudget) {
    // Too big for a datagram: not logged; peers that lack it get the state.
    ++st_.oversize_deltas;
    return;
  }
  auto &lg = log_[o];
  // Entries this one covers go.
  for (auto it = lg.lower_bound(lo); it != lg.end() && it->first <= hi;) {
    if (it->second.hi <= hi) {
      log_bytes_ -= it->second.bytes.size();
      it = lg.erase(it);
    } else {
      ++it;
    }
  }
  e.order = ++order_;
  log_bytes_ += e.bytes.size();
  lg[lo] = std::move(e);
  if (local)
    fresh_.emplace_back(o, lo);
  // Bounded: the oldest entries go first (peers that needed them get the state).
  while (log_bytes_ > cfg_.log_max_bytes) {
    origin oo{};
    std::uint64_t olo = 0, best = ~std::uint64_t(0);
    for (const auto &[k, m] : log_)
      for (const auto &[l, x] : m)
        if (x.order < best) {
          best = x.order;
          oo = k;
          olo = l;
        }
    if (best == ~std::uint64_t(0))
      break;
    log_bytes_ -= log_[oo][olo].bytes.size();
    log_[oo].erase(olo);
    ++st_.log_evicted;
  }
}

sync_node::peer &sync_node::peer_at(const std::string &addr, bool configured) {
  const auto [it, fresh] = peers_.try_emplace(addr);
  peer &p = it->second;
  p.addr = addr;
  if (fresh)
    p.added_ms = now_ms_;
  if (configured) {
    p.configured = true;
    removed_.erase(addr);
  }
  return p;
}

void sync_node::add_peer(const std::string &addr) {
  if (addr != cfg_.self.sync_addr)
    peer_at(addr, true);
}

bool sync_node::remove_peer(const std::string &addr) {
  removed_.insert(addr);
  return peers_.erase(addr) != 0;
}

void sync_node::block(const std::string &addr, bool on) {
  if (on)
    blocked_.insert(addr);
  else
    blocked_.erase(addr);
}

std::vector<peer_row> sync_node::peers() const {
  std::vector<peer_row> rows;
  for (const auto &[a, p] : peers_)
    rows.push_back({a, p.configured, blocked_.count(a) != 0, p.node, p.epoch, p.last_heard_ms, p.bytes_in, p.bytes_out,
                    p.datagrams_in, p.datagrams_out, !p.out.pieces.empty()});
  return rows;
}

std::size_t sync_node::log_entries() const {
  std::size_t n = 0;
  for (const auto &[o, m] : log_)
    n += m.size();
  return n;
}

void sync_node::seal_and_send(peer &p, std::span<const std::uint8_t> payload) {
  const std::vector<std::uint8_t> d = seal(cfg_.key, cfg_.node, cfg_.epoch, ++counter_, payload);
  ++st_.datagrams_out;
  st_.bytes_out += d.size();
  ++p.datagrams_out;
  p.bytes_out += d.size();
  if (!blocked_.count(p.addr))
    send_(p.addr, d);
}

void sync_node::send_records(peer &p, const std::vector<std::vector<std::uint8_t>> &records) {
  std::vector<std::uint8_t> payload;
  for (const auto &r : records) {
    if (r.size() > kPayloadBudget)
      continue;  // cannot happen: records are built within the budget
    if (payload.size() + r.size() > kPayloadBudget) {
      seal_and_send(p, payload);
      payload.clear();
    }
    payload.insert(payload.end(), r.begin(), r.end());
  }
  if (!payload.empty())
    seal_and_send(p, payload);
}

std::vector<std::vector<std::uint8_t>> sync_node::digest_records(const peer &p) const {
  std::vector<std::vector<std::uint8_t>> out;
  // The digest, cut into records of at most ~80 origins each.
  vv_list v;
  auto flush = [&] {
    std::vector<std::uint8_t> b;
    writer w(b);
    put_vv(w, v);
    out.push_back(record(rec_digest, b));
    v.e.clear();
  };
  for (const auto &[o, s] : have_) {
    v.e.emplace_back(o, s.hi);
    if (v.e.size() == 80)
      flush();
  }
  if (!v.e.empty() || out.empty())
    flush();
  // How far its state transfer to this node has come.
  if (p.node != 0)
    if (const auto it = rx_snap_.find(p.node); it != rx_snap_.end()) {
      const incoming_snapshot &s = it->second;
      std::vector<std::uint8_t> b;
      writer w(b);
      w.varint(s.id);
      w.varint(s.count);
      std::vector<std::uint8_t> bits((s.count + 7) / 8);
      for (std::uint32_t i = 0; i < s.count; ++i)
        if (s.got[i])
          bits[i / 8] |= static_cast<std::uint8_t>(1u << (i % 8));
      w.bytes(bits);
      out.push_back(record(rec_snapack, b));
    }
  return out;
}

bool sync_node::lacking(peer &p, std::vector<std::vector<std::uint8_t>> &records, std::uint64_t now_ms) {
  for (const auto &[o, s] : have_) {
    const auto k = p.known.find(o);
    std::uint64_t cur = k == p.known.end() ? 0 : k->second;
    if (cur >= s.hi)
      continue;
    // Sent to it less than a round ago (a push its digest had not seen):
    // not again yet; its next digest says whether it arrived.
    const auto sent = p.sent.find(o);
    const std::uint64_t recent = sent != p.sent.end() && now_ms < sent->second.second + cfg_.interval_ms
                                     ? sent->second.first
                                     : 0;
    bool skipped = false;
    const auto lg = log_.find(o);
    if (lg != log_.end())
      for (const auto &[lo, e] : lg->second) {
        if (e.hi <= cur)
          continue;
        if (lo > cur + 1)
          break;
        if (e.hi <= recent) {
          cur = e.hi;
          skipped = true;
          continue;
        }
        std::vector<std::uint8_t> b;
        writer w(b);
        w.varint(o.node);
        w.varint(o.epoch);
        w.varint(lo);
        w.varint(e.hi);
        w.bytes(e.bytes);
        records.push_back(record(rec_delta, b));
        cur = e.hi;
        if (!skipped)  // everything from its digest up to cur goes now
          p.sent[o] = {cur, now_ms};
        if (cur >= s.hi)
          break;
      }
    if (cur < s.hi)
      return false;
  }
  return true;
}

void sync_node::start_snapshot(peer &p) {
  ++st_.snapshots_started;
  outgoing_snapshot &s = p.out;
  s = {};
  s.id = static_cast<std::uint32_t>(rng_()) | 1u;
  s.started_round = rounds_;
  struct piece {
    std::uint8_t kind;
    std::vector<std::uint8_t> body;
  };
  std::vector<piece> ps;
  vv_list v;
  for (const auto &[o, q] : have_) {
    v.e.emplace_back(o, q.hi);
    if (v.e.size() == 80) {
      std::vector<std::uint8_t> b;
      writer w(b);
      put_vv(w, v);
      ps.push_back({piece_vv, std::move(b)});
      v.e.clear();
    }
  }
  if (!v.e.empty()) {
    std::vector<std::uint8_t> b;
    writer w(b);
    put_vv(w, v);
    ps.push_back({piece_vv, std::move(b)});
  }
  ps.push_back({piece_ctx, bytes_of(fleet_.state().migrations.context())});
  for (const fragment &f : split(fleet_.state(), kFragmentBudget))
    ps.push_back({piece_state, bytes_of(f)});
  const auto count = static_cast<std::uint32_t>(ps.size());
  for (std::uint32_t i = 0; i < count; ++i) {
    std::vector<std::uint8_t> b;
    writer w(b);
    w.varint(s.id);
    w.varint(i);
    w.varint(count);
    w.u8(ps[i].kind);
    w.bytes(ps[i].body);
    s.pieces.push_back(record(rec_snap, b));
  }
  s.acked.assign(count, false);
}

void sync_node::receive(const std::string &from, std::span<const std::uint8_t> g, std::uint64_t now_ms) {
  now_ms_ = std::max(now_ms_, now_ms);
  ++st_.datagrams_in;
  st_.bytes_in += g.size();
  auto count_drop = [&](drop d) { ++st_.drops[static_cast<std::size_t>(d)]; };
  if (blocked_.count(from))
    return count_drop(drop::blocked);
  opened o;
  if (const drop d = open(cfg_.key, g, o); d != drop::count)
    return count_drop(d);
  if (o.node == cfg_.node)
    return count_drop(drop::malformed);  // our own datagram, looped back
  // Replay: an older epoch of the sender, or a counter seen (or too old for
  // the 64-counter window) in its current one.
  const auto rw = replay_.find(o.node);
  if (rw != replay_.end()) {
    const replay_window &w = rw->second;
    if (o.epoch < w.epoch)
      return count_drop(drop::replay);
    if (o.epoch == w.epoch && o.counter <= w.top &&
        (w.top - o.counter >= 64 || ((w.bits >> (w.top - o.counter)) & 1) != 0))
      return count_drop(drop::replay);
  }
  parsed msg;
  if (!parse(o.payload, msg))
    return count_drop(drop::malformed);
  // Accepted: from here on it changes state.
  replay_window &w = replay_[o.node];
  if (o.epoch > w.epoch || rw == replay_.end()) {
    w = {o.epoch, o.counter, 1};
  } else if (o.counter > w.top) {
    const std::uint64_t shift = o.counter - w.top;
    w.bits = shift >= 64 ? 1 : (w.bits << shift) | 1;
    w.top = o.counter;
  } else {
    w.bits |= std::uint64_t(1) << (w.top - o.counter);
  }
  peer *p = nullptr;
  if (!removed_.count(from)) {
    p = &peer_at(from, false);
    if (p->epoch != o.epoch || p->node != o.node) {  // a new peer, or it restarted
      p->known.clear();
      p->sent.clear();
      p->have_digest = false;
      p->out = {};
    }
    p->node = o.node;
    p->epoch = o.epoch;
    p->last_heard_ms = now_ms;
    ++p->datagrams_in;
    p->bytes_in += g.size();
  }
  for (const auto &d : msg.deltas) {
    ++st_.deltas_in;
    seq_set &s = have_[d.o];
    if (s.covers(d.lo, d.hi)) {
      ++st_.deltas_duplicate;
      continue;
    }
    ++st_.deltas_new;
    fleet_.join(d.d);
    s.add(d.lo, d.hi);
    store(d.o, d.lo, d.hi, d.d, false);
    forward_[{d.o.node, o.node}].emplace_back(d.o, d.lo);  // pushed on to forward_fanout peers
  }
  bool ack_now = false;
  for (const auto &sp : msg.snaps) {
    ++st_.snapshot_pieces_in;
    incoming_snapshot &s = rx_snap_[o.node];
    if (s.id != sp.id) {
      s = {};
      s.id = sp.id;
      s.count = sp.count;
      s.got.assign(sp.count, false);
    }
    if (sp.count != s.count)
      continue;
    switch (sp.kind) {
    case piece_state: fleet_.apply(sp.frag); break;
    case piece_vv:
      for (const auto &[og, h] : sp.vv.e)
        s.vv[og] = std::max(s.vv[og], h);
      break;
    default: s.ctx.join(sp.ctx); break;
    }
    s.got[sp.index] = true;
    ack_now = ack_now || sp.index + 1 == sp.count;
    if (!s.done && std::all_of(s.got.begin(), s.got.end(), [](bool b) { return b; })) {
      s.done = true;
      ack_now = true;
      fleet_.finish(s.ctx);
      for (const auto &[og, h] : s.vv)
        if (h > 0)
          have_[og].add(1, h);
      ++st_.snapshots_completed;
    }
  }
  if (p == nullptr)
    return;
  for (const auto &a : msg.acks) {
    outgoing_snapshot &s = p->out;
    if (s.id != a.id || a.count != s.pieces.size())
      continue;
    for (std::uint32_t i = 0; i < a.count; ++i)
      if (a.bits[i])
        s.acked[i] = true;
    if (std::all_of(s.acked.begin(), s.acked.end(), [](bool b) { return b; }))
      s = {};
  }
  std::vector<std::vector<std::uint8_t>> reply;
  if (!msg.digests.empty()) {
    ++st_.digests_in;
    p->have_digest = true;
    for (const auto &v : msg.digests)
      for (const auto &[og, h] : v.e)
        p->known[og] = h;
    if (lacking(*p, reply, now_ms)) {
      st_.deltas_out += reply.size();
    } else if (p->out.pieces.empty()) {
      reply.clear();
      start_snapshot(*p);
      reply = p->out.pieces;
      st_.snapshot_pieces_out += reply.size();
    } else {
      reply.clear();  // a transfer is under way; poll() resends what is missing
    }
  }
  if (ack_now) {
    const auto d = digest_records(*p);
    reply.insert(reply.end(), d.begin(), d.end());
    ++st_.digests_out;
  }
  if (!reply.empty())
    send_records(*p, reply);
}

std::vector<sync_node::peer *> sync_node::pick(std::size_t n, replica_id skip_a, replica_id skip_b) {
  std::vector<peer *> all;
  for (auto &[a, p] : peers_)
    if (!blocked_.count(a) && (p.node == 0 || (p.node != skip_a && p.node != skip_b)))
      all.push_back(&p);
  if (all.size() <= n)
    return all;
  std::shuffle(all.begin(), all.end(), rng_);
  all.resize(n);
  return all;
}

void sync_node::discover() {
  for (const member_row &m : fleet_.members()) {
    if (m.node == cfg_.node)
      continue;
    const std::string &a = m.info.sync_addr;
    const bool dead = m.st.kind == status_kind::dead && m.st.epoch >= m.info.epoch;
    const auto it = peers_.find(a);
    if (dead) {
      if (it != peers_.end() && !it->second.configured && it->second.node == m.node)
        peers_.erase(it);
      continue;
    }
    if (a.empty() || a == cfg_.self.sync_addr || removed_.count(a) || it != peers_.end() ||
        a.rfind("0.0.0.0:", 0) == 0)
      continue;
    peer_at(a, false);
  }
}

void sync_node::collect() {
  // The peers whose digests decide: every peer heard (or, never heard,
  // added) within the horizon; one whose digest has not come yet holds
  // everything back.
  const std::uint64_t horizon = std::uint64_t(cfg_.gc_horizon_rounds) * cfg_.interval_ms;
  std::vector<const peer *> judges;
  for (const auto &[a, p] : peers_)
    if ((p.node != 0 ? p.last_heard_ms : p.added_ms) + horizon >= now_ms_)
      judges.push_back(&p);
  for (auto &[o, lg] : log_)
    for (auto it = lg.begin(); it != lg.end();) {
      bool everyone = true;
      for (const peer *p : judges) {
        const auto k = p->known.find(o);
        everyone = everyone && k != p->known.end() && k->second >= it->second.hi;
      }
      // Nobody within the horizon: keep the log for when a peer comes
      // back, up to the bound; with no peers at all, drop it.
      if (judges.empty())
        everyone = peers_.empty();
      if (everyone) {
        log_bytes_ -= it->second.bytes.size();
        it = lg.erase(it);
        ++st_.log_collected;
      } else {
        ++it;
      }
    }
}

void sync_node::round(std::uint64_t now_ms) {
  ++rounds_;
  ++st_.rounds;
  publish(fleet_.beat());
  publish(fleet_.detect(now_ms, std::uint64_t(cfg_.suspect_rounds) * cfg_.interval_ms,
                        std::uint64_t(cfg_.dead_rounds) * cfg_.interval_ms));
  discover();
  collect();
  for (peer *p : pick(cfg_.fanout)) {
    send_records(*p, digest_records(*p));
    ++st_.digests_out;
  }
  // State transfers under way: resend what is not acknowledged, once the
  // peer has had a round to say what it got; start over when stale.
  for (auto &[a, p] : peers_) {
    outgoing_snapshot &s = p.out;
    if (s.pieces.empty() || blocked_.count(a))
      continue;
    if (rounds_ - s.started_round > 40) {
      s = {};
      continue;  // its next digest starts a fresh one
    }
    if ((rounds_ - s.started_round) % 2 != 0)
      continue;
    std::vector<std::vector<std::uint8_t>> missing;
    for (std::size_t i = 0; i < s.pieces.size(); ++i)
      if (!s.acked[i])
        missing.push_back(s.pieces[i]);
    st_.snapshot_pieces_out += missing.size();
    send_records(p, missing);
  }
}

// Push log entries that are new here to a few peers (only the entries).
void sync_node::push(std::vector<std::pair<origin, std::uint64_t>> &entries, unsigned fanout, std::uint64_t now_ms,
                     replica_id skip_a, replica_id skip_b) {
  if (entries.empty())
    return;
  std::vector<std::vector<std::uint8_t>> recs;
  std::sort(entries.begin(), entries.end());
  entries.erase(std::unique(entries.begin(), entries.end()), entries.end());
  for (const auto &[o, lo] : entries) {
    const auto lg = log_.find(o);
    if (lg == log_.end())
      continue;
    const auto it = lg->second.find(lo);
    if (it == lg->second.end())
      continue;
    std::vector<std::uint8_t> b;
    writer w(b);
    w.varint(o.node);
    w.varint(o.epoch);
    w.varint(lo);
    w.varint(it->second.hi);
    w.bytes(it->second.bytes);
    recs.push_back(record(rec_delta, b));
  }
  if (!recs.empty() && fanout > 0)
    for (peer *p : pick(fanout, skip_a, skip_b)) {
      st_.deltas_out += recs.size();
      send_records(*p, recs);
      for (const auto &[o, lo] : entries)
        if (const auto lg = log_.find(o); lg != log_.end())
          if (const auto it = lg->second.find(lo); it != lg->second.end()) {
            // A mark says "everything after its digest up to here was
            // sent at this time": only a push that starts there makes one.
            const auto k = p->known.find(o);
            if (lo <= (k == p->known.end() ? 0 : k->second) + 1)
              p->sent[o] = {it->second.hi, now_ms};
          }
    }
  entries.clear();
}

std::uint64_t sync_node::poll(std::uint64_t now_ms) {
  now_ms_ = std::max(now_ms_, now_ms);
  if (now_ms >= next_round_ms_) {
    next_round_ms_ = now_ms + cfg_.interval_ms;
    round(now_ms);
  }
  push(fresh_, cfg_.fanout, now_ms);
  // With no more peers than the fanout, every origin pushes to all of its
  // own: pushing on would mostly repeat it (peers further away pull).
  if (peers_.size() > cfg_.fanout)
    for (auto &[k, entries] : forward_)
      push(entries, cfg_.forward_fanout, now_ms, k.first, k.second);
  forward_.clear();
  return next_round_ms_ > now_ms ? next_round_ms_ - now_ms : 0;
}

}  // namespace hde::sync
