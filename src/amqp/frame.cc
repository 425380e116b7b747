#include "src/amqp/frame.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>

#include "src/amqp/content_header.h"

namespace myelin::amqp::wire {
namespace {

std::uint32_t load_u32(const std::byte* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | std::to_integer<std::uint32_t>(p[i]);
  return v;
}

// Largest payload a frame may carry under frame_max (0: the size field's limit).
std::uint64_t payload_limit(std::uint32_t frame_max) {
  return frame_max == 0 ? std::numeric_limits<std::uint32_t>::max()
                        : std::uint64_t{frame_max} - kFrameOverhead;
}

std::string type_text(std::uint8_t type) {
  const std::string_view name = frame_type_name(type);
  if (name.empty()) return "type " + std::to_string(type);
  return std::string(name) + " (type " + std::to_string(type) + ")";
}

}  // namespace

std::string_view frame_type_name(std::uint8_t type) noexcept {
  switch (type) {
    case kFrameMethod:
      return "method";
    case kFrameHeader:
      return "header";
    case kFrameBody:
      return "body";
    case kFrameHeartbeat:
      return "heartbeat";
    default:
      return "";
  }
}

Result<std::size_t> parse_frame(std::span<const std::byte> in, std::uint32_t frame_max,
                                FrameView& out) {
  if (frame_max != 0 && frame_max < kFrameOverhead) {
    return invalid_argument("frame-max " + std::to_string(frame_max) +
                            " is smaller than the 8 bytes of frame header and frame-end");
  }
  if (in.empty()) return std::size_t{0};
  const std::uint8_t type = std::to_integer<std::uint8_t>(in[0]);
  if (type == 'A' && std::memcmp(in.data(), "AMQP", std::min<std::size_t>(in.size(), 4)) == 0) {
    // "AMQP" + version: the broker's answer to a protocol header it refuses.
    if (in.size() < kProtocolHeader.size()) return std::size_t{0};
    {
      std::string version;
      for (int i = 4; i < 8; ++i) {
        if (i > 4) version += '-';
        version += std::to_string(std::to_integer<unsigned>(in[i]));
      }
      return protocol_error("peer sent protocol header AMQP " + version +
                            " instead of a frame: it does not accept AMQP 0-9-1");
    }
  }
  if (frame_type_name(type).empty()) {
    return protocol_error("frame of unknown type " + std::to_string(type) +
                          " (expected 1 method, 2 header, 3 body or 8 heartbeat)");
  }
  if (in.size() < kFrameHeaderSize) return std::size_t{0};
  const std::uint16_t channel = static_cast<std::uint16_t>((std::to_integer<unsigned>(in[1]) << 8) |
                                                           std::to_integer<unsigned>(in[2]));
  const std::uint32_t size = load_u32(in.data() + 3);
  if (size > payload_limit(frame_max)) {
    return protocol_error(type_text(type) + " frame on channel " + std::to_string(channel) +
                          " has a " + std::to_string(size) + "-byte payload, more than the " +
                          std::to_string(payload_limit(frame_max)) + " that frame-max " +
                          std::to_string(frame_max) + " allows");
  }
  if (type == kFrameHeartbeat && channel != 0) {
    return protocol_error("heartbeat frame on channel " + std::to_string(channel) +
                          "; heartbeats must use channel 0");
  }
  if (type == kFrameHeartbeat && size != 0) {
    return protocol_error("heartbeat frame with a " + std::to_string(size) +
                          "-byte payload; heartbeats carry none");
  }
  const std::size_t total = kFrameOverhead + std::size_t{size};
  if (in.size() < total) return std::size_t{0};
  const std::uint8_t end = std::to_integer<std::uint8_t>(in[total - 1]);
  if (end != kFrameEnd) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%02X", end);
    return protocol_error(type_text(type) + " frame on channel " + std::to_string(channel) +
                          " with a " + std::to_string(size) + "-byte payload ends in " + buf +
                          ", not the frame-end octet 0xCE");
  }
  out.type = type;
  out.channel = channel;
  out.payload = in.subspan(kFrameHeaderSize, size);
  return total;
}

std::size_t begin_frame(std::vector<std::byte>& out, std::uint8_t type, std::uint16_t channel) {
  const std::size_t start = out.size();
  ByteWriter w(out);
  w.u8(type);
  w.u16(channel);
  w.u32(0);
  return start;
}

Status end_frame(std::vector<std::byte>& out, std::size_t start, std::uint32_t frame_max,
                 const Status& encoded) {
  if (!encoded.ok()) {
    out.resize(start);
    return encoded;
  }
  const std::size_t size = out.size() - start - kFrameHeaderSize;
  if (size > payload_limit(frame_max)) {
    const std::uint8_t type = std::to_integer<std::uint8_t>(out[start]);
    out.resize(start);
    return invalid_argument(type_text(type) + " frame payload of " + std::to_string(size) +
                            " bytes exceeds the " + std::to_string(payload_limit(frame_max)) +
                            " that frame-max " + std::to_string(frame_max) + " allows");
  }
  ByteWriter w(out);
  w.patch_u32(start + 3, static_cast<std::uint32_t>(size));
  w.u8(kFrameEnd);
  return ok_status();
}

Status append_method_frame(std::vector<std::byte>& out, std::uint16_t channel, const Method& m,
                           std::uint32_t frame_max) {
  const std::size_t start = begin_frame(out, kFrameMethod, channel);
  ByteWriter w(out);
  encode_method(m, w);
  return end_frame(out, start, frame_max, w.status());
}

Status append_content_header(std::vector<std::byte>& out, std::uint16_t channel,
                             std::uint16_t class_id, std::uint64_t body_size,
                             const BasicProperties& properties, std::uint32_t frame_max) {
  const std::size_t start = begin_frame(out, kFrameHeader, channel);
  ByteWriter w(out);
  encode_content_header(class_id, body_size, properties, w);
  return end_frame(out, start, frame_max, w.status());
}

Status append_body_frames(std::vector<std::byte>& out, std::uint16_t channel,
                          std::span<const std::byte> body, std::uint32_t frame_max) {
  if (frame_max != 0 && frame_max <= kFrameOverhead) {
    return invalid_argument("frame-max " + std::to_string(frame_max) +
                            " leaves no room for body bytes (it must be 0 or at least 9)");
  }
  const std::uint64_t chunk = payload_limit(frame_max);
  for (std::size_t at = 0; at < body.size();) {
    const std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(chunk, body.size() - at));
    const std::size_t start = begin_frame(out, kFrameBody, channel);
    ByteWriter w(out);
    w.bytes(body.subspan(at, n));
    w.patch_u32(start + 3, static_cast<std::uint32_t>(n));
    w.u8(kFrameEnd);
    at += n;
  }
  return ok_status();
}

Status append_content(std::vector<std::byte>& out, std::uint16_t channel, std::uint16_t class_id,
                      const BasicProperties& properties, std::span<const std::byte> body,
                      std::uint32_t frame_max) {
  const std::size_t start = out.size();
  if (Status s = append_content_header(out, channel, class_id, body.size(), properties, frame_max);
      !s.ok()) {
    return s;
  }
  if (Status s = append_body_frames(out, channel, body, frame_max); !s.ok()) {
    out.resize(start);
    return s;
  }
  return ok_status();
}

Status append_content(std::vector<std::byte>& out, std::uint16_t channel, std::uint16_t class_id,
                      const BasicProperties& properties, std::string_view body,
                      std::uint32_t frame_max) {
  return append_content(out, channel, class_id, properties,
                        std::as_bytes(std::span(body.data(), body.size())), frame_max);
}

void append_heartbeat(std::vector<std::byte>& out) {
  const std::size_t start = begin_frame(out, kFrameHeartbeat, 0);
  out.push_back(std::byte{kFrameEnd});
  (void)start;
}

void append_protocol_header(std::vector<std::byte>& out) {
  for (char c : kProtocolHeader) out.push_back(static_cast<std::byte>(c));
}

}  // namespace myelin::amqp::wire
