// secure::Server: accept loop, per-connection handlers, closed connections
// released, and handlers that drop the last reference from their callbacks.
#include "myelin/secure/server.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <string>

#include "src/secure/test_util.h"

namespace myelin::secure {
namespace {

using testing::World;

constexpr auto kWait = std::chrono::seconds(10);

std::vector<std::byte> text(std::string_view s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return {p, p + s.size()};
}

// What the handlers saw, written on the loop thread and read by the test
// after a round trip through the loop.
struct Seen {
  std::atomic<int> handlers_alive{0};
  std::atomic<int> established{0};
  std::atomic<int> closed_ok{0};
  std::atomic<int> closed_error{0};
  std::vector<std::string> peers;
};

struct EchoHandler : ConnectionHandler {
  explicit EchoHandler(Seen& s) : seen(s) { ++seen.handlers_alive; }
  ~EchoHandler() override { --seen.handlers_alive; }
  void on_established(Connection& c, const SessionInfo&) override {
    ++seen.established;
    seen.peers.push_back(c.peer());
  }
  void on_message(Connection& c, std::span<const std::byte> m) override { (void)c.send(m); }
  void on_closed(Connection&, const Status& reason) override {
    ++(reason.ok() ? seen.closed_ok : seen.closed_error);
  }
  Seen& seen;
};

struct Fixture {
  World w;
  Seen seen;
  std::unique_ptr<EventLoop> loop;
  std::unique_ptr<Server> server;

  explicit Fixture(Server::HandlerFactory factory = {}) {
    auto l = EventLoop::create();
    EXPECT_TRUE(l);
    loop = std::move(*l);
    ServerOptions o;
    o.session = w.responder(Mode::kResponder, Mode::kMutual);
    if (!factory) factory = [this](Connection&) { return std::make_unique<EchoHandler>(seen); };
    auto s = Server::create(*loop, std::move(o), std::move(factory));
    EXPECT_TRUE(s) << s.error().to_string();
    server = std::move(*s);
  }
  ~Fixture() {
    (void)loop->submit([this] { server.reset(); });
    (void)loop->shutdown();
  }
  // Runs `fn` on the loop thread and returns its result.
  template <typename F>
  auto on_loop(F fn) -> decltype(fn()) {
    std::promise<decltype(fn())> p;
    EXPECT_TRUE(loop->submit([&] { p.set_value(fn()); }).ok());
    auto f = p.get_future();
    EXPECT_EQ(f.wait_for(kWait), std::future_status::ready);
    return f.get();
  }
  // Waits (bounded) until the server holds `n` connections.
  bool connections_become(std::size_t n) {
    const MonoTime deadline = mono_now() + kWait;
    while (mono_now() < deadline) {
      if (on_loop([this] { return server ? server->connections() : std::size_t{0}; }) == n) {
        return true;
      }
      ::usleep(2000);
    }
    return false;
  }
  Result<std::unique_ptr<BlockingChannel>> client(std::unique_ptr<net::Stream> s) {
    return BlockingChannel::handshake(std::move(s), w.initiator(Mode::kResponder, Mode::kMutual));
  }
};

void echo_and_release(bool tcp) {
  Fixture f;
  const std::string path = "/tmp/myelin_server_test_" + std::to_string(::getpid()) + ".sock";
  std::uint16_t port = 0;
  if (tcp) {
    auto p = f.server->listen_tcp("127.0.0.1", 0);
    ASSERT_TRUE(p) << p.error().to_string();
    port = *p;
  } else {
    ASSERT_TRUE(f.server->listen_unix(path).ok());
  }
  ASSERT_TRUE(f.loop->start().ok());
  for (int round = 0; round < 3; ++round) {
    auto s = tcp ? net::connect_tcp("127.0.0.1", port) : net::connect_unix(path);
    ASSERT_TRUE(s) << s.error().to_string();
    auto c = f.client(std::move(*s));
    ASSERT_TRUE(c) << c.error().to_string();
    ASSERT_TRUE((*c)->send(text("ping " + std::to_string(round))).ok());
    auto back = (*c)->receive_copy();
    ASSERT_TRUE(back) << back.error().to_string();
    EXPECT_EQ(*back, text("ping " + std::to_string(round)));
    EXPECT_TRUE(f.connections_become(1));
    ASSERT_TRUE((*c)->close().ok());
    // The closed connection is released (handler included), not kept until
    // shutdown.
    EXPECT_TRUE(f.connections_become(0));
  }
  EXPECT_EQ(f.seen.established.load(), 3);
  EXPECT_EQ(f.seen.closed_ok.load(), 3);
  EXPECT_EQ(f.seen.closed_error.load(), 0);
  EXPECT_EQ(f.seen.handlers_alive.load(), 0);
  const auto peers = f.on_loop([&] { return f.seen.peers; });
  ASSERT_EQ(peers.size(), 3u);
  for (const std::string& p : peers) {
    if (tcp) {
      EXPECT_EQ(p.rfind("127.0.0.1:", 0), 0u) << p;
    } else {
      EXPECT_NE(p.find("(pid " + std::to_string(::getpid())), std::string::npos) << p;
    }
  }
}

TEST(SecureServer, TcpEchoAndClosedConnectionsAreReleased) { echo_and_release(true); }
TEST(SecureServer, UnixEchoAndClosedConnectionsAreReleased) { echo_and_release(false); }

TEST(SecureServer, AbruptClientIsReportedAsAnError) {
  Fixture f;
  auto pair = net::duplex_pair();
  ASSERT_TRUE(pair);
  ASSERT_TRUE(f.server->adopt(std::move(pair->second)).ok());
  ASSERT_TRUE(f.loop->start().ok());
  {
    auto c = f.client(std::move(pair->first));
    ASSERT_TRUE(c) << c.error().to_string();
    EXPECT_TRUE(f.connections_become(1));
  }  // destroyed without a Close: the stream just ends
  EXPECT_TRUE(f.connections_become(0));
  EXPECT_EQ(f.seen.closed_error.load(), 1);
  EXPECT_EQ(f.seen.handlers_alive.load(), 0);
}

// A handler that destroys the server, which owns the connection and the
// handler itself, from inside its callback.
struct DestroyingHandler : ConnectionHandler {
  DestroyingHandler(std::unique_ptr<Server>& s, bool in_on_message, std::atomic<int>& count)
      : server(s), on_message_kills(in_on_message), alive(count) {
    ++alive;
  }
  ~DestroyingHandler() override { --alive; }
  void on_message(Connection& c, std::span<const std::byte> m) override {
    (void)c.send(m);
    if (on_message_kills) server.reset();
  }
  void on_closed(Connection&, const Status&) override {
    if (!on_message_kills) server.reset();
  }
  std::unique_ptr<Server>& server;
  bool on_message_kills;
  std::atomic<int>& alive;
};

void server_destroyed_from_callback(bool in_on_message) {
  std::atomic<int> alive{0};
  std::unique_ptr<Server>* slot = nullptr;
  Fixture f([&](Connection&) {
    return std::make_unique<DestroyingHandler>(*slot, in_on_message, alive);
  });
  slot = &f.server;
  auto pair = net::duplex_pair();
  ASSERT_TRUE(pair);
  ASSERT_TRUE(f.server->adopt(std::move(pair->second)).ok());
  ASSERT_TRUE(f.loop->start().ok());
  auto c = f.client(std::move(pair->first));
  ASSERT_TRUE(c) << c.error().to_string();
  ASSERT_TRUE((*c)->send(text("bye")).ok());
  auto back = (*c)->receive_copy();
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(*back, text("bye"));
  if (in_on_message) {
    // The server went away inside on_message and sent Close(normal) on its
    // way out; it does not linger for the answer (whose write may fail).
    auto next = (*c)->receive_copy();
    ASSERT_FALSE(next);
    EXPECT_EQ((*c)->session().state(), SessionState::kClosed);
    EXPECT_TRUE((*c)->session().close_reason().ok()) << (*c)->session().close_reason().to_string();
  } else {
    ASSERT_TRUE((*c)->close().ok());
  }
  EXPECT_TRUE(f.on_loop([&] { return f.server == nullptr; }));
  // Everything the server owned is released once the callback unwound.
  EXPECT_EQ(f.on_loop([&] { return alive.load(); }), 0);
}

TEST(SecureServer, HandlerMayDestroyTheServerInOnMessage) { server_destroyed_from_callback(true); }
TEST(SecureServer, HandlerMayDestroyTheServerInOnClosed) { server_destroyed_from_callback(false); }

// Work that answers later holds a weak_ptr: once the connection closed and
// was released, the late answer finds nothing to send to.
TEST(SecureServer, LateReplyThroughAWeakPointerFindsTheConnectionGone) {
  std::promise<std::weak_ptr<Connection>> held;
  struct Holder : ConnectionHandler {
    explicit Holder(std::promise<std::weak_ptr<Connection>>& slot) : out(slot) {}
    void on_message(Connection& c, std::span<const std::byte>) override { out.set_value(c.weak()); }
    std::promise<std::weak_ptr<Connection>>& out;
  };
  Fixture f([&](Connection&) { return std::make_unique<Holder>(held); });
  auto pair = net::duplex_pair();
  ASSERT_TRUE(pair);
  ASSERT_TRUE(f.server->adopt(std::move(pair->second)).ok());
  ASSERT_TRUE(f.loop->start().ok());
  auto c = f.client(std::move(pair->first));
  ASSERT_TRUE(c) << c.error().to_string();
  ASSERT_TRUE((*c)->send(text("answer me later")).ok());
  auto fut = held.get_future();
  ASSERT_EQ(fut.wait_for(kWait), std::future_status::ready);
  std::weak_ptr<Connection> weak = fut.get();
  EXPECT_TRUE(f.on_loop([&] { return !weak.expired(); }));
  ASSERT_TRUE((*c)->close().ok());
  EXPECT_TRUE(f.connections_become(0));
  EXPECT_TRUE(f.on_loop([&] { return weak.lock() == nullptr; }));
}

TEST(SecureServer, FactoryMayRefuseAConnection) {
  Fixture f([](Connection&) { return std::unique_ptr<ConnectionHandler>(); });
  auto pair = net::duplex_pair();
  ASSERT_TRUE(pair);
  const Status s = f.server->adopt(std::move(pair->second));
  EXPECT_EQ(s.code(), ErrorCode::kFailedPrecondition);
  ASSERT_TRUE(f.loop->start().ok());
  auto c = f.client(std::move(pair->first));
  EXPECT_FALSE(c);
  EXPECT_TRUE(f.connections_become(0));
}

TEST(SecureServer, CreateChecksItsArguments) {
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop);
  EXPECT_EQ(Server::create(**loop, {}, {}).error().code(), ErrorCode::kInvalidArgument);
  ServerOptions o;
  o.max_connections = 0;
  auto f = [](Connection&) { return std::unique_ptr<ConnectionHandler>(); };
  EXPECT_EQ(Server::create(**loop, std::move(o), f).error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace myelin::secure
