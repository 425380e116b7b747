#include "myelin/net/stream.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <future>
#include <string>

namespace myelin::net {
namespace {

std::span<const std::byte> bytes(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

// Both in-process pairs keep the same contract: the memory pipe and the
// AF_UNIX socketpair.
class InProcessPair : public ::testing::TestWithParam<bool> {
 protected:
  static Result<std::pair<std::unique_ptr<Stream>, std::unique_ptr<Stream>>> make() {
    return GetParam() ? duplex_pair() : socket_pair();
  }
};
INSTANTIATE_TEST_SUITE_P(MemoryAndSocket, InProcessPair, ::testing::Bool(),
                         [](const auto& p) { return p.param ? "memory" : "socketpair"; });

TEST_P(InProcessPair, BytesFlowBothWaysAndEofAfterShutdown) {
  auto pair = make();
  ASSERT_TRUE(pair);
  auto& [a, b] = *pair;
  auto w = a->write(bytes("ping"));
  ASSERT_TRUE(w);
  EXPECT_EQ(w->bytes, 4u);
  std::byte buf[16];
  auto r = b->read(buf);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->bytes, 4u);
  r = b->read(buf);  // non-blocking: nothing more yet
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->would_block);
  ASSERT_TRUE(a->shutdown_write().ok());
  r = b->read(buf);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->eof);
}

TEST_P(InProcessPair, WritevGathersBuffers) {
  auto pair = make();
  ASSERT_TRUE(pair);
  std::string x = "head", y = "body";
  const iovec iov[2] = {{x.data(), x.size()}, {y.data(), y.size()}};
  auto w = pair->first->writev(iov);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->bytes, 8u);
  char buf[16];
  auto r = pair->second->read(std::as_writable_bytes(std::span(buf)));
  ASSERT_TRUE(r);
  EXPECT_EQ(std::string(buf, r->bytes), "headbody");
}

TEST_P(InProcessPair, ClosedPeerEndsReadsAndFailsWrites) {
  auto pair = make();
  ASSERT_TRUE(pair);
  auto& [a, b] = *pair;
  ASSERT_TRUE(a->write(bytes("last")).has_value());
  a->close();
  std::byte buf[16];
  auto r = b->read(buf);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->bytes, 4u);  // what was written before the close still arrives
  r = b->read(buf);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->eof);
  auto w = b->write(bytes("anyone?"));
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().message().find(b->peer()), std::string_view::npos) << w.error().to_string();
}

// ready_now() answers without blocking and without moving bytes: not
// readable while empty, readable once bytes wait (and still after a look),
// not readable again once they are read, readable at end of stream; a fresh
// stream is writable.
TEST_P(InProcessPair, ReadyNowReportsReadinessWithoutBlocking) {
  auto pair = make();
  ASSERT_TRUE(pair);
  auto& [a, b] = *pair;
  EXPECT_FALSE(b->ready_now(kIoReadable));
  EXPECT_TRUE(a->ready_now(kIoWritable));
  ASSERT_TRUE(a->write(bytes("hi")));
  EXPECT_TRUE(b->ready_now(kIoReadable));
  EXPECT_TRUE(b->ready_now(kIoReadable));  // looking took nothing
  std::byte buf[8];
  auto r = b->read(buf);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->bytes, 2u);
  EXPECT_FALSE(b->ready_now(kIoReadable));
  ASSERT_TRUE(a->shutdown_write().ok());
  EXPECT_TRUE(b->ready_now(kIoReadable));  // the read that follows sees end of stream
  r = b->read(buf);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->eof);
}

TEST_P(InProcessPair, WaitTimesOutWithTheStreamInTheError) {
  auto pair = make();
  ASSERT_TRUE(pair);
  const Status s = pair->first->wait(kIoReadable, mono_now() + std::chrono::milliseconds(20));
  EXPECT_EQ(s.code(), ErrorCode::kDeadlineExceeded);
  EXPECT_NE(s.message().find(pair->first->peer()), std::string_view::npos) << s.to_string();
  EXPECT_NE(s.message().find("read"), std::string_view::npos) << s.to_string();
  EXPECT_TRUE(pair->first->wait(kIoWritable, mono_now()).ok());  // room to write
}

void accept_and_echo(const char* kind, bool tcp) {
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop);
  std::unique_ptr<Stream> server_side;
  std::promise<void> accepted;
  const std::string path = "/tmp/myelin_net_test_" + std::to_string(::getpid()) + ".sock";
  auto on_accept = [&](std::unique_ptr<Stream> s) {
    server_side = std::move(s);
    accepted.set_value();
  };
  auto l = tcp ? Listener::tcp(**loop, "127.0.0.1", 0, on_accept)
               : Listener::unix_socket(**loop, path, on_accept);
  ASSERT_TRUE(l) << l.error().to_string();
  ASSERT_TRUE((*loop)->start().ok());
  // By name: peer() says which address the name led to.
  auto c = tcp ? connect_tcp("localhost", (*l)->port()) : connect_unix(path);
  ASSERT_TRUE(c) << kind << ": " << c.error().to_string();
  ASSERT_EQ(accepted.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
  if (tcp) {
    EXPECT_EQ((*c)->peer(), "127.0.0.1:" + std::to_string((*l)->port()));
    EXPECT_EQ(server_side->peer().rfind("127.0.0.1:", 0), 0u) << server_side->peer();
    EXPECT_NE(server_side->peer(), "127.0.0.1:0");
  } else {
    EXPECT_EQ((*c)->peer(), "unix:" + path);
    EXPECT_EQ(server_side->peer(), "unix:" + path + " (pid " + std::to_string(::getpid()) +
                                       ", uid " + std::to_string(::getuid()) + ")");
  }
  ASSERT_TRUE((*c)->write(bytes("hi")).has_value());
  (void)(*loop)->submit([&] { (*l)->close(); });
  ASSERT_TRUE((*loop)->shutdown().ok());
  std::byte buf[4];
  for (int i = 0; i < 100; ++i) {
    auto r = server_side->read(buf);
    ASSERT_TRUE(r);
    if (!r->would_block) {
      EXPECT_EQ(r->bytes, 2u);
      return;
    }
    ::usleep(1000);
  }
  FAIL() << kind << ": nothing arrived";
}

TEST(Listener, TcpAcceptsOnTheLoop) { accept_and_echo("tcp", true); }
TEST(Listener, UnixAcceptsOnTheLoop) { accept_and_echo("unix", false); }

TEST(Connect, RefusedPortIsAClearError) {
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop);
  std::uint16_t port = 0;
  {
    auto l = Listener::tcp(**loop, "127.0.0.1", 0, [](std::unique_ptr<Stream>) {});
    ASSERT_TRUE(l);
    port = (*l)->port();
  }  // closed again: nothing listens there now
  auto c = connect_tcp("127.0.0.1", port, std::chrono::seconds(1));
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("127.0.0.1"), std::string_view::npos);
}

}  // namespace
}  // namespace myelin::net
