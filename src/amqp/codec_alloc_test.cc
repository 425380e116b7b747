// Publishing allocates nothing once the send buffer has capacity: method
// frame, content header and body frames are encoded in place and their size
// fields patched afterwards. Proved by counting every operator new.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "src/amqp/frame.h"

// The sanitizers own operator new, so the counting replacement exists only in
// plain builds; under them the test skips itself (CI runs it in release).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MYELIN_COUNTING_NEW 0
#else
#define MYELIN_COUNTING_NEW 1
#endif

namespace {
std::atomic<long> g_allocs{0};
}  // namespace

#if MYELIN_COUNTING_NEW
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#endif

// GCC 12 warns when designated initializers omit members, even ones with
// default member initializers (GCC 13 does not); the omission is the point.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace myelin::amqp::wire {
namespace {

TEST(CodecAlloc, PublishIntoABufferWithCapacityAllocatesNothing) {
  if (!MYELIN_COUNTING_NEW) GTEST_SKIP() << "operator new belongs to the sanitizer";
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

  const long before = g_allocs.load();
  for (int i = 0; i < 100; ++i) {
    out.clear();
    ASSERT_TRUE(append_method_frame(out, 1, publish, 131072).ok());
    ASSERT_TRUE(append_content(out, 1, class_id::kBasic, props, body, 131072).ok());
    ASSERT_TRUE(append_method_frame(out, 1, as_method, 131072).ok());
    append_heartbeat(out);
  }
  EXPECT_EQ(g_allocs.load() - before, 0);
}

}  // namespace
}  // namespace myelin::amqp::wire
