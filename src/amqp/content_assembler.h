// ContentAssembler: turns one channel's frames into whole messages.
//
// AMQP sends a message as a content-bearing method (basic.deliver,
// basic.get-ok, basic.return; basic.publish towards a broker), then exactly
// one content header frame, then body frames until body-size bytes arrived
// (none when body-size is 0). Frames of different channels interleave, so a
// connection keeps one assembler per channel and feeds it that channel's
// frames in order. Anything out of order (a method while content is pending,
// a header or body frame with no content pending, more body than announced)
// is a kProtocolError that the connection answers with connection.close
// 505 UNEXPECTED_FRAME; a malformed method or header payload is the decoder's
// kParseError (501/502). After an error the assembler is reset.
//
// Sans-I/O and single-threaded; it owns the message being assembled.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "myelin/amqp/types.h"
#include "myelin/base/result.h"
#include "src/amqp/content_header.h"
#include "src/amqp/frame.h"
#include "src/amqp/method.h"

namespace myelin::amqp::wire {

// A complete message: its method (one with has_content()), properties, body.
struct Delivery {
  Method method;
  BasicProperties properties;
  std::string body;
  friend bool operator==(const Delivery&, const Delivery&) = default;
};

class ContentAssembler {
 public:
  enum class State { kIdle, kAwaitingHeader, kAwaitingBody };
  // What feed() produced.
  enum class Event {
    kNone,      // frame absorbed (part of a content, or a heartbeat)
    kMethod,    // a method without content: take_method()
    kDelivery,  // a message completed: take_delivery()
  };

  // RabbitMQ's default max_message_size (128 MiB); larger announced bodies
  // are refused (kResourceExhausted) before any byte is buffered.
  static constexpr std::uint64_t kDefaultMaxBodySize = 128u << 20;

  explicit ContentAssembler(std::uint64_t max_body_size = kDefaultMaxBodySize) noexcept
      : max_body_size_(max_body_size) {}

  // Feeds one frame of this assembler's channel; decodes method and header
  // payloads itself. Errors carry "channel N: " in front.
  Result<Event> feed(const FrameView& frame);
  // The method of the last kMethod event (moved out).
  Method take_method() { return std::move(method_); }
  // The message of the last kDelivery event (moved out).
  Delivery take_delivery() { return std::move(delivery_); }

  // The same steps for callers that decode frames themselves. begin() takes
  // a content-bearing method; add_header/add_body return true when the
  // message is complete (then take_delivery()).
  Status begin(Method content_method);
  Result<bool> add_header(ContentHeader header);
  Result<bool> add_body(std::span<const std::byte> payload);

  [[nodiscard]] State state() const noexcept { return state_; }
  [[nodiscard]] bool in_progress() const noexcept { return state_ != State::kIdle; }
  // Drops any partial message (e.g. when the channel closes).
  void reset() noexcept;

 private:
  Status unexpected(std::string what);

  std::uint64_t max_body_size_;
  State state_ = State::kIdle;
  std::uint64_t body_size_ = 0;
  Delivery delivery_;
  Method method_;
};

std::string_view to_string(ContentAssembler::State s) noexcept;

}  // namespace myelin::amqp::wire
