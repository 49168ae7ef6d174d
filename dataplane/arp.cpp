// arp.cpp — ARP packets and the resolver (arp.h).
#include "arp.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace hde::dp::arp {

namespace {

void put16(std::byte *p, std::uint16_t v) {
  p[0] = static_cast<std::byte>(v >> 8);
  p[1] = static_cast<std::byte>(v);
}
void put32(std::byte *p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i)
    p[i] = static_cast<std::byte>(v >> (24 - 8 * i));
}
std::uint16_t get16(const std::byte *p) {
  return static_cast<std::uint16_t>(std::to_integer<unsigned>(p[0]) << 8 | std::to_integer<unsigned>(p[1]));
}
std::uint32_t get32(const std::byte *p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v = v << 8 | std::to_integer<std::uint32_t>(p[i]);
  return v;
}
void put_mac(std::byte *p, const mac &m) { std::memcpy(p, m.data(), 6); }
mac get_mac(const std::byte *p) {
  mac m;
  std::memcpy(m.data(), p, 6);
  return m;
}

}  // namespace

packet make_request(const mac &our_mac, std::uint32_t our_ip, std::uint32_t target_ip) {
  packet p;
  p.eth_dst = kBroadcast;
  p.eth_src = our_mac;
  p.oper = op::request;
  p.sha = our_mac;
  p.spa = our_ip;
  p.tha = mac{};
  p.tpa = target_ip;
  return p;
}

packet make_reply(const packet &q, const mac &our_mac) {
  packet p;
  p.eth_dst = q.sha;
  p.eth_src = our_mac;
  p.oper = op::reply;
  p.sha = our_mac;
  p.spa = q.tpa;
  p.tha = q.sha;
  p.tpa = q.spa;
  return p;
}

std::size_t write(const packet &p, std::byte *out) {
  std::memset(out, 0, kFrameLen);
  put_mac(out, p.eth_dst);
  put_mac(out + 6, p.eth_src);
  put16(out + 12, kEtherType);
  std::byte *a = out + kEthHeader;
  put16(a, 1);        // hardware type: Ethernet
  put16(a + 2, 0x0800);  // protocol type: IPv4
  a[4] = std::byte{6};
  a[5] = std::byte{4};
  put16(a + 6, static_cast<std::uint16_t>(p.oper));
  put_mac(a + 8, p.sha);
  put32(a + 14, p.spa);
  put_mac(a + 18, p.tha);
  put32(a + 24, p.tpa);
  return kFrameLen;
}

bool is_arp(const std::byte *frame, std::size_t len) {
  return len >= kEthHeader && get16(frame + 12) == kEtherType;
}

bool parse(const std::byte *frame, std::size_t len, packet &p) {
  if (len < kEthHeader + kArpLen || !is_arp(frame, len))
    return false;
  const std::byte *a = frame + kEthHeader;
  if (get16(a) != 1 || get16(a + 2) != 0x0800 || a[4] != std::byte{6} || a[5] != std::byte{4})
    return false;
  const std::uint16_t o = get16(a + 6);
  if (o != static_cast<std::uint16_t>(op::request) && o != static_cast<std::uint16_t>(op::reply))
    return false;
  p.eth_dst = get_mac(frame);
  p.eth_src = get_mac(frame + 6);
  p.oper = static_cast<op>(o);
  p.sha = get_mac(a + 8);
  p.spa = get32(a + 14);
  p.tha = get_mac(a + 18);
  p.tpa = get32(a + 24);
  return true;
}

std::string to_string(const mac &m) {
  char b[18];
  std::snprintf(b, sizeof b, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  return b;
}

std::string ip_string(std::uint32_t ip) {
  char b[16];
  std::snprintf(b, sizeof b, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
  return b;
}

bool parse_mac(std::string_view s, mac &m) {
  if (s.size() != 17)
    return false;
  mac out;
  for (std::size_t i = 0; i < 6; ++i) {
    unsigned v = 0;
    for (std::size_t k = 0; k < 2; ++k) {
      const char c = s[3 * i + k];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= static_cast<unsigned>(c - 'A' + 10);
      else
        return false;
    }
    if (i < 5 && s[3 * i + 2] != ':' && s[3 * i + 2] != '-')
      return false;
    out[i] = static_cast<std::uint8_t>(v);
  }
  if (!is_unicast(out))
    return false;
  m = out;
  return true;
}

// --- resolver -------------------------------------------------------------------

resolver::resolver(const config &c)
    : c_(c), first_retry_(static_cast<std::uint64_t>(c.hz * c.first_retry_s)),
      max_retry_(static_cast<std::uint64_t>(c.hz * c.max_retry_s)),
      refresh_(static_cast<std::uint64_t>(c.hz * c.refresh_s)) {
  retry_ = first_retry_;
}

resolver::entry *resolver::find(std::uint32_t ip) {
  for (entry &e : t_)
    if (e.ip == ip && ip != 0)
      return &e;
  return nullptr;
}

const resolver::entry *resolver::lookup(std::uint32_t ip) const {
  for (const entry &e : t_)
    if (e.ip == ip && ip != 0)
      return &e;
  return nullptr;
}

// A new entry for ip: a free one, else the least recently used one that is
// not the target's.
resolver::entry &resolver::insert(std::uint32_t ip, std::uint64_t now) {
  entry *victim = nullptr;
  for (entry &e : t_) {
    if (e.ip == 0) {
      victim = &e;
      break;
    }
    if (e.ip != target_ && (victim == nullptr || e.used < victim->used))
      victim = &e;
  }
  *victim = entry{ip, mac{}, false, 0, now};
  return *victim;
}

void resolver::learn(entry &e, const mac &m, std::uint64_t now) {
  if (e.known && e.m != m)
    ++st_.mac_changes;
  e.m = m;
  e.known = true;
  e.updated = now;
  e.used = now;
  if (e.ip != target_ || static_)
    return;
  if (!resolved_) {
    resolved_ = true;
    ++st_.resolved;
    if (asked_)
      st_.resolve_ns = static_cast<std::uint64_t>(static_cast<double>(now - want_since_) * 1e9 / c_.hz);
    next_request_ = now + refresh_;  // the next refresh
  }
  peer_ = m;
}

void resolver::set_target(std::uint32_t ip, std::uint64_t now) {
  if (ip == target_)
    return;
  target_ = ip;
  if (static_ || ip == 0)
    return;
  resolved_ = false;
  asked_ = false;
  want_since_ = 0;
  next_request_ = 0;
  retry_ = first_retry_;
  entry *e = find(ip);
  if (e == nullptr)
    e = &insert(ip, now);
  if (e->known) {
    resolved_ = true;
    ++st_.resolved;
    peer_ = e->m;
    next_request_ = e->updated + refresh_;
  }
}

void resolver::set_static(const mac &m) {
  static_ = true;
  resolved_ = true;
  peer_ = m;
}

bool resolver::on_packet(const packet &p, std::uint64_t now, packet *reply) {
  if (p.sha == c_.our_mac || p.eth_src == c_.our_mac) {
    ++st_.ignored;  // our own, seen again on a shared medium
    return false;
  }
  // A request for our address from a unicast sender (a group address as
  // sender is bogus: no answer, which would go to that group).
  const bool for_us = p.oper == op::request && p.tpa == c_.our_ip && c_.our_ip != 0 && is_unicast(p.sha);
  // Learn only addresses we need, and the sender of a request for us (the
  // peer asking for us is about to send to us: we shall answer it).
  entry *e = nullptr;
  if (p.spa != 0 && p.spa != c_.our_ip && is_unicast(p.sha)) {
    e = find(p.spa);
    if (e == nullptr && for_us)
      e = &insert(p.spa, now);
  }
  if (e != nullptr) {
    if (p.oper == op::reply)
      ++st_.replies_received;
    learn(*e, p.sha, now);
  }
  if (for_us) {
    ++st_.requests_received;
    if (reply != nullptr)
      *reply = make_reply(p, c_.our_mac);
    ++st_.replies_sent;
    return true;
  }
  if (e == nullptr)
    ++st_.ignored;
  return false;
}

bool resolver::poll(std::uint64_t now, packet &req) {
  if (static_ || target_ == 0 || now < next_request_)
    return false;
  if (resolved_) {  // refresh: one request a period; the entry stays meanwhile
    if (refresh_ == 0)
      return false;
    next_request_ = now + refresh_;
  } else {
    if (!asked_)
      want_since_ = now;
    asked_ = true;
    next_request_ = now + retry_;
    retry_ = std::min(retry_ * 2, max_retry_);
  }
  if (entry *e = find(target_); e != nullptr)
    e->used = now;
  req = make_request(c_.our_mac, c_.our_ip, target_);
  ++st_.requests_sent;
  return true;
}

}  // namespace hde::dp::arp
