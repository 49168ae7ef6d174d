// sender.h — the sending half of reliable delivery for one stream, DPDK-free
// so it is unit-tested on scripted traces (window.h is the receiving half).
//
//   frames    sealed frames by sequence number: queued (not yet sent), in
//             flight, lost (waiting to be sent again); acknowledged by the
//             cumulative ack plus selective-ack blocks (sack.h). The
//             scoreboard keeps what earlier ACKs said.
//   loss      RACK (RFC 8985): a frame is lost when a frame sent after it
//             has been delivered and a reordering window has passed since
//             it would have been, with the RTT of that delivered frame. The
//             window is a quarter of the minimum RTT and widens, for 16
//             round trips, each time the receiver reports a duplicate of a
//             frame we retransmitted (DSACK: the retransmit was needless).
//             A tail-loss probe (TLP) after two smoothed RTTs without
//             progress sends one frame to draw an ACK; only a retransmit
//             timeout (RTO, RFC 6298, backed off) marks everything lost,
//             and then at most one frame is in flight until an ACK comes.
//   rate      the rate model (rate_model.h): delivery-rate samples (the
//             sender's own send and ack times, as in
//             draft-cheng-iccrg-delivery-rate-estimation) feed the BBR-style
//             model, which sets the pacing rate and the cap on bytes in
//             flight. Lost frames go out first, then new ones.
//
// T is an opaque handle (an rte_mbuf* in the data plane). Times are ticks of
// a clock of config::hz ticks a second. Capacity is a power of two fixed at
// construction; nothing allocates afterwards.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>

#include "rate_model.h"
#include "sack.h"

namespace hde::dp {

struct alignas(64) sender_stats {
  std::uint64_t frames_sent = 0;   // first transmissions
  std::uint64_t retransmits = 0;   // every later transmission (loss, TLP, RTO)
  std::uint64_t bytes_sent = 0;    // every transmission
  std::uint64_t frames_acked = 0;
  std::uint64_t bytes_acked = 0;
  std::uint64_t acks = 0;
  std::uint64_t lost_frames = 0;   // marked lost by RACK or an RTO
  std::uint64_t lost_bytes = 0;
  std::uint64_t tlp_probes = 0;
  std::uint64_t rto_events = 0;
  std::uint64_t spurious_rto = 0;  // timeouts undone: an original sent before it was acked
  std::uint64_t rto_undone = 0;    // frames they had marked lost, back in flight
  std::uint64_t dup_reports = 0;   // duplicates the receiver reported (any cause)
  std::uint64_t spurious = 0;      // ... of which were frames we had retransmitted
  std::uint64_t queue_overflow = 0;  // bookkeeping queue full (the RTO covers it)
  std::uint64_t stalls = 0;          // the sender did not run for a while (on_stall): timers moved on
};

template <typename T> class sender {
public:
  struct config {
    std::uint32_t capacity = 4096;  // frames held at once (power of two)
    double hz = 1e9;                // ticks per second
    std::uint32_t mss = 1500;       // bytes of a full frame on the wire
    std::uint64_t rto_min = 0;      // ticks; 0: 5 ms
    double ceiling_bps = 0;         // pacing ceiling (--link-rate share), 0: none
  };
  struct slot {
    T item{};
    std::uint64_t sent_tsc = 0;        // latest transmission
    std::uint64_t first_sent_tsc = 0;  // rate sampling: start of the send interval
    std::uint64_t delivered = 0;       // rate sampling: bytes delivered at send time
    std::uint64_t delivered_tsc = 0;   // rate sampling: when they were
    std::uint32_t len = 0;             // bytes on the wire
    std::uint16_t transmissions = 0;   // 0: queued, not sent yet
    bool acked = false, lost = false, app_limited = false;
    // FEC: 0, not in a group; kFecOpen, in the group being filled; else
    // when its group's parity left. RACK times such a frame from there.
    std::uint64_t fec_tsc = 0;
  };
  static constexpr std::uint64_t kFecOpen = ~std::uint64_t{0};

  explicit sender(const config &c)
      : cap_(c.capacity), mask_(c.capacity - 1), hz_(c.hz), mss_(c.mss),
        rto_min_(c.rto_min != 0 ? c.rto_min : static_cast<std::uint64_t>(c.hz * 0.005)),
        slots_(std::make_unique<slot[]>(c.capacity)), lost_q_(2 * c.capacity), rtx_q_(2 * c.capacity),
        rtx_bits_(std::make_unique<std::uint64_t[]>(kRtxBits / 64)),
        model_(rate_model::config{c.hz, c.mss, c.ceiling_bps, 32}) {
    burst_ = static_cast<std::uint64_t>(hz_ / 1000);  // pacing catches up at most 1 ms after a stall
    rto_ = std::max(rto_min_, static_cast<std::uint64_t>(hz_));  // 1 s until the first RTT sample (RFC 6298)
  }

  // --- the frames ------------------------------------------------------------
  std::uint64_t base() const { return base_; }  // oldest unacked seq
  std::uint64_t sent() const { return sent_; }  // first seq never transmitted
  std::uint64_t next() const { return next_; }  // seq of the next frame queued
  std::uint32_t held() const { return static_cast<std::uint32_t>(next_ - base_); }
  std::uint32_t unsent() const { return static_cast<std::uint32_t>(next_ - sent_); }
  std::uint32_t free_slots() const { return cap_ - held(); }
  bool empty() const { return next_ == base_; }
  slot &at(std::uint64_t seq) { return slots_[seq & mask_]; }

  // Queue frame seq = next() of len bytes on the wire. The caller checks
  // free_slots() first.
  void push(T item, std::uint32_t len) {
    slots_[next_ & mask_] = slot{item, 0, 0, 0, 0, len, 0, false, false, false};
    ++next_;
  }

  // --- sending -----------------------------------------------------------------
  // Transmit what the pacing rate and the in-flight cap allow, at most
  // `budget` frames: lost frames first, then new ones. tx(item, seq,
  // retransmit) hands one to the port. Returns how many went out.
  template <typename Tx> unsigned pump(std::uint64_t now, unsigned budget, Tx &&tx) {
    unsigned n = 0;
    while (n < budget) {
      if (now < next_send_)
        break;  // paced
      const std::uint64_t cap = rto_recovery_ ? std::min<std::uint64_t>(model_.cwnd(), mss_) : model_.cwnd();
      std::uint64_t seq;
      bool rtx;
      if (tlp_pending_) {
        tlp_pending_ = false;
        if (sent_ < next_ && sent_ - base_ < peer_window_) {  // a probe with new data draws an ACK as well
          seq = sent_++;
          rtx = false;
        } else if (!tail_unacked(seq)) {
          continue;
        } else {
          rtx = true;
        }
      } else if (!lost_q_.empty()) {
        seq = lost_q_.front();
        slot &s = at(seq);
        if (seq < base_ || seq >= sent_ || s.acked || !s.lost) {  // acked since, or sent again
          lost_q_.pop();
          continue;
        }
        if (inflight_ + s.len > cap && inflight_ != 0)
          break;
        lost_q_.pop();
        rtx = true;
      } else if (sent_ < next_) {
        if (inflight_ + at(sent_).len > cap && inflight_ != 0)
          break;
        if (sent_ - base_ >= peer_window_) {
          // The receiver's window (set_peer_window) is full: like having
          // nothing to send, rate samples show what we offered.
          if (inflight_ < model_.cwnd())
            app_limited_until_ = std::max<std::uint64_t>(delivered_ + inflight_, 1);
          break;
        }
        seq = sent_++;
        rtx = false;
      } else {
        // Nothing to send: rate samples until these bytes are delivered
        // show what we offered, not what the path carries.
        if (inflight_ < model_.cwnd())
          app_limited_until_ = std::max<std::uint64_t>(delivered_ + inflight_, 1);
        break;
      }
      transmit(seq, now, rtx);
      tx(at(seq).item, seq, rtx);
      ++n;
    }
    return n;
  }

  // The receiver holds at most n frames of this stream ahead of its
  // cumulative ack (its reorder window, told in its ACKs): no new frame goes
  // out beyond base() + n. Our own capacity stays the other bound.
  void set_peer_window(std::uint32_t n) { peer_window_ = n; }
  std::uint64_t peer_window() const { return peer_window_; }

  // --- acknowledgements ----------------------------------------------------------
  // An ACK arrived. release(item) is called once for every newly acked frame.
  // Returns the number of frames newly acknowledged.
  template <typename Release> std::uint32_t on_ack(std::uint64_t now, const ack_info &a, Release &&release) {
    ++st_.acks;
    const std::uint64_t cum = std::min(a.cum, sent_);
    ack_state acc;
    for (; base_ < cum; ++base_) {
      slot &s = at(base_);
      if (!s.acked)
        deliver(now, base_, s, acc, release);
      s = slot{};
    }
    for (std::size_t i = 0; i < a.nblocks && i < kMaxSackBlocks; ++i) {
      const std::uint64_t lo = std::max(a.blocks[i].start, base_);
      const std::uint64_t hi = std::min(a.blocks[i].end, sent_);
      for (std::uint64_t seq = lo; seq < hi; ++seq) {
        slot &s = at(seq);
        if (!s.acked)
          deliver(now, seq, s, acc, release);
      }
    }
    while (base_ < sent_ && at(base_).acked) {
      at(base_) = slot{};
      ++base_;
    }
    on_dsack(a);
    if (acc.original_after_rto)
      undo_rto();
    if (acc.rtt != 0)
      rtt_sample(acc.rtt);
    if (delivered_ > app_limited_until_)
      app_limited_until_ = 0;
    detect_loss(now);
    // The rate model: one sample per ACK.
    rate_sample rs;
    rs.delivered_total = delivered_;
    rs.prior_delivered = acc.prior_delivered;
    rs.newly_acked = acc.bytes;
    rs.newly_lost = lost_pending_;
    rs.inflight = inflight_;
    rs.rtt = acc.rtt;
    rs.app_limited = acc.app_limited;
    if (acc.have) {
      const std::uint64_t interval = std::max(acc.send_elapsed, acc.ack_elapsed);
      if (interval != 0 && interval >= model_.min_rtt()) {
        // In wire bytes: with FEC on, every data byte delivered took
        // wire_factor_ bytes of the link (its share of the group's parity).
        rs.delivered = static_cast<std::uint64_t>(static_cast<double>(delivered_ - acc.prior_delivered) * wire_factor_);
        rs.interval = interval;
      }
    }
    if (acc.bytes != 0 || lost_pending_ != 0) {
      model_.on_ack(now, rs);
      lost_pending_ = 0;
    }
    if (acc.frames != 0) {
      last_progress_ = now;
      backoff_ = 1;
      tlp_out_ = false;
      rto_recovery_ = false;
    }
    return acc.frames;
  }

  // --- timers ----------------------------------------------------------------------
  // RACK's reordering timer, the tail-loss probe and the retransmit timeout.
  // Cheap when nothing is due: call it every poll.
  void on_timer(std::uint64_t now) {
    if (base_ == sent_)
      return;  // nothing in flight
    if (reo_timer_ != 0 && now >= reo_timer_) {
      reo_timer_ = 0;
      detect_loss(now);  // the model learns of what it marks with the next ACK
    }
    if (!tlp_out_ && srtt_ != 0 && now - last_progress_ >= pto()) {
      tlp_out_ = true;
      tlp_pending_ = true;
      ++st_.tlp_probes;
    }
    if (now - last_progress_ >= rto()) {
      // Everything unacknowledged is lost, retransmissions included, and
      // goes out again oldest first: the queue is rebuilt in sequence order
      // (a frame resent by the last timeout would otherwise queue behind
      // all the others, and a receiver waiting for the oldest — a late
      // destination waits for the INIT at seq 0 — would wait for them all).
      lost_q_.clear();
      for (std::uint64_t seq = base_; seq < sent_; ++seq) {
        slot &s = at(seq);
        if (s.acked)
          continue;
        if (!s.lost)
          mark_lost(seq, s);
        else
          lost_q_.push(seq);
      }
      ++st_.rto_events;
      rto_tsc_ = now;
      rto_high_ = sent_;  // the undo test stays armed until these are resolved
      backoff_ = std::min<std::uint64_t>(backoff_ * 2, 64);
      last_progress_ = now;
      rto_recovery_ = true;
      tlp_out_ = false;
    }
  }

  // The sender itself did not run for `gap` ticks (its lcore was
  // descheduled): it could not read ACKs meanwhile, so the timers that wait
  // for them (tail-loss probe, retransmit timeout, RACK's reordering timer)
  // wait that much longer. A stalled gateway is not a lossy network.
  void on_stall(std::uint64_t now, std::uint64_t gap) {
    last_progress_ = std::min(now, last_progress_ + gap);
    if (reo_timer_ != 0)
      reo_timer_ += gap;
    ++st_.stalls;
  }

  // --- what it knows -----------------------------------------------------------------
  const sender_stats &stats() const { return st_; }
  const rate_model &model() const { return model_; }
  void set_ceiling_bps(double bps) { model_.set_ceiling_bps(bps); }
  // Bytes sent beside the window (FEC parity): they take link time, so the
  // pacing schedule moves on by them.
  void charge(std::uint64_t now, std::uint32_t bytes) {
    const double rate = model_.pacing_rate();
    if (rate > 0) {
      const std::uint64_t start = std::max(next_send_, now > burst_ ? now - burst_ : 0);
      next_send_ = start + static_cast<std::uint64_t>(static_cast<double>(bytes) / rate);
    }
  }
  // FEC: frame seq (just sent for the first time) joined the open group;
  // the group [first, first + n) had its parity sent at now. Until then its
  // frames are not declared lost: the parity may rebuild them without a
  // retransmission, so RACK waits for a frame sent after the parity.
  void fec_protect(std::uint64_t seq) {
    if (seq >= base_ && seq < sent_)
      at(seq).fec_tsc = kFecOpen;
  }
  void fec_parity_sent(std::uint64_t first, unsigned n, std::uint64_t now) {
    for (std::uint64_t seq = std::max(first, base_); seq < first + n && seq < sent_; ++seq)
      if (at(seq).fec_tsc == kFecOpen)
        at(seq).fec_tsc = now + 1;  // after every frame of this poll: one sent with the
                                    // group, at the same tick, does not count as after it
    if (reo_timer_ == 0)
      reo_timer_ = now;  // look again: frames that waited for this parity
  }
  // Wire bytes per data byte (1 + m/k with FEC K,M): the rate model then
  // measures the path in wire bytes, parity included, and paces both.
  void set_wire_factor(double f) { wire_factor_ = f >= 1.0 ? f : 1.0; }

  std::uint64_t inflight_bytes() const { return inflight_; }
  std::uint64_t srtt() const { return srtt_; }
  std::uint32_t mss() const { return mss_; }
  // The retransmit timeout, backed off, at most kMaxRto seconds: a peer
  // that comes up late (or a link back from an outage) is found within
  // seconds, not after a minute of doubling.
  std::uint64_t rto() const { return std::min(rto_ * backoff_, std::max(rto_, static_cast<std::uint64_t>(kMaxRtoS * hz_))); }
  std::uint64_t reo_wnd() const {
    const std::uint64_t rtt = model_.min_rtt() != 0 ? model_.min_rtt() : srtt_;  // first ACK: no minimum yet
    std::uint64_t w = rtt / 4 * reo_mult_;
    if (srtt_ != 0)
      w = std::min(w, srtt_);
    return std::max<std::uint64_t>(w, static_cast<std::uint64_t>(hz_ / 10000));  // >= 100 us: polling jitter
  }

private:
  static constexpr std::uint64_t kRtxBits = 1 << 16;  // retransmitted seqs, mod 2^16 (> any capacity)
  static constexpr double kMaxRtoS = 2.0;              // the backed-off RTO's ceiling, seconds

  // A fixed-size FIFO (power-of-two capacity).
  template <typename E> class fifo {
  public:
    explicit fifo(std::size_t cap) : mask_(cap - 1), v_(std::make_unique<E[]>(cap)) {}
    bool empty() const { return head_ == tail_; }
    bool full() const { return tail_ - head_ > mask_; }
    E &front() { return v_[head_ & mask_]; }
    void pop() { ++head_; }
    void push(const E &e) { v_[tail_++ & mask_] = e; }
    void clear() { head_ = tail_; }

  private:
    std::size_t mask_;
    std::unique_ptr<E[]> v_;
    std::size_t head_ = 0, tail_ = 0;
  };
  struct rtx_entry {
    std::uint64_t seq = 0, tsc = 0;
  };
  // What one ACK delivered, for the rate sample.
  struct ack_state {
    std::uint32_t frames = 0;
    std::uint64_t bytes = 0;
    bool have = false, app_limited = false;
    std::uint64_t prior_delivered = 0, send_elapsed = 0, ack_elapsed = 0;
    std::uint64_t rtt = 0;
    bool original_after_rto = false;
  };

  bool rtx_bit(std::uint64_t seq) const { return (rtx_bits_[(seq % kRtxBits) / 64] >> (seq % 64)) & 1; }
  void set_rtx_bit(std::uint64_t seq, bool on) {
    std::uint64_t &w = rtx_bits_[(seq % kRtxBits) / 64];
    const std::uint64_t b = std::uint64_t{1} << (seq % 64);
    w = on ? (w | b) : (w & ~b);
  }

  // The highest frame in flight not yet acked: what a TLP sends again.
  bool tail_unacked(std::uint64_t &seq) {
    for (std::uint64_t s = sent_; s > base_; --s)
      if (!at(s - 1).acked) {
        seq = s - 1;
        return true;
      }
    return false;
  }

  void transmit(std::uint64_t seq, std::uint64_t now, bool rtx) {
    slot &s = at(seq);
    if (inflight_ == 0) {  // a new flight: the send interval starts here
      first_sent_tsc_ = now;
      delivered_tsc_ = now;
      last_progress_ = now;
    }
    s.sent_tsc = now;
    s.first_sent_tsc = first_sent_tsc_;
    s.delivered = delivered_;
    s.delivered_tsc = delivered_tsc_;
    s.app_limited = app_limited_until_ != 0;
    if (s.transmissions == 0 || s.lost)  // a TLP of a frame in flight is not counted twice
      inflight_ += s.len;
    s.lost = false;
    ++s.transmissions;
    st_.bytes_sent += s.len;
    if (rtx) {
      ++st_.retransmits;
      set_rtx_bit(seq, true);
      if (rtx_q_.full()) {
        rtx_q_.pop();
        ++st_.queue_overflow;
      }
      rtx_q_.push({seq, now});
    } else {
      ++st_.frames_sent;
      set_rtx_bit(seq, false);
    }
    const double rate = model_.pacing_rate();
    if (rate > 0) {
      const std::uint64_t start = std::max(next_send_, now > burst_ ? now - burst_ : 0);
      next_send_ = start + static_cast<std::uint64_t>(static_cast<double>(s.len) / rate);
    }
  }


  template <typename Release>
  void deliver(std::uint64_t now, std::uint64_t seq, slot &s, ack_state &acc, Release &release) {
    if (!s.lost)
      inflight_ -= s.len;  // a lost frame left the flight when it was marked
    s.lost = false;
    s.acked = true;
    delivered_ += s.len;
    delivered_tsc_ = now;
    ++acc.frames;
    acc.bytes += s.len;
    ++st_.frames_acked;
    st_.bytes_acked += s.len;
    if (s.delivered >= acc.prior_delivered) {  // the most recently sent frame acked: the sample's end
      acc.have = true;
      acc.prior_delivered = s.delivered;
      acc.app_limited = s.app_limited;
      acc.send_elapsed = s.sent_tsc - s.first_sent_tsc;
      acc.ack_elapsed = delivered_tsc_ - s.delivered_tsc;
      first_sent_tsc_ = s.sent_tsc;
    }
    if (rto_high_ > base_ && s.transmissions == 1 && s.sent_tsc < rto_tsc_)
      acc.original_after_rto = true;  // sent before the timeout, never resent, and here: it was not lost
    const std::uint64_t rtt = now > s.sent_tsc ? now - s.sent_tsc : 1;
    if (s.transmissions == 1)  // Karn: RTT samples from frames sent once
      acc.rtt = acc.rtt == 0 ? rtt : std::min(acc.rtt, rtt);
    // RACK: the latest-sent frame known delivered. An ACK faster than the
    // minimum RTT after a retransmission acknowledges the original: skip.
    if (!(s.transmissions > 1 && rtt < model_.min_rtt()) &&
        (s.sent_tsc > rack_xmit_ || (s.sent_tsc == rack_xmit_ && seq > rack_seq_))) {
      rack_xmit_ = s.sent_tsc;
      rack_seq_ = seq;
      rack_rtt_ = rtt;
    }
    release(s.item);
    s.item = T{};
  }

  void mark_lost(std::uint64_t seq, slot &s) {
    s.lost = true;
    inflight_ -= s.len;
    lost_pending_ += s.len;
    ++st_.lost_frames;
    st_.lost_bytes += s.len;
    if (lost_q_.full())
      ++st_.queue_overflow;  // cannot happen with 2x capacity; the RTO would cover it
    else
      lost_q_.push(seq);
  }

  // A timeout was spurious (F-RTO's test, RFC 5682): an ACK came for a
  // frame sent before it and never resent — the path was slow (a receiver
  // descheduled, an ACK burst held up), not broken. The test stays armed
  // until every frame in flight at the timeout is resolved, not just for the
  // first ACK after it: that one may acknowledge only the frame resent first.
  // Frames truly lost among those put back are found again by RACK. Frames the timeout
  // marked lost and not yet resent are back in flight; their queued
  // retransmissions are dropped (pump skips frames no longer lost).
  void undo_rto() {
    rto_recovery_ = false;
    rto_high_ = 0;  // disarmed: one undo per timeout
    std::uint64_t undone = 0;
    for (std::uint64_t seq = base_; seq < sent_; ++seq) {
      slot &s = at(seq);
      if (!s.acked && s.lost && s.transmissions == 1 && s.sent_tsc < rto_tsc_) {
        s.lost = false;
        inflight_ += s.len;
        undone += s.len;
        ++st_.rto_undone;
      }
    }
    lost_pending_ -= std::min(lost_pending_, undone);
    cursor_ = base_;  // RACK looks at them again
    ++st_.spurious_rto;
  }

  // RACK: frames sent before the latest delivered one, and not delivered
  // within its RTT plus the reordering window, are lost. Originals go out in
  // sequence order and retransmissions in the order of rtx_q_, so both are
  // scanned from their oldest, and each stops at the first frame not yet due.
  void detect_loss(std::uint64_t now) {
    if (rack_xmit_ == 0)
      return;
    const std::uint64_t reo = reo_wnd();
    std::uint64_t timer = 0;
    auto before_rack = [&](std::uint64_t tsc, std::uint64_t seq) {
      return tsc < rack_xmit_ || (tsc == rack_xmit_ && seq < rack_seq_);
    };
    if (cursor_ < base_)
      cursor_ = base_;
    while (cursor_ < sent_) {
      slot &s = at(cursor_);
      if (s.acked || s.lost || s.transmissions > 1) {  // retransmissions: rtx_q_ below
        ++cursor_;
        continue;
      }
      if (s.fec_tsc == kFecOpen)
        break;  // its group's parity has not left yet
      const std::uint64_t tsc = s.fec_tsc != 0 ? s.fec_tsc : s.sent_tsc;
      if (!before_rack(tsc, cursor_))
        break;
      const std::uint64_t due = tsc + rack_rtt_ + reo;
      if (now < due) {
        timer = due;
        break;
      }
      mark_lost(cursor_, s);
      ++cursor_;
    }
    while (!rtx_q_.empty()) {
      const rtx_entry e = rtx_q_.front();
      if (e.seq < base_ || e.seq >= sent_) {
        rtx_q_.pop();
        continue;
      }
      slot &s = at(e.seq);
      if (s.acked || s.lost || s.sent_tsc != e.tsc) {  // done with, or sent again since
        rtx_q_.pop();
        continue;
      }
      if (!before_rack(e.tsc, e.seq))
        break;
      const std::uint64_t due = e.tsc + rack_rtt_ + reo;
      if (now < due) {
        timer = timer == 0 ? due : std::min(timer, due);
        break;
      }
      mark_lost(e.seq, s);
      rtx_q_.pop();
    }
    reo_timer_ = timer;
  }

  // DSACK: the receiver got a frame twice. If we had retransmitted it, the
  // retransmission was needless: widen the reordering window.
  void on_dsack(const ack_info &a) {
    const auto delta = static_cast<std::int32_t>(a.dup_count - dup_count_);
    if (delta <= 0)
      return;
    dup_count_ = a.dup_count;
    st_.dup_reports += static_cast<std::uint32_t>(delta);
    if (a.last_dup_seq < sent_ && a.last_dup_seq + kRtxBits > sent_ && rtx_bit(a.last_dup_seq)) {
      set_rtx_bit(a.last_dup_seq, false);  // count each frame once
      ++st_.spurious;
      if (model_.rounds() != reo_round_) {  // once a round trip
        reo_round_ = model_.rounds();
        reo_mult_ = std::min<std::uint64_t>(reo_mult_ + 1, 16);
      }
    }
    if (reo_mult_ > 1 && model_.rounds() > reo_round_ + 16)
      reo_mult_ = 1;
  }

  void rtt_sample(std::uint64_t rtt) {
    const double r = static_cast<double>(rtt);
    if (srtt_ == 0) {
      srttf_ = r;
      rttvar_ = r / 2;
    } else {
      rttvar_ = 0.75 * rttvar_ + 0.25 * std::abs(srttf_ - r);
      srttf_ = 0.875 * srttf_ + 0.125 * r;
    }
    srtt_ = static_cast<std::uint64_t>(srttf_);
    rto_ = std::max(rto_min_, static_cast<std::uint64_t>(srttf_ + 4 * rttvar_));
  }

  // Probe timeout: two smoothed RTTs (plus the receiver's ack delay when a
  // single frame is in flight), never beyond the RTO.
  std::uint64_t pto() const {
    // Never under 5 ms: a software gateway on a shared host can be off the
    // CPU for a few ms, and a probe then is a needless resend.
    std::uint64_t p = std::max<std::uint64_t>(2 * srtt_, static_cast<std::uint64_t>(hz_ * 0.005));
    if (sent_ - base_ == 1)
      p += static_cast<std::uint64_t>(hz_ / 5000);  // the receiver acks a lone frame within 200 us
    return std::min(p, rto());
  }

  std::uint32_t cap_, mask_;
  double hz_;
  std::uint32_t mss_;
  std::uint64_t rto_min_;
  std::unique_ptr<slot[]> slots_;
  std::uint64_t base_ = 0, sent_ = 0, next_ = 0;
  fifo<std::uint64_t> lost_q_;  // frames marked lost, to be sent again
  fifo<rtx_entry> rtx_q_;       // retransmissions in the order sent (RACK)
  std::unique_ptr<std::uint64_t[]> rtx_bits_;
  rate_model model_;
  // Delivery-rate sampling.
  std::uint64_t delivered_ = 0, delivered_tsc_ = 0, first_sent_tsc_ = 0, app_limited_until_ = 0;
  std::uint64_t inflight_ = 0, lost_pending_ = 0;
  // Pacing.
  std::uint64_t next_send_ = 0, burst_;
  double wire_factor_ = 1.0;
  // RACK.
  std::uint64_t rack_xmit_ = 0, rack_seq_ = 0, rack_rtt_ = 0, reo_timer_ = 0, cursor_ = 0;
  std::uint64_t reo_mult_ = 1, reo_round_ = 0;
  std::uint32_t dup_count_ = 0;
  // RTT and timers.
  double srttf_ = 0, rttvar_ = 0;
  std::uint64_t srtt_ = 0, rto_, backoff_ = 1, last_progress_ = 0, rto_tsc_ = 0, rto_high_ = 0;
  bool tlp_out_ = false, tlp_pending_ = false, rto_recovery_ = false;
  std::uint64_t peer_window_ = ~std::uint64_t{0};  // set_peer_window
  sender_stats st_;
};

}  // namespace hde::dp
