// Value types of AMQP 0-9-1 as RabbitMQ speaks it: field tables (message
// headers, queue/exchange/consume arguments, client and server properties)
// and the 14 properties of a basic-class message.
//
// These are plain values: they own their data, copy deeply, compare with ==,
// and may be used from any thread as long as one object is not mutated
// concurrently. Encoding and decoding live in the private codec
// (src/amqp/, namespace myelin::amqp::wire).
//
// Field-value types follow RabbitMQ, not the letter of the 0-9-1 spec (see
// RabbitMQ's "AMQP 0-9-1 Errata", section 3): 's' is a signed 16-bit integer
// (not a short string), 'l' is a signed 64-bit integer, and 'x' is a byte
// array. The spec's 'U', 'L' and short-string 's' are never sent by RabbitMQ
// and the decoder rejects them. Each FieldValue alternative maps to exactly
// one tag, so decode(encode(v)) == v for every value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace myelin::amqp {

// 'D': value / 10^scale.
struct Decimal {
  std::uint8_t scale = 0;
  std::uint32_t value = 0;
  friend bool operator==(const Decimal&, const Decimal&) = default;
};

// 'x': opaque bytes (RabbitMQ extension); distinct from 'S' so that a value
// keeps its tag through a round trip.
struct ByteArray {
  std::string bytes;
  friend bool operator==(const ByteArray&, const ByteArray&) = default;
};

// 'T': seconds since the Unix epoch (64-bit, as on the wire).
struct Timestamp {
  std::uint64_t seconds = 0;
  friend bool operator==(const Timestamp&, const Timestamp&) = default;
};

struct FieldValue;
// 'F': an ordered list of (name, value); order and duplicates are preserved
// as received. Names are short strings (at most 255 bytes).
using FieldTable = std::vector<std::pair<std::string, FieldValue>>;
// 'A': a list of values.
using FieldArray = std::vector<FieldValue>;

struct FieldValue {
  using Variant = std::variant<std::monostate,  // 'V' void
                               bool,            // 't'
                               std::int8_t,     // 'b'
                               std::uint8_t,    // 'B'
                               std::int16_t,    // 's' (RabbitMQ: signed 16-bit)
                               std::uint16_t,   // 'u'
                               std::int32_t,    // 'I'
                               std::uint32_t,   // 'i'
                               std::int64_t,    // 'l' (RabbitMQ: signed 64-bit)
                               float,           // 'f'
                               double,          // 'd'
                               Decimal,         // 'D'
                               std::string,     // 'S' long string
                               ByteArray,       // 'x'
                               FieldArray,      // 'A'
                               Timestamp,       // 'T'
                               FieldTable>;     // 'F'
  Variant value;

  FieldValue() = default;
  template <typename T>
  requires std::is_constructible_v<Variant, T&&> &&
      (!std::is_same_v<std::remove_cvref_t<T>, FieldValue>)FieldValue(T&& v)
      : value(std::forward<T>(v)) {}  // NOLINT: implicit by design
  // A string literal is a long string, not a bool.
  FieldValue(const char* s) : value(std::string(s)) {}  // NOLINT

  // Floats and doubles compare by bit pattern, so == is an equivalence (a NaN
  // equals itself) and means "encodes to the same bytes".
  friend bool operator==(const FieldValue& a, const FieldValue& b);
};

// The basic-class content properties, in wire order (property flag bit 15
// down to bit 2). An empty optional is an absent property.
struct BasicProperties {
  std::optional<std::string> content_type;      // shortstr, MIME type
  std::optional<std::string> content_encoding;  // shortstr, MIME encoding
  std::optional<FieldTable> headers;            // table
  std::optional<std::uint8_t> delivery_mode;    // 1 transient, 2 persistent
  std::optional<std::uint8_t> priority;         // 0..9
  std::optional<std::string> correlation_id;    // shortstr
  std::optional<std::string> reply_to;          // shortstr
  std::optional<std::string> expiration;        // shortstr (RabbitMQ: TTL in ms, as text)
  std::optional<std::string> message_id;        // shortstr
  std::optional<std::uint64_t> timestamp;       // seconds since the epoch
  std::optional<std::string> type;              // shortstr
  std::optional<std::string> user_id;           // shortstr (RabbitMQ validates it)
  std::optional<std::string> app_id;            // shortstr
  std::optional<std::string> cluster_id;        // shortstr (deprecated in 0-9-1)
  friend bool operator==(const BasicProperties&, const BasicProperties&) = default;
};

}  // namespace myelin::amqp
