// The connection driven on a caller's EventLoop, Stream and clock (issue 22,
// "the connection as a sans-I/O engine", the driver half): the handshake,
// heartbeats sent and missed, and what the connection reports when its
// stream dies with publishes unconfirmed. The broker is a ScriptedBroker on
// a memory pipe and the loop runs on a FakeClock: no RabbitMQ, no sleeps;
// time moves only when the test says so.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "myelin/amqp/connection.h"
#include "myelin/base/clock.h"
#include "myelin/loop/event_loop.h"
#include "myelin/net/stream.h"
#include "src/amqp/scripted_broker.h"

namespace myelin::amqp {
namespace {

using namespace std::chrono_literals;
using testing::ScriptedBroker;

// Waits (bounded, real time) until `pred` holds.
template <typename Pred>
bool eventually(Pred pred, Nanos within = 5s) {
  const MonoTime deadline = mono_now() + within;
  while (!pred()) {
    if (mono_now() >= deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

class AmqpDriver : public ::testing::Test {
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

  // A fresh pipe: the client end goes to connect(), the other to a broker.
  std::pair<ConnectionDriver, std::unique_ptr<ScriptedBroker>> pipe() {
    auto p = net::duplex_pair(64 * 1024, 0us);
    EXPECT_TRUE(p);
    ConnectionDriver d;
    d.loop = loop_.get();
    d.stream = std::move(p->first);
    return {std::move(d), std::make_unique<ScriptedBroker>(std::move(p->second))};
  }

  static ConnectionConfig config(std::uint16_t heartbeat_s) {
    ConnectionConfig c;
    c.heartbeat_s = heartbeat_s;
    c.connect_timeout = 5s;
    c.name = "driver-test";
    return c;
  }

  // Connects while `broker` plays the handshake; the connection or null.
  std::shared_ptr<Connection> open(ConnectionDriver driver, ScriptedBroker& broker,
                                   std::uint16_t heartbeat_s, std::uint16_t broker_heartbeat = 60) {
    auto pending = std::async(std::launch::async, [&, d = std::move(driver)]() mutable {
      return Connection::connect(config(heartbeat_s), std::move(d));
    });
    const Status hs = broker.handshake(2047, 131072, broker_heartbeat);
    EXPECT_TRUE(hs.ok()) << hs.to_string();
    auto c = pending.get();
    EXPECT_TRUE(c) << c.error().to_string();
    return c ? *c : nullptr;
  }

  // Lets the loop run everything that the clock has made due: two rounds of
  // "a task that arms a zero-delay timer", so the heartbeat timer of the
  // first round and the writes it queued are done when this returns.
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
  void advance(Nanos step) {
    clock_.advance(step);
    settle();
  }

  FakeClock clock_;
  std::unique_ptr<EventLoop> loop_;
};

TEST_F(AmqpDriver, HandshakeNegotiatesTheSmallerLimitsAndSendsCredentials) {
  auto [driver, broker] = pipe();
  ConnectionConfig c = config(7);
  c.user = "svc";
  c.password = "p@ss";
  c.vhost = "inference";
  auto pending = std::async(std::launch::async, [c, d = std::move(driver)]() mutable {
    return Connection::connect(c, std::move(d));
  });
  ASSERT_TRUE(broker->expect_protocol_header().ok());
  wire::ConnectionStart start;
  start.mechanisms = "AMQPLAIN PLAIN";
  ASSERT_TRUE(broker->send(0, start).ok());
  auto start_ok = broker->expect<wire::ConnectionStartOk>();
  ASSERT_TRUE(start_ok) << start_ok.error().to_string();
  EXPECT_EQ(start_ok->mechanism, "PLAIN");
  EXPECT_EQ(start_ok->response, std::string("\0svc\0p@ss", 9));
  bool named = false;
  for (const auto& [key, value] : start_ok->client_properties) {
    if (key == "connection_name") named = value == FieldValue{std::string("driver-test")};
  }
  EXPECT_TRUE(named) << "connection_name missing from the client properties";

  wire::ConnectionTune tune;
  tune.channel_max = 100;
  tune.frame_max = 65536;
  tune.heartbeat = 60;
  ASSERT_TRUE(broker->send(0, tune).ok());
  auto tune_ok = broker->expect<wire::ConnectionTuneOk>();
  ASSERT_TRUE(tune_ok) << tune_ok.error().to_string();
  EXPECT_EQ(tune_ok->channel_max, 100);   // ours 2047
  EXPECT_EQ(tune_ok->frame_max, 65536u);  // ours 131072
  EXPECT_EQ(tune_ok->heartbeat, 7);       // ours 7, the broker's 60
  auto open = broker->expect<wire::ConnectionOpen>();
  ASSERT_TRUE(open) << open.error().to_string();
  EXPECT_EQ(open->virtual_host, "inference");
  ASSERT_TRUE(broker->send(0, wire::ConnectionOpenOk{}).ok());

  auto conn = pending.get();
  ASSERT_TRUE(conn) << conn.error().to_string();
  EXPECT_TRUE((*conn)->is_open());
  EXPECT_EQ((*conn)->channel_max(), 100);
  EXPECT_EQ((*conn)->frame_max(), 65536u);
  EXPECT_EQ((*conn)->heartbeat_s(), 7);
  broker->close();
  EXPECT_TRUE(eventually([&] { return !(*conn)->is_open(); }));
}

// "AMQPLAIN" contains "PLAIN": the offer is a space-separated list, matched
// word by word (a substring match once took AMQPLAIN for PLAIN and then
// waited for a tune that never came).
TEST_F(AmqpDriver, BrokerWithoutPlainIsAnAuthenticationFailureNamingWhatItOffers) {
  auto [driver, broker] = pipe();
  auto pending = std::async(std::launch::async, [d = std::move(driver)]() mutable {
    return Connection::connect(config(0), std::move(d));
  });
  ASSERT_TRUE(broker->expect_protocol_header().ok());
  wire::ConnectionStart start;
  start.mechanisms = "AMQPLAIN EXTERNAL";
  ASSERT_TRUE(broker->send(0, start).ok());
  auto conn = pending.get();
  ASSERT_FALSE(conn);
  EXPECT_EQ(conn.error().code(), ErrorCode::kAuthenticationFailed) << conn.error().to_string();
  EXPECT_NE(conn.error().message().find("AMQPLAIN EXTERNAL"), std::string_view::npos)
      << conn.error().to_string();
}

TEST_F(AmqpDriver, ConnectOnTheLoopItWouldRunOnIsRefused) {
  auto [driver, broker] = pipe();
  std::promise<Status> result;
  ASSERT_TRUE(loop_
                  ->submit([&result, d = std::move(driver)]() mutable {
                    auto c = Connection::connect(config(0), std::move(d));
                    result.set_value(c ? ok_status() : c.error());
                  })
                  .ok());
  auto f = result.get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  const Status st = f.get();
  EXPECT_EQ(st.code(), ErrorCode::kFailedPrecondition) << st.to_string();
}

TEST_F(AmqpDriver, IdleConnectionSendsAHeartbeatEveryHalfInterval) {
  auto [driver, broker] = pipe();
  auto conn = open(std::move(driver), *broker, /*heartbeat_s=*/2);
  ASSERT_TRUE(conn);
  ASSERT_EQ(conn->heartbeat_s(), 2);
  // The check runs every quarter interval (500 ms); a heartbeat is due once
  // nothing was written for half an interval (1 s).
  advance(500ms);
  EXPECT_TRUE(broker->idle()) << "a heartbeat went out before half an interval";
  EXPECT_EQ(conn->stats().heartbeats_out, 0u);
  advance(500ms);
  auto hb = broker->next();
  ASSERT_TRUE(hb) << hb.error().to_string();
  EXPECT_EQ(hb->type, wire::kFrameHeartbeat);
  EXPECT_EQ(hb->channel, 0);
  EXPECT_EQ(conn->stats().heartbeats_out, 1u);
  // The broker's heartbeats keep the connection alive indefinitely.
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(broker->send_heartbeat().ok());
    const std::uint64_t seen = static_cast<std::uint64_t>(i) + 1;
    ASSERT_TRUE(eventually([&] { return conn->stats().heartbeats_in == seen; }));
    advance(500ms);
  }
  EXPECT_TRUE(conn->is_open()) << conn->close_reason().to_string();
  EXPECT_EQ(conn->stats().heartbeats_out, 1u + 20u / 2u);
  broker->close();
  EXPECT_TRUE(eventually([&] { return !conn->is_open(); }));
}

TEST_F(AmqpDriver, SilentBrokerIsDeclaredDeadAfterOneAndAHalfIntervals) {
  auto [driver, broker] = pipe();
  auto conn = open(std::move(driver), *broker, /*heartbeat_s=*/2);
  ASSERT_TRUE(conn);
  std::promise<Status> closed_p;
  auto closed_f = closed_p.get_future();
  conn->on_closed([&closed_p](const Status& why) { closed_p.set_value(why); });
  // Silence up to exactly 1.5 intervals (3 s) is tolerated...
  for (int i = 0; i < 6; ++i) advance(500ms);
  EXPECT_TRUE(conn->is_open());
  EXPECT_EQ(closed_f.wait_for(0s), std::future_status::timeout);
  // ...the check after it (3.5 s of silence) declares the broker dead.
  advance(500ms);
  ASSERT_EQ(closed_f.wait_for(5s), std::future_status::ready);
  const Status why = closed_f.get();
  EXPECT_EQ(why.code(), ErrorCode::kUnavailable) << why.to_string();
  EXPECT_NE(why.message().find("3500 ms"), std::string_view::npos) << why.to_string();
  EXPECT_NE(why.message().find("peer presumed dead"), std::string_view::npos) << why.to_string();
  EXPECT_FALSE(conn->is_open());
  EXPECT_EQ(conn->close_reason().code(), ErrorCode::kUnavailable);
  // It sent its own heartbeats until then (at 1, 2 and 3 s), then dropped
  // the stream.
  EXPECT_EQ(conn->stats().heartbeats_out, 3u);
  EXPECT_TRUE(broker->closed_by_client());
}

TEST_F(AmqpDriver, ConnectionsShareOneLoopAndOneCanGoWhileTheOtherRuns) {
  auto [d1, b1] = pipe();
  auto [d2, b2] = pipe();
  auto c1 = open(std::move(d1), *b1, 2);
  auto c2 = open(std::move(d2), *b2, 2);
  ASSERT_TRUE(c1 && c2);
  // Dropping c1 closes it cleanly on the shared loop (the broker answers).
  auto answer = std::async(std::launch::async, [broker1 = b1.get()] {
    const Status got = broker1->expect_method<wire::ConnectionClose>();
    if (!got.ok()) return got;
    MYELIN_RETURN_IF_ERROR(broker1->send(0, wire::ConnectionCloseOk{}));
    return broker1->closed_by_client() ? ok_status() : internal_error("c1's stream stayed open");
  });
  c1.reset();
  const Status closed_cleanly = answer.get();
  EXPECT_TRUE(closed_cleanly.ok()) << closed_cleanly.to_string();
  // c2 keeps its heartbeats on the same loop.
  advance(500ms);
  advance(500ms);
  auto hb = b2->next();
  ASSERT_TRUE(hb) << hb.error().to_string();
  EXPECT_EQ(hb->type, wire::kFrameHeartbeat);
  EXPECT_TRUE(c2->is_open());
  b2->close();
  EXPECT_TRUE(eventually([&] { return !c2->is_open(); }));
}

// A publish the broker may have received fails with kConnectionLost when the
// stream dies before its confirm; one that never left the client fails with
// the plain connection error. A caller can tell "maybe" from "no".
TEST_F(AmqpDriver, UnconfirmedPublishFailsWithConnectionLostAndUnsentOneDoesNot) {
  auto [driver, broker] = pipe();
  auto conn = open(std::move(driver), *broker, /*heartbeat_s=*/0);
  ASSERT_TRUE(conn);
  auto ch_pending = std::async(std::launch::async, [&conn] { return conn->open_channel(5s); });
  ASSERT_TRUE(broker->expect_method<wire::ChannelOpen>(1).ok());
  ASSERT_TRUE(broker->send(1, wire::ChannelOpenOk{}).ok());
  auto ch = ch_pending.get();
  ASSERT_TRUE(ch) << ch.error().to_string();
  auto select = (*ch)->confirm_select(/*window=*/1);
  ASSERT_TRUE(broker->expect_method<wire::ConfirmSelect>(1).ok());
  ASSERT_TRUE(broker->send(1, wire::ConfirmSelectOk{}).ok());
  ASSERT_EQ(select.wait_for(5s), std::future_status::ready);
  ASSERT_TRUE(select.get().ok());

  auto first = (*ch)->publish("", "q", Message{{}, "one"}, PublishOptions{});
  auto second = (*ch)->publish("", "q", Message{{}, "two"}, PublishOptions{});
  // The first goes out (method, header, body); the second waits for the
  // window of one.
  auto publish = broker->expect<wire::BasicPublish>(1);
  ASSERT_TRUE(publish) << publish.error().to_string();
  EXPECT_EQ(publish->routing_key, "q");
  for (std::uint8_t type : {wire::kFrameHeader, wire::kFrameBody}) {
    auto f = broker->next();
    ASSERT_TRUE(f) << f.error().to_string();
    EXPECT_EQ(f->type, type);
  }
  settle();
  EXPECT_TRUE(broker->idle()) << "the second publish went out past a full window";
  broker->close();

  ASSERT_EQ(first.wait_for(5s), std::future_status::ready);
  const Status maybe = first.get();
  EXPECT_EQ(maybe.code(), ErrorCode::kConnectionLost) << maybe.to_string();
  EXPECT_NE(maybe.message().find("may or may not"), std::string_view::npos) << maybe.to_string();
  ASSERT_EQ(second.wait_for(5s), std::future_status::ready);
  const Status unsent = second.get();
  EXPECT_EQ(unsent.code(), ErrorCode::kUnavailable) << unsent.to_string();
}

// connection.blocked holds publishes in the client (the broker would stop
// reading the whole connection at the next one); what was issued after a
// held publish on its channel waits behind it; unblocked sends them in order.
TEST_F(AmqpDriver, BlockedConnectionHoldsPublishesUntilUnblocked) {
  auto [driver, broker] = pipe();
  auto conn = open(std::move(driver), *broker, /*heartbeat_s=*/0);
  ASSERT_TRUE(conn);
  std::promise<std::string> blocked_reason;
  conn->on_blocked([&blocked_reason](bool blocked, const std::string& reason) {
    if (blocked) blocked_reason.set_value(reason);
  });
  auto ch_pending = std::async(std::launch::async, [&conn] { return conn->open_channel(5s); });
  ASSERT_TRUE(broker->expect_method<wire::ChannelOpen>(1).ok());
  ASSERT_TRUE(broker->send(1, wire::ChannelOpenOk{}).ok());
  auto ch = ch_pending.get();
  ASSERT_TRUE(ch) << ch.error().to_string();

  wire::ConnectionBlocked blocked;
  blocked.reason = "low on memory";
  ASSERT_TRUE(broker->send(0, blocked).ok());
  auto reason_f = blocked_reason.get_future();
  ASSERT_EQ(reason_f.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(reason_f.get(), "low on memory");
  EXPECT_TRUE(conn->is_blocked());

  auto held = (*ch)->publish("", "q", Message{{}, "held"}, PublishOptions{});
  auto qos = (*ch)->qos(10);  // issued after the publish: waits behind it
  settle();
  EXPECT_TRUE(broker->idle()) << "a publish went out while the connection was blocked";
  EXPECT_EQ(held.wait_for(0s), std::future_status::timeout);

  ASSERT_TRUE(broker->send(0, wire::ConnectionUnblocked{}).ok());
  auto publish = broker->expect<wire::BasicPublish>(1);
  ASSERT_TRUE(publish) << publish.error().to_string();
  for (std::uint8_t type : {wire::kFrameHeader, wire::kFrameBody}) {
    auto f = broker->next();
    ASSERT_TRUE(f) << f.error().to_string();
    EXPECT_EQ(f->type, type);
  }
  ASSERT_EQ(held.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(held.get().ok());  // no confirm mode: ok once written
  EXPECT_FALSE(conn->is_blocked());
  ASSERT_TRUE(broker->expect_method<wire::BasicQos>(1).ok());
  ASSERT_TRUE(broker->send(1, wire::BasicQosOk{}).ok());
  ASSERT_EQ(qos.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(qos.get().ok());
  broker->close();
  EXPECT_TRUE(eventually([&] { return !conn->is_open(); }));
}

// A loopback TCP socket bound to a free port; listening or not (a bound,
// non-listening port refuses connections, deterministically).
class LoopbackPort {
 public:
  explicit LoopbackPort(bool listen) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    if (listen) {
      EXPECT_EQ(::listen(fd_, 4), 0);
    }
    EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len), 0);
    port_ = ntohs(a.sin_port);
  }
  ~LoopbackPort() { ::close(fd_); }
  LoopbackPort(const LoopbackPort&) = delete;
  LoopbackPort& operator=(const LoopbackPort&) = delete;
  [[nodiscard]] std::uint16_t port() const { return port_; }
  // The next accepted connection as a Stream (5 s at most).
  std::unique_ptr<net::Stream> accept() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return nullptr;
    const int fd = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return nullptr;
    auto s = net::Stream::adopt(fd, "client");
    return s ? std::move(*s) : nullptr;
  }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

TEST(AmqpEndpoints, ConnectSkipsAnUnreachableNodeAndRecordsTheOneItReached) {
  LoopbackPort dead(/*listen=*/false);
  LoopbackPort live(/*listen=*/true);
  ConnectionConfig c;
  c.heartbeat_s = 0;
  c.connect_timeout = 5s;
  c.endpoints = {{"127.0.0.1", dead.port()}, {"127.0.0.1", live.port()}};
  auto pending = std::async(std::launch::async, [c] { return Connection::connect(c); });
  auto stream = live.accept();
  ASSERT_TRUE(stream) << "the client never reached the second endpoint";
  ScriptedBroker broker(std::move(stream));
  const Status hs = broker.handshake(2047, 131072, 0);
  ASSERT_TRUE(hs.ok()) << hs.to_string();
  auto conn = pending.get();
  ASSERT_TRUE(conn) << conn.error().to_string();
  EXPECT_EQ((*conn)->config().port, live.port());
  EXPECT_EQ((*conn)->config().describe(),
            "amqp://guest@127.0.0.1:" + std::to_string(live.port()) + "/");
  broker.close();
  EXPECT_TRUE(eventually([&] { return !(*conn)->is_open(); }));
}

TEST(AmqpEndpoints, NoReachableNodeNamesEveryEndpointTried) {
  LoopbackPort a(/*listen=*/false);
  LoopbackPort b(/*listen=*/false);
  for (bool shuffle : {false, true}) {
    ConnectionConfig c;
    c.connect_timeout = 5s;
    c.endpoints = {{"127.0.0.1", a.port()}, {"127.0.0.1", b.port()}};
    c.shuffle_endpoints = shuffle;
    auto conn = Connection::connect(c);
    ASSERT_FALSE(conn);
    const Status& why = conn.error();
    EXPECT_EQ(why.code(), ErrorCode::kUnavailable) << why.to_string();
    EXPECT_NE(why.message().find("any of 2 endpoints"), std::string_view::npos) << why.to_string();
    for (std::uint16_t port : {a.port(), b.port()}) {
      EXPECT_NE(why.message().find("127.0.0.1:" + std::to_string(port) + " ("),
                std::string_view::npos)
          << why.to_string();
    }
  }
}

}  // namespace
}  // namespace myelin::amqp
