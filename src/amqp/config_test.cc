#include "myelin/amqp/config.h"

#include <gtest/gtest.h>

namespace myelin::amqp {
namespace {

TEST(AmqpUri, FullUriSetsEveryField) {
  auto c = ConnectionConfig::from_uri(
      "amqp://us%40er:p%3Ass@broker.local:5673/my%2fvhost?heartbeat=10&frame_max=65536"
      "&channel_max=64&connection_timeout=2500&name=worker-1");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->user, "us@er");
  EXPECT_EQ(c->password, "p:ss");
  EXPECT_EQ(c->host, "broker.local");
  EXPECT_EQ(c->port, 5673);
  EXPECT_EQ(c->vhost, "my/vhost");
  EXPECT_EQ(c->heartbeat_s, 10);
  EXPECT_EQ(c->frame_max, 65536u);
  EXPECT_EQ(c->channel_max, 64);
  EXPECT_EQ(c->connect_timeout, std::chrono::milliseconds(2500));
  EXPECT_EQ(c->name, "worker-1");
}

TEST(AmqpUri, DefaultsAndIpv6) {
  auto c = ConnectionConfig::from_uri("amqp://");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->host, "127.0.0.1");
  EXPECT_EQ(c->port, 5672);
  EXPECT_EQ(c->vhost, "/");
  auto v6 = ConnectionConfig::from_uri("amqp://[::1]:5800/");
  ASSERT_TRUE(v6) << v6.error().to_string();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 5800);
  EXPECT_EQ(v6->vhost, "/");
  EXPECT_EQ(v6->describe(), "amqp://guest@[::1]:5800/");
}

TEST(AmqpUri, BadInputNamesThePart) {
  struct Case {
    const char* uri;
    const char* says;
  };
  for (const Case& k :
       {Case{"http://x", "amqp://"}, Case{"amqp://h:99999/", "port"}, Case{"amqp://h:abc/", "port"},
        Case{"amqp://h/?heartbeat=-1", "heartbeat"}, Case{"amqp://h/?frame_max=100", "frame_max"},
        Case{"amqp://h/?bogus=1", "bogus"}, Case{"amqp://u%zz@h/", "user"},
        Case{"amqp://h/%4", "vhost"}, Case{"amqp://[::1/", "["}}) {
    auto c = ConnectionConfig::from_uri(k.uri);
    ASSERT_FALSE(c) << k.uri;
    EXPECT_EQ(c.error().code(), ErrorCode::kInvalidArgument) << k.uri;
    EXPECT_NE(c.error().message().find(k.says), std::string_view::npos)
        << k.uri << ": " << c.error().to_string();
  }
  auto tls = ConnectionConfig::from_uri("amqps://h/");
  ASSERT_FALSE(tls);
  EXPECT_EQ(tls.error().code(), ErrorCode::kUnimplemented);
}

TEST(AmqpUri, CloseTimeoutsAndTheirDefaults) {
  auto c = ConnectionConfig::from_uri("amqp://h/?close_timeout=750&close_timeout_on_destroy=125");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->close_timeout, std::chrono::milliseconds(750));
  EXPECT_EQ(c->close_timeout_on_destroy, std::chrono::milliseconds(125));
  auto d = ConnectionConfig::from_uri("amqp://h/");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->close_timeout, std::chrono::seconds(5));
  EXPECT_EQ(d->close_timeout_on_destroy, std::chrono::seconds(2));
  // A serving worker's default: a dead path is noticed in well under 20 s
  // (1.75 heartbeats at most; docs/amqp.md section 7).
  EXPECT_LE(d->heartbeat_s * 1750, 20'000) << "default heartbeat " << d->heartbeat_s << " s";
  EXPECT_GT(d->heartbeat_s, 0);
  auto bad = ConnectionConfig::from_uri("amqp://h/?close_timeout=soon");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("close_timeout"), std::string_view::npos);
}

}  // namespace
}  // namespace myelin::amqp
