// Channel: the thread-safe handle. Each call encodes its frames on the
// calling thread (so many publishing threads share the encoding work) and
// hands them to the connection's loop, where ConnectionCore queues them.
#include <algorithm>
#include <cstdint>
#include <utility>
#include <variant>

#include "src/amqp/connection_core.h"

namespace myelin::amqp {

using detail::ChannelOp;
using detail::ChannelState;
using detail::ConnectionCore;
using detail::Incoming;
using detail::Reply;

namespace {

// Sends the synchronous method `m` on channel `id` and answers the
// returned future with convert(reply) once the broker replied.
// Why channel `id` is gone: the reason it closed with (e.g. the
// broker's 404), else the lookup's own error.
Status gone(const detail::ChannelShared& shared, Status lookup_error) {
  std::lock_guard lock(shared.mu);
  return shared.reason.ok() ? std::move(lookup_error) : shared.reason;
}

template <typename T, typename Convert>
std::future<T> call(const std::shared_ptr<ConnectionCore>& core,
                    const std::shared_ptr<detail::ChannelShared>& shared, std::uint16_t id,
                    const wire::Method& m, detail::Accepts accepts, Convert convert) {
  auto reply = std::make_shared<Reply<T>>();
  auto f = reply->future();
  ChannelOp op;
  op.kind = ChannelOp::Kind::kRpc;
  if (Status st = wire::append_method_frame(op.frames, id, m); !st.ok()) {
    reply->fail(std::move(st).with_context("amqp: " + std::string(wire::method_name(m))));
    return f;
  }
  op.accepts = accepts;
  op.done = [reply, convert = std::move(convert)](Result<Incoming> in) mutable {
    if (!in) return reply->fail(in.error());
    reply->set(convert(std::move(*in)));
  };
  const Status st =
      core->submit([core, shared, id, reply, op = std::make_shared<ChannelOp>(std::move(op))] {
        auto ch = core->channel(id, *shared);
        if (!ch) return reply->fail(gone(*shared, ch.error()));
        core->enqueue(**ch, std::move(*op));
      });
  if (!st.ok()) reply->fail(closed("amqp: the connection is closed"));
  return f;
}

template <typename Reply>
auto status_of() {
  return [](Incoming&&) { return ok_status(); };
}

}  // namespace

Channel::Channel(std::shared_ptr<ConnectionCore> core,
                 std::shared_ptr<detail::ChannelShared> shared, std::uint16_t id)
    : core_(std::move(core)), shared_(std::move(shared)), id_(id) {}

std::uint64_t Channel::epoch() const noexcept {
  return shared_->epoch.load(std::memory_order_acquire);
}

Channel::~Channel() {
  // Best effort; nobody waits for it. A channel dropped while its connection
  // recovers is closed too, or recovery would re-open it for nobody.
  const bool parked = shared_->open.load(std::memory_order_acquire) && core_->is_recovering();
  if (is_open() || parked) (void)close();
}

bool Channel::is_open() const noexcept {
  return shared_->open.load(std::memory_order_acquire) && core_->is_open();
}

Status Channel::close_reason() const {
  {
    std::lock_guard lock(shared_->mu);
    if (!shared_->reason.ok()) return shared_->reason;
  }
  return core_->close_reason();
}

std::future<Status> Channel::exchange_declare(std::string name, std::string type,
                                              ExchangeOptions options) {
  wire::ExchangeDeclare m;
  m.exchange = std::move(name);
  m.type = std::move(type);
  m.passive = options.passive;
  m.durable = options.durable;
  m.auto_delete = options.auto_delete;
  m.internal = options.internal;
  m.arguments = std::move(options.arguments);
  return call<Status>(core_, shared_, id_, m, detail::accepts_one_of<wire::ExchangeDeclareOk>,
                      status_of<wire::ExchangeDeclareOk>());
}

std::future<Status> Channel::exchange_delete(std::string name, bool if_unused) {
  wire::ExchangeDelete m;
  m.exchange = std::move(name);
  m.if_unused = if_unused;
  return call<Status>(core_, shared_, id_, m, detail::accepts_one_of<wire::ExchangeDeleteOk>,
                      status_of<wire::ExchangeDeleteOk>());
}

std::future<Result<QueueInfo>> Channel::queue_declare(std::string name, QueueOptions options) {
  wire::QueueDeclare m;
  m.queue = std::move(name);
  m.passive = options.passive;
  m.durable = options.durable;
  m.exclusive = options.exclusive;
  m.auto_delete = options.auto_delete;
  m.arguments = std::move(options.arguments);
  return call<Result<QueueInfo>>(
      core_, shared_, id_, m, detail::accepts_one_of<wire::QueueDeclareOk>, [](Incoming&& in) {
        auto& ok = std::get<wire::QueueDeclareOk>(in.method);
        return Result<QueueInfo>(
            QueueInfo{std::move(ok.queue), ok.message_count, ok.consumer_count});
      });
}

std::future<Status> Channel::queue_bind(std::string queue, std::string exchange,
                                        std::string routing_key, FieldTable arguments) {
  wire::QueueBind m;
  m.queue = std::move(queue);
  m.exchange = std::move(exchange);
  m.routing_key = std::move(routing_key);
  m.arguments = std::move(arguments);
  return call<Status>(core_, shared_, id_, m, detail::accepts_one_of<wire::QueueBindOk>,
                      status_of<wire::QueueBindOk>());
}

std::future<Status> Channel::queue_unbind(std::string queue, std::string exchange,
                                          std::string routing_key, FieldTable arguments) {
  wire::QueueUnbind m;
  m.queue = std::move(queue);
  m.exchange = std::move(exchange);
  m.routing_key = std::move(routing_key);
  m.arguments = std::move(arguments);
  return call<Status>(core_, shared_, id_, m, detail::accepts_one_of<wire::QueueUnbindOk>,
                      status_of<wire::QueueUnbindOk>());
}

std::future<Result<std::uint32_t>> Channel::queue_purge(std::string queue) {
  wire::QueuePurge m;
  m.queue = std::move(queue);
  return call<Result<std::uint32_t>>(
      core_, shared_, id_, m, detail::accepts_one_of<wire::QueuePurgeOk>, [](Incoming&& in) {
        return Result<std::uint32_t>(std::get<wire::QueuePurgeOk>(in.method).message_count);
      });
}

std::future<Result<std::uint32_t>> Channel::queue_delete(std::string queue, bool if_unused,
                                                         bool if_empty) {
  wire::QueueDelete m;
  m.queue = std::move(queue);
  m.if_unused = if_unused;
  m.if_empty = if_empty;
  return call<Result<std::uint32_t>>(
      core_, shared_, id_, m, detail::accepts_one_of<wire::QueueDeleteOk>, [](Incoming&& in) {
        return Result<std::uint32_t>(std::get<wire::QueueDeleteOk>(in.method).message_count);
      });
}

std::future<Status> Channel::qos(std::uint16_t prefetch_count, bool global) {
  wire::BasicQos m;
  m.prefetch_count = prefetch_count;
  m.global = global;
  return call<Status>(
      core_, shared_, id_, m, detail::accepts_one_of<wire::BasicQosOk>,
      [core = core_, shared = shared_, id = id_, prefetch_count, global](Incoming&&) {
        // Recorded for recovery, which restores it.
        auto ch = core->channel(id, *shared);
        if (ch) (*ch)->qos.emplace(prefetch_count, global);
        return ok_status();
      });
}

std::future<Status> Channel::confirm_select(std::size_t window) {
  auto reply = std::make_shared<Reply<Status>>();
  auto f = reply->future();
  if (window == 0) {
    reply->fail(invalid_argument("amqp: confirm_select: the window must be at least 1"));
    return f;
  }
  auto core = core_;
  const std::uint16_t id = id_;
  const auto shared = shared_;
  const Status st = core->submit([core, shared, id, window, reply] {
    auto ch = core->channel(id, *shared);
    if (!ch) return reply->fail(gone(*shared, ch.error()));
    ChannelOp op;
    op.kind = ChannelOp::Kind::kRpc;
    (void)wire::append_method_frame(op.frames, id, wire::ConfirmSelect{});  // fixed size
    op.accepts = detail::accepts_one_of<wire::ConfirmSelectOk>;
    op.done = [core, shared, id, window, reply](Result<Incoming> in) {
      if (!in) return reply->fail(in.error());
      auto state = core->channel(id, *shared);
      if (!state) return reply->fail(gone(*shared, state.error()));
      (*state)->confirm_mode = true;
      (*state)->window = window;
      reply->set(ok_status());
    };
    core->enqueue(**ch, std::move(op));
  });
  if (!st.ok()) reply->fail(closed("amqp: the connection is closed"));
  return f;
}

Status Channel::publish(std::string exchange, std::string routing_key, Message message,
                        PublishCallback done, PublishOptions options) {
  std::vector<Message> one;
  one.push_back(std::move(message));
  return publish_batch(std::move(exchange), std::move(routing_key), std::move(one), std::move(done),
                       options);
}

std::future<Status> Channel::publish(std::string exchange, std::string routing_key, Message message,
                                     PublishOptions options) {
  auto reply = std::make_shared<Reply<Status>>();
  auto f = reply->future();
  const Status st = publish(
      std::move(exchange), std::move(routing_key), std::move(message),
      [reply](const Status& s) { reply->set(s); }, options);
  if (!st.ok()) reply->fail(st);
  return f;
}

Status Channel::publish_batch(std::string exchange, std::string routing_key,
                              std::vector<Message> messages, PublishCallback done,
                              PublishOptions options) {
  // While the connection recovers the publish is handed on: the loop lets it
  // wait for the recovered connection or fails it (recovery.fail_fast).
  const bool recovering = shared_->open.load(std::memory_order_acquire) && core_->is_recovering();
  if (!is_open() && !recovering) {
    Status why = close_reason();
    return why.ok() ? closed("amqp: channel " + std::to_string(id_) + " is closed") : why;
  }
  if (messages.empty()) return invalid_argument("amqp: publish_batch: no messages");
  ChannelOp op;
  op.kind = ChannelOp::Kind::kPublish;
  op.publishes = messages.size();
  op.mandatory = options.mandatory;
  op.published = std::move(done);
  std::size_t bytes = 0;
  for (const auto& m : messages) bytes += m.body.size() + 128;
  op.frames.reserve(bytes + exchange.size() + routing_key.size());
  wire::BasicPublish p;
  p.exchange = std::move(exchange);
  p.routing_key = std::move(routing_key);
  p.mandatory = options.mandatory;
  const std::uint32_t frame_max = core_->frame_max();
  const std::size_t body_per_frame = frame_max == 0 ? SIZE_MAX : frame_max - wire::kFrameOverhead;
  op.frame_count = 0;
  for (const auto& m : messages) {
    // method + content header + body frames
    op.frame_count += 2 + (m.body.empty() ? 0 : 1 + (m.body.size() - 1) / body_per_frame);
    MYELIN_RETURN_IF_ERROR(wire::append_method_frame(op.frames, id_, p, frame_max));
    MYELIN_RETURN_IF_ERROR(wire::append_content(op.frames, id_, wire::class_id::kBasic,
                                                m.properties, m.body, frame_max));
  }
  auto core = core_;
  const std::uint16_t id = id_;
  const auto shared = shared_;
  return core->submit([core, shared, id, op = std::make_shared<ChannelOp>(std::move(op))] {
    auto ch = core->channel(id, *shared);
    if (!ch) {
      if (op->published) op->published(gone(*shared, ch.error()));
      return;
    }
    core->enqueue(**ch, std::move(*op));
  });
}

std::future<Result<std::string>> Channel::consume(std::string queue, DeliveryHandler on_delivery,
                                                  ConsumeOptions options, CancelHandler on_cancel) {
  auto reply = std::make_shared<Reply<Result<std::string>>>();
  auto f = reply->future();
  if (!on_delivery) {
    reply->fail(invalid_argument("amqp: consume: no delivery handler"));
    return f;
  }
  wire::BasicConsume m;
  m.queue = std::move(queue);
  m.consumer_tag = std::move(options.consumer_tag);
  m.no_ack = options.no_ack;
  m.exclusive = options.exclusive;
  m.arguments = std::move(options.arguments);
  auto handlers = std::make_shared<detail::ConsumerState>();
  handlers->queue = m.queue;
  handlers->no_ack = m.no_ack;
  handlers->exclusive = m.exclusive;
  handlers->arguments = m.arguments;
  handlers->on_delivery = std::make_shared<DeliveryHandler>(std::move(on_delivery));
  handlers->on_cancel = std::make_shared<CancelHandler>(std::move(on_cancel));
  ChannelOp op;
  op.kind = ChannelOp::Kind::kRpc;
  if (Status st = wire::append_method_frame(op.frames, id_, m); !st.ok()) {
    reply->fail(std::move(st).with_context("amqp: basic.consume"));
    return f;
  }
  op.accepts = detail::accepts_one_of<wire::BasicConsumeOk>;
  auto core = core_;
  const std::uint16_t id = id_;
  const auto shared = shared_;
  op.done = [core, shared, id, reply, handlers](Result<Incoming> in) {
    if (!in) return reply->fail(in.error());
    auto ch = core->channel(id, *shared);
    if (!ch) return reply->fail(ch.error());
    // Registered before any later frame is read: the first delivery finds it.
    handlers->tag = std::get<wire::BasicConsumeOk>(in->method).consumer_tag;
    std::string tag = handlers->tag;
    core->add_consumer(**ch, std::move(*handlers));
    reply->set(std::move(tag));
  };
  const Status st =
      core->submit([core, shared, id, reply, op = std::make_shared<ChannelOp>(std::move(op))] {
        auto ch = core->channel(id, *shared);
        if (!ch) return reply->fail(gone(*shared, ch.error()));
        core->enqueue(**ch, std::move(*op));
      });
  if (!st.ok()) reply->fail(closed("amqp: the connection is closed"));
  return f;
}

std::future<Status> Channel::cancel(std::string consumer_tag) {
  wire::BasicCancel m;
  m.consumer_tag = consumer_tag;
  auto core = core_;
  const std::uint16_t id = id_;
  return call<Status>(core_, shared_, id_, m, detail::accepts_one_of<wire::BasicCancelOk>,
                      [core, shared = shared_, id, tag = std::move(consumer_tag)](Incoming&&) {
                        auto ch = core->channel(id, *shared);
                        if (ch) core->remove_consumer(**ch, tag, ok_status());
                        return ok_status();
                      });
}

std::future<Result<std::optional<Delivery>>> Channel::get(std::string queue, bool no_ack) {
  wire::BasicGet m;
  m.queue = std::move(queue);
  m.no_ack = no_ack;
  return call<Result<std::optional<Delivery>>>(
      core_, shared_, id_, m, detail::accepts_one_of<wire::BasicGetOk, wire::BasicGetEmpty>,
      [shared = shared_](Incoming&& in) -> Result<std::optional<Delivery>> {
        if (std::holds_alternative<wire::BasicGetEmpty>(in.method)) {
          return std::optional<Delivery>();
        }
        Delivery d = detail::to_delivery(std::move(in));
        // Runs on the loop thread, like the deliveries' offsetting.
        shared->last_wire_tag = std::max(shared->last_wire_tag, d.delivery_tag);
        d.delivery_tag += shared->tag_offset.load(std::memory_order_relaxed);
        return std::optional<Delivery>(std::move(d));
      });
}

// Acks, nacks and rejects: an error when the channel is already closed (the
// broker would never see the frame: it forgets a channel's deliveries when
// the channel closes). One that races the close is dropped on the loop; the
// broker requeues that delivery with the rest of the channel's.
namespace {
Status stale_tag(ConnectionCore& core, std::uint16_t id, std::uint64_t tag) {
  core.count_stale_ack();
  return connection_lost("amqp: channel " + std::to_string(id) + ": delivery tag " +
                         std::to_string(tag) +
                         " is from an earlier connection epoch (the connection was recovered "
                         "since): the broker requeued that message; nothing was sent");
}

Status send_now(const Channel& self, const std::shared_ptr<ConnectionCore>& core,
                const std::shared_ptr<detail::ChannelShared>& shared, std::uint16_t id,
                std::uint64_t tag, bool multiple, wire::Method m) {
  // Tag 0 with `multiple` means "everything outstanding", in this epoch.
  const bool all = tag == 0 && multiple;
  if (!all && tag <= shared->tag_offset.load(std::memory_order_acquire)) {
    return stale_tag(*core, id, tag);
  }
  if (!self.is_open() && core->is_recovering() && shared->open.load(std::memory_order_acquire)) {
    return unavailable("amqp: channel " + std::to_string(id) +
                       ": the connection is recovering; nothing to acknowledge until it has");
  }
  if (!self.is_open()) {
    Status why = self.close_reason();
    return why.ok() ? closed("amqp: channel " + std::to_string(id) + " is closed") : why;
  }
  if (shared->closing.load(std::memory_order_acquire)) {
    return closed("amqp: channel " + std::to_string(id) + " is closing");
  }
  const Status st =
      core->submit([core, shared, id, tag, all, m = std::make_shared<wire::Method>(std::move(m))] {
        auto ch = core->channel(id, *shared);
        if (!ch || (*ch)->phase != ChannelState::Phase::kOpen) return;
        // A recovery may have ended the tag's epoch since the check above.
        const std::uint64_t offset = shared->tag_offset.load(std::memory_order_acquire);
        if (!all && tag <= offset) {
          (void)stale_tag(*core, id, tag);
          return;
        }
        std::visit(
            [&](auto& method) {
              if constexpr (requires { method.delivery_tag; }) {
                if (!all) method.delivery_tag = tag - offset;  // the broker's tag in this epoch
              }
            },
            *m);
        core->send_method(id, *m);
      });
  if (!st.ok()) return closed("amqp: channel " + std::to_string(id) + ": the connection is closed");
  return st;
}
}  // namespace

Status Channel::ack(std::uint64_t delivery_tag, bool multiple) {
  wire::BasicAck m;
  m.delivery_tag = delivery_tag;
  m.multiple = multiple;
  return send_now(*this, core_, shared_, id_, delivery_tag, multiple, std::move(m));
}

Status Channel::nack(std::uint64_t delivery_tag, bool multiple, bool requeue) {
  wire::BasicNack m;
  m.delivery_tag = delivery_tag;
  m.multiple = multiple;
  m.requeue = requeue;
  return send_now(*this, core_, shared_, id_, delivery_tag, multiple, std::move(m));
}

Status Channel::reject(std::uint64_t delivery_tag, bool requeue) {
  wire::BasicReject m;
  m.delivery_tag = delivery_tag;
  m.requeue = requeue;
  return send_now(*this, core_, shared_, id_, delivery_tag, false, std::move(m));
}

void Channel::set_return_handler(ReturnHandler handler) {
  auto core = core_;
  const std::uint16_t id = id_;
  (void)core->submit([core, shared = shared_, id,
                      h = std::make_shared<ReturnHandler>(std::move(handler))]() mutable {
    auto ch = core->channel(id, *shared);
    if (ch) (*ch)->on_return = std::move(h);
  });
}

std::future<Status> Channel::close() {
  auto reply = std::make_shared<Reply<Status>>();
  auto f = reply->future();
  auto core = core_;
  const std::uint16_t id = id_;
  const Status st = core->submit([core, shared = shared_, id, reply] {
    auto ch = core->channel(id, *shared);
    if (!ch) return reply->set(ok_status());  // already closed
    core->close_channel(**ch, reply);
  });
  if (!st.ok()) reply->set(ok_status());  // the connection is gone, and the channel with it
  return f;
}

}  // namespace myelin::amqp
