// Proves the steady-state submit path allocates nothing: this binary replaces
// the global operator new/delete with counting versions.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <thread>

#include "myelin/loop/event_loop.h"
#include "src/base/testing/counting_new.h"
#include "src/loop/test_util.h"

namespace myelin {
namespace {

// Submits `n` tasks (captures: two pointers and an int, like a real
// completion) in batches and waits for each batch to run.
void pump(EventLoop& loop, std::atomic<std::uint64_t>& ran, std::uint64_t n) {
  const std::uint64_t base = ran.load();
  std::uint64_t sent = 0;
  std::uint64_t sink = 0;
  while (sent < n) {
    for (int i = 0; i < 1000 && sent < n; ++i, ++sent) {
      const int k = i;
      if (!loop.submit([&ran, &sink, k] {
                 sink += static_cast<std::uint64_t>(k);
                 ran.fetch_add(1, std::memory_order_release);
               })
               .ok()) {
        std::abort();
      }
    }
    while (ran.load(std::memory_order_acquire) - base < sent) {
    }
  }
}

TEST(EventLoopAlloc, ZeroAllocationsPerSubmittedTaskInSteadyState) {
  if (!myelin::testing::kCountingNew) GTEST_SKIP() << "allocation counting is off under sanitizers";
  for (const Nanos spin : {Nanos(0), Nanos(std::chrono::milliseconds(50))}) {
    EventLoopOptions o;
    o.spin_before_sleep = spin;  // both the sleeping and the awake paths
    auto loop = testing::make_loop(o);
    ASSERT_TRUE(loop->start().ok());
    std::atomic<std::uint64_t> ran{0};
    // Warm up: hold the loop in one task while 2,000 more are queued, so the
    // queue reaches a high-water mark of blocks above anything pump() can
    // need (it keeps at most 1,000 tasks in flight). Without the hold, the
    // mark depends on how far the loop happened to lag during the warm-up,
    // and a rarer lag later cost one block (seen in CI).
    std::atomic<bool> hold{true};
    ASSERT_TRUE(loop->submit([&hold] {
                      while (hold.load(std::memory_order_acquire)) std::this_thread::yield();
                    })
                    .ok());
    // The same shape as pump()'s tasks: the queue's units per task follow
    // the callable's size.
    std::uint64_t sink = 0;
    for (int i = 0; i < 2000; ++i) {
      ASSERT_TRUE(loop->submit([&ran, &sink, i] {
                        sink += static_cast<std::uint64_t>(i);
                        ran.fetch_add(1, std::memory_order_release);
                      })
                      .ok());
    }
    hold.store(false, std::memory_order_release);
    while (ran.load(std::memory_order_acquire) < 2000) std::this_thread::yield();
    pump(*loop, ran, 100'000);
    // Drained blocks return to the queue's free stack, so once warm the
    // submit path allocates nothing at all, whatever the loop's timing.
    const std::uint64_t before = myelin::testing::allocation_count();
    pump(*loop, ran, 1'000'000);
    EXPECT_EQ(myelin::testing::allocation_count() - before, 0u) << "spin " << spin.count() << " ns";
    ASSERT_TRUE(loop->shutdown().ok());
  }
}

TEST(EventLoopAlloc, TheCounterSeesAllocations) {
  if (!myelin::testing::kCountingNew) GTEST_SKIP() << "allocation counting is off under sanitizers";
  // Guards the test above against a replacement that never counts.
  const std::uint64_t before = myelin::testing::allocation_count();
  int* volatile p = new int(3);  // volatile: the pair cannot be elided
  delete p;
  EXPECT_EQ(myelin::testing::allocation_count(), before + 1);
}

}  // namespace
}  // namespace myelin
