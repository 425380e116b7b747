// The channel on real transports: EventLoop-driven responder, blocking
// initiator, over the duplex pair, TCP and a Unix socket.
#include "myelin/secure/channel.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <future>
#include <mutex>
#include <thread>

#include "src/secure/test_util.h"

namespace myelin::secure {
namespace {

using testing::World;

// An echo server on a loop: one SecureChannel per accepted stream.
struct EchoServer {
  World& w;
  std::unique_ptr<EventLoop> loop;
  std::vector<std::unique_ptr<SecureChannel>> channels;
  std::promise<Status> closed;
  bool closed_set = false;

  explicit EchoServer(World& world) : w(world) {
    auto l = EventLoop::create();
    EXPECT_TRUE(l);
    loop = std::move(*l);
  }
  void adopt(std::unique_ptr<net::Stream> s) {
    SecureChannel** self = new SecureChannel*(nullptr);  // filled after open()
    ChannelCallbacks cb;
    cb.on_message = [self](std::span<const std::byte> m) { (void)(*self)->send(m); };
    cb.on_closed = [this](const Status& st) {
      if (!closed_set) {
        closed_set = true;
        closed.set_value(st);
      }
    };
    auto ch = SecureChannel::open(*loop, std::move(s), w.responder(Mode::kResponder, Mode::kMutual),
                                  std::move(cb));
    ASSERT_TRUE(ch) << ch.error().to_string();
    *self = ch->get();
    holders.emplace_back(self);
    channels.push_back(std::move(*ch));
  }
  ~EchoServer() {
    (void)loop->submit([this] { channels.clear(); });
    (void)loop->shutdown();
  }
  std::vector<std::unique_ptr<SecureChannel*>> holders;
};

void round_trips(BlockingChannel& c) {
  for (std::size_t size : {1u, 1536u, 70'000u, 1'048'576u}) {
    std::vector<std::byte> m(size, std::byte(size & 0xff));
    ASSERT_TRUE(c.send(m).ok());
    auto back = c.receive_copy();
    ASSERT_TRUE(back) << back.error().to_string();
    EXPECT_EQ(*back, m);
  }
}

// A blocking initiator joined to `server` over a duplex pair, in mutual mode.
Result<std::unique_ptr<BlockingChannel>> client_of(EchoServer& server) {
  auto pair = net::duplex_pair();
  if (!pair) return pair.error();
  server.adopt(std::move(pair->second));
  MYELIN_RETURN_IF_ERROR(server.loop->start());
  return BlockingChannel::handshake(std::move(pair->first),
                                    server.w.initiator(Mode::kMutual, Mode::kMutual));
}

TEST(SecureChannel, DuplexPairEchoAndCleanClose) {
  World w;
  EchoServer server(w);
  auto c = client_of(server);
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ((*c)->info().mode, Mode::kMutual);
  round_trips(**c);
  ASSERT_TRUE((*c)->close().ok());
  auto f = server.closed.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_TRUE(f.get().ok());  // a normal close on the server side too
  // The server answered with its own Close: the client sees the end.
  auto more = (*c)->receive_copy(std::chrono::seconds(2));
  EXPECT_FALSE(more);
}

// Passes everything to the stream it wraps and notes the size of each write.
class RecordingStream final : public net::Stream {
 public:
  explicit RecordingStream(std::unique_ptr<net::Stream> inner)
      : Stream("recording " + inner->peer()), inner_(std::move(inner)) {}
  Result<net::IoResult> read(std::span<std::byte> into) override { return inner_->read(into); }
  Result<net::IoResult> writev(std::span<const iovec> iov) override {
    auto r = inner_->writev(iov);
    if (r && r->bytes > 0) {
      std::lock_guard lock(mu_);
      writes_.push_back(r->bytes);
    }
    return r;
  }
  Status shutdown_write() override { return inner_->shutdown_write(); }
  Status watch(EventLoop& loop, std::uint32_t interest, EventLoop::IoCallback on_io) override {
    return inner_->watch(loop, interest, std::move(on_io));
  }
  Status set_interest(std::uint32_t interest) override { return inner_->set_interest(interest); }
  Status wait(std::uint32_t events, MonoTime deadline) override {
    return inner_->wait(events, deadline);
  }
  bool ready_now(std::uint32_t events) override { return inner_->ready_now(events); }
  void close() override { inner_->close(); }
  std::vector<std::size_t> writes() const {
    std::lock_guard lock(mu_);
    return writes_;
  }

 private:
  std::unique_ptr<net::Stream> inner_;
  mutable std::mutex mu_;
  std::vector<std::size_t> writes_;
};

// A long message sent on the loop leaves record by record while the rest is
// sealed: with room in the pipe for all of it, the channel still writes it
// in pieces of about one record, not in one write after the last seal.
TEST(SecureChannel, LongMessageLeavesWhileItIsSealed) {
  World w;
  EchoServer server(w);
  auto pair = net::duplex_pair(8u << 20);
  ASSERT_TRUE(pair);
  auto recording = std::make_unique<RecordingStream>(std::move(pair->second));
  RecordingStream* rec = recording.get();
  server.adopt(std::move(recording));
  ASSERT_TRUE(server.loop->start().ok());
  auto c =
      BlockingChannel::handshake(std::move(pair->first), w.initiator(Mode::kMutual, Mode::kMutual));
  ASSERT_TRUE(c) << c.error().to_string();
  const std::size_t before = rec->writes().size();
  std::vector<std::byte> m(1 << 20, std::byte{7});
  ASSERT_TRUE((*c)->send(m).ok());
  auto back = (*c)->receive_copy();
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(*back, m);
  const std::vector<std::size_t> all = rec->writes();
  const std::vector<std::size_t> echo(all.begin() + static_cast<std::ptrdiff_t>(before), all.end());
  std::size_t total = 0, largest = 0;
  for (std::size_t n : echo) {
    total += n;
    largest = std::max(largest, n);
  }
  EXPECT_GE(total, m.size());
  EXPECT_GE(echo.size(), 8u);
  EXPECT_LE(largest, 256u * 1024) << "the echo left in " << echo.size() << " writes";
}

TEST(SecureChannel, QueuedMessagesCoalesceAndGoOutWithTheNextReceive) {
  World w;
  EchoServer server(w);
  auto c = client_of(server);
  ASSERT_TRUE(c) << c.error().to_string();
  BlockingChannel& ch = **c;
  // 10 small messages stay sealed in the output: nothing is written yet.
  for (int i = 0; i < 10; ++i) {
    std::vector<std::byte> m(1536, std::byte(i));
    ASSERT_TRUE(ch.queue(m).ok());
  }
  EXPECT_GT(ch.session().output().size(), 10u * 1536);
  // Past the coalescing threshold queue() writes, so the output stays bounded.
  for (int i = 10; i < 200; ++i) {
    std::vector<std::byte> m(1536, std::byte(i));
    ASSERT_TRUE(ch.queue(m).ok());
    ASSERT_LT(ch.session().output().size(), 64u * 1024 + 2048);
  }
  // receive() writes what still waits, so the echoes of all 200 come back in order.
  for (int i = 0; i < 200; ++i) {
    auto back = ch.receive_copy();
    ASSERT_TRUE(back) << "echo " << i << ": " << back.error().to_string();
    ASSERT_EQ(back->size(), 1536u);
    EXPECT_EQ((*back)[0], std::byte(i));
  }
  ASSERT_TRUE(ch.queue(std::vector<std::byte>(7, std::byte{9})).ok());
  ASSERT_TRUE(ch.flush().ok());
  EXPECT_EQ(ch.session().output().size(), 0u);
  auto last = ch.receive_copy();
  ASSERT_TRUE(last);
  EXPECT_EQ(last->size(), 7u);
  ASSERT_TRUE(ch.close().ok());
}

void over_listener(bool tcp) {
  World w;
  EchoServer server(w);
  const std::string path = "/tmp/myelin_sc_test_" + std::to_string(::getpid()) + ".sock";
  auto on_accept = [&](std::unique_ptr<net::Stream> s) { server.adopt(std::move(s)); };
  auto l = tcp ? net::Listener::tcp(*server.loop, "127.0.0.1", 0, on_accept)
               : net::Listener::unix_socket(*server.loop, path, on_accept);
  ASSERT_TRUE(l);
  ASSERT_TRUE(server.loop->start().ok());
  auto s = tcp ? net::connect_tcp("127.0.0.1", (*l)->port()) : net::connect_unix(path);
  ASSERT_TRUE(s);
  SessionConfig ic = w.initiator(Mode::kResponder, Mode::kResponder);
  ic.provider = nullptr;  // a host client without attestation
  auto c = BlockingChannel::handshake(std::move(*s), ic);
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ((*c)->info().mode, Mode::kResponder);
  round_trips(**c);
  ASSERT_TRUE((*c)->close().ok());
  auto f = server.closed.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  // The listener belongs to the loop thread: close and destroy it there, and
  // wait, so the loop never touches it after this frame is gone.
  std::promise<void> listener_gone;
  ASSERT_TRUE(server.loop
                  ->submit([&] {
                    l->reset();
                    listener_gone.set_value();
                  })
                  .ok());
  listener_gone.get_future().wait();
}

TEST(SecureChannel, TcpEcho) { over_listener(true); }
TEST(SecureChannel, UnixSocketEcho) { over_listener(false); }

TEST(SecureChannel, RejectedMeasurementFailsTheClientHandshake) {
  World w;
  EchoServer server(w);
  auto pair = net::duplex_pair();
  ASSERT_TRUE(pair);
  server.adopt(std::move(pair->second));
  ASSERT_TRUE(server.loop->start().ok());
  SessionConfig ic = w.initiator(Mode::kMutual, Mode::kMutual);
  ic.policy.rules = {{"code", {to_bytes("something-else")}}};
  auto c = BlockingChannel::handshake(std::move(pair->first), ic);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), ErrorCode::kAuthenticationFailed);
  auto f = server.closed.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(f.get().code(), ErrorCode::kAuthenticationFailed);  // opaque "rejected"
}

TEST(SecureChannel, SilentPeerHitsTheHandshakeTimeout) {
  World w;
  auto pair = net::duplex_pair();
  ASSERT_TRUE(pair);
  SessionConfig ic = w.initiator(Mode::kMutual, Mode::kMutual);
  const MonoTime t0 = mono_now();
  auto c = BlockingChannel::handshake(std::move(pair->first), ic, std::chrono::milliseconds(200));
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), ErrorCode::kDeadlineExceeded);
  EXPECT_LT(mono_now() - t0, std::chrono::seconds(2));
}

TEST(SecureChannel, LoopSideHandshakeTimeoutClosesTheChannel) {
  World w;
  auto loop = EventLoop::create();
  ASSERT_TRUE(loop);
  auto pair = net::duplex_pair();
  ASSERT_TRUE(pair);
  std::promise<Status> closed;
  std::unique_ptr<SecureChannel> ch;
  SessionConfig rc = w.responder(Mode::kMutual, Mode::kMutual);
  rc.handshake_timeout = std::chrono::milliseconds(150);
  ChannelCallbacks cb;
  cb.on_closed = [&](const Status& s) { closed.set_value(s); };
  auto opened = SecureChannel::open(**loop, std::move(pair->second), rc, std::move(cb),
                                    std::chrono::milliseconds(20));
  ASSERT_TRUE(opened);
  ch = std::move(*opened);
  ASSERT_TRUE((*loop)->start().ok());
  auto f = closed.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(f.get().code(), ErrorCode::kDeadlineExceeded);
  (void)(*loop)->submit([&] { ch.reset(); });
  (void)(*loop)->shutdown();
}

}  // namespace
}  // namespace myelin::secure
