// ScriptedBroker: the broker's side of a memory pipe, played by a test.
//
// A test hands one end of net::duplex_pair() to Connection::connect (through
// ConnectionDriver) and keeps the other here. It then reads what the client
// sent and answers with frames the codec encodes, step by step, so that every
// exchange (the handshake, heartbeats, confirms, a dying stream) is exact and
// needs no RabbitMQ. Every wait is bounded (real time: the client's loop may
// run on a FakeClock that only the test moves). Test-only; one thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "myelin/base/clock.h"
#include "myelin/base/result.h"
#include "myelin/net/stream.h"
#include "src/amqp/frame.h"
#include "src/amqp/method.h"
#include "src/amqp/wire.h"

namespace myelin::amqp::testing {

class ScriptedBroker {
 public:
  struct Frame {
    std::uint8_t type = 0;
    std::uint16_t channel = 0;
    std::vector<std::byte> payload;
    std::optional<wire::Method> method;  // method frames
  };

  explicit ScriptedBroker(std::unique_ptr<net::Stream> stream) : stream_(std::move(stream)) {}

  // The 8-byte protocol header the client opens with.
  Status expect_protocol_header(Nanos within = std::chrono::seconds(5)) {
    MYELIN_RETURN_IF_ERROR(fill(8, within));
    std::vector<std::byte> want;
    wire::append_protocol_header(want);
    if (!std::equal(want.begin(), want.end(), in_.begin())) {
      return protocol_error("scripted broker: the client did not open with AMQP 0-9-1's header");
    }
    in_.erase(in_.begin(), in_.begin() + 8);
    return ok_status();
  }

  // The next whole frame; kDeadlineExceeded when none arrives in time,
  // kClosed when the client closed the stream.
  Result<Frame> next(Nanos within = std::chrono::seconds(5)) {
    const MonoTime deadline = mono_now() + within;
    for (;;) {
      wire::FrameView view;
      auto n = wire::parse_frame(in_, 0, view);
      if (!n) return std::move(n).error();
      if (*n > 0) {
        Frame f;
        f.type = view.type;
        f.channel = view.channel;
        f.payload.assign(view.payload.begin(), view.payload.end());
        if (view.type == wire::kFrameMethod) {
          auto m = wire::decode_method(view.payload);
          if (!m) return std::move(m).error();
          f.method = std::move(*m);
        }
        in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(*n));
        return f;
      }
      MYELIN_RETURN_IF_ERROR(read_some(deadline));
    }
  }

  // The next frame, which must be method M on `channel`.
  template <typename M>
  Result<M> expect(std::uint16_t channel = 0, Nanos within = std::chrono::seconds(5)) {
    MYELIN_ASSIGN_OR_RETURN(Frame f, next(within));
    if (!f.method || !std::holds_alternative<M>(*f.method) || f.channel != channel) {
      return protocol_error(std::string("scripted broker: expected ") + std::string(M::kName) +
                            " on channel " + std::to_string(channel) + ", got " +
                            (f.method ? std::string(wire::method_name(*f.method))
                                      : "a frame of type " + std::to_string(f.type)) +
                            " on channel " + std::to_string(f.channel));
    }
    return std::get<M>(std::move(*f.method));
  }

  // expect<M>() when only its arrival matters.
  template <typename M>
  Status expect_method(std::uint16_t channel = 0) {
    auto m = expect<M>(channel);
    return m ? ok_status() : std::move(m).error();
  }

  // True when nothing from the client is buffered or readable right now.
  bool idle() { return in_.empty() && !stream_->ready_now(kIoReadable); }

  // True once the client's stream ends (skipping frames before the end).
  bool closed_by_client(Nanos within = std::chrono::seconds(5)) {
    const MonoTime deadline = mono_now() + within;
    for (;;) {
      auto f = next(deadline - mono_now());
      if (!f) return f.error().code() == ErrorCode::kClosed;
    }
  }

  template <typename M>
  Status send(std::uint16_t channel, const M& m) {
    std::vector<std::byte> out;
    MYELIN_RETURN_IF_ERROR(wire::append_method_frame(out, channel, wire::Method(m)));
    return write_all(out);
  }
  // Frames the test encoded itself (a delivery with its content).
  Status send_raw(std::span<const std::byte> bytes) { return write_all(bytes); }
  Status send_heartbeat() {
    std::vector<std::byte> out;
    wire::append_heartbeat(out);
    return write_all(out);
  }

  // The handshake as RabbitMQ runs it, offering these limits in tune.
  Status handshake(std::uint16_t channel_max, std::uint32_t frame_max, std::uint16_t heartbeat) {
    MYELIN_RETURN_IF_ERROR(expect_protocol_header());
    MYELIN_RETURN_IF_ERROR(send(0, wire::ConnectionStart{}));
    MYELIN_RETURN_IF_ERROR(expect_method<wire::ConnectionStartOk>());
    wire::ConnectionTune tune;
    tune.channel_max = channel_max;
    tune.frame_max = frame_max;
    tune.heartbeat = heartbeat;
    MYELIN_RETURN_IF_ERROR(send(0, tune));
    MYELIN_RETURN_IF_ERROR(expect_method<wire::ConnectionTuneOk>());
    MYELIN_RETURN_IF_ERROR(expect_method<wire::ConnectionOpen>());
    return send(0, wire::ConnectionOpenOk{});
  }

  // Ends the stream (the client reads end-of-stream: a dead broker).
  void close() { stream_->close(); }

 private:
  Status fill(std::size_t n, Nanos within) {
    const MonoTime deadline = mono_now() + within;
    while (in_.size() < n) MYELIN_RETURN_IF_ERROR(read_some(deadline));
    return ok_status();
  }

  Status read_some(MonoTime deadline) {
    for (;;) {
      std::byte buf[4096];
      auto r = stream_->read(buf);
      if (!r) return std::move(r).error();
      if (r->eof) return closed("scripted broker: the client closed the stream");
      if (!r->would_block) {
        in_.insert(in_.end(), buf, buf + r->bytes);
        return ok_status();
      }
      if (mono_now() >= deadline) {
        return deadline_exceeded("scripted broker: nothing from the client in time");
      }
      const Status waited = stream_->wait(kIoReadable, deadline);
      if (!waited.ok() && waited.code() != ErrorCode::kDeadlineExceeded) return waited;
    }
  }

  Status write_all(std::span<const std::byte> bytes) {
    const MonoTime deadline = mono_now() + std::chrono::seconds(5);
    while (!bytes.empty()) {
      MYELIN_ASSIGN_OR_RETURN(auto r, stream_->write(bytes));
      if (r.would_block) {
        MYELIN_RETURN_IF_ERROR(stream_->wait(kIoWritable, deadline));
        continue;
      }
      bytes = bytes.subspan(r.bytes);
    }
    return ok_status();
  }

  std::unique_ptr<net::Stream> stream_;
  std::vector<std::byte> in_;
};

}  // namespace myelin::amqp::testing
