#include "src/loop/timer_queue.h"

#include <gtest/gtest.h>

#include <vector>

namespace myelin::detail {
namespace {

using std::chrono::microseconds;

const MonoTime kT0(std::chrono::seconds(100));

std::size_t fire(TimerQueue& q, MonoTime now) {
  return q.run_due(now, [](Task& t) { t(); });
}

TEST(TimerQueue, FiresByDeadlineThenBySchedulingOrder) {
  TimerQueue q;
  std::vector<int> order;
  q.add(1, kT0 + microseconds(30), Nanos(0), [&] { order.push_back(1); });
  q.add(2, kT0 + microseconds(10), Nanos(0), [&] { order.push_back(2); });
  q.add(3, kT0 + microseconds(10), Nanos(0), [&] { order.push_back(3); });
  q.add(4, kT0 + microseconds(10), Nanos(0), [&] { order.push_back(4); });
  EXPECT_EQ(q.next_deadline(), kT0 + microseconds(10));
  EXPECT_EQ(fire(q, kT0 + microseconds(9)), 0u);  // never early
  EXPECT_EQ(fire(q, kT0 + microseconds(10)), 3u);
  EXPECT_EQ(order, (std::vector<int>{2, 3, 4}));
  EXPECT_EQ(fire(q, kT0 + microseconds(100)), 1u);
  EXPECT_EQ(order, (std::vector<int>{2, 3, 4, 1}));
  EXPECT_EQ(q.size(), 0u);
  EXPECT_FALSE(q.next_deadline().has_value());
}

TEST(TimerQueue, CancelledTimerNeverFires) {
  TimerQueue q;
  int hits = 0;
  q.add(1, kT0, Nanos(0), [&] { ++hits; });
  q.add(2, kT0 + microseconds(5), Nanos(0), [&] { hits += 10; });
  EXPECT_TRUE(q.cancel(1));
  EXPECT_FALSE(q.cancel(1));
  EXPECT_EQ(q.next_deadline(), kT0 + microseconds(5));
  fire(q, kT0 + microseconds(10));
  EXPECT_EQ(hits, 10);
}

TEST(TimerQueue, CallbackMayCancelItselfAndOthers) {
  TimerQueue q;
  int a = 0, b = 0;
  q.add(1, kT0, Nanos(microseconds(10)), [&] {
    ++a;
    EXPECT_TRUE(q.cancel(1));  // itself, while running
    EXPECT_TRUE(q.cancel(2));  // a later timer, due in the same call
  });
  q.add(2, kT0, Nanos(0), [&] { ++b; });
  EXPECT_EQ(fire(q, kT0 + microseconds(100)), 1u);
  EXPECT_EQ(fire(q, kT0 + microseconds(1000)), 0u);
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 0);
  EXPECT_EQ(q.size(), 0u);
}

TEST(TimerQueue, RepeatingTimerReArmsAndSkipsMissedPeriods) {
  TimerQueue q;
  int hits = 0;
  q.add(7, kT0 + microseconds(10), Nanos(microseconds(10)), [&] { ++hits; });
  fire(q, kT0 + microseconds(10));
  EXPECT_EQ(q.next_deadline(), kT0 + microseconds(20));
  fire(q, kT0 + microseconds(55));  // fell behind: one fire, next at now + period
  EXPECT_EQ(hits, 2);
  EXPECT_EQ(q.next_deadline(), kT0 + microseconds(65));
  EXPECT_TRUE(q.cancel(7));
}

TEST(TimerQueue, ZeroDelayTimerAddedByACallbackWaitsForTheNextCall) {
  TimerQueue q;
  int inner = 0;
  q.add(1, kT0, Nanos(0), [&] { q.add(2, kT0, Nanos(0), [&] { ++inner; }); });
  EXPECT_EQ(fire(q, kT0), 1u);
  EXPECT_EQ(inner, 0);
  EXPECT_EQ(fire(q, kT0), 1u);
  EXPECT_EQ(inner, 1);
}

TEST(TimerQueue, ManyCancelsKeepTheHeapBounded) {
  TimerQueue q;
  for (std::uint64_t i = 1; i <= 10000; ++i) {
    q.add(i, kT0 + microseconds(i), Nanos(0), [] {});
    if (i % 100 != 0) {
      EXPECT_TRUE(q.cancel(i));
    }
  }
  EXPECT_EQ(q.size(), 100u);
  EXPECT_EQ(fire(q, kT0 + microseconds(20000)), 100u);
}

}  // namespace
}  // namespace myelin::detail
