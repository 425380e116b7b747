// 32 producers flat out: no task lost, none run twice, FIFO per producer.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <thread>
#include <vector>

#include "myelin/loop/event_loop.h"
#include "src/loop/test_util.h"

namespace myelin {
namespace {

std::uint64_t tasks_per_producer() {
  if (const char* env = std::getenv("MYELIN_LOOP_STRESS_TASKS")) {
    return std::strtoull(env, nullptr, 10);
  }
#if defined(MYELIN_LOOP_STRESS_REDUCED)
  return 50'000;  // sanitizer builds: ~20x slower per task
#else
  return 1'000'000;
#endif
}

TEST(EventLoopStress, ThirtyTwoProducersNoneLostNoneTwiceFifoPerProducer) {
  constexpr int kProducers = 32;
  const std::uint64_t per = tasks_per_producer();
  EventLoopOptions o;
  o.spin_before_sleep = std::chrono::microseconds(50);
  auto loop = testing::make_loop(o);
  // Loop-thread state only: next expected sequence number per producer.
  std::vector<std::uint64_t> next(kProducers, 0);
  std::uint64_t out_of_order = 0;
  std::atomic<bool> go{false};
  ASSERT_TRUE(loop->start().ok());
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      for (std::uint64_t i = 0; i < per; ++i) {
        // A duplicate or a loss both break the "next == i" chain.
        const Status s = loop->submit([&next, &out_of_order, p, i] {
          if (next[p] != i) ++out_of_order;
          next[p] = i + 1;
        });
        if (!s.ok()) std::abort();
      }
    });
  }
  go.store(true, std::memory_order_release);
  for (auto& t : producers) t.join();
  ASSERT_TRUE(loop->shutdown().ok());  // runs everything accepted, then joins
  EXPECT_EQ(out_of_order, 0u);
  for (int p = 0; p < kProducers; ++p) EXPECT_EQ(next[p], per) << "producer " << p;
  EXPECT_EQ(loop->stats().tasks_run, per * kProducers);
  EXPECT_EQ(loop->stats().tasks_dropped, 0u);
}

}  // namespace
}  // namespace myelin
