#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>
#include <vector>

#include "myelin/loop/event_loop.h"
#include "src/loop/test_util.h"

namespace myelin {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using testing::eventually;
using testing::make_loop;

TEST(EventLoopTimers, NeverFireEarlyOnTheRealClock) {
  auto loop = make_loop();
  ASSERT_TRUE(loop->start().ok());
  constexpr int kTimers = 50;
  std::vector<std::int64_t> early_by(kTimers, 0);
  std::atomic<int> fired{0};
  for (int i = 0; i < kTimers; ++i) {
    const Nanos delay = microseconds(100 + 97 * i);
    const MonoTime earliest = mono_now() + delay;
    ASSERT_TRUE(loop->schedule(delay,
                               [&, i, earliest] {
                                 early_by[i] = (earliest - mono_now()).count();
                                 ++fired;
                               })
                    .has_value());
  }
  ASSERT_TRUE(eventually([&] { return fired.load() == kTimers; }));
  EXPECT_TRUE(loop->shutdown().ok());
  for (int i = 0; i < kTimers; ++i) EXPECT_LE(early_by[i], 0) << "timer " << i << " was early";
}

TEST(EventLoopTimers, EqualDeadlinesFireInSchedulingOrder) {
  FakeClock clock;
  EventLoopOptions o;
  o.clock = &clock;
  auto loop = make_loop(o);
  std::vector<int> order;
  // Scheduled before run() from this thread: through the internal lane, in order.
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(loop->schedule(milliseconds(5), [&order, i] { order.push_back(i); }).has_value());
  }
  ASSERT_TRUE(loop->schedule(milliseconds(1), [&order] { order.push_back(-1); }).has_value());
  ASSERT_TRUE(loop->submit([&] {
                    clock.advance(milliseconds(4));
                    // Not due yet: a tick must pass without the 5 ms timers.
                    (void)loop->schedule(Nanos(0), [&] {
                      order.push_back(100);
                      clock.advance(milliseconds(1));
                      (void)loop->schedule(Nanos(0), [&] { (void)loop->shutdown(); });
                    });
                  })
                  .ok());
  EXPECT_TRUE(loop->run().ok());
  EXPECT_EQ(order, (std::vector<int>{-1, 100, 0, 1, 2, 3, 4}));
}

TEST(EventLoopTimers, CancelBeforeFireAndFromInsideACallback) {
  auto loop = make_loop();
  ASSERT_TRUE(loop->start().ok());
  std::atomic<int> cancelled_runs{0};
  std::atomic<int> self_runs{0};
  std::promise<void> done;
  ASSERT_TRUE(loop->submit([&] {
                    auto doomed = loop->schedule(milliseconds(1), [&] { ++cancelled_runs; });
                    ASSERT_TRUE(doomed.has_value());
                    EXPECT_TRUE(loop->cancel(*doomed).ok());
                    EXPECT_EQ(loop->cancel(*doomed).code(), ErrorCode::kNotFound);
                    auto id = std::make_shared<TimerId>(0);
                    auto every = loop->schedule_every(microseconds(200), [&, id] {
                      if (++self_runs == 3) {
                        EXPECT_TRUE(loop->cancel(*id).ok());
                        (void)loop->schedule(milliseconds(3), [&] { done.set_value(); });
                      }
                    });
                    ASSERT_TRUE(every.has_value());
                    *id = *every;
                  })
                  .ok());
  done.get_future().wait();
  EXPECT_TRUE(loop->shutdown().ok());
  EXPECT_EQ(cancelled_runs.load(), 0);
  EXPECT_EQ(self_runs.load(), 3);  // no fire after the self-cancel
}

TEST(EventLoopTimers, RepeatingTimerKeepsItsPeriod) {
  auto loop = make_loop();
  ASSERT_TRUE(loop->start().ok());
  std::vector<MonoTime> fires;
  std::promise<void> done;
  const MonoTime start = mono_now();
  const Nanos period = microseconds(500);
  auto id = loop->schedule_every(period, [&] {
    fires.push_back(mono_now());
    if (fires.size() == 10) done.set_value();
  });
  ASSERT_TRUE(id.has_value());
  done.get_future().wait();
  ASSERT_TRUE(loop->cancel(*id).ok());  // from another thread: queued on the internal lane
  EXPECT_TRUE(loop->shutdown().ok());
  ASSERT_GE(fires.size(), 10u);
  for (std::size_t i = 0; i < 10; ++i) {
    EXPECT_GE(fires[i] - start, period * static_cast<int>(i + 1)) << "fire " << i << " early";
  }
}

TEST(EventLoopTimers, ScheduleEveryRejectsNonPositivePeriod) {
  auto loop = make_loop();
  EXPECT_EQ(loop->schedule_every(Nanos(0), [] {}).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(loop->schedule(Nanos(1), Task()).error().code(), ErrorCode::kInvalidArgument);
}

TEST(EventLoopTimers, SleepingLoopWakesForATimerScheduledFromAnotherThread) {
  EventLoopOptions o;
  o.spin_before_sleep = Nanos(0);
  auto loop = make_loop(o);
  ASSERT_TRUE(loop->start().ok());
  ASSERT_TRUE(eventually([&] { return loop->state() == LoopState::kSleeping; }));
  std::promise<void> fired;
  ASSERT_TRUE(loop->schedule(milliseconds(2), [&] { fired.set_value(); }).has_value());
  EXPECT_EQ(fired.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_TRUE(loop->shutdown().ok());
}

}  // namespace
}  // namespace myelin
