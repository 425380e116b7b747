// AmqpInferenceServer: the RabbitMQ front end of `myelin serve`.
//
// Consumes request envelopes (envelope.h, the same bytes as the MSC1 front
// end) from one durable queue per model, `<queue_prefix><model>`, with a
// prefetch window, and feeds them to the same batcher as HTTP and MSC1.
// Each request's reply envelope goes to its `reply_to` (through the default
// exchange) with its `correlation_id`, published with confirms; the request
// is acknowledged only once its reply is confirmed, so a worker that dies
// before that leaves the request to the broker, which redelivers it to
// another worker (at-least-once; the envelope's id lets a client drop a
// duplicate reply).
//
// A request that cannot be served as sent (no reply_to, an envelope that
// does not decode, an unknown model version, inputs that do not fit) gets
// an error reply when it has a reply_to and is then acknowledged, or
// rejected without requeue when `dead_letter_exchange` is set (the queue is
// declared with it, so the broker dead-letters it there): never requeued
// forever. A reply the broker cannot route (the client's reply queue is
// gone) is counted and its request acknowledged: nobody is left to answer.
//
// docs/serving.md, "The RabbitMQ front end", has the queue arguments, the
// message properties and the failure table.
//
// Threading: create, start and shutdown from one thread. Deliveries run on
// the AMQP connection's delivery threads; replies are encoded on the
// batcher's worker threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "myelin/amqp/config.h"
#include "myelin/base/clock.h"
#include "myelin/base/result.h"
#include "myelin/serve/model_repository.h"

namespace myelin::serve {

inline constexpr std::string_view kAmqpQueuePrefix = "myelin.infer.";
// content_type of request and reply bodies.
inline constexpr std::string_view kEnvelopeContentType = "application/x-myelin-envelope";

struct AmqpServerOptions {
  // With connection.recovery.enabled (myelin serve turns it on unless the
  // URI says recovery=0), a lost connection is re-established and the
  // consumers restarted: serving pauses and resumes. Requests taken before
  // the loss are redelivered by the broker (their acks belong to the dead
  // connection and are dropped), so a client may get a reply twice.
  amqp::ConnectionConfig connection;
  std::string queue_prefix = std::string(kAmqpQueuePrefix);
  // Unacknowledged requests per queue the broker lets this worker hold
  // (basic.qos per consumer): the worker's share of the work in flight.
  std::uint16_t prefetch = 64;
  // Set: queues are declared with x-dead-letter-exchange = this, and a
  // request that cannot be served is rejected (dead-lettered) after its
  // error reply instead of acknowledged.
  std::string dead_letter_exchange;
  // Where a request's arrival is stamped; null: the monotonic clock.
  const Clock* clock = nullptr;
};

struct AmqpServerStats {
  std::uint64_t requests = 0;        // deliveries taken
  std::uint64_t replies = 0;         // replies confirmed by the broker (ok or error)
  std::uint64_t error_replies = 0;   // of which carried an error
  std::uint64_t rejected = 0;        // requests with no reply_to, or dead-lettered
  std::uint64_t unroutable = 0;      // replies the broker returned: no reply queue
  std::uint64_t reply_failures = 0;  // replies nacked or lost with the channel: requeued
  std::uint64_t in_flight = 0;       // taken, not yet settled
  std::uint64_t recoveries = 0;      // the connection's completed recoveries
};

class AmqpInferenceServer {
 public:
  static Result<std::unique_ptr<AmqpInferenceServer>> create(AmqpServerOptions options,
                                                             ModelRepository& repository);
  ~AmqpInferenceServer();  // shutdown() with no wait
  AmqpInferenceServer(const AmqpInferenceServer&) = delete;
  AmqpInferenceServer& operator=(const AmqpInferenceServer&) = delete;

  // Connects, declares the queue of every model the repository serves and
  // starts consuming. An error names the broker or the queue.
  Status start();
  // The queues consumed, in the repository's order.
  [[nodiscard]] std::vector<std::string> queues() const;
  [[nodiscard]] AmqpServerStats stats() const;
  // Stops taking requests (cancels the consumers), waits until `deadline`
  // for the requests taken to be answered and acknowledged, then closes
  // the connection (the broker requeues whatever is still unacknowledged).
  // deadline_exceeded when requests were left. Idempotent.
  Status shutdown(MonoTime deadline);

  struct State;

 private:
  explicit AmqpInferenceServer(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace myelin::serve
