// ContentAssembler: messages assembled from method + header + body frames,
// and every out-of-order frame reported as 505 UNEXPECTED_FRAME.
#include "src/amqp/content_assembler.h"

#include <gtest/gtest.h>

// GCC 12 warns when designated initializers omit members, even ones with
// default member initializers (GCC 13 does not); the omission is the point.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace myelin::amqp::wire {
namespace {

using Event = ContentAssembler::Event;

// Frames of one message as the broker would send them, each parsed back.
struct Frames {
  std::vector<std::byte> bytes;
  std::vector<FrameView> views;
};

Frames message(const Method& m, std::string_view body, std::uint32_t frame_max,
               BasicProperties props = {}) {
  Frames f;
  EXPECT_TRUE(append_method_frame(f.bytes, 3, m).ok());
  EXPECT_TRUE(append_content(f.bytes, 3, class_id::kBasic, props, body, frame_max).ok());
  std::span<const std::byte> in(f.bytes);
  while (!in.empty()) {
    FrameView v;
    auto r = parse_frame(in, frame_max, v);
    EXPECT_TRUE(r && *r > 0);
    f.views.push_back(v);
    in = in.subspan(*r);
  }
  return f;
}

TEST(ContentAssembler, AssemblesADeliverySplitAcrossBodyFrames) {
  const BasicDeliver deliver{.consumer_tag = "ctag", .delivery_tag = 9, .routing_key = "rk"};
  BasicProperties props;
  props.content_type = "text/plain";
  const std::string body(10000, 'z');
  Frames f = message(deliver, body, 4096, props);
  ASSERT_EQ(f.views.size(), 5u);  // method, header, 3 bodies
  ContentAssembler a;
  for (std::size_t i = 0; i + 1 < f.views.size(); ++i) {
    auto e = a.feed(f.views[i]);
    ASSERT_TRUE(e) << e.error().to_string();
    EXPECT_EQ(*e, Event::kNone);
    EXPECT_TRUE(a.in_progress());
  }
  auto e = a.feed(f.views.back());
  ASSERT_TRUE(e);
  ASSERT_EQ(*e, Event::kDelivery);
  EXPECT_FALSE(a.in_progress());
  Delivery d = a.take_delivery();
  EXPECT_EQ(d.method, Method(deliver));
  EXPECT_EQ(d.properties, props);
  EXPECT_EQ(d.body, body);
}

TEST(ContentAssembler, EmptyBodyCompletesAtTheHeader) {
  Frames f = message(BasicGetOk{.delivery_tag = 1, .message_count = 0}, "", 4096);
  ASSERT_EQ(f.views.size(), 2u);
  ContentAssembler a;
  EXPECT_EQ(*a.feed(f.views[0]), Event::kNone);
  EXPECT_EQ(a.state(), ContentAssembler::State::kAwaitingHeader);
  EXPECT_EQ(*a.feed(f.views[1]), Event::kDelivery);
  EXPECT_TRUE(a.take_delivery().body.empty());
}

TEST(ContentAssembler, MethodsWithoutContentPassThroughAndHeartbeatsAreIgnored) {
  std::vector<std::byte> buf;
  ASSERT_TRUE(append_method_frame(buf, 3, BasicAck{.delivery_tag = 4}).ok());
  FrameView v;
  ASSERT_TRUE(parse_frame(buf, 0, v));
  ContentAssembler a;
  EXPECT_EQ(*a.feed(v), Event::kMethod);
  EXPECT_EQ(a.take_method(), Method(BasicAck{.delivery_tag = 4}));
  EXPECT_EQ(*a.feed(FrameView{kFrameHeartbeat, 0, {}}), Event::kNone);
}

TEST(ContentAssembler, MethodFrameMidContentIsUnexpected) {
  Frames f = message(BasicDeliver{.delivery_tag = 1}, "abcdef", 4096);
  Frames other = message(BasicDeliver{.delivery_tag = 2}, "x", 4096);
  ContentAssembler a;
  ASSERT_TRUE(a.feed(f.views[0]));
  auto e = a.feed(other.views[0]);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code(), ErrorCode::kProtocolError);
  EXPECT_EQ(e.error().message(),
            "channel 3: basic.deliver method frame while the content of basic.deliver awaited "
            "its content header (505 UNEXPECTED_FRAME)");
  EXPECT_FALSE(a.in_progress());  // reset after the error

  ASSERT_TRUE(a.feed(f.views[0]));
  ASSERT_TRUE(a.feed(f.views[1]));
  std::vector<std::byte> ack;
  ASSERT_TRUE(append_method_frame(ack, 3, BasicAck{}).ok());
  FrameView v;
  ASSERT_TRUE(parse_frame(ack, 0, v));
  e = a.feed(v);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().message(),
            "channel 3: basic.ack method frame while the content of basic.deliver awaited 6 more "
            "body bytes (505 UNEXPECTED_FRAME)");
}

TEST(ContentAssembler, HeaderOrBodyWithoutContentIsUnexpected) {
  Frames f = message(BasicDeliver{}, "abc", 4096);
  ContentAssembler a;
  auto e = a.feed(f.views[1]);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().message(), "channel 3: content header frame (505 UNEXPECTED_FRAME)");
  e = a.feed(f.views[2]);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().message(), "channel 3: body frame of 3 bytes (505 UNEXPECTED_FRAME)");
  // Body before the header.
  ASSERT_TRUE(a.feed(f.views[0]));
  e = a.feed(f.views[2]);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().message(),
            "channel 3: body frame of 3 bytes while the content of basic.deliver awaited its "
            "content header (505 UNEXPECTED_FRAME)");
  // A second header.
  ASSERT_TRUE(a.feed(f.views[0]));
  ASSERT_TRUE(a.feed(f.views[1]));
  e = a.feed(f.views[1]);
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message().find("content header frame while"), std::string::npos);
}

TEST(ContentAssembler, MoreBodyThanAnnouncedIsUnexpected) {
  Frames f = message(BasicReturn{.reply_code = 312}, "abc", 4096);
  Frames longer = message(BasicReturn{}, "abcd", 4096);
  ContentAssembler a;
  ASSERT_TRUE(a.feed(f.views[0]));
  ASSERT_TRUE(a.feed(f.views[1]));
  auto e = a.feed(longer.views[2]);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().message(),
            "channel 3: basic.return: body frame of 4 bytes brings the content to 4 bytes, more "
            "than the 3 its header announced (505 UNEXPECTED_FRAME)");
}

TEST(ContentAssembler, OversizedBodyIsRefusedAtTheHeader) {
  Frames f = message(BasicDeliver{}, std::string(100, 'q'), 4096);
  ContentAssembler a(/*max_body_size=*/99);
  ASSERT_TRUE(a.feed(f.views[0]));
  auto e = a.feed(f.views[1]);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_FALSE(a.in_progress());
}

TEST(ContentAssembler, LowLevelStepsAndMisuse) {
  ContentAssembler a;
  EXPECT_EQ(a.begin(Method(BasicAck{})).code(), ErrorCode::kInvalidArgument);
  ASSERT_TRUE(a.begin(Method(BasicPublish{.routing_key = "k"})).ok());
  ContentHeader h;
  h.body_size = 2;
  EXPECT_FALSE(*a.add_header(h));
  EXPECT_FALSE(*a.add_body(std::as_bytes(std::span("a", 1))));
  EXPECT_TRUE(*a.add_body(std::as_bytes(std::span("b", 1))));
  EXPECT_EQ(a.take_delivery().body, "ab");
  EXPECT_EQ(to_string(a.state()), "idle");
}

}  // namespace
}  // namespace myelin::amqp::wire
