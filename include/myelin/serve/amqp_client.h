// AmqpClient: requests to `myelin serve --amqp` workers through RabbitMQ.
//
// Publishes request envelopes (envelope.h) to the model's queue
// (`<queue_prefix><model>`, through the default exchange) with confirms,
// and receives the replies on RabbitMQ's direct reply-to pseudo-queue
// (amq.rabbitmq.reply-to: no reply queue to declare or delete, replies go
// straight to this connection). Each request carries its envelope id as
// correlation_id; replies come back in any order with their ids.
//
// Failures reach receive() as replies, so a load generator sees every
// request end exactly once: a request no queue takes (no worker declared
// the model's queue) comes back with kNotFound, one the broker nacked or
// lost with the connection with kUnavailable.
//
// A reply whose id was already received (a worker died after replying but
// before acknowledging, and another worker answered again) is dropped and
// counted: each id is answered once.
//
// Thread-safe: send() from several threads; receive() from one at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "myelin/amqp/config.h"
#include "myelin/amqp/connection.h"
#include "myelin/base/result.h"
#include "myelin/serve/amqp_server.h"
#include "myelin/serve/client.h"

namespace myelin::serve {

class AmqpClient {
 public:
  static Result<std::unique_ptr<AmqpClient>> connect(
      amqp::ConnectionConfig config, std::string queue_prefix = std::string(kAmqpQueuePrefix));
  ~AmqpClient();
  AmqpClient(const AmqpClient&) = delete;
  AmqpClient& operator=(const AmqpClient&) = delete;

  // Publishes one request; its reply (or failure) arrives through receive().
  Status send(const RequestEnvelope& request);
  // Any bytes as the body of a request to `model`'s queue: tests and tools
  // that probe the worker. `reply` false leaves reply_to unset.
  Status send_raw(std::string_view model, std::uint64_t correlation_id,
                  std::span<const std::byte> body, bool reply = true);
  // The next reply, whichever request it answers.
  Result<InferReply> receive(Nanos timeout = std::chrono::seconds(10));
  // send() then receive(); fails if the reply's id is not the request's.
  Result<InferReply> infer(const RequestEnvelope& request,
                           Nanos timeout = std::chrono::seconds(10));
  // Replies dropped because their id had been answered already.
  [[nodiscard]] std::uint64_t duplicates() const;
  Status close();

  struct Inbox;

 private:
  AmqpClient() = default;
  std::string prefix_;
  std::shared_ptr<amqp::Connection> connection_;
  std::shared_ptr<amqp::Channel> channel_;
  std::shared_ptr<Inbox> inbox_;
};

}  // namespace myelin::serve
