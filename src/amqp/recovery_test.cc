// Automatic recovery (issue 22) on a ScriptedBroker over memory pipes, with
// the loop on a FakeClock: the backoff schedule, giving up, what triggers a
// recovery and what does not, the restoration order on the wire, stale
// delivery tags, calls made while recovering, listener order, and a
// listener that drops the last Connection reference. No RabbitMQ, no
// sleeps that decide anything: time moves only when the test says so, and
// every wait for the client's threads is bounded.
#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "myelin/amqp/channel_pool.h"
#include "myelin/amqp/connection.h"
#include "myelin/base/clock.h"
#include "myelin/loop/event_loop.h"
#include "myelin/net/stream.h"
#include "src/amqp/connection_core.h"
#include "src/amqp/scripted_broker.h"

namespace myelin::amqp {
namespace {

using namespace std::chrono_literals;
using testing::ScriptedBroker;
using Kind = RecoveryEvent::Kind;

template <typename Pred>
bool eventually(Pred pred, Nanos within = 5s) {
  const MonoTime deadline = mono_now() + within;
  while (!pred()) {
    if (mono_now() >= deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

// What the listeners heard, in order.
struct Events {
  std::mutex mu;
  std::vector<RecoveryEvent> seen;
  void add(const RecoveryEvent& e) {
    std::lock_guard lock(mu);
    seen.push_back(e);
  }
  std::size_t size() {
    std::lock_guard lock(mu);
    return seen.size();
  }
  RecoveryEvent at(std::size_t i) {
    std::lock_guard lock(mu);
    return seen.at(i);
  }
  std::vector<Kind> kinds() {
    std::lock_guard lock(mu);
    std::vector<Kind> k;
    for (const auto& e : seen) k.push_back(e.kind);
    return k;
  }
};

class AmqpRecovery : public ::testing::Test {
 protected:
  void SetUp() override {
    EventLoopOptions o;
    o.clock = &clock_;
    o.spin_before_sleep = 0us;
    auto loop = EventLoop::create(o);
    ASSERT_TRUE(loop) << loop.error().to_string();
    loop_ = std::move(*loop);
    ASSERT_TRUE(loop_->start().ok());
  }
  void TearDown() override { (void)loop_->shutdown(); }

  static ConnectionConfig config() {
    ConnectionConfig c;
    c.heartbeat_s = 0;
    c.connect_timeout = 5s;
    c.name = "recovery-test";
    c.close_timeout_on_destroy = 1s;
    c.recovery.enabled = true;
    c.recovery.initial_delay = 100ms;
    c.recovery.max_delay = 1s;
    c.recovery.multiplier = 2.0;
    c.recovery.jitter = 0.0;
    return c;
  }

  // A new pipe: the client end waits for the next recovery dial, the other
  // end is returned as the broker of that attempt.
  std::unique_ptr<ScriptedBroker> offer_pipe() {
    auto p = net::duplex_pair(64 * 1024, 0us);
    EXPECT_TRUE(p);
    std::lock_guard lock(mu_);
    streams_.push_back(std::move(p->first));
    return std::make_unique<ScriptedBroker>(std::move(p->second));
  }

  ConnectionDriver driver(std::unique_ptr<net::Stream> first) {
    ConnectionDriver d;
    d.loop = loop_.get();
    d.stream = std::move(first);
    d.reconnect = [this]() -> Result<std::unique_ptr<net::Stream>> {
      std::lock_guard lock(mu_);
      ++dials_;
      if (streams_.empty()) return unavailable("test: connection refused");
      auto s = std::move(streams_.front());
      streams_.pop_front();
      return s;
    };
    return d;
  }

  int dials() {
    std::lock_guard lock(mu_);
    return dials_;
  }

  // Connects with `c` while `broker` plays the handshake.
  std::shared_ptr<Connection> open(const ConnectionConfig& c,
                                   std::unique_ptr<ScriptedBroker>& broker) {
    auto p = net::duplex_pair(64 * 1024, 0us);
    EXPECT_TRUE(p);
    broker = std::make_unique<ScriptedBroker>(std::move(p->second));
    auto pending = std::async(std::launch::async, [&, d = driver(std::move(p->first))]() mutable {
      return Connection::connect(c, std::move(d));
    });
    const Status hs = broker->handshake(2047, 131072, 0);
    EXPECT_TRUE(hs.ok()) << hs.to_string();
    auto conn = pending.get();
    EXPECT_TRUE(conn) << conn.error().to_string();
    return conn ? *conn : nullptr;
  }

  // Opens channel 1 (or the next id) while `broker` answers.
  std::shared_ptr<Channel> open_channel(Connection& c, ScriptedBroker& broker,
                                        bool recoverable = true) {
    auto pending = std::async(std::launch::async, [&] { return c.open_channel(5s, recoverable); });
    auto open = broker.next();
    EXPECT_TRUE(open && open->method && std::holds_alternative<wire::ChannelOpen>(*open->method));
    if (open) {
      EXPECT_TRUE(broker.send(open->channel, wire::ChannelOpenOk{}).ok());
    }
    auto ch = pending.get();
    EXPECT_TRUE(ch) << ch.error().to_string();
    return ch ? *ch : nullptr;
  }

  // Runs everything the clock has made due (see driver_test.cc).
  void settle() {
    for (int round = 0; round < 2; ++round) {
      auto done = std::make_shared<std::promise<void>>();
      auto f = done->get_future();
      ASSERT_TRUE(
          loop_->submit([this, done] { (void)loop_->schedule(0ns, [done] { done->set_value(); }); })
              .ok());
      ASSERT_EQ(f.wait_for(5s), std::future_status::ready) << "the loop did not run";
    }
  }
  // Settles first too: a timer armed by work still running on the loop
  // must be armed before the clock moves.
  void advance(Nanos step) {
    settle();
    clock_.advance(step);
    settle();
  }

  // A publish on `ch` as the broker reads it: method, header, body.
  static Status expect_publish(ScriptedBroker& broker, std::uint16_t ch, std::string_view body) {
    MYELIN_RETURN_IF_ERROR(broker.expect_method<wire::BasicPublish>(ch));
    MYELIN_ASSIGN_OR_RETURN(auto header, broker.next());
    if (header.type != wire::kFrameHeader) return protocol_error("no content header");
    MYELIN_ASSIGN_OR_RETURN(auto b, broker.next());
    const std::string got(reinterpret_cast<const char*>(b.payload.data()), b.payload.size());
    if (b.type != wire::kFrameBody || got != body) {
      return protocol_error("body '" + got + "', expected '" + std::string(body) + "'");
    }
    return ok_status();
  }

  static Status deliver(ScriptedBroker& broker, std::uint16_t ch, const std::string& tag,
                        std::uint64_t delivery_tag, std::string_view body) {
    wire::BasicDeliver d;
    d.consumer_tag = tag;
    d.delivery_tag = delivery_tag;
    d.exchange = "";
    d.routing_key = "q";
    std::vector<std::byte> out;
    MYELIN_RETURN_IF_ERROR(wire::append_method_frame(out, ch, wire::Method(d)));
    MYELIN_RETURN_IF_ERROR(
        wire::append_content(out, ch, wire::class_id::kBasic, BasicProperties{}, body, 131072));
    return broker.send_raw(out);
  }

  FakeClock clock_;
  std::unique_ptr<EventLoop> loop_;
  std::mutex mu_;
  std::deque<std::unique_ptr<net::Stream>> streams_;
  int dials_ = 0;
};

TEST(AmqpRecoveryDelay, GrowsExponentiallyToTheCapAndJitterOnlyShortensIt) {
  RecoveryConfig rc;
  rc.initial_delay = 100ms;
  rc.max_delay = 1s;
  rc.multiplier = 2.0;
  rc.jitter = 0.0;
  EXPECT_EQ(detail::recovery_delay(rc, 1, 0.9), 100ms);
  EXPECT_EQ(detail::recovery_delay(rc, 2, 0.9), 200ms);
  EXPECT_EQ(detail::recovery_delay(rc, 4, 0.9), 800ms);
  EXPECT_EQ(detail::recovery_delay(rc, 5, 0.9), 1s);     // capped
  EXPECT_EQ(detail::recovery_delay(rc, 1000, 0.9), 1s);  // no overflow
  rc.jitter = 0.5;
  EXPECT_EQ(detail::recovery_delay(rc, 2, 0.0), 200ms);
  EXPECT_EQ(detail::recovery_delay(rc, 2, 0.5), 150ms);
  EXPECT_EQ(detail::recovery_delay(rc, 2, 1.0), 100ms);
}

TEST_F(AmqpRecovery, BackoffScheduleThenGivesUpAndReportsClosed) {
  Events events;
  ConnectionConfig c = config();
  c.recovery.max_attempts = 3;
  std::unique_ptr<ScriptedBroker> broker;
  auto conn = open(c, broker);
  ASSERT_TRUE(conn);
  conn->add_recovery_listener([&](const RecoveryEvent& e) { events.add(e); });
  auto closed = std::make_shared<std::promise<Status>>();
  conn->on_closed([closed](const Status& s) { closed->set_value(s); });
  const std::uint64_t epoch = conn->epoch();

  broker->close();  // end of stream: an I/O failure
  ASSERT_TRUE(eventually([&] { return events.size() == 2; }));
  EXPECT_TRUE(conn->is_recovering());
  EXPECT_FALSE(conn->is_open());
  EXPECT_EQ(events.at(0).kind, Kind::kStarted);
  EXPECT_EQ(events.at(0).epoch, epoch);
  EXPECT_NE(events.at(0).cause.message().find("end of stream"), std::string_view::npos)
      << events.at(0).cause.to_string();
  EXPECT_EQ(events.at(1).kind, Kind::kRetrying);
  EXPECT_EQ(events.at(1).attempt, 1u);
  EXPECT_EQ(events.at(1).delay, 100ms);

  // Nothing is dialled before the delay has passed on the connection's clock.
  advance(99ms);
  EXPECT_EQ(conn->stats().recovery_attempts, 0u);
  advance(1ms);
  EXPECT_EQ(conn->stats().recovery_attempts, 1u);
  ASSERT_TRUE(eventually([&] { return events.size() == 3; }));  // no stream: refused
  EXPECT_EQ(events.at(2).kind, Kind::kRetrying);
  EXPECT_EQ(events.at(2).attempt, 2u);
  EXPECT_EQ(events.at(2).delay, 200ms);
  EXPECT_NE(events.at(2).cause.message().find("connection refused"), std::string_view::npos);

  advance(199ms);
  EXPECT_EQ(conn->stats().recovery_attempts, 1u);
  advance(1ms);
  ASSERT_TRUE(eventually([&] { return events.size() == 4; }));
  EXPECT_EQ(events.at(3).delay, 400ms);
  advance(400ms);
  ASSERT_TRUE(eventually([&] { return events.size() == 5; }));
  EXPECT_EQ(events.at(4).kind, Kind::kFailed);
  EXPECT_EQ(events.at(4).attempt, 3u);
  EXPECT_EQ(dials(), 3);

  auto f = closed->get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  const Status why = f.get();
  EXPECT_EQ(why.code(), ErrorCode::kUnavailable);
  EXPECT_NE(why.message().find("gave up after 3 attempt(s)"), std::string_view::npos)
      << why.to_string();
  EXPECT_FALSE(conn->is_recovering());
  EXPECT_EQ(conn->close_reason().code(), ErrorCode::kUnavailable);
}

TEST_F(AmqpRecovery, RestoresChannelQosConfirmAndConsumerInOrderAndDropsStaleAcks) {
  Events events;
  std::mutex dmu;
  std::vector<std::uint64_t> tags;
  std::unique_ptr<ScriptedBroker> broker;
  auto conn = open(config(), broker);
  ASSERT_TRUE(conn);
  conn->add_recovery_listener([&](const RecoveryEvent& e) { events.add(e); });
  auto ch = open_channel(*conn, *broker);
  ASSERT_TRUE(ch);

  auto qos = ch->qos(10);
  ASSERT_TRUE(broker->expect_method<wire::BasicQos>(1).ok());
  ASSERT_TRUE(broker->send(1, wire::BasicQosOk{}).ok());
  ASSERT_TRUE(qos.get().ok());
  auto confirm = ch->confirm_select();
  ASSERT_TRUE(broker->expect_method<wire::ConfirmSelect>(1).ok());
  ASSERT_TRUE(broker->send(1, wire::ConfirmSelectOk{}).ok());
  ASSERT_TRUE(confirm.get().ok());

  ConsumeOptions co;
  co.consumer_tag = "worker-1";
  auto consumed = ch->consume(
      "q",
      [&](Delivery&& d) {
        std::lock_guard lock(dmu);
        tags.push_back(d.delivery_tag);
      },
      co);
  auto consume = broker->expect<wire::BasicConsume>(1);
  ASSERT_TRUE(consume) << consume.error().to_string();
  wire::BasicConsumeOk cok;
  cok.consumer_tag = "worker-1";
  ASSERT_TRUE(broker->send(1, cok).ok());
  ASSERT_EQ(*consumed.get(), "worker-1");

  ASSERT_TRUE(deliver(*broker, 1, "worker-1", 1, "a").ok());
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(dmu);
    return tags.size() == 1;
  }));
  // A publish the broker never confirms before it dies.
  auto unconfirmed = ch->publish("", "q", Message{{}, "lost?"}, PublishOptions{});
  ASSERT_TRUE(expect_publish(*broker, 1, "lost?").ok());

  auto next = offer_pipe();
  broker->close();
  auto lost = unconfirmed.wait_for(5s) == std::future_status::ready
                  ? unconfirmed.get()
                  : Status(deadline_exceeded("x"));
  EXPECT_EQ(lost.code(), ErrorCode::kConnectionLost) << lost.to_string();
  ASSERT_TRUE(eventually([&] { return events.size() == 2; }));
  EXPECT_EQ(ch->ack(1).code(), ErrorCode::kConnectionLost);  // its epoch is gone
  EXPECT_EQ(conn->stats().stale_acks_dropped, 1u);

  advance(100ms);
  ASSERT_TRUE(next->handshake(2047, 131072, 0).ok());
  // On the wire, in order: the channel, its qos, confirm mode, the consumer.
  auto reopen = next->next();
  ASSERT_TRUE(reopen && reopen->method &&
              std::holds_alternative<wire::ChannelOpen>(*reopen->method));
  EXPECT_EQ(reopen->channel, 1);
  ASSERT_TRUE(next->send(1, wire::ChannelOpenOk{}).ok());
  auto q = next->expect<wire::BasicQos>(1);
  ASSERT_TRUE(q) << q.error().to_string();
  EXPECT_EQ(q->prefetch_count, 10);
  ASSERT_TRUE(next->send(1, wire::BasicQosOk{}).ok());
  ASSERT_TRUE(next->expect_method<wire::ConfirmSelect>(1).ok());
  ASSERT_TRUE(next->send(1, wire::ConfirmSelectOk{}).ok());
  auto again = next->expect<wire::BasicConsume>(1);
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_EQ(again->consumer_tag, "worker-1");
  EXPECT_EQ(again->queue, "q");
  ASSERT_TRUE(next->send(1, cok).ok());

  ASSERT_TRUE(eventually([&] { return events.size() == 3; }));
  const RecoveryEvent done = events.at(2);
  EXPECT_EQ(done.kind, Kind::kRecovered);
  EXPECT_EQ(done.channels, 1u);
  EXPECT_EQ(done.consumers, 1u);
  EXPECT_EQ(done.attempt, 1u);
  EXPECT_EQ(done.downtime, 100ms);
  EXPECT_EQ(done.epoch, conn->epoch());
  EXPECT_EQ(ch->epoch(), conn->epoch());
  EXPECT_NE(done.epoch, events.at(0).epoch);
  EXPECT_TRUE(conn->is_open());
  EXPECT_TRUE(ch->is_open());
  EXPECT_EQ(conn->stats().recoveries, 1u);

  // The same Channel object works: a stale ack is still not sent, a new
  // delivery's tag continues above the old epoch's, and its ack carries the
  // broker's tag of the new connection.
  EXPECT_EQ(ch->ack(1).code(), ErrorCode::kConnectionLost);
  EXPECT_EQ(conn->stats().stale_acks_dropped, 2u);
  ASSERT_TRUE(deliver(*next, 1, "worker-1", 1, "b").ok());
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(dmu);
    return tags.size() == 2;
  }));
  {
    std::lock_guard lock(dmu);
    EXPECT_EQ(tags[1], 2u);
  }
  ASSERT_TRUE(ch->ack(2).ok());
  auto ack = next->expect<wire::BasicAck>(1);
  ASSERT_TRUE(ack) << ack.error().to_string();
  EXPECT_EQ(ack->delivery_tag, 1u);  // nothing stale went before it

  // Confirms restart at 1 on the new channel.
  auto confirmed = ch->publish("", "q", Message{{}, "after"}, PublishOptions{});
  ASSERT_TRUE(expect_publish(*next, 1, "after").ok());
  wire::BasicAck c1;
  c1.delivery_tag = 1;
  ASSERT_TRUE(next->send(1, c1).ok());
  ASSERT_EQ(confirmed.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(confirmed.get().ok());
}

TEST_F(AmqpRecovery, PublishMadeWhileRecoveringWaitsAndGoesOutAfterRestoration) {
  std::unique_ptr<ScriptedBroker> broker;
  auto conn = open(config(), broker);
  ASSERT_TRUE(conn);
  auto ch = open_channel(*conn, *broker);
  ASSERT_TRUE(ch);
  auto next = offer_pipe();
  broker->close();
  ASSERT_TRUE(eventually([&] { return conn->is_recovering(); }));
  auto waiting = ch->publish("", "q", Message{{}, "held"}, PublishOptions{});
  settle();
  EXPECT_EQ(waiting.wait_for(0s), std::future_status::timeout);
  advance(100ms);
  ASSERT_TRUE(next->handshake(2047, 131072, 0).ok());
  ASSERT_TRUE(next->expect_method<wire::ChannelOpen>(1).ok());
  ASSERT_TRUE(next->send(1, wire::ChannelOpenOk{}).ok());
  ASSERT_TRUE(expect_publish(*next, 1, "held").ok());  // after the re-open, not before
  ASSERT_EQ(waiting.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(waiting.get().ok());  // no confirm mode: ok once written
}

TEST_F(AmqpRecovery, AChannelDroppedWhileRecoveringIsNotReopened) {
  std::unique_ptr<ScriptedBroker> broker;
  auto conn = open(config(), broker);
  ASSERT_TRUE(conn);
  auto kept = open_channel(*conn, *broker);
  auto dropped = open_channel(*conn, *broker);
  ASSERT_TRUE(kept && dropped);
  ASSERT_EQ(dropped->id(), 2);
  auto next = offer_pipe();
  broker->close();
  ASSERT_TRUE(eventually([&] { return conn->is_recovering(); }));
  dropped.reset();
  advance(100ms);
  ASSERT_TRUE(next->handshake(2047, 131072, 0).ok());
  ASSERT_TRUE(next->expect_method<wire::ChannelOpen>(1).ok());
  ASSERT_TRUE(next->send(1, wire::ChannelOpenOk{}).ok());
  ASSERT_TRUE(eventually([&] { return conn->is_open(); }));
  settle();
  EXPECT_TRUE(next->idle()) << "channel 2 was re-opened although nobody holds it";
  EXPECT_TRUE(kept->is_open());
}

TEST_F(AmqpRecovery, WaitingPublishesAreBoundedInCountAndTime) {
  ConnectionConfig c = config();
  c.recovery.max_waiting = 1;
  c.recovery.max_wait = 1s;
  c.recovery.initial_delay = 10s;  // no attempt while this test runs
  c.recovery.max_delay = 10s;
  std::unique_ptr<ScriptedBroker> broker;
  auto conn = open(c, broker);
  ASSERT_TRUE(conn);
  auto ch = open_channel(*conn, *broker);
  ASSERT_TRUE(ch);
  broker->close();
  ASSERT_TRUE(eventually([&] { return conn->is_recovering(); }));
  auto first = ch->publish("", "q", Message{{}, "1"}, PublishOptions{});
  auto second = ch->publish("", "q", Message{{}, "2"}, PublishOptions{});
  ASSERT_EQ(second.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(second.get().code(), ErrorCode::kResourceExhausted);
  advance(500ms);
  EXPECT_EQ(first.wait_for(0s), std::future_status::timeout);
  advance(750ms);  // past max_wait, and past the next sweep
  ASSERT_EQ(first.wait_for(5s), std::future_status::ready);
  const Status st = first.get();
  EXPECT_EQ(st.code(), ErrorCode::kDeadlineExceeded) << st.to_string();
  EXPECT_EQ(conn->stats().recovery_waits_failed, 2u);
}

TEST_F(AmqpRecovery, FailFastFailsPublishesWhileRecovering) {
  ConnectionConfig c = config();
  c.recovery.fail_fast = true;
  std::unique_ptr<ScriptedBroker> broker;
  auto conn = open(c, broker);
  ASSERT_TRUE(conn);
  auto ch = open_channel(*conn, *broker);
  ASSERT_TRUE(ch);
  broker->close();
  ASSERT_TRUE(eventually([&] { return conn->is_recovering(); }));
  auto refused = ch->publish("", "q", Message{{}, "x"}, PublishOptions{});
  ASSERT_EQ(refused.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(refused.get().code(), ErrorCode::kUnavailable);
}

TEST_F(AmqpRecovery, ConnectionForcedTriggersRecoveryButOtherBrokerClosesDoNot) {
  for (const std::uint16_t code : {wire::reply_code::kConnectionForced, std::uint16_t{530}}) {
    SCOPED_TRACE(code);
    Events events;
    std::unique_ptr<ScriptedBroker> broker;
    auto conn = open(config(), broker);
    ASSERT_TRUE(conn);
    conn->add_recovery_listener([&](const RecoveryEvent& e) { events.add(e); });
    auto closed = std::make_shared<std::promise<Status>>();
    conn->on_closed([closed](const Status& s) { closed->set_value(s); });
    wire::ConnectionClose close;
    close.reply_code = code;
    close.reply_text = "bye";
    ASSERT_TRUE(broker->send(0, close).ok());
    ASSERT_TRUE(broker->expect_method<wire::ConnectionCloseOk>().ok());
    broker->close();
    auto f = closed->get_future();
    if (code == wire::reply_code::kConnectionForced) {
      ASSERT_TRUE(eventually([&] { return events.size() >= 2; }));
      EXPECT_EQ(events.at(0).kind, Kind::kStarted);
      EXPECT_NE(events.at(0).cause.message().find("320"), std::string_view::npos);
      EXPECT_EQ(f.wait_for(0s), std::future_status::timeout);
      EXPECT_TRUE(conn->close().ok());  // the application ends the recovery
      ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
      EXPECT_TRUE(f.get().ok());
    } else {
      ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
      EXPECT_NE(f.get().message().find("530"), std::string_view::npos);
      EXPECT_EQ(events.size(), 0u);
      EXPECT_FALSE(conn->is_recovering());
    }
  }
}

TEST_F(AmqpRecovery, MissedHeartbeatsTriggerRecovery) {
  Events events;
  ConnectionConfig c = config();
  c.heartbeat_s = 2;
  auto p = net::duplex_pair(64 * 1024, 0us);
  ASSERT_TRUE(p);
  auto broker = std::make_unique<ScriptedBroker>(std::move(p->second));
  auto pending = std::async(std::launch::async, [&, d = driver(std::move(p->first))]() mutable {
    return Connection::connect(c, std::move(d));
  });
  ASSERT_TRUE(broker->handshake(2047, 131072, 2).ok());
  auto conn = pending.get();
  ASSERT_TRUE(conn);
  (*conn)->add_recovery_listener([&](const RecoveryEvent& e) { events.add(e); });
  for (int i = 0; i < 8 && events.size() == 0; ++i) advance(500ms);  // silent broker: 4 s
  ASSERT_TRUE(eventually([&] { return events.size() >= 1; }));
  EXPECT_EQ(events.at(0).kind, Kind::kStarted);
  EXPECT_NE(events.at(0).cause.message().find("presumed dead"), std::string_view::npos)
      << events.at(0).cause.to_string();
}

TEST_F(AmqpRecovery, DisabledRecoveryAndApplicationCloseDoNotRecover) {
  Events events;
  Events e2;
  ConnectionConfig c = config();
  c.recovery.enabled = false;
  std::unique_ptr<ScriptedBroker> broker;
  auto conn = open(c, broker);
  ASSERT_TRUE(conn);
  conn->add_recovery_listener([&](const RecoveryEvent& e) { events.add(e); });
  auto closed = std::make_shared<std::promise<Status>>();
  conn->on_closed([closed](const Status& s) { closed->set_value(s); });
  broker->close();
  auto f = closed->get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(f.get().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(events.size(), 0u);

  // Recovery on, the application closes: the close handshake, no recovery.
  std::unique_ptr<ScriptedBroker> b2;
  auto c2 = open(config(), b2);
  ASSERT_TRUE(c2);
  c2->add_recovery_listener([&](const RecoveryEvent& e) { e2.add(e); });
  auto closing = std::async(std::launch::async, [&] { return c2->close(); });
  ASSERT_TRUE(b2->expect_method<wire::ConnectionClose>().ok());
  ASSERT_TRUE(b2->send(0, wire::ConnectionCloseOk{}).ok());
  EXPECT_TRUE(closing.get().ok());
  b2->close();
  settle();
  EXPECT_EQ(e2.size(), 0u);
  EXPECT_FALSE(c2->is_recovering());
}

TEST_F(AmqpRecovery, AccessRefusedDuringAnAttemptGivesUp) {
  Events events;
  std::unique_ptr<ScriptedBroker> broker;
  auto conn = open(config(), broker);
  ASSERT_TRUE(conn);
  conn->add_recovery_listener([&](const RecoveryEvent& e) { events.add(e); });
  auto next = offer_pipe();
  broker->close();
  ASSERT_TRUE(eventually([&] { return events.size() == 2; }));
  advance(100ms);
  ASSERT_TRUE(next->expect_protocol_header().ok());
  ASSERT_TRUE(next->send(0, wire::ConnectionStart{}).ok());
  ASSERT_TRUE(next->expect_method<wire::ConnectionStartOk>().ok());
  wire::ConnectionClose refused;
  refused.reply_code = wire::reply_code::kAccessRefused;
  refused.reply_text = "ACCESS_REFUSED - Login was refused";
  ASSERT_TRUE(next->send(0, refused).ok());
  ASSERT_TRUE(eventually([&] { return events.size() == 3; }));
  EXPECT_EQ(events.kinds(), (std::vector<Kind>{Kind::kStarted, Kind::kRetrying, Kind::kFailed}));
  EXPECT_EQ(events.at(2).cause.code(), ErrorCode::kAuthenticationFailed);
  EXPECT_FALSE(conn->is_recovering());
}

TEST_F(AmqpRecovery, ListenerMayDropTheLastConnectionReference) {
  std::unique_ptr<ScriptedBroker> broker;
  auto conn = open(config(), broker);
  ASSERT_TRUE(conn);
  auto holder = std::make_shared<std::shared_ptr<Connection>>(std::move(conn));
  auto closed = std::make_shared<std::promise<Status>>();
  (*holder)->on_closed([closed](const Status& s) { closed->set_value(s); });
  auto dropped = std::make_shared<std::promise<void>>();
  (*holder)->add_recovery_listener([holder, dropped](const RecoveryEvent& e) {
    if (e.kind == Kind::kStarted && *holder) {
      holder->reset();  // the last reference: ~Connection on the loop thread
      dropped->set_value();
    }
  });
  broker->close();
  ASSERT_EQ(dropped->get_future().wait_for(5s), std::future_status::ready);
  auto f = closed->get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(f.get().ok());  // the application ended it (by dropping it)
  advance(1s);                // no attempt follows
  EXPECT_EQ(dials(), 0);
}

TEST_F(AmqpRecovery, PoolLeasesFromTheLostEpochFailAndThePoolRefills) {
  std::unique_ptr<ScriptedBroker> broker;
  auto conn = open(config(), broker);
  ASSERT_TRUE(conn);
  ChannelPoolOptions po;
  po.size = 2;
  auto created = std::async(std::launch::async, [&] { return ChannelPool::create(conn, po); });
  auto pool = created.get();
  ASSERT_TRUE(pool) << pool.error().to_string();
  auto leasing = std::async(std::launch::async, [&] { return (*pool)->acquire(5s); });
  ASSERT_TRUE(broker->expect_method<wire::ChannelOpen>(1).ok());
  ASSERT_TRUE(broker->send(1, wire::ChannelOpenOk{}).ok());
  auto lease = leasing.get();
  ASSERT_TRUE(lease) << lease.error().to_string();
  const std::uint64_t old_epoch = lease->epoch();

  auto next = offer_pipe();
  broker->close();
  ASSERT_TRUE(eventually([&] { return conn->is_recovering(); }));
  const Status stale = (*lease)->publish("", "q", Message{{}, "x"}, PublishCallback{});
  EXPECT_EQ(stale.code(), ErrorCode::kConnectionLost) << stale.to_string();
  EXPECT_NE(stale.message().find("open a new channel"), std::string_view::npos);
  auto during = (*pool)->acquire(1s);
  ASSERT_FALSE(during);
  EXPECT_EQ(during.error().code(), ErrorCode::kUnavailable);

  advance(100ms);
  ASSERT_TRUE(next->handshake(2047, 131072, 0).ok());
  ASSERT_TRUE(eventually([&] { return conn->is_open(); }));  // nothing to restore
  lease->reset();                                            // dropped, not reused
  auto refill = std::async(std::launch::async, [&] { return (*pool)->acquire(5s); });
  auto open = next->next();
  ASSERT_TRUE(open && open->method && std::holds_alternative<wire::ChannelOpen>(*open->method));
  ASSERT_TRUE(next->send(open->channel, wire::ChannelOpenOk{}).ok());
  auto fresh = refill.get();
  ASSERT_TRUE(fresh) << fresh.error().to_string();
  EXPECT_NE(fresh->epoch(), old_epoch);
  EXPECT_EQ(fresh->epoch(), conn->epoch());
  EXPECT_GE((*pool)->stats().replaced, 1u);
}

}  // namespace
}  // namespace myelin::amqp
