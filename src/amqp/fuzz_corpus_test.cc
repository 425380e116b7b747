// The seed corpus of fuzz/amqp_frame_fuzz.cc, made here from the codec.
// Normally the test checks that the committed corpus still equals what the
// codec produces (so the seeds keep exercising valid streams as the codec
// changes). With MYELIN_AMQP_WRITE_CORPUS=<dir> it writes them instead, from
// the source root:
//   MYELIN_AMQP_WRITE_CORPUS=fuzz/corpus/amqp_frame_fuzz
//   build/release/bin/myelin_amqp_codec_test --gtest_filter=FuzzCorpus.*
// (one command line).
// Seeds are frame streams a broker could send, plus truncated and broken ones.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "src/amqp/frame.h"

// GCC 12 warns when designated initializers omit members (GCC 13 does not).
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace myelin::amqp::wire {
namespace {

// Writes `b` to dir/name (generate mode) or checks that the committed file
// holds exactly `b`.
void write(const std::string& dir, const std::string& name, const std::vector<std::byte>& b) {
  if (std::getenv("MYELIN_AMQP_WRITE_CORPUS") != nullptr) {
    std::ofstream out(dir + "/" + name, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    ASSERT_TRUE(out.good()) << name;
    return;
  }
  std::ifstream in(dir + "/" + name, std::ios::binary);
  ASSERT_TRUE(in.good()) << dir << "/" << name << " is missing";
  const std::string committed((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
  const std::string made(reinterpret_cast<const char*>(b.data()), b.size());
  EXPECT_TRUE(committed == made) << name << ": the committed seed (" << committed.size()
                                 << " bytes) differs from what the codec makes (" << made.size()
                                 << " bytes); regenerate it";
}

std::string corpus_dir() {
  if (const char* dir = std::getenv("MYELIN_AMQP_WRITE_CORPUS")) return dir;
  const char* src = std::getenv("MYELIN_SOURCE_DIR");
  return std::string(src ? src : ".") + "/fuzz/corpus/amqp_frame_fuzz";
}

template <std::size_t... I>
void append_every_method(std::vector<std::byte>& b, std::index_sequence<I...>) {
  ([&] { ASSERT_TRUE(append_method_frame(b, 1, std::variant_alternative_t<I, Method>{}).ok()); }(),
   ...);
}

TEST(FuzzCorpus, CommittedSeedsEqualWhatTheCodecMakes) {
  const std::string dir = corpus_dir();
  std::vector<std::byte> b;

  ConnectionStart start;
  start.server_properties = {
      {"capabilities", FieldValue(FieldTable{{"publisher_confirms", FieldValue(true)},
                                             {"consumer_cancel_notify", FieldValue(true)}})},
      {"product", FieldValue("RabbitMQ")},
      {"version", FieldValue("3.13.0")}};
  start.mechanisms = "AMQPLAIN PLAIN";
  ASSERT_TRUE(append_method_frame(b, 0, start).ok());
  write(dir, "connection_start", b);

  b.clear();
  ASSERT_TRUE(append_method_frame(b, 0, ConnectionTune{2047, 131072, 60}).ok());
  ASSERT_TRUE(append_method_frame(b, 0, ConnectionOpenOk{}).ok());
  ASSERT_TRUE(append_method_frame(b, 1, ChannelOpenOk{}).ok());
  append_heartbeat(b);
  write(dir, "handshake", b);

  b.clear();
  BasicProperties props;
  props.content_type = "application/json";
  props.delivery_mode = 2;
  props.headers = FieldTable{
      {"x-death",
       FieldValue(FieldArray{FieldValue(FieldTable{{"count", FieldValue(std::int64_t{2})},
                                                   {"time", FieldValue(Timestamp{1700000000})}})})},
      {"d", FieldValue(Decimal{2, 314})},
      {"f", FieldValue(1.5f)},
      {"x", FieldValue(ByteArray{"\x01\x02"})}};
  props.timestamp = 1700000000;
  ASSERT_TRUE(append_method_frame(b, 1,
                                  BasicDeliver{.consumer_tag = "amq.ctag-1",
                                               .delivery_tag = 1,
                                               .redelivered = true,
                                               .exchange = "ex",
                                               .routing_key = "rk"})
                  .ok());
  ASSERT_TRUE(append_content(b, 1, class_id::kBasic, props, std::string(300, 'b'), 256).ok());
  write(dir, "deliver_split_body", b);

  auto truncated = b;
  truncated.resize(truncated.size() / 2);
  write(dir, "deliver_truncated", truncated);

  auto bad_end = b;
  bad_end[bad_end.size() - 1] = std::byte{0};
  write(dir, "deliver_bad_frame_end", bad_end);

  b.clear();
  ASSERT_TRUE(append_method_frame(b, 2, BasicGetOk{.delivery_tag = 7, .message_count = 3}).ok());
  ASSERT_TRUE(append_content(b, 2, class_id::kBasic, {}, std::string_view(), 4096).ok());
  ASSERT_TRUE(append_method_frame(b, 2, BasicGetEmpty{}).ok());
  ASSERT_TRUE(
      append_method_frame(b, 3, BasicReturn{.reply_code = 312, .reply_text = "NO_ROUTE"}).ok());
  ASSERT_TRUE(append_content(b, 3, class_id::kBasic, {}, "returned", 4096).ok());
  write(dir, "get_ok_empty_and_return", b);

  // Body before header, then a method mid-content.
  b.clear();
  ASSERT_TRUE(append_method_frame(b, 1, BasicDeliver{.delivery_tag = 9}).ok());
  ASSERT_TRUE(append_body_frames(b, 1, std::as_bytes(std::span("abc", 3)), 4096).ok());
  ASSERT_TRUE(append_method_frame(b, 1, BasicDeliver{.delivery_tag = 10}).ok());
  ASSERT_TRUE(append_method_frame(b, 1, BasicAck{.delivery_tag = 10}).ok());
  write(dir, "out_of_order", b);

  b.clear();
  ASSERT_TRUE(
      append_method_frame(
          b, 0,
          ConnectionClose{
              .reply_code = 320, .reply_text = "CONNECTION_FORCED", .class_id = 0, .method_id = 0})
          .ok());
  ASSERT_TRUE(append_method_frame(b, 1,
                                  ChannelClose{.reply_code = 404,
                                               .reply_text = "NOT_FOUND - no queue 'q'",
                                               .class_id = 50,
                                               .method_id = 10})
                  .ok());
  ASSERT_TRUE(append_method_frame(b, 1, BasicNack{.delivery_tag = 5, .multiple = true}).ok());
  ASSERT_TRUE(append_method_frame(b, 0, ConnectionBlocked{.reason = "low on memory"}).ok());
  ASSERT_TRUE(append_method_frame(b, 1, QueueDeclareOk{"amq.gen-1", 5, 1}).ok());
  write(dir, "closes_and_acks", b);

  // A bare method payload (the fuzzer also decodes the whole input as one).
  b.clear();
  {
    ByteWriter w(b);
    encode_method(
        QueueDeclare{
            .queue = "q", .durable = true, .arguments = {{"x-queue-type", FieldValue("quorum")}}},
        w);
  }
  write(dir, "raw_queue_declare_payload", b);

  b.clear();
  append_every_method(b, std::make_index_sequence<std::variant_size_v<Method>>());
  write(dir, "every_method", b);

  b.clear();
  append_protocol_header(b);
  write(dir, "protocol_header_reply", b);

  b.clear();
  std::uint32_t x = 12345;
  for (int i = 0; i < 200; ++i) {
    x = x * 1103515245u + 12345u;
    b.push_back(std::byte(static_cast<std::uint8_t>(x >> 16)));
  }
  b[0] = std::byte{1};
  write(dir, "garbage", b);
}

}  // namespace
}  // namespace myelin::amqp::wire
