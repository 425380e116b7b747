// ConnectionCore, automatic recovery (docs/amqp.md, "Automatic recovery"):
// parking the channels when the connection dies, reconnecting with backoff,
// restoring each channel (open, qos, confirm mode, consumers) before the
// calls that waited for it, and the listener events. All on the loop thread,
// except the dial of each attempt, which runs on a helper thread so that a
// black-holed endpoint does not stall a loop other connections may share.
#include <algorithm>
#include <cmath>
#include <iterator>
#include <utility>

#include "src/amqp/connection_core.h"

namespace myelin::amqp {

std::string_view to_string(RecoveryEvent::Kind kind) noexcept {
  switch (kind) {
    case RecoveryEvent::Kind::kStarted:
      return "started";
    case RecoveryEvent::Kind::kRetrying:
      return "retrying";
    case RecoveryEvent::Kind::kRecovered:
      return "recovered";
    case RecoveryEvent::Kind::kFailed:
      return "failed";
  }
  return "unknown";
}

namespace detail {
namespace {

std::string millis(Nanos d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

std::string channel_name(std::uint16_t id) { return "amqp: channel " + std::to_string(id); }

}  // namespace

Nanos recovery_delay(const RecoveryConfig& rc, std::uint32_t attempt, double unit) {
  const double cap = static_cast<double>(std::max<Nanos::rep>(rc.max_delay.count(), 0));
  double d = static_cast<double>(std::max<Nanos::rep>(rc.initial_delay.count(), 0));
  const double mult = std::max(rc.multiplier, 1.0);
  for (std::uint32_t i = 1; i < attempt && d < cap; ++i) d *= mult;
  d = std::min(d, cap);
  d -= d * std::clamp(rc.jitter, 0.0, 1.0) * std::clamp(unit, 0.0, 1.0);
  return Nanos(static_cast<Nanos::rep>(d));
}

void ConnectionCore::add_recovery_listener(RecoveryListener listener) {
  if (!listener) return;
  std::lock_guard lock(mu_);
  listeners_.push_back(std::move(listener));
}

void ConnectionCore::emit(const RecoveryEvent& event) {
  std::vector<RecoveryListener> listeners;
  {
    std::lock_guard lock(mu_);
    listeners = listeners_;
  }
  // A listener may drop the last outside reference: keep the core alive
  // until the last one returns.
  const auto keep = weak_from_this().lock();
  for (auto& l : listeners) l(event);
}

void ConnectionCore::fail_op(ChannelOp& op, const Status& why) {
  if (op.kind == ChannelOp::Kind::kRpc && op.done) {
    RpcDone done = std::move(op.done);
    done(why);
  } else if (op.kind == ChannelOp::Kind::kPublish && op.published) {
    PublishCallback cb = std::move(op.published);
    cb(why);
  }
}

void ConnectionCore::cancel_recovery_timers() {
  for (TimerId* t : {&attempt_timer_, &handshake_timer_, &sweep_timer_}) {
    if (*t != 0) (void)loop_->cancel(*t);
    *t = 0;
  }
  ++attempt_id_;  // a dial still running reports to nobody
}

void ConnectionCore::begin_recovery(Status cause) {
  recovering_.store(true, std::memory_order_release);
  died_at_ = now();
  died_epoch_ = epoch();
  attempt_ = 0;
  // The wait bound of calls still queued runs from this death.
  for (auto& [id, ch] : channels_) {
    for (auto& op : ch->pending) op.queued_at.reset();
  }
  park(cause);
  if (phase_ == Phase::kClosed) return;  // a callback closed the connection
  RecoveryEvent started;
  started.kind = RecoveryEvent::Kind::kStarted;
  started.cause = cause;
  started.epoch = died_epoch_;
  emit(started);
  if (phase_ == Phase::kClosed) return;
  const RecoveryConfig& rc = config_.recovery;
  if (!rc.fail_fast) {
    const Nanos period = std::max<Nanos>(rc.max_wait / 4, std::chrono::milliseconds(1));
    auto t = loop_->schedule_every(period, [weak = weak_from_this()] {
      if (auto self = weak.lock()) self->sweep_waiting();
    });
    if (t) sweep_timer_ = *t;
  }
  schedule_attempt(ok_status());
}

void ConnectionCore::park(const Status& reason) {
  ++restore_generation_;  // restore ops of an earlier attempt are void
  restore_outstanding_ = 0;
  if (heartbeat_timer_ != 0) (void)loop_->cancel(heartbeat_timer_);
  heartbeat_timer_ = 0;
  if (handshake_timer_ != 0) (void)loop_->cancel(handshake_timer_);
  handshake_timer_ = 0;
  if (stream_) {
    stream_->close();
    stream_.reset();
  }
  phase_ = Phase::kRecovering;
  open_.store(false, std::memory_order_release);
  blocked_.store(false, std::memory_order_release);  // a new connection starts unblocked
  in_used_ = 0;
  out_.clear();
  out_sent_ = 0;
  want_write_ = false;
  broker_close_.reset();
  broker_close_recoverable_ = false;

  const bool fail_fast = config_.recovery.fail_fast;
  const std::string why(reason.message());
  const Status lost = connection_lost(why + " (the broker may or may not have acted on it)");
  const Status unsure = connection_lost(
      why + " (the message was sent but not confirmed: the broker may or may not have it)");
  const Status fast = unavailable(why +
                                  " (the connection is recovering and recovery.fail_fast "
                                  "is set)");
  // First make the state consistent, then run callers' callbacks: one of
  // them may close the connection or drop the last reference to it.
  auto unwritten = std::move(on_written_);
  on_written_.clear();
  std::vector<ChannelOp> lost_ops;  // in flight, or an earlier attempt's restore ops
  std::vector<ChannelOp> fast_ops;
  std::vector<std::shared_ptr<PublishBatch>> unconfirmed;
  std::vector<std::pair<std::unique_ptr<ChannelState>, Status>> dropped;
  waiting_publishes_ = 0;
  for (auto it = channels_.begin(); it != channels_.end();) {
    ChannelState& ch = *it->second;
    const bool keep =
        ch.shared->recoverable && ch.shared->open.load(std::memory_order_acquire) &&
        !ch.shared->closing.load(std::memory_order_acquire) &&
        (ch.phase == ChannelState::Phase::kOpen || ch.phase == ChannelState::Phase::kOpening);
    if (!keep) {
      Status st = reason;
      if (!ch.shared->recoverable && ch.shared->open.load(std::memory_order_acquire)) {
        st = connection_lost(channel_name(ch.id) + " (not recoverable) was on connection epoch " +
                             std::to_string(died_epoch_) + ", which was lost: " + why +
                             "; open a new channel");
      }
      dropped.emplace_back(std::move(it->second), std::move(st));
      it = channels_.erase(it);
      continue;
    }
    ch.strand->close_deliveries();
    ch.assembler = wire::ContentAssembler{};  // a partial message died with the stream
    if (ch.in_flight) {
      lost_ops.push_back(std::move(*ch.in_flight));
      ch.in_flight.reset();
    }
    std::deque<ChannelOp> waiting;
    for (auto& op : ch.pending) {
      if (op.restore) {
        lost_ops.push_back(std::move(op));
      } else if (fail_fast) {
        fast_ops.push_back(std::move(op));
      } else {
        if (!op.queued_at) op.queued_at = now();  // the wait bound runs from the first death
        if (op.kind == ChannelOp::Kind::kPublish) waiting_publishes_ += op.publishes;
        waiting.push_back(std::move(op));
      }
    }
    ch.pending = std::move(waiting);
    for (auto& u : ch.unconfirmed) unconfirmed.push_back(std::move(u.batch));
    ch.unconfirmed.clear();
    ch.next_seq = 1;  // publish sequence numbers restart with the new channel
    ch.return_pending = ok_status();
    ch.shared->tag_offset.fetch_add(ch.shared->last_wire_tag, std::memory_order_acq_rel);
    ch.shared->last_wire_tag = 0;
    ch.phase = ChannelState::Phase::kOpening;
    ++it;
  }
  for (auto& [end, cb] : unwritten) cb(lost);
  for (auto& op : lost_ops) fail_op(op, lost);
  if (!fast_ops.empty()) {
    counters_.recovery_waits_failed.fetch_add(fast_ops.size(), std::memory_order_relaxed);
  }
  for (auto& op : fast_ops) fail_op(op, fast);
  for (auto& b : unconfirmed) finish_publish(*b, unsure);
  for (auto& [ch, st] : dropped) channel_closed(*ch, st, /*connection_ended=*/true);
}

void ConnectionCore::schedule_attempt(Status last_error) {
  const RecoveryConfig& rc = config_.recovery;
  if (rc.max_attempts != 0 && attempt_ >= rc.max_attempts) return give_up(std::move(last_error));
  ++attempt_;
  const std::uint64_t id = ++attempt_id_;
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const Nanos delay = recovery_delay(rc, attempt_, unit(rng_));
  RecoveryEvent retry;
  retry.kind = RecoveryEvent::Kind::kRetrying;
  retry.cause = std::move(last_error);
  retry.attempt = attempt_;
  retry.delay = delay;
  retry.epoch = died_epoch_;
  emit(retry);
  if (phase_ != Phase::kRecovering || attempt_id_ != id) return;  // closed meanwhile
  auto t = loop_->schedule(delay, [weak = weak_from_this(), id] {
    auto self = weak.lock();
    if (!self || self->attempt_id_ != id) return;
    self->attempt_timer_ = 0;
    self->start_attempt();
  });
  if (!t) {
    return give_up(unavailable("amqp: cannot schedule a recovery attempt: " +
                               std::string(t.error().message())));
  }
  attempt_timer_ = *t;
}

void ConnectionCore::start_attempt() {
  if (phase_ != Phase::kRecovering) return;
  counters_.recovery_attempts.fetch_add(1, std::memory_order_relaxed);
  // The previous attempt's dial has reported (that is how we got here).
  if (dialer_.joinable()) dialer_.join();
  const std::uint64_t id = attempt_id_;
  auto report = [weak = weak_from_this(), id, reconnect = reconnect_]() mutable {
    auto stream = std::make_shared<Result<std::unique_ptr<net::Stream>>>(reconnect());
    auto self = weak.lock();  // gone: the stream closes with `stream`
    if (!self) return;
    (void)self->submit([weak, id, stream] {
      auto alive = weak.lock();
      if (!alive || alive->attempt_id_ != id) return;
      alive->attempt_connected(std::move(*stream));
    });
  };
  try {
    dialer_ = std::thread(std::move(report));
  } catch (const std::system_error& e) {
    attempt_failed(
        unavailable(std::string("amqp: recovery: cannot start a dialer thread: ") + e.what()));
  }
}

void ConnectionCore::attempt_connected(Result<std::unique_ptr<net::Stream>> stream) {
  if (phase_ != Phase::kRecovering) return;
  if (!stream) return attempt_failed(std::move(stream).error());
  stream_ = std::move(*stream);
  phase_ = Phase::kHandshake;
  const std::uint64_t id = attempt_id_;
  const std::uint32_t attempt = attempt_;
  if (const Status st = start_stream(); !st.ok()) return fail_connection(st);
  if (phase_ != Phase::kHandshake || attempt_id_ != id) return;  // failed while writing
  auto t = loop_->schedule(config_.connect_timeout, [weak = weak_from_this(), id, attempt] {
    auto self = weak.lock();
    if (!self || self->attempt_id_ != id || self->phase_ != Phase::kHandshake) return;
    self->handshake_timer_ = 0;
    self->fail_connection(deadline_exceeded(
        "amqp: recovery attempt " + std::to_string(attempt) + ": no connection.open-ok from " +
        self->config_.describe() + " within " + millis(self->config_.connect_timeout)));
  });
  if (t) handshake_timer_ = *t;
}

void ConnectionCore::attempt_failed(Status reason) {
  if (phase_ == Phase::kClosed) return;
  if (reason.code() == ErrorCode::kAuthenticationFailed) {
    // The broker answers and refuses: another attempt would be refused too.
    return give_up(std::move(reason));
  }
  park(reason);
  if (phase_ != Phase::kRecovering) return;  // a callback closed the connection
  schedule_attempt(std::move(reason));
}

void ConnectionCore::give_up(Status reason) {
  const Status why(reason.code(), "amqp: recovery of " + config_.describe() + " gave up after " +
                                      std::to_string(attempt_) +
                                      " attempt(s): " + std::string(reason.message()));
  cancel_recovery_timers();
  RecoveryEvent failed;
  failed.kind = RecoveryEvent::Kind::kFailed;
  failed.cause = why;
  failed.attempt = attempt_;
  failed.epoch = died_epoch_;
  emit(failed);
  teardown(why);  // no-op when a listener already closed the connection
}

void ConnectionCore::restore() {
  if (handshake_timer_ != 0) (void)loop_->cancel(handshake_timer_);
  handshake_timer_ = 0;
  phase_ = Phase::kOpen;
  epoch_.store(next_epoch(), std::memory_order_release);
  const std::uint64_t gen = ++restore_generation_;
  restore_outstanding_ = 0;
  restored_channels_ = 0;
  restored_consumers_ = 0;
  std::vector<std::uint16_t> ids;
  ids.reserve(channels_.size());
  for (const auto& [id, ch] : channels_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  auto rpc = [this, gen](std::uint16_t id, const wire::Method& m, Accepts accepts,
                         std::function<void(ChannelState&)> on_ok) {
    ChannelOp op;
    op.kind = ChannelOp::Kind::kRpc;
    op.restore = true;
    // Methods re-encoded from what once encoded fine: they fit again.
    (void)wire::append_method_frame(op.frames, id, m);
    op.accepts = accepts;
    op.done = [this, gen, id, on_ok = std::move(on_ok)](Result<Incoming> in) {
      if (gen != restore_generation_) return;  // an earlier attempt's
      if (in) {
        auto it = channels_.find(id);
        if (it != channels_.end()) on_ok(*it->second);
      }
      restore_op_done(gen);
    };
    return op;
  };
  for (const std::uint16_t id : ids) {
    ChannelState& ch = *channels_.at(id);
    ch.shared->epoch.store(epoch(), std::memory_order_release);
    ch.strand->reopen_deliveries();
    std::vector<ChannelOp> ops;
    ops.push_back(
        rpc(id, wire::ChannelOpen{}, accepts_one_of<wire::ChannelOpenOk>, [this](ChannelState& c) {
          c.phase = ChannelState::Phase::kOpen;
          ++restored_channels_;
        }));
    if (ch.qos) {
      wire::BasicQos q;
      q.prefetch_count = ch.qos->first;
      q.global = ch.qos->second;
      ops.push_back(rpc(id, q, accepts_one_of<wire::BasicQosOk>, [](ChannelState&) {}));
    }
    if (ch.confirm_mode) {
      ops.push_back(rpc(id, wire::ConfirmSelect{}, accepts_one_of<wire::ConfirmSelectOk>,
                        [](ChannelState&) {}));
    }
    std::vector<const ConsumerState*> consumers;
    for (const auto& [tag, c] : ch.consumers) consumers.push_back(&c);
    std::sort(consumers.begin(), consumers.end(),
              [](const ConsumerState* a, const ConsumerState* b) { return a->tag < b->tag; });
    for (const ConsumerState* c : consumers) {
      wire::BasicConsume m;
      m.queue = c->queue;
      m.consumer_tag = c->tag;  // the same tag: the application's records stay valid
      m.no_ack = c->no_ack;
      m.exclusive = c->exclusive;
      m.arguments = c->arguments;
      ops.push_back(rpc(id, m, accepts_one_of<wire::BasicConsumeOk>,
                        [this](ChannelState&) { ++restored_consumers_; }));
    }
    restore_outstanding_ += ops.size();
    ch.pending.insert(ch.pending.begin(), std::make_move_iterator(ops.begin()),
                      std::make_move_iterator(ops.end()));
  }
  if (restore_outstanding_ == 0) return restore_op_done(gen);  // no channels: recovered now
  ++restore_outstanding_;  // held while pumping: a reply cannot finish the restore early
  for (const std::uint16_t id : ids) {
    auto it = channels_.find(id);
    if (it != channels_.end()) pump(*it->second);
  }
  restore_op_done(gen);
}

void ConnectionCore::restore_op_done(std::uint64_t generation) {
  if (generation != restore_generation_ || phase_ != Phase::kOpen) return;
  if (restore_outstanding_ > 0 && --restore_outstanding_ > 0) return;
  // Reported from a fresh stack: this may run inside channel_closed(), and a
  // listener may close the connection.
  auto recovered = [weak = weak_from_this(), generation] {
    auto self = weak.lock();
    if (!self || generation != self->restore_generation_ || self->phase_ != Phase::kOpen ||
        !self->recovering_.load(std::memory_order_relaxed)) {
      return;
    }
    if (self->sweep_timer_ != 0) (void)self->loop_->cancel(self->sweep_timer_);
    self->sweep_timer_ = 0;
    self->recovering_.store(false, std::memory_order_release);
    self->open_.store(true, std::memory_order_release);
    self->counters_.recoveries.fetch_add(1, std::memory_order_relaxed);
    RecoveryEvent done;
    done.kind = RecoveryEvent::Kind::kRecovered;
    done.attempt = self->attempt_;
    done.downtime = self->now() - self->died_at_;
    done.epoch = self->epoch();
    done.channels = self->restored_channels_;
    done.consumers = self->restored_consumers_;
    self->emit(done);
  };
  if (!loop_->queue_microtask(recovered).ok()) recovered();
}

void ConnectionCore::sweep_waiting() {
  if (!recovering_.load(std::memory_order_relaxed)) return;
  const MonoTime t = now();
  const Nanos max_wait = config_.recovery.max_wait;
  std::vector<std::pair<std::uint16_t, ChannelOp>> expired;
  for (auto& [id, ch] : channels_) {
    for (auto it = ch->pending.begin(); it != ch->pending.end();) {
      if (!it->restore && it->queued_at && t - *it->queued_at >= max_wait) {
        if (it->kind == ChannelOp::Kind::kPublish) {
          waiting_publishes_ -= std::min(waiting_publishes_, it->publishes);
        }
        expired.emplace_back(id, std::move(*it));
        it = ch->pending.erase(it);
      } else {
        ++it;
      }
    }
  }
  if (expired.empty()) return;
  counters_.recovery_waits_failed.fetch_add(expired.size(), std::memory_order_relaxed);
  for (auto& [id, op] : expired) {
    fail_op(op, deadline_exceeded(channel_name(id) + ": waited " + millis(max_wait) +
                                  " (recovery.max_wait) for the connection to recover"));
  }
}

}  // namespace detail
}  // namespace myelin::amqp
