#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <future>
#include <string>

#include "myelin/loop/event_loop.h"
#include "src/loop/test_util.h"

namespace myelin {
namespace {

using testing::make_loop;

struct Fds {
  int a = -1, b = -1;
  ~Fds() {
    if (a >= 0) ::close(a);
    if (b >= 0) ::close(b);
  }
};

Fds make_pipe() {
  Fds f;
  int p[2];
  if (::pipe(p) != 0) std::abort();
  f.a = p[0];  // read end
  f.b = p[1];  // write end
  return f;
}

Fds make_socketpair() {
  Fds f;
  int s[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, s) != 0) std::abort();
  f.a = s[0];
  f.b = s[1];
  return f;
}

TEST(EventLoopIo, PipeReadableRunsTheCallbackOnTheLoopThread) {
  Fds p = make_pipe();
  auto loop = make_loop();
  std::promise<std::string> got;
  ASSERT_TRUE(loop->register_fd(
                      p.a, kIoReadable,
                      [&](std::uint32_t ev) {
                        EXPECT_TRUE(loop->in_loop_thread());
                        EXPECT_NE(ev & kIoReadable, 0u);
                        std::array<char, 16> buf{};
                        const ssize_t n = ::read(p.a, buf.data(), buf.size());
                        EXPECT_TRUE(loop->unregister_fd(p.a).ok());  // inside its own callback
                        got.set_value(std::string(buf.data(), n > 0 ? static_cast<size_t>(n) : 0));
                      })
                  .ok());
  ASSERT_TRUE(loop->start().ok());
  EXPECT_EQ(loop->register_fd(p.b, kIoWritable, [](std::uint32_t) {}).code(),
            ErrorCode::kFailedPrecondition);  // off the loop thread once it runs
  ASSERT_EQ(::write(p.b, "ping", 4), 4);
  EXPECT_EQ(got.get_future().get(), "ping");
  // Unregistered: more data must not call the callback again (it would set the promise twice).
  ASSERT_EQ(::write(p.b, "more", 4), 4);
  std::promise<void> flushed;
  ASSERT_TRUE(loop->submit([&] { flushed.set_value(); }).ok());
  flushed.get_future().wait();
  EXPECT_TRUE(loop->shutdown().ok());
}

TEST(EventLoopIo, SocketpairWritableThenReadableViaModify) {
  Fds s = make_socketpair();
  auto loop = make_loop();
  std::promise<std::string> echoed;
  std::string received;
  ASSERT_TRUE(loop->register_fd(s.a, kIoWritable,
                                [&](std::uint32_t ev) {
                                  if ((ev & kIoWritable) != 0) {
                                    ASSERT_EQ(::write(s.a, "hello", 5), 5);
                                    EXPECT_TRUE(loop->modify_fd(s.a, kIoReadable).ok());
                                    return;
                                  }
                                  std::array<char, 16> buf{};
                                  const ssize_t n = ::read(s.a, buf.data(), buf.size());
                                  if (n > 0) received.append(buf.data(), static_cast<size_t>(n));
                                  if (received.size() >= 5) {
                                    EXPECT_TRUE(loop->unregister_fd(s.a).ok());
                                    echoed.set_value(received);
                                  }
                                })
                  .ok());
  ASSERT_TRUE(loop->register_fd(s.b, kIoReadable,
                                [&](std::uint32_t) {
                                  std::array<char, 16> buf{};
                                  const ssize_t n = ::read(s.b, buf.data(), buf.size());
                                  if (n > 0) {
                                    ASSERT_EQ(::write(s.b, buf.data(), static_cast<size_t>(n)), n);
                                  }
                                })
                  .ok());
  ASSERT_TRUE(loop->start().ok());
  EXPECT_EQ(echoed.get_future().get(), "hello");
  EXPECT_TRUE(loop->shutdown().ok());
}

TEST(EventLoopIo, UnregisteringAnotherReadyFdInsideACallbackSuppressesItsEvent) {
  Fds p1 = make_pipe();
  Fds p2 = make_pipe();
  auto loop = make_loop();
  int calls = 0;
  auto cb = [&](int self, int other) {
    return [&, self, other](std::uint32_t) {
      ++calls;
      char c;
      (void)::read(self, &c, 1);
      EXPECT_TRUE(loop->unregister_fd(self).ok());
      // Both were ready in the same epoll batch; whichever runs first removes the other.
      (void)loop->unregister_fd(other);
    };
  };
  ASSERT_TRUE(loop->register_fd(p1.a, kIoReadable, cb(p1.a, p2.a)).ok());
  ASSERT_TRUE(loop->register_fd(p2.a, kIoReadable, cb(p2.a, p1.a)).ok());
  ASSERT_EQ(::write(p1.b, "x", 1), 1);
  ASSERT_EQ(::write(p2.b, "y", 1), 1);
  ASSERT_TRUE(loop->submit([&] {
                    // Let the I/O phase run once, then stop.
                    (void)loop->schedule(std::chrono::milliseconds(5),
                                         [&] { (void)loop->shutdown(); });
                  })
                  .ok());
  EXPECT_TRUE(loop->run().ok());
  EXPECT_EQ(calls, 1);
}

TEST(EventLoopIo, RegistrationErrorsAreReported) {
  Fds p = make_pipe();
  auto loop = make_loop();
  EXPECT_EQ(loop->register_fd(-1, kIoReadable, [](std::uint32_t) {}).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(loop->register_fd(p.a, kIoHangup, [](std::uint32_t) {}).code(),
            ErrorCode::kInvalidArgument);
  ASSERT_TRUE(loop->register_fd(p.a, kIoReadable, [](std::uint32_t) {}).ok());
  EXPECT_EQ(loop->register_fd(p.a, kIoReadable, [](std::uint32_t) {}).code(),
            ErrorCode::kAlreadyExists);
  EXPECT_EQ(loop->modify_fd(p.b, kIoWritable).code(), ErrorCode::kNotFound);
  EXPECT_EQ(loop->unregister_fd(p.b).code(), ErrorCode::kNotFound);
  EXPECT_TRUE(loop->unregister_fd(p.a).ok());
  const Status bad = loop->register_fd(1 << 20, kIoReadable, [](std::uint32_t) {});
  EXPECT_EQ(bad.code(), ErrorCode::kIoError);
  EXPECT_NE(bad.message().find("epoll_ctl"), std::string_view::npos) << bad.to_string();
}

TEST(EventLoopIo, HangupIsReportedWhenThePeerCloses) {
  Fds s = make_socketpair();
  auto loop = make_loop();
  std::promise<std::uint32_t> events;
  ASSERT_TRUE(loop->register_fd(s.a, kIoReadable,
                                [&](std::uint32_t ev) {
                                  EXPECT_TRUE(loop->unregister_fd(s.a).ok());
                                  events.set_value(ev);
                                })
                  .ok());
  ASSERT_TRUE(loop->start().ok());
  ::close(s.b);
  s.b = -1;
  EXPECT_NE(events.get_future().get() & kIoHangup, 0u);
  EXPECT_TRUE(loop->shutdown().ok());
}

}  // namespace
}  // namespace myelin
