// Content headers: all 14 basic properties, none, byte layout of the flags,
// and the header errors (class, weight, undefined flags, truncation).
#include "src/amqp/content_header.h"

#include <gtest/gtest.h>

#include "src/amqp/test_util.h"

namespace myelin::amqp::wire {
namespace {

using testing::bytes;
using testing::hex;

BasicProperties all_properties() {
  BasicProperties p;
  p.content_type = "application/json";
  p.content_encoding = "gzip";
  p.headers = FieldTable{{"x-retry", FieldValue(std::int32_t{3})},
                         {"x-death", FieldValue(FieldArray{FieldValue(FieldTable{})})}};
  p.delivery_mode = 2;
  p.priority = 9;
  p.correlation_id = "corr-1";
  p.reply_to = "amq.rabbitmq.reply-to";
  p.expiration = "60000";
  p.message_id = "msg-42";
  p.timestamp = 1700000000;
  p.type = "order.created";
  p.user_id = "guest";
  p.app_id = "myelin";
  p.cluster_id = "c1";
  return p;
}

std::vector<std::byte> encode(std::uint64_t body_size, const BasicProperties& p) {
  std::vector<std::byte> buf;
  ByteWriter w(buf);
  encode_content_header(class_id::kBasic, body_size, p, w);
  EXPECT_TRUE(w.ok()) << w.status().to_string();
  return buf;
}

TEST(ContentHeader, AllFourteenPropertiesRoundTrip) {
  const BasicProperties p = all_properties();
  const auto wire = encode(123456789012ull, p);
  // Every flag from bit 15 to bit 2.
  EXPECT_EQ(hex(std::span(wire).subspan(12, 2)), "ff fc");
  auto h = decode_content_header(wire);
  ASSERT_TRUE(h) << h.error().to_string();
  EXPECT_EQ(h->class_id, 60);
  EXPECT_EQ(h->body_size, 123456789012ull);
  EXPECT_EQ(h->properties, p);
}

TEST(ContentHeader, NoPropertiesIsFourteenBytes) {
  const auto wire = encode(5, {});
  EXPECT_EQ(hex(wire), "00 3c 00 00 00 00 00 00 00 00 00 05 00 00");
  auto h = decode_content_header(wire);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->properties, BasicProperties{});
}

TEST(ContentHeader, EachPropertyAloneSetsItsOwnFlag) {
  const BasicProperties all = all_properties();
  std::uint16_t expect = 0x8000;
  // Copy one property at a time, in wire order.
  auto only = [&](int i) {
    BasicProperties p;
    switch (i) {
      case 0:
        p.content_type = all.content_type;
        break;
      case 1:
        p.content_encoding = all.content_encoding;
        break;
      case 2:
        p.headers = all.headers;
        break;
      case 3:
        p.delivery_mode = all.delivery_mode;
        break;
      case 4:
        p.priority = all.priority;
        break;
      case 5:
        p.correlation_id = all.correlation_id;
        break;
      case 6:
        p.reply_to = all.reply_to;
        break;
      case 7:
        p.expiration = all.expiration;
        break;
      case 8:
        p.message_id = all.message_id;
        break;
      case 9:
        p.timestamp = all.timestamp;
        break;
      case 10:
        p.type = all.type;
        break;
      case 11:
        p.user_id = all.user_id;
        break;
      case 12:
        p.app_id = all.app_id;
        break;
      case 13:
        p.cluster_id = all.cluster_id;
        break;
    }
    return p;
  };
  for (int i = 0; i < 14; ++i, expect >>= 1) {
    const BasicProperties p = only(i);
    const auto wire = encode(0, p);
    const std::uint16_t flags = static_cast<std::uint16_t>(
        (std::to_integer<unsigned>(wire[12]) << 8) | std::to_integer<unsigned>(wire[13]));
    EXPECT_EQ(flags, expect) << i;
    auto h = decode_content_header(wire);
    ASSERT_TRUE(h) << i;
    EXPECT_EQ(h->properties, p) << i;
  }
}

TEST(ContentHeader, DeliveryModeAndContentTypeAreByteExact) {
  BasicProperties p;
  p.content_type = "text/plain";
  p.delivery_mode = 2;
  EXPECT_EQ(hex(encode(1, p)),
            "00 3c 00 00 00 00 00 00 00 00 00 01 90 00 0a 74 65 78 74 2f 70 6c 61 69 6e 02");
}

TEST(ContentHeader, RejectsWhatBasicDoesNotDefine) {
  auto bad_class = bytes({0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  EXPECT_EQ(decode_content_header(bad_class).error().message(),
            "content header: class 10 carries no content; only basic (60) does");
  auto weight = bytes({0, 60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  EXPECT_EQ(decode_content_header(weight).error().message(),
            "content header: weight is 1, but the spec requires 0");
  auto bit1 = bytes({0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2});
  EXPECT_EQ(decode_content_header(bit1).error().message(),
            "content header: property flags 0x0002 set bit 1, which class basic does not define");
  auto continued = bytes({0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x80, 0});
  EXPECT_EQ(decode_content_header(continued).error().message(),
            "content header: property flag word 0x8000 at offset 14 sets flags beyond the 14 "
            "properties of class basic");
  // An empty continuation word is harmless.
  auto empty_continuation = bytes({0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0});
  EXPECT_TRUE(decode_content_header(empty_continuation));
  auto trailing = bytes({0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7});
  EXPECT_NE(decode_content_header(trailing).error().message().find("1 unexpected bytes"),
            std::string::npos);
  // content-type flag set, string claims 10 bytes.
  auto overrun = bytes({0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 10, 'a'});
  EXPECT_EQ(decode_content_header(overrun).error().message(),
            "content header: content-type: short string of 10 bytes at offset 14 runs past the "
            "end of the 16-byte frame payload");
}

TEST(ContentHeader, EveryPrefixFailsCleanly) {
  const auto wire = encode(99, all_properties());
  for (std::size_t n = 0; n < wire.size(); ++n) {
    EXPECT_FALSE(decode_content_header(std::span(wire).first(n))) << n;
  }
}

TEST(ContentHeader, EncoderRejectsOtherClassesAndLongStrings) {
  std::vector<std::byte> buf;
  ByteWriter w(buf);
  encode_content_header(class_id::kQueue, 0, {}, w);
  EXPECT_EQ(w.status().code(), ErrorCode::kInvalidArgument);
  BasicProperties p;
  p.message_id = std::string(256, 'm');
  std::vector<std::byte> buf2;
  ByteWriter w2(buf2);
  encode_content_header(class_id::kBasic, 0, p, w2);
  EXPECT_EQ(w2.status().message(),
            "content header: message-id: short string of 256 bytes exceeds the 255-byte limit");
}

}  // namespace
}  // namespace myelin::amqp::wire
