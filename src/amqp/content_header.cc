#include "src/amqp/content_header.h"

#include <cstdio>
#include <string>

#include "src/amqp/byte_reader.h"

namespace myelin::amqp::wire {
namespace {

// Applies `f(flag, name, member)` to each property in wire order, with
// `member` a (const) std::optional<...>&. Encode and decode share this list.
template <typename Props, typename F>
void for_each_property(Props& p, F&& f) {
  f(property_flag::kContentType, "content-type", p.content_type);
  f(property_flag::kContentEncoding, "content-encoding", p.content_encoding);
  f(property_flag::kHeaders, "headers", p.headers);
  f(property_flag::kDeliveryMode, "delivery-mode", p.delivery_mode);
  f(property_flag::kPriority, "priority", p.priority);
  f(property_flag::kCorrelationId, "correlation-id", p.correlation_id);
  f(property_flag::kReplyTo, "reply-to", p.reply_to);
  f(property_flag::kExpiration, "expiration", p.expiration);
  f(property_flag::kMessageId, "message-id", p.message_id);
  f(property_flag::kTimestamp, "timestamp", p.timestamp);
  f(property_flag::kType, "type", p.type);
  f(property_flag::kUserId, "user-id", p.user_id);
  f(property_flag::kAppId, "app-id", p.app_id);
  f(property_flag::kClusterId, "cluster-id", p.cluster_id);
}

std::string hex16(std::uint16_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%04X", v);
  return buf;
}

void put(ByteWriter& out, const std::string& s) { out.shortstr(s); }
void put(ByteWriter& out, const FieldTable& t) { out.table(t); }
void put(ByteWriter& out, std::uint8_t v) { out.u8(v); }
void put(ByteWriter& out, std::uint64_t v) { out.u64(v); }

Status get(ByteReader& in, std::string& s) { return in.shortstr(s); }
Status get(ByteReader& in, FieldTable& t) { return in.table(t); }
Status get(ByteReader& in, std::uint8_t& v) { return in.u8(v); }
Status get(ByteReader& in, std::uint64_t& v) { return in.u64(v); }

}  // namespace

void encode_content_header(std::uint16_t klass, std::uint64_t body_size,
                           const BasicProperties& properties, ByteWriter& out) {
  if (klass != class_id::kBasic) {
    out.fail(invalid_argument("content header: class " + std::to_string(klass) +
                              " carries no content; only basic (60) does"));
    return;
  }
  out.u16(klass);
  out.u16(0);  // weight
  out.u64(body_size);
  std::uint16_t flags = 0;
  for_each_property(properties, [&](std::uint16_t flag, std::string_view, const auto& member) {
    if (member.has_value()) flags |= flag;
  });
  out.u16(flags);
  for_each_property(properties, [&](std::uint16_t, std::string_view name, const auto& member) {
    if (!member.has_value()) return;
    const bool was_ok = out.ok();
    put(out, *member);
    if (was_ok && !out.ok()) {
      out.add_context(name);
      out.add_context("content header");
    }
  });
}

Result<ContentHeader> decode_content_header(std::span<const std::byte> payload) {
  ByteReader in(payload);
  auto fail = [](std::string_view where, Status s) {
    return std::move(s).with_context(where).with_context("content header");
  };
  ContentHeader h;
  std::uint16_t weight = 0;
  if (Status s = in.u16(h.class_id); !s.ok()) return fail("class-id", std::move(s));
  if (h.class_id != class_id::kBasic) {
    return parse_error("content header: class " + std::to_string(h.class_id) +
                       " carries no content; only basic (60) does");
  }
  if (Status s = in.u16(weight); !s.ok()) return fail("weight", std::move(s));
  if (weight != 0) {
    return parse_error("content header: weight is " + std::to_string(weight) +
                       ", but the spec requires 0");
  }
  if (Status s = in.u64(h.body_size); !s.ok()) return fail("body-size", std::move(s));
  std::uint16_t flags = 0;
  if (Status s = in.u16(flags); !s.ok()) return fail("property-flags", std::move(s));
  if ((flags & 0x0002) != 0) {
    return parse_error("content header: property flags " + hex16(flags) +
                       " set bit 1, which class basic does not define");
  }
  // Continuation words may follow; basic has only 14 properties, so any
  // flag in them names a property this class does not have.
  for (std::uint16_t more = flags; (more & property_flag::kContinuation) != 0;) {
    const std::size_t at = in.offset();
    if (Status s = in.u16(more); !s.ok()) return fail("continued property-flags", std::move(s));
    if ((more & ~property_flag::kContinuation) != 0) {
      return parse_error("content header: property flag word " + hex16(more) + " at offset " +
                         std::to_string(at) +
                         " sets flags beyond the 14 properties of class basic");
    }
  }
  Status status;
  for_each_property(h.properties, [&](std::uint16_t flag, std::string_view name, auto& member) {
    if (!status.ok() || (flags & flag) == 0) return;
    member.emplace();
    if (Status s = get(in, *member); !s.ok()) status = fail(name, std::move(s));
  });
  MYELIN_RETURN_IF_ERROR(status);
  if (!in.at_end()) {
    return parse_error("content header: " + std::to_string(in.remaining()) +
                       " unexpected bytes after the last property, at offset " +
                       std::to_string(in.offset()) + " of the " + std::to_string(in.size()) +
                       "-byte frame payload");
  }
  return h;
}

}  // namespace myelin::amqp::wire
