// Automatic recovery against the private RabbitMQ node, through the
// project's FaultProxy: a confirmed publisher and a manual-ack consumer on
// one recovering connection; the proxy resets the connection (RST) midway.
// Recovery must happen, publishing and consuming must resume, and every
// message the broker confirmed must be consumed (counted by message id;
// duplicates are allowed: unacked deliveries are requeued by the broker).
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "myelin/amqp/connection.h"
#include "myelin/net/fault_proxy.h"
#include "src/amqp/broker_test_util.h"

namespace myelin::amqp {
namespace {

using namespace std::chrono_literals;
using testing::broker_config;
using testing::unique_name;

TEST(AmqpRecoveryBroker, ResetConnectionRecoversAndLosesNoConfirmedMessage) {
  // Shared with the client's threads: declared first, so destroyed last.
  std::mutex mu;
  std::condition_variable changed;
  std::vector<RecoveryEvent::Kind> events;
  std::set<int> consumed;
  ConnectionConfig cfg = broker_config();
  net::FaultProxyOptions po;
  po.upstream_host = cfg.host;
  po.upstream_port = cfg.port;
  auto proxy = net::FaultProxy::start(po);
  ASSERT_TRUE(proxy) << proxy.error().to_string();
  cfg.host = "127.0.0.1";
  cfg.port = (*proxy)->port();
  cfg.recovery.enabled = true;
  cfg.recovery.initial_delay = 20ms;
  cfg.recovery.max_delay = 500ms;
  cfg.recovery.max_attempts = 40;  // bounded: ~20 s at most
  cfg.connect_timeout = 5s;
  auto connected = Connection::connect(cfg);
  ASSERT_TRUE(connected) << connected.error().to_string();
  std::shared_ptr<Connection> conn = *connected;

  conn->add_recovery_listener([&](const RecoveryEvent& e) {
    std::lock_guard lock(mu);
    events.push_back(e.kind);
    changed.notify_all();
  });

  auto pub = conn->open_channel();
  auto sub = conn->open_channel();
  ASSERT_TRUE(pub && sub);
  const std::string queue = unique_name("recovery");
  // Neither exclusive nor auto-delete: it outlives the connection.
  ASSERT_TRUE((*pub)->queue_declare(queue).get());
  ASSERT_TRUE((*pub)->confirm_select().get().ok());
  ASSERT_TRUE((*sub)->qos(100).get().ok());

  // A weak reference: the handler lives in the channel it acknowledges on.
  std::weak_ptr<Channel> sub_ch = *sub;
  auto tag = (*sub)->consume(queue, [&, sub_ch](Delivery&& d) {
    {
      std::lock_guard lock(mu);
      consumed.insert(std::stoi(d.properties.message_id.value_or("-1")));
      changed.notify_all();
    }
    // After a recovery, an ack of the old epoch fails (kConnectionLost) and
    // the broker redelivers the message: counted once in the set anyway.
    if (auto ch = sub_ch.lock()) (void)ch->ack(d.delivery_tag);
  });
  ASSERT_TRUE(tag.get());

  constexpr int kMessages = 1000;
  std::set<int> confirmed;
  int attempts = 0;
  for (int i = 0; i < kMessages; ++i) {
    if (i == kMessages / 2) {
      ASSERT_TRUE((*proxy)->reset_all());  // RST both sides
    }
    // At-least-once: a publish that failed is sent again, same id.
    for (;;) {
      ASSERT_LT(++attempts, kMessages * 3) << "publishes keep failing";
      Message m;
      m.properties.message_id = std::to_string(i);
      m.body = "message " + std::to_string(i);
      auto done = (*pub)->publish("", queue, std::move(m), PublishOptions{});
      ASSERT_EQ(done.wait_for(30s), std::future_status::ready) << "publish " << i << " hung";
      const Status st = done.get();
      if (st.ok()) {
        confirmed.insert(i);
        break;
      }
      // Only the outcomes of a dying connection are acceptable here.
      ASSERT_TRUE(st.code() == ErrorCode::kConnectionLost || st.code() == ErrorCode::kUnavailable)
          << st.to_string();
      std::unique_lock lock(mu);  // wait for the recovery to finish, bounded
      changed.wait_for(lock, 20s, [&] {
        return !events.empty() && (events.back() == RecoveryEvent::Kind::kRecovered ||
                                   events.back() == RecoveryEvent::Kind::kFailed);
      });
    }
  }
  EXPECT_EQ(confirmed.size(), static_cast<std::size_t>(kMessages));
  {
    std::unique_lock lock(mu);
    const bool all = changed.wait_for(lock, 30s, [&] {
      for (int id : confirmed) {
        if (consumed.count(id) == 0) return false;
      }
      return true;
    });
    std::size_t missing = 0;
    for (int id : confirmed) missing += consumed.count(id) == 0 ? 1 : 0;
    EXPECT_TRUE(all) << missing << " confirmed messages were never consumed";
    ASSERT_GE(events.size(), 3u);
    EXPECT_EQ(events.front(), RecoveryEvent::Kind::kStarted);
    EXPECT_EQ(events.back(), RecoveryEvent::Kind::kRecovered);
  }
  EXPECT_GE(conn->stats().recoveries, 1u);
  EXPECT_GE((*proxy)->stats().resets_injected, 1u);
  EXPECT_TRUE(conn->is_open());
  EXPECT_TRUE((*pub)->queue_delete(queue).get());
  EXPECT_TRUE(conn->close().ok());
}

}  // namespace
}  // namespace myelin::amqp
