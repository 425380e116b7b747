// The AMQP client against the private RabbitMQ node: negotiation, every
// property and field type through the broker, content larger than
// frame_max, confirms (ack, nack, return), consumers, get, cancel from both
// sides, and channel errors that stay on their channel.
#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "myelin/amqp/connection.h"
#include "src/amqp/broker_test_util.h"

// GCC 12 warns about designated initializers that leave members to their
// defaults ({.exclusive = true}); that is exactly how the options are meant
// to be written.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace myelin::amqp {
namespace {

using testing::connect_or_fail;
using testing::unique_name;
using namespace std::chrono_literals;

template <typename T>
T wait(std::future<T> f, std::chrono::seconds limit = 10s) {
  EXPECT_EQ(f.wait_for(limit), std::future_status::ready) << "no answer within the limit";
  return f.get();
}

std::shared_ptr<Channel> open(Connection& c) {
  auto ch = c.open_channel();
  EXPECT_TRUE(ch) << ch.error().to_string();
  return ch ? *ch : nullptr;
}

// Collects deliveries for a test, thread-safely.
struct Inbox {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Delivery> got;
  void push(Delivery&& d) {
    std::lock_guard lock(mu);
    got.push_back(std::move(d));
    cv.notify_all();
  }
  bool wait_for_count(std::size_t n, std::chrono::seconds limit = 10s) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, limit, [&] { return got.size() >= n; });
  }
};

TEST(AmqpClient, ConnectNegotiatesTuning) {
  auto config = testing::broker_config();
  config.frame_max = 65536;
  config.heartbeat_s = 7;
  config.channel_max = 100;
  auto c = connect_or_fail(config);
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->is_open());
  EXPECT_EQ(c->frame_max(), 65536u);  // ours is smaller than RabbitMQ's 131072
  EXPECT_EQ(c->heartbeat_s(), 7u);    // ours is smaller than RabbitMQ's 60
  EXPECT_EQ(c->channel_max(), 100u);  // ours is smaller than RabbitMQ's 2047
  EXPECT_TRUE(c->close().ok());
  EXPECT_FALSE(c->is_open());
  auto after = c->open_channel(1s);
  ASSERT_FALSE(after);
}

TEST(AmqpClient, WrongPasswordIsAnAuthenticationError) {
  auto config = testing::broker_config();
  config.password = "not-the-password";
  auto c = Connection::connect(config);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), ErrorCode::kAuthenticationFailed) << c.error().to_string();
}

TEST(AmqpClient, MissingVhostIsRefused) {
  auto config = testing::broker_config();
  config.vhost = "no-such-vhost";
  auto c = Connection::connect(config);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("no-such-vhost"), std::string_view::npos)
      << c.error().to_string();
}

// GCC 12 at -O3 reports a false -Warray-bounds inside vector::emplace_back
// here (GCC bug 107852 and relatives); the code is plain emplace_back.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
BasicProperties every_property() {
  FieldTable nested;
  nested.emplace_back("inner", FieldValue{std::string("deep")});
  FieldArray array{FieldValue{std::int32_t{-7}}, FieldValue{std::string("two")}, FieldValue{true}};
  FieldTable headers;
  headers.emplace_back("void", FieldValue{});
  headers.emplace_back("bool", FieldValue{true});
  headers.emplace_back("i8", FieldValue{std::int8_t{-100}});
  headers.emplace_back("u8", FieldValue{std::uint8_t{200}});
  headers.emplace_back("i16", FieldValue{std::int16_t{-30000}});
  headers.emplace_back("u16", FieldValue{std::uint16_t{60000}});
  headers.emplace_back("i32", FieldValue{std::int32_t{-2'000'000'000}});
  headers.emplace_back("u32", FieldValue{std::uint32_t{4'000'000'000u}});
  headers.emplace_back("i64", FieldValue{std::int64_t{-9'000'000'000'000'000'000}});
  headers.emplace_back("f32", FieldValue{1.5f});
  headers.emplace_back("f64", FieldValue{-2.25});
  headers.emplace_back("decimal", FieldValue{Decimal{2, 12345}});
  headers.emplace_back("string", FieldValue{std::string("hello \xc3\xa9")});
  headers.emplace_back("bytes", FieldValue{ByteArray{std::string("\x00\x01\xff", 3)}});
  headers.emplace_back("array", FieldValue{std::move(array)});
  headers.emplace_back("timestamp", FieldValue{Timestamp{1'700'000'000}});
  headers.emplace_back("table", FieldValue{std::move(nested)});
  BasicProperties p;
  p.content_type = "application/json";
  p.content_encoding = "identity";
  p.headers = std::move(headers);
  p.delivery_mode = 2;
  p.priority = 5;
  p.correlation_id = "corr-1";
  p.reply_to = "reply-queue";
  p.expiration = "60000";
  p.message_id = "msg-1";
  p.timestamp = 1'700'000'123;
  p.type = "inference.request";
  p.user_id = "guest";  // RabbitMQ checks it against the connection's user
  p.app_id = "myelin-test";
  p.cluster_id = "cluster-a";
  return p;
}
#pragma GCC diagnostic pop

TEST(AmqpClient, EveryPropertyAndFieldTypeSurvivesTheBroker) {
  auto c = connect_or_fail();
  ASSERT_TRUE(c);
  auto ch = open(*c);
  ASSERT_TRUE(ch);
  const std::string q = unique_name("props");
  auto info = wait(ch->queue_declare(q, {.exclusive = true}));
  ASSERT_TRUE(info) << info.error().to_string();
  EXPECT_EQ(info->name, q);
  Message m{every_property(), "payload"};
  ASSERT_TRUE(wait(ch->publish("", q, m, PublishOptions{})).ok());

  // Once through basic.get, once through a consumer.
  auto got = wait(ch->get(q, /*no_ack=*/true));
  ASSERT_TRUE(got) << got.error().to_string();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->body, "payload");
  EXPECT_EQ((*got)->routing_key, q);
  EXPECT_EQ((*got)->properties, m.properties);

  Inbox inbox;
  auto tag =
      wait(ch->consume(q, [&](Delivery&& d) { inbox.push(std::move(d)); }, {.no_ack = true}));
  ASSERT_TRUE(tag) << tag.error().to_string();
  ASSERT_TRUE(wait(ch->publish("", q, m, PublishOptions{})).ok());
  ASSERT_TRUE(inbox.wait_for_count(1));
  EXPECT_EQ(inbox.got[0].properties, m.properties);
  EXPECT_EQ(inbox.got[0].consumer_tag, *tag);

  BasicProperties none;
  ASSERT_TRUE(wait(ch->publish("", q, Message{none, ""}, PublishOptions{})).ok());
  ASSERT_TRUE(inbox.wait_for_count(2));
  EXPECT_EQ(inbox.got[1].properties, none);
  EXPECT_TRUE(inbox.got[1].body.empty());
}

TEST(AmqpClient, MessagesLargerThanFrameMaxAreSplitAndReassembled) {
  auto config = testing::broker_config();
  config.frame_max = 4096;  // the protocol minimum: many body frames
  auto c = connect_or_fail(config);
  ASSERT_TRUE(c);
  auto ch = open(*c);
  ASSERT_TRUE(ch);
  const std::string q = unique_name("large");
  ASSERT_TRUE(wait(ch->queue_declare(q, {.exclusive = true})));
  std::string body(3 * 1024 * 1024 + 17, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>((i * 131) & 0xff);
  ASSERT_TRUE(wait(ch->publish("", q, Message{{}, body}, PublishOptions{})).ok());
  auto got = wait(ch->get(q, true));
  ASSERT_TRUE(got && got->has_value()) << (got ? "empty queue" : got.error().to_string());
  EXPECT_EQ((*got)->body.size(), body.size());
  EXPECT_TRUE((*got)->body == body);
  EXPECT_GT(c->stats().frames_in, body.size() / 4096);
}

TEST(AmqpClient, AHundredThousandConfirmedPublishesAreEachConsumedOnce) {
  auto c = connect_or_fail();
  ASSERT_TRUE(c);
  auto pub = open(*c);
  auto sub = open(*c);
  ASSERT_TRUE(pub && sub);
  const std::string q = unique_name("confirmed");
  ASSERT_TRUE(wait(pub->queue_declare(q, {.exclusive = true})));
  ASSERT_TRUE(wait(pub->confirm_select(2048)).ok());

  constexpr int kMessages = 100'000;
  std::atomic<int> confirmed{0};
  std::atomic<int> failed{0};
  std::promise<void> all_confirmed;
  for (int i = 0; i < kMessages; ++i) {
    const Status st = pub->publish("", q, Message{{}, std::to_string(i)}, [&](const Status& s) {
      if (!s.ok()) failed.fetch_add(1);
      if (confirmed.fetch_add(1) + 1 == kMessages) all_confirmed.set_value();
    });
    ASSERT_TRUE(st.ok()) << st.to_string();
  }
  ASSERT_EQ(all_confirmed.get_future().wait_for(120s), std::future_status::ready)
      << confirmed.load() << " of " << kMessages << " confirmed";
  EXPECT_EQ(failed.load(), 0);

  std::vector<std::uint8_t> seen(kMessages, 0);
  std::atomic<int> received{0};
  std::atomic<int> duplicates{0};
  std::promise<void> all_received;
  ASSERT_TRUE(wait(sub->qos(500)).ok());
  auto tag = wait(sub->consume(q, [&](Delivery&& d) {
    const int i = std::stoi(d.body);
    if (seen[i]++ != 0) duplicates.fetch_add(1);
    (void)sub->ack(d.delivery_tag);
    if (received.fetch_add(1) + 1 == kMessages) all_received.set_value();
  }));
  ASSERT_TRUE(tag) << tag.error().to_string();
  ASSERT_EQ(all_received.get_future().wait_for(120s), std::future_status::ready)
      << received.load() << " of " << kMessages << " received";
  EXPECT_EQ(duplicates.load(), 0);
  for (int i = 0; i < kMessages; ++i) ASSERT_EQ(seen[i], 1) << "message " << i;
  // Coalescing: far fewer writes than frames.
  const auto stats = c->stats();
  EXPECT_LT(stats.writes, stats.frames_out / 4)
      << stats.writes << " writes for " << stats.frames_out << " frames";
}

TEST(AmqpClient, PublishBatchSettlesOnceForAllItsMessages) {
  auto c = connect_or_fail();
  ASSERT_TRUE(c);
  auto ch = open(*c);
  ASSERT_TRUE(ch);
  const std::string q = unique_name("batch");
  ASSERT_TRUE(wait(ch->queue_declare(q, {.exclusive = true})));
  ASSERT_TRUE(wait(ch->confirm_select(64)).ok());  // a window smaller than the batch
  std::vector<Message> batch;
  for (int i = 0; i < 500; ++i) batch.push_back(Message{{}, std::to_string(i)});
  std::atomic<int> calls{0};
  std::promise<Status> done;
  ASSERT_TRUE(ch->publish_batch("", q, std::move(batch), [&](const Status& s) {
                  if (calls.fetch_add(1) == 0) done.set_value(s);
                }).ok());
  auto f = done.get_future();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(f.get().ok());
  QueueOptions passive;
  passive.passive = true;
  auto info = wait(ch->queue_declare(q, passive));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->message_count, 500u);
  auto first = wait(ch->get(q, true));
  ASSERT_TRUE(first && first->has_value());
  EXPECT_EQ((*first)->body, "0");  // in order
  EXPECT_EQ(calls.load(), 1);
  // An empty batch is refused without a callback.
  EXPECT_EQ(ch->publish_batch("", q, {}, [&](const Status&) { calls.fetch_add(1); }).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(calls.load(), 1);
}

TEST(AmqpClient, MandatoryUnroutableMessageIsReturnedToThePublisher) {
  auto c = connect_or_fail();
  ASSERT_TRUE(c);
  auto ch = open(*c);
  ASSERT_TRUE(ch);
  ASSERT_TRUE(wait(ch->confirm_select()).ok());
  std::promise<std::pair<std::uint16_t, std::string>> returned;
  ch->set_return_handler([&](std::uint16_t code, const std::string&, Delivery&& d) {
    returned.set_value({code, d.body});
  });
  const Status st = wait(ch->publish("", unique_name("nowhere"), Message{{}, "lost?"},
                                     PublishOptions{.mandatory = true}));
  EXPECT_EQ(st.code(), ErrorCode::kNotFound) << st.to_string();
  EXPECT_NE(st.message().find("NO_ROUTE"), std::string_view::npos) << st.to_string();
  auto f = returned.get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  auto [code, body] = f.get();
  EXPECT_EQ(code, 312);
  EXPECT_EQ(body, "lost?");
  // Routable and mandatory: confirmed normally.
  const std::string q = unique_name("routable");
  ASSERT_TRUE(wait(ch->queue_declare(q, {.exclusive = true})));
  EXPECT_TRUE(wait(ch->publish("", q, Message{{}, "x"}, PublishOptions{.mandatory = true})).ok());
}

TEST(AmqpClient, BrokerNackReachesThePublisher) {
  auto c = connect_or_fail();
  ASSERT_TRUE(c);
  auto ch = open(*c);
  ASSERT_TRUE(ch);
  const std::string q = unique_name("bounded");
  QueueOptions opts;
  opts.exclusive = true;
  opts.arguments.emplace_back("x-max-length", FieldValue{std::int32_t{1}});
  opts.arguments.emplace_back("x-overflow", FieldValue{std::string("reject-publish")});
  ASSERT_TRUE(wait(ch->queue_declare(q, opts)));
  ASSERT_TRUE(wait(ch->confirm_select()).ok());
  EXPECT_TRUE(wait(ch->publish("", q, Message{{}, "first"}, PublishOptions{})).ok());
  const Status second = wait(ch->publish("", q, Message{{}, "second"}, PublishOptions{}));
  EXPECT_EQ(second.code(), ErrorCode::kAborted) << second.to_string();
  EXPECT_TRUE(ch->is_open());
}

TEST(AmqpClient, ChannelErrorFailsOnlyItsCaller) {
  auto c = connect_or_fail();
  ASSERT_TRUE(c);
  auto bad = open(*c);
  auto good = open(*c);
  ASSERT_TRUE(bad && good);
  const std::string missing = unique_name("missing");
  auto r = wait(bad->queue_declare(missing, {.passive = true}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.error().message().find(missing), std::string_view::npos) << r.error().to_string();
  EXPECT_FALSE(bad->is_open());
  EXPECT_EQ(bad->close_reason().code(), ErrorCode::kNotFound);
  // Later calls on the dead channel fail at once, with the channel's reason.
  const Status late = wait(bad->qos(1));
  EXPECT_EQ(late.code(), ErrorCode::kNotFound) << late.to_string();
  EXPECT_EQ(bad->publish("", "x", Message{}).code(), ErrorCode::kNotFound);
  // The connection and the other channel are fine.
  EXPECT_TRUE(c->is_open());
  const std::string q = unique_name("alive");
  ASSERT_TRUE(wait(good->queue_declare(q, {.exclusive = true})));
  EXPECT_TRUE(wait(good->publish("", q, Message{{}, "ok"}, PublishOptions{})).ok());
  auto again = c->open_channel();
  EXPECT_TRUE(again) << again.error().to_string();
}

// Regression: our channel.close crossing the broker's (a publish to a
// missing exchange, then close() at once) freed the channel while it was
// still being torn down, and the broker's late close-ok killed the
// connection.
TEST(AmqpClient, ClosingAChannelTheBrokerIsClosingKeepsTheConnection) {
  auto c = connect_or_fail();
  ASSERT_TRUE(c);
  for (int i = 0; i < 20; ++i) {
    auto ch = open(*c);
    ASSERT_TRUE(ch);
    ASSERT_TRUE(ch->publish(unique_name("no-such-exchange"), "k", Message{{}, "x"}).ok());
    EXPECT_TRUE(wait(ch->close()).ok());
    EXPECT_FALSE(ch->is_open());
  }
  EXPECT_TRUE(c->is_open()) << c->close_reason().to_string();
  auto ch = open(*c);
  ASSERT_TRUE(ch);
  EXPECT_TRUE(wait(ch->qos(1)).ok());
}

TEST(AmqpClient, QueuedCallsBehindAFailingCallFailToo) {
  auto c = connect_or_fail();
  ASSERT_TRUE(c);
  auto ch = open(*c);
  ASSERT_TRUE(ch);
  // Issued back to back: the second waits behind the first, which kills the channel.
  auto first = ch->queue_declare(unique_name("missing"), {.passive = true});
  auto second = ch->queue_declare(unique_name("fine"), {.exclusive = true});
  EXPECT_EQ(wait(std::move(first)).error().code(), ErrorCode::kNotFound);
  auto s = wait(std::move(second));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), ErrorCode::kNotFound);  // the channel's reason
}

TEST(AmqpClient, GetOnAnEmptyQueueIsNullopt) {
  auto c = connect_or_fail();
  ASSERT_TRUE(c);
  auto ch = open(*c);
  ASSERT_TRUE(ch);
  const std::string q = unique_name("empty");
  ASSERT_TRUE(wait(ch->queue_declare(q, {.exclusive = true})));
  auto got = wait(ch->get(q));
  ASSERT_TRUE(got) << got.error().to_string();
  EXPECT_FALSE(got->has_value());
  ASSERT_TRUE(wait(ch->publish("", q, Message{{}, "a"}, PublishOptions{})).ok());
  ASSERT_TRUE(wait(ch->publish("", q, Message{{}, "b"}, PublishOptions{})).ok());
  got = wait(ch->get(q));
  ASSERT_TRUE(got && got->has_value());
  EXPECT_EQ((*got)->body, "a");
  EXPECT_EQ((*got)->message_count, 1u);
  EXPECT_TRUE(ch->ack((*got)->delivery_tag).ok());
  auto purged = wait(ch->queue_purge(q));
  ASSERT_TRUE(purged);
  EXPECT_EQ(*purged, 1u);
}

TEST(AmqpClient, ConsumerCancelFromEitherSide) {
  auto c = connect_or_fail();
  ASSERT_TRUE(c);
  auto ch = open(*c);
  auto admin = open(*c);
  ASSERT_TRUE(ch && admin);
  const std::string q1 = unique_name("cancel-ours");
  const std::string q2 = unique_name("cancel-theirs");
  ASSERT_TRUE(wait(ch->queue_declare(q1, {.auto_delete = true})));
  ASSERT_TRUE(wait(ch->queue_declare(q2, {.auto_delete = false})));

  std::promise<Status> ours;
  auto t1 = wait(ch->consume(
      q1, [](Delivery&&) {}, {}, [&](const Status& s) { ours.set_value(s); }));
  ASSERT_TRUE(t1);
  EXPECT_TRUE(wait(ch->cancel(*t1)).ok());
  auto f1 = ours.get_future();
  ASSERT_EQ(f1.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(f1.get().ok());

  std::promise<Status> theirs;
  auto t2 = wait(ch->consume(
      q2, [](Delivery&&) {}, {}, [&](const Status& s) { theirs.set_value(s); }));
  ASSERT_TRUE(t2);
  ASSERT_TRUE(wait(admin->queue_delete(q2)));  // the broker cancels the consumer
  auto f2 = theirs.get_future();
  ASSERT_EQ(f2.wait_for(5s), std::future_status::ready);
  const Status s = f2.get();
  EXPECT_EQ(s.code(), ErrorCode::kUnavailable);
  EXPECT_NE(s.message().find(*t2), std::string_view::npos) << s.to_string();
  EXPECT_TRUE(ch->is_open());
}

TEST(AmqpClient, DeliveriesKeepPerChannelOrderAcrossDeliveryThreads) {
  auto config = testing::broker_config();
  config.delivery_threads = 4;
  auto c = connect_or_fail(config);
  ASSERT_TRUE(c);
  constexpr int kChannels = 4;
  constexpr int kPerQueue = 2000;
  std::vector<std::shared_ptr<Channel>> chans;
  std::vector<std::string> queues;
  std::vector<std::vector<int>> order(kChannels);
  std::atomic<int> total{0};
  std::promise<void> done;
  for (int i = 0; i < kChannels; ++i) {
    chans.push_back(open(*c));
    ASSERT_TRUE(chans.back());
    queues.push_back(unique_name("order"));
    ASSERT_TRUE(wait(chans[i]->queue_declare(queues[i], {.exclusive = true})));
    ASSERT_TRUE(wait(chans[i]->consume(queues[i],
                                       [&, i](Delivery&& d) {
                                         order[i].push_back(std::stoi(d.body));
                                         if (total.fetch_add(1) + 1 == kChannels * kPerQueue) {
                                           done.set_value();
                                         }
                                       },
                                       {.no_ack = true})));
  }
  auto pub = open(*c);
  ASSERT_TRUE(pub);
  for (int n = 0; n < kPerQueue; ++n) {
    for (int i = 0; i < kChannels; ++i) {
      ASSERT_TRUE(pub->publish("", queues[i], Message{{}, std::to_string(n)}).ok());
    }
  }
  ASSERT_EQ(done.get_future().wait_for(60s), std::future_status::ready) << total.load();
  for (int i = 0; i < kChannels; ++i) {
    ASSERT_EQ(order[i].size(), static_cast<std::size_t>(kPerQueue));
    for (int n = 0; n < kPerQueue; ++n) ASSERT_EQ(order[i][n], n) << "channel " << i;
  }
}

TEST(AmqpClient, ExchangesBindingsAndRouting) {
  auto c = connect_or_fail();
  ASSERT_TRUE(c);
  auto ch = open(*c);
  ASSERT_TRUE(ch);
  const std::string ex = unique_name("topic");
  const std::string q = unique_name("bound");
  ASSERT_TRUE(wait(ch->exchange_declare(ex, "topic")).ok());
  ASSERT_TRUE(wait(ch->queue_declare(q, {.exclusive = true})));
  ASSERT_TRUE(wait(ch->queue_bind(q, ex, "model.*.predict")).ok());
  ASSERT_TRUE(
      wait(ch->publish(ex, "model.mlp.predict", Message{{}, "yes"}, PublishOptions{})).ok());
  ASSERT_TRUE(wait(ch->publish(ex, "model.mlp.train", Message{{}, "no"}, PublishOptions{})).ok());
  auto got = wait(ch->get(q, true));
  ASSERT_TRUE(got && got->has_value());
  EXPECT_EQ((*got)->body, "yes");
  EXPECT_EQ((*got)->exchange, ex);
  got = wait(ch->get(q, true));
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->has_value());
  ASSERT_TRUE(wait(ch->queue_unbind(q, ex, "model.*.predict")).ok());
  ASSERT_TRUE(
      wait(ch->publish(ex, "model.mlp.predict", Message{{}, "gone"}, PublishOptions{})).ok());
  got = wait(ch->get(q, true));
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->has_value());  // unbound: nothing routed
  ASSERT_TRUE(wait(ch->exchange_delete(ex)).ok());
  // Redeclaring with another type is a channel error that names the problem.
  const std::string ex2 = unique_name("direct");
  ExchangeOptions transient;
  transient.auto_delete = true;
  ASSERT_TRUE(wait(ch->exchange_declare(ex2, "direct", transient)).ok());
  const Status bad = wait(ch->exchange_declare(ex2, "fanout", transient));
  EXPECT_EQ(bad.code(), ErrorCode::kFailedPrecondition) << bad.to_string();
  EXPECT_NE(bad.message().find("PRECONDITION_FAILED"), std::string_view::npos) << bad.to_string();
}

TEST(AmqpClient, ClosingTheConnectionFailsPendingWorkAndLaterCalls) {
  auto c = connect_or_fail();
  ASSERT_TRUE(c);
  auto ch = open(*c);
  ASSERT_TRUE(ch);
  std::promise<Status> closed_cb;
  c->on_closed([&](const Status& s) { closed_cb.set_value(s); });
  ASSERT_TRUE(c->close().ok());
  auto f = closed_cb.get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(f.get().ok());
  EXPECT_FALSE(ch->is_open());
  const Status late = ch->publish("", "q", Message{});
  EXPECT_FALSE(late.ok());
  auto r = wait(ch->queue_declare("q"));
  EXPECT_FALSE(r);
}

}  // namespace
}  // namespace myelin::amqp
