// What a closed channel still does (issue 22, findings 3 and 5): acks fail
// instead of vanishing, no consumer handler starts after the close has been
// reported, a second close joins the first, and a broker-closed channel
// keeps the broker's reason. Against the private RabbitMQ node.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "myelin/amqp/connection.h"
#include "src/amqp/broker_test_util.h"

namespace myelin::amqp {
namespace {

using testing::connect_or_fail;
using testing::unique_name;
using namespace std::chrono_literals;

template <typename T>
T wait(std::future<T> f) {
  EXPECT_EQ(f.wait_for(10s), std::future_status::ready) << "no answer within 10 s";
  return f.get();
}

std::shared_ptr<Channel> open(Connection& c) {
  auto ch = c.open_channel();
  EXPECT_TRUE(ch) << ch.error().to_string();
  return ch ? *ch : nullptr;
}

// A passive declare of a queue that does not exist: the broker closes the
// channel with 404.
void break_channel(Channel& ch) {
  QueueOptions passive;
  passive.passive = true;
  auto r = wait(ch.queue_declare(unique_name("missing"), passive));
  ASSERT_FALSE(r);
  ASSERT_EQ(r.error().code(), ErrorCode::kNotFound) << r.error().to_string();
}

void expect_acks_fail(Channel& ch, ErrorCode code, std::string_view text) {
  for (const Status& st : {ch.ack(1), ch.nack(1), ch.reject(1)}) {
    EXPECT_FALSE(st.ok()) << "an ack on a closed channel was accepted and would be dropped";
    EXPECT_EQ(st.code(), code) << st.to_string();
    EXPECT_NE(st.message().find(text), std::string_view::npos) << st.to_string();
  }
}

TEST(AmqpClosedChannel, AckOnChannelClosedByUsFails) {
  auto c = connect_or_fail();
  ASSERT_TRUE(c);
  auto ch = open(*c);
  ASSERT_TRUE(ch);
  ASSERT_TRUE(wait(ch->close()).ok());
  expect_acks_fail(*ch, ErrorCode::kClosed, "closed");
}

TEST(AmqpClosedChannel, AckOnChannelClosedByBrokerFailsWithTheBrokerReason) {
  auto c = connect_or_fail();
  ASSERT_TRUE(c);
  auto ch = open(*c);
  ASSERT_TRUE(ch);
  break_channel(*ch);
  expect_acks_fail(*ch, ErrorCode::kNotFound, "404");
}

TEST(AmqpClosedChannel, AckWithTheConnectionClosedFails) {
  auto c = connect_or_fail();
  ASSERT_TRUE(c);
  auto ch = open(*c);
  ASSERT_TRUE(ch);
  ASSERT_TRUE(c->close().ok());
  expect_acks_fail(*ch, ErrorCode::kClosed, "closed");
}

// Slow handlers with many deliveries queued on the strand, then the channel
// closes (how is the parameter): no handler may start once the close has
// been reported.
void no_handler_starts_after_close(const std::function<void(Connection&, Channel&)>& kill,
                                   bool by_on_closed) {
  auto c = connect_or_fail();
  ASSERT_TRUE(c);
  auto setup = open(*c);
  auto ch = open(*c);
  ASSERT_TRUE(setup && ch);
  const std::string q = unique_name("closing");
  QueueOptions auto_delete;
  auto_delete.auto_delete = true;
  ASSERT_TRUE(wait(setup->queue_declare(q, auto_delete)));
  ASSERT_TRUE(wait(setup->confirm_select()).ok());
  std::vector<Message> messages(200, Message{{}, "m"});
  std::promise<Status> published;
  ASSERT_TRUE(setup
                  ->publish_batch("", q, std::move(messages),
                                  [&](const Status& s) { published.set_value(s); })
                  .ok());
  ASSERT_TRUE(wait(published.get_future()).ok());

  std::atomic<bool> reported{false};
  std::atomic<int> started{0};
  std::atomic<int> started_after{0};
  std::promise<void> first;
  std::atomic<bool> first_set{false};
  if (by_on_closed) c->on_closed([&](const Status&) { reported.store(true); });
  auto tag = wait(ch->consume(q, [&](Delivery&&) {
    if (reported.load()) started_after.fetch_add(1);
    started.fetch_add(1);
    if (!first_set.exchange(true)) first.set_value();
    std::this_thread::sleep_for(10ms);
  }));
  ASSERT_TRUE(tag) << tag.error().to_string();
  ASSERT_EQ(first.get_future().wait_for(10s), std::future_status::ready);
  kill(*c, *ch);
  if (!by_on_closed) reported.store(true);  // the kill's own answer reported the close
  std::this_thread::sleep_for(300ms);       // the finding saw handlers up to ~260 ms later
  EXPECT_EQ(started_after.load(), 0) << "of " << started.load() << " handlers started";
  EXPECT_LT(started.load(), 200) << "every delivery ran: the close came too late to test";
}

TEST(AmqpClosedChannel, NoHandlerStartsAfterOurClose) {
  no_handler_starts_after_close(
      [](Connection&, Channel& ch) { EXPECT_TRUE(wait(ch.close()).ok()); }, false);
}

TEST(AmqpClosedChannel, NoHandlerStartsAfterABrokerChannelError) {
  no_handler_starts_after_close([](Connection&, Channel& ch) { break_channel(ch); }, false);
}

TEST(AmqpClosedChannel, NoHandlerStartsAfterOnClosed) {
  no_handler_starts_after_close([](Connection& c, Channel&) { EXPECT_TRUE(c.close().ok()); }, true);
}

TEST(AmqpClosedChannel, SecondCloseJoinsTheFirst) {
  auto c = connect_or_fail();
  ASSERT_TRUE(c);
  for (int i = 0; i < 5; ++i) {
    auto ch = open(*c);
    ASSERT_TRUE(ch);
    auto first = ch->close();
    auto second = ch->close();  // reaches the loop while the first awaits close-ok
    const Status s2 = wait(std::move(second));
    EXPECT_TRUE(s2.ok()) << s2.to_string();
    EXPECT_FALSE(ch->is_open()) << "the second close completed before the channel closed";
    EXPECT_TRUE(wait(std::move(first)).ok());
  }
  EXPECT_TRUE(c->is_open());
  EXPECT_EQ(c->stats().channels_open, 0u);
}

TEST(AmqpClosedChannel, ConfirmSelectOnBrokerClosedChannelKeepsThe404) {
  auto c = connect_or_fail();
  ASSERT_TRUE(c);
  auto ch = open(*c);
  ASSERT_TRUE(ch);
  break_channel(*ch);
  const Status st = wait(ch->confirm_select());
  EXPECT_EQ(st.code(), ErrorCode::kNotFound) << st.to_string();
  EXPECT_NE(st.message().find("404"), std::string_view::npos) << st.to_string();
  // And a publish callback on it (the publish is refused at once, with it).
  const Status pub = ch->publish("", "q", Message{{}, "x"}, [](const Status&) {});
  EXPECT_EQ(pub.code(), ErrorCode::kNotFound) << pub.to_string();
}

}  // namespace
}  // namespace myelin::amqp
