// Methods: every method of every class round-trips, a few are checked byte
// for byte against the spec's layout, and malformed payloads fail cleanly.
#include <gtest/gtest.h>

#include <set>

#include "src/amqp/byte_writer.h"
#include "src/amqp/method.h"
#include "src/amqp/test_util.h"

// GCC 12 warns when designated initializers omit members, even ones with
// default member initializers (GCC 13 does not); the omission is the point.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace myelin::amqp::wire {
namespace {

using testing::bytes;
using testing::hex;

// Sets every argument to a distinct non-default value (bits follow `bit_pattern`).
class Filler {
 public:
  explicit Filler(unsigned bit_pattern) : bits_(bit_pattern) {}
  void u8(std::string_view, std::uint8_t& v) { v = static_cast<std::uint8_t>(next()); }
  void u16(std::string_view, std::uint16_t& v) { v = static_cast<std::uint16_t>(next() * 257); }
  void u32(std::string_view, std::uint32_t& v) { v = 0x01020304u * next(); }
  void u64(std::string_view, std::uint64_t& v) { v = 0x0102030405060708ull * next(); }
  void shortstr(std::string_view name, std::string& s) { s = std::string(name) + "-value"; }
  void longstr(std::string_view name, std::string& s) {
    s = std::string(name) + std::string("\0long\xff", 6);
  }
  void table(std::string_view name, FieldTable& t) {
    t = {{std::string(name), FieldValue(std::int64_t{-5})},
         {"nested", FieldValue(FieldTable{{"a", FieldValue(FieldArray{FieldValue("s")})}})}};
  }
  void bit(std::string_view, bool& b) {
    b = (bits_ & 1u) != 0;
    bits_ = (bits_ >> 1) | ((bits_ & 1u) << 31);
  }

 private:
  unsigned next() { return ++n_; }
  unsigned n_ = 0;
  unsigned bits_;
};

template <std::size_t... I>
std::vector<Method> all_methods(unsigned bit_pattern, std::index_sequence<I...>) {
  std::vector<Method> out;
  (
      [&] {
        using T = std::variant_alternative_t<I, Method>;
        T m{};
        Filler f(bit_pattern);
        T::fields(m, f);
        out.emplace_back(std::move(m));
      }(),
      ...);
  return out;
}

std::vector<Method> all_methods(unsigned bit_pattern) {
  return all_methods(bit_pattern, std::make_index_sequence<std::variant_size_v<Method>>());
}

std::vector<std::byte> encode(const Method& m) {
  std::vector<std::byte> buf;
  ByteWriter w(buf);
  encode_method(m, w);
  EXPECT_TRUE(w.ok()) << w.status().to_string();
  return buf;
}

TEST(MethodCodec, EveryMethodRoundTrips) {
  for (unsigned pattern : {0u, 0xFFFFFFFFu, 0xAAAAAAAAu, 0x55555555u}) {
    for (const Method& m : all_methods(pattern)) {
      const auto wire = encode(m);
      auto back = decode_method(wire);
      ASSERT_TRUE(back) << method_name(m) << ": " << back.error().to_string();
      EXPECT_EQ(*back, m) << method_name(m);
      EXPECT_EQ(method_key(*back), method_key(m));
    }
  }
  // Default-constructed methods too (empty strings and tables).
  for (std::size_t i = 0; i < std::variant_size_v<Method>; ++i) {
    const Method m = all_methods(0)[i];
    Method d = std::visit([](const auto& x) -> Method { return std::decay_t<decltype(x)>{}; }, m);
    auto back = decode_method(encode(d));
    ASSERT_TRUE(back) << method_name(d);
    EXPECT_EQ(*back, d);
  }
}

TEST(MethodCodec, NamesKeysAndContentFlags) {
  std::set<std::string_view> names;
  std::set<std::pair<int, int>> keys;
  int with_content = 0;
  for (const Method& m : all_methods(0)) {
    names.insert(method_name(m));
    keys.insert({method_key(m).class_id, method_key(m).method_id});
    with_content += has_content(m) ? 1 : 0;
    EXPECT_EQ(method_name(method_key(m)), method_name(m));
  }
  EXPECT_EQ(names.size(), std::variant_size_v<Method>);
  EXPECT_EQ(keys.size(), std::variant_size_v<Method>);
  EXPECT_EQ(with_content, 4);
  EXPECT_TRUE(has_content(Method(BasicPublish{})));
  EXPECT_TRUE(has_content(Method(BasicReturn{})));
  EXPECT_TRUE(has_content(Method(BasicDeliver{})));
  EXPECT_TRUE(has_content(Method(BasicGetOk{})));
  EXPECT_FALSE(has_content(Method(BasicGet{})));
  EXPECT_EQ(method_name(Method(BasicDeliver{})), "basic.deliver");
  EXPECT_EQ(method_name(Method(ConnectionUpdateSecretOk{})), "connection.update-secret-ok");
  EXPECT_EQ(method_name(MethodKey{40, 51}), "exchange.unbind-ok");
  EXPECT_EQ(method_name(MethodKey{40, 41}), "");
}

TEST(MethodCodec, TuneOkIsByteExact) {
  // class 10, method 31, channel-max (short), frame-max (long), heartbeat (short).
  const auto wire =
      encode(ConnectionTuneOk{.channel_max = 2047, .frame_max = 131072, .heartbeat = 60});
  EXPECT_EQ(hex(wire), "00 0a 00 1f 07 ff 00 02 00 00 00 3c");
}

TEST(MethodCodec, PublishPacksMandatoryIntoBitZero) {
  const auto wire = encode(BasicPublish{.exchange = "ex", .routing_key = "rk", .mandatory = true});
  // 60/40, reserved-1 (short 0), "ex", "rk", bits: mandatory=bit 0.
  EXPECT_EQ(hex(wire), "00 3c 00 28 00 00 02 65 78 02 72 6b 01");
  const auto both =
      encode(BasicPublish{.exchange = "", .routing_key = "", .mandatory = true, .immediate = true});
  EXPECT_EQ(hex(both), "00 3c 00 28 00 00 00 00 03");
}

TEST(MethodCodec, ConsecutiveBitsShareOneOctetAndOtherFieldsEndIt) {
  // exchange.declare: passive durable auto-delete internal no-wait -> bits 0..4.
  const auto wire =
      encode(ExchangeDeclare{.exchange = "x", .type = "topic", .durable = true, .no_wait = true});
  EXPECT_EQ(hex(wire), "00 28 00 0a 00 00 01 78 05 74 6f 70 69 63 12 00 00 00 00");
  // basic.nack: delivery-tag then multiple (bit 0) and requeue (bit 1) in one octet.
  EXPECT_EQ(hex(encode(BasicNack{.delivery_tag = 1, .multiple = false, .requeue = true})),
            "00 3c 00 78 00 00 00 00 00 00 00 01 02");
}

TEST(MethodCodec, NineBitsSpillIntoASecondOctet) {
  struct NineBits {
    bool b[9];
  } nine{{true, false, false, false, false, false, false, true, true}};
  std::vector<std::byte> buf;
  ByteWriter w(buf);
  MethodEncoder enc(w, "test.nine");
  for (bool b : nine.b) enc.bit("b", b);
  enc.u8("after", 0xAA);
  enc.bit("again", true);
  EXPECT_EQ(hex(buf), "81 01 aa 01");
}

TEST(MethodCodec, EveryPrefixAndTrailingByteIsAnError) {
  for (const Method& m : all_methods(0xFFFFFFFFu)) {
    auto wire = encode(m);
    for (std::size_t n = 0; n < wire.size(); ++n) {
      auto r = decode_method(std::span(wire).first(n));
      ASSERT_FALSE(r) << method_name(m) << " prefix " << n;
      EXPECT_EQ(r.error().code(), ErrorCode::kParseError);
    }
    wire.push_back(std::byte{0});
    auto r = decode_method(wire);
    ASSERT_FALSE(r) << method_name(m);
    EXPECT_NE(r.error().message().find("unexpected bytes after the last argument"),
              std::string_view::npos);
  }
}

TEST(MethodCodec, ErrorsNameMethodArgumentAndOffset) {
  // basic.deliver: consumer-tag "c", delivery-tag 1, redelivered, exchange "",
  // routing-key claiming 40 bytes of which 2 are present.
  auto wire = bytes({0, 60, 0, 60, 1, 'c', 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 40, 'a', 'b'});
  auto r = decode_method(wire);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "basic.deliver: routing-key: short string of 40 bytes at offset 16 runs past the end "
            "of the 19-byte frame payload");

  r = decode_method(bytes({0, 60, 0, 99}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kProtocolError);
  EXPECT_EQ(r.error().message(), "unknown method 99 of class 60 (basic)");
  r = decode_method(bytes({0, 33, 0, 10}));
  EXPECT_EQ(r.error().message(), "unknown method class 33 (method 10)");
  r = decode_method(bytes({0, 30, 0, 10}));
  EXPECT_NE(r.error().message().find("access class is not supported"), std::string_view::npos);
  r = decode_method(bytes({0, 10}));
  EXPECT_EQ(r.error().message(),
            "method frame payload of 2 bytes is shorter than its 4-byte class-id and method-id");
}

TEST(MethodCodec, EncoderRejectsOverlongShortStringWithContext) {
  std::vector<std::byte> buf;
  ByteWriter w(buf);
  encode_method(Method(BasicPublish{.routing_key = std::string(300, 'k')}), w);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(w.status().message(),
            "basic.publish: routing-key: short string of 300 bytes exceeds the 255-byte limit");
  std::vector<std::byte> buf2;
  ByteWriter w2(buf2);
  encode_method(
      QueueDeclare{
          .arguments = {{"x", FieldValue(FieldTable{{std::string(256, 'n'), FieldValue()}})}}},
      w2);
  EXPECT_EQ(w2.status().message(),
            "queue.declare: arguments: field 'x': field table name of 256 bytes exceeds the "
            "255-byte limit");
}

}  // namespace
}  // namespace myelin::amqp::wire
