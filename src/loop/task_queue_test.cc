#include "src/loop/task_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace myelin::detail {
namespace {

std::size_t run_all(TaskQueue& q) {
  std::size_t total = 0;
  while (std::size_t n = q.consume(1000, [](Task& t) {
    t();
    return true;
  }))
    total += n;
  return total;
}

TEST(TaskQueue, FifoAcrossManyBlocks) {
  TaskQueue q;
  std::vector<int> order;
  const int n = static_cast<int>(TaskQueue::kBlockCap) * 5 + 17;
  for (int i = 0; i < n; ++i) {
    Task t([&order, i] { order.push_back(i); });
    ASSERT_EQ(q.push(t), TaskQueue::PushResult::kOk);
  }
  EXPECT_TRUE(q.has_claimed());
  EXPECT_EQ(run_all(q), static_cast<std::size_t>(n));
  ASSERT_EQ(order.size(), static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) ASSERT_EQ(order[i], i);
  EXPECT_FALSE(q.has_claimed());
  EXPECT_FALSE(q.head_ready());
}

TEST(TaskQueue, BlocksAreRecycledNotReallocated) {
  TaskQueue q;
  int hits = 0;
  for (int round = 0; round < 200; ++round) {
    for (int i = 0; i < 1000; ++i) {
      Task t([&hits] { ++hits; });
      ASSERT_EQ(q.push(t), TaskQueue::PushResult::kOk);
    }
    run_all(q);
  }
  EXPECT_EQ(hits, 200 * 1000);
  // 1000 queued tasks need at most 5 blocks; 200 rounds must reuse them.
  EXPECT_LE(q.blocks_allocated(), 6u);
}

TEST(TaskQueue, CloseRejectsLaterPushesAndKeepsEarlierOnes) {
  TaskQueue q;
  int hits = 0;
  Task a([&hits] { ++hits; });
  ASSERT_EQ(q.push(a), TaskQueue::PushResult::kOk);
  q.close();
  EXPECT_TRUE(q.closed());
  Task b([&hits] { hits += 100; });
  EXPECT_EQ(q.push(b), TaskQueue::PushResult::kClosed);
  EXPECT_TRUE(b);  // a refused task is left with the caller
  EXPECT_EQ(run_all(q), 1u);
  EXPECT_EQ(hits, 1);
}

TEST(TaskQueue, DestructorDestroysUnrunTasks) {
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> watch = token;
  {
    TaskQueue q;
    for (int i = 0; i < 600; ++i) {
      Task t([token] { (void)token; });
      ASSERT_EQ(q.push(t), TaskQueue::PushResult::kOk);
    }
    token.reset();
    EXPECT_FALSE(watch.expired());
  }
  EXPECT_TRUE(watch.expired());
}

TEST(TaskQueue, ConcurrentProducersKeepPerProducerOrder) {
  TaskQueue q;
  constexpr int kProducers = 4;
  constexpr int kEach = 20000;
  std::vector<int> last(kProducers, -1);
  std::atomic<bool> ok{true};
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < kEach; ++i) {
        Task t([&, p, i] {
          if (last[p] + 1 != i) ok = false;
          last[p] = i;
        });
        while (q.push(t) != TaskQueue::PushResult::kOk) {
        }
      }
    });
  }
  std::size_t total = 0;
  while (total < static_cast<std::size_t>(kProducers) * kEach) total += run_all(q);
  for (auto& t : threads) t.join();
  EXPECT_TRUE(ok);
  for (int p = 0; p < kProducers; ++p) EXPECT_EQ(last[p], kEach - 1);
}

}  // namespace
}  // namespace myelin::detail
