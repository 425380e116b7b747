#include "src/amqp/content_assembler.h"

#include <algorithm>

#include "src/amqp/content_header.h"

namespace myelin::amqp::wire {
namespace {

// Initial body reservation: the whole body when small, so a typical message
// grows the string once, but never what a hostile header merely announces.
constexpr std::uint64_t kMaxInitialReserve = 1u << 20;

}  // namespace

std::string_view to_string(ContentAssembler::State s) noexcept {
  switch (s) {
    case ContentAssembler::State::kIdle:
      return "idle";
    case ContentAssembler::State::kAwaitingHeader:
      return "awaiting content header";
    case ContentAssembler::State::kAwaitingBody:
      return "awaiting body";
  }
  return "unknown";
}

void ContentAssembler::reset() noexcept {
  state_ = State::kIdle;
  body_size_ = 0;
  delivery_.body.clear();
  delivery_.properties = BasicProperties{};
}

Status ContentAssembler::unexpected(std::string what) {
  std::string msg = std::move(what);
  if (state_ != State::kIdle) {
    msg += " while the content of ";
    msg += method_name(delivery_.method);
    msg +=
        state_ == State::kAwaitingHeader
            ? " awaited its content header"
            : " awaited " + std::to_string(body_size_ - delivery_.body.size()) + " more body bytes";
  }
  msg += " (505 UNEXPECTED_FRAME)";
  reset();
  return protocol_error(std::move(msg));
}

Status ContentAssembler::begin(Method content_method) {
  if (state_ != State::kIdle) {
    return unexpected(std::string(method_name(content_method)) + " method frame");
  }
  if (!has_content(content_method)) {
    return invalid_argument(std::string(method_name(content_method)) +
                            " carries no content; nothing to assemble");
  }
  delivery_.method = std::move(content_method);
  delivery_.properties = BasicProperties{};
  delivery_.body.clear();
  state_ = State::kAwaitingHeader;
  return ok_status();
}

Result<bool> ContentAssembler::add_header(ContentHeader header) {
  if (state_ != State::kAwaitingHeader) return unexpected("content header frame");
  const std::uint16_t expected = method_key(delivery_.method).class_id;
  if (header.class_id != expected) {
    return unexpected("content header of class " + std::to_string(header.class_id) + " for " +
                      std::string(method_name(delivery_.method)));
  }
  if (header.body_size > max_body_size_) {
    const std::string name(method_name(delivery_.method));
    reset();
    return resource_exhausted(name + ": content header announces a body of " +
                              std::to_string(header.body_size) + " bytes, more than the " +
                              std::to_string(max_body_size_) + "-byte limit");
  }
  delivery_.properties = std::move(header.properties);
  body_size_ = header.body_size;
  if (body_size_ == 0) {
    state_ = State::kIdle;
    return true;
  }
  delivery_.body.reserve(static_cast<std::size_t>(std::min(body_size_, kMaxInitialReserve)));
  state_ = State::kAwaitingBody;
  return false;
}

Result<bool> ContentAssembler::add_body(std::span<const std::byte> payload) {
  if (state_ != State::kAwaitingBody) {
    return unexpected("body frame of " + std::to_string(payload.size()) + " bytes");
  }
  const std::uint64_t have = delivery_.body.size();
  if (payload.size() > body_size_ - have) {
    const std::string name(method_name(delivery_.method));
    const std::uint64_t total = body_size_;
    reset();
    return protocol_error(name + ": body frame of " + std::to_string(payload.size()) +
                          " bytes brings the content to " + std::to_string(have + payload.size()) +
                          " bytes, more than the " + std::to_string(total) +
                          " its header announced (505 UNEXPECTED_FRAME)");
  }
  delivery_.body.append(reinterpret_cast<const char*>(payload.data()), payload.size());
  if (delivery_.body.size() == body_size_) {
    state_ = State::kIdle;
    return true;
  }
  return false;
}

Result<ContentAssembler::Event> ContentAssembler::feed(const FrameView& frame) {
  const std::string where = "channel " + std::to_string(frame.channel);
  switch (frame.type) {
    case kFrameMethod: {
      auto m = decode_method(frame.payload);
      if (!m) {
        reset();
        return std::move(m).error().with_context(where);
      }
      if (state_ != State::kIdle) {
        return unexpected(std::string(method_name(*m)) + " method frame").with_context(where);
      }
      if (has_content(*m)) {
        MYELIN_RETURN_IF_ERROR(begin(std::move(m).value()));
        return Event::kNone;
      }
      method_ = std::move(m).value();
      return Event::kMethod;
    }
    case kFrameHeader: {
      if (state_ != State::kAwaitingHeader) {
        return unexpected("content header frame").with_context(where);
      }
      auto h = decode_content_header(frame.payload);
      if (!h) {
        reset();
        return std::move(h).error().with_context(where);
      }
      auto done = add_header(std::move(h).value());
      if (!done) return std::move(done).error().with_context(where);
      return *done ? Event::kDelivery : Event::kNone;
    }
    case kFrameBody: {
      auto done = add_body(frame.payload);
      if (!done) return std::move(done).error().with_context(where);
      return *done ? Event::kDelivery : Event::kNone;
    }
    case kFrameHeartbeat:
      return Event::kNone;
    default:
      return protocol_error(where + ": frame of unknown type " + std::to_string(frame.type));
  }
}

}  // namespace myelin::amqp::wire
