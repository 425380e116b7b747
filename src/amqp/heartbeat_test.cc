// Heartbeats against the private RabbitMQ node: an idle connection stays
// open, a path that goes silent (a proxy that stops forwarding) is detected
// within two heartbeat intervals, and close() and ~Connection on such a
// frozen path wait their configured timeouts.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "src/amqp/broker_test_util.h"
#include "src/amqp/proxy_test_util.h"

namespace myelin::amqp {
namespace {

using testing::connect_or_fail;
using testing::SilenceableProxy;
using namespace std::chrono_literals;

TEST(AmqpHeartbeat, HeartbeatsKeepAnIdleConnectionOpen) {
  auto config = testing::broker_config();
  config.heartbeat_s = 1;
  auto c = connect_or_fail(config);
  ASSERT_TRUE(c);
  ASSERT_EQ(c->heartbeat_s(), 1u);
  std::this_thread::sleep_for(3500ms);  // several intervals with no traffic from the app
  EXPECT_TRUE(c->is_open()) << c->close_reason().to_string();
  const auto s = c->stats();
  EXPECT_GE(s.heartbeats_in, 2u);
  EXPECT_GE(s.heartbeats_out, 2u);
  auto ch = c->open_channel();
  ASSERT_TRUE(ch) << ch.error().to_string();
  EXPECT_TRUE((*ch)->qos(1).get().ok());
}

TEST(AmqpHeartbeat, ASilentPeerIsDetectedWithinTwoIntervals) {
  auto config = testing::broker_config();
  SilenceableProxy proxy(config.host, config.port);
  config.port = proxy.port();
  config.heartbeat_s = 1;
  auto c = connect_or_fail(config);
  ASSERT_TRUE(c);
  std::promise<Status> closed;
  c->on_closed([&](const Status& s) { closed.set_value(s); });
  proxy.blackhole();
  const MonoTime t0 = mono_now();
  auto f = closed.get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready) << "the dead path was never detected";
  const Nanos took = mono_now() - t0;
  const Status why = f.get();
  EXPECT_EQ(why.code(), ErrorCode::kUnavailable);
  EXPECT_NE(why.message().find("heartbeat"), std::string_view::npos) << why.to_string();
  EXPECT_LT(took, 2s) << "two heartbeat intervals";
  EXPECT_FALSE(c->is_open());
  auto ch = c->open_channel(1s);
  EXPECT_FALSE(ch);
}

// Issue 22, finding 6: close() on a frozen connection waited a fixed 5 s and
// ~Connection 2 s. Both now take their bound from the config.
TEST(AmqpHeartbeat, CloseOnAFrozenConnectionWaitsTheConfiguredCloseTimeout) {
  auto config = testing::broker_config();
  SilenceableProxy proxy(config.host, config.port);
  config.port = proxy.port();
  config.heartbeat_s = 0;  // only the close timeout may end it
  config.close_timeout = 300ms;
  auto c = connect_or_fail(config);
  ASSERT_TRUE(c);
  proxy.blackhole();
  const MonoTime t0 = mono_now();
  const Status st = c->close();
  const Nanos took = mono_now() - t0;
  EXPECT_EQ(st.code(), ErrorCode::kDeadlineExceeded) << st.to_string();
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 2s) << "close() ignored close_timeout";
  EXPECT_FALSE(c->is_open());
}

TEST(AmqpHeartbeat, DestroyingAFrozenConnectionWaitsTheConfiguredTimeout) {
  auto config = testing::broker_config();
  SilenceableProxy proxy(config.host, config.port);
  config.port = proxy.port();
  config.heartbeat_s = 0;
  config.close_timeout_on_destroy = 200ms;
  auto c = connect_or_fail(config);
  ASSERT_TRUE(c);
  proxy.blackhole();
  const MonoTime t0 = mono_now();
  c.reset();
  const Nanos took = mono_now() - t0;
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 1500ms) << "~Connection ignored close_timeout_on_destroy";
}

}  // namespace
}  // namespace myelin::amqp
