// ConnectionCore: the state of one AMQP connection, owned by its loop thread.
//
// Everything here except the members marked "any thread" runs on the loop
// thread: the stream, the input and output buffers, the codec, and each
// channel's state. The loop is the core's own (a thread it starts and joins)
// or a caller's shared one (ConnectionDriver::loop); either way the core
// reads the time only from that loop's clock. Public Channel/Connection calls reach it through
// submit(), which moves a task into the loop's ingress queue.
//
// Per channel, operations keep the order in which callers issued them. A
// synchronous method (declare, bind, qos, consume, get, close, ...) is sent
// only when no other one is waiting for its reply on that channel; whatever
// the caller issued after it (publishes included) waits behind it in
// `pending`. In confirm mode a full window of unconfirmed publishes holds
// the queue the same way. That one queue is the back-pressure mechanism.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "myelin/amqp/config.h"
#include "myelin/amqp/connection.h"
#include "myelin/loop/event_loop.h"
#include "myelin/net/stream.h"
#include "src/amqp/content_assembler.h"
#include "src/amqp/delivery_executor.h"
#include "src/amqp/frame.h"
#include "src/amqp/method.h"
#include "src/amqp/reply.h"

namespace myelin::amqp::detail {

// A complete incoming method, with its content when it carries one.
struct Incoming {
  wire::Method method;
  BasicProperties properties;
  std::string body;
};

// The public Delivery for a basic.deliver, basic.get-ok or basic.return.
Delivery to_delivery(Incoming&& in);

using RpcDone = std::function<void(Result<Incoming>)>;
using Accepts = bool (*)(const wire::Method&);

// State shared between a channel's loop-side record and its user handle.
struct ChannelShared {
  // True from open-ok until the channel closes; it stays true while the
  // connection recovers (the channel is re-opened then).
  std::atomic<bool> open{false};
  std::atomic<bool> abandoned{false};  // open_channel() timed out: close on open-ok
  std::atomic<bool> closing{false};    // our channel.close is on its way
  // Re-opened by recovery (false: closed with kConnectionLost instead).
  bool recoverable = true;
  std::atomic<std::uint64_t> epoch{0};  // the connection epoch it is on
  // Delivery tags handed to the application are the broker's tag plus this:
  // the highest tag of every earlier epoch. A tag at or below it is stale.
  std::atomic<std::uint64_t> tag_offset{0};
  std::uint64_t last_wire_tag = 0;  // loop thread: highest broker tag this epoch
  mutable std::mutex mu;
  Status reason;  // guarded by mu
};

// One queued channel operation.
struct ChannelOp {
  enum class Kind : std::uint8_t { kRpc, kPublish, kFrames };
  Kind kind = Kind::kFrames;
  std::vector<std::byte> frames;  // pre-encoded frames for this channel
  std::size_t frame_count = 1;    // how many frames `frames` holds (for stats)
  // kRpc:
  Accepts accepts = nullptr;
  RpcDone done;
  // kPublish: how many publishes `frames` holds, and who hears of them.
  std::size_t publishes = 0;
  bool mandatory = false;
  PublishCallback published;
  // Recovery: an op that restores the channel (runs before the caller's), and
  // when a caller's op began waiting for the recovered connection.
  bool restore = false;
  std::optional<MonoTime> queued_at;
};

// The callers of one publish or one publish_batch: `done` runs when the last
// of its messages is settled, with the first failure.
struct PublishBatch {
  PublishCallback done;
  std::size_t remaining = 0;
  Status first_error;
};

struct Unconfirmed {
  std::uint64_t seq;  // the delivery tag the broker will confirm
  bool mandatory;
  Status returned;  // set when a basic.return came for this message
  std::shared_ptr<PublishBatch> batch;
};

struct ConsumerState {
  std::string tag;
  // What basic.consume asked for, to restart it after a recovery.
  std::string queue;
  bool no_ack = false;
  bool exclusive = false;
  FieldTable arguments;
  std::shared_ptr<DeliveryHandler> on_delivery;
  std::shared_ptr<CancelHandler> on_cancel;
};

struct ChannelState {
  enum class Phase : std::uint8_t { kOpening, kOpen, kClosing, kClosed };
  std::uint16_t id = 0;
  Phase phase = Phase::kOpening;
  std::shared_ptr<ChannelShared> shared;
  std::shared_ptr<Strand> strand;
  wire::ContentAssembler assembler;

  std::optional<ChannelOp> in_flight;  // the synchronous method awaiting its reply
  std::deque<ChannelOp> pending;

  std::optional<std::pair<std::uint16_t, bool>> qos;  // (prefetch, global) to restore
  bool confirm_mode = false;
  std::size_t window = 0;
  std::uint64_t next_seq = 1;
  std::deque<Unconfirmed> unconfirmed;
  Status return_pending;  // a basic.return arrived (its reason); its confirm follows

  std::unordered_map<std::string, ConsumerState> consumers;
  std::shared_ptr<ReturnHandler> on_return;
  // The callers of close() while it is in flight (the first and any joiners).
  std::shared_ptr<std::vector<std::shared_ptr<Reply<Status>>>> close_waiters;
};

class ConnectionCore : public std::enable_shared_from_this<ConnectionCore> {
 public:
  // kRecovering: the connection died and recovery waits for its next
  // attempt (no stream); an attempt runs kHandshake, then kOpen while the
  // channels are restored (recovering_ stays set until they are).
  enum class Phase : std::uint8_t { kHandshake, kOpen, kClosing, kRecovering, kClosed };

  static Result<std::shared_ptr<ConnectionCore>> connect(ConnectionConfig config,
                                                         ConnectionDriver driver);
  ~ConnectionCore();

  // Any thread: runs `task` on the loop thread; fails once the loop stops.
  Status submit(Task task) { return loop_->submit(std::move(task)); }
  [[nodiscard]] bool in_loop_thread() const noexcept { return loop_->in_loop_thread(); }

  // --- any thread -------------------------------------------------------
  [[nodiscard]] bool is_open() const noexcept { return open_.load(std::memory_order_acquire); }
  [[nodiscard]] bool is_blocked() const noexcept {
    return blocked_.load(std::memory_order_acquire);
  }
  [[nodiscard]] Status close_reason() const;
  [[nodiscard]] ConnectionStats stats() const;
  [[nodiscard]] std::uint64_t epoch() const noexcept {
    return epoch_.load(std::memory_order_acquire);
  }
  [[nodiscard]] bool is_recovering() const noexcept {
    return recovering_.load(std::memory_order_acquire);
  }
  [[nodiscard]] std::uint16_t channel_max() const noexcept {
    return channel_max_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint32_t frame_max() const noexcept {
    return frame_max_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint16_t heartbeat_s() const noexcept {
    return heartbeat_s_.load(std::memory_order_relaxed);
  }
  void add_recovery_listener(RecoveryListener listener);
  void count_stale_ack() { counters_.stale_acks.fetch_add(1, std::memory_order_relaxed); }
  [[nodiscard]] const ConnectionConfig& config() const noexcept { return config_; }
  void set_on_blocked(std::function<void(bool, const std::string&)> cb);
  void set_on_closed(std::function<void(const Status&)> cb);
  Result<std::shared_ptr<Channel>> open_channel(Nanos timeout, bool recoverable);
  Status close(Nanos timeout);

  // --- loop thread --------------------------------------------------------
  // The channel's record, or an error when it is gone (closed, or the id now
  // names another channel).
  Result<ChannelState*> channel(std::uint16_t id, const ChannelShared& shared);
  // Queues `op` on channel `ch` (see the header comment) and sends what can go.
  void enqueue(ChannelState& ch, ChannelOp op);
  // Sends a method frame now (acks, close-ok: never queued behind an RPC).
  void send_method(std::uint16_t channel, const wire::Method& m);
  void close_channel(ChannelState& ch, std::shared_ptr<Reply<Status>> reply);
  void add_consumer(ChannelState& ch, ConsumerState consumer);
  // Forgets a consumer and runs its cancel handler with `why`.
  void remove_consumer(ChannelState& ch, const std::string& tag, const Status& why);
  std::shared_ptr<DeliveryExecutor> executor() const { return executor_; }

 private:
  ConnectionCore(ConnectionConfig config, std::unique_ptr<EventLoop> owned_loop, EventLoop* loop,
                 std::unique_ptr<net::Stream> stream,
                 std::function<Result<std::unique_ptr<net::Stream>>()> reconnect);

  [[nodiscard]] MonoTime now() const noexcept { return clock_->now(); }

  // I/O
  void on_io(std::uint32_t events);
  void read_available();
  void schedule_flush();
  void flush();
  void run_written_callbacks();
  void heartbeat_tick();
  // Frames and methods
  Status handle_frame(const wire::FrameView& frame);
  Status handle_connection_method(wire::Method&& m);
  Status handle_channel_frame(ChannelState& ch, const wire::FrameView& frame);
  Status handle_channel_incoming(ChannelState& ch, Incoming&& in);
  void handle_confirm(ChannelState& ch, std::uint64_t tag, bool multiple, bool ack);
  // Channel lifecycle
  void pump(ChannelState& ch);
  void write_op(ChannelState& ch, ChannelOp& op);
  // Fails everything the channel still holds. `connection_ended`: the whole
  // connection went, so unconfirmed publishes fail with kConnectionLost.
  void channel_closed(ChannelState& ch, const Status& reason, bool connection_ended = false);
  // Connection teardown: fails everything, closes the socket, reports once.
  // `recoverable`: the death may start automatic recovery (an I/O error,
  // missed heartbeats, the broker's 320 CONNECTION_FORCED).
  void fail_connection(Status reason, std::uint16_t reply_code = 0, bool recoverable = false);
  void finish(Status reason, bool recoverable = false);
  void teardown(Status reason);

  // Automatic recovery (recovery.cc).
  void begin_recovery(Status cause);
  // Drops the stream; keeps recoverable channels for re-opening and fails
  // what cannot survive (unconfirmed publishes, RPCs in flight).
  void park(const Status& reason);
  void schedule_attempt(Status last_error);
  void start_attempt();
  void attempt_connected(Result<std::unique_ptr<net::Stream>> stream);
  void attempt_failed(Status reason);
  void give_up(Status reason);
  void restore();
  void restore_op_done(std::uint64_t generation);
  void sweep_waiting();
  void cancel_recovery_timers();
  // Fails `op`'s caller with `why`.
  static void fail_op(ChannelOp& op, const Status& why);
  void emit(const RecoveryEvent& event);
  Status start_stream();

  void append(std::span<const std::byte> bytes);

  const ConnectionConfig config_;
  std::atomic<std::uint64_t> epoch_;
  // Set when the core started the loop itself; then loop_ points to it.
  std::unique_ptr<EventLoop> owned_loop_;
  EventLoop* loop_;
  const Clock* clock_;  // the loop's clock
  std::unique_ptr<net::Stream> stream_;
  std::shared_ptr<DeliveryExecutor> executor_;

  // Negotiated in the handshake, then fixed (read from any thread after open).
  // (Atomic: a recovery renegotiates them while other threads read them.)
  std::atomic<std::uint16_t> channel_max_{0};
  std::atomic<std::uint32_t> frame_max_{0};
  std::atomic<std::uint16_t> heartbeat_s_{0};

  Phase phase_ = Phase::kHandshake;
  std::atomic<bool> open_{false};
  std::atomic<bool> blocked_{false};
  std::atomic<bool> recovering_{false};

  // Recovery state, loop thread.
  std::function<Result<std::unique_ptr<net::Stream>>()> reconnect_;
  std::thread dialer_;  // the current attempt's dial (joined before the next)
  std::uint32_t attempt_ = 0;
  std::uint64_t attempt_id_ = 0;  // ignores timers and dials of older attempts
  std::uint64_t restore_generation_ = 0;
  std::size_t restore_outstanding_ = 0;
  std::uint32_t restored_channels_ = 0;
  std::uint32_t restored_consumers_ = 0;
  std::size_t waiting_publishes_ = 0;
  MonoTime died_at_{};
  std::mt19937_64 rng_{std::random_device{}()};  // backoff jitter
  std::uint64_t died_epoch_ = 0;
  TimerId attempt_timer_ = 0;
  TimerId handshake_timer_ = 0;
  TimerId sweep_timer_ = 0;
  std::optional<Reply<Status>> opened_;  // resolves connect()
  std::optional<Reply<Status>> closed_;  // resolves close()
  // The broker's connection.close, once received: it stays the reason even
  // when the socket fails while we answer it.
  std::optional<Status> broker_close_;
  bool broker_close_recoverable_ = false;

  std::vector<std::byte> in_;
  std::size_t in_used_ = 0;
  std::vector<std::byte> out_;
  std::size_t out_sent_ = 0;
  // Publish callbacks (no confirm mode) waiting for their frames to reach the
  // socket: (end offset in out_, callback), in offset order.
  std::deque<std::pair<std::size_t, PublishCallback>> on_written_;
  bool flush_scheduled_ = false;
  bool want_write_ = false;
  MonoTime last_read_{};
  MonoTime last_write_{};
  TimerId heartbeat_timer_ = 0;

  std::unordered_map<std::uint16_t, std::unique_ptr<ChannelState>> channels_;
  std::uint16_t next_channel_hint_ = 1;

  struct Counters {
    std::atomic<std::uint64_t> frames_in{0}, frames_out{0}, bytes_in{0}, bytes_out{0}, writes{0},
        heartbeats_in{0}, heartbeats_out{0};
    std::atomic<std::uint32_t> channels_open{0};
    std::atomic<std::uint64_t> recoveries{0}, recovery_attempts{0}, stale_acks{0},
        recovery_waits_failed{0};
  };
  Counters counters_;  // written on the loop thread, read anywhere (relaxed)

  mutable std::mutex mu_;  // guards the members below, read from any thread
  Status reason_;
  bool finished_ = false;  // finish() ran: on_closed_ has been (or is being) called
  std::function<void(bool, const std::string&)> on_blocked_;
  std::function<void(const Status&)> on_closed_;
  std::vector<RecoveryListener> listeners_;
};

// Settles one message of `batch`; its callback runs with the first failure
// once every message of the batch is settled.
void finish_publish(PublishBatch& batch, const Status& outcome);

// The next connection epoch (process-wide, starting at 1).
std::uint64_t next_epoch();

// The wait before recovery attempt `attempt` (1, 2, ...): initial_delay *
// multiplier^(attempt-1), at most max_delay, less jitter * `unit` of it
// (`unit` is a uniform random number in [0, 1)).
Nanos recovery_delay(const RecoveryConfig& rc, std::uint32_t attempt, double unit);

// Reply-type predicates for ChannelOp::accepts.
template <typename... Ts>
bool accepts_one_of(const wire::Method& m) {
  return (std::holds_alternative<Ts>(m) || ...);
}

}  // namespace myelin::amqp::detail
