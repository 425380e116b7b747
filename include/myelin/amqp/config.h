// ConnectionConfig: where and how an amqp::Connection connects.
//
// Built field by field or parsed from an AMQP URI:
//   amqp://user:pass@host:port/vhost?heartbeat=10&frame_max=131072&channel_max=64
//         &connection_timeout=5000&close_timeout=5000&close_timeout_on_destroy=2000
//         &name=worker-1&recovery=1
// (the timeouts in milliseconds; recovery=0|1 sets recovery.enabled)
// Percent-escapes are decoded in user, password and vhost ("%2f" is "/").
// An empty path means vhost "/". Only amqp:// (plain TCP) is supported;
// amqps:// is refused with a clear error. A value object: no thread rules.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "myelin/base/clock.h"
#include "myelin/base/result.h"

namespace myelin::amqp {

// One broker address (a node of a cluster).
struct Endpoint {
  std::string host;
  std::uint16_t port = 5672;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};

// Automatic recovery: what a Connection does when it dies under the
// application (docs/amqp.md, "Automatic recovery"). Off by default: with it
// on, Channel objects outlive the TCP connection they were opened on and
// on_closed() runs only when recovery ends or gives up, which a caller must
// be ready for; a serving worker turns it on (`recovery=1` in the URI).
struct RecoveryConfig {
  bool enabled = false;
  // Delay before attempt k (k = 1, 2, ...): min(max_delay, initial_delay *
  // multiplier^(k-1)), less a random share of up to `jitter` (0..1) of it, so
  // that many workers that lost the same node do not return in lockstep.
  Nanos initial_delay = std::chrono::milliseconds(100);
  Nanos max_delay = std::chrono::seconds(10);
  double multiplier = 2.0;
  double jitter = 0.5;
  // 0: try forever. Each attempt dials the endpoints (or host:port) in order,
  // or shuffled with shuffle_endpoints, until one accepts, then handshakes.
  std::uint32_t max_attempts = 0;
  // Publishes (and other channel calls) made while the connection recovers:
  // wait to be sent on the recovered connection, at most `max_waiting`
  // publishes and `max_wait` each, else fail (kResourceExhausted /
  // kDeadlineExceeded); with fail_fast they fail at once with kUnavailable.
  bool fail_fast = false;
  std::size_t max_waiting = 10000;
  Nanos max_wait = std::chrono::seconds(30);
};

struct ConnectionConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 5672;
  // A cluster's nodes. When non-empty, connect() dials these instead of
  // host:port, in order (or shuffled, which spreads many workers over the
  // nodes) until one accepts the TCP connection, each within
  // connect_timeout; the connection then records the node it reached in
  // host and port. Only an unreachable node moves on to the next: a node
  // that answers and refuses (credentials, vhost) ends the connect, since
  // every node of a cluster would refuse the same way. Not in the URI.
  std::vector<Endpoint> endpoints;
  bool shuffle_endpoints = false;
  std::string user = "guest";
  std::string password = "guest";
  std::string vhost = "/";
  // What the client asks for in tune-ok; the smaller non-zero of ours and the
  // broker's wins.
  std::uint16_t channel_max = 2047;
  std::uint32_t frame_max = 131072;
  // Seconds; 0 asks for no heartbeats (the broker may still insist). A
  // silent peer (a black-holed path, a frozen broker) is noticed 1.5 to 1.75
  // heartbeats after its last byte, so this bounds how long a serving worker
  // keeps taking requests it cannot answer. 10 s notices within ~18 s for
  // one small frame each way every 5 s; RabbitMQ's own default (60 s) would
  // leave a worker deaf for up to 105 s.
  std::uint16_t heartbeat_s = 10;
  Nanos connect_timeout = std::chrono::seconds(10);
  // How long Connection::close() waits for the broker's close-ok before it
  // drops the socket anyway (kDeadlineExceeded), and how long ~Connection
  // waits (it blocks the thread that drops the last reference).
  Nanos close_timeout = std::chrono::seconds(5);
  Nanos close_timeout_on_destroy = std::chrono::seconds(2);
  // Shown by the broker's management tools as connection_name.
  std::string name = "myelin";
  // Threads that run consumer callbacks (per-channel order is kept).
  unsigned delivery_threads = 2;
  RecoveryConfig recovery;

  static Result<ConnectionConfig> from_uri(std::string_view uri);
  // "amqp://user@host:port/vhost" (no password): for logs.
  [[nodiscard]] std::string describe() const;
};

}  // namespace myelin::amqp
