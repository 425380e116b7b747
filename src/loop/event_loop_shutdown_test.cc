#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "myelin/loop/event_loop.h"
#include "src/loop/test_util.h"

namespace myelin {
namespace {

using std::chrono::milliseconds;
using testing::eventually;
using testing::make_loop;

TEST(EventLoopShutdown, RunsEverythingQueuedBeforeIt) {
  auto loop = make_loop();
  std::atomic<int> ran{0};
  std::promise<void> gate;
  std::shared_future<void> open = gate.get_future().share();
  ASSERT_TRUE(loop->start().ok());
  ASSERT_TRUE(loop->submit([open] { open.wait(); }).ok());  // holds the loop busy
  for (int i = 0; i < 10000; ++i) ASSERT_TRUE(loop->submit([&] { ++ran; }).ok());
  // shutdown() refuses new work at once, then waits for the queue to drain.
  std::thread stopper([&] { EXPECT_TRUE(loop->shutdown().ok()); });
  ASSERT_TRUE(eventually([&] { return loop->submit([] {}).code() == ErrorCode::kClosed; }));
  EXPECT_EQ(ran.load(), 0);
  gate.set_value();
  stopper.join();
  EXPECT_EQ(ran.load(), 10000);
  EXPECT_EQ(loop->state(), LoopState::kTerminated);
  EXPECT_EQ(loop->stats().tasks_dropped, 0u);
}

TEST(EventLoopShutdown, BeforeTheLoopEverRanDrainsOnTheCaller) {
  auto loop = make_loop();
  std::vector<int> order;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(loop->submit([&order, i] { order.push_back(i); }).ok());
  EXPECT_TRUE(loop->shutdown().ok());
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(loop->state(), LoopState::kTerminated);
  EXPECT_EQ(loop->run().code(), ErrorCode::kFailedPrecondition);
}

TEST(EventLoopShutdown, PendingTimersAreCancelledNotRun) {
  auto loop = make_loop();
  ASSERT_TRUE(loop->start().ok());
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> watch = token;
  std::atomic<int> fired{0};
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(loop->schedule(std::chrono::hours(1), [&fired, token] { ++fired; }).has_value());
  }
  token.reset();
  std::promise<void> seen;
  ASSERT_TRUE(loop->submit([&] { seen.set_value(); }).ok());  // timers are in place
  seen.get_future().wait();
  EXPECT_TRUE(loop->shutdown(mono_now() + std::chrono::seconds(5)).ok());
  EXPECT_EQ(fired.load(), 0);
  EXPECT_TRUE(watch.expired());  // the callbacks were destroyed
  EXPECT_EQ(loop->stats().timers_cancelled_at_stop, 5u);
  EXPECT_EQ(loop->schedule(milliseconds(1), [] {}).error().code(), ErrorCode::kClosed);
}

TEST(EventLoopShutdown, ProducersStillSubmittingLoseNothingThatWasAccepted) {
  auto loop = make_loop();
  ASSERT_TRUE(loop->start().ok());
  constexpr int kProducers = 4;
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> ran{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&] {
      while (!go.load()) std::this_thread::yield();
      for (;;) {
        const Status s = loop->submit([&] { ran.fetch_add(1, std::memory_order_relaxed); });
        if (!s.ok()) {
          EXPECT_EQ(s.code(), ErrorCode::kClosed);
          return;
        }
        accepted.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  go = true;
  ASSERT_TRUE(eventually([&] { return ran.load() > 20000; }));
  EXPECT_TRUE(loop->shutdown().ok());
  for (auto& t : producers) t.join();
  EXPECT_EQ(ran.load(), accepted.load());
  EXPECT_EQ(loop->stats().tasks_dropped, 0u);
}

TEST(EventLoopShutdown, DeadlineDropsWhatDidNotRunAndSaysHowMuch) {
  FakeClock clock;
  EventLoopOptions o;
  o.clock = &clock;
  auto loop = make_loop(o);
  int ran = 0;
  // The first task stops the loop with a deadline it then moves past.
  ASSERT_TRUE(loop->submit([&] {
                    ++ran;
                    (void)loop->shutdown(clock.now() + milliseconds(10));
                    clock.advance(milliseconds(11));
                  })
                  .ok());
  // Budget 1024: all of these run in the same tick as the first, so make
  // the queue longer than one tick.
  for (int i = 0; i < 3000; ++i) ASSERT_TRUE(loop->submit([&] { ++ran; }).ok());
  const Status s = loop->run();
  EXPECT_EQ(s.code(), ErrorCode::kDeadlineExceeded) << s.to_string();
  EXPECT_EQ(ran, 1024);  // one tick's budget ran, then the deadline check
  EXPECT_NE(s.message().find("1977 queued task(s)"), std::string_view::npos) << s.to_string();
  EXPECT_EQ(loop->stats().tasks_dropped, 1977u);
}

TEST(EventLoopShutdown, CloseDropsQueuedWorkImmediately) {
  auto loop = make_loop();
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> watch = token;
  int ran = 0;
  ASSERT_TRUE(loop->submit([&] {
                    ++ran;
                    (void)loop->close();
                  })
                  .ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(loop->submit([&ran, token] { ++ran; }).ok());
  token.reset();
  const Status s = loop->run();
  EXPECT_EQ(s.code(), ErrorCode::kCancelled) << s.to_string();
  EXPECT_EQ(ran, 1);
  EXPECT_TRUE(watch.expired());
  EXPECT_EQ(loop->stats().tasks_dropped, 10u);
}

// close() asks for an immediate stop: a loop that sees the request before a
// phase runs none of that phase's tasks (it used to run the first of each
// lane before it noticed).
TEST(EventLoopShutdown, CloseBeforeTheLoopRanRunsNothing) {
  auto loop = make_loop();  // never started: close() drains on this thread
  int ran = 0;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(loop->submit([&ran] { ++ran; }).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(loop->submit_internal([&ran] { ++ran; }).ok());
  const Status s = loop->close();
  EXPECT_EQ(s.code(), ErrorCode::kCancelled) << s.to_string();
  EXPECT_EQ(ran, 0);
  EXPECT_EQ(loop->stats().tasks_dropped, 13u);
}

TEST(EventLoopShutdown, DestructorStopsARunningLoop) {
  auto loop = make_loop();
  ASSERT_TRUE(loop->start().ok());
  ASSERT_TRUE(loop->submit([] {}).ok());
  loop.reset();  // must join, not hang or crash
  SUCCEED();
}

TEST(EventLoopShutdown, WaitReturnsTheOutcomeToOtherThreads) {
  auto loop = make_loop();
  ASSERT_TRUE(loop->start().ok());
  std::thread waiter([&] { EXPECT_TRUE(loop->wait().ok()); });
  ASSERT_TRUE(loop->submit([&] { (void)loop->shutdown(); }).ok());
  waiter.join();
  EXPECT_EQ(loop->state(), LoopState::kTerminated);
}

}  // namespace
}  // namespace myelin
