// Field tables and arrays: every RabbitMQ field type round-trips with its
// tag, nested values survive, and malformed input fails with a precise error.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "myelin/amqp/types.h"
#include "myelin/base/result.h"
#include "src/amqp/byte_reader.h"
#include "src/amqp/byte_writer.h"
#include "src/amqp/test_util.h"
#include "src/amqp/wire.h"

namespace myelin::amqp::wire {
namespace {

using testing::bytes;
using testing::hex;

FieldTable every_type() {
  FieldArray nested_array = {FieldValue(std::int32_t{-7}), FieldValue(std::string("x")),
                             FieldValue(FieldArray{FieldValue(true)})};
  FieldTable inner = {{"deep", FieldValue(FieldTable{{"deeper", FieldValue(std::uint8_t{9})}})}};
  return {
      {"void", FieldValue()},
      {"bool", FieldValue(true)},
      {"i8", FieldValue(std::int8_t{-128})},
      {"u8", FieldValue(std::uint8_t{255})},
      {"i16", FieldValue(std::int16_t{-32768})},
      {"u16", FieldValue(std::uint16_t{65535})},
      {"i32", FieldValue(std::int32_t{std::numeric_limits<std::int32_t>::min()})},
      {"u32", FieldValue(std::uint32_t{4294967295u})},
      {"i64", FieldValue(std::int64_t{std::numeric_limits<std::int64_t>::min()})},
      {"f32", FieldValue(1.5f)},
      {"f64", FieldValue(-2.25)},
      {"decimal", FieldValue(Decimal{2, 12345})},
      {"string", FieldValue(std::string("hello\0world", 11))},
      {"bytes", FieldValue(ByteArray{std::string("\x00\xff\x10", 3)})},
      {"array", FieldValue(nested_array)},
      {"timestamp", FieldValue(Timestamp{1700000000})},
      {"table", FieldValue(inner)},
      {"dup", FieldValue(std::int32_t{1})},
      {"dup", FieldValue(std::int32_t{2})},
  };
}

Result<FieldTable> round_trip(const FieldTable& t, std::vector<std::byte>* wire = nullptr) {
  std::vector<std::byte> buf;
  ByteWriter w(buf);
  w.table(t);
  MYELIN_RETURN_IF_ERROR(w.status());
  ByteReader r(buf);
  FieldTable out;
  MYELIN_RETURN_IF_ERROR(r.table(out));
  if (!r.at_end()) return internal_error("trailing bytes");
  if (wire) *wire = buf;
  return out;
}

TEST(FieldTable, EveryTypeRoundTripsInOrder) {
  const FieldTable t = every_type();
  auto back = round_trip(t);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(*back, t);
  ASSERT_EQ(back->size(), t.size());
  for (std::size_t i = 0; i < t.size(); ++i) {
    EXPECT_EQ((*back)[i].first, t[i].first);
    EXPECT_EQ((*back)[i].second.value.index(), t[i].second.value.index()) << t[i].first;
  }
}

TEST(FieldTable, EachValueUsesRabbitMqTag) {
  struct Case {
    FieldValue v;
    std::string wire;
  };
  const Case cases[] = {
      {FieldValue(), "56"},
      {FieldValue(false), "74 00"},
      {FieldValue(std::int8_t{-1}), "62 ff"},
      {FieldValue(std::uint8_t{1}), "42 01"},
      {FieldValue(std::int16_t{-2}), "73 ff fe"},
      {FieldValue(std::uint16_t{2}), "75 00 02"},
      {FieldValue(std::int32_t{-3}), "49 ff ff ff fd"},
      {FieldValue(std::uint32_t{3}), "69 00 00 00 03"},
      {FieldValue(std::int64_t{-4}), "6c ff ff ff ff ff ff ff fc"},
      {FieldValue(1.0f), "66 3f 80 00 00"},
      {FieldValue(1.0), "64 3f f0 00 00 00 00 00 00"},
      {FieldValue(Decimal{3, 5}), "44 03 00 00 00 05"},
      {FieldValue("ab"), "53 00 00 00 02 61 62"},
      {FieldValue(ByteArray{"ab"}), "78 00 00 00 02 61 62"},
      {FieldValue(FieldArray{}), "41 00 00 00 00"},
      {FieldValue(Timestamp{1}), "54 00 00 00 00 00 00 00 01"},
      {FieldValue(FieldTable{}), "46 00 00 00 00"},
  };
  for (const Case& c : cases) {
    std::vector<std::byte> buf;
    ByteWriter w(buf);
    w.field_value(c.v);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(hex(buf), c.wire);
    ByteReader r(buf);
    FieldValue back;
    ASSERT_TRUE(r.field_value(back).ok()) << c.wire;
    EXPECT_EQ(back, c.v) << c.wire;
  }
}

TEST(FieldTable, OneLongStringEntryIsByteExact) {
  // table = long-uint size, then name (short string), 'S', long string.
  std::vector<std::byte> wire;
  auto back = round_trip({{"key", FieldValue("value")}}, &wire);
  ASSERT_TRUE(back);
  EXPECT_EQ(hex(wire),
            hex(bytes({0, 0, 0, 14, 3, 'k', 'e', 'y', 'S', 0, 0, 0, 5, 'v', 'a', 'l', 'u', 'e'})));
}

TEST(FieldTable, NaNEqualsItselfSoRoundTripsCompareEqual) {
  const FieldTable t = {{"nan", FieldValue(std::numeric_limits<double>::quiet_NaN())},
                        {"nanf", FieldValue(std::numeric_limits<float>::quiet_NaN())}};
  auto back = round_trip(t);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, t);
  EXPECT_NE(FieldValue(0.0), FieldValue(-0.0));  // different bytes
}

TEST(FieldTable, DeepNestingRoundTripsUpToTheLimit) {
  FieldValue v(std::int32_t{1});
  for (int i = 0; i < kMaxFieldNesting - 1; ++i) {
    v = (i % 2) ? FieldValue(FieldArray{v}) : FieldValue(FieldTable{{"n", v}});
  }
  FieldTable t = {{"root", v}};
  auto back = round_trip(t);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(*back, t);
  FieldTable too_deep = {{"root", FieldValue(t)}};
  std::vector<std::byte> buf;
  ByteWriter w(buf);
  w.table(too_deep);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("nested deeper than 64"), std::string_view::npos);
}

TEST(FieldTable, HostileNestingIsRejectedNotRecursedForever) {
  // 'F' tables each claiming the rest of the buffer, nested 10000 deep.
  std::vector<std::byte> buf;
  constexpr int kDepth = 10000;
  for (int i = 0; i < kDepth; ++i) {
    const std::uint32_t rest = static_cast<std::uint32_t>((kDepth - i - 1) * 7 + 0);
    for (int k = 3; k >= 0; --k)
      buf.push_back(std::byte(static_cast<std::uint8_t>(rest >> (8 * k))));
    if (i + 1 < kDepth) {
      buf.push_back(std::byte{1});
      buf.push_back(std::byte{'k'});
      buf.push_back(std::byte{'F'});
    }
  }
  ByteReader r(buf);
  FieldTable t;
  const Status s = r.table(t);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("nested deeper than 64"), std::string_view::npos) << s.message();
}

TEST(FieldTable, ErrorsSayWhatAndWhere) {
  // A long string claims 100 bytes inside a 12-byte table.
  auto wire = bytes({0, 0, 0, 12, 1, 'a', 'S', 0, 0, 0, 100, 'x', 'y', 'z', 'w', 'v'});
  ByteReader r(wire);
  FieldTable t;
  Status s = r.table(t);
  ASSERT_EQ(s.code(), ErrorCode::kParseError);
  EXPECT_EQ(s.message(),
            "field 'a': long string of 100 bytes at offset 3 runs past the end of the 12-byte "
            "field table");

  auto unknown = bytes({0, 0, 0, 3, 1, 'a', 'Q'});
  ByteReader r2(unknown);
  s = r2.table(t);
  EXPECT_EQ(s.message(),
            "field 'a': unknown field type 'Q' (0x51) at offset 2 of the 3-byte "
            "field table");

  auto table_overrun = bytes({0, 0, 1, 0, 1});
  ByteReader r3(table_overrun);
  s = r3.table(t);
  EXPECT_EQ(s.message(),
            "field table of 256 bytes at offset 0 runs past the end of the 5-byte frame payload");
}

TEST(FieldTable, SpecOnlyTagsUAndLAreRejected) {
  for (char tag : {'U', 'L'}) {
    auto wire = bytes({tag, 0, 1});
    ByteReader r(wire);
    FieldValue v;
    const Status s = r.field_value(v);
    ASSERT_EQ(s.code(), ErrorCode::kParseError);
    EXPECT_NE(s.message().find("RabbitMQ does not use"), std::string_view::npos) << s.message();
  }
}

TEST(FieldTable, EveryPrefixFailsCleanly) {
  std::vector<std::byte> wire;
  ASSERT_TRUE(round_trip(every_type(), &wire));
  for (std::size_t n = 0; n < wire.size(); ++n) {
    ByteReader r(std::span<const std::byte>(wire).first(n));
    FieldTable t;
    EXPECT_FALSE(r.table(t).ok()) << n;
  }
}

TEST(FieldTable, EncoderRejectsOverlongNamesAndShortStrings) {
  std::vector<std::byte> buf;
  ByteWriter w(buf);
  w.table({{std::string(256, 'k'), FieldValue(true)}});
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().message(), "field table name of 256 bytes exceeds the 255-byte limit");

  std::vector<std::byte> buf2;
  ByteWriter w2(buf2);
  w2.shortstr(std::string(255, 's'));
  EXPECT_TRUE(w2.ok());
  w2.shortstr(std::string(256, 's'));
  EXPECT_EQ(w2.status().message(), "short string of 256 bytes exceeds the 255-byte limit");
}

TEST(ByteReader, ShortStringOverrunNamesLengthAndPayload) {
  auto wire = bytes({40, 'a', 'b'});
  ByteReader r(wire);
  std::string s;
  EXPECT_EQ(r.shortstr(s).message(),
            "short string of 40 bytes at offset 0 runs past the end of the 3-byte frame payload");
}

}  // namespace
}  // namespace myelin::amqp::wire
