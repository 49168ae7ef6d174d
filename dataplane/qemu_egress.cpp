// qemu_egress.cpp — see qemu_egress.h.
#include "qemu_egress.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <sys/socket.h>
#include <unistd.h>

#include "page/zero.h"
#include "qemu/migration_stream.h"
#include "qemu_net.h"
#include "wire/format.h"

namespace hde::dp {

namespace {
std::uint64_t now_us() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}
}  // namespace

struct qemu_egress::session {
  std::deque<piece> q;  // mu_
  std::thread th;
};

qemu_egress::qemu_egress(const options &o, image_sink &img, std::function<std::uint32_t()> streams)
    : o_(o), img_(img), streams_(std::move(streams)) {
  img_.track_dirty();
  expected_ = 1 + static_cast<std::uint32_t>(std::count(o.qemu_connect.begin(), o.qemu_connect.end(), ','));
}

qemu_egress::~qemu_egress() { stop(); }

void qemu_egress::stop() {
  stop_.store(true);
  cv_.notify_all();
  std::vector<std::thread> ts;
  {
    std::lock_guard<std::mutex> g(mu_);
    for (auto &s : sessions_)
      if (s && s->th.joinable())
        ts.push_back(std::move(s->th));
  }
  for (auto &t : ts)
    t.join();
}

bool qemu_egress::done() const {
  const std::uint32_t n = std::max(vms_.load(std::memory_order_acquire), expected_);
  return finished_.load(std::memory_order_acquire) == n;
}

std::string qemu_egress::reason() const {
  std::lock_guard<std::mutex> g(mu_);
  return reason_;
}

void qemu_egress::fail(std::uint32_t vm, const std::string &why) {
  {
    std::lock_guard<std::mutex> g(mu_);
    if (reason_.empty())
      reason_ = "VM " + std::to_string(vm) + ": " + why;
  }
  st_[vm].state.store(3);
  std::fprintf(stderr, "hde-gateway: qemu: VM %u: destination failed: %s\n", vm, why.c_str());
  failed_.store(true, std::memory_order_release);
}

void qemu_egress::on_opaque(std::uint32_t vm, std::uint32_t chunk, std::uint32_t flags, const std::byte *p,
                            std::size_t n) {
  if (vm >= kMaxVms)
    return;
  std::lock_guard<std::mutex> g(mu_);
  if (sessions_.size() <= vm)
    sessions_.resize(vm + 1);
  if (!sessions_[vm]) {
    sessions_[vm] = std::make_unique<session>();
    vms_.store(std::max<std::uint32_t>(vms_.load(), vm + 1), std::memory_order_release);
    sessions_[vm]->th = std::thread([this, vm] { run(vm); });
  }
  sessions_[vm]->q.push_back(piece{chunk, flags, std::vector<std::byte>(p, p + n)});
  cv_.notify_all();
}

void qemu_egress::run(std::uint32_t vm) {
  qemu_egress_stats &st = st_[vm];
  session *s;
  {
    std::lock_guard<std::mutex> g(mu_);
    s = sessions_[vm].get();
  }
  std::string err;
  qemu_addr addr;
  if (!qemu_addr_for_vm(o_.qemu_connect, vm, addr, err)) {
    fail(vm, err);
    return;
  }
  const int mfd = qemu_connect(addr, 10000, err);
  if (mfd < 0) {
    fail(vm, err);
    return;
  }
  if (!o_.quiet)
    std::printf("hde-gateway: qemu: VM %u: feeding the destination QEMU at %s\n", vm, addr.text.c_str());
  std::fflush(stdout);
  st.state.store(1);
  fd_writer mw(mfd);
  std::vector<int> cfds;
  std::vector<std::unique_ptr<fd_writer>> cw;
  auto close_all = [&] {
    for (int fd : cfds)
      close(fd);
    close(mfd);
  };
  struct writer_sink final : qemu::main_writer::sink {
    explicit writer_sink(fd_writer &w) : w(w) {}
    void write(std::span<const std::byte> b) override { w.write(b); }
    fd_writer &w;
  } sink(mw);
  qemu::main_writer writer(sink);
  // The opaque bytes are parsed again here for the RAM layout (MEM_SIZE):
  // pages are written as (block, offset) records.
  struct layout_events final : qemu::main_events {
    explicit layout_events(qemu::main_writer &w) : w(w) {}
    void on_opaque(std::span<const std::byte>) override {}
    void on_layout(const qemu::ram_layout &l) override {
      layout = l;
      w.set_layout(l);
    }
    void on_page(std::size_t, std::uint64_t, const std::byte *) override { stray = true; }
    void on_zero(std::size_t, std::uint64_t, std::uint8_t) override { stray = true; }
    void on_ram_eos(bool) override {}
    qemu::main_writer &w;
    qemu::ram_layout layout;
    bool stray = false;  // a page inside the opaque bytes: the source gateway would be broken
  } lev(writer);
  qemu::main_parser parser(lev);
  std::uint64_t packet_num = 0;
  std::size_t next_ch = 0;
  std::byte hdr[qemu::kMultifdHeaderSize];

  // A multifd packet of n pages of one block on the next channel.
  std::uint64_t offs[qemu::kMultifdPages];
  const std::byte *datas[qemu::kMultifdPages];
  std::size_t npk = 0, pk_block = 0;
  auto send_packet = [&](std::uint32_t flags, fd_writer &w) {
    std::string_view blk = npk != 0 ? std::string_view(lev.layout.blocks[pk_block].id) : std::string_view();
    qemu::write_multifd_header(hdr, flags, packet_num++, blk, {offs, npk});
    w.write({hdr, sizeof hdr});
    for (std::size_t i = 0; i < npk; ++i)
      w.write({datas[i], kPageSize});
    npk = 0;
  };
  auto flush_packet = [&] {
    if (npk == 0)
      return;
    send_packet(0, *cw[next_ch]);
    next_ch = (next_ch + 1) % cw.size();
  };

  // Every page dirtied since the last barrier, as it is in the image now.
  auto emit_dirty = [&] {
    const std::uint64_t words = img_.dirty_words(vm);
    for (std::uint64_t w = 0; w < words; ++w) {
      std::uint64_t bits = img_.take_dirty(vm, w);
      while (bits != 0) {
        const std::uint64_t gfn = w * 64 + static_cast<std::uint64_t>(__builtin_ctzll(bits));
        bits &= bits - 1;
        std::size_t blk;
        std::uint64_t off;
        if (!lev.layout.locate(gfn, blk, off))
          continue;  // not a page of any RAM block: never sent by QEMU
        const std::byte *pg = img_.page(vm, gfn);
        if (is_zero_page(pg)) {
          writer.zero(blk, off);
          ++st.zero_pages;
        } else if (cw.empty()) {
          writer.page(blk, off, pg);
          ++st.pages;
        } else {
          if (npk != 0 && (pk_block != blk || npk == qemu::kMultifdPages))
            flush_packet();
          pk_block = blk;
          offs[npk] = off;
          datas[npk] = pg;
          ++npk;
          ++st.pages;
        }
      }
    }
    if (!cw.empty())
      flush_packet();
  };

  for (;;) {
    piece pc;
    {
      std::unique_lock<std::mutex> g(mu_);
      cv_.wait_for(g, std::chrono::milliseconds(100), [&] { return !s->q.empty() || stop_.load(); });
      if (stop_.load()) {
        g.unlock();
        close_all();
        return;
      }
      if (s->q.empty())
        continue;
      pc = std::move(s->q.front());
      s->q.pop_front();
    }
    if ((pc.flags & wire::kOpaqueAbort) != 0) {
      fail(vm, "the source gateway gave up on the migration (see its log); the destination QEMU's incoming "
               "migration is closed unfinished");
      close_all();
      return;
    }
    if ((pc.flags & wire::kOpaqueMultifd) != 0) {
      wire::multifd_meta m{};
      if (pc.bytes.size() != sizeof m || !cfds.empty()) {
        fail(vm, "bad multifd announcement");
        close_all();
        return;
      }
      std::memcpy(&m, pc.bytes.data(), sizeof m);
      if (m.channels == 0 || m.channels > 64) {
        fail(vm, "bad multifd channel count " + std::to_string(m.channels));
        close_all();
        return;
      }
      // The main channel is QEMU's first connection: what it has so far
      // goes out before the channels connect.
      if (!mw.flush()) {
        fail(vm, "writing to the destination QEMU: " + mw.error());
        close_all();
        return;
      }
      for (std::uint32_t i = 0; i < m.channels; ++i) {
        const int fd = qemu_connect(addr, 10000, err);
        if (fd < 0) {
          fail(vm, "multifd channel " + std::to_string(i) + ": " + err);
          close_all();
          return;
        }
        cfds.push_back(fd);
        cw.push_back(std::make_unique<fd_writer>(fd));
        std::byte init[qemu::kMultifdInitSize];
        qemu::write_multifd_init(init, static_cast<std::uint8_t>(i), reinterpret_cast<const std::byte *>(m.uuid));
        cw.back()->write({init, sizeof init});
        cw.back()->flush();
      }
      st.channels.store(m.channels);
      continue;
    }
    if (!pc.bytes.empty()) {
      writer.opaque(pc.bytes);
      st.opaque_bytes += pc.bytes.size();
      if (parser.feed(pc.bytes) != qemu::stream_error::ok || lev.stray) {
        fail(vm, "the stream from the source gateway does not parse: " +
                     std::string(qemu::to_string(parser.error())) + " " + parser.detail());
        close_all();
        return;
      }
    }
    if ((pc.flags & wire::kOpaqueChunkEnd) != 0) {
      // Barrier pc.chunk: every stream has written what it sent before it.
      const std::uint64_t t0 = now_us();
      for (;;) {
        const std::uint32_t n = streams_();
        bool all = n != 0;
        for (std::uint32_t i = 0; all && i < n && i < kStreams; ++i)
          all = passed_[vm][i].load(std::memory_order_acquire) >= pc.chunk;
        if (all)
          break;
        if (stop_.load()) {
          close_all();
          return;
        }
        if (now_us() - t0 > std::uint64_t(o_.timeout_s) * 1000000) {
          fail(vm, "no progress for " + std::to_string(o_.timeout_s) + " s at barrier " + std::to_string(pc.chunk));
          close_all();
          return;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
      st.barrier_wait_us += now_us() - t0;
      // The main channel first: the chunk begins with the previous RAM EOS,
      // whose SYNC wait holds QEMU's multifd threads until it arrives; pages
      // written to a channel before it could fill the socket and deadlock.
      if (!mw.flush()) {
        fail(vm, "writing to the destination QEMU: " + mw.error() + " (did it exit?)");
        close_all();
        return;
      }
      emit_dirty();
      for (auto &w : cw)  // every channel's SYNC before the main channel's EOS
        send_packet(1, *w);
      st.barriers.store(pc.chunk);
    }
    bool ok = true;
    for (auto &w : cw)
      ok = w->flush() && ok;
    ok = mw.flush() && ok;
    std::uint64_t out = mw.bytes();
    for (auto &w : cw)
      out += w->bytes();
    st.bytes_out.store(out);  // main channel and multifd channels
    if (!ok) {
      std::string e = mw.ok() ? std::string() : mw.error();
      for (auto &w : cw)
        if (!w->ok())
          e = w->error();
      fail(vm, "writing to the destination QEMU: " + e + " (did it exit?)");
      close_all();
      return;
    }
    if ((pc.flags & wire::kOpaqueStreamEnd) != 0) {
      for (int fd : cfds)
        shutdown(fd, SHUT_WR);
      shutdown(mfd, SHUT_WR);
      // QEMU reads to the end and closes: wait for that (bounded), so the
      // gateway does not exit before QEMU has taken every byte.
      char c;
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      while (std::chrono::steady_clock::now() < until && !stop_.load()) {
        timeval tv{0, 100000};
        setsockopt(mfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        const ssize_t r = recv(mfd, &c, 1, 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
          break;
      }
      close_all();
      st.state.store(2);
      if (!o_.quiet)
        std::printf("hde-gateway: qemu: VM %u: the destination QEMU has the whole stream (%llu pages, %llu zero, "
                    "%llu opaque bytes, %u barriers)\n",
                    vm, (unsigned long long)st.pages.load(), (unsigned long long)st.zero_pages.load(),
                    (unsigned long long)st.opaque_bytes.load(), st.barriers.load());
      std::fflush(stdout);
      finished_.fetch_add(1, std::memory_order_acq_rel);
      return;
    }
  }
}

}  // namespace hde::dp
