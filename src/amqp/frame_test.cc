// Frames: exact bytes of the fixed frames, incremental parsing, the frame
// errors, and content split at frame-max.
#include "src/amqp/frame.h"

#include <gtest/gtest.h>

#include "src/amqp/content_header.h"
#include "src/amqp/test_util.h"

// GCC 12 warns when designated initializers omit members, even ones with
// default member initializers (GCC 13 does not); the omission is the point.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace myelin::amqp::wire {
namespace {

using testing::bytes;
using testing::hex;

TEST(Frame, FixedFramesAreByteExact) {
  std::vector<std::byte> out;
  append_protocol_header(out);
  EXPECT_EQ(hex(out), "41 4d 51 50 00 00 09 01");
  out.clear();
  append_heartbeat(out);
  EXPECT_EQ(hex(out), "08 00 00 00 00 00 00 ce");
  out.clear();
  ASSERT_TRUE(
      append_method_frame(
          out, 0, ConnectionTuneOk{.channel_max = 2047, .frame_max = 131072, .heartbeat = 60})
          .ok());
  EXPECT_EQ(hex(out), "01 00 00 00 00 00 0c 00 0a 00 1f 07 ff 00 02 00 00 00 3c ce");
  // The Method overload writes the same bytes.
  std::vector<std::byte> again;
  ASSERT_TRUE(append_method_frame(again, 0, Method(ConnectionTuneOk{2047, 131072, 60})).ok());
  EXPECT_EQ(again, out);
}

TEST(Frame, EveryPrefixNeedsMoreAndTheWholeFrameParses) {
  std::vector<std::byte> out;
  ASSERT_TRUE(append_method_frame(out, 7, BasicAck{.delivery_tag = 5, .multiple = true}).ok());
  append_heartbeat(out);
  const std::size_t first = out.size() - 8;
  for (std::size_t n = 0; n < first; ++n) {
    FrameView f;
    auto r = parse_frame(std::span(out).first(n), 4096, f);
    ASSERT_TRUE(r) << n << ": " << r.error().to_string();
    EXPECT_EQ(*r, 0u) << n;
  }
  FrameView f;
  auto r = parse_frame(out, 4096, f);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, first);
  EXPECT_EQ(f.type, kFrameMethod);
  EXPECT_EQ(f.channel, 7);
  auto m = decode_method(f.payload);
  ASSERT_TRUE(m);
  EXPECT_EQ(*m, Method(BasicAck{.delivery_tag = 5, .multiple = true}));
  r = parse_frame(std::span(out).subspan(first), 4096, f);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 8u);
  EXPECT_EQ(f.type, kFrameHeartbeat);
  EXPECT_TRUE(f.payload.empty());
}

TEST(Frame, ParseErrors) {
  FrameView f;
  auto r = parse_frame(bytes({9, 0, 0, 0, 0, 0, 0, 0xCE}), 0, f);
  EXPECT_EQ(r.error().message(),
            "frame of unknown type 9 (expected 1 method, 2 header, 3 body or 8 heartbeat)");
  // Detected from the header alone: no need to wait for 4097 bytes.
  r = parse_frame(bytes({3, 0, 1, 0, 0, 0x10, 0x00}), 4096, f);
  EXPECT_EQ(r.error().message(),
            "body (type 3) frame on channel 1 has a 4096-byte payload, more than the 4088 that "
            "frame-max 4096 allows");
  r = parse_frame(bytes({1, 0, 1, 0, 0, 0, 1, 0xAB, 0x00}), 0, f);
  EXPECT_EQ(r.error().message(),
            "method (type 1) frame on channel 1 with a 1-byte payload ends in 0x00, not the "
            "frame-end octet 0xCE");
  r = parse_frame(bytes({8, 0, 2, 0, 0, 0, 0, 0xCE}), 0, f);
  EXPECT_EQ(r.error().message(), "heartbeat frame on channel 2; heartbeats must use channel 0");
  r = parse_frame(bytes({8, 0, 0, 0, 0, 0, 1, 0, 0xCE}), 0, f);
  EXPECT_EQ(r.error().code(), ErrorCode::kProtocolError);
  r = parse_frame(bytes({'A', 'M', 'Q', 'P', 0, 0, 9, 1}), 0, f);
  EXPECT_EQ(r.error().message(),
            "peer sent protocol header AMQP 0-0-9-1 instead of a frame: it does not accept AMQP "
            "0-9-1");
  EXPECT_EQ(*parse_frame(bytes({'A', 'M', 'Q'}), 0, f), 0u);
  EXPECT_FALSE(parse_frame(bytes({'A', 'X'}), 0, f));
  EXPECT_EQ(parse_frame({}, 4, f).error().code(), ErrorCode::kInvalidArgument);
}

TEST(Frame, ContentSplitsAtFrameMax) {
  constexpr std::uint32_t kFrameMax = 131072;
  std::string body(300000, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>(i * 31);
  BasicProperties props;
  props.delivery_mode = 2;
  std::vector<std::byte> out;
  ASSERT_TRUE(append_content(out, 5, class_id::kBasic, props, body, kFrameMax).ok());

  std::span<const std::byte> in(out);
  std::vector<FrameView> frames;
  while (!in.empty()) {
    FrameView f;
    auto r = parse_frame(in, kFrameMax, f);
    ASSERT_TRUE(r) << r.error().to_string();
    ASSERT_GT(*r, 0u);
    EXPECT_LE(*r, kFrameMax);
    EXPECT_EQ(f.channel, 5);
    frames.push_back(f);
    in = in.subspan(*r);
  }
  ASSERT_EQ(frames.size(), 4u);  // header + 3 body frames
  EXPECT_EQ(frames[0].type, kFrameHeader);
  auto h = decode_content_header(frames[0].payload);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->body_size, 300000u);
  EXPECT_EQ(h->properties, props);
  std::string joined;
  for (std::size_t i = 1; i < frames.size(); ++i) {
    EXPECT_EQ(frames[i].type, kFrameBody);
    joined.append(reinterpret_cast<const char*>(frames[i].payload.data()),
                  frames[i].payload.size());
  }
  EXPECT_EQ(frames[1].payload.size(), kFrameMax - 8);
  EXPECT_EQ(frames[3].payload.size(), 300000 - 2 * (kFrameMax - 8));
  EXPECT_EQ(joined, body);
}

TEST(Frame, EmptyBodyWritesOnlyTheHeader) {
  std::vector<std::byte> out;
  ASSERT_TRUE(append_content(out, 1, class_id::kBasic, {}, std::string_view(), 4096).ok());
  EXPECT_EQ(out.size(), 8u + 14u);
  EXPECT_EQ(std::to_integer<int>(out[0]), kFrameHeader);
}

TEST(Frame, ExactMultipleOfFrameMaxHasNoEmptyTrailingFrame) {
  std::vector<std::byte> out;
  const std::string body(2 * (4096 - 8), 'b');
  ASSERT_TRUE(
      append_body_frames(out, 1, std::as_bytes(std::span(body.data(), body.size())), 4096).ok());
  EXPECT_EQ(out.size(), 2u * 4096u);
}

TEST(Frame, EncoderErrorsLeaveTheBufferUntouched) {
  std::vector<std::byte> out = bytes({1, 2, 3});
  Status s = append_method_frame(out, 1, BasicPublish{.exchange = std::string(256, 'e')});
  EXPECT_EQ(s.message(),
            "basic.publish: exchange: short string of 256 bytes exceeds the 255-byte limit");
  EXPECT_EQ(out, bytes({1, 2, 3}));
  s = append_method_frame(out, 0, ConnectionStartOk{.response = std::string(5000, 'r')},
                          kFrameMinSize);
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(s.message().find("exceeds the 4088 that frame-max 4096 allows"), std::string::npos)
      << s.message();
  EXPECT_EQ(out, bytes({1, 2, 3}));
  BasicProperties big;
  big.headers = FieldTable{{"h", FieldValue(std::string(5000, 'h'))}};
  s = append_content(out, 1, class_id::kBasic, big, "body", 4096);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(out, bytes({1, 2, 3}));
  s = append_content(out, 1, class_id::kBasic, {}, "body", 8);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(out, bytes({1, 2, 3}));
  s = append_content(out, 1, class_id::kQueue, {}, "body", 4096);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(out, bytes({1, 2, 3}));
}

}  // namespace
}  // namespace myelin::amqp::wire
