#include "src/loop/task_queue.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

namespace myelin::detail {
namespace {

std::size_t run_all(TaskQueue& q) {
  std::size_t total = 0;
  while (std::size_t n = q.consume(1000, [](TaskQueue::Queued& t) {
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

// A callable of 48 bytes (two units) whose third word sits where the second
// unit's seq would be.
struct Wide {
  std::uint64_t w[5];
  int* hits;
  void operator()() const { ++*hits; }
};
static_assert(sizeof(Wide) == 48);

TEST(TaskQueue, SmallAndWideTasksInterleaveInOrderAcrossBlocks) {
  TaskQueue q;
  std::vector<int> order;
  int hits = 0;
  const int n = static_cast<int>(TaskQueue::kBlockCap) * 4 + 3;
  for (int i = 0; i < n; ++i) {
    // Runs of 1, 2 and 3 wide tasks between small ones hit every pad case.
    if (i % 4 != 0) {
      Task t([&order, i] { order.push_back(i); });
      ASSERT_EQ(q.push(t), TaskQueue::PushResult::kOk);
      EXPECT_FALSE(t);  // moved out
    } else {
      Task t([&order, i, pad = std::array<std::uint64_t, 4>{}] {
        (void)pad;
        order.push_back(i);
      });
      ASSERT_EQ(q.push(t), TaskQueue::PushResult::kOk);
    }
    if (i % 7 == 3) {
      Task w(Wide{{1, 2, 3, 4, 5}, &hits});
      ASSERT_EQ(q.push(w), TaskQueue::PushResult::kOk);
    }
  }
  run_all(q);
  ASSERT_EQ(order.size(), static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) ASSERT_EQ(order[i], i);
  EXPECT_EQ(hits, (n + 3) / 7);
  EXPECT_FALSE(q.has_claimed());
}

// The second unit of a wide record held callable bytes. Two laps later the
// same unit can start a small record; had those bytes equalled that record's
// ticket + 1, the consumer would have taken them for a ready record and run
// garbage. The consumer zeroes that word.
TEST(TaskQueue, StaleCallableBytesNeverLookLikeAReadyRecord) {
  TaskQueue q;
  constexpr std::uint64_t kLap = TaskQueue::kLap;
  int hits = 0;
  auto small = [&] {
    Task t([&hits] { ++hits; });
    ASSERT_EQ(q.push(t), TaskQueue::PushResult::kOk);
  };
  // Lap 0, block A: one small record, then wide records filling the block.
  small();
  for (std::uint64_t first = 1; first + 1 < TaskQueue::kBlockCap; first += 2) {
    const std::uint64_t second = first + 1;
    // Blocks alternate A, B, A: this unit's ticket two laps on, plus one.
    Task t(Wide{{0, 0, 2 * kLap + second + 1, 0, 0}, &hits});
    ASSERT_EQ(q.push(t), TaskQueue::PushResult::kOk);
  }
  run_all(q);
  // Lap 1, block B.
  for (std::uint64_t i = 0; i < TaskQueue::kBlockCap; ++i) small();
  run_all(q);
  ASSERT_EQ(q.blocks_allocated(), 2u);  // the rotation the poison assumes
  // Lap 2, block A again: two small records; the head then rests on unit 2.
  small();
  small();
  const int before = hits;
  EXPECT_EQ(run_all(q), 2u);
  EXPECT_EQ(hits, before + 2);
  EXPECT_FALSE(q.head_ready());
  EXPECT_FALSE(q.has_claimed());
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
