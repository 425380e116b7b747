// The secure channel bound to a transport: a Session (the sans-I/O core)
// driven by bytes from a net::Stream.
//
// SecureChannel runs on an EventLoop: it reads when the stream is readable,
// writes the session's output (many sealed records leave in one write when
// the peer is slow, so small messages coalesce; a long message starts
// leaving record by record while the rest is sealed), ticks the session on a
// periodic timer for the handshake timeout, idle timeout and heartbeats, and
// on close flushes the last Close record, shuts the write half and closes the
// stream once the peer has closed too (or after a 1 s linger).
// Every method runs on the loop thread (create it there, or before the loop
// starts) and the channel must be destroyed there. Callbacks run on the loop
// thread; on_closed runs exactly once, and on_finished once after it. A
// callback must not destroy the channel that called it; secure/server.h
// is the API that takes care of that for servers.
//
// BlockingChannel is the small blocking API for simple programs and tests:
// the calling thread drives the session itself and parks in Stream::wait;
// no loop needed.
// It is not thread-safe (one thread at a time).
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "myelin/base/result.h"
#include "myelin/loop/event_loop.h"
#include "myelin/net/stream.h"
#include "myelin/secure/session.h"

namespace myelin::secure {

struct ChannelCallbacks {
  std::function<void(const SessionInfo&)> on_established;
  // The message lives only during the call.
  std::function<void(std::span<const std::byte>)> on_message;
  std::function<void(const Status&)> on_closed;
  // The stream is closed too (after on_closed: the last Close is written and
  // the peer's end of stream read, or the linger ran out, or the stream
  // failed). Nothing more happens on the channel; the owner may destroy it,
  // though not from inside this call (defer it, e.g. with queue_microtask).
  std::function<void()> on_finished;
};

class SecureChannel final : private SessionHandler, private RecordSink {
 public:
  // Starts the handshake (the initiator sends Hello at once).
  static Result<std::unique_ptr<SecureChannel>> open(
      EventLoop& loop, std::unique_ptr<net::Stream> stream, SessionConfig config,
      ChannelCallbacks callbacks, Nanos tick_period = std::chrono::milliseconds(100));
  ~SecureChannel() override;

  Status send(std::span<const std::byte> message);
  Status send_parts(std::span<const std::span<const std::byte>> parts);
  // Clean close: Close(normal), then the stream is shut down.
  Status close();

  [[nodiscard]] const Session& session() const noexcept { return *session_; }
  [[nodiscard]] bool closed() const noexcept { return stream_ == nullptr; }

 private:
  SecureChannel(EventLoop& loop, std::unique_ptr<net::Stream> stream, ChannelCallbacks cb)
      : loop_(loop), stream_(std::move(stream)), cb_(std::move(cb)) {}
  void on_established(const SessionInfo& info) override;
  void on_message(std::span<const std::byte> message) override;
  void on_closed(const Status& reason) override;
  Status on_early_output() override { return write_some(); }
  // Records are sealed straight into the stream's memory when it lends some.
  std::span<std::byte> reserve(std::size_t /*n*/) override {
    return stream_ ? stream_->write_window() : std::span<std::byte>{};
  }
  void commit(std::size_t n) override { stream_->commit_write(n); }
  Status write_some();  // one non-blocking write of the pending output
  void on_io(std::uint32_t events);
  void on_readable();
  void flush();
  void finish_stream();
  void start_linger();

  EventLoop& loop_;
  std::unique_ptr<net::Stream> stream_;
  std::unique_ptr<Session> session_;
  ChannelCallbacks cb_;
  TimerId tick_timer_ = 0;
  TimerId linger_timer_ = 0;
  bool session_closed_ = false;
  bool write_shut_ = false;
  bool peer_eof_ = false;  // the peer's end of stream has been read
  bool closed_reported_ = false;
};

class BlockingChannel final : private SessionHandler, private RecordSink {
 public:
  // Runs the handshake to completion on the calling thread.
  static Result<std::unique_ptr<BlockingChannel>> handshake(
      std::unique_ptr<net::Stream> stream, SessionConfig config,
      Nanos timeout = std::chrono::seconds(10));
  ~BlockingChannel() override;

  // Seals the message and writes it all (waits while the peer is slow),
  // together with anything queue() left waiting.
  Status send(std::span<const std::byte> message, Nanos timeout = std::chrono::seconds(10));
  Status send_parts(std::span<const std::span<const std::byte>> parts,
                    Nanos timeout = std::chrono::seconds(10));
  // Seals the message but writes only once kCoalesceBytes of sealed records
  // wait: a sender with more messages coming pays one system call (and the
  // reader one wake-up) per ~64 KiB instead of per message. What waits goes
  // out with the next send(), flush(), receive() or close().
  Status queue(std::span<const std::byte> message, Nanos timeout = std::chrono::seconds(10));
  // Writes everything queue() left waiting.
  Status flush(Nanos timeout = std::chrono::seconds(10));
  // Waits for at least one message and hands each one that arrived to `fn`
  // (zero copy: the bytes live during the call). Returns the number handed.
  Result<std::size_t> receive(const std::function<void(std::span<const std::byte>)>& fn,
                              Nanos timeout = std::chrono::seconds(10));
  // The next message, copied (simple callers).
  Result<std::vector<std::byte>> receive_copy(Nanos timeout = std::chrono::seconds(10));
  // Close(normal), flush, shut down the write half.
  Status close(Nanos timeout = std::chrono::seconds(1));

  [[nodiscard]] const SessionInfo& info() const noexcept { return session_->info(); }
  [[nodiscard]] const Session& session() const noexcept { return *session_; }

 private:
  // Sealed output written mid-message once this much waits (one default record).
  static constexpr std::size_t kDrainBytes = 64 * 1024;
  // queue() writes once this much sealed output waits.
  static constexpr std::size_t kCoalesceBytes = 64 * 1024;
  // Room offered to each read: several default records, so a stream of long
  // messages costs few read calls.
  static constexpr std::size_t kReadBytes = 256 * 1024;
  // During the handshake a read is retried without blocking for this long before
  // it parks: the peer's next message is due within one X25519 agreement,
  // and a parked thread adds a scheduler wake-up per message.
  static constexpr Nanos kHandshakeSpin = std::chrono::microseconds(250);
  // Once a read has brought bytes, a reader that finds nothing more watches
  // the stream's readiness for this long before it parks: bytes that arrive
  // in a stream (the records of a long message, a run of queued messages)
  // follow each other within tens of µs, and waking a parked reader costs
  // the writer a cross-core wake-up per write (about 18 µs of its time on
  // this VM), which can halve a stream's throughput once the reader keeps up
  // and parks between writes. An idle channel spins once, then parks until
  // data comes.
  static constexpr Nanos kStreamSpin = std::chrono::microseconds(50);
  // Handshake messages are small: a smaller first read leaves the big input
  // buffer to the first data record instead of every new connection.
  static constexpr std::size_t kHandshakeReadBytes = 16 * 1024;

  explicit BlockingChannel(std::unique_ptr<net::Stream> stream) : stream_(std::move(stream)) {}
  void on_message(std::span<const std::byte> message) override;
  Status on_early_output() override { return write_out(handshake_deadline_); }
  // Records are sealed straight into the stream's memory when it lends some,
  // except small queue()d ones: those wait to leave together.
  std::span<std::byte> reserve(std::size_t n) override;
  void commit(std::size_t n) override { stream_->commit_write(n); }
  // Seals into the session's output, writing whole records mid-message.
  Status seal(std::span<const std::span<const std::byte>> parts, MonoTime deadline);
  Status write_out(MonoTime deadline);  // writes all pending output
  Status read_some(MonoTime deadline);

  std::unique_ptr<net::Stream> stream_;
  std::unique_ptr<Session> session_;
  MonoTime handshake_deadline_{};
  bool handshaking_ = false;
  bool flowing_ = false;     // the last read brought bytes: spin before parking
  bool coalescing_ = false;  // inside queue() with a short message
  // While a message is sealed: how long reserve() may wait for the peer to
  // free room in the stream's memory (min: not at all).
  MonoTime seal_deadline_ = MonoTime::min();
  const std::function<void(std::span<const std::byte>)>* sink_ = nullptr;
  std::size_t delivered_ = 0;
  std::deque<std::vector<std::byte>> copies_;
};

}  // namespace myelin::secure
