#include "myelin/loop/event_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "src/loop/test_util.h"

namespace myelin {
namespace {

using testing::eventually;
using testing::make_loop;

TEST(LoopState, Names) {
  EXPECT_EQ(to_string(LoopState::kAwake), "awake");
  EXPECT_EQ(to_string(LoopState::kRunning), "running");
  EXPECT_EQ(to_string(LoopState::kSleeping), "sleeping");
  EXPECT_EQ(to_string(LoopState::kTerminating), "terminating");
  EXPECT_EQ(to_string(LoopState::kTerminated), "terminated");
}

TEST(EventLoop, CreateRejectsZeroBudget) {
  EventLoopOptions o;
  o.batch_budget = 0;
  auto loop = EventLoop::create(o);
  ASSERT_FALSE(loop);
  EXPECT_EQ(loop.error().code(), ErrorCode::kInvalidArgument);
}

TEST(EventLoop, CreateRejectsNegativeDurations) {
  EventLoopOptions spin;
  spin.spin_before_sleep = Nanos(-1);
  auto a = EventLoop::create(spin);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code(), ErrorCode::kInvalidArgument);
  EventLoopOptions slip;
  slip.chase_slip = Nanos(-1);
  auto b = EventLoop::create(slip);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(b.error().message().find("chase_slip"), std::string::npos) << b.error().message();
}

TEST(EventLoop, RunsSubmittedTasksOnItsThreadThenTerminates) {
  auto loop = make_loop();
  EXPECT_EQ(loop->state(), LoopState::kAwake);
  ASSERT_TRUE(loop->start().ok());
  std::promise<std::thread::id> where;
  std::promise<bool> in_loop;
  ASSERT_TRUE(loop->submit([&] {
                    where.set_value(std::this_thread::get_id());
                    in_loop.set_value(loop->in_loop_thread());
                  })
                  .ok());
  EXPECT_NE(where.get_future().get(), std::this_thread::get_id());
  EXPECT_TRUE(in_loop.get_future().get());
  EXPECT_FALSE(loop->in_loop_thread());
  EXPECT_TRUE(loop->shutdown().ok());
  EXPECT_EQ(loop->state(), LoopState::kTerminated);
  Status s = loop->submit([] {});
  EXPECT_EQ(s.code(), ErrorCode::kClosed);
  EXPECT_NE(s.message().find("terminated"), std::string_view::npos) << s.to_string();
}

TEST(EventLoop, RunTwiceOrFromInsideIsAnErrorNotACrash) {
  auto loop = make_loop();
  std::promise<Status> inner;
  ASSERT_TRUE(loop->submit([&] {
                    inner.set_value(loop->run());
                    (void)loop->shutdown();
                  })
                  .ok());
  EXPECT_TRUE(loop->run().ok());
  const Status s = inner.get_future().get();
  EXPECT_EQ(s.code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(loop->run().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(loop->start().code(), ErrorCode::kFailedPrecondition);
}

TEST(EventLoop, RunningALoopInsideAnotherLoopsThreadIsRefused) {
  auto outer = make_loop();
  auto other = make_loop();
  ASSERT_TRUE(outer->start().ok());
  std::promise<Status> s;
  ASSERT_TRUE(outer->submit([&] { s.set_value(other->run()); }).ok());
  EXPECT_EQ(s.get_future().get().code(), ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(outer->shutdown().ok());
}

TEST(EventLoop, DispatchRunsInlineOnlyOnTheLoopThread) {
  auto loop = make_loop();
  ASSERT_TRUE(loop->start().ok());
  std::promise<std::vector<int>> done;
  ASSERT_TRUE(loop->submit([&] {
                    auto order = std::make_shared<std::vector<int>>();
                    (void)loop->dispatch([order] { order->push_back(1); });  // inline
                    order->push_back(2);
                    (void)loop->submit([order, &done] { done.set_value(*order); });
                  })
                  .ok());
  EXPECT_EQ(done.get_future().get(), (std::vector<int>{1, 2}));
  EXPECT_EQ(loop->queue_microtask([] {}).code(), ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(loop->shutdown().ok());
}

TEST(EventLoop, MicrotasksRunAfterTheBatchAndInternalLaneGoesFirst) {
  auto loop = make_loop();
  std::vector<std::string> order;
  // Queued before run(): the first tick sees all of them at once.
  ASSERT_TRUE(loop->submit([&] {
                    order.push_back("task1");
                    (void)loop->queue_microtask([&] { order.push_back("micro"); });
                  })
                  .ok());
  ASSERT_TRUE(loop->submit([&] { order.push_back("task2"); }).ok());
  ASSERT_TRUE(loop->submit_internal([&] { order.push_back("internal"); }).ok());
  ASSERT_TRUE(loop->submit([&] { (void)loop->shutdown(); }).ok());
  EXPECT_TRUE(loop->run().ok());
  EXPECT_EQ(order, (std::vector<std::string>{"internal", "task1", "task2", "micro"}));
}

TEST(EventLoop, EmptyTaskIsRefusedNotRun) {
  auto loop = testing::make_loop();
  ASSERT_TRUE(loop->start().ok());
  for (Status s : {loop->submit(Task()), loop->submit_internal(Task()), loop->dispatch(Task())}) {
    EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument) << s.to_string();
  }
  std::promise<void> ran;
  ASSERT_TRUE(loop->submit([&ran] { ran.set_value(); }).ok());
  EXPECT_EQ(ran.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
  ASSERT_TRUE(loop->shutdown().ok());
}

TEST(EventLoop, ThrowingTaskGoesToTheErrorHandlerAndTheLoopLives) {
  std::vector<std::string> errors;
  EventLoopOptions o;
  o.on_error = [&](const Status& s) { errors.emplace_back(s.to_string()); };
  auto loop = make_loop(o);
  int after = 0;
  ASSERT_TRUE(loop->submit([] { throw std::runtime_error("boom"); }).ok());
  ASSERT_TRUE(loop->submit([] { throw 42; }).ok());
  ASSERT_TRUE(loop->submit([&] { ++after; }).ok());
  ASSERT_TRUE(loop->submit([&] { (void)loop->shutdown(); }).ok());
  EXPECT_TRUE(loop->run().ok());
  EXPECT_EQ(after, 1);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_NE(errors[0].find("boom"), std::string::npos) << errors[0];
  EXPECT_NE(errors[1].find("non-std"), std::string::npos) << errors[1];
}

TEST(EventLoop, BudgetLimitsATickAndReportsOverload) {
  EventLoopOptions o;
  o.batch_budget = 10;
  std::vector<std::size_t> overloads;
  o.on_overload = [&](std::size_t budget) { overloads.push_back(budget); };
  auto loop = make_loop(o);
  std::vector<std::uint64_t> tick_of_task;
  for (int i = 0; i < 35; ++i) {
    ASSERT_TRUE(loop->submit([&] { tick_of_task.push_back(loop->stats().ticks); }).ok());
  }
  ASSERT_TRUE(loop->submit([&] { (void)loop->shutdown(); }).ok());
  EXPECT_TRUE(loop->run().ok());
  ASSERT_EQ(tick_of_task.size(), 35u);
  // 10 per tick: tasks 0-9 in one tick, 10-19 in the next, ...
  EXPECT_EQ(tick_of_task[9], tick_of_task[0]);
  EXPECT_EQ(tick_of_task[10], tick_of_task[0] + 1);
  EXPECT_EQ(tick_of_task[30], tick_of_task[0] + 3);
  EXPECT_EQ(overloads.size(), 3u);  // ticks that left work behind
  EXPECT_EQ(overloads[0], 10u);
}

TEST(EventLoop, WakesFromATrulySleepingLoop) {
  EventLoopOptions o;
  o.spin_before_sleep = Nanos(0);
  auto loop = make_loop(o);
  ASSERT_TRUE(loop->start().ok());
  for (int round = 0; round < 20; ++round) {
    ASSERT_TRUE(eventually([&] { return loop->state() == LoopState::kSleeping; }));
    const LoopStats before = loop->stats();
    std::promise<void> ran;
    ASSERT_TRUE(loop->submit([&] { ran.set_value(); }).ok());
    ran.get_future().wait();
    const LoopStats after = loop->stats();
    EXPECT_GE(after.sleeps, before.sleeps);
    EXPECT_EQ(after.wakeups, before.wakeups + 1) << "round " << round;
  }
  EXPECT_TRUE(loop->shutdown().ok());
}

TEST(EventLoop, ABurstIntoASleepingLoopCostsOneWake) {
  EventLoopOptions o;
  o.spin_before_sleep = Nanos(0);
  auto loop = make_loop(o);
  ASSERT_TRUE(loop->start().ok());
  ASSERT_TRUE(eventually([&] { return loop->state() == LoopState::kSleeping; }));
  const LoopStats before = loop->stats();
  std::atomic<int> ran{0};
  constexpr int kBurst = 5000;
  for (int i = 0; i < kBurst; ++i) ASSERT_TRUE(loop->submit([&] { ++ran; }).ok());
  ASSERT_TRUE(eventually([&] { return ran.load() == kBurst; }));
  const LoopStats after = loop->stats();
  // At most one eventfd write per sleep, however many tasks arrive during
  // it: the loop may catch up and park again mid-burst, but a wake is never
  // paid per task.
  const std::uint64_t wakes = after.wakeups - before.wakeups;
  EXPECT_GE(wakes, 1u);
  EXPECT_LE(wakes, after.sleeps - before.sleeps + 1);
  EXPECT_LT(wakes, static_cast<std::uint64_t>(kBurst / 4));
  EXPECT_TRUE(loop->shutdown().ok());
}

TEST(EventLoop, AnAwakeLoopMakesNoSyscallPerTask) {
  EventLoopOptions o;
  o.spin_before_sleep = std::chrono::seconds(5);  // stays awake for the test
  auto loop = make_loop(o);
  ASSERT_TRUE(loop->start().ok());
  std::promise<void> warm;
  ASSERT_TRUE(loop->submit([&] { warm.set_value(); }).ok());
  warm.get_future().wait();
  const LoopStats before = loop->stats();
  std::atomic<int> ran{0};
  constexpr int kTasks = 20000;
  for (int i = 0; i < kTasks; ++i) ASSERT_TRUE(loop->submit([&] { ++ran; }).ok());
  ASSERT_TRUE(eventually([&] { return ran.load() == kTasks; }));
  const LoopStats after = loop->stats();
  EXPECT_EQ(after.wakeups, before.wakeups);
  EXPECT_EQ(after.io_polls, before.io_polls);  // no fds: no epoll call while busy
  EXPECT_EQ(after.sleeps, before.sleeps);
  EXPECT_TRUE(loop->shutdown().ok());
}

}  // namespace
}  // namespace myelin
