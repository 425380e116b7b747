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

TEST(DuplexPair, BytesFlowBothWaysAndEofAfterShutdown) {
  auto pair = duplex_pair();
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

TEST(DuplexPair, WritevGathersBuffers) {
  auto pair = duplex_pair();
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
  auto c = tcp ? connect_tcp("127.0.0.1", (*l)->port()) : connect_unix(path);
  ASSERT_TRUE(c) << kind << ": " << c.error().to_string();
  ASSERT_EQ(accepted.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
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
