// fleet.cpp — the fleet state's binary form, its fragments, and the mutators
// of one gateway's replica (fleet.h).
#include "sync/fleet.h"

#include <algorithm>
#include <set>

namespace hde::sync {

using crdt::reader;
using crdt::writer;

const char *to_string(status_kind s) {
  switch (s) {
  case status_kind::alive: return "alive";
  case status_kind::suspect: return "suspect";
  case status_kind::dead: return "dead";
  }
  return "?";
}

const char *to_string(mig_state s) {
  switch (s) {
  case mig_state::planned: return "planned";
  case mig_state::bulk: return "bulk";
  case mig_state::dirty: return "dirty";
  case mig_state::switchover: return "switchover";
  case mig_state::done: return "done";
  case mig_state::failed: return "failed";
  }
  return "?";
}

namespace {

bool str(reader &r, std::string &s) { return r.str(s, kMaxString); }

}  // namespace

// The value types, found by ADL from the templates of crdt/codec.h.
void encode(writer &w, const status &s) {
  w.varint(s.epoch);
  w.varint(s.incarnation);
  w.u8(static_cast<std::uint8_t>(s.kind));
}
bool decode(reader &r, status &s) {
  std::uint8_t k;
  if (!r.varint(s.epoch) || !r.varint(s.incarnation) || !r.u8(k) || k > 2)
    return r.fail();
  s.kind = static_cast<status_kind>(k);
  return true;
}
void encode(writer &w, const heartbeat &h) {
  w.varint(h.epoch);
  w.varint(h.beat);
}
bool decode(reader &r, heartbeat &h) { return r.varint(h.epoch) && r.varint(h.beat); }
void encode(writer &w, const node_info &n) {
  w.str(n.sync_addr);
  w.str(n.ctl_addr);
  w.str(n.data_addr);
  w.varint(n.epoch);
}
bool decode(reader &r, node_info &n) {
  return str(r, n.sync_addr) && str(r, n.ctl_addr) && str(r, n.data_addr) && r.varint(n.epoch);
}
void encode(writer &w, const member &m) {
  encode(w, m.info);
  encode(w, m.st);
  encode(w, m.hb);
}
bool decode(reader &r, member &m) { return decode(r, m.info) && decode(r, m.st) && decode(r, m.hb); }
void encode(writer &w, const claim &c) {
  w.varint(c.source);
  w.str(c.destination);
  w.varint(c.epoch);
}
bool decode(reader &r, claim &c) { return r.u32(c.source) && str(r, c.destination) && r.varint(c.epoch); }
void encode(writer &w, const progress &p) {
  w.u8(static_cast<std::uint8_t>(p.state));
  w.varint(p.round);
  w.varint(p.pages);
  w.varint(p.wire_bytes);
  w.varint(p.start_ms);
  w.str(p.reason);
}
bool decode(reader &r, progress &p) {
  std::uint8_t s;
  if (!r.u8(s) || s > static_cast<std::uint8_t>(mig_state::failed))
    return r.fail();
  p.state = static_cast<mig_state>(s);
  return r.u32(p.round) && r.varint(p.pages) && r.varint(p.wire_bytes) && r.varint(p.start_ms) && str(r, p.reason);
}
template <typename K, typename V> void encode(writer &w, const gmap<K, V> &g) {
  w.varint(g.m.size());
  for (const auto &[k, v] : g.m) {
    crdt::encode(w, k);
    encode(w, v);
  }
}
template <typename K, typename V> bool decode(reader &r, gmap<K, V> &g) {
  g = {};
  std::size_t n;
  if (!r.count(n, 2))
    return false;
  for (std::size_t i = 0; i < n; ++i) {
    K k{};
    V v{};
    if (!crdt::decode(r, k) || (!g.m.empty() && !(g.m.rbegin()->first < k)) || !decode(r, v))
      return r.fail();
    g.m.emplace(std::move(k), std::move(v));
  }
  return true;
}
void encode(writer &w, const migration &m) {
  encode(w, m.owner);
  encode(w, m.reports);
}
bool decode(reader &r, migration &m) { return decode(r, m.owner) && decode(r, m.reports); }
void encode(writer &w, const selector_stat &s) {
  encode(w, s.samples);
  encode(w, s.pages);
  encode(w, s.wire_bytes);
  encode(w, s.cycles);
}
bool decode(reader &r, selector_stat &s) {
  return decode(r, s.samples) && decode(r, s.pages) && decode(r, s.wire_bytes) && decode(r, s.cycles);
}

void encode(writer &w, const fleet_state &s) {
  encode(w, s.members);
  encode(w, s.migrations);
  encode(w, s.selector);
}
bool decode(reader &r, fleet_state &s) {
  if (!decode(r, s.members) || !decode(r, s.migrations) || !decode(r, s.selector))
    return false;
  for (const std::string &k : s.migrations.keys())
    if (k.size() > kMaxString)
      return r.fail();
  for (const auto &[k, v] : s.selector.m)
    if (k.size() > kMaxString)
      return r.fail();
  return true;
}

void encode(writer &w, const fragment &f) {
  w.u8(static_cast<std::uint8_t>((f.in_range ? 1 : 0) | (f.lo ? 2 : 0) | (f.hi ? 4 : 0)));
  if (f.lo)
    w.str(*f.lo);
  if (f.hi)
    w.str(*f.hi);
  encode(w, f.part);
}
bool decode(reader &r, fragment &f) {
  f = {};
  std::uint8_t flags;
  if (!r.u8(flags) || flags > 7 || (!(flags & 1) && flags != 0))
    return r.fail();
  f.in_range = flags & 1;
  std::string s;
  if (flags & 2) {
    if (!str(r, s))
      return false;
    f.lo = s;
  }
  if (flags & 4) {
    if (!str(r, s))
      return false;
    f.hi = s;
  }
  if (f.lo && f.hi && !(*f.lo < *f.hi))
    return r.fail();
  if (!decode(r, f.part))
    return false;
  // Migrations outside the range, or a context without a range to use it:
  // not something split() makes.
  for (const std::string &k : f.part.migrations.keys())
    if (!f.in_range || (f.lo && !(*f.lo < k)) || (f.hi && *f.hi < k))
      return r.fail();
  if (!f.in_range && !f.part.migrations.context().vector().empty())
    return r.fail();
  return true;
}

namespace {

template <typename T> std::size_t size_of(const T &x) {
  std::vector<std::uint8_t> b;
  writer w(b);
  encode(w, x);
  return b.size();
}

}  // namespace

std::vector<fragment> split(const fleet_state &s, std::size_t max_bytes) {
  std::vector<fragment> out;
  // Members and selector entries: packed into fragments by size.
  fragment cur;
  std::size_t used = size_of(cur);
  auto flush = [&] {
    if (!cur.part.empty() || cur.in_range)
      out.push_back(std::move(cur));
    cur = fragment{};
    used = size_of(cur);
  };
  auto add_entry = [&](std::size_t sz, auto &&put) {
    if (used + sz > max_bytes)
      flush();
    put();
    used += sz;
  };
  for (const auto &e : s.members.m) {
    gmap<replica_id, member> one;
    one.m.insert(e);
    add_entry(size_of(one) - 1, [&] { cur.part.members.m.insert(e); });
  }
  for (const auto &e : s.selector.m) {
    gmap<std::string, selector_stat> one;
    one.m.insert(e);
    add_entry(size_of(one) - 1, [&] { cur.part.selector.m.insert(e); });
  }
  flush();
  // Migrations: consecutive key ranges, each with the whole context; the
  // first range starts at the bottom, the last ends at the top, so removals
  // of keys this state no longer has reach every receiver.
  const std::vector<std::string> keys = s.migrations.keys();
  const std::size_t ctx_size = size_of(s.migrations.context());
  std::optional<std::string> lo;
  std::size_t i = 0;
  do {
    fragment f;
    f.in_range = true;
    f.lo = lo;
    f.part.migrations = s.migrations.range(lo, lo ? lo : std::optional<std::string>(""));
    std::size_t used_m = size_of(f), j = i;
    // Each key adds its entries; the last one taken also names the end of
    // the range (its length and a length byte).
    while (j < keys.size()) {
      const std::size_t sz =
          size_of(s.migrations.range(j == 0 ? std::nullopt : std::optional(keys[j - 1]), keys[j])) - ctx_size;
      if (j > i && used_m + sz + keys[j].size() + 2 > max_bytes)
        break;
      used_m += sz;
      ++j;
    }
    f.hi = j < keys.size() ? std::optional(keys[j - 1]) : std::nullopt;
    f.part.migrations = s.migrations.range(lo, f.hi);
    lo = f.hi;
    out.push_back(std::move(f));
    i = j;
  } while (i < keys.size());
  return out;
}

void apply(fleet_state &s, const fragment &f) {
  s.members.join(f.part.members);
  s.selector.join(f.part.selector);
  if (f.in_range)
    s.migrations.join_range(f.part.migrations, f.lo, f.hi);
}

void finish(fleet_state &s, const crdt::dot_context &c) { s.migrations.join_context(c); }

// ---- one gateway's replica ----

fleet_state fleet::announce(const node_info &info, std::uint64_t now_ms) {
  fleet_state d;
  member &m = d.members.m[self_];
  node_info i = info;
  i.epoch = epoch_;
  m.info.set(self_, tick(now_ms), i);
  const member cur = s_.members.m.count(self_) ? s_.members.m[self_] : member{};
  // A new epoch starts at incarnation 0; the same epoch keeps what it has.
  m.st = cur.st.epoch == epoch_ ? cur.st : status{epoch_, 0, status_kind::alive};
  if (m.st.kind != status_kind::alive)
    m.st = {epoch_, m.st.incarnation + 1, status_kind::alive};
  m.hb = cur.hb.epoch == epoch_ ? cur.hb : heartbeat{epoch_, 0};
  s_.join(d);
  return d;
}

fleet_state fleet::beat() {
  fleet_state d;
  member &m = s_.members.m[self_];
  m.hb = m.hb.epoch == epoch_ ? heartbeat{epoch_, m.hb.beat + 1} : heartbeat{epoch_, 1};
  d.members.m[self_].hb = m.hb;
  return d;
}

fleet_state fleet::detect(std::uint64_t now_ms, std::uint64_t suspect_ms, std::uint64_t dead_ms) {
  fleet_state d;
  for (const auto &[n, m] : s_.members.m) {
    if (n == self_) {
      // Refute: a suspicion (or death) of this epoch is answered by alive
      // at a higher incarnation.
      if (m.st.epoch == epoch_ && m.st.kind != status_kind::alive)
        d.members.m[n].st = status{epoch_, m.st.incarnation + 1, status_kind::alive};
      continue;
    }
    seen &sn = seen_[n];
    if (sn.moved_ms == 0 || sn.hb < m.hb) {
      sn.hb = m.hb;
      sn.moved_ms = now_ms;
    }
    if (m.st.kind == status_kind::alive || sn.st < m.st)
      sn.suspected_ms = 0;
    if (m.st.kind == status_kind::suspect && sn.suspected_ms == 0)
      sn.suspected_ms = now_ms;
    sn.st = m.st;
    if (m.st.kind == status_kind::alive && now_ms - sn.moved_ms >= suspect_ms) {
      d.members.m[n].st = sn.st = status{m.st.epoch, m.st.incarnation, status_kind::suspect};
      sn.suspected_ms = now_ms;
    } else if (m.st.kind == status_kind::suspect && now_ms - sn.suspected_ms >= dead_ms &&
               now_ms - sn.moved_ms >= suspect_ms) {
      d.members.m[n].st = sn.st = status{m.st.epoch, m.st.incarnation, status_kind::dead};
    }
  }
  s_.join(d);
  return d;
}

std::vector<member_row> fleet::members() const {
  std::vector<member_row> rows;
  for (const auto &[n, m] : s_.members.m)
    rows.push_back({n, m.info.get().value_or(node_info{}), m.st, m.hb});
  return rows;
}

std::optional<member_row> fleet::member_of(replica_id n) const {
  const auto it = s_.members.m.find(n);
  if (it == s_.members.m.end())
    return std::nullopt;
  return member_row{n, it->second.info.get().value_or(node_info{}), it->second.st, it->second.hb};
}

fleet_state fleet::start_migration(const std::string &vm, const std::string &destination, std::uint64_t now_ms,
                                   std::uint64_t wall_ms) {
  fleet_state d;
  const std::uint64_t t = tick(now_ms);
  d.migrations = s_.migrations.update(self_, vm.substr(0, kMaxString), [&](migration &m) {
    m.owner.set(self_, claim{self_, destination.substr(0, kMaxString), epoch_});
    m.reports.m[self_].set(self_, t, progress{mig_state::planned, 0, 0, 0, wall_ms, {}});
  });
  return d;
}

fleet_state fleet::report(const std::string &vm, const progress &p, std::uint64_t now_ms) {
  fleet_state d;
  const std::uint64_t t = tick(now_ms);
  progress q = p;
  q.reason.resize(std::min(q.reason.size(), kMaxString));
  d.migrations = s_.migrations.update(self_, vm.substr(0, kMaxString), [&](migration &m) {
    m.reports.m[self_].set(self_, t, q);
  });
  return d;
}

fleet_state fleet::remove_migration(const std::string &vm) {
  fleet_state d;
  d.migrations = s_.migrations.remove(vm);
  return d;
}

std::vector<migration_row> fleet::migrations() const {
  std::vector<migration_row> rows;
  s_.migrations.for_each([&](const std::string &vm, const migration &m) {
    migration_row r;
    r.vm = vm;
    std::set<claim> distinct;
    for (const claim &c : m.owner.values())
      distinct.insert(c);
    r.claims.assign(distinct.begin(), distinct.end());
    r.owner = m.owner.resolve().value_or(claim{});
    if (const auto it = m.reports.m.find(r.owner.source); it != m.reports.m.end())
      r.report = it->second.get();
    rows.push_back(std::move(r));
  });
  return rows;
}

fleet_state fleet::resolve_conflicts(std::uint64_t now_ms, std::vector<std::string> *lost) {
  fleet_state d;
  for (const migration_row &r : migrations()) {
    if (!r.conflict() || r.owner.source == self_)
      continue;
    if (std::none_of(r.claims.begin(), r.claims.end(), [&](const claim &c) { return c.source == self_; }))
      continue;
    const std::uint64_t t = tick(now_ms);
    std::optional<progress> mine;
    s_.migrations.for_each([&](const std::string &vm, const migration &m) {
      if (vm == r.vm)
        if (const auto it = m.reports.m.find(self_); it != m.reports.m.end())
          mine = it->second.get();
    });
    progress p = mine.value_or(progress{});
    p.state = mig_state::failed;
    p.reason = "ownership conflict: node " + std::to_string(r.owner.source) +
               " claimed this VM at the same time and keeps it (the lowest node id wins)";
    d.migrations.join(s_.migrations.update(self_, r.vm, [&](migration &m) {
      m.owner.set(self_, r.owner);
      m.reports.m[self_].set(self_, t, p);
    }));
    if (lost)
      lost->push_back(r.vm);
  }
  return d;
}

fleet_state fleet::add_selector_sample(const std::string &cls, const std::string &arm, std::uint64_t pages,
                                       std::uint64_t wire_bytes, std::uint64_t cycles, std::uint64_t samples) {
  fleet_state d;
  const std::string key = (cls + "/" + arm).substr(0, kMaxString);
  selector_stat &s = s_.selector.m[key];
  selector_stat &x = d.selector.m[key];
  x.samples = s.samples.add(self_, samples);
  x.pages = s.pages.add(self_, pages);
  x.wire_bytes = s.wire_bytes.add(self_, wire_bytes);
  x.cycles = s.cycles.add(self_, cycles);
  return d;
}

std::vector<selector_row> fleet::selector() const {
  std::vector<selector_row> rows;
  for (const auto &[k, s] : s_.selector.m) {
    const std::size_t slash = k.find('/');
    rows.push_back({k.substr(0, slash), slash == std::string::npos ? std::string() : k.substr(slash + 1),
                    s.samples.value(), s.pages.value(), s.wire_bytes.value(), s.cycles.value()});
  }
  return rows;
}

}  // namespace hde::sync
