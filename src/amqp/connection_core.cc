// ConnectionCore: connecting, the handshake, socket I/O, heartbeats,
// connection-level methods and teardown. Channel work is in channel_core.cc.
#include "src/amqp/connection_core.h"

#include <algorithm>
#include <cstring>
#include <future>
#include <random>
#include <utility>

namespace myelin::amqp::detail {
namespace {

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr int kReadsPerEvent = 16;  // then yield to the loop's other work

const Clock& monotonic_clock() {
  static const MonotonicClock clock;
  return clock;
}

std::string reply_text(std::uint16_t code, std::string_view text) {
  return std::to_string(code) + " " + std::string(text);
}

// The broker's connection.close as a Status: access refused is an
// authentication failure, resource errors are exhaustion, the rest closed.
Status connection_close_status(const wire::ConnectionClose& c) {
  std::string msg = "amqp: broker closed the connection: " + reply_text(c.reply_code, c.reply_text);
  if (c.class_id != 0) {
    msg += " (in reply to method " + std::to_string(c.class_id) + "." +
           std::to_string(c.method_id) + ")";
  }
  switch (c.reply_code) {
    case wire::reply_code::kAccessRefused:
      return authentication_failed(std::move(msg));
    case wire::reply_code::kResourceError:
      return resource_exhausted(std::move(msg));
    case wire::reply_code::kNotAllowed:
      return failed_precondition(std::move(msg));
    default:
      return unavailable(std::move(msg));
  }
}

// connection.start's mechanisms are a space-separated list ("AMQPLAIN
// PLAIN"): match whole words, or AMQPLAIN would pass for PLAIN.
bool offers_mechanism(std::string_view offered, std::string_view want) {
  while (!offered.empty()) {
    const std::size_t space = offered.find(' ');
    if (offered.substr(0, space) == want) return true;
    if (space == std::string_view::npos) break;
    offered.remove_prefix(space + 1);
  }
  return false;
}

std::string endpoint_name(const Endpoint& e) {
  const bool v6 = e.host.find(':') != std::string::npos;
  return (v6 ? "[" + e.host + "]" : e.host) + ":" + std::to_string(e.port);
}

// A TCP connection to the first reachable endpoint; `config` then names it.
Result<std::unique_ptr<net::Stream>> dial(ConnectionConfig& config) {
  std::vector<Endpoint> order = config.endpoints;
  if (order.empty()) order.push_back(Endpoint{config.host, config.port});
  if (config.shuffle_endpoints && order.size() > 1) {
    std::mt19937 rng(std::random_device{}());
    std::shuffle(order.begin(), order.end(), rng);
  }
  std::string failures;
  for (const Endpoint& e : order) {
    auto tcp = net::connect_tcp(e.host, e.port, config.connect_timeout);
    if (tcp) {
      config.host = e.host;
      config.port = e.port;
      return std::move(*tcp);
    }
    if (order.size() == 1) {
      return unavailable("amqp: cannot connect to " + config.describe() + ": " +
                         std::string(tcp.error().message()));
    }
    failures += (failures.empty() ? "" : "; ") + endpoint_name(e) + " (" +
                std::string(tcp.error().message()) + ")";
  }
  return unavailable("amqp: cannot connect to any of " + std::to_string(order.size()) +
                     " endpoints: " + failures);
}

FieldTable client_properties(const ConnectionConfig& config) {
  FieldTable caps;
  for (const char* cap :
       {"publisher_confirms", "consumer_cancel_notify", "basic.nack", "connection.blocked",
        "authentication_failure_close", "exchange_exchange_bindings", "per_consumer_qos"}) {
    caps.emplace_back(cap, FieldValue{true});
  }
  FieldTable props;
  props.emplace_back("product", FieldValue{std::string("myelin")});
  props.emplace_back("platform", FieldValue{std::string("C++20")});
  props.emplace_back("connection_name", FieldValue{config.name});
  props.emplace_back("capabilities", FieldValue{std::move(caps)});
  return props;
}

}  // namespace

std::uint64_t next_epoch() {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

Result<std::shared_ptr<ConnectionCore>> ConnectionCore::connect(ConnectionConfig config,
                                                                ConnectionDriver driver) {
  if (config.frame_max != 0 && config.frame_max < wire::kFrameMinSize) {
    return invalid_argument("amqp: frame_max " + std::to_string(config.frame_max) +
                            " is below the protocol minimum of 4096");
  }
  if (driver.loop != nullptr && driver.loop->in_loop_thread()) {
    return failed_precondition(
        "amqp: connect to " + config.describe() +
        " called on the thread of the loop it would run on: it would wait for itself");
  }
  std::unique_ptr<net::Stream> stream = std::move(driver.stream);
  if (!stream) {
    MYELIN_ASSIGN_OR_RETURN(stream, dial(config));
  }
  auto reconnect = std::move(driver.reconnect);
  if (!reconnect) {
    // Recovery dials the same endpoints (on a helper thread, not the loop's).
    reconnect = [config]() -> Result<std::unique_ptr<net::Stream>> {
      ConnectionConfig c = config;
      return dial(c);
    };
  }
  std::unique_ptr<EventLoop> owned;
  EventLoop* loop = driver.loop;
  if (loop == nullptr) {
    EventLoopOptions lo;
    lo.spin_before_sleep = std::chrono::microseconds(0);  // an I/O thread: park, don't spin
    MYELIN_ASSIGN_OR_RETURN(owned, EventLoop::create(lo));
    loop = owned.get();
  }
  std::shared_ptr<ConnectionCore> core(new ConnectionCore(std::move(config), std::move(owned), loop,
                                                          std::move(stream), std::move(reconnect)));
  ConnectionCore* self = core.get();
  // Work the loop runs later holds a weak reference, never `this`: the core
  // may be freed (its last reference dropped in a callback) before it runs.
  const std::weak_ptr<ConnectionCore> weak = core;

  Reply<Status> opened;
  auto opened_future = opened.future();
  self->opened_.emplace(std::move(opened));
  if (self->owned_loop_) MYELIN_RETURN_IF_ERROR(self->owned_loop_->start());
  // Registering the stream and the first write happen on the loop thread: a
  // shared loop is already running, and only its thread may touch its fds.
  MYELIN_RETURN_IF_ERROR(self->submit([weak] {
    auto alive = weak.lock();
    if (!alive || !alive->stream_) return;
    const Status started = alive->start_stream();
    if (!started.ok()) alive->fail_connection(started);
  }));

  const Nanos timeout = self->config_.connect_timeout;
  if (opened_future.wait_for(timeout) != std::future_status::ready) {
    (void)self->submit([weak] {
      if (auto alive = weak.lock()) {
        alive->fail_connection(deadline_exceeded("amqp: " + alive->config_.describe() +
                                                 ": no connection.open-ok within the timeout"));
      }
    });
    return deadline_exceeded("amqp: connecting to " + self->config_.describe() + " took over " +
                             std::to_string(timeout.count() / 1'000'000) + " ms");
  }
  MYELIN_RETURN_IF_ERROR(opened_future.get());
  return core;
}

// Registers a new stream with the loop and sends the protocol header.
Status ConnectionCore::start_stream() {
  // The read loop holds a strong reference while it runs: a callback it
  // calls (on_closed, a publish callback) may drop the last outside one.
  const Status watched =
      stream_->watch(*loop_, kIoReadable, [weak = weak_from_this()](std::uint32_t ev) {
        if (auto strong = weak.lock()) strong->on_io(ev);
      });
  if (!watched.ok()) {
    return unavailable("amqp: " + config_.describe() +
                       ": cannot watch the stream: " + std::string(watched.message()));
  }
  last_read_ = last_write_ = now();
  std::vector<std::byte> hello;
  wire::append_protocol_header(hello);
  out_.insert(out_.end(), hello.begin(), hello.end());
  flush();
  return ok_status();
}

ConnectionCore::ConnectionCore(ConnectionConfig config, std::unique_ptr<EventLoop> owned_loop,
                               EventLoop* loop, std::unique_ptr<net::Stream> stream,
                               std::function<Result<std::unique_ptr<net::Stream>>()> reconnect)
    : config_(std::move(config)),
      epoch_(next_epoch()),
      owned_loop_(std::move(owned_loop)),
      loop_(loop),
      clock_(loop->options().clock != nullptr ? loop->options().clock : &monotonic_clock()),
      stream_(std::move(stream)),
      executor_(std::make_shared<DeliveryExecutor>(config_.delivery_threads)),
      reconnect_(std::move(reconnect)) {
  frame_max_ = wire::kFrameMinSize;
  in_.resize(kReadChunk);
}

ConnectionCore::~ConnectionCore() {
  // A recovery dial in progress ends within connect_timeout; it holds only a
  // weak reference. Destroyed on that very thread (its report held the last
  // reference), it cannot join itself.
  if (dialer_.joinable()) {
    if (dialer_.get_id() == std::this_thread::get_id()) {
      dialer_.detach();
    } else {
      dialer_.join();
    }
  }
  if (!owned_loop_) {
    cancel_recovery_timers();
    // A shared loop goes on running other work; only the stream is ours. Its
    // fd is registered with that loop, so it is closed on the loop thread.
    // (Timers, microtasks and the fd callback hold weak references and find
    // the core gone.)
    if (heartbeat_timer_ != 0) (void)loop_->cancel(heartbeat_timer_);
    if (!stream_) return;
    if (loop_->in_loop_thread()) {
      stream_->close();
      return;
    }
    std::shared_ptr<net::Stream> stream(std::move(stream_));
    if (!loop_->submit([stream] { stream->close(); }).ok()) stream->close();  // loop stopped
    return;
  }
  // Stop the loop first: it runs what was queued, then nothing touches us.
  // (Tasks hold shared_ptrs to the core, so by now none is queued; timers,
  // microtasks and the fd callback hold weak ones and find the core gone.)
  if (owned_loop_->in_loop_thread()) {
    // The last reference went away in a callback on our own loop thread: the
    // loop cannot join itself, so a helper thread ends it.
    if (stream_) stream_->close();
    if (heartbeat_timer_ != 0) (void)owned_loop_->cancel(heartbeat_timer_);
    std::thread([loop = std::move(owned_loop_)]() mutable {
      (void)loop->shutdown();
      loop.reset();
    }).detach();
  } else {
    (void)owned_loop_->shutdown();
    // The socket is still open when ~Connection ran on the loop thread (it
    // starts the close there without waiting) and the last reference, a
    // Channel say, went away later on another thread. Close it while the
    // loop it is registered with still exists.
    if (stream_) stream_->close();
    owned_loop_.reset();
  }
}

Status ConnectionCore::close_reason() const {
  std::lock_guard lock(mu_);
  return reason_;
}

ConnectionStats ConnectionCore::stats() const {
  ConnectionStats s;
  s.frames_in = counters_.frames_in.load(std::memory_order_relaxed);
  s.frames_out = counters_.frames_out.load(std::memory_order_relaxed);
  s.bytes_in = counters_.bytes_in.load(std::memory_order_relaxed);
  s.bytes_out = counters_.bytes_out.load(std::memory_order_relaxed);
  s.writes = counters_.writes.load(std::memory_order_relaxed);
  s.heartbeats_in = counters_.heartbeats_in.load(std::memory_order_relaxed);
  s.heartbeats_out = counters_.heartbeats_out.load(std::memory_order_relaxed);
  s.channels_open = counters_.channels_open.load(std::memory_order_relaxed);
  s.recoveries = counters_.recoveries.load(std::memory_order_relaxed);
  s.recovery_attempts = counters_.recovery_attempts.load(std::memory_order_relaxed);
  s.stale_acks_dropped = counters_.stale_acks.load(std::memory_order_relaxed);
  s.recovery_waits_failed = counters_.recovery_waits_failed.load(std::memory_order_relaxed);
  return s;
}

void ConnectionCore::set_on_blocked(std::function<void(bool, const std::string&)> cb) {
  std::lock_guard lock(mu_);
  on_blocked_ = std::move(cb);
}

void ConnectionCore::set_on_closed(std::function<void(const Status&)> cb) {
  Status ended;
  {
    std::lock_guard lock(mu_);
    if (!finished_) {
      on_closed_ = std::move(cb);
      return;
    }
    ended = reason_;
  }
  if (cb) cb(ended);  // already closed: report it now, on this thread
}

Status ConnectionCore::close(Nanos timeout) {
  if (in_loop_thread()) {
    // From a callback on our own loop: start the close handshake, but do not
    // wait for it (the loop must keep running to receive close-ok).
    if (recovering_.load(std::memory_order_relaxed) && phase_ != Phase::kClosed) {
      teardown(ok_status());  // no broker to say goodbye to: stop recovering
      return ok_status();
    }
    if (phase_ == Phase::kOpen) {
      phase_ = Phase::kClosing;
      open_.store(false, std::memory_order_release);
      wire::ConnectionClose c;
      c.reply_code = wire::reply_code::kReplySuccess;
      c.reply_text = "client closed the connection";
      send_method(0, c);
    }
    return ok_status();
  }
  Reply<Status> reply;
  auto f = reply.future();
  auto self = shared_from_this();
  const Status submitted = submit([self, r = std::move(reply)]() mutable {
    if (self->phase_ == Phase::kClosed) return r.set(ok_status());
    if (self->recovering_.load(std::memory_order_relaxed)) {
      self->teardown(ok_status());  // stop recovering; nothing to hand-shake with
      return r.set(ok_status());
    }
    if (self->phase_ != Phase::kOpen) {
      return r.fail(failed_precondition("amqp: close: the connection is not open"));
    }
    self->closed_.emplace(std::move(r));
    self->phase_ = Phase::kClosing;
    self->open_.store(false, std::memory_order_release);
    wire::ConnectionClose c;
    c.reply_code = wire::reply_code::kReplySuccess;
    c.reply_text = "client closed the connection";
    self->send_method(0, c);
  });
  if (!submitted.ok()) return ok_status();  // the loop already stopped: closed
  Status result;
  if (f.wait_for(timeout) != std::future_status::ready) {
    (void)submit([self] {
      self->finish(deadline_exceeded("amqp: no connection.close-ok within the close timeout"));
    });
    result = deadline_exceeded("amqp: close: the broker did not answer connection.close in time");
  } else {
    result = f.get();
  }
  // close-ok was handled inside the loop's read callback, which holds a
  // reference to the core until it returns. Wait for that, so that a caller
  // that drops its reference next (~Connection) is the last one and tears
  // the connection down on its own thread, joined, not on a helper thread.
  auto idle = std::make_shared<std::promise<void>>();
  auto idle_f = idle->get_future();
  if (submit([idle] { idle->set_value(); }).ok()) (void)idle_f.wait_for(timeout);
  return result;
}

// --- I/O -------------------------------------------------------------------

void ConnectionCore::append(std::span<const std::byte> bytes) {
  out_.insert(out_.end(), bytes.begin(), bytes.end());
  schedule_flush();
}

void ConnectionCore::schedule_flush() {
  if (flush_scheduled_ || want_write_) return;
  flush_scheduled_ = true;
  // A microtask runs after the current batch of tasks: a burst of publishes
  // from many threads leaves in one write.
  if (!loop_
           ->queue_microtask([weak = weak_from_this()] {
             auto self = weak.lock();  // gone: the socket went with it
             if (!self) return;
             self->flush_scheduled_ = false;
             self->flush();
           })
           .ok()) {
    flush_scheduled_ = false;
    flush();
  }
}

void ConnectionCore::flush() {
  if (!stream_) return;
  while (out_sent_ < out_.size()) {
    auto r = stream_->write(std::span(out_).subspan(out_sent_));
    if (!r)
      return fail_connection(unavailable("amqp: write to " + config_.describe() + ": " +
                                         std::string(r.error().message())),
                             0, /*recoverable=*/true);
    if (r->would_block) {
      if (!want_write_) {
        want_write_ = true;
        (void)stream_->set_interest(kIoReadable | kIoWritable);
      }
      return;
    }
    counters_.writes.fetch_add(1, std::memory_order_relaxed);
    counters_.bytes_out.fetch_add(r->bytes, std::memory_order_relaxed);
    out_sent_ += r->bytes;
    last_write_ = now();
    run_written_callbacks();
  }
  out_.clear();
  out_sent_ = 0;
  if (out_.capacity() > (8u << 20)) out_.shrink_to_fit();  // after a huge message
  if (want_write_) {
    want_write_ = false;
    (void)stream_->set_interest(kIoReadable);
  }
}

void ConnectionCore::run_written_callbacks() {
  while (!on_written_.empty() && on_written_.front().first <= out_sent_) {
    PublishCallback cb = std::move(on_written_.front().second);
    on_written_.pop_front();
    cb(ok_status());
  }
}

void ConnectionCore::on_io(std::uint32_t events) {
  if ((events & (kIoReadable | kIoError | kIoHangup)) != 0) read_available();
  if (stream_ && (events & kIoWritable) != 0) flush();
}

void ConnectionCore::read_available() {
  for (int i = 0; i < kReadsPerEvent && stream_; ++i) {
    if (in_.size() - in_used_ < kReadChunk / 4)
      in_.resize(std::max(in_.size() * 2, in_used_ + kReadChunk));
    auto r = stream_->read(std::span(in_).subspan(in_used_));
    if (!r || r->eof) {
      const std::string why = !r ? std::string(r.error().message()) : "end of stream";
      return fail_connection(
          unavailable("amqp: connection to " + config_.describe() + " lost: " + why), 0,
          /*recoverable=*/true);
    }
    if (r->would_block) return;
    counters_.bytes_in.fetch_add(r->bytes, std::memory_order_relaxed);
    in_used_ += r->bytes;
    last_read_ = now();

    std::size_t pos = 0;
    while (stream_) {
      wire::FrameView frame;
      auto n = wire::parse_frame(std::span(in_).first(in_used_).subspan(pos), frame_max_,
                                 frame);  // 4096 until tune
      if (!n) return fail_connection(std::move(n).error(), wire::reply_code::kFrameError);
      if (*n == 0) break;
      pos += *n;
      counters_.frames_in.fetch_add(1, std::memory_order_relaxed);
      Status st = handle_frame(frame);
      if (!st.ok()) {
        const auto code = st.code() == ErrorCode::kParseError ? wire::reply_code::kSyntaxError
                                                              : wire::reply_code::kUnexpectedFrame;
        return fail_connection(std::move(st), code);
      }
    }
    if (!stream_) return;
    if (pos > 0) {
      std::memmove(in_.data(), in_.data() + pos, in_used_ - pos);
      in_used_ -= pos;
    }
    // A frame larger than the buffer: grow to hold it whole.
    if (in_used_ >= 7) {
      const std::uint32_t size = (std::to_integer<std::uint32_t>(in_[3]) << 24) |
                                 (std::to_integer<std::uint32_t>(in_[4]) << 16) |
                                 (std::to_integer<std::uint32_t>(in_[5]) << 8) |
                                 std::to_integer<std::uint32_t>(in_[6]);
      const std::size_t need = std::size_t{size} + wire::kFrameOverhead;
      if (need > in_.size()) in_.resize(need + kReadChunk);
    }
  }
}

void ConnectionCore::heartbeat_tick() {
  if (!stream_ || heartbeat_s_ == 0) return;
  const MonoTime t = now();
  const Nanos interval = std::chrono::seconds(heartbeat_s_);
  // Silence for 1.5 intervals means the broker or the path is gone (the
  // broker sends a heartbeat at least every half interval when idle).
  if (t - last_read_ > interval + interval / 2) {
    const std::uint16_t hb = heartbeat_s_;
    return fail_connection(
        unavailable(
            "amqp: no frame from " + config_.describe() + " for " +
            std::to_string(
                std::chrono::duration_cast<std::chrono::milliseconds>(t - last_read_).count()) +
            " ms (heartbeat " + std::to_string(hb) + " s): peer presumed dead"),
        0, /*recoverable=*/true);
  }
  if (t - last_write_ >= interval / 2) {
    std::vector<std::byte> hb;
    wire::append_heartbeat(hb);
    counters_.heartbeats_out.fetch_add(1, std::memory_order_relaxed);
    counters_.frames_out.fetch_add(1, std::memory_order_relaxed);
    append(hb);
    last_write_ = t;  // counted as sent: the flush follows in this tick
  }
}

void ConnectionCore::send_method(std::uint16_t channel, const wire::Method& m) {
  // The methods sent this way (acks, close-ok, tune-ok, ...) have no
  // caller-sized fields but the close texts, which are cut to fit.
  Status st = wire::append_method_frame(out_, channel, m, frame_max_);
  if (!st.ok()) return fail_connection(std::move(st).with_context("amqp: encoding"));
  counters_.frames_out.fetch_add(1, std::memory_order_relaxed);
  schedule_flush();
}

// --- frames ----------------------------------------------------------------

Status ConnectionCore::handle_frame(const wire::FrameView& frame) {
  if (frame.type == wire::kFrameHeartbeat) {
    counters_.heartbeats_in.fetch_add(1, std::memory_order_relaxed);
    return ok_status();
  }
  if (frame.channel == 0) {
    if (frame.type != wire::kFrameMethod) {
      return protocol_error("amqp: content frame (type " + std::to_string(frame.type) +
                            ") on channel 0");
    }
    MYELIN_ASSIGN_OR_RETURN(auto m, wire::decode_method(frame.payload));
    return handle_connection_method(std::move(m));
  }
  if (phase_ != Phase::kOpen && phase_ != Phase::kClosing) {
    return protocol_error("amqp: frame on channel " + std::to_string(frame.channel) +
                          " before the connection was open");
  }
  auto it = channels_.find(frame.channel);
  if (it == channels_.end() && frame.type == wire::kFrameMethod) {
    // A channel we already closed and forgot: when both sides closed it at
    // once, the broker's answer to our close (or its own close) may follow.
    MYELIN_ASSIGN_OR_RETURN(auto m, wire::decode_method(frame.payload));
    if (std::holds_alternative<wire::ChannelCloseOk>(m)) return ok_status();
    if (std::holds_alternative<wire::ChannelClose>(m)) {
      send_method(frame.channel, wire::ChannelCloseOk{});
      return ok_status();
    }
  }
  if (it == channels_.end()) {
    return protocol_error("amqp: frame for channel " + std::to_string(frame.channel) +
                          ", which is not open");
  }
  return handle_channel_frame(*it->second, frame);
}

Status ConnectionCore::handle_connection_method(wire::Method&& m) {
  if (auto* start = std::get_if<wire::ConnectionStart>(&m)) {
    if (phase_ != Phase::kHandshake)
      return protocol_error("amqp: connection.start after handshake");
    if (!offers_mechanism(start->mechanisms, "PLAIN")) {
      return authentication_failed("amqp: broker offers no PLAIN mechanism (offers '" +
                                   start->mechanisms + "')");
    }
    wire::ConnectionStartOk ok;
    ok.client_properties = client_properties(config_);
    ok.mechanism = "PLAIN";
    ok.response.reserve(config_.user.size() + config_.password.size() + 2);
    ok.response.push_back('\0');
    ok.response += config_.user;
    ok.response.push_back('\0');
    ok.response += config_.password;
    ok.locale = "en_US";
    send_method(0, ok);
    return ok_status();
  }
  if (std::holds_alternative<wire::ConnectionSecure>(m)) {
    return authentication_failed("amqp: broker sent connection.secure; only PLAIN is supported");
  }
  if (auto* tune = std::get_if<wire::ConnectionTune>(&m)) {
    auto negotiate = [](auto ours, auto theirs) {
      using T = decltype(ours);
      if (ours == 0) return theirs;
      if (theirs == 0) return ours;
      return static_cast<T>(std::min(ours, theirs));
    };
    channel_max_ = negotiate(config_.channel_max, tune->channel_max);
    if (channel_max_ == 0) channel_max_ = 65535;
    frame_max_ = negotiate(config_.frame_max, tune->frame_max);
    // Heartbeat: the smaller non-zero of the two; 0 from us disables them
    // (RabbitMQ accepts that from a client).
    heartbeat_s_ = config_.heartbeat_s == 0 ? 0 : negotiate(config_.heartbeat_s, tune->heartbeat);
    wire::ConnectionTuneOk ok;
    ok.channel_max = channel_max_;
    ok.frame_max = frame_max_;
    ok.heartbeat = heartbeat_s_;
    send_method(0, ok);
    wire::ConnectionOpen open;
    open.virtual_host = config_.vhost;
    send_method(0, open);
    if (heartbeat_s_ > 0) {
      const Nanos period = std::chrono::milliseconds(heartbeat_s_ * 1000 / 4);
      auto t = loop_->schedule_every(period, [weak = weak_from_this()] {
        if (auto self = weak.lock()) self->heartbeat_tick();
      });
      if (t) heartbeat_timer_ = *t;
    }
    return ok_status();
  }
  if (std::holds_alternative<wire::ConnectionOpenOk>(m)) {
    if (recovering_.load(std::memory_order_relaxed)) {
      restore();
      return ok_status();
    }
    phase_ = Phase::kOpen;
    open_.store(true, std::memory_order_release);
    if (opened_) {
      opened_->set(ok_status());
      opened_.reset();
    }
    return ok_status();
  }
  if (auto* c = std::get_if<wire::ConnectionClose>(&m)) {
    // The broker's reason is the connection's reason whatever the socket
    // does next: a node shutting down (320) may reset the connection right
    // after this frame, and then the close-ok write below fails.
    broker_close_ = connection_close_status(*c);
    // 320 CONNECTION_FORCED: an operator or a node shutdown ended us, not
    // something we did; recovery may reconnect (to another node).
    broker_close_recoverable_ = c->reply_code == wire::reply_code::kConnectionForced;
    wire::ConnectionCloseOk ok;
    send_method(0, ok);
    flush();
    finish(*broker_close_, broker_close_recoverable_);
    return ok_status();
  }
  if (std::holds_alternative<wire::ConnectionCloseOk>(m)) {
    finish(ok_status());
    return ok_status();
  }
  if (auto* b = std::get_if<wire::ConnectionBlocked>(&m)) {
    blocked_.store(true, std::memory_order_release);
    std::function<void(bool, const std::string&)> cb;
    {
      std::lock_guard lock(mu_);
      cb = on_blocked_;
    }
    if (cb) cb(true, b->reason);
    return ok_status();
  }
  if (std::holds_alternative<wire::ConnectionUnblocked>(m)) {
    blocked_.store(false, std::memory_order_release);
    // Publishes held while blocked go out now, channel by channel in order.
    for (auto& [id, ch] : channels_) pump(*ch);
    std::function<void(bool, const std::string&)> cb;
    {
      std::lock_guard lock(mu_);
      cb = on_blocked_;
    }
    if (cb) cb(false, "");
    return ok_status();
  }
  return protocol_error("amqp: unexpected " + std::string(wire::method_name(m)) + " on channel 0");
}

// --- teardown ----------------------------------------------------------------

void ConnectionCore::fail_connection(Status reason, std::uint16_t reply_code, bool recoverable) {
  if (!stream_) return;
  if (broker_close_) {
    return finish(*broker_close_, broker_close_recoverable_);  // the broker said why first
  }
  if (reply_code != 0 && phase_ != Phase::kClosed) {
    // Tell the broker why, best effort, before the socket goes.
    wire::ConnectionClose c;
    c.reply_code = reply_code;
    c.reply_text = std::string(reason.message()).substr(0, 200);
    send_method(0, c);
    flush();
  }
  finish(std::move(reason), recoverable);
}

void ConnectionCore::finish(Status reason, bool recoverable) {
  // kRecovering: already parked (a nested failure while parking).
  if (phase_ == Phase::kClosed || phase_ == Phase::kRecovering) return;
  // Our own close in flight (kClosing) is never recovered from.
  if (phase_ != Phase::kClosing) {
    if (recovering_.load(std::memory_order_relaxed)) return attempt_failed(std::move(reason));
    if (recoverable && config_.recovery.enabled && phase_ == Phase::kOpen) {
      return begin_recovery(std::move(reason));
    }
  }
  teardown(std::move(reason));
}

void ConnectionCore::teardown(Status reason) {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosed;
  recovering_.store(false, std::memory_order_release);
  cancel_recovery_timers();
  open_.store(false, std::memory_order_release);
  {
    std::lock_guard lock(mu_);
    reason_ = reason;
  }
  if (heartbeat_timer_ != 0) (void)loop_->cancel(heartbeat_timer_);
  heartbeat_timer_ = 0;
  if (stream_) {
    stream_->close();
    stream_.reset();
  }
  const Status failure = reason.ok() ? closed("amqp: the connection was closed") : reason;
  // Publishes whose frames never reached the socket.
  auto unwritten = std::move(on_written_);
  on_written_.clear();
  for (auto& [end, cb] : unwritten) cb(failure);
  // Callbacks run below may look channels up (and erase them): take the map
  // out first so they find nothing, and iterate the private copy.
  auto channels = std::move(channels_);
  channels_.clear();
  for (auto& [id, ch] : channels) channel_closed(*ch, failure, /*connection_ended=*/true);
  if (opened_) {
    opened_->fail(failure);
    opened_.reset();
  }
  if (closed_) {
    closed_->set(reason);
    closed_.reset();
  }
  std::function<void(const Status&)> cb;
  {
    std::lock_guard lock(mu_);
    finished_ = true;
    cb = std::move(on_closed_);
  }
  if (cb) cb(reason);
}

}  // namespace myelin::amqp::detail
