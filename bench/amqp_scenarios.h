// The scenarios of `myelin bench amqp` for myelin's own client (seed 002's
// tables), each against the private RabbitMQ node and timed only after
// every thread has started and waits at a barrier.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "myelin/amqp/connection.h"
#include "myelin/base/latency_recorder.h"
#include "myelin/base/result.h"

namespace myelin::bench::amqp_scenarios {

inline constexpr std::size_t kMessageBytes = 100;  // as the Python peers send

struct PublishResult {
  std::size_t threads = 0;
  std::size_t per_thread = 0;
  bool confirms = false;
  double seconds = 0;  // barrier release -> last publish settled
  double msgs_per_s = 0;
  // Until the broker holds every message (its queue depth, polled): for
  // unconfirmed publishing, when the work is really done.
  double broker_seconds = 0;
  double broker_msgs_per_s = 0;
  LatencySummary latency;    // per publish: acquire + publish -> outcome
  std::size_t failed = 0;    // publishes whose outcome was an error
  std::size_t in_queue = 0;  // messages the broker holds afterwards
};

// `threads` threads share `connection` through a channel pool of
// `pool_size`; each acquires a channel, publishes one message, releases it,
// `per_thread` times. With confirms each outcome is the broker's ack.
Result<PublishResult> publish(std::shared_ptr<amqp::Connection> connection, std::size_t threads,
                              std::size_t per_thread, bool confirms, std::size_t pool_size);

struct PoolResult {
  std::size_t threads = 0;
  std::size_t ops = 0;
  double ops_per_s = 0;
  LatencySummary latency;  // one acquire + release
};

Result<PoolResult> pool_churn(std::shared_ptr<amqp::Connection> connection, std::size_t threads,
                              std::size_t ops_per_thread, std::size_t pool_size);

struct ConsumersResult {
  std::size_t consumers = 0;
  double offered_per_s = 0;  // 0: a burst
  std::size_t published = 0;
  std::size_t received = 0;  // distinct messages
  std::size_t duplicates = 0;
  double loss_pct = 0;
  double consume_msgs_per_s = 0;  // first publish -> last message handled
  double startup_ms = 0;          // all channels open and every consume-ok back
  LatencySummary e2e;             // publish -> handler, ns
};

// `consumers` consumers (one channel each, prefetch 10, manual acks) on one
// queue; a producer publishes `messages` stamped with their send time, all at
// once (offered_per_s = 0) or paced at `offered_per_s`.
Result<ConsumersResult> consumers(amqp::Connection& connection, std::size_t consumers,
                                  std::size_t messages, double offered_per_s = 0);

}  // namespace myelin::bench::amqp_scenarios
