// ConnectionCore, channel side: opening channels, the per-channel operation
// queue, publisher confirms, consumers and deliveries, channel close. All of
// it runs on the loop thread.
#include <algorithm>
#include <utility>

#include "src/amqp/connection_core.h"

namespace myelin::amqp::detail {
namespace {

std::string channel_name(std::uint16_t id) { return "amqp: channel " + std::to_string(id); }

// The broker's channel.close as a Status, with the method it answered.
Status channel_close_status(std::uint16_t id, const wire::ChannelClose& c) {
  std::string msg = channel_name(id) + " closed by the broker: " + std::to_string(c.reply_code) +
                    " " + c.reply_text;
  switch (c.reply_code) {
    case wire::reply_code::kNotFound:
      return not_found(std::move(msg));
    case wire::reply_code::kAccessRefused:
      return authentication_failed(std::move(msg));
    case wire::reply_code::kResourceLocked:
    case wire::reply_code::kPreconditionFailed:
      return failed_precondition(std::move(msg));
    default:
      return unavailable(std::move(msg));
  }
}

}  // namespace

void finish_publish(PublishBatch& batch, const Status& outcome) {
  if (!outcome.ok() && batch.first_error.ok()) batch.first_error = outcome;
  if (--batch.remaining == 0 && batch.done) {
    auto done = std::move(batch.done);
    done(batch.first_error);
  }
}

Delivery to_delivery(Incoming&& in) {
  Delivery d;
  if (auto* del = std::get_if<wire::BasicDeliver>(&in.method)) {
    d.consumer_tag = std::move(del->consumer_tag);
    d.delivery_tag = del->delivery_tag;
    d.redelivered = del->redelivered;
    d.exchange = std::move(del->exchange);
    d.routing_key = std::move(del->routing_key);
  } else if (auto* get = std::get_if<wire::BasicGetOk>(&in.method)) {
    d.delivery_tag = get->delivery_tag;
    d.redelivered = get->redelivered;
    d.exchange = std::move(get->exchange);
    d.routing_key = std::move(get->routing_key);
    d.message_count = get->message_count;
  } else if (auto* ret = std::get_if<wire::BasicReturn>(&in.method)) {
    d.exchange = std::move(ret->exchange);
    d.routing_key = std::move(ret->routing_key);
  }
  d.properties = std::move(in.properties);
  d.body = std::move(in.body);
  return d;
}

Result<std::shared_ptr<Channel>> ConnectionCore::open_channel(Nanos timeout, bool recoverable) {
  if (in_loop_thread()) {
    return failed_precondition(
        "amqp: open_channel blocks, so it cannot be called from a callback on the connection's "
        "own loop thread");
  }
  auto reply = std::make_shared<Reply<Result<std::uint16_t>>>();
  auto f = reply->future();
  auto shared = std::make_shared<ChannelShared>();
  shared->recoverable = recoverable;
  auto self = shared_from_this();
  const Status submitted = submit([self, reply, shared] {
    if (self->recovering_.load(std::memory_order_relaxed)) {
      return reply->fail(
          unavailable("amqp: open_channel: the connection is recovering; try again once it has"));
    }
    if (self->phase_ != Phase::kOpen) {
      return reply->fail(closed("amqp: open_channel: the connection is not open"));
    }
    if (self->channels_.size() >= self->channel_max_) {
      return reply->fail(resource_exhausted("amqp: open_channel: all " +
                                            std::to_string(self->channel_max_) +
                                            " channels of the connection are in use"));
    }
    std::uint16_t id = self->next_channel_hint_;
    while (self->channels_.count(id) != 0) id = id >= self->channel_max_ ? 1 : id + 1;
    self->next_channel_hint_ = id >= self->channel_max_ ? 1 : id + 1;
    auto ch = std::make_unique<ChannelState>();
    ch->id = id;
    ch->shared = shared;
    ch->strand = self->executor_->make_strand();
    ChannelState& ref = *ch;
    self->channels_.emplace(id, std::move(ch));
    ChannelOp op;
    op.kind = ChannelOp::Kind::kRpc;
    (void)wire::append_method_frame(op.frames, id, wire::ChannelOpen{});  // fixed size: cannot fail
    op.accepts = accepts_one_of<wire::ChannelOpenOk>;
    op.done = [self, reply, shared, id](Result<Incoming> in) {
      if (!in) return reply->fail(in.error());
      auto it = self->channels_.find(id);
      if (it == self->channels_.end()) return reply->fail(closed(channel_name(id) + " is gone"));
      it->second->phase = ChannelState::Phase::kOpen;
      shared->epoch.store(self->epoch(), std::memory_order_release);
      shared->open.store(true, std::memory_order_release);
      self->counters_.channels_open.fetch_add(1, std::memory_order_relaxed);
      if (shared->abandoned.load(std::memory_order_acquire)) {
        // The caller gave up waiting: nobody holds this channel, close it.
        self->close_channel(*it->second, std::make_shared<Reply<Status>>());
        return;
      }
      reply->set(id);
    };
    self->enqueue(ref, std::move(op));
  });
  if (!submitted.ok()) return closed("amqp: open_channel: the connection's loop has stopped");
  if (f.wait_for(timeout) != std::future_status::ready) {
    shared->abandoned.store(true, std::memory_order_release);  // closed when open-ok comes
    return deadline_exceeded("amqp: open_channel: no channel.open-ok within the timeout");
  }
  MYELIN_ASSIGN_OR_RETURN(const std::uint16_t id, f.get());
  return std::shared_ptr<Channel>(new Channel(self, std::move(shared), id));
}

Result<ChannelState*> ConnectionCore::channel(std::uint16_t id, const ChannelShared& shared) {
  auto it = channels_.find(id);
  // A channel id is reused once its channel closed: the record must be this
  // handle's own (recovery keeps the record, and with it the handle, alive).
  if (it == channels_.end() || it->second->shared.get() != &shared ||
      it->second->phase == ChannelState::Phase::kClosed) {
    return closed(channel_name(id) + " is closed");
  }
  return it->second.get();
}

// --- the operation queue -----------------------------------------------------

void ConnectionCore::enqueue(ChannelState& ch, ChannelOp op) {
  if (recovering_.load(std::memory_order_relaxed)) {
    // Made while the connection recovers: it waits for the recovered
    // connection (bounded) or fails fast, as configured.
    const RecoveryConfig& rc = config_.recovery;
    Status refused;
    if (rc.fail_fast) {
      refused = unavailable(channel_name(ch.id) +
                            ": the connection is recovering (recovery.fail_fast is set)");
    } else if (op.kind == ChannelOp::Kind::kPublish &&
               waiting_publishes_ + op.publishes > rc.max_waiting) {
      refused = resource_exhausted(channel_name(ch.id) + ": " + std::to_string(waiting_publishes_) +
                                   " publishes already wait for the connection to recover "
                                   "(recovery.max_waiting)");
    }
    if (!refused.ok()) {
      counters_.recovery_waits_failed.fetch_add(1, std::memory_order_relaxed);
      return fail_op(op, refused);
    }
    if (op.kind == ChannelOp::Kind::kPublish) waiting_publishes_ += op.publishes;
    op.queued_at = now();
  }
  ch.pending.push_back(std::move(op));
  pump(ch);
}

void ConnectionCore::pump(ChannelState& ch) {
  // Not while a recovery attempt hand-shakes: the channel is not open there.
  const bool can_send = phase_ == Phase::kOpen || phase_ == Phase::kClosing;
  while (!ch.in_flight && !ch.pending.empty() && stream_ && can_send) {
    ChannelOp& front = ch.pending.front();
    // A broker under a resource alarm (connection.blocked) stops reading a
    // connection at its next publish, so publishes wait here instead, in
    // order with what the caller issued after them, until unblocked. The
    // rest of the connection (heartbeats, acks, other channels' RPCs) goes on.
    if (front.kind == ChannelOp::Kind::kPublish && blocked_.load(std::memory_order_relaxed)) {
      return;
    }
    if (front.kind == ChannelOp::Kind::kPublish && ch.confirm_mode && !ch.unconfirmed.empty() &&
        ch.unconfirmed.size() + front.publishes > ch.window) {
      return;  // back-pressure: wait for confirms to free the window
    }
    ChannelOp op = std::move(front);
    ch.pending.pop_front();
    write_op(ch, op);
  }
}

void ConnectionCore::write_op(ChannelState& ch, ChannelOp& op) {
  out_.insert(out_.end(), op.frames.begin(), op.frames.end());
  counters_.frames_out.fetch_add(op.frame_count, std::memory_order_relaxed);
  schedule_flush();
  switch (op.kind) {
    case ChannelOp::Kind::kRpc:
      op.frames.clear();
      ch.in_flight = std::move(op);
      return;
    case ChannelOp::Kind::kFrames:
      return;
    case ChannelOp::Kind::kPublish: {
      if (!ch.confirm_mode) {
        // Settled once the kernel has the frames (flush runs it).
        if (op.published) on_written_.emplace_back(out_.size(), std::move(op.published));
        return;
      }
      auto batch = std::make_shared<PublishBatch>();
      batch->done = std::move(op.published);
      batch->remaining = op.publishes;
      for (std::size_t i = 0; i < op.publishes; ++i) {
        ch.unconfirmed.push_back(Unconfirmed{ch.next_seq++, op.mandatory, {}, batch});
      }
      return;
    }
  }
}

// --- incoming ------------------------------------------------------------------

Status ConnectionCore::handle_channel_frame(ChannelState& ch, const wire::FrameView& frame) {
  MYELIN_ASSIGN_OR_RETURN(const auto event, ch.assembler.feed(frame));
  switch (event) {
    case wire::ContentAssembler::Event::kNone:
      return ok_status();
    case wire::ContentAssembler::Event::kMethod:
      return handle_channel_incoming(ch, Incoming{ch.assembler.take_method(), {}, {}});
    case wire::ContentAssembler::Event::kDelivery: {
      wire::Delivery d = ch.assembler.take_delivery();
      return handle_channel_incoming(
          ch, Incoming{std::move(d.method), std::move(d.properties), std::move(d.body)});
    }
  }
  return ok_status();
}

Status ConnectionCore::handle_channel_incoming(ChannelState& ch, Incoming&& in) {
  wire::Method& m = in.method;
  if (auto* d = std::get_if<wire::BasicDeliver>(&m)) {
    auto it = ch.consumers.find(d->consumer_tag);
    if (it == ch.consumers.end()) {
      // A delivery racing our cancel: hand it back rather than lose it.
      wire::BasicReject r;
      r.delivery_tag = d->delivery_tag;
      r.requeue = true;
      send_method(ch.id, r);
      return ok_status();
    }
    // Tags keep growing across recoveries: see ChannelShared::tag_offset.
    ch.shared->last_wire_tag = std::max(ch.shared->last_wire_tag, d->delivery_tag);
    d->delivery_tag += ch.shared->tag_offset.load(std::memory_order_relaxed);
    auto handler = it->second.on_delivery;
    ch.strand->post_delivery([handler, delivery = std::make_shared<Delivery>(to_delivery(
                                           std::move(in)))] { (*handler)(std::move(*delivery)); });
    return ok_status();
  }
  if (auto* a = std::get_if<wire::BasicAck>(&m)) {
    handle_confirm(ch, a->delivery_tag, a->multiple, true);
    return ok_status();
  }
  if (auto* n = std::get_if<wire::BasicNack>(&m)) {
    handle_confirm(ch, n->delivery_tag, n->multiple, false);
    return ok_status();
  }
  if (auto* r = std::get_if<wire::BasicReturn>(&m)) {
    const Status why = not_found(
        "amqp: message returned unroutable: " + std::to_string(r->reply_code) + " " +
        r->reply_text + " (exchange '" + r->exchange + "', routing key '" + r->routing_key + "')");
    // RabbitMQ sends the return of an unroutable message immediately before
    // that message's basic.ack: the next confirm settles it (see
    // handle_confirm).
    if (ch.confirm_mode) ch.return_pending = why;
    if (ch.on_return) {
      const std::uint16_t code = r->reply_code;
      std::string text = r->reply_text;
      auto handler = ch.on_return;
      ch.strand->post([handler, code, text = std::move(text),
                       d = std::make_shared<Delivery>(to_delivery(std::move(in)))] {
        (*handler)(code, text, std::move(*d));
      });
    }
    return ok_status();
  }
  if (auto* c = std::get_if<wire::ChannelClose>(&m)) {
    send_method(ch.id, wire::ChannelCloseOk{});
    const std::uint16_t id = ch.id;
    channel_closed(ch, channel_close_status(id, *c));
    channels_.erase(id);
    return ok_status();
  }
  if (auto* f = std::get_if<wire::ChannelFlow>(&m)) {
    wire::ChannelFlowOk ok;
    ok.active = f->active;
    send_method(ch.id, ok);
    return ok_status();
  }
  if (auto* c = std::get_if<wire::BasicCancel>(&m)) {
    // The broker cancelled a consumer (its queue was deleted, or a node failed).
    remove_consumer(ch, c->consumer_tag,
                    unavailable("amqp: the broker cancelled consumer '" + c->consumer_tag +
                                "' (its queue was deleted or became unavailable)"));
    if (!c->no_wait) {
      wire::BasicCancelOk ok;
      ok.consumer_tag = c->consumer_tag;
      send_method(ch.id, ok);
    }
    return ok_status();
  }
  if (ch.in_flight && ch.in_flight->accepts(m)) {
    RpcDone done = std::move(ch.in_flight->done);
    ch.in_flight.reset();
    const std::uint16_t id = ch.id;
    done(std::move(in));
    // `done` may have closed the channel (channel.close-ok): look it up again.
    auto it = channels_.find(id);
    if (it != channels_.end()) pump(*it->second);
    return ok_status();
  }
  return protocol_error(channel_name(ch.id) + ": unexpected " + std::string(wire::method_name(m)) +
                        (ch.in_flight ? " while waiting for a reply" : ""));
}

void ConnectionCore::handle_confirm(ChannelState& ch, std::uint64_t tag, bool multiple, bool ack) {
  if (!ch.return_pending.ok()) {
    // The returned message is the one this confirm names (the highest tag
    // of a multiple ack).
    auto it = std::lower_bound(ch.unconfirmed.begin(), ch.unconfirmed.end(), tag,
                               [](const Unconfirmed& u, std::uint64_t t) { return u.seq < t; });
    if (it != ch.unconfirmed.end() && it->seq == tag) it->returned = std::move(ch.return_pending);
    ch.return_pending = ok_status();
  }
  auto settle = [&](Unconfirmed& u) {
    Status outcome = !ack ? aborted("amqp: the broker nacked publish " + std::to_string(u.seq) +
                                    " on " + channel_name(ch.id).substr(6))
                          : u.returned;
    finish_publish(*u.batch, outcome);
  };
  if (multiple) {
    while (!ch.unconfirmed.empty() && ch.unconfirmed.front().seq <= tag) {
      Unconfirmed u = std::move(ch.unconfirmed.front());
      ch.unconfirmed.pop_front();
      settle(u);
    }
  } else {
    auto it = std::lower_bound(ch.unconfirmed.begin(), ch.unconfirmed.end(), tag,
                               [](const Unconfirmed& u, std::uint64_t t) { return u.seq < t; });
    if (it != ch.unconfirmed.end() && it->seq == tag) {
      Unconfirmed u = std::move(*it);
      ch.unconfirmed.erase(it);
      settle(u);
    }
  }
  pump(ch);
}

// --- lifecycle -------------------------------------------------------------------

void ConnectionCore::add_consumer(ChannelState& ch, ConsumerState consumer) {
  std::string tag = consumer.tag;
  ch.consumers.emplace(std::move(tag), std::move(consumer));
}

void ConnectionCore::remove_consumer(ChannelState& ch, const std::string& tag, const Status& why) {
  auto it = ch.consumers.find(tag);
  if (it == ch.consumers.end()) return;
  auto on_cancel = it->second.on_cancel;
  ch.consumers.erase(it);
  if (on_cancel && *on_cancel) ch.strand->post([on_cancel, why] { (*on_cancel)(why); });
}

void ConnectionCore::close_channel(ChannelState& ch, std::shared_ptr<Reply<Status>> reply) {
  if (recovering_.load(std::memory_order_relaxed) && phase_ != Phase::kOpen) {
    // No connection to send channel.close on: the broker forgot the channel
    // with the connection that died. It is simply not restored.
    const std::uint16_t id = ch.id;
    channel_closed(ch, closed(channel_name(id) + " was closed by the client"));
    channels_.erase(id);
    reply->set(ok_status());
    return;
  }
  if (ch.phase == ChannelState::Phase::kClosing) {
    // A close is in flight: this one completes with it.
    ch.close_waiters->push_back(std::move(reply));
    return;
  }
  ch.shared->closing.store(true, std::memory_order_release);
  ch.close_waiters = std::make_shared<std::vector<std::shared_ptr<Reply<Status>>>>();
  ch.close_waiters->push_back(std::move(reply));
  ChannelOp op;
  op.kind = ChannelOp::Kind::kRpc;
  wire::ChannelClose c;
  c.reply_code = wire::reply_code::kReplySuccess;
  c.reply_text = "client closed the channel";
  (void)wire::append_method_frame(op.frames, ch.id, c);  // short fixed text: cannot fail
  op.accepts = accepts_one_of<wire::ChannelCloseOk>;
  const std::uint16_t id = ch.id;
  op.done = [this, id, waiters = ch.close_waiters](Result<Incoming> in) {
    // An error here means channel_closed() is failing this op (the broker
    // closed the channel first, or the connection died): the channel is
    // already being torn down by the caller, which must not lose it under
    // its feet. Only our close-ok tears it down here.
    if (in) {
      auto it = channels_.find(id);
      if (it != channels_.end()) {
        channel_closed(*it->second, closed(channel_name(id) + " was closed by the client"));
        channels_.erase(it);
      }
    }
    for (auto& w : *waiters) w->set(ok_status());
  };
  ch.phase = ChannelState::Phase::kClosing;
  enqueue(ch, std::move(op));
}

void ConnectionCore::channel_closed(ChannelState& ch, const Status& reason, bool connection_ended) {
  if (ch.phase == ChannelState::Phase::kClosed) return;
  const bool was_open = ch.shared->open.exchange(false, std::memory_order_acq_rel);
  if (was_open) counters_.channels_open.fetch_sub(1, std::memory_order_relaxed);
  ch.phase = ChannelState::Phase::kClosed;
  {
    std::lock_guard lock(ch.shared->mu);
    ch.shared->reason = reason;
  }
  if (ch.in_flight) {
    RpcDone done = std::move(ch.in_flight->done);
    ch.in_flight.reset();
    if (done) done(reason);
  }
  std::deque<ChannelOp> pending = std::move(ch.pending);
  ch.pending.clear();
  for (auto& op : pending) {
    if (op.kind == ChannelOp::Kind::kRpc && op.done) op.done(reason);
    if (op.kind == ChannelOp::Kind::kPublish && op.published) op.published(reason);
  }
  // Sent, not confirmed: the broker may have routed and stored it. When the
  // connection ended that is all anyone can know (kConnectionLost, so that a
  // caller can tell it from "not sent"); a channel the broker closed keeps
  // the broker's code (the cause is then usually that very publish).
  std::string unsure_text = std::string(reason.message()) +
                            " (the message was sent but not confirmed: the broker may or may not "
                            "have it)";
  const Status unsure = connection_ended ? connection_lost(std::move(unsure_text))
                                         : Status(reason.code(), std::move(unsure_text));
  std::deque<Unconfirmed> unconfirmed = std::move(ch.unconfirmed);
  ch.unconfirmed.clear();
  for (auto& u : unconfirmed) finish_publish(*u.batch, unsure);
  // No delivery handler starts from here on (the broker requeues what the
  // strand still held); the cancel handlers below still run.
  ch.strand->close_deliveries();
  for (auto& [tag, consumer] : ch.consumers) {
    if (consumer.on_cancel && *consumer.on_cancel) {
      ch.strand->post([cb = consumer.on_cancel, reason] { (*cb)(reason); });
    }
  }
  ch.consumers.clear();
}

}  // namespace myelin::amqp::detail
