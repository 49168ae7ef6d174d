// bridge.cpp — hde-wanem's per-direction data path and lcore loop (see bridge.h).
#include "bridge.h"

#include <algorithm>
#include <ctime>
#include <sys/prctl.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_pause.h>

namespace hde::wanem {

std::atomic<bool> g_quit{false};

direction::direction(const char *name, std::uint16_t in_port, std::uint16_t nrxq, std::uint16_t out_port,
                     const link_spec &spec, std::uint32_t hold, double hz, std::uint64_t salt, rte_mempool *pool)
    : name_(name), in_port_(in_port), nrxq_(nrxq), out_port_(out_port), model_(spec, hz, salt),
      line_(hold, hold / 8 < 64 ? 64 : hold / 8), pool_(pool) {}

direction::~direction() { flush(); }

void direction::flush() {
  std::uint64_t n = 0;
  line_.drain([&](rte_mbuf *m) {
    rte_pktmbuf_free(m);
    ++n;
  });
  st_.flushed.add(n);
  st_.in_flight.set(0);
}

unsigned direction::rx(std::uint64_t now) {
  unsigned total = 0;
  for (std::uint16_t q = 0; q < nrxq_; ++q) {
    rte_mbuf *bufs[kBurst];
    const std::uint16_t n = rte_eth_rx_burst(in_port_, q, bufs, kBurst);
    std::uint64_t bytes = 0;
    for (std::uint16_t i = 0; i < n; ++i) {
      bytes += bufs[i]->pkt_len;
      admit(now, bufs[i]);
    }
    if (n != 0) {
      st_.in.add(n);
      st_.in_bytes.add(bytes);
    }
    total += n;
  }
  if (total != 0) {
    st_.in_flight.set(line_.size());
    st_.backlog.set(static_cast<std::uint64_t>(model_.backlog_bytes(now)));
  }
  return total;
}

void direction::admit(std::uint64_t now, rte_mbuf *m) {
  if (line_.full()) {  // before the model: a frame that cannot be held takes no link time
    st_.hold_drops.add();
    rte_pktmbuf_free(m);
    return;
  }
  const std::uint32_t len = m->pkt_len;
  const verdict v = model_.on_frame(now, len);
  // The copy is taken before the original is corrupted or handed on.
  rte_mbuf *copy = nullptr;
  if (v.dup) {
    copy = rte_pktmbuf_copy(m, pool_, 0, UINT32_MAX);
    if (copy == nullptr)
      st_.dup_nombuf.add();
  }
  switch (v.f) {
  case fate::lost:
    st_.lost.add();
    rte_pktmbuf_free(m);
    break;
  case fate::queue_full:
    st_.queue_drops.add();
    rte_pktmbuf_free(m);
    break;
  case fate::deliver:
    place(m, v);
    break;
  }
  if (copy == nullptr)
    return;
  st_.duplicated.add();
  if (line_.full()) {
    st_.hold_drops.add();
    rte_pktmbuf_free(copy);
    return;
  }
  const verdict c = model_.on_copy(now, len);
  if (c.f == fate::deliver) {
    place(copy, c);
  } else {
    st_.queue_drops.add();
    rte_pktmbuf_free(copy);
  }
}

void direction::place(rte_mbuf *m, const verdict &v) {
  if (v.corrupt_bit >= 0) {
    // Walk to the segment holding the bit (net_af_packet gives one segment).
    std::uint32_t byte = static_cast<std::uint32_t>(v.corrupt_bit / 8);
    for (rte_mbuf *s = m; s != nullptr; s = s->next) {
      if (byte < s->data_len) {
        rte_pktmbuf_mtod(s, std::uint8_t *)[byte] ^= static_cast<std::uint8_t>(1u << (v.corrupt_bit % 8));
        st_.corrupted.add();
        break;
      }
      byte -= s->data_len;
    }
  }
  if (v.held && line_.push_held(v.held_due, m)) {
    st_.reordered.add();
    return;
  }
  line_.push(v.due, m);  // admit() checked there is room
}

unsigned direction::tx(std::uint64_t now) {
  unsigned total = 0;
  for (int round = 0; round < 8; ++round) {
    rte_mbuf *bufs[kBurst];
    std::uint32_t lens[kBurst];
    std::uint16_t n = 0;
    std::uint64_t late = 0, late_max = 0;
    line_.pop_due(now, kBurst, [&](rte_mbuf *m, std::uint64_t due) {
      lens[n] = m->pkt_len;  // read now: once sent, the mbuf is the port's
      bufs[n++] = m;
      late += now - due;
      late_max = std::max(late_max, now - due);
    });
    if (n == 0)
      break;
    st_.late_tsc.add(late);
    if (late_max > st_.late_max_tsc.get())
      st_.late_max_tsc.set(late_max);
    const std::uint16_t sent = rte_eth_tx_burst(out_port_, 0, bufs, n);
    std::uint64_t bytes = 0;
    for (std::uint16_t i = 0; i < sent; ++i)
      bytes += lens[i];
    st_.out.add(sent);
    st_.out_bytes.add(bytes);
    if (sent < n) {
      st_.tx_fail.add(n - sent);
      rte_pktmbuf_free_bulk(bufs + sent, n - sent);
    }
    total += n;
    if (n < kBurst)
      break;
  }
  if (total != 0) {
    st_.in_flight.set(line_.size());
    st_.backlog.set(static_cast<std::uint64_t>(model_.backlog_bytes(now)));
  }
  return total;
}

namespace {

std::uint64_t thread_cpu_us() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1000;
}

}  // namespace

int run_lcore(lcore_job &job) {
  // Sleeps end when asked, not up to 50 us later (the default timer slack).
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
  const std::uint64_t hz = rte_get_tsc_hz();
  const std::uint64_t us = hz / 1000000 ? hz / 1000000 : 1;
  const std::uint64_t max_sleep_us = job.max_sleep_us;  // RX is not polled while asleep
  const std::uint64_t spin = 5 * us;         // poll, not sleep, this close to a due time
  constexpr unsigned kSpinPolls = 16;        // empty polls before the first sleep
  // A sleep lasts longer than asked (about 55 us more in a VM here): the
  // loop learns by how much (moving average) and wakes that much earlier,
  // so frames leave on time and the spinning stays short.
  std::uint64_t oversleep = 10 * us;
  const std::uint64_t cpu_period = hz;       // refresh cpu_us about once a second
  const std::uint64_t cpu0 = thread_cpu_us();
  const std::uint64_t t0 = rte_rdtsc();
  std::uint64_t next_tick = job.on_tick ? t0 + job.tick_tsc : ~0ULL;
  std::uint64_t next_cpu = t0 + cpu_period;
  std::uint64_t loops = 0, busy_loops = 0, sleeps = 0, busy_tsc = 0;
  unsigned idle = 0;

  while (!g_quit.load(std::memory_order_relaxed)) {
    const std::uint64_t start = rte_rdtsc();
    unsigned work = 0;
    for (direction *d : job.dirs)
      work += d->rx(start);
    const std::uint64_t now = work ? rte_rdtsc() : start;
    for (direction *d : job.dirs)
      work += d->tx(now);
    const std::uint64_t end = rte_rdtsc();
    ++loops;
    if (work != 0) {
      ++busy_loops;
      busy_tsc += end - start;
      idle = 0;
    }
    if ((loops & 63) == 0 || work == 0) {  // publish; timers
      job.stats.loops.set(loops);
      job.stats.busy_loops.set(busy_loops);
      job.stats.sleeps.set(sleeps);
      job.stats.busy_tsc.set(busy_tsc);
      job.stats.total_tsc.set(end - t0);
      if (end >= next_cpu) {
        job.stats.cpu_us.set(thread_cpu_us() - cpu0);
        next_cpu = end + cpu_period;
      }
      if (end >= next_tick) {
        job.on_tick(end);
        next_tick = end + job.tick_tsc;
      }
    }
    if (work != 0)
      continue;
    // Idle: how long until the next frame is due?
    std::uint64_t due = ~0ULL;
    for (direction *d : job.dirs)
      due = std::min(due, d->next_due());
    const std::uint64_t wait = due > end ? due - end : 0;
    const std::uint64_t early = spin + oversleep;
    const std::uint64_t sleep_us = wait > early ? std::min(max_sleep_us, (wait - early) / us) : 0;
    if (++idle < kSpinPolls || sleep_us == 0) {
      rte_pause();
      continue;
    }
    const std::uint64_t before = rte_rdtsc();
    rte_delay_us_sleep(static_cast<unsigned>(sleep_us));
    const std::uint64_t slept = rte_rdtsc() - before, asked = sleep_us * us;
    const std::uint64_t over = std::min<std::uint64_t>(slept > asked ? slept - asked : 0, 500 * us);
    oversleep = (7 * oversleep + over) / 8;
    ++sleeps;
  }
  job.stats.loops.set(loops);
  job.stats.busy_loops.set(busy_loops);
  job.stats.sleeps.set(sleeps);
  job.stats.busy_tsc.set(busy_tsc);
  job.stats.total_tsc.set(rte_rdtsc() - t0);
  job.stats.cpu_us.set(thread_cpu_us() - cpu0);
  return 0;
}

}  // namespace hde::wanem
