// Heartbeats against the private RabbitMQ node: an idle connection stays
// open, and a path that goes silent (a proxy that stops forwarding) is
// detected within two heartbeat intervals.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <thread>

#include "src/amqp/broker_test_util.h"

namespace myelin::amqp {
namespace {

using testing::connect_or_fail;
using namespace std::chrono_literals;

// A one-connection TCP forwarder on loopback. blackhole() stops it moving
// bytes in either direction while keeping both sockets open, as a dead
// middlebox or a paused peer would.
class SilenceableProxy {
 public:
  SilenceableProxy(const std::string& host, std::uint16_t port) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(::listen(listen_fd_, 1), 0);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    upstream_.sin_family = AF_INET;
    upstream_.sin_port = htons(port);
    ::inet_pton(AF_INET, host.c_str(), &upstream_.sin_addr);
    thread_ = std::thread([this] { run(); });
  }
  ~SilenceableProxy() {
    stop_ = true;
    thread_.join();
    for (int fd : {listen_fd_, client_, server_}) {
      if (fd >= 0) ::close(fd);
    }
  }
  std::uint16_t port() const { return port_; }
  void blackhole() { silent_ = true; }

 private:
  void run() {
    pollfd lp{listen_fd_, POLLIN, 0};
    while (!stop_ && client_ < 0) {
      if (::poll(&lp, 1, 50) > 0) {
        client_ = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        server_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (::connect(server_, reinterpret_cast<sockaddr*>(&upstream_), sizeof(upstream_)) != 0) {
          return;
        }
      }
    }
    char buf[65536];
    while (!stop_) {
      if (silent_) {
        std::this_thread::sleep_for(20ms);
        continue;
      }
      pollfd p[2] = {{client_, POLLIN, 0}, {server_, POLLIN, 0}};
      if (::poll(p, 2, 20) <= 0) continue;
      for (int i = 0; i < 2 && !silent_; ++i) {
        if ((p[i].revents & (POLLIN | POLLHUP)) == 0) continue;
        const ssize_t n = ::read(p[i].fd, buf, sizeof(buf));
        if (n <= 0) return;
        const int to = i == 0 ? server_ : client_;
        for (ssize_t off = 0; off < n;) {
          const ssize_t w = ::write(to, buf + off, static_cast<std::size_t>(n - off));
          if (w <= 0) return;
          off += w;
        }
      }
    }
  }

  int listen_fd_ = -1;
  int client_ = -1;
  int server_ = -1;
  std::uint16_t port_ = 0;
  sockaddr_in upstream_{};
  std::atomic<bool> stop_{false};
  std::atomic<bool> silent_{false};
  std::thread thread_;
};

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
