// connection.blocked / unblocked from a real resource alarm on the private
// node (its memory watermark lowered to almost nothing, then restored). Its
// own binary, run serially: the alarm blocks every publisher on the node.
#include <gtest/gtest.h>

#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <vector>

#include "src/amqp/broker_test_util.h"

namespace myelin::amqp {
namespace {

using namespace std::chrono_literals;

int rabbitmqctl(const std::string& args) {
  const char* src = std::getenv("MYELIN_SOURCE_DIR");
  const std::string cmd = std::string(src ? src : ".") + "/scripts/rabbitmq ctl " + args;
  return std::system(cmd.c_str());
}

// Restores the watermark whatever the test does.
struct MemoryAlarm {
  MemoryAlarm() { ok = rabbitmqctl("set_vm_memory_high_watermark 0.0000001") == 0; }
  ~MemoryAlarm() { (void)rabbitmqctl("set_vm_memory_high_watermark 0.4"); }
  bool ok;
};

TEST(AmqpBlocked, AResourceAlarmIsSurfacedAndPublishesResumeAfterIt) {
  auto c = testing::connect_or_fail();
  ASSERT_TRUE(c);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<bool, std::string>> events;
  c->on_blocked([&](bool blocked, const std::string& reason) {
    std::lock_guard lock(mu);
    events.emplace_back(blocked, reason);
    cv.notify_all();
  });
  auto ch = c->open_channel();
  ASSERT_TRUE(ch) << ch.error().to_string();
  const std::string q = testing::unique_name("blocked");
  QueueOptions exclusive;
  exclusive.exclusive = true;
  ASSERT_TRUE((*ch)->queue_declare(q, exclusive).get());
  ASSERT_TRUE((*ch)->confirm_select().get().ok());
  std::future<Status> confirmed;
  {
    MemoryAlarm alarm;
    ASSERT_TRUE(alarm.ok) << "scripts/rabbitmq ctl failed";
    // RabbitMQ blocks a connection when it next publishes under the alarm.
    confirmed = (*ch)->publish("", q, Message{{}, "during the alarm"}, PublishOptions{});
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return !events.empty(); })) << "no connection.blocked";
    EXPECT_TRUE(events[0].first);
    EXPECT_NE(events[0].second.find("memory"), std::string::npos) << events[0].second;
    EXPECT_TRUE(c->is_blocked());
  }  // alarm cleared
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return events.size() >= 2; }))
        << "no connection.unblocked";
    EXPECT_FALSE(events[1].first);
  }
  EXPECT_FALSE(c->is_blocked());
  // The message published under the alarm was held, not lost.
  ASSERT_EQ(confirmed.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(confirmed.get().ok());
  QueueOptions passive;
  passive.passive = true;
  auto info = (*ch)->queue_declare(q, passive).get();
  ASSERT_TRUE(info) << info.error().to_string();
  EXPECT_EQ(info->message_count, 1u);
}

}  // namespace
}  // namespace myelin::amqp
