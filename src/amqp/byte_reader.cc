#include "src/amqp/byte_reader.h"

#include <bit>
#include <cctype>
#include <cstdio>
#include <string>

#include "src/amqp/wire.h"

namespace myelin::amqp::wire {
namespace {

std::string describe_tag(std::uint8_t tag) {
  char buf[32];
  if (std::isprint(tag)) {
    std::snprintf(buf, sizeof buf, "'%c' (0x%02X)", static_cast<char>(tag), tag);
  } else {
    std::snprintf(buf, sizeof buf, "0x%02X", tag);
  }
  return buf;
}

Status too_deep() {
  return parse_error("field tables and arrays nested deeper than " +
                     std::to_string(kMaxFieldNesting) + " levels");
}

}  // namespace

Status ByteReader::overrun(std::string_view what) const {
  return parse_error(std::string(what) + " at offset " + std::to_string(pos_) +
                     " runs past the end of the " + std::to_string(in_.size()) + "-byte " +
                     std::string(container_));
}

template <typename T>
Status ByteReader::get_be(T& v, std::string_view what) {
  if (remaining() < sizeof(T)) return overrun(what);
  T x = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    x = static_cast<T>((x << 8) | std::to_integer<std::uint8_t>(in_[pos_ + i]));
  }
  pos_ += sizeof(T);
  v = x;
  return ok_status();
}

Status ByteReader::u8(std::uint8_t& v) { return get_be(v, "octet"); }
Status ByteReader::u16(std::uint16_t& v) { return get_be(v, "2-byte integer"); }
Status ByteReader::u32(std::uint32_t& v) { return get_be(v, "4-byte integer"); }
Status ByteReader::u64(std::uint64_t& v) { return get_be(v, "8-byte integer"); }

Status ByteReader::bytes(std::size_t n, std::span<const std::byte>& out, std::string_view what) {
  if (remaining() < n) return overrun(what);
  out = in_.subspan(pos_, n);
  pos_ += n;
  return ok_status();
}

Status ByteReader::shortstr(std::string& s) {
  std::uint8_t n = 0;
  if (remaining() < 1) return overrun("short string length");
  MYELIN_RETURN_IF_ERROR(u8(n));
  if (remaining() < n) {
    --pos_;  // report the offset of the string, length octet included
    return overrun("short string of " + std::to_string(n) + " bytes");
  }
  s.assign(reinterpret_cast<const char*>(in_.data() + pos_), n);
  pos_ += n;
  return ok_status();
}

Status ByteReader::longstr(std::string& s) {
  std::uint32_t n = 0;
  if (remaining() < 4) return overrun("long string length");
  MYELIN_RETURN_IF_ERROR(u32(n));
  if (remaining() < n) {
    pos_ -= 4;
    return overrun("long string of " + std::to_string(n) + " bytes");
  }
  s.assign(reinterpret_cast<const char*>(in_.data() + pos_), n);
  pos_ += n;
  return ok_status();
}

Status ByteReader::nested(std::string_view what, std::span<const std::byte>& body) {
  std::uint32_t n = 0;
  if (remaining() < 4) return overrun(std::string(what) + " length");
  MYELIN_RETURN_IF_ERROR(u32(n));
  if (remaining() < n) {
    pos_ -= 4;
    return overrun(std::string(what) + " of " + std::to_string(n) + " bytes");
  }
  body = in_.subspan(pos_, n);
  pos_ += n;
  return ok_status();
}

Status ByteReader::table_at_depth(FieldTable& t, int depth) {
  if (depth >= kMaxFieldNesting) return too_deep();
  std::span<const std::byte> body;
  MYELIN_RETURN_IF_ERROR(nested("field table", body));
  ByteReader r(body, "field table");
  t.clear();
  while (!r.at_end()) {
    std::string name;
    if (Status s = r.shortstr(name); !s.ok()) {
      return std::move(s).with_context("field name after " + std::to_string(t.size()) + " fields");
    }
    FieldValue value;
    if (Status s = r.value_at_depth(value, depth + 1); !s.ok()) {
      return std::move(s).with_context("field '" + name + "'");
    }
    t.emplace_back(std::move(name), std::move(value));
  }
  return ok_status();
}

Status ByteReader::array_at_depth(FieldArray& a, int depth) {
  if (depth >= kMaxFieldNesting) return too_deep();
  std::span<const std::byte> body;
  MYELIN_RETURN_IF_ERROR(nested("field array", body));
  ByteReader r(body, "field array");
  a.clear();
  while (!r.at_end()) {
    FieldValue value;
    if (Status s = r.value_at_depth(value, depth + 1); !s.ok()) {
      return std::move(s).with_context("array element " + std::to_string(a.size()));
    }
    a.push_back(std::move(value));
  }
  return ok_status();
}

Status ByteReader::value_at_depth(FieldValue& v, int depth) {
  std::uint8_t tag = 0;
  if (remaining() < 1) return overrun("field type tag");
  MYELIN_RETURN_IF_ERROR(u8(tag));
  switch (tag) {
    case 'V':
      v.value.emplace<std::monostate>();
      return ok_status();
    case 't': {
      std::uint8_t b = 0;
      MYELIN_RETURN_IF_ERROR(get_be(b, "boolean"));
      v.value = b != 0;
      return ok_status();
    }
    case 'b': {
      std::uint8_t b = 0;
      MYELIN_RETURN_IF_ERROR(get_be(b, "signed 8-bit integer"));
      v.value = static_cast<std::int8_t>(b);
      return ok_status();
    }
    case 'B': {
      std::uint8_t b = 0;
      MYELIN_RETURN_IF_ERROR(get_be(b, "unsigned 8-bit integer"));
      v.value = b;
      return ok_status();
    }
    case 's': {
      std::uint16_t x = 0;
      MYELIN_RETURN_IF_ERROR(get_be(x, "signed 16-bit integer"));
      v.value = static_cast<std::int16_t>(x);
      return ok_status();
    }
    case 'u': {
      std::uint16_t x = 0;
      MYELIN_RETURN_IF_ERROR(get_be(x, "unsigned 16-bit integer"));
      v.value = x;
      return ok_status();
    }
    case 'I': {
      std::uint32_t x = 0;
      MYELIN_RETURN_IF_ERROR(get_be(x, "signed 32-bit integer"));
      v.value = static_cast<std::int32_t>(x);
      return ok_status();
    }
    case 'i': {
      std::uint32_t x = 0;
      MYELIN_RETURN_IF_ERROR(get_be(x, "unsigned 32-bit integer"));
      v.value = x;
      return ok_status();
    }
    case 'l': {
      std::uint64_t x = 0;
      MYELIN_RETURN_IF_ERROR(get_be(x, "signed 64-bit integer"));
      v.value = static_cast<std::int64_t>(x);
      return ok_status();
    }
    case 'f': {
      std::uint32_t x = 0;
      MYELIN_RETURN_IF_ERROR(get_be(x, "float"));
      v.value = std::bit_cast<float>(x);
      return ok_status();
    }
    case 'd': {
      std::uint64_t x = 0;
      MYELIN_RETURN_IF_ERROR(get_be(x, "double"));
      v.value = std::bit_cast<double>(x);
      return ok_status();
    }
    case 'D': {
      Decimal d;
      if (remaining() < 5) return overrun("decimal");
      MYELIN_RETURN_IF_ERROR(u8(d.scale));
      MYELIN_RETURN_IF_ERROR(u32(d.value));
      v.value = d;
      return ok_status();
    }
    case 'S': {
      std::string s;
      MYELIN_RETURN_IF_ERROR(longstr(s));
      v.value = std::move(s);
      return ok_status();
    }
    case 'x': {
      ByteArray b;
      if (Status s = longstr(b.bytes); !s.ok()) return std::move(s).with_context("byte array");
      v.value = std::move(b);
      return ok_status();
    }
    case 'A': {
      FieldArray a;
      MYELIN_RETURN_IF_ERROR(array_at_depth(a, depth));
      v.value = std::move(a);
      return ok_status();
    }
    case 'T': {
      Timestamp ts;
      MYELIN_RETURN_IF_ERROR(get_be(ts.seconds, "timestamp"));
      v.value = ts;
      return ok_status();
    }
    case 'F': {
      FieldTable t;
      MYELIN_RETURN_IF_ERROR(table_at_depth(t, depth));
      v.value = std::move(t);
      return ok_status();
    }
    case 'U':
    case 'L':
      // The 0-9-1 spec's signed 16/64-bit tags; RabbitMQ uses 's' and 'l'.
      --pos_;
      return parse_error("field type " + describe_tag(tag) + " at offset " + std::to_string(pos_) +
                         " is the 0-9-1 spec's, which RabbitMQ does not use (it sends '" +
                         (tag == 'U' ? "s" : "l") + "')");
    default:
      --pos_;
      return parse_error("unknown field type " + describe_tag(tag) + " at offset " +
                         std::to_string(pos_) + " of the " + std::to_string(in_.size()) + "-byte " +
                         std::string(container_));
  }
}

}  // namespace myelin::amqp::wire
