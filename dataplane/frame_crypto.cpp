// frame_crypto.cpp — the crypto device, keys and rotation; sealing and
// opening bursts of frames on a lane's queue pair.
#include "frame_crypto.h"

#include <cstring>
#include <ctime>
#include <rte_bus_vdev.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <sys/random.h>

#include "packet.h"
#include "wire/format.h"

// op->sym is a trailing array of the op (DPDK's layout): GCC 12 cannot see
// the room behind it.
#pragma GCC diagnostic ignored "-Warray-bounds"

namespace hde::dp {

namespace {

// The IV lives in the op's private area, then the frame's index in its burst.
constexpr std::uint32_t kIvOffset = sizeof(rte_crypto_op) + sizeof(rte_crypto_sym_op);
constexpr std::uint16_t kOpPriv = 16;  // 12-byte IV + 4-byte index
constexpr std::uint32_t kAadLen = wire::kFrameHeaderSize + sizeof(wire::seal_header);  // 48
constexpr std::uint32_t kQpDescriptors = 2048;

bool gcm256_ok(std::uint8_t dev) {
  rte_cryptodev_sym_capability_idx idx{};
  idx.type = RTE_CRYPTO_SYM_XFORM_AEAD;
  idx.algo.aead = RTE_CRYPTO_AEAD_AES_GCM;
  const rte_cryptodev_symmetric_capability *cap = rte_cryptodev_sym_capability_get(dev, &idx);
  return cap != nullptr && rte_cryptodev_sym_capability_check_aead(cap, 32, 16, kAadLen, 12) == 0;
}

std::uint64_t random64() {
  std::uint64_t v = 0;
  if (getrandom(&v, sizeof v, 0) != static_cast<ssize_t>(sizeof v))
    v = rte_rdtsc() * 0x9E3779B97F4A7C15ULL;  // getrandom cannot fail for 8 bytes after boot
  return v;
}

}  // namespace

// A key and its two sessions on the device; freed with the last key set
// that holds it.
struct key_entry {
  frame_key k;
  std::uint8_t dev = 0;
  void *enc = nullptr, *dec = nullptr;
  ~key_entry() {
    if (enc != nullptr)
      rte_cryptodev_sym_session_free(dev, enc);
    if (dec != nullptr)
      rte_cryptodev_sym_session_free(dev, dec);
    wipe();
  }
  void wipe() {
    volatile std::uint8_t *p = k.aes.data();
    for (std::size_t i = 0; i < k.aes.size(); ++i)
      p[i] = 0;
  }
};

// What the lanes read: keys[0] is the newest; keys[1], when n == 2, the one
// it replaced, still accepted during the grace period.
struct frame_crypto::key_set {
  std::shared_ptr<key_entry> keys[2];
  unsigned n = 0;
  const key_entry *find(std::uint8_t id) const {
    for (unsigned i = 0; i < n; ++i)
      if (keys[i]->k.id == id)
        return keys[i].get();
    return nullptr;
  }
};

// --- frame_crypto ----------------------------------------------------------------

frame_crypto::frame_crypto() = default;

frame_crypto::~frame_crypto() {
  lanes_.clear();
  for (auto &r : retired_)
    delete r.first;
  retired_.clear();
  delete cur_.exchange(nullptr);  // frees the sessions (lcores have stopped)
  if (started_) {
    rte_cryptodev_stop(dev_);
    rte_cryptodev_close(dev_);
  }
  rte_mempool_free(op_pool_);
  rte_mempool_free(sess_pool_);
  rte_free(qs_);
}

bool frame_crypto::init(const config &c, std::string &err) {
  const unsigned lanes = std::max(1u, c.lanes);
  const std::string qargs = "max_nb_queue_pairs=" + std::to_string(lanes);
  int id = -1;
  if (!c.device.empty()) {
    id = rte_cryptodev_get_dev_id(c.device.c_str());
    if (id < 0 && c.device.rfind("crypto_", 0) == 0 && rte_vdev_init(c.device.c_str(), qargs.c_str()) == 0)
      id = rte_cryptodev_get_dev_id(c.device.c_str());
    if (id < 0) {
      err = "no crypto device " + c.device + " (a vdev such as crypto_aesni_gcm0 or crypto_openssl0, or a "
            "device EAL found: give it with --vdev or -a)";
      return false;
    }
    if (!gcm256_ok(static_cast<std::uint8_t>(id))) {
      err = "crypto device " + c.device + " does not offer AES-256-GCM with a 16-byte tag";
      return false;
    }
  } else {
    for (std::uint8_t d = 0; d < rte_cryptodev_count() && id < 0; ++d)
      if (gcm256_ok(d))
        id = d;
    // None from EAL: the software PMDs, VAES/AES-NI first (ipsec_mb), then OpenSSL.
    for (const char *name : {"crypto_aesni_gcm_hde", "crypto_openssl_hde"}) {
      if (id >= 0)
        break;
      if (rte_vdev_init(name, qargs.c_str()) == 0) {
        const int d = rte_cryptodev_get_dev_id(name);
        if (d >= 0 && gcm256_ok(static_cast<std::uint8_t>(d)))
          id = d;
      }
    }
    if (id < 0) {
      err = "no crypto device with AES-256-GCM (the software PMDs crypto_aesni_gcm and crypto_openssl could "
            "not be created either: is DPDK's crypto driver package installed?)";
      return false;
    }
  }
  dev_ = static_cast<std::uint8_t>(id);
  dev_name_ = rte_cryptodev_name_get(dev_);
  rte_cryptodev_info info{};
  rte_cryptodev_info_get(dev_, &info);
  driver_ = info.driver_name != nullptr ? info.driver_name : "?";
  if (info.max_nb_queue_pairs < lanes) {
    err = "crypto device " + dev_name_ + " has " + std::to_string(info.max_nb_queue_pairs) +
          " queue pairs, the gateway needs " + std::to_string(lanes);
    return false;
  }
  int socket = rte_cryptodev_socket_id(dev_);
  if (socket < 0)
    socket = static_cast<int>(rte_socket_id());
  rte_cryptodev_config conf{};
  conf.socket_id = socket;
  conf.nb_queue_pairs = static_cast<std::uint16_t>(lanes);
  conf.ff_disable = RTE_CRYPTODEV_FF_ASYMMETRIC_CRYPTO | RTE_CRYPTODEV_FF_SECURITY;
  if (rte_cryptodev_configure(dev_, &conf) != 0) {
    err = "cannot configure crypto device " + dev_name_;
    return false;
  }
  const std::string sfx = std::to_string(dev_);  // one set of pools per device
  sess_pool_ = rte_cryptodev_sym_session_pool_create(("hde_csess" + sfx).c_str(), 64,
                                                      rte_cryptodev_sym_get_private_session_size(dev_), 0, 0, socket);
  op_pool_ = rte_crypto_op_pool_create(("hde_cops" + sfx).c_str(), RTE_CRYPTO_OP_TYPE_SYMMETRIC,
                                       lanes * crypto_lane::kMaxBurst * 2 + 1024, 64, kOpPriv, socket);
  if (sess_pool_ == nullptr || op_pool_ == nullptr) {
    err = "cannot create the crypto pools: " + std::string(rte_strerror(rte_errno));
    return false;
  }
  for (unsigned q = 0; q < lanes; ++q) {
    rte_cryptodev_qp_conf qc{};
    qc.nb_descriptors = kQpDescriptors;
    qc.mp_session = sess_pool_;
    if (rte_cryptodev_queue_pair_setup(dev_, static_cast<std::uint16_t>(q), &qc, socket) != 0) {
      err = "cannot set up crypto queue pair " + std::to_string(q) + " on " + dev_name_;
      return false;
    }
  }
  if (rte_cryptodev_start(dev_) != 0) {
    err = "cannot start crypto device " + dev_name_;
    return false;
  }
  started_ = true;
  const std::size_t qs_size = rte_rcu_qsbr_get_memsize(lanes);
  qs_ = static_cast<rte_rcu_qsbr *>(rte_zmalloc("hde_crypto_rcu", qs_size, RTE_CACHE_LINE_SIZE));
  if (qs_ == nullptr || rte_rcu_qsbr_init(qs_, lanes) != 0) {
    err = "cannot set up RCU for the crypto lanes";
    return false;
  }
  for (unsigned i = 0; i < lanes; ++i) {
    rte_rcu_qsbr_thread_register(qs_, i);
    lanes_.push_back(std::unique_ptr<crypto_lane>(new crypto_lane(*this, i)));
  }
  frame_key k;
  if (!load_frame_key(c.key_file, k, err))
    return false;
  auto e = make_key(k, err);
  if (!e)
    return false;
  auto *s = new key_set;
  s->keys[0] = std::move(e);
  s->n = 1;
  cur_.store(s, std::memory_order_release);
  grace_tsc_ = static_cast<std::uint64_t>(c.grace_s * static_cast<double>(rte_get_tsc_hz()));
  return true;
}

std::shared_ptr<key_entry> frame_crypto::make_key(const frame_key &k, std::string &err) {
  auto e = std::make_shared<key_entry>();
  e->k = k;
  e->dev = dev_;
  for (rte_crypto_aead_operation op : {RTE_CRYPTO_AEAD_OP_ENCRYPT, RTE_CRYPTO_AEAD_OP_DECRYPT}) {
    rte_crypto_sym_xform x{};
    x.type = RTE_CRYPTO_SYM_XFORM_AEAD;
    x.aead.op = op;
    x.aead.algo = RTE_CRYPTO_AEAD_AES_GCM;
    x.aead.key.data = e->k.aes.data();
    x.aead.key.length = 32;
    x.aead.iv.offset = kIvOffset;
    x.aead.iv.length = 12;
    x.aead.digest_length = wire::kSealTagSize;
    x.aead.aad_length = kAadLen;
    void *s = rte_cryptodev_sym_session_create(dev_, &x, sess_pool_);
    if (s == nullptr) {
      err = "cannot create a crypto session on " + dev_name_ + ": " + rte_strerror(rte_errno);
      return nullptr;
    }
    (op == RTE_CRYPTO_AEAD_OP_ENCRYPT ? e->enc : e->dec) = s;
  }
  return e;
}

const frame_crypto::key_set *frame_crypto::enter(unsigned lane) {
  rte_rcu_qsbr_thread_online(qs_, lane);
  return cur_.load(std::memory_order_acquire);
}

void frame_crypto::leave(unsigned lane) { rte_rcu_qsbr_thread_offline(qs_, lane); }

void frame_crypto::publish(key_set *s) {
  key_set *old = cur_.exchange(s, std::memory_order_acq_rel);
  if (old != nullptr)
    retired_.emplace_back(old, rte_rcu_qsbr_start(qs_));
}

bool frame_crypto::rotate(const std::string &path, std::string &err) {
  std::lock_guard<std::mutex> g(ctl_);
  frame_key k;
  if (!load_frame_key(path, k, err))
    return false;
  const key_set *cur = cur_.load(std::memory_order_acquire);
  if (cur->find(k.id) != nullptr) {
    err = cur->keys[0]->k.aes == k.aes ? "this key is the one in use"
                                       : "the new key's id (" + std::to_string(k.id) +
                                             ") equals that of a key held: make another key";
    return false;
  }
  auto e = make_key(k, err);
  if (!e)
    return false;
  auto *s = new key_set;
  s->keys[0] = std::move(e);
  s->keys[1] = cur->keys[0];  // a rotation within the grace period drops the oldest at once
  s->n = 2;
  publish(s);
  rotate_tsc_ = rte_get_tsc_cycles();
  ++rotations_;
  return true;
}

void frame_crypto::tick() {
  std::lock_guard<std::mutex> g(ctl_);
  const key_set *cur = cur_.load(std::memory_order_acquire);
  if (cur != nullptr && cur->n == 2 && rte_get_tsc_cycles() - rotate_tsc_ >= grace_tsc_) {
    auto *s = new key_set;
    s->keys[0] = cur->keys[0];
    s->n = 1;
    publish(s);
  }
  for (std::size_t i = 0; i < retired_.size();) {
    if (rte_rcu_qsbr_check(qs_, retired_[i].second, false) == 1) {
      delete retired_[i].first;
      retired_.erase(retired_.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
}

crypto_lane_stats frame_crypto::totals() const {
  crypto_lane_stats t{};
  for (const auto &l : lanes_) {
    const crypto_lane_stats &s = l->stats();
    t.sealed += __atomic_load_n(&s.sealed, __ATOMIC_RELAXED);
    t.seal_fail += __atomic_load_n(&s.seal_fail, __ATOMIC_RELAXED);
    t.opened += __atomic_load_n(&s.opened, __ATOMIC_RELAXED);
    t.auth_fail += __atomic_load_n(&s.auth_fail, __ATOMIC_RELAXED);
    t.unknown_key += __atomic_load_n(&s.unknown_key, __ATOMIC_RELAXED);
    t.unsealed += __atomic_load_n(&s.unsealed, __ATOMIC_RELAXED);
    t.bad_seal += __atomic_load_n(&s.bad_seal, __ATOMIC_RELAXED);
    t.bytes += __atomic_load_n(&s.bytes, __ATOMIC_RELAXED);
  }
  return t;
}

frame_crypto::status frame_crypto::get_status() const {
  status st;
  st.device = dev_name_;
  st.driver = driver_;
  // The control thread is the only writer of cur_: the set it reads here
  // cannot be retired meanwhile (get_status runs there too).
  const key_set *cur = cur_.load(std::memory_order_acquire);
  if (cur != nullptr) {
    st.newest_id = cur->keys[0]->k.id;
    if (cur->n == 2) {
      st.old_id = cur->keys[1]->k.id;
      const double hz = static_cast<double>(rte_get_tsc_hz());
      const double left = (static_cast<double>(grace_tsc_) - static_cast<double>(rte_get_tsc_cycles() - rotate_tsc_)) / hz;
      st.grace_left_s = left > 0 ? left : 0;
    }
  }
  st.peer_accepts = peer_accepts_.load(std::memory_order_relaxed);
  st.sending_newest = cur == nullptr || cur->n == 1 || st.peer_accepts == st.newest_id;
  st.rotations = rotations_;
  st.total = totals();
  return st;
}

// --- crypto_lane ---------------------------------------------------------------------

crypto_lane::crypto_lane(frame_crypto &c, unsigned id)
    : c_(c), id_(id), qp_(static_cast<std::uint16_t>(id)), ctr_(std::make_unique<std::uint64_t[]>(256)) {
  // Each (direction, stream) counter starts at a random 64-bit value at
  // every start of the gateway: nonces of two runs under one key meet only
  // if their ranges of 2^64 overlap.
  for (unsigned i = 0; i < 256; ++i)
    ctr_[i] = random64();
}

// Hand the burst to the device and collect it back in order (a queue pair is
// first in, first out). A software PMD completes at enqueue; a device is
// polled until it has returned every op.
unsigned crypto_lane::run(rte_crypto_op **ops, unsigned n) {
  unsigned enq = 0, deq = 0;
  rte_crypto_op *done[kMaxBurst];
  while (deq < n) {
    if (enq < n)
      enq += rte_cryptodev_enqueue_burst(c_.dev_, qp_, ops + enq, static_cast<std::uint16_t>(n - enq));
    const unsigned d = rte_cryptodev_dequeue_burst(c_.dev_, qp_, done + deq, static_cast<std::uint16_t>(n - deq));
    deq += d;
    if (d == 0)
      rte_pause();
  }
  std::memcpy(ops, done, n * sizeof *ops);
  return n;
}

namespace {

// Fill the op for sealing the frame at p (header already in place with
// payload_len = plen of clear records, which sit at p + 48).
void fill_seal(rte_mbuf *m, std::byte *p, std::uint32_t plen, const key_entry &k, std::uint8_t dir,
               std::uint8_t accepts, std::uint32_t time_s, std::uint64_t nonce, rte_crypto_op *op) {
  auto h = wire::load<wire::frame_header>(p);
  h.flags = static_cast<std::uint16_t>(h.flags | wire::kFrameFlagSealed);
  h.payload_len = static_cast<std::uint16_t>(plen + wire::kSealOverhead);
  h.crc = 0;
  wire::store(p, h);
  const wire::seal_header sh{k.k.id, accepts, dir, 0, time_s, nonce};
  wire::store(p + wire::kFrameHeaderSize, sh);
  m->data_len = static_cast<std::uint16_t>(kL2L4 + wire::kFrameHeaderSize + wire::kSealOverhead + plen);
  m->pkt_len = m->data_len;
  auto *iv = rte_crypto_op_ctod_offset(op, std::uint8_t *, kIvOffset);
  iv[0] = k.k.id;
  iv[1] = dir;
  std::memcpy(iv + 2, &h.stream, 2);
  std::memcpy(iv + 4, &nonce, 8);
  rte_crypto_op_attach_sym_session(op, k.enc);
  rte_crypto_sym_op *s = op->sym;
  s->m_src = m;
  s->m_dst = nullptr;
  s->aead.data.offset = kL2L4 + kAadLen;
  s->aead.data.length = plen;
  s->aead.digest.data = reinterpret_cast<std::uint8_t *>(p + kAadLen + plen);
  s->aead.digest.phys_addr = rte_pktmbuf_iova_offset(m, kL2L4 + kAadLen + plen);
  s->aead.aad.data = reinterpret_cast<std::uint8_t *>(p);
  s->aead.aad.phys_addr = rte_pktmbuf_iova_offset(m, kL2L4);
}

bool room_for(const rte_mbuf *m, std::uint32_t plen) {
  return static_cast<std::uint32_t>(m->data_off) + kL2L4 + wire::kFrameHeaderSize + wire::kSealOverhead + plen <=
         m->buf_len;
}

}  // namespace

unsigned crypto_lane::seal(rte_mbuf *const *in, unsigned n, rte_mbuf **out, std::uint8_t dir, const bool *copy,
                           rte_mempool *pool) {
  unsigned made = 0;
  for (unsigned base = 0; base < n; base += kMaxBurst) {
    const unsigned cnt = std::min(kMaxBurst, n - base);
    rte_crypto_op *ops[kMaxBurst];
    if (rte_crypto_op_bulk_alloc(c_.op_pool_, RTE_CRYPTO_OP_TYPE_SYMMETRIC, ops, static_cast<std::uint16_t>(cnt)) == 0) {
      for (unsigned i = 0; i < cnt; ++i)
        if (copy == nullptr || !copy[base + i])
          rte_pktmbuf_free(in[base + i]);
      st_.seal_fail += cnt;
      continue;
    }
    const auto now_s = static_cast<std::uint32_t>(std::time(nullptr));
    const frame_crypto::key_set *ks = c_.enter(id_);
    const key_entry &newest = *ks->keys[0];
    const key_entry &k =
        ks->n == 1 || c_.peer_accepts_.load(std::memory_order_relaxed) == newest.k.id ? newest : *ks->keys[1];
    unsigned staged = 0;
    for (unsigned i = 0; i < cnt; ++i) {
      rte_mbuf *src = in[base + i];
      const bool cp = copy != nullptr && copy[base + i];
      auto *sp = rte_pktmbuf_mtod_offset(src, std::byte *, kL2L4);
      const auto h = wire::load<wire::frame_header>(sp);
      rte_mbuf *f = h.stream >= 256 ? nullptr : cp ? rte_pktmbuf_alloc(pool) : src;
      if (f == nullptr || !room_for(f, h.payload_len)) {
        if (f != nullptr && (cp || f == src))
          rte_pktmbuf_free(f);
        else if (!cp)
          rte_pktmbuf_free(src);
        ++st_.seal_fail;
        continue;
      }
      auto *p = rte_pktmbuf_mtod_offset(f, std::byte *, kL2L4);
      if (cp) {
        std::memcpy(p, sp, wire::kFrameHeaderSize);
        std::memcpy(p + kAadLen, sp + wire::kFrameHeaderSize, h.payload_len);
      } else {
        std::memmove(p + kAadLen, p + wire::kFrameHeaderSize, h.payload_len);
      }
      fill_seal(f, p, h.payload_len, k, dir, newest.k.id, now_s, ctr_[h.stream]++, ops[staged++]);
    }
    run(ops, staged);
    c_.leave(id_);
    for (unsigned i = 0; i < staged; ++i) {
      rte_mbuf *f = ops[i]->sym->m_src;
      if (ops[i]->status == RTE_CRYPTO_OP_STATUS_SUCCESS) {
        auto *p = rte_pktmbuf_mtod_offset(f, std::byte *, kL2L4);
        const std::size_t len = f->data_len - kL2L4;
        wire::seal_frame({p, len});
        ++st_.sealed;
        st_.bytes += len - wire::kFrameHeaderSize - wire::kSealOverhead;
        out[made++] = f;
      } else {
        rte_pktmbuf_free(f);
        ++st_.seal_fail;
      }
    }
    rte_mempool_put_bulk(c_.op_pool_, reinterpret_cast<void **>(ops), cnt);
  }
  return made;
}

unsigned crypto_lane::open(rte_mbuf *const *m, unsigned n, std::uint8_t dir, bool *ok, std::uint32_t *sent_s) {
  unsigned opened = 0;
  for (unsigned i = 0; i < n; ++i)
    ok[i] = false;
  for (unsigned base = 0; base < n; base += kMaxBurst) {
    const unsigned cnt = std::min(kMaxBurst, n - base);
    rte_crypto_op *ops[kMaxBurst];
    if (rte_crypto_op_bulk_alloc(c_.op_pool_, RTE_CRYPTO_OP_TYPE_SYMMETRIC, ops, static_cast<std::uint16_t>(cnt)) == 0) {
      st_.seal_fail += cnt;  // no op: not a verdict on the frames, which the caller drops unopened
      continue;
    }
    const frame_crypto::key_set *ks = c_.enter(id_);
    unsigned staged = 0;
    for (unsigned i = 0; i < cnt; ++i) {
      rte_mbuf *f = m[base + i];
      auto *p = rte_pktmbuf_mtod_offset(f, std::byte *, kL2L4);
      auto h = wire::load<wire::frame_header>(p);
      if ((h.flags & wire::kFrameFlagSealed) == 0) {
        ++st_.unsealed;
        continue;
      }
      if (h.payload_len < wire::kSealOverhead || f->data_len < kL2L4 + wire::kFrameHeaderSize + h.payload_len) {
        ++st_.bad_seal;
        continue;
      }
      const auto sh = wire::load<wire::seal_header>(p + wire::kFrameHeaderSize);
      if (sh.dir != dir) {  // a frame of the other direction reflected back at us
        ++st_.bad_seal;
        continue;
      }
      const key_entry *k = ks->find(sh.key_id);
      if (k == nullptr) {
        ++st_.unknown_key;
        continue;
      }
      const std::uint32_t clen = h.payload_len - static_cast<std::uint32_t>(wire::kSealOverhead);
      h.crc = 0;  // the associated data is the header with crc = 0
      wire::store(p, h);
      rte_crypto_op *op = ops[staged++];
      auto *iv = rte_crypto_op_ctod_offset(op, std::uint8_t *, kIvOffset);
      iv[0] = sh.key_id;
      iv[1] = dir;
      std::memcpy(iv + 2, &h.stream, 2);
      std::memcpy(iv + 4, &sh.nonce, 8);
      const std::uint32_t index = base + i;
      std::memcpy(iv + 12, &index, 4);
      rte_crypto_op_attach_sym_session(op, k->dec);
      rte_crypto_sym_op *s = op->sym;
      s->m_src = f;
      s->m_dst = nullptr;
      s->aead.data.offset = kL2L4 + kAadLen;
      s->aead.data.length = clen;
      s->aead.digest.data = reinterpret_cast<std::uint8_t *>(p + kAadLen + clen);
      s->aead.digest.phys_addr = rte_pktmbuf_iova_offset(f, kL2L4 + kAadLen + clen);
      s->aead.aad.data = reinterpret_cast<std::uint8_t *>(p);
      s->aead.aad.phys_addr = rte_pktmbuf_iova_offset(f, kL2L4);
    }
    run(ops, staged);
    c_.leave(id_);
    for (unsigned j = 0; j < staged; ++j) {
      rte_crypto_op *op = ops[j];
      std::uint32_t index;
      std::memcpy(&index, rte_crypto_op_ctod_offset(op, std::uint8_t *, kIvOffset + 12), 4);
      rte_mbuf *f = op->sym->m_src;
      if (op->status != RTE_CRYPTO_OP_STATUS_SUCCESS) {
        ++st_.auth_fail;
        continue;
      }
      // Back to the clear layout: the seal header out (the envelope and
      // frame header move up over it), the tag trimmed, the CRC recomputed
      // for the records as the rest of the pipeline checks it.
      auto *p = rte_pktmbuf_mtod_offset(f, std::byte *, kL2L4);
      auto h = wire::load<wire::frame_header>(p);
      const auto sh = wire::load<wire::seal_header>(p + wire::kFrameHeaderSize);
      if (c_.peer_accepts_.load(std::memory_order_relaxed) != sh.accepts)
        c_.peer_accepts_.store(sh.accepts, std::memory_order_relaxed);
      const std::uint32_t clen = h.payload_len - static_cast<std::uint32_t>(wire::kSealOverhead);
      auto *start = rte_pktmbuf_mtod(f, std::byte *);
      std::memmove(start + sizeof(wire::seal_header), start, kL2L4 + wire::kFrameHeaderSize);
      rte_pktmbuf_adj(f, sizeof(wire::seal_header));
      p = rte_pktmbuf_mtod_offset(f, std::byte *, kL2L4);
      h.flags = static_cast<std::uint16_t>(h.flags & ~wire::kFrameFlagSealed);
      h.payload_len = static_cast<std::uint16_t>(clen);
      wire::store(p, h);
      f->data_len = static_cast<std::uint16_t>(kL2L4 + wire::kFrameHeaderSize + clen);
      f->pkt_len = f->data_len;
      wire::seal_frame({p, wire::kFrameHeaderSize + clen});
      ok[index] = true;
      if (sent_s != nullptr)
        sent_s[index] = sh.time_s;
      ++opened;
      ++st_.opened;
      st_.bytes += clen;
    }
    rte_mempool_put_bulk(c_.op_pool_, reinterpret_cast<void **>(ops), cnt);
  }
  return opened;
}

}  // namespace hde::dp
