// qemu_ingress.cpp — see qemu_ingress.h.
#include "qemu_ingress.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <poll.h>
#include <rte_errno.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include "source.h"
#include "wire/format.h"

namespace hde::dp {

namespace {

// A mempool element: the work item and the page it carries (or a piece of
// opaque bytes, or nothing for a mark).
struct qemu_item {
  work_item wi;
  alignas(64) std::byte page[kPageSize];
};
static_assert(offsetof(qemu_item, wi) == 0);

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

constexpr std::size_t kReadBytes = 256 * 1024;

}  // namespace

const char *to_string(qemu_state s) {
  switch (s) {
  case qemu_state::listening: return "listening";
  case qemu_state::setup: return "setup";
  case qemu_state::iterating: return "iterating";
  case qemu_state::switchover: return "switchover";
  case qemu_state::done: return "done";
  case qemu_state::failed: return "failed";
  }
  return "?";
}

// The main channel's events.
struct qemu_ingress::events final : qemu::main_events {
  explicit events(qemu_ingress &q) : q(q), parser(*this) {}
  void on_opaque(std::span<const std::byte> b) override { q.pend_.insert(q.pend_.end(), b.begin(), b.end()); }
  void on_layout(const qemu::ram_layout &) override {}
  void on_page(std::size_t block, std::uint64_t offset, const std::byte *data) override {
    if (!q.push_page(block, offset, data))
      stopped = true;
  }
  void on_zero(std::size_t block, std::uint64_t offset, std::uint8_t fill) override {
    work_item *it = q.get_item();
    if (it == nullptr) {
      stopped = true;
      return;
    }
    auto *qi = reinterpret_cast<qemu_item *>(it);
    std::memset(qi->page, fill, kPageSize);
    it->page = page_in{page_key{q.vm_, parser.layout().gfn(block, offset)}, qi->page};
    ++q.st_.zero_pages;
    q.note_page(it->page.key.gfn);
    if (!q.push_counted(it))
      stopped = true;
  }
  void on_ram_eos(bool complete) override {
    if (!q.barrier(complete))
      stopped = true;
  }
  qemu_ingress &q;
  qemu::main_parser parser;
  bool stopped = false;  // stop or failure inside a callback
};

// A multifd channel. Pages after the channel's SYNC for the barrier not yet
// taken belong to a later interval: they wait (deferred) so that no page
// crosses a barrier (an older version of a page on another channel may
// still be on its way to that barrier).
struct qemu_ingress::channel final : qemu::multifd_events {
  channel(qemu_ingress &q, int fd, std::FILE *rec) : q(q), fd(fd), parser(*this), rec(rec) {}
  ~channel() override {
    if (fd >= 0)
      close(fd);
    if (rec != nullptr)
      std::fclose(rec);
  }
  void on_init(std::span<const std::byte> init, std::uint8_t ch) override {
    id = ch;
    have_init = true;
    std::memcpy(q.uuid_, init.data() + 8, 16);
  }
  void on_packet(const qemu::multifd_packet &p) override {
    ++q.st_.multifd_packets;
    if (p.pages != 0) {
      const int b = q.ev_->parser.layout().find(p.block);
      if (b < 0) {
        q.fail("multifd packet names RAM block '" + std::string(p.block) + "' the stream did not announce");
        return;
      }
      for (std::uint32_t i = 0; i < p.pages; ++i) {
        work_item *it = q.make_page(static_cast<std::size_t>(b), p.offsets[i], p.data + i * kPageSize);
        if (it == nullptr)
          return;
        if (syncs + 1 == q.chunk_ && deferred.empty())
          q.push_counted(it);
        else
          deferred.push_back({syncs + 1, it});
      }
    }
    if (p.sync())
      ++syncs;
  }
  qemu_ingress &q;
  int fd;
  qemu::multifd_parser parser;
  int id = -1;
  bool have_init = false, eof = false;
  bool stray = false;  // not a multifd channel: ignored
  std::uint32_t syncs = 0;
  std::vector<std::pair<std::uint32_t, work_item *>> deferred;  // (interval, item)
  std::FILE *rec;  // --qemu-record
};

namespace {
// --qemu-record DIR: DIR/vm-<id>/<name>.
std::FILE *record_file(const options &o, std::uint32_t vm, const std::string &name) {
  if (o.qemu_record.empty())
    return nullptr;
  const std::string dir = o.qemu_record + "/vm-" + std::to_string(vm);
  mkdir(dir.c_str(), 0755);
  std::FILE *f = std::fopen((dir + "/" + name).c_str(), "wb");
  if (f == nullptr)
    std::fprintf(stderr, "hde-gateway: qemu: cannot record to %s/%s: %s\n", dir.c_str(), name.c_str(),
                 std::strerror(errno));
  return f;
}
}  // namespace

qemu_ingress::qemu_ingress(const options &o, std::vector<worker *> workers, std::uint32_t vm, std::string addr)
    : o_(o), w_(std::move(workers)), vm_(vm), addr_text_(std::move(addr)), counts_(w_.size(), 0) {}

qemu_ingress::~qemu_ingress() {
  stop();
  if (lfd_ >= 0)
    close(lfd_);
  if (!addr_.path.empty() && addr_.is_unix)
    unlink(addr_.path.c_str());
  if (pool_ != nullptr)
    rte_mempool_free(pool_);
}

bool qemu_ingress::start(std::string &err) {
  if (!parse_qemu_addr(addr_text_, addr_, err))
    return false;
  // What waits here is what the final pages wait behind at the switchover:
  // by default 0.1 s of raw pages at the link rate (a few tens of ms on the
  // wire once encoded), 2 to 256 MiB.
  std::size_t mb = o_.qemu_buffer_mb;
  if (mb == 0)
    mb = o_.link_rate_bps == 0 ? 64 : std::clamp<std::size_t>(o_.link_rate_bps / 8 / 10 >> 20, 2, 256);
  buffer_mb_ = mb;
  const unsigned n = static_cast<unsigned>((mb << 20) / kPageSize);
  // Single consumer (this thread takes items), several producers (workers
  // put them back); no per-lcore cache: the thread is not an lcore.
  const std::string name = "hde_qemu_vm" + std::to_string(vm_);
  pool_ = rte_mempool_create(name.c_str(), n, sizeof(qemu_item), 0, 0, nullptr, nullptr, nullptr, nullptr,
                             static_cast<int>(rte_socket_id()), RTE_MEMPOOL_F_SC_GET);
  if (pool_ == nullptr) {
    err = "cannot create the QEMU page buffer (" + std::to_string(mb) +
          " MiB, --qemu-buffer-mb): " + rte_strerror(rte_errno) + " (give EAL more memory: -m MB)";
    return false;
  }
  lfd_ = qemu_listen(addr_, err);
  if (lfd_ < 0)
    return false;
  th_ = std::thread([this] { run(); });
  return true;
}

void qemu_ingress::stop() {
  stop_.store(true);
  if (th_.joinable())
    th_.join();
}

void qemu_ingress::abort(const std::string &why) {
  if (abort_.load())
    return;
  {
    std::lock_guard<std::mutex> g(abort_mu_);
    abort_why_ = why;
  }
  abort_.store(true, std::memory_order_release);
}

std::string qemu_ingress::reason() const {
  return reason_set_.load(std::memory_order_acquire) ? reason_ : std::string();
}

void qemu_ingress::fail(const std::string &why) {
  if (failed_.load())
    return;
  reason_ = why;
  reason_set_.store(true, std::memory_order_release);
  st_.state.store(static_cast<int>(qemu_state::failed));
  st_.end_ns.store(now_ns());
  std::fprintf(stderr, "hde-gateway: qemu: VM %u: migration failed: %s\n", vm_, why.c_str());
  // run() closes QEMU's sockets as soon as serve() returns: its migration
  // fails and the guest runs on.
  failed_.store(true, std::memory_order_release);
}

work_item *qemu_ingress::get_item() {
  void *p = nullptr;
  std::uint64_t t0 = 0;
  while (rte_mempool_get(pool_, &p) != 0) {
    if (stop_.load() || failed_.load() || abort_.load())
      return nullptr;
    if (t0 == 0)
      t0 = now_ns();
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
  if (t0 != 0)
    st_.stall_us += (now_ns() - t0) / 1000;
  auto *qi = static_cast<qemu_item *>(p);
  qi->wi = work_item{};
  qi->wi.pool = pool_;
  return &qi->wi;
}

bool qemu_ingress::push(std::uint32_t w, work_item *it) {
  while (rte_ring_enqueue(w_[w]->in(), it) != 0) {
    if (stop_.load() || failed_.load() || abort_.load()) {
      rte_mempool_put(pool_, it);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
  return true;
}

work_item *qemu_ingress::make_page(std::size_t block, std::uint64_t offset, const std::byte *data) {
  work_item *it = get_item();
  if (it == nullptr)
    return nullptr;
  auto *qi = reinterpret_cast<qemu_item *>(it);
  std::memcpy(qi->page, data, kPageSize);
  it->page = page_in{page_key{vm_, ev_->parser.layout().gfn(block, offset)}, qi->page};
  ++st_.pages;
  note_page(it->page.key.gfn);
  return it;
}

// Dirty rounds as `show migrations` tells them: QEMU sends a page once per
// pass over its dirty bitmap, so the first page sent a second time in the
// current round begins the next one.
void qemu_ingress::note_page(std::uint64_t gfn) {
  if (sent_round_.empty())
    sent_round_.assign(ev_->parser.layout().pages(), 0);
  if (gfn >= sent_round_.size())
    return;
  const std::uint32_t r = st_.round.load(std::memory_order_relaxed);
  // QEMU syncs its dirty bitmap between RAM sections only: one round at most per section.
  if (sent_round_[gfn] == static_cast<std::uint16_t>(r + 1) && round_section_ != chunk_) {
    st_.round.store(r + 1, std::memory_order_relaxed);
    round_section_ = chunk_;
  }
  sent_round_[gfn] = static_cast<std::uint16_t>(st_.round.load(std::memory_order_relaxed) + 1);
}

bool qemu_ingress::push_counted(work_item *it) {
  const std::uint32_t w = worker_of(it->page.key, w_.size());
  ++counts_[w];
  return push(w, it);
}

bool qemu_ingress::push_page(std::size_t block, std::uint64_t offset, const std::byte *data) {
  work_item *it = make_page(block, offset, data);
  return it != nullptr && push_counted(it);
}

// One OPAQUE piece (at most a page of bytes) on stream 0.
bool qemu_ingress::push_piece(const std::byte *bytes, std::size_t n, std::uint32_t flags) {
  work_item *it = get_item();
  if (it == nullptr)
    return false;
  auto *qi = reinterpret_cast<qemu_item *>(it);
  if (n != 0)
    std::memcpy(qi->page, bytes, n);
  it->is_opaque = true;
  it->page.key.vm = vm_;
  it->round = chunk_;
  it->opaque = qi->page;
  it->opaque_len = static_cast<std::uint32_t>(n);
  it->opaque_flags = flags;
  return push(0, it);
}

// Opaque bytes pend_[0, upto) in pieces of at most a page; flags on the last
// piece (an empty one when there are no bytes).
bool qemu_ingress::push_opaque(std::size_t upto, std::uint32_t flags) {
  std::size_t off = 0;
  do {
    const std::size_t n = std::min(upto - off, kPageSize);
    if (!push_piece(pend_.data() + off, n, off + n == upto ? flags : 0u))
      return false;
    off += n;
  } while (off < upto);
  st_.opaque_bytes += upto;
  pend_.erase(pend_.begin(), pend_.begin() + static_cast<std::ptrdiff_t>(upto));
  return true;
}

// A MARK for the current barrier on every worker: the pages each got since
// the last one; `last`: the VM's stream ended.
bool qemu_ingress::push_marks(bool last) {
  for (std::uint32_t w = 0; w < w_.size(); ++w) {
    work_item *it = get_item();
    if (it == nullptr)
      return false;
    it->page.key.vm = vm_;
    it->round = chunk_;
    it->round_pages = counts_[w];
    it->last = last;
    counts_[w] = 0;
    if (!push(w, it))
      return false;
  }
  return true;
}

void qemu_ingress::accept_channels() {
  for (;;) {
    const int fd = accept4(lfd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
      return;
    chans_.push_back(
        std::make_unique<channel>(*this, fd, record_file(o_, vm_, "multifd-" + std::to_string(chans_.size()) + ".bin")));
    st_.channels.store(static_cast<std::uint32_t>(chans_.size()));
  }
}

bool qemu_ingress::read_channel(channel &c) {
  std::byte buf[64 * 1024];
  const ssize_t n = recv(c.fd, buf, sizeof buf, 0);
  if (n == 0) {
    c.eof = true;
    return true;
  }
  if (n < 0)
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  st_.bytes_in += static_cast<std::uint64_t>(n);
  if (c.rec != nullptr)
    std::fwrite(buf, 1, static_cast<std::size_t>(n), c.rec);
  if (c.parser.feed({buf, static_cast<std::size_t>(n)}) != qemu::stream_error::ok && !c.have_init) {
    // Not a multifd channel of this migration (another client on the
    // address): dropped, the migration goes on.
    std::fprintf(stderr, "hde-gateway: qemu: VM %u: dropped a connection that is not a multifd channel (%s)\n", vm_,
                 std::string(qemu::to_string(c.parser.error())).c_str());
    close(c.fd);
    c.fd = -1;
    c.eof = true;
    c.stray = true;
    return true;
  }
  if (c.parser.error() != qemu::stream_error::ok) {
    fail("refusing the migration: " + (c.parser.detail().empty() ? std::string(qemu::to_string(c.parser.error()))
                                                                  : c.parser.detail()));
    return false;
  }
  return !failed_.load();
}

// Read the multifd channels that are still short of the current barrier's
// SYNC (the others wait), up to timeout_ms.
bool qemu_ingress::pump_multifd(int timeout_ms) {
  std::vector<pollfd> pf;
  std::vector<channel *> who;
  for (auto &c : chans_)
    if (!c->eof && c->syncs < chunk_) {
      pf.push_back({c->fd, POLLIN, 0});
      who.push_back(c.get());
    }
  if (pf.empty())
    return true;
  if (poll(pf.data(), pf.size(), timeout_ms) < 0)
    return errno == EINTR;
  for (std::size_t i = 0; i < pf.size(); ++i)
    if ((pf[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0 && !read_channel(*who[i]))
      return false;
  return true;
}

// A RAM EOS: the EOS record is the last 8 bytes of pend_.
bool qemu_ingress::barrier(bool complete) {
  if (chunk_ == 1)
    accept_channels();  // QEMU connects every multifd channel and syncs it before the first EOS
  for (;;) {
    bool all = true;
    for (auto &c : chans_) {
      if (c->stray)
        continue;
      if (c->syncs < chunk_ && c->eof) {
        fail("multifd channel " + std::to_string(c->id) + " closed before its SYNC");
        return false;
      }
      all = all && c->syncs >= chunk_;
    }
    if (all)
      break;
    if (stop_.load() || failed_.load() || abort_.load() || !pump_multifd(100))
      return false;
  }
  // The first barrier tells the destination how many multifd channels to open.
  const auto channels = std::count_if(chans_.begin(), chans_.end(), [](auto &c) { return !c->stray; });
  if (chunk_ == 1 && channels != 0) {
    wire::multifd_meta m{};
    m.channels = static_cast<std::uint32_t>(channels);
    std::memcpy(m.uuid, uuid_, 16);
    if (!push_piece(reinterpret_cast<const std::byte *>(&m), sizeof m, wire::kOpaqueMultifd))
      return false;
  }
  if (!push_opaque(pend_.size() - 8, wire::kOpaqueChunkEnd) || !push_marks(false))
    return false;
  ++chunk_;
  st_.barriers.store(chunk_ - 1);
  if (complete) {
    st_.state.store(static_cast<int>(qemu_state::switchover));
    st_.switchover_ns.store(now_ns());
  } else if (chunk_ == 2) {
    st_.state.store(static_cast<int>(qemu_state::iterating));
  }
  // Pages that waited for this barrier (read past a SYNC) go now, in order.
  for (auto &c : chans_) {
    std::size_t i = 0;
    for (; i < c->deferred.size() && c->deferred[i].first == chunk_; ++i)
      if (!push_counted(c->deferred[i].second))
        return false;
    c->deferred.erase(c->deferred.begin(), c->deferred.begin() + static_cast<std::ptrdiff_t>(i));
  }
  return true;
}

void qemu_ingress::run() {
  st_.state.store(static_cast<int>(qemu_state::listening));
  int fd = -1;
  while (!stop_.load()) {
    pollfd p{lfd_, POLLIN, 0};
    if (poll(&p, 1, 100) > 0) {
      fd = accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0)
        break;
    }
  }
  if (fd < 0)
    return;
  st_.start_ns.store(now_ns());
  st_.state.store(static_cast<int>(qemu_state::setup));
  if (!o_.quiet)
    std::printf("hde-gateway: qemu: migration accepted on %s (VM %u)\n", addr_.text.c_str(), vm_);
  std::fflush(stdout);
  const bool ok = serve(fd);
  close(fd);
  chans_.clear();
  if (!ok) {
    if (!failed_.load() && abort_.load()) {
      std::lock_guard<std::mutex> g(abort_mu_);
      fail(abort_why_);
    }
    if (!failed_.load())
      fail("stopped");
    // Tell the destination to drop the VM (best effort: the rings may be full).
    if (!stop_.load()) {
      pend_.clear();
      failed_.store(false);  // get_item() and push() give up on a failure
      push_opaque(0, wire::kOpaqueAbort);
      failed_.store(true, std::memory_order_release);
    }
  }
}

bool qemu_ingress::serve(int fd) {
  ev_ = std::make_unique<events>(*this);
  std::vector<std::byte> buf(kReadBytes);
  std::unique_ptr<std::FILE, int (*)(std::FILE *)> rec(record_file(o_, vm_, "main.bin"), [](std::FILE *f) {
    return f != nullptr ? std::fclose(f) : 0;
  });
  for (;;) {
    if (stop_.load() || abort_.load())
      return false;
    std::vector<pollfd> pf{{fd, POLLIN, 0}, {lfd_, POLLIN, 0}};
    std::vector<channel *> who;
    if (chunk_ > 1)  // before the first barrier the layout may not be known yet
      for (auto &c : chans_)
        if (!c->eof && c->syncs < chunk_) {
          pf.push_back({c->fd, POLLIN, 0});
          who.push_back(c.get());
        }
    if (poll(pf.data(), pf.size(), 100) < 0) {
      if (errno == EINTR)
        continue;
      fail(std::string("poll: ") + std::strerror(errno));
      return false;
    }
    if ((pf[1].revents & POLLIN) != 0)
      accept_channels();
    for (std::size_t i = 2; i < pf.size(); ++i)
      if ((pf[i].revents & (POLLIN | POLLHUP | POLLERR)) != 0 && !read_channel(*who[i - 2]))
        return false;
    if ((pf[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0)
      continue;
    const ssize_t n = recv(fd, buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN)
        continue;
      fail(std::string("reading QEMU's main channel: ") + std::strerror(errno));
      return false;
    }
    if (n == 0) {
      if (!ev_->parser.ram_complete()) {
        fail("QEMU closed the migration before RAM was complete (migrate_cancel, or QEMU failed)");
        return false;
      }
      // The end: device state, EOF and the VM description are in pend_.
      if (!push_opaque(pend_.size(), wire::kOpaqueStreamEnd) || !push_marks(true))
        return false;
      st_.end_ns.store(now_ns());
      st_.state.store(static_cast<int>(qemu_state::done));
      finished_.store(true, std::memory_order_release);
      if (!o_.quiet)
        std::printf("hde-gateway: qemu: VM %u: QEMU's stream ended: %llu pages (%llu zero), %llu opaque bytes, "
                    "%u barriers, %u multifd channel(s)\n",
                    vm_, (unsigned long long)st_.pages.load(), (unsigned long long)st_.zero_pages.load(),
                    (unsigned long long)st_.opaque_bytes.load(), st_.barriers.load(), st_.channels.load());
      std::fflush(stdout);
      return true;
    }
    st_.bytes_in += static_cast<std::uint64_t>(n);
    if (rec)
      std::fwrite(buf.data(), 1, static_cast<std::size_t>(n), rec.get());
    if (ev_->parser.feed({buf.data(), static_cast<std::size_t>(n)}) != qemu::stream_error::ok) {
      // detail() names the error, where, and why.
      fail("refusing the migration: " + (ev_->parser.detail().empty()
                                             ? std::string(qemu::to_string(ev_->parser.error()))
                                             : ev_->parser.detail()));
      return false;
    }
    if (ev_->stopped || failed_.load())
      return false;
    if (pend_.size() >= kPageSize && !push_opaque(pend_.size(), 0))
      return false;
  }
}

}  // namespace hde::dp
