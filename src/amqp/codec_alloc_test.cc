// Publishing allocates nothing once the send buffer has capacity: method
// frame, content header and body frames are encoded in place and their size
// fields patched afterwards. Proved by counting every operator new.
#include <gtest/gtest.h>

#include <cstdint>

#include "src/amqp/frame.h"
#include "src/base/testing/counting_new.h"

// GCC 12 warns when designated initializers omit members, even ones with
// default member initializers (GCC 13 does not); the omission is the point.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace myelin::amqp::wire {
namespace {

TEST(CodecAlloc, PublishIntoABufferWithCapacityAllocatesNothing) {
  if (!myelin::testing::kCountingNew) GTEST_SKIP() << "operator new belongs to the sanitizer";
  const BasicPublish publish{.exchange = "orders.exchange.with.a.long.name",
                             .routing_key = "orders.created.eu-west-1.priority",
                             .mandatory = true};
  const Method as_method(publish);
  BasicProperties props;
  props.content_type = "application/json; charset=utf-8";
  props.delivery_mode = 2;
  props.message_id = "0f8fad5b-d9cb-469f-a165-70867728950e";
  props.headers = FieldTable{{"x-trace-id", FieldValue("4bf92f3577b34da6a3ce929d0e0e4736")},
                             {"x-attempt", FieldValue(std::int32_t{1})}};
  const std::string body(300000, 'p');
  std::vector<std::byte> out;
  out.reserve(1 << 20);

  const std::uint64_t before = myelin::testing::allocation_count();
  for (int i = 0; i < 100; ++i) {
    out.clear();
    ASSERT_TRUE(append_method_frame(out, 1, publish, 131072).ok());
    ASSERT_TRUE(append_content(out, 1, class_id::kBasic, props, body, 131072).ok());
    ASSERT_TRUE(append_method_frame(out, 1, as_method, 131072).ok());
    append_heartbeat(out);
  }
  EXPECT_EQ(myelin::testing::allocation_count() - before, 0u);
}

}  // namespace
}  // namespace myelin::amqp::wire
