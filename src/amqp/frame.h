// AMQP 0-9-1 frames: type(1) channel(2) size(4) payload(size) frame-end(0xCE).
//
// parse_frame finds one frame in a receive buffer without copying; the
// append_* encoders add whole frames to a send buffer. frame_max is the
// negotiated connection.tune frame-max: it counts the 8 bytes of header and
// frame-end, and 0 means "no limit". Encoders write the size field after
// encoding the payload in place, so once `out` has capacity, publishing
// (method frame + content header + body frames) allocates nothing. On an
// error an encoder leaves `out` as it found it. All functions are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "myelin/amqp/types.h"
#include "myelin/base/result.h"
#include "src/amqp/method.h"

namespace myelin::amqp::wire {

struct FrameView {
  std::uint8_t type = 0;  // kFrameMethod, kFrameHeader, kFrameBody, kFrameHeartbeat
  std::uint16_t channel = 0;
  std::span<const std::byte> payload;  // points into the parsed buffer
};

// "method", "header", "body", "heartbeat"; "" for anything else.
std::string_view frame_type_name(std::uint8_t type) noexcept;

// Parses the frame at the start of `in`. Returns 0 when `in` does not yet
// hold a complete frame, else the bytes it occupies (payload + 8), with `out`
// viewing it. Errors (kProtocolError; reply 501 FRAME_ERROR) for an unknown
// frame type, a payload larger than frame_max - 8 (when frame_max != 0;
// detected from the header alone), a missing frame-end, a heartbeat on a
// channel other than 0 or with a payload, and a protocol header where a frame
// should be (a broker refusing our protocol version answers with one).
Result<std::size_t> parse_frame(std::span<const std::byte> in, std::uint32_t frame_max,
                                FrameView& out);

// Appends a frame header with a zero size; returns where the frame starts.
std::size_t begin_frame(std::vector<std::byte>& out, std::uint8_t type, std::uint16_t channel);
// Patches the size of the frame begun at `start` and appends frame-end. If
// `encoded` is an error or the payload exceeds frame_max - 8, truncates `out`
// back to `start` and returns the error.
Status end_frame(std::vector<std::byte>& out, std::size_t start, std::uint32_t frame_max,
                 const Status& encoded);

// One method frame. frame_max applies as for any frame (use kFrameMinSize
// before connection.tune).
Status append_method_frame(std::vector<std::byte>& out, std::uint16_t channel, const Method& m,
                           std::uint32_t frame_max = 0);
template <MethodStruct M>
Status append_method_frame(std::vector<std::byte>& out, std::uint16_t channel, const M& m,
                           std::uint32_t frame_max = 0) {
  const std::size_t start = begin_frame(out, kFrameMethod, channel);
  ByteWriter w(out);
  encode_method(m, w);
  return end_frame(out, start, frame_max, w.status());
}

// The content header frame alone (for callers that stream a body).
Status append_content_header(std::vector<std::byte>& out, std::uint16_t channel,
                             std::uint16_t class_id, std::uint64_t body_size,
                             const BasicProperties& properties, std::uint32_t frame_max);
// Body frames carrying `body`, each at most frame_max bytes; none for an
// empty body. frame_max must be 0 or at least 9.
Status append_body_frames(std::vector<std::byte>& out, std::uint16_t channel,
                          std::span<const std::byte> body, std::uint32_t frame_max);
// The whole content that follows basic.publish: header frame (body-size =
// body.size()), then body frames split at frame_max.
Status append_content(std::vector<std::byte>& out, std::uint16_t channel, std::uint16_t class_id,
                      const BasicProperties& properties, std::span<const std::byte> body,
                      std::uint32_t frame_max);
Status append_content(std::vector<std::byte>& out, std::uint16_t channel, std::uint16_t class_id,
                      const BasicProperties& properties, std::string_view body,
                      std::uint32_t frame_max);

// 08 0000 00000000 CE.
void append_heartbeat(std::vector<std::byte>& out);
// "AMQP" 0 0 9 1: the first bytes a client sends.
void append_protocol_header(std::vector<std::byte>& out);

}  // namespace myelin::amqp::wire
