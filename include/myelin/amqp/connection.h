// A thread-safe AMQP 0-9-1 client for RabbitMQ: Connection and Channel.
//
// One Connection is one byte stream with one I/O owner: an EventLoop thread,
// which the Connection starts by default, or a caller's running loop shared
// with other connections (ConnectionDriver). That thread alone touches the
// stream, the codec and every channel's state; it sends and checks
// heartbeats, on the loop's clock, whatever the application does. Every public method below may be
// called from any thread: it hands the work to the loop through its ingress queue and reports back
// through a std::future or a callback. The codec itself has no locks; thread safety comes from that
// hand-off.
//
// Errors reach the caller that caused them. A channel-level error from the
// broker (a passive declare of a missing queue, a publish to a missing
// exchange) fails the call that was in flight and closes that channel only;
// the connection and the other channels keep working. A dead connection
// fails every pending call with kUnavailable.
//
// Async contract: a call that takes a callback and returns an error never
// runs the callback; otherwise the callback runs exactly once, on the loop
// thread (publish callbacks) or on a delivery thread (consumer handlers).
// Callbacks must not block; they may call back into the client (the calls
// that block by nature, Connection::open_channel and ChannelPool::acquire,
// refuse to run on the loop thread, and Connection::close() there starts the
// close without waiting for it).
//
// Epochs: every connection to a broker has an epoch (a process-wide
// counter); a recovered connection (ConnectionConfig::recovery) gets a new
// one. A recoverable Channel moves into the new epoch with its connection
// (same object, re-opened, its qos, confirm mode and consumers restored);
// delivery tags it handed out in an earlier epoch are stale: acks for them
// are dropped and counted, never sent (the broker requeued those messages).
// A channel opened with recoverable = false (ChannelPool's) stays in its
// epoch and is closed with kConnectionLost when that epoch ends.
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "myelin/amqp/config.h"
#include "myelin/amqp/types.h"
#include "myelin/base/result.h"
#include "myelin/base/status.h"
#include "myelin/loop/event_loop.h"
#include "myelin/net/stream.h"

namespace myelin::amqp {

namespace detail {
class ConnectionCore;
struct ChannelShared;
}  // namespace detail

struct Message {
  BasicProperties properties;
  std::string body;
};

// A message handed to a consumer or returned by get().
struct Delivery {
  std::string consumer_tag;  // empty for basic.get
  std::uint64_t delivery_tag = 0;
  bool redelivered = false;
  std::string exchange;
  std::string routing_key;
  std::uint32_t message_count = 0;  // basic.get only: messages left in the queue
  BasicProperties properties;
  std::string body;
};

struct ExchangeOptions {
  bool passive = false;
  bool durable = false;
  bool auto_delete = false;
  bool internal = false;
  FieldTable arguments;
};

struct QueueOptions {
  bool passive = false;
  bool durable = false;
  bool exclusive = false;
  bool auto_delete = false;
  FieldTable arguments;
};

struct QueueInfo {
  std::string name;  // the broker's name when declared with an empty one
  std::uint32_t message_count = 0;
  std::uint32_t consumer_count = 0;
};

struct ConsumeOptions {
  std::string consumer_tag;  // empty: the broker picks one
  bool no_ack = false;
  bool exclusive = false;
  FieldTable arguments;
};

struct PublishOptions {
  bool mandatory = false;
};

// Runs once per publish: ok when the broker confirmed it (confirm mode) or
// when it was handed to the socket (no confirm mode); kAborted for a nack;
// kNotFound when a mandatory message was returned unroutable; kUnavailable
// or kClosed when the channel or connection died first.
using PublishCallback = std::function<void(const Status&)>;
using DeliveryHandler = std::function<void(Delivery&&)>;
// Runs once when a consumer ends: ok after our cancel, an error when the
// broker cancelled it (queue deleted) or the channel/connection died.
using CancelHandler = std::function<void(const Status&)>;
// Receives mandatory messages the broker could not route (basic.return).
using ReturnHandler = std::function<void(std::uint16_t reply_code, const std::string& reply_text,
                                         Delivery&& message)>;

class Channel {
 public:
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  [[nodiscard]] std::uint16_t id() const noexcept { return id_; }
  // The epoch of the connection this channel is on (it follows a recovery).
  [[nodiscard]] std::uint64_t epoch() const noexcept;
  // False once the broker or we closed it, or its connection died.
  [[nodiscard]] bool is_open() const noexcept;
  // Why it closed (ok while open).
  [[nodiscard]] Status close_reason() const;

  std::future<Status> exchange_declare(std::string name, std::string type,
                                       ExchangeOptions options = {});
  std::future<Status> exchange_delete(std::string name, bool if_unused = false);
  std::future<Result<QueueInfo>> queue_declare(std::string name, QueueOptions options = {});
  std::future<Status> queue_bind(std::string queue, std::string exchange, std::string routing_key,
                                 FieldTable arguments = {});
  std::future<Status> queue_unbind(std::string queue, std::string exchange, std::string routing_key,
                                   FieldTable arguments = {});
  // Messages purged / deleted.
  std::future<Result<std::uint32_t>> queue_purge(std::string queue);
  std::future<Result<std::uint32_t>> queue_delete(std::string queue, bool if_unused = false,
                                                  bool if_empty = false);
  std::future<Status> qos(std::uint16_t prefetch_count, bool global = false);

  // Puts the channel in confirm mode: every later publish is confirmed by
  // the broker. At most `window` publishes wait unconfirmed; later ones wait
  // in the channel (in order) until confirms free the window.
  std::future<Status> confirm_select(std::size_t window = 4096);

  // Publishes; `done` (may be empty) reports the outcome as above.
  Status publish(std::string exchange, std::string routing_key, Message message,
                 PublishCallback done = {}, PublishOptions options = {});
  std::future<Status> publish(std::string exchange, std::string routing_key, Message message,
                              PublishOptions options);
  // Many messages to one exchange/routing key, handed to the loop in one
  // step; `done` runs once, with the first failure or ok when all succeeded.
  Status publish_batch(std::string exchange, std::string routing_key, std::vector<Message> messages,
                       PublishCallback done, PublishOptions options = {});

  // Starts a consumer. Deliveries run `on_delivery` on the connection's
  // delivery threads, in order for this channel. The future gives the tag.
  std::future<Result<std::string>> consume(std::string queue, DeliveryHandler on_delivery,
                                           ConsumeOptions options = {},
                                           CancelHandler on_cancel = {});
  std::future<Status> cancel(std::string consumer_tag);
  // basic.get: nullopt when the queue was empty.
  std::future<Result<std::optional<Delivery>>> get(std::string queue, bool no_ack = false);

  // Acknowledgements; any thread. They fail (with the close reason) once the
  // channel is closed or closing, by us, by the broker or with its
  // connection: the broker forgets the channel's deliveries then (and
  // requeues them), so there is nothing left to acknowledge. After a
  // recovery, a tag from an earlier epoch fails with kConnectionLost and is
  // counted (ConnectionStats::stale_acks_dropped); nothing is sent. (Tags
  // keep growing across recoveries on one Channel, so they never collide.)
  Status ack(std::uint64_t delivery_tag, bool multiple = false);
  Status nack(std::uint64_t delivery_tag, bool multiple = false, bool requeue = true);
  Status reject(std::uint64_t delivery_tag, bool requeue = true);

  // Where basic.return messages go (set before publishing mandatory ones).
  void set_return_handler(ReturnHandler handler);

  // Closes the channel; a close while one is in flight joins it (both
  // futures complete when the channel is closed). Ok when already closed.
  std::future<Status> close();

 private:
  friend class detail::ConnectionCore;
  Channel(std::shared_ptr<detail::ConnectionCore> core,
          std::shared_ptr<detail::ChannelShared> shared, std::uint16_t id);
  std::shared_ptr<detail::ConnectionCore> core_;
  std::shared_ptr<detail::ChannelShared> shared_;
  std::uint16_t id_;
};

struct ConnectionStats {
  std::uint64_t frames_in = 0;
  std::uint64_t frames_out = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t writes = 0;  // write/writev calls: bytes_out / writes is the coalescing
  std::uint64_t heartbeats_in = 0;
  std::uint64_t heartbeats_out = 0;
  std::uint32_t channels_open = 0;
  // Automatic recovery.
  std::uint64_t recoveries = 0;             // completed
  std::uint64_t recovery_attempts = 0;      // reconnect attempts started
  std::uint64_t stale_acks_dropped = 0;     // ack/nack/reject of an earlier epoch's tag
  std::uint64_t recovery_waits_failed = 0;  // calls made while recovering that failed
};

// What a recovery listener hears, on the loop thread, in this order:
// kStarted once, then kRetrying before each attempt, then kRecovered or
// kFailed once (after kFailed, on_closed runs with the final reason).
struct RecoveryEvent {
  enum class Kind : std::uint8_t { kStarted, kRetrying, kRecovered, kFailed };
  Kind kind = Kind::kStarted;
  // kStarted: why the connection died. kRetrying: why the previous attempt
  // failed (ok before the first). kFailed: why recovery gave up.
  Status cause;
  std::uint32_t attempt = 0;    // kRetrying, kRecovered, kFailed: attempts made so far
  Nanos delay{0};               // kRetrying: the wait before this attempt
  Nanos downtime{0};            // kRecovered: from the death to the last restoration
  std::uint64_t epoch = 0;      // the epoch that died (kStarted) or was entered (kRecovered)
  std::uint32_t channels = 0;   // kRecovered: channels re-opened
  std::uint32_t consumers = 0;  // kRecovered: consumers restarted
};
[[nodiscard]] std::string_view to_string(RecoveryEvent::Kind kind) noexcept;

using RecoveryListener = std::function<void(const RecoveryEvent&)>;

// Where a connection runs. Both members are optional; left empty,
// Connection::connect dials config.host:port over TCP and runs the
// connection on an EventLoop thread of its own, as the one-argument
// overload does.
struct ConnectionDriver {
  // A loop to share (a server's I/O loop): it must be running or about to
  // run, and outlive the Connection and every Channel from it. Heartbeats
  // and their timeouts read its clock (EventLoopOptions::clock), so a
  // FakeClock there drives them in tests. connect() refuses to run on this
  // loop's thread (it blocks until the handshake ends).
  EventLoop* loop = nullptr;
  // A connected byte stream (TCP, Unix socket, memory pipe) to speak AMQP
  // on instead of dialing config.host:port. The connection owns it.
  std::unique_ptr<net::Stream> stream;
  // Opens the byte stream for a recovery attempt; called on a helper thread
  // (it may block up to config.connect_timeout). Empty: dial the endpoints
  // (or host:port) over TCP, as connect() does.
  std::function<Result<std::unique_ptr<net::Stream>>()> reconnect;
};

class Connection {
 public:
  // Connects, authenticates (PLAIN), negotiates channel_max / frame_max /
  // heartbeat and opens the vhost; blocks until open or failed (at most
  // config.connect_timeout, measured by the calling thread).
  static Result<std::shared_ptr<Connection>> connect(ConnectionConfig config);
  static Result<std::shared_ptr<Connection>> connect(ConnectionConfig config,
                                                     ConnectionDriver driver);
  // Closes, waiting at most config().close_timeout_on_destroy for close-ok
  // (not at all on the loop thread).
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Opens a channel (blocking until channel.open-ok or the timeout).
  // `recoverable`: with recovery on, the channel is re-opened on the
  // recovered connection; false closes it with kConnectionLost instead.
  Result<std::shared_ptr<Channel>> open_channel(Nanos timeout = std::chrono::seconds(10),
                                                bool recoverable = true);

  // Clean close handshake, waiting at most config().close_timeout (or
  // `timeout`) for close-ok, then kDeadlineExceeded and the socket is
  // dropped; later calls fail with kClosed. On the loop thread it starts the
  // handshake and returns at once.
  Status close();
  Status close(Nanos timeout);

  [[nodiscard]] bool is_open() const noexcept;
  // connection.blocked from the broker (a resource alarm) until unblocked.
  [[nodiscard]] bool is_blocked() const noexcept;
  // Runs on the loop thread with the reason text, or "" when unblocked.
  void on_blocked(std::function<void(bool blocked, const std::string& reason)> callback);
  // Runs once, on the loop thread, when the connection ends for good: an
  // application close, a death recovery does not cover, or recovery gave up.
  void on_closed(std::function<void(const Status&)> callback);
  // True while automatic recovery is reconnecting (is_open() is false then).
  [[nodiscard]] bool is_recovering() const noexcept;
  // Adds a listener for recovery events (see RecoveryEvent); it may drop the
  // last reference to this Connection. Listeners cannot be removed.
  void add_recovery_listener(RecoveryListener listener);
  [[nodiscard]] Status close_reason() const;

  // The current epoch (a new one after each recovery).
  [[nodiscard]] std::uint64_t epoch() const noexcept;
  [[nodiscard]] std::uint16_t channel_max() const noexcept;
  [[nodiscard]] std::uint32_t frame_max() const noexcept;
  [[nodiscard]] std::uint16_t heartbeat_s() const noexcept;
  [[nodiscard]] ConnectionStats stats() const;
  [[nodiscard]] const ConnectionConfig& config() const noexcept;
  // True on this connection's loop thread, where publish callbacks,
  // on_closed and on_blocked run (blocking calls refuse to run there).
  [[nodiscard]] bool in_loop_thread() const noexcept;

 private:
  explicit Connection(std::shared_ptr<detail::ConnectionCore> core);
  std::shared_ptr<detail::ConnectionCore> core_;
};

}  // namespace myelin::amqp
