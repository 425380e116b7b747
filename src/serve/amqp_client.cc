// AmqpClient: request envelopes to a model's queue, replies through direct
// reply-to (amqp_client.h).
#include "myelin/serve/amqp_client.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <unordered_set>
#include <utility>

#include "myelin/amqp/connection.h"

namespace myelin::serve {
namespace {

// RabbitMQ's direct reply-to pseudo-queue: consumed (no-ack) on the channel
// that publishes; replies addressed to it reach that channel.
constexpr std::string_view kDirectReplyTo = "amq.rabbitmq.reply-to";

}  // namespace

struct AmqpClient::Inbox {
  std::mutex mu;
  std::condition_variable ready;
  std::deque<Result<InferReply>> replies;
  std::unordered_set<std::string> outstanding;  // correlation ids sent, not answered
  std::uint64_t duplicates = 0;
  Status dead;  // set when the reply consumer ended

  // A reply (or a failure standing for one) for `correlation_id`; dropped
  // and counted when that id was answered already.
  void deliver(const std::string& correlation_id, Result<InferReply> reply) {
    std::lock_guard lock(mu);
    if (outstanding.erase(correlation_id) == 0) {
      ++duplicates;
      return;
    }
    replies.push_back(std::move(reply));
    ready.notify_one();
  }
  void fail(const std::string& correlation_id, std::uint64_t id, ReplyCode code,
            std::string message) {
    InferReply r;
    r.id = id;
    r.code = code;
    r.message = std::move(message);
    deliver(correlation_id, std::move(r));
  }
};

AmqpClient::~AmqpClient() { (void)close(); }

Result<std::unique_ptr<AmqpClient>> AmqpClient::connect(amqp::ConnectionConfig config,
                                                        std::string queue_prefix) {
  std::unique_ptr<AmqpClient> c(new AmqpClient());
  c->prefix_ = std::move(queue_prefix);
  c->inbox_ = std::make_shared<Inbox>();
  MYELIN_ASSIGN_OR_RETURN(c->connection_, amqp::Connection::connect(std::move(config)));
  MYELIN_ASSIGN_OR_RETURN(c->channel_, c->connection_->open_channel());
  MYELIN_RETURN_IF_ERROR(c->channel_->confirm_select().get());
  std::weak_ptr<Inbox> weak = c->inbox_;
  amqp::ConsumeOptions co;
  co.no_ack = true;  // direct reply-to requires it
  auto tag =
      c->channel_
          ->consume(
              std::string(kDirectReplyTo),
              [weak](amqp::Delivery&& d) {
                const auto inbox = weak.lock();
                if (!inbox) return;
                inbox->deliver(
                    d.properties.correlation_id.value_or(""),
                    decode_infer_reply(std::as_bytes(std::span(d.body.data(), d.body.size()))));
              },
              co,
              [weak](const Status& why) {
                const auto inbox = weak.lock();
                if (!inbox || why.ok()) return;
                std::lock_guard lock(inbox->mu);
                inbox->dead = why;
                inbox->ready.notify_all();
              })
          .get();
  if (!tag) {
    return Status(tag.error().code(),
                  "amqp client: consuming direct reply-to: " + std::string(tag.error().message()));
  }
  return c;
}

Status AmqpClient::send_raw(std::string_view model, std::uint64_t correlation_id,
                            std::span<const std::byte> body, bool reply) {
  const std::string cid = std::to_string(correlation_id);
  amqp::Message m;
  m.properties.content_type = std::string(kEnvelopeContentType);
  m.properties.correlation_id = cid;
  if (reply) m.properties.reply_to = std::string(kDirectReplyTo);
  m.body.assign(reinterpret_cast<const char*>(body.data()), body.size());
  std::string queue = prefix_ + std::string(model);
  if (reply) {
    std::lock_guard lock(inbox_->mu);
    inbox_->outstanding.insert(cid);
  }
  std::weak_ptr<Inbox> weak = inbox_;
  const Status s = channel_->publish(
      "", queue, std::move(m),
      [weak, cid, correlation_id, queue, reply](const Status& outcome) {
        const auto inbox = weak.lock();
        if (!inbox || outcome.ok() || !reply) return;
        if (outcome.code() == ErrorCode::kNotFound) {
          inbox->fail(cid, correlation_id, ReplyCode::kNotFound,
                      "no queue '" + queue + "': no worker serves this model");
        } else {
          inbox->fail(cid, correlation_id, ReplyCode::kUnavailable,
                      "request not accepted by the broker: " + std::string(outcome.message()));
        }
      },
      amqp::PublishOptions{.mandatory = true});
  if (!s.ok() && reply) {
    std::lock_guard lock(inbox_->mu);
    inbox_->outstanding.erase(cid);
  }
  return s;
}

Status AmqpClient::send(const RequestEnvelope& request) {
  MYELIN_ASSIGN_OR_RETURN(std::vector<std::byte> bytes, encode_request(request));
  return send_raw(request.model, request.id, bytes);
}

Result<InferReply> AmqpClient::receive(Nanos timeout) {
  std::unique_lock lock(inbox_->mu);
  const bool got = inbox_->ready.wait_for(
      lock, timeout, [&] { return !inbox_->replies.empty() || !inbox_->dead.ok(); });
  if (!inbox_->replies.empty()) {
    Result<InferReply> r = std::move(inbox_->replies.front());
    inbox_->replies.pop_front();
    return r;
  }
  if (!inbox_->dead.ok()) {
    return Status(inbox_->dead.code(),
                  "amqp client: reply consumer ended: " + std::string(inbox_->dead.message()));
  }
  (void)got;
  return deadline_exceeded(
      "amqp client: no reply within " +
      std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count()) +
      " ms (" + std::to_string(inbox_->outstanding.size()) + " requests outstanding)");
}

Result<InferReply> AmqpClient::infer(const RequestEnvelope& request, Nanos timeout) {
  MYELIN_RETURN_IF_ERROR(send(request));
  MYELIN_ASSIGN_OR_RETURN(InferReply reply, receive(timeout));
  if (reply.id != request.id) {
    return protocol_error("amqp client: reply id " + std::to_string(reply.id) +
                          " answers no request of infer(), which sent id " +
                          std::to_string(request.id));
  }
  return reply;
}

std::uint64_t AmqpClient::duplicates() const {
  std::lock_guard lock(inbox_->mu);
  return inbox_->duplicates;
}

Status AmqpClient::close() {
  if (!connection_) return {};
  channel_.reset();
  const Status s = connection_->close();
  connection_.reset();
  return s;
}

}  // namespace myelin::serve
