// Who may drop the last reference, and where: an application may let go of
// its Connection and Channel inside any callback the client runs, and the
// client must not touch the freed connection afterwards (issue 22, findings
// 1 and 2). Against the private RabbitMQ node; under asan a use-after-free
// here is reported, in release it usually crashed.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "myelin/amqp/connection.h"
#include "src/amqp/broker_test_util.h"
#include "src/amqp/proxy_test_util.h"

namespace myelin::amqp {
namespace {

using testing::broker_config;
using testing::connect_or_fail;
using testing::unique_name;
using namespace std::chrono_literals;

// The application's only references, moved into a callback that drops them.
struct Handles {
  std::shared_ptr<Connection> connection;
  std::shared_ptr<Channel> channel;
};

// Waits (bounded) until the connection object is gone, then a little more,
// so that anything the loop still had queued for it has run.
void expect_freed(const std::weak_ptr<Connection>& weak) {
  const MonoTime deadline = mono_now() + 5s;
  while (!weak.expired() && mono_now() < deadline) std::this_thread::sleep_for(5ms);
  EXPECT_TRUE(weak.expired()) << "the callback did not drop the last reference";
  std::this_thread::sleep_for(100ms);
}

void drop_last_refs_in_publish_callback(bool confirms) {
  auto conn = connect_or_fail();
  ASSERT_TRUE(conn);
  auto ch = conn->open_channel();
  ASSERT_TRUE(ch) << ch.error().to_string();
  if (confirms) {
    ASSERT_TRUE((*ch)->confirm_select().get().ok());
  }
  const std::weak_ptr<Connection> weak = conn;
  Channel* channel = ch->get();
  auto handles = std::make_shared<Handles>(Handles{std::move(conn), std::move(*ch)});
  std::promise<Status> settled;
  auto settled_f = settled.get_future();
  // A routing key no queue has: the broker confirms it all the same.
  const Status st = channel->publish("", unique_name("nowhere"), Message{{}, "payload"},
                                     [handles, &settled](const Status& s) {
                                       // On the loop thread, in the middle of its read (confirm) or
                                       // write (no confirm) path: the last references go here.
                                       handles->channel.reset();
                                       handles->connection.reset();
                                       settled.set_value(s);
                                     });
  ASSERT_TRUE(st.ok()) << st.to_string();
  handles.reset();
  ASSERT_EQ(settled_f.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(settled_f.get().ok());
  expect_freed(weak);
}

TEST(AmqpLifetime, DroppingLastRefsInConfirmCallbackDoesNotTouchTheFreedConnection) {
  for (int i = 0; i < 5; ++i) drop_last_refs_in_publish_callback(true);
}

TEST(AmqpLifetime, DroppingLastRefsInWrittenCallbackDoesNotTouchTheFreedConnection) {
  for (int i = 0; i < 5; ++i) drop_last_refs_in_publish_callback(false);
}

// Set when the thread that set it ends (thread_local destructors run on the
// thread itself, before anyone joining it returns).
struct ExitFlag {
  std::shared_ptr<std::atomic<bool>> ended;
  ~ExitFlag() {
    if (ended) ended->store(true);
  }
};
thread_local ExitFlag t_exit_flag;

// The other side of the weak references: the read callback holds the core
// while it handles close-ok, and close() must not return the last reference
// to the caller while it does, or ~Connection would leave the teardown (the
// loop and delivery threads) to a detached helper instead of joining it.
TEST(AmqpLifetime, DroppingAClosedConnectionJoinsItsThreads) {
  for (int i = 0; i < 50; ++i) {  // a race: without the fix it was lost within a few rounds
    auto conn = connect_or_fail();
    ASSERT_TRUE(conn);
    auto ch = conn->open_channel();
    ASSERT_TRUE(ch) << ch.error().to_string();
    ASSERT_TRUE((*ch)->confirm_select().get().ok());
    auto loop_ended = std::make_shared<std::atomic<bool>>(false);
    std::promise<Status> confirmed;
    ASSERT_TRUE((*ch)
                    ->publish("", unique_name("nowhere"), Message{{}, "x"},
                              [&confirmed, loop_ended](const Status& s) {
                                t_exit_flag.ended = loop_ended;  // on the loop thread
                                confirmed.set_value(s);
                              })
                    .ok());
    ASSERT_TRUE(confirmed.get_future().get().ok());
    ch->reset();
    ASSERT_TRUE(conn->close().ok());
    conn.reset();
    ASSERT_TRUE(loop_ended->load())
        << "round " << i << ": the loop thread outlived ~Connection (not joined)";
  }
}

// The Connection dropped inside a callback (its close starts, unanswered: the
// path is black-holed) and the last Channel dropped afterwards on this
// thread: the core is destroyed off its loop with its socket still open.
TEST(AmqpLifetime, DroppingTheLastChannelOffTheLoopWhileTheSocketIsOpen) {
  auto config = broker_config();
  testing::SilenceableProxy proxy(config.host, config.port);
  config.port = proxy.port();
  config.heartbeat_s = 0;
  auto conn = connect_or_fail(config);
  ASSERT_TRUE(conn);
  auto ch = conn->open_channel();
  ASSERT_TRUE(ch) << ch.error().to_string();
  std::shared_ptr<Channel> channel = std::move(*ch);
  const std::weak_ptr<Connection> weak = conn;
  auto handles = std::make_shared<Handles>(Handles{std::move(conn), nullptr});
  proxy.blackhole();
  std::promise<void> dropped;
  const Status st = channel->publish("", unique_name("nowhere"), Message{{}, "x"},
                                     [handles, &dropped](const Status&) {
                                       handles->connection.reset();  // close starts, unanswered
                                       dropped.set_value();
                                     });
  ASSERT_TRUE(st.ok()) << st.to_string();
  handles.reset();
  ASSERT_EQ(dropped.get_future().wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(weak.expired());
  channel.reset();  // the last reference, off the loop
}

// Asks the node to close the connection named `name` (320 CONNECTION_FORCED);
// its client properties carry the name.
int force_close(const std::string& name) {
  const char* src = std::getenv("MYELIN_SOURCE_DIR");
  const std::string ctl = std::string(src ? src : ".") + "/scripts/rabbitmq ctl";
  const std::string cmd = "pid=$(" + ctl + " list_connections --no-table-headers pid " +
                          "client_properties | grep -F '" + name +
                          "' | cut -f1); [ -n \"$pid\" ] && " + ctl +
                          " close_connection \"$pid\" 'forced by lifetime_test'";
  return std::system(cmd.c_str());  // /bin/sh
}

TEST(AmqpLifetime, DroppingLastConnectionInOnClosedAfterBrokerCloseIsSafe) {
  auto config = broker_config();
  config.name = unique_name("lifetime");
  auto conn = connect_or_fail(config);
  ASSERT_TRUE(conn);
  const std::weak_ptr<Connection> weak = conn;
  Connection* raw = conn.get();
  auto handles = std::make_shared<Handles>(Handles{std::move(conn), nullptr});
  std::promise<Status> closed;
  auto closed_f = closed.get_future();
  raw->on_closed([handles, &closed](const Status& why) {
    // On the loop thread, inside its read of the broker's connection.close.
    handles->connection.reset();
    closed.set_value(why);
  });
  handles.reset();
  ASSERT_EQ(force_close(config.name), 0) << "rabbitmqctl close_connection failed";
  ASSERT_EQ(closed_f.wait_for(20s), std::future_status::ready) << "no on_closed";
  const Status why = closed_f.get();
  EXPECT_EQ(why.code(), ErrorCode::kUnavailable) << why.to_string();
  EXPECT_NE(why.message().find("320"), std::string_view::npos) << why.to_string();
  EXPECT_NE(why.message().find("forced by lifetime_test"), std::string_view::npos)
      << why.to_string();
  expect_freed(weak);
}

}  // namespace
}  // namespace myelin::amqp
