// ConnectionConfig: where and how an amqp::Connection connects.
//
// Built field by field or parsed from an AMQP URI:
//   amqp://user:pass@host:port/vhost?heartbeat=10&frame_max=131072&channel_max=64
//         &connection_timeout=5000&name=worker-1
// Percent-escapes are decoded in user, password and vhost ("%2f" is "/").
// An empty path means vhost "/". Only amqp:// (plain TCP) is supported;
// amqps:// is refused with a clear error. A value object: no thread rules.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "myelin/base/clock.h"
#include "myelin/base/result.h"

namespace myelin::amqp {

struct ConnectionConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 5672;
  std::string user = "guest";
  std::string password = "guest";
  std::string vhost = "/";
  // What the client asks for in tune-ok; the smaller non-zero of ours and the
  // broker's wins.
  std::uint16_t channel_max = 2047;
  std::uint32_t frame_max = 131072;
  // Seconds; 0 asks for no heartbeats (the broker may still insist).
  std::uint16_t heartbeat_s = 60;
  Nanos connect_timeout = std::chrono::seconds(10);
  // Shown by the broker's management tools as connection_name.
  std::string name = "myelin";
  // Threads that run consumer callbacks (per-channel order is kept).
  unsigned delivery_threads = 2;

  static Result<ConnectionConfig> from_uri(std::string_view uri);
  // "amqp://user@host:port/vhost" (no password): for logs.
  [[nodiscard]] std::string describe() const;
};

}  // namespace myelin::amqp
